"""One ledger per workspace, found and never silently made; what a run issued is what its post tasks see.
Issue #21's cases 1, 2 and 4, through the command line as a user meets them."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from workbooks import contract, customer, settings, simple_book, subscription, write_book

AS_OF = "2026-03-02"


def bb(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args, "--jobs", "1"], capture_output=True,
                          text=True, cwd=cwd, env={**os.environ, **(env or {})})


def folder(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def said(result: subprocess.CompletedProcess) -> str:
    text = " ".join((result.stdout + result.stderr).split())
    assert "Traceback" not in text and "internal error" not in text, text
    return text


def numbers(ledger: Path) -> list[tuple]:
    with sqlite3.connect(ledger) as db:
        return db.execute("SELECT number, contract_id, cycle_start, invoice_date FROM invoices ORDER BY seq").fetchall()


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace as `init` lays it out, billed once: inbox/billing.xlsx, output/ledger.sqlite."""
    simple_book(folder(tmp_path / "ws" / "inbox" / "billing.xlsx"))
    assert bb("run", "--as-of", AS_OF, cwd=tmp_path / "ws").returncode == 0
    return tmp_path / "ws"


# ---------------------------------------------------------------- 1. an empty or foreign ledger file


@pytest.mark.parametrize("kind", ["empty file", "empty SQLite database", "another program's database"])
def test_a_ledger_file_that_is_not_a_ledger_is_refused_by_every_command_with_the_backup_named(workspace, kind):
    ledger = workspace / "output" / "ledger.sqlite"
    billed = numbers(ledger)
    ledger.unlink()
    if kind == "empty file":
        ledger.write_bytes(b"")
    else:
        with sqlite3.connect(ledger) as db:
            db.execute("PRAGMA user_version = 0" if kind == "empty SQLite database"
                       else "CREATE TABLE notes (text TEXT)")
    before = ledger.read_bytes()
    pdfs = {p: p.stat().st_mtime_ns for p in (workspace / "output" / "invoices").iterdir()}
    for command in (["run"], ["run", "--preview"], ["check"], ["schedules"], ["preview", "--contract", "CTR-1"],
                    ["generate", "--contract", "CTR-1", "--allow-future", "--yes"],
                    ["post", "--tasks", "sync"], ["credit", "--invoice", "INV-000001", "--reason", "x"]):
        result = bb(*command, "--as-of", AS_OF, cwd=workspace)
        assert result.returncode == 2, (command, said(result))
        assert "The newest backup is output/backups/ledger-" in said(result), command
        assert "Nothing was billed" in said(result)
    ledger_check = bb("ledger", "check", cwd=workspace)
    assert ledger_check.returncode == 1 and "The newest backup is" in said(ledger_check)
    assert ledger.read_bytes() == before  # never initialised
    assert {p: p.stat().st_mtime_ns for p in (workspace / "output" / "invoices").iterdir()} == pdfs
    assert not (workspace / "output" / "exports").exists()

    # restored from the backup, as the message says: the next run bills nothing twice
    backup = sorted((workspace / "output" / "backups").glob("ledger-*.sqlite"))[-1]
    ledger.write_bytes(backup.read_bytes())
    assert bb("run", "--as-of", AS_OF, cwd=workspace).returncode == 0
    assert numbers(ledger) == billed


def test_a_new_ledger_is_made_whole_or_not_at_all(tmp_path: Path):
    book = simple_book(folder(tmp_path / "inbox" / "billing.xlsx"))
    result = bb("run", "--as-of", AS_OF, cwd=tmp_path, env={"BILLING_BATCH_FAILPOINT": "after-billing"})
    assert result.returncode < 0  # killed once the invoices were issued
    assert numbers(tmp_path / "output" / "ledger.sqlite")
    assert not list((tmp_path / "output").glob(".ledger.sqlite.new"))
    assert book.exists()


# ---------------------------------------------------------------- 2. one ledger per workspace


