"""Manual and future generation, replacement, preview and schedules, through the real CLI."""
from __future__ import annotations

import fcntl
import json
import sqlite3
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from test_end_to_end import ledger_numbers, pdf_text, run_cli, sheet_rows
from workbooks import simple_book, usage

AS_OF = "2026-02-02"  # January is due for both contracts, February is not


def cli(command: str, book: Path, out: Path, *extra: str, as_of: str = AS_OF):
    return run_cli(command, "--input", str(book), "--output", str(out), "--as-of", as_of, "--jobs", "1", *extra)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return simple_book(tmp_path / "billing.xlsx", Usage=[usage("USG-1", "CTR-1", date(2026, 1, 15), 10, 2)])


def invoice_rows(out: Path) -> dict[str, dict]:
    return {r["Invoice Number"]: r for r in sheet_rows(out / "billing_schedules.xlsx", "Invoices")}


def test_a_future_cycle_needs_allow_future_and_is_not_billed_again_later(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    cli("run", book, out)  # INV-000001 and 2: January
    refused = cli("generate", book, out, "--contract", "CTR-1")
    assert refused.returncode == 3
    assert "future cycle" in refused.stdout and "2026-03-02" in refused.stdout  # February's scheduled date
    assert ledger_numbers(out) == ["INV-000001", "INV-000002"]

    allowed = cli("generate", book, out, "--contract", "CTR-1", "--allow-future")
    assert allowed.returncode == 0, allowed.stdout
    assert "Invoiced INV-000003" in allowed.stdout
    row = next(r for r in sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
               if r["Schedule ID"] == "CTR-1/2026-02-01")
    assert (row["Status"], row["Resulting Invoice"], row["Run Type"]) == ("Inactive", "INV-000003", "Manual")

    # On February's real date the automatic run bills CTR-2 only.
    cli("run", book, out, as_of="2026-03-02")
    assert ledger_numbers(out) == ["INV-000001", "INV-000002", "INV-000003", "INV-000004"]
    assert invoice_rows(out)["INV-000004"]["Contract ID"] == "CTR-2"


def test_replace_keeps_the_old_invoice_as_replaced_and_bills_current_data(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    cli("run", book, out)
    refused = cli("generate", book, out, "--contract", "CTR-1", "--cycle", "2026-01-10")
    assert refused.returncode == 3 and "INV-000001" in refused.stdout

    # The quantity changes after January was invoiced: the run says so, and bills nothing new.
    simple_book(book, Usage=[usage("USG-1", "CTR-1", date(2026, 1, 15), 10, 2)])
    changed = book.parent / "changed.xlsx"
    simple_book(changed, Usage=[usage("USG-1", "CTR-1", date(2026, 1, 15), 10, 2)])
    wb = openpyxl.load_workbook(changed)
    wb["Subscriptions"]["E2"] = 3  # SUB-1: 2 seats -> 3 seats
    wb.save(changed)
    rerun = cli("run", changed, out)
    assert "INV-000001 differs from what the current data would bill" in rerun.stdout.replace("\n", "")
    jan = next(r for r in sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
               if r["Schedule ID"] == "CTR-1/2026-01-01")
    assert "differs" in jan["Message"]
    assert ledger_numbers(out) == ["INV-000001", "INV-000002"]

    replaced = cli("generate", changed, out, "--contract", "CTR-1", "--cycle", "2026-01-10", "--replace")
    assert replaced.returncode == 0, replaced.stdout
    assert "Invoiced INV-000003, replacing INV-000001" in replaced.stdout
    invoices = invoice_rows(out)
    assert (invoices["INV-000001"]["Status"], invoices["INV-000001"]["Replaced By"]) == ("Replaced", "INV-000003")
    # 3 seats x 50.00 + the usage the replaced invoice carried (10 x 2.00)
    assert (invoices["INV-000003"]["Status"], invoices["INV-000003"]["Total"]) == ("Issued", 170)
    assert "VOID" in pdf_text(out / "invoices" / "INV-000001.pdf")
    assert "INV-000003" in pdf_text(out / "invoices" / "INV-000001.pdf")
    jan = next(r for r in sheet_rows(out / "billing_schedules.xlsx", "Billing Schedules")
               if r["Schedule ID"] == "CTR-1/2026-01-01")
    assert (jan["Resulting Invoice"], jan["Run Type"], jan["Message"]) == ("INV-000003", "Manual", None)

    again = cli("generate", changed, out, "--contract", "CTR-1", "--cycle", "2026-01-10", "--replace")
    assert "Invoiced INV-000004, replacing INV-000003" in again.stdout
    statuses = {n: r["Status"] for n, r in invoice_rows(out).items()}
    assert statuses == {"INV-000001": "Replaced", "INV-000002": "Issued", "INV-000003": "Replaced",
                        "INV-000004": "Issued"}


def test_bulk_generation_reports_a_result_per_contract(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    listing = tmp_path / "contracts.txt"
    listing.write_text("CTR-2\n\nCTR-404\n")
    result = cli("generate", book, out, "--contract", "CTR-1", "--contracts-file", str(listing), "--no-preview")
    assert result.returncode == 3  # CTR-404 cannot be billed
    text = result.stdout
    assert "CTR-1" in text and "Invoiced INV-000001" in text
    assert "Invoiced INV-000002" in text
    assert "Cannot bill CTR-404" in text
    assert ledger_numbers(out) == ["INV-000001", "INV-000002"]


def test_preview_writes_nothing_and_agrees_to_the_cent_with_the_invoice(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    shown = cli("preview", book, out, "--contract", "CTR-2", "--json")
    assert shown.returncode == 0, shown.stdout
    assert not out.exists()
    (draft,) = json.loads(shown.stdout)["invoices"]
    assert draft["groups"]["Full cycle"][0]["amount"] == "1000.00"

    batch = json.loads(cli("run", book, out, "--preview", "--json").stdout)["invoices"]
    assert not out.exists()
    cli("run", book, out)
    billed = invoice_rows(out)
    by_contract = {i["Contract ID"]: i for i in billed.values()}
    for preview in [draft, *batch]:
        invoice = by_contract[preview["contract_id"]]
        assert [Decimal(str(invoice[k])) for k in ("Subtotal", "Discount", "Tax", "Total")] == \
            [Decimal(preview[k]) for k in ("subtotal", "discount", "tax", "total")]
    with sqlite3.connect(out / "ledger.sqlite") as db:
        stored = dict(db.execute("SELECT contract_id, total FROM invoices"))
    assert stored == {p["contract_id"]: p["total"] for p in batch}


def test_preview_table_groups_lines(book: Path, tmp_path: Path):
    shown = cli("preview", book, tmp_path / "out", "--contract", "CTR-1")
    assert "Full cycle" in shown.stdout and "Usage" in shown.stdout and "120.00" in shown.stdout


def test_schedules_prints_rows_without_billing(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    cli("run", book, out)
    shown = cli("schedules", book, out, "--contract", "CTR-2")
    assert shown.returncode == 0
    assert "CTR-2/2026-01-01" in shown.stdout and "INV-000002" in shown.stdout
    assert "CTR-1/" not in shown.stdout
    assert ledger_numbers(out) == ["INV-000001", "INV-000002"]


def test_a_second_run_on_a_held_ledger_stops_and_bills_nothing(book: Path, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    with open(out / "ledger.sqlite.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = cli("run", book, out)
    assert result.returncode == 2
    assert "Another billing run is using the ledger" in result.stdout
    assert not (out / "invoices").exists()
