"""Usage at scale: summarised usage lines, the usage detail workbook, and the closing invoice of an
ended Advance contract. Real workbooks in, the real command line, real PDFs, ledger and workbooks out."""
from __future__ import annotations

import email
import email.policy
import sqlite3
from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D
from pathlib import Path

import openpyxl
from hypothesis import given, settings as hsettings
from hypothesis import strategies as st
from pypdf import PdfReader

from billing_batch import cli
from billing_batch.ledger.store import Ledger
from billing_batch.model import Contract, Draft, Frequency, Invoice, Party, Policy, RunType, Source, Usage
from billing_batch.money import round_money
from billing_batch.engine.pricing import summary_lines, usage_line
from billing_batch.documents.usage_book import SUBTOTAL, rows as detail_rows
from workbooks import HEADERS, contract, customer, settings, subscription, usage, write_book

SRC = Source("t.xlsx", "Usage", 2)
DRAFT = Draft("C-1", "CU-1", "Customer", date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 2), "USD", (),
              D(0), D(0), D(0), D(0))
USAGE_HEADERS = {"Usage": [*HEADERS["Usage"], "Meter Name", "Resource Group"]}


def run(book: Path, out: Path, as_of: str, *extra: str) -> int:
    return cli.main(["run", "--input", str(book), "--output", str(out), "--as-of", as_of, "--jobs", "1", *extra])


def meter(uid: str, day: int, quantity, price, product="Compute", description="VM hours", name="D2s", group="rg-a"):
    return usage(uid, "CTR-1", date(2026, 1, day), quantity, price, Product=product, Description=description,
                 **{"Meter Name": name, "Resource Group": group})


ROWS = [  # CTR-1's January usage: three Compute rows at one price, one at another, two Storage rows
    meter("U-1", 3, D("1.5"), D("0.0125")), meter("U-2", 9, D("2.5"), D("0.0125"), group="rg-b"),
    meter("U-3", 20, 7, D("0.0125"), name="D4s"), meter("U-4", 21, 1, D("0.099")),
    meter("U-5", 5, 100, D("0.0021"), "Storage", "GB-month", "LRS"), meter("U-6", 30, 33, D("0.0021"), "Storage",
                                                                             "GB-month", "LRS"),
]


def usage_book(tmp_path: Path, contracts=None, extra_settings=None, rows=ROWS) -> Path:
    sheets = {
        "Customers": [customer("CUST-1"), customer("CUST-2", **{"Tax Rate": 0.2})],
        "Contracts": contracts or [contract("CTR-1", "CUST-1"), contract("CTR-2", "CUST-2")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 2, 50), subscription("SUB-2", "CTR-2", 1, 1000)],
        "Usage": rows,
        "Settings": settings(**(extra_settings or {})),
    }
    headers = {**USAGE_HEADERS, "Contracts": [*HEADERS["Contracts"], "Usage Lines", "Usage Group By"]}
    return write_book(tmp_path / "billing.xlsx", sheets, headers)


def invoices(out: Path) -> list[Invoice]:
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        return ledger.invoices()


