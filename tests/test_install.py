"""The package as users install it: a wheel in a fresh virtual environment, run from a folder outside the
checkout, bills the sample workbook exactly as the editable install does."""
from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AS_OF = "2026-11-02"


def invoices(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return db.execute("SELECT number, contract_id, cycle_start, currency, total FROM invoices ORDER BY seq").fetchall()


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The billing-batch command of a wheel built from this checkout, installed with its dependencies."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "output",
                                                                "inbox", "__pycache__", ".pytest_cache",
                                                                ".hypothesis", "fixtures", ".cache"))
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp / "dist"), str(source))
    (wheel,) = (tmp / "dist").glob("billing_batch-*.whl")
    venv.create(tmp / "venv", with_pip=True)
    run(str(tmp / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        str(wheel))
    return tmp / "venv" / "bin" / "billing-batch"


def test_the_wheel_bills_the_sample_like_the_editable_install(installed: Path, tmp_path: Path):
    work = tmp_path / "work"
    (work / "inbox").mkdir(parents=True)
    for source in (REPO / "sample_data").iterdir():  # the workbook and the Partner Center usage file
        shutil.copy(source, work / "inbox")
    result = run(str(installed), "run", "--as-of", AS_OF, cwd=work)  # the defaults: inbox/ and output/
    assert "Review:" in result.stdout

    editable = tmp_path / "editable"
    run(sys.executable, "-m", "billing_batch", "run", "--input", str(REPO / "sample_data"), "--output", str(editable),
        "--as-of", AS_OF, "--new-ledger")  # the same contracts as the wheel's ledger, billed again on purpose
    assert invoices(work / "output") == invoices(editable) != []
    assert sorted(p.name for p in (work / "output" / "invoices").iterdir()) == \
        sorted(p.name for p in (editable / "invoices").iterdir())
    assert list((work / "output" / "runs").glob("*/review.html"))
    # the e-invoices too, byte for byte, and the wheel's own rule files pass them
    einvoices = sorted((work / "output" / "einvoices").iterdir())
    assert [p.read_bytes() for p in einvoices] == [(editable / "einvoices" / p.name).read_bytes() for p in einvoices]
    for xml in einvoices:
        said = run(str(installed), "validate-einvoice", str(xml), cwd=tmp_path).stdout
        assert "passes the rules" in " ".join(said.split())  # a long path wraps the line


def test_the_wheel_says_its_version(installed: Path, tmp_path: Path):
    import importlib.metadata

    result = run(str(installed), "--version", cwd=tmp_path)
    assert result.stdout.strip() == f"billing-batch {importlib.metadata.version('billing-batch')}"


def test_the_wheel_carries_the_translations(installed: Path, tmp_path: Path):
    """The compiled catalogs are package data: an installed wheel prints German invoices."""
    code = "from billing_batch import i18n; print(i18n.gettext_for('de_DE')('Invoice'))"
    result = run(str(installed.with_name("python")), "-c", code, cwd=tmp_path)
    assert result.stdout.strip() == "Rechnung"
