"""`billing-batch init`: the starter workbook holds what the docs list, explains it, and bills as it stands."""
from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter, range_boundaries
from pypdf import PdfReader

from billing_batch import cli
from billing_batch.inputs import starter_workbook
from billing_batch.model import ChargeType, EInvoice, Frequency, Policy, UsageLines
from billing_batch.money import KNOWN_CURRENCIES
from billing_batch.model import SMTP_SECURITY as SECURITY
from billing_batch.engine.tax import CATEGORIES
from billing_batch.inputs.validate.cells import Status, label_of
from billing_batch.inputs.workbook import SCHEMA

DOC = Path(__file__).resolve().parent.parent / "docs" / "workbook.md"
# The batch's accepted values for each fixed-choice column.
CHOICES = {
    "Billing Frequency": [label_of(f) for f in Frequency],
    "Billing Policy": [p.value for p in Policy],
    "Charge Type": [c.value for c in ChargeType],
    "Status": [s.value for s in Status],
    "Tax Category": list(CATEGORIES),
    "Usage Lines": [u.value for u in UsageLines],
    "E-Invoice": [e.value for e in EInvoice],
}
DATES = {"Start Date", "End Date", "Date", "Mandate Date", "Billed Through"}
RATES = {"Tax Rate", "Discount"}


def documented() -> tuple[dict[str, set[str]], list[str]]:
    """The input table of docs/workbook.md: sheet -> columns, and the Settings keys it lists."""
    text = DOC.read_text()
    table = text[text.index("| Sheet | Column |"):].split("\n\n")[0].splitlines()[2:]
    sheets: dict[str, set[str]] = {}
    keys: list[str] = []
    sheet = None
    for line in table:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        sheet = cells[0].replace("(optional)", "").strip() or sheet
        sheets.setdefault(sheet, set()).update(c.strip().rstrip("*") for c in cells[1].split(","))
        if sheet == "Settings":
            keys += [k.strip() for k in re.sub(r"\([^)]*\)", "", cells[2]).split(",")]
    return sheets, keys


def headers(ws) -> list[str]:
    return [c.value for c in ws[1]]


def list_options(ws) -> dict[str, tuple[list[str], object]]:
    """Cell range -> (options, validation) of every list validation on a sheet."""
    found = {}
    for dv in ws.data_validations.dataValidation:
        assert dv.type == "list"
        found[str(dv.sqref)] = (dv.formula1.strip('"').split(","), dv)
    return found


def init(folder: Path | None, capsys) -> tuple[int, str]:
    code = cli.main(["init", *([str(folder)] if folder else [])])
    return code, capsys.readouterr().out


@pytest.fixture
def starter(tmp_path: Path, capsys) -> Path:
    code, out = init(tmp_path, capsys)
    assert code == 0, out
    path = tmp_path / "inbox" / "billing.xlsx"
    assert str(path) in " ".join(out.split())  # printed as written, though the console wraps lines
    for step in ("billing-batch check", "billing-batch run"):
        assert step in out
    return path


def test_every_documented_sheet_and_column_with_a_note(starter: Path):
    wb = openpyxl.load_workbook(starter)
    sheets, keys = documented()
    assert {"Customers", "Contracts", "Subscriptions", "Usage", "Products", "Settings"} <= set(sheets)
    for sheet, columns in sheets.items():
        ws = wb[sheet]
        assert columns <= set(headers(ws)), sheet
        assert set(SCHEMA[sheet][1]) <= set(headers(ws)), sheet  # every column the reader reads
        assert "Billed Through" not in columns or sheet == "Contracts"
        for cell in ws[1]:
            assert cell.font.bold and cell.comment is not None and cell.value in cell.comment.text, cell.value
            assert "Required." in cell.comment.text or "When blank:" in cell.comment.text
        assert ws.freeze_panes == "A2"
    assert "Billed Through" in headers(wb["Contracts"])
    settings = {row[0].value: row for row in wb["Settings"].iter_rows(min_row=2)}
    assert set(keys) <= set(settings)
    assert {"Logo", "Templates Folder", "Catch-Up Limit", "Ledger Backups"} <= set(keys)
    for key, (cell, _) in settings.items():
        assert cell.comment is not None and key in cell.comment.text
    assert settings["Catch-Up Limit"][1].value == 3 and settings["Ledger Backups"][1].value == 12
    assert settings["Company Name"][1].value


