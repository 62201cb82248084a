"""sync: the Xero and QuickBooks Online import CSVs, re-read and checked column by column."""
from __future__ import annotations

import csv
import dataclasses
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from billing_batch.ledger.store import Ledger
from billing_batch.model import Product, Source
from billing_batch.post.sync import allocate
from billing_batch.post.records import STARTED, Records
from test_post_tasks import NOW, Billed, billed, billed_once, by_number  # noqa: F401 (fixtures)

# Written out by hand from the published templates (see docs/post-tasks.md), not imported from the code.
XERO_HEADER = ("*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,"
               "PORegion,POPostalCode,POCountry,*InvoiceNumber,Reference,*InvoiceDate,*DueDate,Total,"
               "InventoryItemCode,*Description,*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,TaxAmount,"
               "TrackingName1,TrackingOption1,TrackingName2,TrackingOption2,Currency,BrandingTheme").split(",")
QBO_HEADER = ("InvoiceNo,Customer,InvoiceDate,DueDate,Terms,Location,Memo,Item(Product/Service),ItemDescription,"
              "ItemQuantity,ItemRate,ItemAmount,ItemTaxCode,ItemTaxAmount,Currency,Service Date").split(",")


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # UTF-8 without a byte order mark
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames), list(reader)


def exported(billed: Billed, prefix: str) -> list[Path]:
    return sorted((billed.out / "exports").glob(f"{prefix}-*.csv"))


def test_xero_file_column_by_column(billed: Billed):
    outcomes = by_number(billed.post(("sync",)), "sync")
    (path,) = exported(billed, "xero-sales-invoices")
    assert path.name == "xero-sales-invoices-20260302T093000.csv"  # named by the run's time
    assert all(o.ok and o.reference == f"exports/{path.name}; exports/quickbooks-invoices-20260302T093000.csv"
               for o in outcomes.values())
    header, rows = read(path)
    assert header == XERO_HEADER
    invoices = {i.number: i for i in billed.invoices()}
    assert list(dict.fromkeys(r["*InvoiceNumber"] for r in rows)) == list(invoices)

    # INV-000002: CTR-2, 3 x 333.33 Platform and 1 x 99.99 Support, 10% discount, 20% tax.
    # The invoice's tax (198.00) is shared by the rows in proportion: 200.00 + 20.00 - 20.00 - 2.00.
    inv2 = [r for r in rows if r["*InvoiceNumber"] == "INV-000002"]
    assert [(r["*Description"], r["*Quantity"], r["*UnitAmount"], r["*AccountCode"], r["*TaxType"], r["TaxAmount"])
            for r in inv2] == [
        ("Seats (2026-01-01 to 2026-01-31)", "3", "333.33", "4000", "Tax on Sales", "200.00"),
        ("Priority support (2026-01-01 to 2026-01-31)", "1", "99.99", "4100", "Tax on Sales", "20.00"),
        # the discount as negative lines, shared by account code: 110.00 = 100.00 + 10.00
        ("Discount 10% on account 4000", "1", "-100.00", "4000", "Tax on Sales", "-20.00"),
        ("Discount 10% on account 4100", "1", "-10.00", "4100", "Tax on Sales", "-2.00"),
    ]
    first = inv2[0]
    assert (first["*ContactName"], first["EmailAddress"], first["POAddressLine1"], first["POCity"],
            first["POPostalCode"], first["POCountry"]) == (
        "Kunde Zwei GmbH", "cust-2@example.com", "1 Main Street", "Springfield", "12345", "DE")
    assert first["Reference"] == "CTR-2 2026-01-01 to 2026-01-31"
    # the workbook's locale is en_US: Xero's US date format, month first
    assert (first["*InvoiceDate"], first["*DueDate"]) == ("03/02/2026", "03/16/2026")
    assert first["Currency"] == "EUR"
    for column in ("Total", "InventoryItemCode", "Discount", "TrackingName1", "TrackingOption1", "TrackingName2",
                   "TrackingOption2", "BrandingTheme", "PORegion"):
        assert {r[column] for r in rows} == {""}, column

    # 1234 API calls at 0.0125 = 15.425, billed 15.43: exported as 1 x 15.43, the basis in the description
    usage_row = next(r for r in rows if r["*InvoiceNumber"] == "INV-000001" and r["*AccountCode"] == "4200")
    assert (usage_row["*Quantity"], usage_row["*UnitAmount"]) == ("1", "15.43")
    assert usage_row["*Description"] == "metered (2026-01-15): 1234 x 0.0125"

    # every invoice reconciles to the cent: sum of quantity x unit amount, plus the tax amounts
    computed = defaultdict(Decimal)
    for r in rows:
        computed[r["*InvoiceNumber"]] += Decimal(r["*Quantity"]) * Decimal(r["*UnitAmount"]) + Decimal(r["TaxAmount"])
    assert dict(computed) == {n: i.draft.total for n, i in invoices.items()}
    assert computed["INV-000002"] == Decimal("1187.98")


