"""Credit notes through the real CLI: automatic, on replace after sending, by hand; their own
gapless series under crashes and concurrent commands."""
from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from billing_batch import cli
from billing_batch.engine import plan as billing
from billing_batch.engine.credit_notes import below_zero, credit_invoice, from_draft
from billing_batch.money import round_money
from test_end_to_end import pdf_text as pdf_lines
from test_end_to_end import run_cli, sheet_rows
from workbooks import contract, customer, settings, subscription, write_book

AS_OF = "2026-02-02"  # January is due for both contracts
SEATS, SEAT_PRICE = 4, Decimal("50")  # CTR-1: 4 seats at 50.00, no tax
LICENCE, RATE = Decimal("1000"), Decimal("0.2")  # CTR-2: one licence at 1000.00, 20% tax, 10% discount
DISCOUNT = Decimal("0.1")


def book_with(path: Path, seats: int = SEATS) -> Path:
    return write_book(path, {
        "Customers": [customer("CUST-1"), customer("CUST-2", **{"Tax Rate": float(RATE)})],
        "Contracts": [contract("CTR-1", "CUST-1"), contract("CTR-2", "CUST-2", Discount=float(DISCOUNT))],
        "Subscriptions": [subscription("SUB-1", "CTR-1", seats, int(SEAT_PRICE)),
                          subscription("SUB-2", "CTR-2", 1, int(LICENCE))],
        "Products": [{"Product": "Platform", "Account Code": "4000"}],  # for the sync to accounting
        "Settings": settings(),
    }, headers={"Products": ["Product", "Account Code"]})


@pytest.fixture
def book(tmp_path: Path) -> Path:
    return book_with(tmp_path / "billing.xlsx")


def cli_run(command: str, book: Path, out: Path, *extra: str, as_of: str = AS_OF, env: dict | None = None):
    args = [sys.executable, "-m", "billing_batch", command, "--input", str(book), "--output", str(out),
            "--as-of", as_of, "--jobs", "1", *extra]
    return subprocess.run(args, capture_output=True, text=True, env={**os.environ, **(env or {})})


def pdf_text(path: Path) -> str:
    """The PDF's text with its line breaks and runs of spaces as one space."""
    return " ".join(pdf_lines(path).split())


