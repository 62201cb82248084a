"""`billing-batch ledger check` through its real command line, on a ledger and PDFs made by real runs."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from billing_batch.documents import pdf_check as ledger_check
from billing_batch.ledger.store import Ledger
from billing_batch.money import round_money
from workbooks import simple_book, subscription, usage


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True)


def check(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("ledger", "check", "--output", str(out), *extra)


def findings(out: Path) -> list[dict]:
    result = check(out, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    return json.loads(result.stdout)


def rows(out: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return db.execute(sql, params).fetchall()


def edit(out: Path, script: str) -> None:
    db = sqlite3.connect(out / "ledger.sqlite")
    db.executescript(script)
    db.close()


@pytest.fixture(scope="module")
def billed(tmp_path_factory) -> Path:
    """Three months of two contracts, then one invoice replaced: seven invoices, one Replaced."""
    root = tmp_path_factory.mktemp("billed")
    book = simple_book(root / "billing.xlsx",
                       Subscriptions=[subscription("SUB-1", "CTR-1", 2, 50), subscription("SUB-2", "CTR-2", 1, 1000),
                                      subscription("SUB-3", "CTR-1", 3, 12.5, **{"Charge Type": "One-Time",
                                                                                  "Start Date": date(2026, 1, 20)})],
                       Usage=[usage("USG-1", "CTR-1", date(2026, 1, 15), 7, 0.015)])
    out = root / "out"
    common = ("--input", str(book), "--output", str(out), "--as-of", "2026-04-02", "--jobs", "1")
    result = run_cli("run", *common)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli("generate", *common, "--contract", "CTR-2", "--cycle", "2026-02-01", "--replace", "--yes",
                     "--no-preview")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture
def out(billed: Path, tmp_path: Path) -> Path:
    """A copy of the billed outputs, for a test to damage."""
    return Path(shutil.copytree(billed, tmp_path / "out"))


def test_a_ledger_as_billed_has_no_problem(out: Path):
    (count,) = rows(out, "SELECT COUNT(*) FROM invoices")[0]
    assert rows(out, "SELECT COUNT(*) FROM invoices WHERE status = 'Replaced'") == [(1,)]
    result = check(out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Checked {count} invoices: no problem found." in result.stdout
    as_json = check(out, "--json")
    assert (as_json.returncode, json.loads(as_json.stdout)) == (0, [])


def test_a_missing_pdf_is_named(out: Path):
    number = rows(out, "SELECT number FROM invoices WHERE seq = 2")[0][0]
    (out / "invoices" / f"{number}.pdf").unlink()
    result = check(out)
    assert result.returncode == 1
    assert f"{number}: the PDF" in result.stdout and "is missing" in result.stdout
    assert "1 problem(s) found" in result.stdout
    assert [(f["number"], f["check"]) for f in findings(out)] == [(number, "pdf")]


def test_a_total_edited_in_the_ledger_is_named_with_the_numbers(out: Path):
    number, subtotal, discount, tax, total = rows(
        out, "SELECT number, subtotal, discount, tax, total FROM invoices WHERE tax <> '0.00' LIMIT 1")[0]
    edited = Decimal(total) + 10
    edit(out, f"UPDATE invoices SET total = '{edited}' WHERE number = '{number}'")
    found = findings(out)
    totals = [f for f in found if f["check"] == "totals"]
    assert [f["number"] for f in totals] == [number]
    expected = Decimal(subtotal) - Decimal(discount) + Decimal(tax)
    assert f"total {edited:,}" in totals[0]["message"] and f"= {expected:,}" in totals[0]["message"]
    assert "restore it from the newest backup" in totals[0]["message"]
    # Its PDF still shows the true total; the advice is to restore the ledger, not to remake the PDF.
    pdf = [f for f in found if f["check"] == "pdf"]
    assert [f["number"] for f in pdf] == [number] and "Restore the ledger first" in pdf[0]["message"]


def test_a_line_amount_edited_in_the_ledger_is_recomputed(out: Path):
    number, line, quantity, price = rows(out, "SELECT number, line, quantity, unit_price FROM invoice_lines "
                                              "WHERE kind = 'One-Time' LIMIT 1")[0]
    edit(out, f"UPDATE invoice_lines SET amount = '1.00' WHERE number = '{number}' AND line = {line}")
    found = {(f["number"], f["check"]): f["message"] for f in findings(out)}
    assert f"= {round_money(Decimal(quantity) * Decimal(price), 'USD'):,}" in found[(number, "lines")]
    assert "sum of its lines, 1" in found[(number, "totals")]  # the subtotal no longer equals the lines


def test_a_hole_in_the_numbering_and_two_live_invoices_for_a_cycle_are_reported(out: Path):
    (last,) = rows(out, "SELECT MAX(seq) FROM invoices")[0]
    gone, before, after = (rows(out, "SELECT number FROM invoices WHERE seq = ?", s)[0][0] for s in (4, 3, 5))
    copied, contract, start = rows(out, "SELECT number, contract_id, cycle_start FROM invoices "
                                        "WHERE status = 'Issued' AND seq <> 4 ORDER BY seq LIMIT 1")[0]
    duplicate = f"INV-{last + 1:06d}"
    edit(out, f"""
        DELETE FROM invoice_lines WHERE number = '{gone}';
        DELETE FROM invoice_vat_groups WHERE number = '{gone}';
        DELETE FROM invoices WHERE seq = 4;
        DROP INDEX one_live_invoice_per_cycle;
        CREATE TEMP TABLE copy AS SELECT * FROM invoices WHERE number = '{copied}';
        UPDATE copy SET seq = {last + 1}, series_seq = {last + 1}, number = '{duplicate}';
        INSERT INTO invoices SELECT * FROM copy;
        INSERT INTO invoice_lines SELECT '{duplicate}', line, kind, product, description, period_start, period_end,
            quantity, unit_price, amount, prorated, subscription_id, usage_id, tax_category, tax_rate, credits_line, corrects,
            months, full_days FROM invoice_lines WHERE number = '{copied}';
        INSERT INTO invoice_vat_groups SELECT '{duplicate}', position, category, rate, taxable, tax, exemption_reason,
            discount FROM invoice_vat_groups WHERE number = '{copied}';
        """)
    shutil.copy(out / "invoices" / f"{copied}.pdf", out / "invoices" / f"{duplicate}.pdf")
    found = findings(out)
    checks = {f["check"]: f for f in found}
    assert checks["numbering"]["number"] == gone
    assert gone in checks["numbering"]["message"] and f"between {before} and {after}" in checks["numbering"]["message"]
    live = checks["one live invoice"]
    assert live["number"] == duplicate
    assert f"{copied}, {duplicate}" in live["message"] and contract in live["message"] and start in live["message"]
    # The copied PDF names the original's number, not the copy's.
    assert any(f["check"] == "pdf" and f["number"] == duplicate and "does not show the number" in f["message"]
               for f in found)


def test_swapped_pdfs_do_not_match_their_invoices(out: Path):
    replaced, replacement = rows(out, "SELECT number, replaced_by FROM invoices WHERE status = 'Replaced'")[0]
    pdfs = out / "invoices"
    a, b = pdfs / f"{replaced}.pdf", pdfs / f"{replacement}.pdf"
    a_bytes = a.read_bytes()
    shutil.copy(b, a)
    b.write_bytes(a_bytes)
    found = {f["number"]: f["message"] for f in findings(out)}
    assert set(found) == {replaced, replacement}
    assert f"does not show the number {replaced}" in found[replaced]
    assert "does not show \"VOID" in found[replaced] and "though the invoice is Replaced" in found[replaced]
    assert f"does not show the number {replacement}" in found[replacement]
    assert "shows VOID, though the invoice is live" in found[replacement]
    assert "Delete that PDF" in found[replacement]


def test_an_unreadable_pdf_is_a_finding(out: Path):
    number = rows(out, "SELECT number FROM invoices ORDER BY seq LIMIT 1")[0][0]
    (out / "invoices" / f"{number}.pdf").write_bytes(b"%PDF-1.7\nnot really a PDF")
    found = findings(out)
    assert [(f["number"], f["check"]) for f in found] == [(number, "pdf")]
    assert "cannot be read as a PDF" in found[0]["message"]


def test_invoice_dates_going_backwards_along_the_numbers_are_reported(out: Path):
    number, previous, day = rows(out, "SELECT i.number, p.number, p.invoice_date FROM invoices i "
                                      "JOIN invoices p ON p.seq = i.seq - 1 WHERE i.seq = 3")[0]
    edit(out, f"UPDATE invoices SET invoice_date = '2026-01-01' WHERE number = '{number}'")
    found = findings(out)
    dates = [f for f in found if f["check"] == "dates"]
    assert [f["number"] for f in dates] == [number]
    assert previous in dates[0]["message"] and day in dates[0]["message"]


def test_a_ledger_made_by_release_0_1_0_checks_clean(tmp_path: Path):
    out = Path(shutil.copytree(Path(__file__).parent / "fixtures" / "ledger-0.1.0", tmp_path / "out"))
    result = check(out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no problem found" in result.stdout


def test_no_ledger_is_refused_with_a_clear_message(tmp_path: Path):
    result = check(tmp_path / "nowhere")
    assert result.returncode == 2
    assert f"There is no ledger at {tmp_path / 'nowhere' / 'ledger.sqlite'}" in result.stdout.replace("\n", "")
    assert "Traceback" not in result.stdout + result.stderr


def test_a_file_that_is_not_a_ledger_is_a_finding(tmp_path: Path):
    (tmp_path / "ledger.sqlite").write_bytes(b"this is not a database" * 100)
    result = check(tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "not an SQLite database" in " ".join(result.stdout.split())


def test_pdfs_are_read_the_same_in_worker_processes(out: Path, monkeypatch):
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        work = [(i, out / i.pdf_name) for i in ledger.invoices()]
    shutil.copy(work[0][1], work[1][1])
    monkeypatch.setattr(ledger_check, "POOL_FROM", 2)
    pooled = list(ledger_check._read_all(work, jobs=2))
    assert pooled == list(ledger_check._read_all(work, jobs=1))
    assert [bool(p) for p in pooled] == [False, True] + [False] * (len(work) - 2)