def test_quickbooks_file_column_by_column(billed: Billed):
    billed.post(("sync",))
    (path,) = exported(billed, "quickbooks-invoices")
    header, rows = read(path)
    assert header == QBO_HEADER
    inv2 = [r for r in rows if r["InvoiceNo"] == "INV-000002"]
    assert [(r["Item(Product/Service)"], r["ItemDescription"], r["ItemQuantity"], r["ItemRate"], r["ItemAmount"],
             r["ItemTaxCode"], r["ItemTaxAmount"], r["Service Date"]) for r in inv2] == [
        ("Platform", "Seats (2026-01-01 to 2026-01-31)", "3", "333.33", "999.99", "Tax on Sales", "200.00", "01/01/2026"),
        ("Support", "Priority support (2026-01-01 to 2026-01-31)", "1", "99.99", "99.99", "Tax on Sales", "20.00",
         "01/01/2026"),
        ("Platform", "Discount 10% on account 4000", "1", "-100.00", "-100.00", "Tax on Sales", "-20.00", ""),
        ("Support", "Discount 10% on account 4100", "1", "-10.00", "-10.00", "Tax on Sales", "-2.00", ""),
    ]
    assert {(r["Customer"], r["InvoiceDate"], r["DueDate"], r["Currency"], r["Terms"], r["Location"]) for r in inv2} == {
        ("Kunde Zwei GmbH", "03/02/2026", "03/16/2026", "EUR", "", "")}
    assert inv2[0]["Memo"] == "Contract CTR-2, period 2026-01-01 to 2026-01-31"
    totals = defaultdict(Decimal)
    for r in rows:
        assert Decimal(r["ItemQuantity"]) * Decimal(r["ItemRate"]) == Decimal(r["ItemAmount"])
        totals[r["InvoiceNo"]] += Decimal(r["ItemAmount"]) + Decimal(r["ItemTaxAmount"])
    assert dict(totals) == {i.number: i.draft.total for i in billed.invoices()}


def test_day_first_dates_outside_the_us(billed: Billed):
    inputs = dataclasses.replace(billed.inputs, settings=dataclasses.replace(billed.inputs.settings, locale="en_GB"))
    billed.post(("sync",), inputs=inputs)
    _, xero = read(exported(billed, "xero-sales-invoices")[0])
    _, qbo = read(exported(billed, "quickbooks-invoices")[0])
    assert (xero[0]["*InvoiceDate"], xero[0]["*DueDate"]) == ("02/03/2026", "01/04/2026")
    assert qbo[0]["InvoiceDate"] == "02/03/2026"


def test_a_second_call_exports_nothing_new_and_a_later_one_only_the_new(billed: Billed):
    billed.post(("sync",), invoices=billed.invoices()[:4])
    assert len(exported(billed, "xero-sales-invoices")) == 1
    again = billed.post(("sync",), invoices=billed.invoices()[:4])
    assert all(o.skipped_reason.startswith("already synced") for o in again)
    assert len(list((billed.out / "exports").iterdir())) == 2  # no new file at all

    later = billed.post(("sync",), now=datetime(2026, 3, 2, 10, 0))
    assert sorted(o.number for o in later if o.status == "done") == [f"INV-00000{n}" for n in range(5, 9)]
    newest = exported(billed, "xero-sales-invoices")[-1]
    assert newest.name == "xero-sales-invoices-20260302T100000.csv"
    _, rows = read(newest)
    assert sorted({r["*InvoiceNumber"] for r in rows}) == [f"INV-00000{n}" for n in range(5, 9)]


def test_missing_account_codes_are_reported_and_the_invoice_waits(billed: Billed):
    products = {k: v for k, v in billed.inputs.products.items() if k != "API calls"}
    products["Support"] = dataclasses.replace(products["Support"], account_code="")
    inputs = dataclasses.replace(billed.inputs, products=products)
    outcomes = by_number(billed.post(("sync",), inputs=inputs), "sync")
    assert not outcomes["INV-000001"].ok
    assert outcomes["INV-000001"].error == (
        "not exported: no Account Code for product 'API calls' in the Products sheet; "
        "add it (Product, Account Code) and run post --tasks sync again.")
    assert "'Support'" in outcomes["INV-000002"].error
    assert [n for n, o in outcomes.items() if o.ok] == ["INV-000003", "INV-000004", "INV-000005", "INV-000007",
                                                        "INV-000008"]
    _, rows = read(exported(billed, "xero-sales-invoices")[0])
    assert "INV-000001" not in {r["*InvoiceNumber"] for r in rows}
    assert billed.status()["INV-000001"] == {"sync": "failed"}

    # fixed in the workbook: the next call exports exactly the three that waited
    fixed = billed.post(("sync",), now=datetime(2026, 3, 3, 8, 0))
    assert sorted(o.number for o in fixed if o.status == "done") == ["INV-000001", "INV-000002", "INV-000006"]