def documents(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return db.execute("SELECT number, doc_type, status, total, credits, replaced_by FROM invoices "
                          "ORDER BY seq").fetchall()


def numbers(out: Path, doc_type: str) -> list[str]:
    return [n for n, t, *_ in documents(out) if t == doc_type]


def gapless(found: list[str], prefix: str) -> bool:
    return found == [f"{prefix}{n:06d}" for n in range(1, len(found) + 1)]


def ledger_check(out: Path) -> subprocess.CompletedProcess:
    return run_cli("ledger", "check", "--output", str(out))


def money(amount: Decimal) -> Decimal:
    return round_money(amount, "USD")


def ctr2_total(net: Decimal) -> Decimal:
    """What CTR-2 bills for a net amount: less its discount, plus 20% tax."""
    taxable = net - money(net * DISCOUNT)
    return taxable + money(taxable * RATE)


# ---------------------------------------------------------------- automatically


def test_a_cycle_totalling_below_zero_is_issued_as_credit_note_and_settles_its_cycle(book, tmp_path, monkeypatch,
                                                                                       capsys):
    """The workbook refuses negative prices (BB109), so no cycle totals below zero from it today; the
    adjustment lines of mid-term changes will. Here pricing is made to return CTR-1's January with a
    negative line, as such an adjustment would, and the real run command issues it."""
    out = tmp_path / "out"
    price_cycle = billing.price_cycle

    def with_a_credit(cycle, contract_, *args, **kw):
        draft = price_cycle(cycle, contract_, *args, **kw)
        if contract_.contract_id != "CTR-1":
            return draft
        line = draft.lines[0]
        credit = replace(line, product="Correction", quantity=-line.quantity * 3,
                         amount=-line.amount * 3)  # three times the cycle's charge, credited
        return billing.make_draft(cycle, contract_, args[0], [line, credit])

    monkeypatch.setattr(billing, "price_cycle", with_a_credit)
    code = cli.main(["run", "--input", str(book), "--output", str(out), "--as-of", AS_OF, "--jobs", "1"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    monkeypatch.undo()

    seats = SEATS * SEAT_PRICE
    docs = {n: (t, s, Decimal(total), c) for n, t, s, total, c, _ in documents(out)}
    assert docs["CN-000001"] == ("Credit Note", "Issued", 2 * seats, None)  # stored positive: what it credits
    assert docs["INV-000001"][:3] == ("Invoice", "Issued", ctr2_total(LICENCE))  # the series is its own
    text = pdf_text(out / "invoices" / "CN-000001.pdf")
    assert "CREDIT NOTE" in text and "CN-000001" in text and "Total credited" in text and f"-${2 * seats:,.2f}" in text
    assert "Credit Note" in [r["Type"] for r in sheet_rows(out / "billing_schedules.xlsx", "Invoices")]

    rerun = cli_run("run", book, out)  # the cycle is settled by its credit note: nothing billed twice
    assert rerun.returncode == 0, rerun.stdout
    assert "No new invoice" in rerun.stdout
    assert [n for n, *_ in documents(out)] == ["CN-000001", "INV-000001"]
    assert ledger_check(out).returncode == 0


def test_from_draft_negates_the_lines_and_the_totals_follow_them(book, tmp_path):
    """The pure conversion the mid-term adjustments will call, with the invoice they correct."""
    from billing_batch.pipeline import Options, Report, load

    checked = load(Options(input=book, output=tmp_path, as_of=date(2026, 2, 2)), Report())
    cycle = next(c for c in billing.cycles(checked.inputs.contracts["CTR-2"]))
    draft = billing.draft_for(cycle, checked.inputs.contracts["CTR-2"], checked.inputs, [])
    line = draft.lines[0]
    negative = billing.make_draft(cycle, checked.inputs.contracts["CTR-2"], checked.inputs.customers["CUST-2"],
                                  [replace(line, quantity=-line.quantity, amount=-line.amount)])
    assert below_zero(negative) and not below_zero(draft)
    note = from_draft(negative, credits="INV-000007", credits_date=date(2026, 1, 1))
    assert (note.credits, note.credits_date) == ("INV-000007", date(2026, 1, 1))
    assert [(ln.quantity, ln.amount) for ln in note.draft.lines] == [(Decimal(1), LICENCE)]
    assert note.draft.total == ctr2_total(LICENCE)


# ---------------------------------------------------------------- on replace


def test_replace_after_sending_issues_a_credit_note_then_the_new_invoice(book, tmp_path):
    out = tmp_path / "out"
    assert cli_run("run", book, out).returncode == 0  # INV-000001 (CTR-1), INV-000002 (CTR-2)
    synced = cli_run("post", book, out, "--tasks", "sync", "--invoice", "INV-000001")  # the real post path
    assert synced.returncode == 0, synced.stdout
    book_with(book, seats=SEATS + 2)  # two more seats, found after the invoice was synced to the books

    replaced = cli_run("generate", book, out, "--contract", "CTR-1", "--cycle", "2026-01-01", "--replace",
                       "--yes", "--no-preview")
    assert replaced.returncode == 0, replaced.stdout
    assert "credited by CN-000001" in replaced.stdout
    old_total, new_total = SEATS * SEAT_PRICE, (SEATS + 2) * SEAT_PRICE
    docs = {n: (t, s, Decimal(total), c, r) for n, t, s, total, c, r in documents(out)}
    assert docs["INV-000001"] == ("Invoice", "Credited", old_total, None, "INV-000003")
    assert docs["CN-000001"] == ("Credit Note", "Issued", old_total, "INV-000001", None)
    assert docs["INV-000003"] == ("Invoice", "Issued", new_total, None, None)

    old, note, new = (pdf_text(out / "invoices" / f"{n}.pdf") for n in ("INV-000001", "CN-000001", "INV-000003"))
    assert "Credited in full by CN-000001" in old and "Replaced by invoice INV-000003" in old and "VOID" not in old
    assert "CREDIT NOTE" in note and "Credits invoice INV-000001 of Feb 2, 2026" in note
    assert "Reason: Replaced by a corrected invoice" in note and f"-${old_total:,.2f}" in note
    assert "Replaces invoice INV-000001" in new
    rows = {r["Invoice Number"]: r for r in sheet_rows(out / "billing_schedules.xlsx", "Invoices")}
    assert (rows["CN-000001"]["Type"], rows["CN-000001"]["Credits Invoice"]) == ("Credit Note", "INV-000001")
    assert (rows["INV-000001"]["Status"], rows["INV-000001"]["Credited By"]) == ("Credited", "CN-000001")
    lines = [r for r in sheet_rows(out / "billing_schedules.xlsx", "Invoice Lines") if r["Invoice Number"] == "CN-000001"]
    assert [(r["Quantity"], r["Amount"]) for r in lines] == [(SEATS, float(old_total))]

    # Never sent, synced or charged: replaced as before, voided, without a credit note.
    again = cli_run("generate", book, out, "--contract", "CTR-2", "--cycle", "2026-01-01", "--replace",
                    "--yes", "--no-preview")
    assert again.returncode == 0, again.stdout
    docs = {n: (t, s, r) for n, t, s, _, _, r in documents(out)}
    assert docs["INV-000002"] == ("Invoice", "Replaced", "INV-000004")
    assert numbers(out, "Credit Note") == ["CN-000001"]
    assert "VOID" in pdf_text(out / "invoices" / "INV-000002.pdf")
    assert ledger_check(out).returncode == 0


# ---------------------------------------------------------------- by hand


def test_a_partial_credit_by_hand_and_the_refusal_of_an_over_credit(book, tmp_path):
    out = tmp_path / "out"
    assert cli_run("run", book, out).returncode == 0  # INV-000002: CTR-2's licence
    part = Decimal("300")
    first = cli_run("credit", book, out, "--invoice", "INV-000002", "--line", "1", "--amount", str(part),
                    "--reason", "Goodwill: outage on 12 January")
    assert first.returncode == 0, first.stdout
    credited = ctr2_total(part)  # its discount and tax follow the invoice's
    assert documents(out)[-1][:5] == ("CN-000001", "Credit Note", "Issued", str(credited), "INV-000002")
    text = pdf_text(out / "invoices" / "CN-000001.pdf")
    assert "Reason: Goodwill: outage on 12 January" in text and f"-${credited:,.2f}" in text
    assert "Partly credited by CN-000001" in pdf_text(out / "invoices" / "INV-000002.pdf")  # re-rendered

    too_much = LICENCE - part + 1
    refused = cli_run("credit", book, out, "--invoice", "INV-000002", "--line", "1", "--amount", str(too_much),
                      "--reason", "more")
    assert refused.returncode == 1
    said = " ".join(refused.stdout.split())
    assert "BB132" in said and f"Cannot credit {too_much:,.2f} USD" in said and f"billed {LICENCE:,.2f}" in said
    assert f"{LICENCE - part:,.2f} of that is left to credit ({part:,.2f} credited before)" in said
    assert numbers(out, "Credit Note") == ["CN-000001"]  # nothing written

    # Quantity: one of CTR-1's seats, then more than the seats left.
    one = cli_run("credit", book, out, "--invoice", "INV-000001", "--line", "1", "--quantity", "1",
                  "--reason", "One seat unused")
    assert one.returncode == 0, one.stdout
    assert Decimal(documents(out)[-1][3]) == SEAT_PRICE
    over = cli_run("credit", book, out, "--invoice", "INV-000001", "--line", "1", "--quantity", str(SEATS),
                   "--reason", "all seats")
    assert over.returncode == 1 and f"{SEATS - 1} of that is left to credit" in " ".join(over.stdout.split())

    # The rest, in full: the invoice becomes Credited, and nothing is left to credit after.
    rest = cli_run("credit", book, out, "--invoice", "INV-000001", "--reason", "Contract cancelled")
    assert rest.returncode == 0, rest.stdout
    docs = {n: (s, Decimal(total)) for n, _, s, total, *_ in documents(out)}
    assert docs["CN-000003"] == ("Issued", (SEATS - 1) * SEAT_PRICE) and docs["INV-000001"][0] == "Credited"
    assert "Credited in full by CN-000002, CN-000003" in pdf_text(out / "invoices" / "INV-000001.pdf")
    nothing = cli_run("credit", book, out, "--invoice", "INV-000001", "--reason", "again")
    assert nothing.returncode == 1 and "credited in full already" in nothing.stdout
    unknown = cli_run("credit", book, out, "--invoice", "INV-000099", "--reason", "x")
    assert unknown.returncode == 1 and "BB130" in unknown.stdout

    # A cycle credited in full is not billed again by the next run.
    assert "No new invoice" in cli_run("run", book, out).stdout
    assert ledger_check(out).returncode == 0


def test_credit_invoice_splits_the_tax_by_the_lines_vat_groups(book, tmp_path):
    from billing_batch.ledger.store import Ledger

    out = tmp_path / "out"
    assert cli_run("run", book, out).returncode == 0
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        invoice = next(i for i in ledger.invoices() if i.number == "INV-000002")
    line = invoice.draft.lines[0]
    note = credit_invoice(invoice, [], "x", line=1, quantity=Decimal("0.5"))
    assert [(g.category, g.rate) for g in note.draft.vat_groups] == [(line.tax_category, line.tax_rate)]
    assert note.draft.total == ctr2_total(money(LICENCE / 2)) and not note.settles


# ---------------------------------------------------------------- gapless under crashes and concurrency


@pytest.mark.parametrize("failpoint", ["after-billing", "while-rendering", "writing-workbook"])
def test_both_series_stay_gapless_when_killed_at_a_failpoint(book, tmp_path, failpoint):
    out = tmp_path / "out"
    assert cli_run("run", book, out).returncode == 0
    assert cli_run("post", book, out, "--tasks", "sync", "--invoice", "INV-000001").returncode == 0
    book_with(book, seats=SEATS + 1)
    kill = {"BILLING_BATCH_FAILPOINT": failpoint}
    died = cli_run("generate", book, out, "--contract", "CTR-1", "--cycle", "2026-01-01", "--replace", "--yes",
                   "--no-preview", env=kill)
    assert died.returncode == -signal.SIGKILL
    died = cli_run("credit", book, out, "--invoice", "INV-000002", "--line", "1", "--amount", "10",
                   "--reason", "x", env=kill)
    assert died.returncode == -signal.SIGKILL
    assert cli_run("run", book, out).returncode == 0  # makes what the killed commands left undone
    assert numbers(out, "Invoice") == ["INV-000001", "INV-000002", "INV-000003"]
    assert numbers(out, "Credit Note") == ["CN-000001", "CN-000002"]
    assert all((out / "invoices" / f"{n}.pdf").exists() for n, *_ in documents(out))
    checked = ledger_check(out)
    assert checked.returncode == 0, checked.stdout


def test_both_series_stay_gapless_under_concurrent_commands(book, tmp_path):
    out = tmp_path / "out"
    assert cli_run("run", book, out).returncode == 0
    book_with(book, seats=SEATS + 1)

    def start(command: str, *extra: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "billing_batch", command, "--input", str(book), "--output",
                                 str(out), "--as-of", "2026-03-02", "--jobs", "1", *extra],
                                stdout=subprocess.PIPE, text=True)

    procs = [start("credit", "--invoice", "INV-000002", "--line", "1", "--amount", "10", "--reason", "a"),
             start("credit", "--invoice", "INV-000001", "--line", "1", "--quantity", "1", "--reason", "b"),
             start("run")]
    for p in procs:
        code, text = p.wait(), p.stdout.read()
        assert code == 0 or (code == 2 and "Another billing run is using the ledger" in text), text
    credit_notes, invoices = numbers(out, "Credit Note"), numbers(out, "Invoice")
    assert gapless(credit_notes, "CN-") and gapless(invoices, "INV-")
    assert cli_run("run", book, out, as_of="2026-03-02").returncode == 0
    assert numbers(out, "Invoice") == [f"INV-{n:06d}" for n in range(1, 5)]  # February billed once
    assert ledger_check(out).returncode == 0


def test_a_release_0_1_0_ledger_upgraded_takes_credit_notes_and_its_invoices_keep_their_series(tmp_path):
    from test_ledger_upgrade import RELEASE_0_1_0

    out = tmp_path / "out"
    shutil.copytree(RELEASE_0_1_0, out, ignore=shutil.ignore_patterns("README.md", "billing.xlsx"))
    book = RELEASE_0_1_0 / "billing.xlsx"
    with sqlite3.connect(out / "ledger.sqlite") as db:  # no doc_type column before the upgrade
        before = [n for (n,) in db.execute("SELECT number FROM invoices ORDER BY seq")]
        (issued,) = db.execute("SELECT number FROM invoices WHERE status = 'Issued' ORDER BY seq").fetchone()
    credited = cli_run("credit", book, out, "--invoice", issued, "--reason", "Billed twice", as_of="2026-11-02")
    assert credited.returncode == 0, credited.stdout + credited.stderr
    assert numbers(out, "Credit Note") == ["CN-000001"]
    assert cli_run("run", book, out, as_of="2026-12-02").returncode == 0
    invoices = numbers(out, "Invoice")
    assert len(invoices) > len(before) and gapless(invoices, "INV-")  # INV-… follows on after CN-000001
    assert ledger_check(out).returncode == 0
