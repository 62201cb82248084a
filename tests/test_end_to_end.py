"""The batch through its real command line: a workbook in, PDFs, a ledger and a schedule book out."""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from billing_batch.documents import einvoice_check
from billing_batch.ledger.store import Ledger
from workbooks import contract, customer, settings, simple_book, subscription, usage, write_book


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True)


def bill(book: Path, out: Path, as_of: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("run", "--input", str(book), "--output", str(out), "--as-of", as_of, "--jobs", "2", *extra)


def sheet_rows(path: Path, sheet: str) -> list[dict]:
    wb = openpyxl.load_workbook(path, data_only=True)
    rows = list(wb[sheet].iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def pdf_text(path: Path) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(path).pages)


def ledger_numbers(out: Path) -> list[str]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return [n for (n,) in db.execute("SELECT number FROM invoices ORDER BY seq")]


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return simple_book(tmp_path / "billing.xlsx", Usage=[usage("USG-1", "CTR-1", date(2026, 1, 15), 10, 2)])


def test_catch_up_run_bills_three_months_in_number_order(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    result = bill(book, out, "2026-04-02")
    assert result.returncode == 0, result.stdout + result.stderr

    invoices = sheet_rows(out / "billing_schedules.xlsx", "Invoices")
    # numbered by scheduled date, then contract, then cycle start
    assert [(i["Invoice Number"], i["Contract ID"], i["Cycle Start"].date()) for i in invoices] == [
        ("INV-000001", "CTR-1", date(2026, 1, 1)),
        ("INV-000002", "CTR-2", date(2026, 1, 1)),
        ("INV-000003", "CTR-1", date(2026, 2, 1)),
        ("INV-000004", "CTR-2", date(2026, 2, 1)),
        ("INV-000005", "CTR-1", date(2026, 3, 1)),
        ("INV-000006", "CTR-2", date(2026, 3, 1)),
    ]
    first = invoices[0]
    # 2 seats x 50.00 + usage 10 x 2.00, no tax
    assert (first["Subtotal"], first["Tax"], first["Total"]) == (120, 0, 120)
    assert first["Invoice Date"].date() == date(2026, 4, 2)
    assert first["Due Date"].date() == date(2026, 5, 2)  # 30 days' terms
    assert first["PDF"] == "invoices/INV-000001.pdf"
    # 1,000.00 plus 20% tax
    assert (invoices[1]["Subtotal"], invoices[1]["Tax"], invoices[1]["Total"]) == (1000, 200, 1200)

    lines = sheet_rows(out / "billing_schedules.xlsx", "Invoice Lines")
    assert [(l["Kind"], l["Amount"]) for l in lines if l["Invoice Number"] == "INV-000001"] == [
        ("Recurring", 100), ("Usage", 20)]

    text = pdf_text(out / "invoices" / "INV-000002.pdf")
    for expected in ("INV-000002", "Customer CUST-2", "Acme Billing Ltd", "$1,200.00", "$200.00"):
        assert expected in text
    # the summary lists each document with its customer and total, and names the folder of the PDFs
    row = next(line for line in result.stdout.splitlines() if "INV-000001" in line)
    assert "Customer CUST-1" in row and "Invoice" in row and "$120.00" in row
    assert f"PDFs: {out / 'invoices'}" in result.stdout.replace("\n", "")


def test_schedule_sheet_marks_invoiced_cycles_and_lists_the_year_ahead(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    bill(book, out, "2026-04-02")
    rows = [r for r in sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules") if r["Contract ID"] == "CTR-1"]
    jan, feb, mar, apr = rows[:4]
    assert (jan["Schedule ID"], jan["Cycle End"].date(), jan["Scheduled Date"].date()) == (
        "CTR-1/2026-01-01", date(2026, 1, 31), date(2026, 2, 2))
    assert (jan["Status"], jan["Status Reason"], jan["Resulting Invoice"], jan["Run Type"]) == (
        "Inactive", "Invoiced", "INV-000001", "Automatic")
    assert jan["Run Date"].date() == date(2026, 4, 2)
    assert (apr["Status"], apr["Status Reason"], apr["Resulting Invoice"], apr["Run Type"]) == (
        "Active", "Pending", None, None)
    # started by 2026-04-02 (Jan..Apr), then every cycle scheduled by 2027-04-02 (May 2026..Mar 2027)
    assert rows[-1]["Cycle Start"].date() == date(2027, 3, 1)
    assert len(rows) == 15
    formula = openpyxl.load_workbook(out / "billing_schedules.xlsx")["Billing Schedules"]["J2"].value
    assert formula == '=HYPERLINK("invoices/INV-000001.pdf","INV-000001")'


def test_rerun_bills_nothing_twice_and_late_usage_goes_on_the_next_invoice(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    bill(book, out, "2026-04-02")
    pdf_time = (out / "invoices" / "INV-000001.pdf").stat().st_mtime_ns

    again = bill(book, out, "2026-04-02")
    assert again.returncode == 0
    assert "No new invoice" in again.stdout
    assert ledger_numbers(out) == [f"INV-{n:06d}" for n in range(1, 7)]
    assert (out / "invoices" / "INV-000001.pdf").stat().st_mtime_ns == pdf_time  # not rendered again

    # Usage for February arrives after February was invoiced.
    simple_book(book, Usage=[usage("USG-1", "CTR-1", date(2026, 1, 15), 10, 2),
                             usage("USG-2", "CTR-1", date(2026, 2, 10), 5, 3)])
    later = bill(book, out, "2026-05-02")
    assert later.returncode == 0
    assert ledger_numbers(out) == [f"INV-{n:06d}" for n in range(1, 9)]
    lines = sheet_rows(out / "billing_schedules.xlsx", "Invoice Lines")
    late = [l for l in lines if l["Kind"] == "Usage" and l["Period Start"].date() == date(2026, 2, 10)]
    assert [(l["Invoice Number"], l["Amount"]) for l in late] == [("INV-000007", 15)]


def test_an_unchanged_rerun_leaves_the_schedule_book_as_it_is(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    schedule = out / "billing_schedules.xlsx"
    bill(book, out, "2026-04-02")
    written = schedule.stat().st_mtime_ns
    reviewed = [r["Invoice Number"] for r in sheet_rows(schedule, "Review")]
    assert reviewed == ledger_numbers(out) and len(reviewed) == 6

    assert bill(book, out, "2026-04-02").returncode == 0
    assert schedule.stat().st_mtime_ns == written  # nothing changed, nothing written
    assert [r["Invoice Number"] for r in sheet_rows(schedule, "Review")] == reviewed  # still the latest to review

    wb = openpyxl.load_workbook(schedule)
    wb["Billing Schedules"]["M2"] = "edited by hand"
    wb.save(schedule)
    assert bill(book, out, "2026-04-02").returncode == 0
    assert sheet_rows(schedule, "Billing Schedules")[0]["Message"] != "edited by hand"  # an output: made again

    assert bill(book, out, "2026-05-02").returncode == 0
    assert [r["Invoice Number"] for r in sheet_rows(schedule, "Review")] == ["INV-000007", "INV-000008"]


def test_a_deleted_pdf_is_made_again_from_the_ledger(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    bill(book, out, "2026-02-02")
    pdf = out / "invoices" / "INV-000001.pdf"
    before = pdf_text(pdf)
    pdf.unlink()
    assert bill(book, out, "2026-02-02").returncode == 0
    assert pdf_text(pdf) == before


def test_a_bad_row_sets_its_contract_aside_and_the_rest_is_billed(tmp_path: Path):
    book = write_book(tmp_path / "b.xlsx", {
        "Customers": [customer("CUST-1"), customer("CUST-2")],
        "Contracts": [contract("CTR-1", "CUST-1"), contract("CTR-2", "CUST-2"), contract("CTR-3", "CUST-9")],
        "Subscriptions": [subscription("SUB-1", "CTR-1"), subscription("SUB-2", "CTR-2", quantity=-3)],
        "Settings": settings(),
    })
    out = tmp_path / "out"
    result = bill(book, out, "2026-02-02")
    assert result.returncode == 1
    assert "b.xlsx > Subscriptions > row 3, column E (Quantity)" in result.stdout
    assert "BB109" in result.stdout and "BB101" in result.stdout
    assert ledger_numbers(out) == ["INV-000001"]
    rows = sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
    ctr2 = [r for r in rows if r["Contract ID"] == "CTR-2"]
    assert (ctr2[0]["Status"], ctr2[0]["Status Reason"]) == ("Active", "Error")
    assert "Quantity is negative" in ctr2[0]["Message"]
    assert ctr2[1]["Status Reason"] == "Pending"  # not due yet: no error to show
    assert [r["Status Reason"] for r in rows if r["Contract ID"] == "CTR-3"][0] == "Error"


def test_an_unusable_workbook_stops_before_anything_is_written(tmp_path: Path):
    book = write_book(tmp_path / "b.xlsx", {"Customers": [customer()], "Contracts": [contract()]})
    out = tmp_path / "out"
    result = bill(book, out, "2026-02-02")
    assert result.returncode == 2
    assert "BB002" in result.stdout and "Subscriptions" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    assert not out.exists()

    (tmp_path / "notes.xlsx").write_text("this is not a workbook")
    result = bill(tmp_path / "notes.xlsx", out, "2026-02-02")
    assert result.returncode == 2 and "BB001" in result.stdout


def test_a_lost_ledger_refuses_to_bill_again(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    bill(book, out, "2026-02-02")
    (out / "ledger.sqlite").unlink()
    result = bill(book, out, "2026-03-02")
    assert result.returncode == 2
    assert "--ledger" in result.stdout
    assert not (out / "ledger.sqlite").exists()


def test_a_due_cycle_with_nothing_to_bill_is_settled_without_an_invoice(tmp_path: Path):
    book = write_book(tmp_path / "b.xlsx", {
        "Customers": [customer()],
        "Contracts": [contract(start=date(2026, 1, 1))],
        "Subscriptions": [subscription(**{"Start Date": date(2026, 2, 1)})],
    })
    out = tmp_path / "out"
    assert bill(book, out, "2026-03-02").returncode == 0
    rows = sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
    assert [(r["Status"], r["Status Reason"], r["Resulting Invoice"]) for r in rows[:2]] == [
        ("Inactive", "Nothing to bill", None), ("Inactive", "Invoiced", "INV-000001")]


def test_the_sample_workbook_bills_cleanly(tmp_path: Path):
    sample = Path(__file__).parent.parent / "sample_data"
    out = tmp_path / "out"
    result = bill(sample, out, "2026-11-02")
    assert result.returncode == 0, result.stdout
    invoices = sheet_rows(out / "billing_schedules.xlsx", "Invoices")
    assert {i["Currency"] for i in invoices} >= {"USD", "EUR"}
    assert all((out / i["PDF"]).stat().st_size > 0 for i in invoices)
    wb = openpyxl.load_workbook(out / "billing_schedules.xlsx")
    assert wb.sheetnames == ["Billing Schedules", "Invoices", "Invoice Lines", "Review", "Seat Register"]
    assert isinstance(wb["Invoices"]["G2"].value, datetime)
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        issued = ledger.invoices()
    # usage is summarised: some line carries several rows, each in its invoice's usage workbook
    assert any(len(line.usage_rows) > 1 for i in issued for line in i.draft.lines)
    with_usage = [i for i in issued if i.usage_name]
    assert with_usage and all((out / i.usage_name).stat().st_size > 0 for i in with_usage)
    # its German and French customers get their invoices in their language (Customers: Language)
    languages = {c["Customer ID"]: c["Language"] for c in sheet_rows(sample / "billing.xlsx", "Customers")}
    assert {i.draft.customer_id: i.locale for i in issued if languages.get(i.draft.customer_id)} == {
        cid: lang for cid, lang in languages.items() if lang} != {}
    # a German business on Factur-X, a Belgian one on Peppol, a German public body on XRechnung: all pass the rules
    einvoices = {i.buyer.einvoice: i for i in issued if i.einvoice_name}
    assert set(einvoices) == {"Factur-X", "Peppol", "XRechnung"}
    for invoice in (i for i in issued if i.einvoice_name):
        assert einvoice_check.check_file(out / invoice.einvoice_name).errors == ()
    assert einvoice_check.check_file(out / einvoices["Factur-X"].pdf_name).errors == ()