def test_the_same_workbook_run_from_another_folder_finds_the_workspace_ledger(workspace, tmp_path):
    billed = numbers(workspace / "output" / "ledger.sqlite")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for inputs in (["--input", str(workspace / "inbox")], ["--input", str(workspace / "inbox" / "billing.xlsx")]):
        result = bb("run", *inputs, "--as-of", AS_OF, cwd=elsewhere)
        assert result.returncode == 0, said(result)
        assert "No new invoice" in said(result)
    assert list(elsewhere.iterdir()) == []  # no second output folder, no second ledger
    assert numbers(workspace / "output" / "ledger.sqlite") == billed

    inside = bb("run", "--input", ".", "--as-of", AS_OF, cwd=workspace / "inbox")  # from inside inbox/ too
    assert inside.returncode == 0 and "No new invoice" in said(inside)
    assert not (workspace / "inbox" / "output").exists()


def test_a_new_ledger_for_contracts_another_ledger_billed_is_refused(workspace, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "billing.xlsx").write_bytes((workspace / "inbox" / "billing.xlsx").read_bytes())
    ledger = (workspace / "output" / "ledger.sqlite").resolve()
    for command in (["run"], ["run", "--output", str(tmp_path / "other")], ["run", "--preview"], ["check"],
                    ["generate", "--contract", "CTR-1", "--allow-future", "--yes"]):
        result = bb(*command, "--input", str(copy), "--as-of", AS_OF, cwd=tmp_path)
        assert result.returncode == 2, (command, said(result))
        assert f"the ledger {ledger} has billed CTR-1, CTR-2" in said(result)
        assert f"--output {ledger.parent}" in said(result) and "--new-ledger" in said(result)
    assert not (tmp_path / "output").exists() and not (tmp_path / "other").exists()

    # pointed at the workspace's ledger: nothing billed twice
    result = bb("run", "--input", str(copy), "--output", str(workspace / "output"), "--as-of", AS_OF, cwd=tmp_path)
    assert result.returncode == 0 and "No new invoice" in said(result)
    # a separate ledger on purpose
    result = bb("run", "--input", str(copy), "--new-ledger", "--as-of", AS_OF, cwd=tmp_path)
    assert result.returncode == 0, said(result)
    assert "Started a new ledger" in said(result)
    assert len(numbers(tmp_path / "output" / "ledger.sqlite")) == len(numbers(ledger))


def test_other_contracts_start_their_own_ledger(workspace, tmp_path):
    write_book(folder(tmp_path / "b" / "inbox" / "billing.xlsx"), {
        "Customers": [customer("CUST-9")], "Contracts": [contract("CTR-9", "CUST-9", date(2026, 1, 1))],
        "Subscriptions": [subscription("SUB-9", "CTR-9")], "Settings": settings()})
    result = bb("run", "--as-of", AS_OF, cwd=tmp_path / "b")
    assert result.returncode == 0, said(result)
    assert "Started a new ledger" in said(result)


# ---------------------------------------------------------------- 4. post tasks see what earlier runs issued


def test_invoices_of_a_run_that_died_are_sent_by_the_next_run(tmp_path: Path):
    simple_book(folder(tmp_path / "inbox" / "billing.xlsx"), Settings=settings(**{"Company Email": "b@acme.example"}))
    first = bb("run", "--as-of", "2026-02-02", "--post-tasks", "send", cwd=tmp_path)
    assert first.returncode == 0, said(first)
    sent = sorted(p.name for p in (tmp_path / "output" / "outbox").glob("*.eml"))
    died = bb("run", "--as-of", AS_OF, "--post-tasks", "send", cwd=tmp_path,
              env={"BILLING_BATCH_FAILPOINT": "after-billing"})
    assert died.returncode < 0
    issued = [n for n, *_ in numbers(tmp_path / "output" / "ledger.sqlite")]
    assert len(issued) > len(sent)

    again = bb("run", "--as-of", AS_OF, "--post-tasks", "send", cwd=tmp_path)
    assert again.returncode == 0, said(again)
    assert "No new invoice" in said(again)
    assert sorted(p.name for p in (tmp_path / "output" / "outbox").glob("*.eml")) == [f"{n}.eml" for n in issued]
    assert f"{len(issued) - len(sent)} of them from earlier runs" in said(again)