def test_fixed_choices_are_drop_downs_of_what_the_batch_accepts(starter: Path):
    wb = openpyxl.load_workbook(starter)
    seen = set()
    for ws in (ws for ws in wb.worksheets if ws.title != "Settings"):
        validations = list_options(ws)
        for i, name in enumerate(headers(ws), start=1):
            letter = get_column_letter(i)
            mine = [(opts, dv, ref) for ref, (opts, dv) in validations.items()
                    if range_boundaries(ref)[0] == i]
            if name not in CHOICES and name != "Currency":
                assert not mine, (ws.title, name)
                continue
            seen.add(name)
            [(options, dv, ref)] = mine
            first_col, first_row, last_col, last_row = range_boundaries(ref)
            assert (first_col, last_col, first_row) == (i, i, 2) and last_row >= 1000, ref  # data rows, not the header
            if name == "Currency":
                assert set(options) <= KNOWN_CURRENCIES and {"USD", "EUR", "GBP"} <= set(options)
                assert dv.errorStyle == "warning"  # other codes the batch knows may be typed
            else:
                assert options == CHOICES[name], name
                assert dv.errorStyle in (None, "stop")
            for row in (2, 3):
                value = ws[f"{letter}{row}"].value
                assert value is None or value in options
    assert seen == {*CHOICES, "Currency"}

    ws = wb["Settings"]
    rows = {row[0].value: row[1].coordinate for row in ws.iter_rows(min_row=2)}
    validations = list_options(ws)
    assert [o.upper() for o in validations[rows["SMTP Security"]][0]] == list(SECURITY)
    assert set(validations[rows["Default Currency"]][0]) <= KNOWN_CURRENCIES


def test_dates_rates_and_prices_are_formatted(starter: Path):
    wb = openpyxl.load_workbook(starter)
    checked = set()
    for ws in wb.worksheets:
        for i, name in enumerate(headers(ws), start=1):
            letter = get_column_letter(i)
            wanted = ("yyyy-mm-dd" if name in DATES else "%" if name in RATES
                      else "0.00" if name == "Unit Price" else None)
            if wanted is None:
                continue
            checked.add(name)
            assert wanted in ws.column_dimensions[letter].number_format, (ws.title, name)  # rows added by hand
            for row in (2, 3):
                cell = ws[f"{letter}{row}"]
                assert wanted in cell.number_format, (ws.title, name)
                if cell.value is not None and name in DATES:
                    assert cell.is_date
    assert checked == DATES | RATES | {"Unit Price"}
    settings = {row[0].value: row[1] for row in wb["Settings"].iter_rows(min_row=2)}
    assert "%" in settings["Review Change Threshold"].number_format


def test_the_examples_check_clean_and_bill(starter: Path, tmp_path: Path, capsys):
    inbox, out = tmp_path / "inbox", tmp_path / "output"
    assert not out.exists()  # init makes no output folder: run does
    assert cli.main(["check", "--input", str(inbox), "--output", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []

    assert cli.main(["run", "--input", str(inbox), "--output", str(out), "--jobs", "1"]) == 0
    pdfs = sorted((out / "invoices").glob("*.pdf"))
    contracts = [row[0] for row in openpyxl.load_workbook(starter)["Contracts"].iter_rows(min_row=2, values_only=True)]
    billed = {c: 0 for c in contracts}
    for pdf in pdfs:
        text = "\n".join(page.extract_text() for page in PdfReader(pdf).pages)
        [contract] = [c for c in contracts if c in text]  # Contract or Vertrag: the second customer is German
        billed[contract] += 1
    assert all(1 <= n <= 3 for n in billed.values()), billed  # every example bills, within a catch-up limit of 3


@pytest.mark.parametrize("today", [date(2026, 1, 1), date(2026, 3, 31), date(2028, 2, 29), date(2026, 12, 31)])
def test_the_examples_bill_one_to_three_invoices_a_contract_whatever_the_day(today: date, tmp_path: Path, capsys):
    book = starter_workbook.write(tmp_path / "inbox" / "billing.xlsx", today)
    code = cli.main(["run", "--preview", "--json", "--input", str(book), "--output", str(tmp_path / "out"),
                     "--as-of", today.isoformat()])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["problems"] == []
    counts: dict[str, int] = {}
    for invoice in result["invoices"]:
        counts[invoice["contract_id"]] = counts.get(invoice["contract_id"], 0) + 1
    assert len(counts) == 2 and all(1 <= n <= 3 for n in counts.values()), counts


def test_a_second_init_refuses_and_leaves_the_file_alone(starter: Path, tmp_path: Path, capsys):
    before = starter.read_bytes()
    code, out = init(tmp_path, capsys)
    assert code == 2
    assert "already holds billing.xlsx" in out and "nothing was written" in out
    assert starter.read_bytes() == before


def test_init_refuses_an_inbox_that_holds_another_workbook(tmp_path: Path, capsys):
    other = tmp_path / "inbox" / "customers.xlsx"
    other.parent.mkdir()
    other.write_bytes(b"not really a workbook")
    code, out = init(tmp_path, capsys)
    assert code == 2 and "customers.xlsx" in out
    assert sorted(p.name for p in other.parent.iterdir()) == ["customers.xlsx"]


def test_init_defaults_to_the_current_folder(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out = init(None, capsys)
    assert code == 0 and (tmp_path / "inbox" / "billing.xlsx").is_file()
    assert "cd " not in out  # already there