def sheet(path: Path, name: str) -> list[dict]:
    rows = list(openpyxl.load_workbook(path, data_only=True)[name].iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def usage_lines(invoice: Invoice) -> list:
    return [line for line in invoice.draft.lines if line.usage_rows]


def test_usage_is_summarised_per_product_description_and_price_with_a_detail_workbook(tmp_path: Path):
    out = tmp_path / "out"
    book = usage_book(tmp_path, extra_settings={"Company Email": "billing@acme.example"})
    assert run(book, out, "2026-02-02", "--post-tasks", "send", "--jobs", "2") == 0  # written beside rendering
    first = invoices(out)[0]
    got = [(ln.product, ln.description, ln.period_start.day, ln.period_end.day, ln.quantity, ln.unit_price, ln.amount)
           for ln in usage_lines(first)]
    # 1.5 + 2.5 + 7 = 11 hours x 0.0125 = 0.1375 -> 0.14 once (row by row: 0.02 + 0.03 + 0.09 = 0.14);
    # 133 GB x 0.0021 = 0.2793 -> 0.28 (row by row 0.21 + 0.07 = 0.28); 1 x 0.099 -> 0.10
    assert got == [("Compute", "VM hours", 3, 20, D(11), D("0.0125"), D("0.14")),
                   ("Compute", "VM hours", 21, 21, D(1), D("0.099"), D("0.10")),
                   ("Storage", "GB-month", 5, 30, D(133), D("0.0021"), D("0.28"))]
    assert first.draft.subtotal == D(100) + D("0.52")

    detail = out / "invoices" / "INV-000001-usage.xlsx"
    rows = sheet(detail, "Usage")
    assert [r["Usage ID"] for r in rows] == ["U-1", "U-2", "U-3", SUBTOTAL, "U-4", SUBTOTAL, "U-5", "U-6", SUBTOTAL]
    assert "Meter Name" not in rows[0]  # the default grouping shows Product and Description only
    for n, line in enumerate(first.draft.lines, start=1):
        if not line.usage_rows:
            continue
        members = [r for r in rows if r["Invoice Line"] == n and r["Usage ID"] != SUBTOTAL]
        subtotal, = [r for r in rows if r["Invoice Line"] == n and r["Usage ID"] == SUBTOTAL]
        exact = sum(D(str(r["Quantity"])) * D(str(r["Unit Price"])) for r in members)
        assert D(str(subtotal["Amount"])) == exact == sum(D(str(r["Amount"])) for r in members)
        assert round_money(exact, "USD") == line.amount == D(str(subtotal["Invoice Amount"]))

    text = "\n".join(page.extract_text() for page in PdfReader(out / "invoices" / "INV-000001.pdf").pages)
    assert "Usage details: INV-000001-usage.xlsx" in text
    assert "Usage details" not in PdfReader(out / "invoices" / "INV-000002.pdf").pages[0].extract_text()
    assert not (out / "invoices" / "INV-000002-usage.xlsx").exists()  # CTR-2 has no usage

    listed = openpyxl.load_workbook(out / "billing_schedules.xlsx")["Invoices"]
    header = [c.value for c in listed[1]]
    cell = listed.cell(2, header.index("Usage Details") + 1).value
    assert cell == '=HYPERLINK("invoices/INV-000001-usage.xlsx","INV-000001-usage.xlsx")'
    assert listed.cell(3, header.index("Usage Details") + 1).value is None
    review = next((out / "runs").glob("*/review.html")).read_text()
    assert 'href="../../invoices/INV-000001-usage.xlsx"' in review

    msg = email.message_from_bytes((out / "outbox" / "INV-000001.eml").read_bytes(), policy=email.policy.default)
    attached = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}
    assert attached["INV-000001-usage.xlsx"] == detail.read_bytes()
    assert "INV-000001.pdf" in attached

    detail.unlink()  # an output like a PDF: made again from the ledger alone
    assert run(book, out, "2026-02-02") == 0
    assert sheet(detail, "Usage") == rows


def test_detail_mode_bills_exactly_one_line_per_row_as_before(tmp_path: Path):
    out = tmp_path / "out"
    assert run(usage_book(tmp_path, extra_settings={"Usage Lines": "Detail"}), out, "2026-02-02") == 0
    first = invoices(out)[0]
    expected = sorted(  # row by row in date order, each rounded half-up to cents: what release 0.1.0 billed
        (r["Date"], r["Usage ID"], r["Product"], r["Description"], D(str(r["Quantity"])), D(str(r["Unit Price"])),
         (D(str(r["Quantity"])) * D(str(r["Unit Price"]))).quantize(D("0.01"), rounding=ROUND_HALF_UP))
        for r in ROWS)
    got = [(ln.period_start, ln.usage_id, ln.product, ln.description, ln.quantity, ln.unit_price, ln.amount)
           for ln in usage_lines(first)]
    assert got == expected
    assert first.draft.subtotal == D(100) + sum(e[-1] for e in expected)
    assert first.draft.total == first.draft.subtotal  # CUST-1 pays no tax
    # the detail workbook still lists every row, one subtotal per line
    assert [r["Usage ID"] for r in sheet(out / "invoices" / "INV-000001-usage.xlsx", "Usage")].count(SUBTOTAL) == 6


def test_group_by_any_usage_column_with_a_contract_override(tmp_path: Path):
    contracts = [contract("CTR-1", "CUST-1", **{"Usage Group By": "meter name, Resource Group"}),
                 contract("CTR-2", "CUST-2", **{"Usage Lines": "Detail"})]
    rows = [*ROWS, usage("V-1", "CTR-2", date(2026, 1, 4), 1, 1), usage("V-2", "CTR-2", date(2026, 1, 5), 1, 1)]
    out = tmp_path / "out"
    assert run(usage_book(tmp_path, contracts, {"Usage Group By": "Product"}, rows), out, "2026-02-02") == 0
    one, two = invoices(out)
    # Unit Price always splits: D2s in rg-a at two prices; Product and Description are not grouped by
    assert [(ln.product, ln.description, ln.quantity, ln.unit_price) for ln in usage_lines(one)] == [
        ("D2s", "rg-a", D("1.5"), D("0.0125")), ("D2s", "rg-a", D(1), D("0.099")),
        ("D2s", "rg-b", D("2.5"), D("0.0125")), ("D4s", "rg-a", D(7), D("0.0125")),
        ("LRS", "rg-a", D(133), D("0.0021"))]
    assert [ln.usage_id for ln in usage_lines(two)] == ["V-1", "V-2"]  # Detail for CTR-2
    detail = sheet(out / "invoices" / "INV-000001-usage.xlsx", "Usage")
    assert {r["Meter Name"] for r in detail if r["Usage ID"] != SUBTOTAL} == {"D2s", "D4s", "LRS"}


