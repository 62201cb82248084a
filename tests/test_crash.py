"""Exactly once: a run killed at any point, then run again, ends as if it had never died."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from test_end_to_end import pdf_text
from workbooks import contract, customer, settings, subscription, usage, write_book

AS_OF = "2026-04-13"  # three monthly cycles due for each of 12 contracts (Jan 1..12 starts): 36 invoices


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> Path:
    ids = range(1, 13)
    return write_book(tmp_path_factory.mktemp("in") / "billing.xlsx", {
        "Customers": [customer(f"CUST-{i}", **{"Tax Rate": 0.1}) for i in ids],
        "Contracts": [contract(f"CTR-{i}", f"CUST-{i}", date(2026, 1, i)) for i in ids],
        "Subscriptions": [subscription(f"SUB-{i}", f"CTR-{i}", i, 10) for i in ids],
        "Usage": [usage(f"USG-{i}", f"CTR-{i}", date(2026, 2, 20), i, 1) for i in ids],
        "Settings": settings(),
    })


def command(book: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "billing_batch", "run", "--input", str(book), "--output", str(out),
            "--as-of", AS_OF, "--jobs", "2"]


def run(book: Path, out: Path, failpoint: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "BILLING_BATCH_FAILPOINT": failpoint or ""}
    return subprocess.run(command(book, out), capture_output=True, text=True, env=env)


def snapshot(out: Path) -> dict:
    """Everything a user can see, with nothing that legitimately varies between runs."""
    with sqlite3.connect(out / "ledger.sqlite") as db:
        invoices = db.execute("SELECT seq, number, contract_id, cycle_start, total, status FROM invoices "
                              "ORDER BY seq").fetchall()
        lines = db.execute("SELECT * FROM invoice_lines ORDER BY number, line").fetchall()
        usage = db.execute("SELECT * FROM usage_rows ORDER BY number, line, usage_id").fetchall()
    wb = openpyxl.load_workbook(out / "billing_schedules.xlsx")
    return {
        "invoices": invoices,
        "lines": lines,
        "usage_rows": usage,
        "pdfs": {p.name: pdf_text(p) for p in sorted((out / "invoices").glob("*.pdf"))},
        "usage": {p.name: list(openpyxl.load_workbook(p)["Usage"].iter_rows(values_only=True))
                  for p in sorted((out / "invoices").glob("*-usage.xlsx"))},
        "files": sorted(p.name for p in (out / "invoices").iterdir()),
        "book": {ws.title: list(ws.iter_rows(values_only=True)) for ws in wb},
        "leftovers": sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp")),
    }


@pytest.fixture(scope="module")
def expected(book: Path, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("clean") / "out"
    assert run(book, out).returncode == 0
    result = snapshot(out)
    assert [row[1] for row in result["invoices"]] == [f"INV-{n:06d}" for n in range(1, 37)]
    return result


@pytest.mark.parametrize("failpoint", ["after-billing", "while-rendering", "writing-workbook"])
def test_killed_at_a_failpoint_then_rerun_matches_an_uninterrupted_run(book, expected, tmp_path, failpoint):
    out = tmp_path / "out"
    died = run(book, out, failpoint)
    assert died.returncode == -signal.SIGKILL
    assert run(book, out).returncode == 0
    assert snapshot(out) == expected


def test_killed_for_real_while_rendering_then_rerun_matches(book, expected, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(command(book, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    while len(list((out / "invoices").glob("*.pdf"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)  # the run and its render workers, mid-flight
    proc.wait()
    assert len(list((out / "invoices").glob("*.pdf"))) < 36, "the run finished before it could be killed"
    assert run(book, out).returncode == 0
    assert snapshot(out) == expected


def test_two_runs_at_once_never_bill_twice(book, expected, tmp_path):
    out = tmp_path / "out"
    procs = [subprocess.Popen(command(book, out), stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [(p.wait(), p.stdout.read()) for p in procs]
    for code, text in outputs:
        assert code == 0 or (code == 2 and "Another billing run is using the ledger" in text), text
    assert run(book, out).returncode == 0
    # The Review sheet shows the last run's new invoices: here a run that finished before it.
    after, before = snapshot(out), expected
    assert after["book"].pop("Review")[0] == before["book"]["Review"][0]
    assert after == {**before, "book": {k: v for k, v in before["book"].items() if k != "Review"}}
