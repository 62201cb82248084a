"""Every CSV the program writes is inert in a spreadsheet (issue #21, item 10): a text cell starting with = + - @,
a tab or a carriage return gets one leading apostrophe (OWASP "CSV Injection"), so that Excel shows it as text
and runs no =HYPERLINK or DDE payload; amount columns stay plain numbers, a negative amount too. Hostile values
go through each writer's real code path: the Xero and QuickBooks exports (post sync), the refunds list (post
charge) and the usage reconciliation files (billing-batch run on a Partner Center file). Files are read back
with the csv module."""
from __future__ import annotations

import csv
import dataclasses
from decimal import Decimal
from pathlib import Path

from credit_notes import credit_note
from test_partner_center import _imported, _tamper, cents, run
from test_partner_center import billed as usage_billed  # noqa: F401 (fixture)
from test_post_tasks import Billed, billed, billed_once  # noqa: F401 (fixtures)

from billing_batch.files import csv_bytes

HOSTILE = ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def assert_inert(rows: list[dict[str, str]], numbers: set[str]) -> None:
    """No text cell a spreadsheet would evaluate; every cell of a number column a plain number (or blank)."""
    assert rows
    for row in rows:
        for column, value in row.items():
            if column in numbers:
                assert value == "" or Decimal(value).is_finite(), (column, value)
            else:
                assert not value.startswith(TRIGGERS), (column, value)


def unquoted(value: str) -> str:
    """The text as written before the apostrophe was put in front of it."""
    return value.removeprefix("'")


def test_the_helper_quotes_text_by_column_and_leaves_numbers(tmp_path: Path):
    data = csv_bytes(["Name", "Amount"], [[text, "-12.50"] for text in [*HOSTILE, "Acme", "'quoted", ""]],
                     numbers={"Amount"})
    path = tmp_path / "x.csv"
    path.write_bytes(data)
    rows = read(path)
    assert_inert(rows, {"Amount"})
    assert [r["Name"] for r in rows] == [*("'" + h for h in HOSTILE), "Acme", "'quoted", ""]
    assert {r["Amount"] for r in rows} == {"-12.50"}  # a negative amount is a number, not quoted


# ---------------------------------------------------------------- post sync: Xero and QuickBooks Online

XERO_NUMBERS = {"Total", "*Quantity", "*UnitAmount", "Discount", "TaxAmount"}
QBO_NUMBERS = {"ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxAmount"}


def hostile_invoices(billed: Billed) -> dict[str, str]:
    """The first six invoices, each with one hostile customer name, line description and address; -> number: value."""
    chosen = {}
    invoices = []
    for inv, value in zip(billed.invoices(), HOSTILE):
        lines = tuple(dataclasses.replace(line, description=value) for line in inv.draft.lines)
        invoices.append(dataclasses.replace(inv, draft=dataclasses.replace(inv.draft, customer_name=value, lines=lines)))
        chosen[inv.number] = value
    customers = {cid: dataclasses.replace(c, address=HOSTILE[k % len(HOSTILE)], city=HOSTILE[-k])
                 for k, (cid, c) in enumerate(billed.inputs.customers.items())}
    outcomes = billed.post(("sync",), inputs=dataclasses.replace(billed.inputs, customers=customers), invoices=invoices)
    assert all(o.ok for o in outcomes), outcomes
    return chosen


def test_xero_export_is_inert_and_keeps_the_text(billed: Billed):
    chosen = hostile_invoices(billed)
    (path,) = (billed.out / "exports").glob("xero-sales-invoices-*.csv")
    rows = read(path)
    assert_inert(rows, XERO_NUMBERS)
    assert {r["*InvoiceNumber"]: unquoted(r["*ContactName"]) for r in rows} == chosen  # the round trip
    assert all(r["*ContactName"] == "'" + chosen[r["*InvoiceNumber"]] for r in rows)  # one apostrophe, no more
    for r in rows:  # the description starts with the hostile text (stripped, as every description is)
        value = chosen[r["*InvoiceNumber"]].strip()
        assert r["*Description"].startswith("'" + value) or r["*Description"].startswith("Discount")
    assert any(r["POAddressLine1"].startswith("'") for r in rows)
    # INV-000002's discount lines: negative amounts written as plain numbers
    discounts = [r for r in rows if r["*Description"].startswith("Discount")]
    assert {(r["*UnitAmount"], r["TaxAmount"]) for r in discounts} == {("-100.00", "-20.00"), ("-10.00", "-2.00")}


