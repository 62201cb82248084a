"""Faults are problems, not crashes: a full disk, a read-only output folder, a file that vanishes.
Each ends in a message with the file and what to do (exit 2), the ledger as it was, no temporary file
left, and the rerun with room equal to a run that was never interrupted (issue #21, cases 8 and 9).

The disk is a real one: a small tmpfs, as full as each case needs (mounting needs root, as CI has;
elsewhere these tests are skipped with the reason)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

import pytest
from test_crash import snapshot
from workbooks import contract, customer, settings, subscription, usage, write_book

from billing_batch.cli import faults

AS_OF = "2026-03-02"


def bb(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})})


def said(result: subprocess.CompletedProcess) -> str:
    text = " ".join((result.stdout + result.stderr).split())
    assert "Traceback" not in text and "internal error" not in text, text
    return text


def make_book(path: Path) -> Path:
    """Four contracts with usage: PDFs, usage workbooks, the schedule book, the review, backups."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = range(1, 5)
    return write_book(path, {
        "Customers": [customer(f"CUST-{i}") for i in ids],
        "Contracts": [contract(f"CTR-{i}", f"CUST-{i}", date(2026, 1, i), **{"Usage Lines": "Summary"})
                      for i in ids],
        "Subscriptions": [subscription(f"SUB-{i}", f"CTR-{i}", i, 10) for i in ids],
        "Usage": [usage(f"USG-{i}-{d}", f"CTR-{i}", date(2026, 1, d), d, 1) for i in ids for d in range(i, 29)],
        "Settings": settings(),
    }, headers={"Contracts": ["Contract ID", "Customer ID", "Start Date", "End Date", "Billing Frequency",
                              "Billing Policy", "Billing Offset (Days)", "Currency", "Usage Lines"]})


def mount(where: Path, *options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"a small filesystem cannot be mounted here ({done.stderr.strip()}): needs root")


@pytest.fixture
def small_disk(tmp_path: Path):
    disk = tmp_path / "disk"
    yield disk
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, int]:
    """The run that never met a fault, and the bytes its output took."""
    ws = tmp_path_factory.mktemp("whole")
    make_book(ws / "inbox" / "billing.xlsx")
    result = bb("run", "--as-of", AS_OF, "--jobs", "2", cwd=ws)
    assert result.returncode == 0, said(result)
    used = sum(p.stat().st_size for p in (ws / "output").rglob("*") if p.is_file())
    return snapshot(ws / "output"), used


def leftovers(out: Path) -> list[str]:
    return sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.name.endswith((".tmp", ".new", "-journal"))
                  or p.name.startswith(".") and p.is_file())


@pytest.mark.parametrize("free_share", [0, 3, 10, 25, 40, 55, 70, 85, 100, 130])
def test_a_full_disk_at_any_point_stops_cleanly_and_the_rerun_is_whole(uninterrupted, small_disk, free_share):
    """free_share: the room left on the disk, in hundredths of what the whole run writes (with its
    temporary copies, a run needs more than it keeps: the last cases run out late, or not at all)."""
    whole, used = uninterrupted
    book = make_book(small_disk.parent / "book.xlsx")
    room = book.stat().st_size + used * free_share // 100
    mount(small_disk, f"size={room // 4096 * 4096 + 4096}")
    (small_disk / "inbox").mkdir()
    (small_disk / "inbox" / "billing.xlsx").write_bytes(book.read_bytes())
    out = small_disk / "output"

    result = bb("run", "--as-of", AS_OF, "--jobs", "2", cwd=small_disk)
    if result.returncode:
        assert result.returncode == 2, said(result)
        assert "the disk is full" in said(result) and "Free some space" in said(result)
    assert leftovers(out) == [] if out.exists() else True
    if (out / "ledger.sqlite").exists():
        check = bb("ledger", "check", "--json", cwd=small_disk)
        assert check.returncode in (0, 1), said(check)
        assert {f["check"] for f in json.loads(check.stdout)} <= {"pdf"}  # at most PDFs still to make

    subprocess.run(["mount", "-o", f"remount,size={8 * used}", str(small_disk)], check=True)
    rerun = bb("run", "--as-of", AS_OF, "--jobs", "2", cwd=small_disk)
    assert rerun.returncode == 0, said(rerun)
    assert snapshot(out) == whole
    assert leftovers(out) == []
    assert bb("ledger", "check", cwd=small_disk).returncode == 0


def test_a_read_only_output_folder_is_named_and_nothing_is_billed(tmp_path, small_disk):
    make_book(tmp_path / "book.xlsx")
    mount(small_disk, "size=1m")
    (small_disk / "inbox").mkdir()
    (small_disk / "inbox" / "billing.xlsx").write_bytes((tmp_path / "book.xlsx").read_bytes())
    (small_disk / "output").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    for command in (["run"], ["generate", "--contract", "CTR-1", "--yes"]):
        result = bb(*command, "--as-of", AS_OF, cwd=small_disk)
        assert result.returncode == 2, said(result)
        assert f"may not write in {small_disk / 'output'}: it is read-only" in said(result)
    assert list((small_disk / "output").iterdir()) == []


@pytest.mark.parametrize("point", ["after-billing", "while-rendering", "writing-workbook", "writing-review"])
@pytest.mark.parametrize("fault", ["ENOSPC", "EROFS", "ENOENT"])
def test_a_fault_at_each_write_stops_cleanly_and_the_rerun_is_whole(uninterrupted, tmp_path, point, fault):
    """The same faults at the named points of a run (workspace.failpoint raises them there)."""
    ws = tmp_path / "ws"
    make_book(ws / "inbox" / "billing.xlsx")
    result = bb("run", "--as-of", AS_OF, "--jobs", "2", cwd=ws, env={"BILLING_BATCH_FAILPOINT": f"{point}:{fault}"})
    assert result.returncode == 2, said(result)
    assert {"ENOSPC": "the disk is full", "EROFS": "read-only", "ENOENT": "vanished"}[fault] in said(result)
    assert "Nothing billed is lost" in said(result)
    check = bb("ledger", "check", "--json", cwd=ws)
    assert {f["check"] for f in json.loads(check.stdout)} <= {"pdf"}, check.stdout
    assert leftovers(ws / "output") == []

    rerun = bb("run", "--as-of", AS_OF, "--jobs", "2", cwd=ws)
    assert rerun.returncode == 0, said(rerun)
    assert snapshot(ws / "output") == uninterrupted[0]
    assert bb("ledger", "check", cwd=ws).returncode == 0


def test_the_error_log_of_a_bug_goes_where_it_can_be_written(tmp_path, small_disk, monkeypatch):
    ws = tmp_path / "ws"
    make_book(ws / "inbox" / "billing.xlsx")
    result = bb("run", "--as-of", AS_OF, "--jobs", "1", cwd=ws, env={"BILLING_BATCH_FAILPOINT": "writing-review:bug"})
    assert result.returncode == 4 and "Traceback" not in result.stdout + result.stderr
    assert "Please send output/billing-batch-error.log" in " ".join(result.stdout.split())
    assert "Traceback" in (ws / "output" / "billing-batch-error.log").read_text()

    mount(small_disk, "size=1m,ro")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    assert faults.error_log("details", small_disk / "output") == tmp_path / "billing-batch-error.log"
    monkeypatch.setattr(tempfile, "tempdir", str(small_disk))
    assert faults.error_log("details", small_disk / "output") is None
