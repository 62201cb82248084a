"""The ledger across releases: versions, migrations, backups, and damaged or foreign files."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import openpyxl
import pytest

from billing_batch.ledger import migrations as ledger_module
from billing_batch import pipeline
from billing_batch.engine.plan import differences, usage_ids
from billing_batch.model import UsageLines
from billing_batch.ledger.backups import Backups
from billing_batch.ledger.migrations import SCHEMA_VERSION
from billing_batch.ledger.store import Ledger, LedgerUnusable
from workbooks import settings, simple_book

FIXTURES = Path(__file__).parent / "fixtures"
RELEASE_0_1_0 = FIXTURES / "ledger-0.1.0"  # made by release 0.1.0 from its sample workbook (see its README)
# Every release's ledger, made by that release from its sample workbook: folder -> its ledger version.
RELEASES = {RELEASE_0_1_0: 0, FIXTURES / "ledger-0.2.0": 3, FIXTURES / "ledger-0.3.0": 5}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True)


def bill(book: Path, out: Path, as_of: str, *extra: str) -> subprocess.CompletedProcess:
    return run_cli("run", "--input", str(book), "--output", str(out), "--as-of", as_of, "--jobs", "1", *extra)


def rows(path: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def pragma(path: Path, name: str) -> int:
    return rows(path, f"PRAGMA {name}")[0][0]


INPUTS = ("billing.xlsx", "*.csv")  # the workbook a release billed from, and any Partner Center file beside it


def copy_release(release: Path, tmp_path: Path) -> Path:
    """A copy of a release's output folder, to upgrade."""
    out = tmp_path / "out"
    shutil.copytree(release, out, ignore=shutil.ignore_patterns("README.md", *INPUTS))
    return out


