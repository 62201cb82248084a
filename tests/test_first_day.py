"""The first day on billing_batch: Billed Through says what an earlier system billed, and the
catch-up guard sets aside a contract that a run would bill for years at once."""
from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta

from test_end_to_end import bill, run_cli, sheet_rows
from workbooks import HEADERS, contract, customer, settings, subscription, usage, write_book

AS_OF = date(2026, 11, 2)
OLD_START = date(2020, 1, 1)
HEADERS_WITH_BILLED_THROUGH = {"Contracts": [*HEADERS["Contracts"], "Billed Through"]}
# a monthly contract in arrears bills a cycle the day after it ends: every cycle ending by 2026-10-31
DUE = relativedelta(date(2026, 11, 1), OLD_START)
DUE_CYCLES = DUE.years * 12 + DUE.months


def first_day_book(path: Path, billed_through=None, **setting) -> Path:
    """CTR-OLD, monthly since 2020, moved from another system; CTR-NEW, monthly since October 2026."""
    return write_book(path, {
        "Customers": [customer("CUST-1"), customer("CUST-2")],
        "Contracts": [contract("CTR-OLD", "CUST-1", OLD_START, **{"Billed Through": billed_through}),
                      contract("CTR-NEW", "CUST-2", date(2026, 10, 1))],
        "Subscriptions": [subscription("SUB-1", "CTR-OLD", 1, 100), subscription("SUB-2", "CTR-NEW", 2, 50)],
        "Usage": [usage("USG-1", "CTR-OLD", date(2026, 9, 15), 10, 1), usage("USG-2", "CTR-OLD", date(2026, 9, 30), 20, 1),
                  usage("USG-3", "CTR-OLD", date(2026, 10, 10), 30, 1)],
        "Settings": settings(**setting),
    }, HEADERS_WITH_BILLED_THROUGH)


def invoiced(out: Path) -> list[tuple[str, date]]:
    """(contract, cycle start) of every invoice in the ledger, in number order."""
    with sqlite3.connect(out / "ledger.sqlite") as db:
        numbers = [n for (n,) in db.execute("SELECT number FROM invoices ORDER BY seq")]
    listed = {i["Invoice Number"]: i for i in sheet_rows(out / "billing_schedules.xlsx", "Invoices")}
    return [(listed[n]["Contract ID"], listed[n]["Cycle Start"].date()) for n in numbers]