def test_a_discount_product_takes_the_whole_discount(billed: Billed):
    products = dict(billed.inputs.products)
    products["Discount"] = Product("Discount", "4900", "Tax on Sales", Source("billing.xlsx", "Products", 9))
    billed.post(("sync",), inputs=dataclasses.replace(billed.inputs, products=products))
    _, rows = read(exported(billed, "xero-sales-invoices")[0])
    discount = [r for r in rows if r["*InvoiceNumber"] == "INV-000002" and r["*UnitAmount"].startswith("-")]
    assert [(r["*Description"], r["*UnitAmount"], r["*AccountCode"], r["TaxAmount"]) for r in discount] == [
        ("Discount 10%", "-110.00", "4900", "-22.00")]


def test_an_export_whose_file_was_written_before_a_crash_is_not_exported_again(billed: Billed):
    billed.post(("sync",), invoices=billed.invoices()[:1])
    (xero,) = exported(billed, "xero-sales-invoices")
    # what a run killed after renaming the files into place, before recording them as done, leaves behind
    with Ledger(billed.ledger_path) as ledger:
        reference = Records(ledger).get("INV-000001", "sync").reference
        Records(ledger).mark("INV-000001", "sync", STARTED, reference)
    outcomes = by_number(billed.post(("sync",), invoices=billed.invoices()[:1], now=NOW.replace(hour=11)), "sync")
    assert outcomes["INV-000001"].ok and outcomes["INV-000001"].skipped_reason.startswith("already synced")
    assert exported(billed, "xero-sales-invoices") == [xero]
    assert billed.status()["INV-000001"]["sync"] == "done"


def test_two_calls_in_the_same_second_never_overwrite_an_export(billed: Billed):
    billed.post(("sync",), invoices=billed.invoices()[:1])
    billed.post(("sync",), invoices=billed.invoices()[1:2])
    assert [p.name for p in exported(billed, "xero-sales-invoices")] == [
        "xero-sales-invoices-20260302T093000-2.csv", "xero-sales-invoices-20260302T093000.csv"]


def test_allocate_shares_to_the_cent():
    cent = Decimal("0.01")
    assert allocate(Decimal("110.00"), [Decimal("999.99"), Decimal("99.99")], cent) == [Decimal("100.00"), Decimal("10.00")]
    assert allocate(Decimal("0.10"), [Decimal(1)] * 3, cent) == [Decimal("0.04"), Decimal("0.03"), Decimal("0.03")]
    assert allocate(Decimal("19.80"), [Decimal("100"), Decimal("-1")], cent) == [Decimal("20.00"), Decimal("-0.20")]
    assert sum(allocate(Decimal("7.77"), [Decimal("3.33"), Decimal("1.11"), Decimal("5.55")], cent)) == Decimal("7.77")
    assert allocate(Decimal("5"), [Decimal("2"), Decimal("1")], Decimal("1")) == [Decimal("3"), Decimal("2")]


def test_more_invoices_than_xero_takes_in_one_file_are_split(billed: Billed, monkeypatch):
    from billing_batch.post import sync

    monkeypatch.setattr(sync, "XERO_MAX_INVOICES", 3)  # Xero's limit is 500
    outcomes = by_number(billed.post(("sync",)), "sync")
    parts = exported(billed, "xero-sales-invoices")
    assert [p.name for p in parts] == [f"xero-sales-invoices-20260302T093000-part{n}of3.csv" for n in (1, 2, 3)]
    assert [sorted({r["*InvoiceNumber"] for r in read(p)[1]}) for p in parts] == [
        ["INV-000001", "INV-000002", "INV-000003"], ["INV-000004", "INV-000005", "INV-000006"],
        ["INV-000007", "INV-000008"]]
    assert outcomes["INV-000005"].reference == (f"exports/{parts[1].name}; "
                                                "exports/quickbooks-invoices-20260302T093000.csv")
    assert len(exported(billed, "quickbooks-invoices")) == 1
