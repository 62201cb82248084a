"""Mid-term changes billed on the next invoice, through the real command line: a change to a
cycle already invoiced becomes an Adjustment line that names the invoice it corrects."""
from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from billing_batch.documents.invoice_view import invoice_view
from billing_batch.ledger.store import Ledger
from test_end_to_end import bill, pdf_text, run_cli, sheet_rows
from workbooks import contract, customer, settings, subscription, usage, write_book

CENT = Decimal("0.01")
SEATS = {"Product": "Seats", "Description": "User seats"}


def prorated(quantity, price, months, days, full_days) -> Decimal:
    """The proration rule: quantity x monthly price x months x active days / days of the full cycle."""
    return (Decimal(quantity) * Decimal(price) * months * days / full_days).quantize(CENT, ROUND_HALF_UP)


def book(path: Path, subscriptions: list[dict], usage_rows=(), frequency="Monthly", **setting) -> Path:
    """CTR-1: Advance, offset 0, from 2026-01-01."""
    return write_book(path, {
        "Customers": [customer("CUST-1")],
        "Contracts": [contract("CTR-1", "CUST-1", date(2026, 1, 1), **{
            "Billing Policy": "Advance", "Billing Offset (Days)": 0, "Billing Frequency": frequency})],
        "Subscriptions": subscriptions,
        "Usage": list(usage_rows),
        "Settings": settings(**setting),
    })


def lines(out: Path, number: str) -> list[dict]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(
            "SELECT kind, product, period_start, period_end, quantity, unit_price, amount, corrects "
            "FROM invoice_lines WHERE number = ? ORDER BY line", (number,))]


def invoices(out: Path) -> list[dict]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT number, cycle_start, total, change_log FROM invoices ORDER BY seq")]


def adjustments(out: Path, number: str) -> list[dict]:
    return [line for line in lines(out, number) if line["kind"] == "Adjustment"]


def ok(result) -> None:
    assert result.returncode == 0, result.stdout + result.stderr


def ten_seats(**kw) -> dict:
    return subscription("SUB-1", "CTR-1", 10, 10, **SEATS, **kw)