def schedule_of(out: Path, contract_id: str) -> list[dict]:
    return [r for r in sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules") if r["Contract ID"] == contract_id]


def test_years_of_cycles_set_the_contract_aside_and_the_rest_is_billed(tmp_path: Path):
    book, out = first_day_book(tmp_path / "b.xlsx"), tmp_path / "out"
    result = bill(book, out, AS_OF.isoformat())
    assert result.returncode == 1, result.stdout
    message = f"Contract CTR-OLD has {DUE_CYCLES} cycles due since {OLD_START}"
    assert message in result.stdout and DUE_CYCLES == 82
    assert "--allow-catch-up" in result.stdout and "Billed Through" in result.stdout
    assert "BB121" in result.stdout and "b.xlsx > Contracts > row 2" in result.stdout
    assert invoiced(out) == [("CTR-NEW", date(2026, 10, 1))]

    rows = schedule_of(out, "CTR-OLD")
    due = [r for r in rows if r["Scheduled Date"].date() <= AS_OF]
    assert len(due) == DUE_CYCLES
    assert {(r["Status"], r["Status Reason"]) for r in due} == {("Active", "Error")}
    assert all(message in r["Message"] and "--allow-catch-up" in r["Message"] for r in due)
    assert {r["Status Reason"] for r in rows if r["Scheduled Date"].date() > AS_OF} == {"Pending"}

    preview = run_cli("run", "--preview", "--json", "--input", str(book), "--output", str(out),
                      "--as-of", AS_OF.isoformat())
    assert preview.returncode == 1
    shown = json.loads(preview.stdout)
    assert [p["code"] for p in shown["problems"]] == ["BB121"] and message in shown["problems"][0]["message"]
    assert {i["contract_id"] for i in shown["invoices"]} == set()  # CTR-NEW is billed already


def test_allow_catch_up_bills_every_cycle(tmp_path: Path):
    book, out = first_day_book(tmp_path / "b.xlsx"), tmp_path / "out"
    result = bill(book, out, AS_OF.isoformat(), "--allow-catch-up")
    assert result.returncode == 0, result.stdout
    old = [start for cid, start in invoiced(out) if cid == "CTR-OLD"]
    assert old == [OLD_START + relativedelta(months=k) for k in range(DUE_CYCLES)]
    assert ("CTR-NEW", date(2026, 10, 1)) in invoiced(out)


def test_a_catch_up_limit_setting_lets_it_through(tmp_path: Path):
    book, out = first_day_book(tmp_path / "b.xlsx", **{"Catch-Up Limit": 100}), tmp_path / "out"
    preview = run_cli("run", "--preview", "--json", "--input", str(book), "--output", str(out),
                      "--as-of", AS_OF.isoformat())
    assert preview.returncode == 0, preview.stdout
    drafts = json.loads(preview.stdout)["invoices"]
    assert sum(d["contract_id"] == "CTR-OLD" for d in drafts) == DUE_CYCLES
    limited = first_day_book(tmp_path / "limited.xlsx", **{"Catch-Up Limit": DUE_CYCLES - 1})
    assert run_cli("check", "--input", str(limited), "--as-of", AS_OF.isoformat()).returncode == 1
    assert run_cli("check", "--input", str(limited), "--as-of", AS_OF.isoformat(), "--allow-catch-up").returncode == 0


@pytest.mark.parametrize("value", ["three", 0, 2.5, -1])
def test_a_bad_catch_up_limit_is_reported(tmp_path: Path, value):
    book = first_day_book(tmp_path / "b.xlsx", **{"Catch-Up Limit": value})
    result = run_cli("check", "--json", "--input", str(book), "--as-of", AS_OF.isoformat())
    assert result.returncode == 2
    [problem] = json.loads(result.stdout)["problems"]
    assert (problem["code"], problem["sheet"], problem["column"]) == ("BB201", "Settings", "Value")
    assert "Catch-Up Limit" in problem["message"]


def test_billed_through_bills_only_what_comes_after(tmp_path: Path):
    through = date(2026, 9, 30)
    book, out = first_day_book(tmp_path / "b.xlsx", through), tmp_path / "out"
    result = bill(book, out, AS_OF.isoformat())
    assert result.returncode == 0, result.stdout
    assert sorted(invoiced(out)) == [("CTR-NEW", date(2026, 10, 1)), ("CTR-OLD", date(2026, 10, 1))]
    lines = [l for l in sheet_rows(out / "billing_schedules.xlsx", "Invoice Lines") if l["Kind"] == "Usage"]
    # USG-1 (15 September) and USG-2 (30 September, the Billed Through itself) were billed before
    assert [(l["Period Start"].date(), l["Amount"]) for l in lines] == [(date(2026, 10, 10), 30)]
    assert "2 usage row(s) dated on or before their contract's Billed Through were not billed" in result.stdout

    rows = schedule_of(out, "CTR-OLD")
    before = [r for r in rows if r["Cycle End"].date() <= through]
    assert len(before) == DUE_CYCLES - 1 and before[0]["Cycle Start"].date() == OLD_START
    assert {(r["Status"], r["Status Reason"], r["Resulting Invoice"]) for r in before} == {
        ("Inactive", "Billed before billing_batch", None)}
    assert "2 usage row(s) dated in this cycle not billed" in before[-1]["Message"]
    assert before[-2]["Message"] is None

    refused = run_cli("generate", "--contract", "CTR-OLD", "--cycle", "2026-08-01", "--input", str(book),
                      "--output", str(out), "--as-of", AS_OF.isoformat(), "--yes")
    assert refused.returncode == 3, refused.stdout
    assert "billed before billing_batch" in refused.stdout and "2026-09-30" in refused.stdout
    assert len(invoiced(out)) == 2
    again = bill(book, out, AS_OF.isoformat())
    assert again.returncode == 0 and "No new invoice" in again.stdout


@pytest.mark.parametrize("typed, code, says", [
    (date(2026, 9, 15), "BB120", "falls inside the cycle 2026-09-01 to 2026-09-30 of contract CTR-OLD"),
    (date(2019, 12, 31), "BB113", "The Billed Through 2019-12-31 is outside contract CTR-OLD"),
    ("last September", "BB103", "is text in a form that is not read as a date"),
])
def test_a_billed_through_that_cannot_be_trusted_sets_the_contract_aside(tmp_path: Path, typed, code, says):
    book = first_day_book(tmp_path / "b.xlsx", typed)
    result = run_cli("check", "--json", "--input", str(book), "--as-of", AS_OF.isoformat())
    assert result.returncode == 1
    problems = json.loads(result.stdout)["problems"]
    assert [(p["code"], p["location"]) for p in problems] == [
        (code, "b.xlsx > Contracts > row 2, column L (Billed Through)")]
    assert says in problems[0]["message"] and problems[0]["contract_id"] == "CTR-OLD"