def test_an_unknown_group_by_column_in_the_settings_stops_the_run(tmp_path: Path, capsys):
    out = tmp_path / "out"
    assert run(usage_book(tmp_path, extra_settings={"Usage Group By": "Meter Name, Region"}), out, "2026-02-02") == 2
    said = " ".join(capsys.readouterr().out.split())
    assert "BB201" in said and "Region" in said and "Meter Name" in said  # the known columns are listed
    assert not out.exists() or not list(out.glob("invoices/*.pdf"))


@hsettings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["A", "B", "C"]), st.sampled_from(["x", "y"]),
                          st.decimals(0, 1000, places=3), st.sampled_from([D("0.0125"), D("0.33"), D(3)]),
                          st.integers(0, 30)), max_size=40),
       st.sampled_from(["JPY", "USD", "BHD"]))
def test_each_summary_line_is_its_rows_summed_then_rounded_once(rows, currency):
    con = Contract("C-1", "CU-1", date(2026, 1, 1), None, Frequency.MONTHLY, Policy.ARREARS, 1, currency, 30,
                   D(0), True, SRC)
    usage_rows = [Usage(f"U-{i}", "C-1", date(2026, 1, 1) + timedelta(days=day), product, "", q, p, SRC,
                        (("Meter", meter_name),))
                  for i, (product, meter_name, q, p, day) in enumerate(rows)]
    for group_by in (("Product", "Description"), ("Meter",), ("Product", "Meter")):
        contract_ = replace(con, usage_group_by=group_by)
        lines = summary_lines(usage_rows, contract_)
        billed = [r.usage_id for line in lines for r in line.usage_rows]
        assert sorted(billed) == sorted(u.usage_id for u in usage_rows)  # every row on exactly one line
        for line in lines:
            exact = sum((r.quantity * r.unit_price for r in line.usage_rows), D(0))
            assert line.amount == round_money(exact, currency)
            assert {r.unit_price for r in line.usage_rows} == {line.unit_price}
            assert len({r.groups for r in line.usage_rows}) == 1
        invoice = Invoice("INV-1", replace(DRAFT, lines=tuple(lines), currency=currency), date(2026, 2, 2),
                          date(2026, 3, 2), RunType.AUTOMATIC, Party("Seller"), Party("Buyer"), "en_US")
        for n, line in enumerate(lines, start=1):
            subtotal, = [r for r in detail_rows(invoice) if r[0] == n and r[1] == SUBTOTAL]
            assert subtotal[-2] == sum((r.quantity * r.unit_price for r in line.usage_rows), D(0))
    detail = [usage_line(u, con) for u in usage_rows]
    assert [ln.amount for ln in detail] == [round_money(u.quantity * u.unit_price, currency) for u in usage_rows]


def test_the_last_advance_cycle_usage_is_billed_on_a_closing_invoice(tmp_path: Path):
    contracts = [contract("CTR-1", "CUST-1", **{"Billing Policy": "Advance", "End Date": date(2026, 2, 28),
                                                "Billing Offset (Days)": 0})]
    rows = [usage("U-1", "CTR-1", date(2026, 1, 20), 4, 5), usage("U-2", "CTR-1", date(2026, 2, 10), 3, 5),
            usage("U-3", "CTR-1", date(2026, 2, 28), 1, 5)]
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer("CUST-1")], "Contracts": contracts,
        "Subscriptions": [subscription("SUB-1", "CTR-1", 1, 100)], "Usage": rows, "Settings": settings()})
    out = tmp_path / "out"
    assert run(book, out, "2026-02-28") == 0
    assert run(book, out, "2026-03-01") == 0  # End Date + 1 + offset 0
    assert run(book, out, "2026-06-01") == 0  # nothing more, ever
    jan, feb, closing = invoices(out)
    assert [r.usage_id for ln in feb.draft.lines for r in ln.usage_rows] == ["U-1"]
    assert closing.draft.cycle_start == closing.draft.cycle_end == date(2026, 3, 1)
    assert [(ln.kind.value, ln.quantity, ln.amount) for ln in closing.draft.lines] == [("Usage", D(4), D(20))]
    assert (closing.invoice_date, closing.draft.total) == (date(2026, 3, 1), D(20))
    schedule = sheet(out / "billing_schedules.xlsx", "Billing Schedules")
    assert [(r["Schedule ID"], r["Status Reason"], r["Resulting Invoice"]) for r in schedule] == [
        ("CTR-1/2026-01-01", "Invoiced", jan.number), ("CTR-1/2026-02-01", "Invoiced", feb.number),
        ("CTR-1/2026-03-01", "Invoiced", closing.number)]
    with sqlite3.connect(out / "ledger.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM usage_rows").fetchone() == (3,)
