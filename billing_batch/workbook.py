"""Read the input workbooks into rows whose every cell knows where it came from."""
from __future__ import annotations

import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from billing_batch.errors import Problem, problem
from billing_batch.model import Source

# Sheet -> (required sheet, {column: required}). Names are matched ignoring case and spaces.
SCHEMA: dict[str, tuple[bool, dict[str, bool]]] = {
    "Customers": (True, {
        "Customer ID": True, "Name": True, "Email": False, "Address": False, "City": False,
        "Postal Code": False, "Country": False, "Tax Rate": False,
    }),
    "Contracts": (True, {
        "Contract ID": True, "Customer ID": True, "Start Date": True, "End Date": False,
        "Billing Frequency": True, "Billing Policy": False, "Billing Offset (Days)": False,
        "Currency": False, "Payment Terms (Days)": False, "Discount": False, "Status": False,
    }),
    "Subscriptions": (True, {
        "Subscription ID": True, "Contract ID": True, "Product": True, "Description": False,
        "Quantity": True, "Unit Price": True, "Start Date": False, "End Date": False,
        "Charge Type": False,
    }),
    "Usage": (False, {
        "Usage ID": True, "Contract ID": True, "Date": True, "Product": True,
        "Description": False, "Quantity": True, "Unit Price": True,
    }),
    "Settings": (False, {"Key": True, "Value": True}),
}

OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # encrypted .xlsx files are OLE containers


def normalise(name: object) -> str:
    return " ".join(str(name).split()).casefold() if name is not None else ""


@dataclass(frozen=True)
class Cell:
    value: object  # as openpyxl gives it: str, int, float, datetime, bool or None
    source: Source


@dataclass(frozen=True)
class Row:
    source: Source
    cells: dict[str, Cell]  # by the column's name as in SCHEMA

    def __getitem__(self, column: str) -> Cell:
        return self.cells.get(column) or Cell(None, self.source.at(column, None))


@dataclass
class RawBook:
    """The rows of every input workbook, sheets of the same name joined in file order."""

    files: list[Path] = field(default_factory=list)
    sheets: dict[str, list[Row]] = field(default_factory=lambda: {name: [] for name in SCHEMA})


def input_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.glob("*.xlsx") if not p.name.startswith("~$"))
    return [path]


def read(paths: Iterable[Path]) -> tuple[RawBook, list[Problem]]:
    """Read every workbook. Problems here are structural: they stop the run."""
    book, problems = RawBook(), []
    seen_sheets: set[str] = set()
    for path in paths:
        book.files.append(path)
        problems += _read_file(path, book, seen_sheets)
    if not book.files:
        problems.append(problem("BB004", Source(str(paths), ""), "No .xlsx workbook was found."))
    elif not problems:
        for name, (required, _) in SCHEMA.items():
            if required and name not in seen_sheets:
                files = ", ".join(p.name for p in book.files)
                problems.append(problem("BB002", Source(files, name), f"No sheet is named {name}."))
    return book, problems


def _read_file(path: Path, book: RawBook, seen_sheets: set[str]) -> list[Problem]:
    where = Source(path.name, "")
    try:
        with path.open("rb") as f:
            if f.read(4) == OLE_MAGIC:
                return [problem("BB006", where, f"{path.name} is protected with a password.")]
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (OSError, zipfile.BadZipFile, InvalidFileException, KeyError, ValueError) as exc:
        return [problem("BB001", where, f"{path.name} cannot be opened as an Excel workbook ({type(exc).__name__}).")]
    problems = []
    try:
        by_name = {normalise(name): name for name in SCHEMA}
        for ws in wb.worksheets:
            name = by_name.get(normalise(ws.title))
            if name is not None:
                seen_sheets.add(name)
                problems += _read_sheet(path.name, ws, name, book.sheets[name])
    finally:
        wb.close()
    return problems


def _read_sheet(file: str, ws, name: str, out: list[Row]) -> list[Problem]:
    columns = SCHEMA[name][1]
    wanted = {normalise(column): column for column in columns}
    rows = ws.iter_rows(values_only=True)
    header = next(rows, ())
    found = {}  # position -> (column, letter)
    for i, title in enumerate(header):
        column = wanted.get(normalise(title))
        if column is not None and column not in {c for c, _ in found.values()}:
            found[i] = (column, get_column_letter(i + 1))
    missing = [c for c, required in columns.items() if required and c not in {c for c, _ in found.values()}]
    if missing:
        return [
            problem("BB003", Source(file, ws.title, 1, column), f"The {ws.title} sheet has no {column} column.")
            for column in missing
        ]
    for number, values in enumerate(rows, start=2):
        if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
            continue
        source = Source(file, ws.title, number)
        cells = {
            column: Cell(values[i], source.at(column, letter))
            for i, (column, letter) in found.items()
            if i < len(values)
        }
        out.append(Row(source, cells))
    return []
