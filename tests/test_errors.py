"""The error catalogue, case by case: every code has a folder in tests/errors/ that triggers it.

A case folder is named <CODE>-<short-name> and holds:
  case.json     how to build the input (see build_input) and the exit code `check` must give
  expected.txt  the problem exactly as `billing-batch check` prints it: code and title, the
                location line, the value as typed, and the message with its one-sentence fix
                ({input} stands for the input's path, {folder} for the folder it is in)

The workbook is built at test time from a valid two-customer book (tests/workbooks.simple_book),
edited as case.json says; no binary files are kept.
"""
from __future__ import annotations

import csv
import io
import json
import random
import shutil
import zipfile
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from rich.console import Console
from workbooks import simple_book

from benchmarks import partner_center_files, partner_center_licences
from billing_batch import cli
from billing_batch.cli import terminal
from billing_batch.errors import CATALOGUE
from billing_batch.inputs import workbook_parts

CASES = Path(__file__).parent / "errors"
DOCS = Path(__file__).parent.parent / "docs" / "errors.md"
CASE_DIRS = sorted(p for p in CASES.iterdir() if p.is_dir())


# ---------------------------------------------------------------- hostile and broken files


def entity_bomb(book: Path, part: str = "xl/worksheets/sheet1.xml", padding: int = 0) -> Path:
    """Rewrite one XML part of a real workbook to carry a billion-laughs entity bomb.
    padding puts a comment before the DOCTYPE, to push it past workbook.py's own early look."""
    lol = ['<!ENTITY lol0 "lol">'] + [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doctype = f'<!DOCTYPE lolz [{"".join(lol)}]>'
    comment = f"<!--{' ' * padding}-->" if padding else ""

    def bomb(xml: bytes) -> bytes:
        if xml.startswith(b"<?xml"):
            xml = xml.split(b"?>", 1)[1]
        root_end = xml.index(b">") + 1
        # referenced inside the root element's text, so a parser that expands entities must expand it
        return (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n' + comment.encode() + doctype.encode()
                + xml[:root_end] + b"<x>&lol9;</x>" + xml[root_end:])

    return _rewrite(book, {part: bomb})


def zip_bomb(book: Path, megabytes: int = 20) -> Path:
    """Add a part that unpacks to many megabytes from a few kilobytes, as a zip bomb does."""
    with zipfile.ZipFile(book, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/media/image1.bin", b"\0" * (megabytes * 1024 * 1024))
    return book


def _rewrite(book: Path, edits: dict) -> Path:
    with zipfile.ZipFile(book) as z:
        parts = [(info, z.read(info)) for info in z.infolist()]
    with zipfile.ZipFile(book, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in parts:
            z.writestr(info.filename, edits[info.filename](data) if info.filename in edits else data)
    return book


def ole_file(path: Path, stream: str) -> Path:
    """An OLE compound file, as Excel writes an encrypted workbook (stream EncryptedPackage)
    or an old .xls (stream Workbook); directory entries hold stream names in UTF-16."""
    path.write_bytes(workbook_parts.OLE_MAGIC + b"\0" * 504 + stream.encode("utf-16-le") + b"\0" * 1024)
    return path


# ---------------------------------------------------------------- building a case's input


def cell_value(value):
    if isinstance(value, dict) and "date" in value:
        return date.fromisoformat(value["date"])
    return value


def build_input(case: dict, tmp: Path) -> Path:
    """The input for a case. Keys of case.json, applied in this order:
    file        "text" | "password" | "xls" | "empty-folder": not a workbook at all
    append      {sheet: [row as {header: value}]}: rows added to the valid book
    cells       {"Sheet!E2": value}: cells overwritten (on a new sheet if the book has none of that name);
                {"date": "2026-01-31"} is a date,
                "#REF!" and the like are stored as Excel error cells
    merge       ["Sheet!E3:E4"]: ranges merged, as a person merges cells
    rename      {sheet: new title}
    delete      [sheet]
    hide        {sheet: "hidden" | "veryHidden"}: the sheet is hidden, as Excel's Hide does
    copy_as     "billing - Copy.xlsx": the saved workbook is copied beside itself under this name; the input is
                then the folder
    size_mb     the saved file is padded to this size
    post        "zip-bomb" | "entity-bomb" | "entity-bomb-padded": the saved file is rewritten
    limits      workbook.Limits fields for this run, e.g. {"max_rows": 5}
    files       {"look/invoice.html": text}: files written beside the workbook (a templates folder)
    usage_file  {"tenants": 2, "rows": 40, "contracts": {"CTR-1": 0}, "drop": ["Quantity"], "header": "a,b",
                "cells": {"3:BillingCurrency": "EUR"}}: a January 2026 Partner Center usage file (usage.csv, from
                benchmarks.partner_center_files) beside the workbook; contracts gives each contract's Partner Center
                Customer ID as the tenant of that index; drop removes columns, header replaces the first row, cells
                overwrite values ("line:column"), repeat appends copies of lines, encoding writes the file in
                another ("cp1252"), cut drops that many bytes from its end. The input is then the folder.
    licence_file {"tenants": 2, "months": 2, "contracts": {"CTR-1": 0}, ...}: a Partner Center licence file
                (licences.csv, from benchmarks.partner_center_licences: the charges of `months` months from
                January 2026) beside the workbook; contracts, drop, header, cells, repeat, encoding and cut as for
                usage_file. The input is then the folder.
    billed_first {"as_of": "2026-02-02"}: before the check, `billing-batch run` bills the input without its
                licence file into billed/, and the check reads that ledger (see bill_first)
    """
    path = tmp / "billing.xlsx"
    kind = case.get("file")
    if kind == "text":
        path.write_text("Customer ID,Name\nCUST-1,Acme\n")
        return path
    if kind == "password":
        return ole_file(path, "EncryptedPackage")
    if kind == "xls":
        return ole_file(path, "Workbook")
    if kind == "empty-folder":
        (tmp / "inbox").mkdir()
        return tmp / "inbox"
    for name, text in case.get("files", {}).items():
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)
    simple_book(path)
    wb = openpyxl.load_workbook(path)
    for sheet, rows in case.get("append", {}).items():
        ws = wb[sheet]
        headers = [c.value for c in ws[1]]
        for row in rows:
            for h in row:  # a column the valid book does not have, such as Partner Center Subscription ID
                if h not in headers:
                    headers.append(h)
                    ws.cell(1, len(headers), h)
            ws.append([cell_value(row.get(h)) for h in headers])
    for ref, value in case.get("cells", {}).items():
        sheet, address = ref.split("!")
        ws = wb[sheet] if sheet in wb.sheetnames else wb.create_sheet(sheet)
        ws[address] = cell_value(value)
    for ref in case.get("merge", []):
        sheet, cells = ref.split("!")
        wb[sheet].merge_cells(cells)
    for sheet, title in case.get("rename", {}).items():
        wb[sheet].title = title
    for sheet in case.get("delete", []):
        del wb[sheet]
    for sheet, state in case.get("hide", {}).items():
        wb[sheet].sheet_state = state
    if "usage_file" in case:
        _usage_file(case["usage_file"], wb, tmp)
    if "licence_file" in case:
        _licence_file(case["licence_file"], wb, tmp)
    wb.save(path)
    if "copy_as" in case:
        shutil.copy(path, tmp / case["copy_as"])
        return tmp
    if "usage_file" in case or "licence_file" in case:
        return tmp
    if "size_mb" in case:
        # padded to an exact size, so the message is the same on every run; the size is checked first
        with path.open("ab") as f:
            f.write(b"\0" * (int(case["size_mb"] * 1024 * 1024) - path.stat().st_size))
    post = case.get("post")
    if post == "zip-bomb":
        zip_bomb(path)
    elif post == "entity-bomb":
        entity_bomb(path)
    elif post == "entity-bomb-padded":
        entity_bomb(path, padding=8000)
    return path


def _usage_file(spec: dict, wb, tmp: Path) -> None:
    made = partner_center_files.generate(tmp / "usage.csv", 1, spec.get("tenants", 2), spec.get("rows", 40),
                                         date(2026, 1, 1), ("USD",))
    _map_tenants(spec, wb, [t.customer_id for t in made])
    _edit_csv(tmp / "usage.csv", spec)


def _licence_file(spec: dict, wb, tmp: Path) -> None:
    tenants = partner_center_files.tenants(random.Random(1), spec.get("tenants", 2), ("USD",))
    rows = partner_center_licences.rows(1, tenants, date(2026, 1, 1), spec.get("months", 2))
    partner_center_licences.write(tmp / "licences.csv", rows)
    _map_tenants(spec, wb, [t.customer_id for t in tenants])
    _edit_csv(tmp / "licences.csv", spec)


def _map_tenants(spec: dict, wb, tenants: list[str]) -> None:
    """Each contract of spec["contracts"] bills the tenant of that index (column L, Partner Center Customer ID)."""
    contracts = wb["Contracts"]
    contracts["L1"] = "Partner Center Customer ID"
    for row in contracts.iter_rows(min_row=2):
        if row[0].value in spec.get("contracts", {}):
            contracts.cell(row[0].row, 12, tenants[spec["contracts"][row[0].value]])


def _edit_csv(path: Path, spec: dict) -> None:
    """A Partner Center file damaged as spec says: cells, repeat, drop, header, encoding, cut (see build_input)."""
    with path.open(newline="") as f:
        lines = list(csv.reader(f))
    for ref, value in spec.get("cells", {}).items():
        line, column = ref.split(":")
        lines[int(line) - 1][lines[0].index(column)] = value
    lines += [list(lines[int(line) - 1]) for line in spec.get("repeat", [])]
    for column in spec.get("drop", []):
        k = lines[0].index(column)
        lines = [row[:k] + row[k + 1:] for row in lines]
    if "header" in spec:
        lines[0] = spec["header"].split(",")
    with path.open("w", newline="", encoding=spec.get("encoding")) as f:
        csv.writer(f).writerows(lines)
    if "cut" in spec:  # as a download that stopped before the end
        path.write_bytes(path.read_bytes()[:-spec["cut"]])


def bill_first(case: dict, source: Path, tmp: Path) -> tuple[str, ...]:
    """For billed_first: bill the input as it was before its licence file came (the file moved aside), into
    tmp/billed; the check's options to read that ledger. Its own --output stays unwritten."""
    if "billed_first" not in case:
        return ()
    aside = tmp / "licences.csv.aside"
    (tmp / "licences.csv").rename(aside)
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(terminal, "console", Console(file=out, highlight=False, width=1000))
        patch.setattr("sys.stdout", out)
        code = cli.main(["run", "--input", str(source), "--output", str(tmp / "billed"), "--jobs", "1",
                         "--as-of", case["billed_first"]["as_of"]])
    assert code == 0, out.getvalue()
    aside.rename(tmp / "licences.csv")
    return "--ledger", str(tmp / "billed" / "ledger.sqlite")


def run_check(case_dir: Path, tmp: Path, monkeypatch, *extra: str) -> tuple[int, str, Path]:
    case = json.loads((case_dir / "case.json").read_text())
    source = build_input(case, tmp)
    extra = (*extra, *bill_first(case, source, tmp))
    options = {"max_file_mb": "--max-input-mb", "max_rows": "--max-rows"}
    extra = (*extra, *(arg for name, value in case.get("limits", {}).items() for arg in (options[name], str(value))))
    out = io.StringIO()
    # wide, so that no message is wrapped at 80 columns
    monkeypatch.setattr(terminal, "console", Console(file=out, highlight=False, width=1000))
    monkeypatch.setattr("sys.stdout", out)
    code = cli.main(["check", "--input", str(source), "--output", str(tmp / "out"), "--as-of", "2026-02-02", *extra])
    return code, out.getvalue(), source


def expected_block(case_dir: Path, source: Path) -> list[str]:
    text = (case_dir / "expected.txt").read_text().replace("{input}", str(source))
    return text.replace("{folder}", str(source.parent.resolve())).rstrip("\n").split("\n")


# ---------------------------------------------------------------- the tests


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=lambda p: p.name)
def test_case_prints_its_problem(case_dir: Path, tmp_path: Path, monkeypatch):
    code, stdout, source = run_check(case_dir, tmp_path, monkeypatch)
    case = json.loads((case_dir / "case.json").read_text())
    lines = stdout.splitlines()
    block = expected_block(case_dir, source)
    starts = [i for i in range(len(lines)) if lines[i:i + len(block)] == block]
    assert starts, "expected\n" + "\n".join(block) + "\n\nin the output\n" + stdout
    assert block[0].startswith(case_dir.name.split("-")[0] + " ")
    assert code == case["exit_code"]
    assert "Traceback" not in stdout
    assert not (tmp_path / "out").exists(), "check must write nothing"


@pytest.mark.parametrize("case_dir", CASE_DIRS, ids=lambda p: p.name)
def test_case_as_json(case_dir: Path, tmp_path: Path, monkeypatch):
    code, stdout, source = run_check(case_dir, tmp_path, monkeypatch, "--json")
    report = json.loads(stdout)
    block = expected_block(case_dir, source)
    wanted_code, location = block[0].split(" ")[0], block[1].strip()
    value = block[2].strip()[len("value: "):] if block[2].strip().startswith("value: ") else None
    matches = [p for p in report["problems"] if p["code"] == wanted_code and p["location"] == location]
    assert matches, report
    if value is not None:
        assert repr(matches[0]["value"]) == value
    assert matches[0]["fatal"] == CATALOGUE[wanted_code][1]
    assert report["exit_code"] == code == json.loads((case_dir / "case.json").read_text())["exit_code"]


def test_every_code_has_a_case_and_every_case_a_code():
    codes = {p.name.split("-")[0] for p in CASE_DIRS}
    assert set(CATALOGUE) - codes == set(), "add a case folder to tests/errors/ for these codes"
    assert codes - set(CATALOGUE) == set()
    for case_dir in CASE_DIRS:
        assert {p.name for p in case_dir.iterdir()} >= {"case.json", "expected.txt"}, case_dir.name


def test_every_code_is_documented_for_finance():
    text = DOCS.read_text()
    for code, (title, _, _) in CATALOGUE.items():
        assert f"{code} {title}" in text, f"docs/errors.md has no entry '{code} {title}'"


def test_fatal_codes_are_the_bb0_and_bb2_series():
    for code, (_, fatal, fix) in CATALOGUE.items():
        assert fatal == (not code.startswith("BB1")), code
        assert fix.endswith((".", "{hint}")) and fix.count(". ") == 0, f"{code}: the fix is one sentence"


def test_the_entity_bomb_cases_run_where_openpyxl_parses_with_lxml():
    """factur-x brings lxml, and with it openpyxl parses through lxml, not defusedxml: the BB008 cases above
    hold there only because workbook.py refuses the DOCTYPE before any parser sees it."""
    import openpyxl.xml

    assert openpyxl.xml.LXML
    assert any(p.name.startswith("BB008-") for p in CASE_DIRS)