def inbox(release: Path, tmp_path: Path) -> Path:
    """The input folder the release billed from (its workbook and Partner Center files), as its user corrects
    it on upgrading: the samples of 0.2.0 and 0.3.0 bill a US customer at the standard rate of 0% from a
    seller registered for VAT, which is BB129 now; the customer gets the category that says why (O,
    outside the scope of VAT). Its invoices, all at 0%, stay as they are."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    for pattern in INPUTS:
        for path in release.glob(pattern):
            shutil.copy2(path, folder)
    wb = openpyxl.load_workbook(folder / "billing.xlsx")
    customers = wb["Customers"]
    headers = [cell.value for cell in customers[1]]
    if "Tax Category" in headers:
        for row in customers.iter_rows(min_row=2):
            if row[0].value == "CUST-003":
                row[headers.index("Tax Category")].value = "O"
                row[headers.index("Tax Exemption Reason")].value = "Outside the scope of EU VAT"
        wb.save(folder / "billing.xlsx")
    return folder


@pytest.fixture
def old(tmp_path: Path) -> Path:
    return copy_release(RELEASE_0_1_0, tmp_path)


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_an_older_release_s_ledger_is_backed_up_upgraded_and_billed_on(release: Path, tmp_path: Path):
    old, book = copy_release(release, tmp_path), inbox(release, tmp_path)
    before = rows(old / "ledger.sqlite", "SELECT * FROM invoices ORDER BY seq")
    sent = rows(old / "ledger.sqlite", "SELECT * FROM post_tasks ORDER BY number, task")
    assert pragma(old / "ledger.sqlite", "user_version") == RELEASES[release] < SCHEMA_VERSION and before and sent

    rerun = bill(book, old, "2026-11-02")  # the day the older release billed
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "No new invoice" in rerun.stdout
    assert pragma(old / "ledger.sqlite", "user_version") == SCHEMA_VERSION
    # The first backup, taken before the migration, is the old ledger as it was.
    backup = Backups(old / "backups").all()[0]
    assert pragma(backup, "user_version") == RELEASES[release]
    assert rows(backup, "SELECT * FROM invoices ORDER BY seq") == before
    # What was billed and done is all still there.
    after = rows(old / "ledger.sqlite", "SELECT * FROM invoices ORDER BY seq")
    assert [r[:23] for r in after] == [r[:23] for r in before]
    assert rows(old / "ledger.sqlite", "SELECT * FROM post_tasks ORDER BY number, task") == sent
    for made in (release / "invoices").iterdir():  # PDFs and usage detail workbooks
        assert (old / "invoices" / made.name).read_bytes() == made.read_bytes()

    december = bill(book, old, "2026-12-02")
    assert december.returncode == 0, december.stdout + december.stderr
    numbers = [n for (n,) in rows(old / "ledger.sqlite", "SELECT number FROM invoices ORDER BY seq")]
    assert len(numbers) > len(before)
    assert numbers == [f"INV-{seq:06d}" for seq in range(1, len(numbers) + 1)]  # the numbering goes on
    live = rows(old / "ledger.sqlite", "SELECT contract_id, cycle_start FROM invoices WHERE status <> 'Replaced'")
    assert len(live) == len(set(live))
    for number in numbers[len(before):]:
        assert (old / "invoices" / f"{number}.pdf").exists()
    # No usage row is billed twice, whether the older release billed it (0.1.0: one line per row) or this one.
    billed = rows(old / "ledger.sqlite", "SELECT i.contract_id, u.usage_id FROM usage_rows u JOIN invoices i "
                                         "USING (number) WHERE i.status <> 'Replaced'")
    billed_before = ("SELECT usage_id FROM invoice_lines WHERE usage_id IS NOT NULL" if RELEASES[release] < 3
                     else "SELECT usage_id FROM usage_rows")
    assert len(billed) > len(rows(backup, billed_before))
    assert len(billed) == len(set(billed))


def test_release_0_1_0_usage_lines_become_billed_rows_and_no_invoice_differs(old: Path):
    """Migration 2 gives each usage line of release 0.1.0 its row; the workbook that made those invoices
    (no Usage Lines setting: Summary now) would sum their rows into fewer lines, rounded otherwise, and
    yet none of them differs from what it would bill: usage is compared by rows, not by line shape."""
    lines = rows(old / "ledger.sqlite", "SELECT number, line, usage_id, quantity, unit_price FROM invoice_lines "
                                        "WHERE usage_id IS NOT NULL")
    options = pipeline.Options(input=RELEASE_0_1_0 / "billing.xlsx", output=old, as_of=date(2026, 11, 2))
    checked = pipeline.load(options, pipeline.Report())
    assert checked.inputs.settings.usage_lines is UsageLines.SUMMARY
    state = pipeline.read_state(options, checked)  # upgraded in memory
    got = [(i.number, n, r.usage_id, str(r.quantity), str(r.unit_price))
           for i in state.invoices for n, line in enumerate(i.draft.lines, 1) for r in line.usage_rows]
    assert sorted(got) == sorted(lines) and len(lines) > 100
    summed = [i for i in state.invoices if len(usage_ids(i.draft)) > len(
        {(ln.product, ln.description, ln.unit_price) for ln in i.draft.lines if ln.usage_rows})]
    assert summed  # invoices that Summary would lay out in fewer lines
    assert differences(checked.inputs, checked.set_aside, state.live.values()) == {}


@pytest.mark.parametrize("release", RELEASES, ids=lambda p: p.name)
def test_a_read_only_command_reads_an_old_ledger_without_changing_it(release: Path, tmp_path: Path):
    old = copy_release(release, tmp_path)
    ledger = old / "ledger.sqlite"
    data = ledger.read_bytes()
    result = run_cli("run", "--preview", "--json", "--input", str(inbox(release, tmp_path)),
                     "--output", str(old), "--as-of", "2026-11-02")
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"invoices": []' in result.stdout  # it knows what the older release billed
    assert ledger.read_bytes() == data
    assert not (old / "backups").exists()


def test_a_migration_is_all_or_nothing(tmp_path: Path, monkeypatch):
    path = tmp_path / "ledger.sqlite"
    Ledger(path).close()
    failing = "ALTER TABLE invoices ADD COLUMN note TEXT;\nCREATE TABLE invoices (x);"  # the second fails
    monkeypatch.setattr(ledger_module, "MIGRATIONS", ledger_module.MIGRATIONS + (failing,))
    monkeypatch.setattr(ledger_module, "SCHEMA_VERSION", SCHEMA_VERSION + 1)
    with pytest.raises(sqlite3.OperationalError):
        Ledger(path)
    assert pragma(path, "user_version") == SCHEMA_VERSION
    assert "note" not in {r[1] for r in rows(path, "PRAGMA table_info(invoices)")}


def test_backups_after_each_change_the_newest_kept(tmp_path: Path):
    out = tmp_path / "out"
    book = simple_book(tmp_path / "billing.xlsx", Settings=settings(**{"Ledger Backups": 2}))
    for as_of in ("2026-01-02", "2026-02-02", "2026-03-02"):
        assert bill(book, out, as_of).returncode == 0
    backups = Backups(out / "backups").all()
    assert len(backups) == 2
    newest = rows(backups[-1], "SELECT number FROM invoices ORDER BY seq")
    assert newest and newest == rows(out / "ledger.sqlite", "SELECT number FROM invoices ORDER BY seq")
    assert bill(book, out, "2026-03-02").returncode == 0  # nothing changed: no backup
    assert Backups(out / "backups").all() == backups


def garble(path: Path) -> None:
    """Overwrite the second page, as a failing disk would."""
    with open(path, "r+b") as f:
        f.seek(pragma(path, "page_size"))
        f.write(b"\xde\xad\xbe\xef" * 64)


def not_sqlite(path: Path) -> None:
    path.write_text("Customer,Amount\nACME,100\n")


def foreign(path: Path) -> None:
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")


def newer(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


@pytest.mark.parametrize(("damage", "words"), [
    (garble, "is damaged"),
    (not_sqlite, "not an SQLite database"),
    (foreign, "another program's SQLite database"),
    (newer, "newer release"),
])
def test_a_damaged_or_foreign_ledger_is_refused_and_a_backup_restores_it(tmp_path: Path, damage, words):
    out = tmp_path / "out"
    book = simple_book(tmp_path / "billing.xlsx")
    assert bill(book, out, "2026-02-02").returncode == 0
    billed = rows(out / "ledger.sqlite", "SELECT number, total FROM invoices ORDER BY seq")
    newest = Backups(out / "backups").newest()
    damage(out / "ledger.sqlite")
    damaged = (out / "ledger.sqlite").read_bytes()
    files = sorted(p for p in out.rglob("*") if p.is_file())

    for command in ("run", "schedules"):
        result = run_cli(command, "--input", str(book), "--output", str(out), "--as-of", "2026-03-02")
        assert result.returncode == 2, result.stdout + result.stderr
        text = " ".join(result.stdout.split())
        assert words in text and "Traceback" not in result.stdout + result.stderr
        if damage is not newer:
            assert str(newest) in text and "copy the backup to" in text
        assert (out / "ledger.sqlite").read_bytes() == damaged
        assert sorted(p for p in out.rglob("*") if p.is_file()) == files

    if damage is newer:
        return
    shutil.copyfile(newest, out / "ledger.sqlite")  # what the message says to do
    checked = run_cli("ledger", "check", "--output", str(out))
    assert checked.returncode == 0, checked.stdout
    again = bill(book, out, "2026-02-02")
    assert again.returncode == 0 and "No new invoice" in again.stdout
    assert rows(out / "ledger.sqlite", "SELECT number, total FROM invoices ORDER BY seq") == billed


def test_an_empty_backup_folder_is_said(tmp_path: Path):
    path = tmp_path / "ledger.sqlite"
    not_sqlite(path)
    with pytest.raises(LedgerUnusable, match="There is no backup in"):
        Ledger(path, read_only=True)