def test_seats_added_mid_cycle_are_billed_on_the_next_invoice(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    assert [i["number"] for i in invoices(out)] == ["INV-000001"]

    book(path, [ten_seats(), subscription("SUB-2", "CTR-1", 5, 10, **SEATS, **{"Start Date": date(2026, 1, 15)})])
    ok(bill(path, out, "2026-02-01"))
    expected = prorated(5, 10, 1, (date(2026, 1, 31) - date(2026, 1, 15)).days + 1, 31)
    assert expected == Decimal("27.42")  # the figure, from the rule
    [adjustment] = adjustments(out, "INV-000002")
    assert Decimal(adjustment["amount"]) == expected
    assert adjustment["corrects"] == "INV-000001"
    assert (adjustment["period_start"], adjustment["period_end"]) == ("2026-01-15", "2026-01-31")
    assert Decimal(adjustment["quantity"]) == 5 and Decimal(adjustment["unit_price"]) == 10
    feb = [line for line in lines(out, "INV-000002") if line["kind"] == "Recurring"]
    assert sum(Decimal(line["amount"]) for line in feb) == 150
    [inv2] = [i for i in invoices(out) if i["number"] == "INV-000002"]
    assert Decimal(inv2["total"]) == 150 + expected

    text = pdf_text(out / "invoices" / "INV-000002.pdf")
    assert "Adjustment to INV-000001" in text and "17 days" in text and f"{expected}" in text
    listed = [r for r in sheet_rows(out / "billing_schedules.xlsx", "Invoice Lines") if r["Kind"] == "Adjustment"]
    assert [(r["Invoice Number"], r["Corrects"]) for r in listed] == [("INV-000002", "INV-000001")]

    # In the customer's language: the line's texts are translated.
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        [invoice] = [i for i in ledger.invoices() if i.number == "INV-000002"]
    german = [line["description"] for line in invoice_view(replace(invoice, locale="de_DE"))["lines"]]
    assert "Anpassung zu Rechnung INV-000001 – User seats (17 Tage)" in german

    # A rerun bills nothing, and the next month no adjustment again.
    ok(bill(path, out, "2026-02-01"))
    ok(bill(path, out, "2026-03-01"))
    assert len(invoices(out)) == 3 and adjustments(out, "INV-000003") == []


def test_a_cycle_credited_by_hand_is_not_billed_again_through_its_adjustments(tmp_path: Path):
    """January is billed, then adjusted on February's invoice, then its invoice credited in full by hand:
    the credit is deliberate, so March's invoice bills March and nothing of January."""
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    book(path, [ten_seats(), subscription("SUB-2", "CTR-1", 5, 10, **SEATS, **{"Start Date": date(2026, 1, 15)})])
    ok(bill(path, out, "2026-02-01"))
    ok(run_cli("credit", "--input", str(path), "--output", str(out), "--as-of", "2026-02-10", "--jobs", "1",
               "--invoice", "INV-000001", "--reason", "Cancelled"))
    ok(bill(path, out, "2026-03-01"))
    [march] = [i for i in invoices(out) if i["cycle_start"] == "2026-03-01"]
    assert adjustments(out, march["number"]) == [] and Decimal(march["total"]) == 150


def test_seats_removed_mid_cycle_are_credited_on_the_next_invoice(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    # from 2026-01-15 four seats instead of ten
    book(path, [ten_seats(**{"End Date": date(2026, 1, 14)}),
                subscription("SUB-2", "CTR-1", 4, 10, **SEATS, **{"Start Date": date(2026, 1, 15)})])
    ok(bill(path, out, "2026-02-01"))
    [removed] = [line for line in adjustments(out, "INV-000002") if Decimal(line["amount"]) < 0]
    credit = Decimal(100) - prorated(10, 10, 1, 14, 31)
    assert Decimal(removed["amount"]) == -credit and removed["corrects"] == "INV-000001"
    assert (removed["period_start"], removed["period_end"], Decimal(removed["quantity"])) == (
        "2026-01-15", "2026-01-31", -10)  # the 17 days no longer billed: taken back, so 10 x price x days is the credit
    total = sum(Decimal(line["amount"]) for line in adjustments(out, "INV-000002"))
    assert total == prorated(4, 10, 1, 17, 31) - credit
    [inv2] = [i for i in invoices(out) if i["number"] == "INV-000002"]
    assert Decimal(inv2["total"]) == 40 + total


def test_generate_of_the_next_cycle_carries_the_adjustment(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    book(path, [ten_seats(), subscription("SUB-2", "CTR-1", 1, 10, **SEATS, **{"Start Date": date(2026, 1, 31)})])
    ok(run_cli("generate", "--input", str(path), "--output", str(out), "--as-of", "2026-01-20", "--contract", "CTR-1",
               "--allow-future", "--yes", "--no-preview"))
    [adjustment] = adjustments(out, "INV-000002")
    assert Decimal(adjustment["amount"]) == prorated(1, 10, 1, 1, 31) and adjustment["corrects"] == "INV-000001"
    ok(bill(path, out, "2026-02-01"))  # February is billed: nothing more
    assert len(invoices(out)) == 2


def test_a_price_corrected_after_billing_is_adjusted(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    book(path, [subscription("SUB-1", "CTR-1", 10, Decimal("12.50"), **SEATS)])
    ok(bill(path, out, "2026-02-01"))
    [adjustment] = adjustments(out, "INV-000002")
    assert Decimal(adjustment["amount"]) == 10 * (Decimal("12.50") - 10)
    assert Decimal(adjustment["unit_price"]) == Decimal("2.50") and Decimal(adjustment["quantity"]) == 10
    assert adjustment["corrects"] == "INV-000001"


def test_a_next_invoice_below_zero_is_a_credit_note_and_settles_its_cycle(tmp_path: Path):
    """A price cut to a tenth after January was billed: February's seats bill less than the credit
    January is owed, so February is issued as CN-000001 (amounts stored as credited); March bills
    its seats, and nothing of January or February again."""
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    book(path, [subscription("SUB-1", "CTR-1", 10, 1, **SEATS)])
    ok(bill(path, out, "2026-02-01"))
    with sqlite3.connect(out / "ledger.sqlite") as db:
        docs = db.execute("SELECT number, doc_type, cycle_start, total, credits FROM invoices ORDER BY seq").fetchall()
    owed = 10 * 1 - (100 - 10 * 1)  # February's seats less what January is owed back
    assert docs[1][:3] == ("CN-000001", "Credit Note", "2026-02-01") and docs[1][4] is None
    assert Decimal(docs[1][3]) == -owed
    [adjustment] = adjustments(out, "CN-000001")
    assert Decimal(adjustment["amount"]) == 100 - 10 and adjustment["corrects"] == "INV-000001"  # credited, as stored
    assert "Credit note" in pdf_text(out / "invoices" / "CN-000001.pdf")
    ok(bill(path, out, "2026-02-01"))  # a rerun bills nothing
    ok(bill(path, out, "2026-03-01"))
    assert [(i["number"], Decimal(i["total"])) for i in invoices(out)][2:] == [("INV-000002", Decimal(10))]


def test_a_revised_usage_row_is_adjusted(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()]), out, "2026-01-01"))
    ok(bill(book(path, [ten_seats()], [usage("U-1", "CTR-1", date(2026, 1, 10), 10, 2)]), out, "2026-02-01"))
    billed = [line for line in lines(out, "INV-000002") if line["kind"] == "Usage"]
    assert sum(Decimal(line["amount"]) for line in billed) == 20
    # the provider revises the row to 13 units, then withdraws it
    book(path, [ten_seats()], [usage("U-1", "CTR-1", date(2026, 1, 10), 13, 2)])
    ok(bill(path, out, "2026-03-01"))
    [adjustment] = adjustments(out, "INV-000003")
    assert Decimal(adjustment["amount"]) == 3 * 2 and adjustment["corrects"] == "INV-000002"
    book(path, [ten_seats()], [])
    ok(bill(path, out, "2026-04-01"))
    [withdrawn] = adjustments(out, "INV-000004")
    assert Decimal(withdrawn["amount"]) == -13 * 2 and withdrawn["corrects"] == "INV-000002"


def test_flag_only_bills_nothing_and_lists_the_invoice(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(book(path, [ten_seats()], **{"Mid-Term Changes": "Flag Only"}), out, "2026-01-01"))
    book(path, [subscription("SUB-1", "CTR-1", 10, 11, **SEATS)], **{"Mid-Term Changes": "Flag Only"})
    result = bill(path, out, "2026-02-01")
    ok(result)
    assert adjustments(out, "INV-000002") == []
    rows = sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
    [january] = [r for r in rows if r["Resulting Invoice"] == "INV-000001"]
    assert "generate --replace" in (january["Message"] or "")


def test_a_setting_not_known_is_a_problem(tmp_path: Path):
    result = run_cli("check", "--input", str(book(tmp_path / "b.xlsx", [ten_seats()], **{"Mid-Term Changes": "Later"})))
    assert result.returncode != 0 and "Mid-Term Changes" in result.stdout and "Flag Only" in result.stdout


def quarterly(path: Path, price, **setting) -> Path:
    return book(path, [subscription("SUB-1", "CTR-1", 10, price, **SEATS)], frequency="Quarterly", **setting)


def test_generate_adjust_bills_a_quarterly_contract_now_on_an_invoice_of_its_own(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    ok(bill(quarterly(path, 10), out, "2026-01-01"))
    quarterly(path, 11)
    ok(bill(path, out, "2026-02-01"))  # the next invoice is April's: nothing is billed yet
    assert len(invoices(out)) == 1
    rows = sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
    assert any("adjustment of 30" in (r["Message"] or "") for r in rows if r["Resulting Invoice"] == "INV-000001")

    result = run_cli("generate", "--input", str(path), "--output", str(out), "--as-of", "2026-02-01",
                     "--contract", "CTR-1", "--adjust", "--yes", "--no-preview")
    ok(result)
    [first, change_log] = invoices(out)
    assert change_log["change_log"] == 1 and Decimal(change_log["total"]) == 10 * 1 * 3
    [adjustment] = adjustments(out, change_log["number"])
    assert adjustment["corrects"] == "INV-000001"
    assert "Adjustment to INV-000001" in pdf_text(out / "invoices" / f"{change_log['number']}.pdf")

    again = run_cli("generate", "--input", str(path), "--output", str(out), "--as-of", "2026-02-02",
                    "--contract", "CTR-1", "--adjust", "--yes", "--no-preview")
    assert "no adjustment is pending" in again.stdout and len(invoices(out)) == 2
    ok(bill(path, out, "2026-04-01"))  # April's invoice: the quarter itself, no adjustment twice
    [*_, april] = invoices(out)
    assert april["cycle_start"] == "2026-04-01" and adjustments(out, april["number"]) == []


def test_monthly_adjustment_invoices_for_a_quarterly_contract(tmp_path: Path):
    path, out = tmp_path / "b.xlsx", tmp_path / "out"
    monthly = {"Adjustment Invoices": "Monthly"}
    ok(bill(quarterly(path, 10, **monthly), out, "2026-01-01"))
    quarterly(path, 11, **monthly)
    ok(bill(path, out, "2026-02-01"))
    [_, change_log] = invoices(out)
    assert change_log["change_log"] == 1 and Decimal(change_log["total"]) == 30
    # a second change the same month waits for next month's run
    quarterly(path, 12, **monthly)
    ok(bill(path, out, "2026-02-15"))
    assert len(invoices(out)) == 2
    ok(bill(path, out, "2026-03-01"))
    [*_, march] = invoices(out)
    assert march["change_log"] == 1 and Decimal(march["total"]) == 30
    ok(bill(path, out, "2026-03-02"))
    assert len(invoices(out)) == 3