def test_quickbooks_export_is_inert_and_keeps_the_text(billed: Billed):
    chosen = hostile_invoices(billed)
    (path,) = (billed.out / "exports").glob("quickbooks-invoices-*.csv")
    rows = read(path)
    assert_inert(rows, QBO_NUMBERS)
    assert {r["InvoiceNo"]: unquoted(r["Customer"]) for r in rows} == chosen
    assert {r["ItemAmount"] for r in rows if r["ItemDescription"].startswith("Discount")} == {"-100.00", "-10.00"}
    for r in rows:  # quantity x rate is still the amount: the numbers were not touched
        assert Decimal(r["ItemQuantity"]) * Decimal(r["ItemRate"]) == Decimal(r["ItemAmount"])


# ---------------------------------------------------------------- post charge: refunds to transfer


def test_refunds_list_is_inert_and_keeps_the_text(billed: Billed):
    invoice = next(i for i in billed.invoices() if i.number == "INV-000004")  # no mandate: refunded by transfer
    notes = [credit_note(billed.out, invoice, seq=k + 1, draft=dataclasses.replace(invoice.draft, customer_name=value))
             for k, value in enumerate(HOSTILE)]
    billed.post(("charge",), invoices=notes)
    (path,) = (billed.out / "exports").glob("refunds-to-transfer-*.csv")
    rows = read(path)
    assert_inert(rows, {"Amount"})
    assert [unquoted(r["Customer"]) for r in rows] == HOSTILE
    assert {r["Amount"] for r in rows} == {f"{invoice.draft.total:.2f}"}


# ---------------------------------------------------------------- usage reconciliation (Partner Center)

RECONCILIATION_NUMBERS = {"row", "Quantity", "EffectiveUnitPrice", "PCToBCExchangeRate", "BillingPreTaxTotal",
                          "Imported Cost", "Difference"}


def test_usage_reconciliation_rows_are_inert_and_keep_the_meter_names(usage_billed):
    folder, tenants, out = usage_billed
    path = folder / "usage-2026-10.csv"
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    mine = [r for r in rows[1:] if r[rows[0].index("CustomerId")] == tenants[0].customer_id]
    for k, r in enumerate(mine):  # MeterName and ResourceGroup as Partner Center could send them
        r[rows[0].index("MeterName")] = HOSTILE[k % len(HOSTILE)]
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)
    _tamper(path, tenants[0].customer_id, cents(_imported(path, tenants[0].customer_id) * Decimal("0.03")))
    assert run(folder, out) == 1
    (written,) = (out / "reconciliation").glob("*.csv")
    found = read(written)
    assert_inert(found, RECONCILIATION_NUMBERS)
    assert [unquoted(r["MeterName"]) for r in found] == [HOSTILE[k % len(HOSTILE)] for k in range(len(mine))]
    assert any(Decimal(r["Difference"]) < 0 for r in found)  # negative differences, written as plain numbers
    assert all(not r["Difference"].startswith("'") for r in found)


def test_through_the_command_line_the_exports_are_inert(tmp_path: Path):
    """A customer and a product named as an attacker would, billed and synced by `run --post-tasks sync`."""
    from billing_batch import cli
    from billing_batch.post.sync import QBO_NUMBERS, XERO_NUMBERS
    from workbooks import contract, customer, settings, subscription, write_book

    book = write_book(tmp_path / "billing.xlsx", {
        # (openpyxl would write a text starting with = as a formula: the reader refuses those, BB013)
        "Customers": [customer("CUST-1", Name=HOSTILE[3], Address=HOSTILE[1]), customer("CUST-2", Name=HOSTILE[2])],
        "Contracts": [contract("CTR-1", "CUST-1"), contract("CTR-2", "CUST-2")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 2, 50, Description=HOSTILE[1]),
                          subscription("SUB-2", "CTR-2", 1, 30, Description=HOSTILE[4])],
        "Products": [{"Product": "Platform", "Account Code": "4000", "Tax Type": "Tax Exempt"}],
        "Settings": settings(),
    }, headers={"Products": ["Product", "Account Code", "Tax Type"]})
    out = tmp_path / "out"
    assert cli.main(["run", "--input", str(book), "--output", str(out), "--as-of", "2026-02-02", "--jobs", "1",
                     "--post-tasks", "sync"]) == 0
    (xero,) = (out / "exports").glob("xero-sales-invoices-*.csv")
    (qbo,) = (out / "exports").glob("quickbooks-invoices-*.csv")
    assert_inert(read(xero), XERO_NUMBERS)
    assert_inert(read(qbo), QBO_NUMBERS)
    assert {unquoted(r["*ContactName"]) for r in read(xero)} == {HOSTILE[3], HOSTILE[2]}
