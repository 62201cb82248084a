"""Read the input workbooks into rows whose every cell knows where it came from.

The workbook is untrusted input: its size, its zip container and its XML parts are checked
before a reader opens it (calamine, or openpyxl through defusedxml where calamine cannot be
trusted with a sheet), and every failure to read the file becomes a Problem that says so in
plain words, never a traceback.

Over 400 lines: the checks before opening and the two readers behind one interface are one idea,
reading an untrusted file; apart, each half would be read only with the other open.
"""
from __future__ import annotations

import re
import warnings
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from dataclasses import dataclass, field
from pathlib import Path

import openpyxl
from python_calamine import CalamineWorkbook, SheetTypeEnum
from defusedxml import DefusedXmlException
from openpyxl.utils import get_column_letter

from billing_batch.errors import Problem, problem
from billing_batch.model import Source

# Sheet -> (required sheet, {column: required}). Names are matched ignoring case and spaces.
SCHEMA: dict[str, tuple[bool, dict[str, bool]]] = {
    "Customers": (True, {
        "Customer ID": True, "Name": True, "Email": False, "Address": False, "City": False,
        "Postal Code": False, "Country": False, "Tax Rate": False, "Language": False,
        "IBAN": False, "BIC": False, "Mandate ID": False, "Mandate Date": False,  # SEPA Direct Debit (post tasks)
        "VAT ID": False, "Tax Category": False, "Tax Exemption Reason": False,
        # e-invoices (docs/workbook.md names each one's EN 16931 business term)
        "E-Invoice": False, "Buyer Reference": False, "Electronic Address": False, "Electronic Address Scheme": False,
    }),
    "Contracts": (True, {
        "Contract ID": True, "Customer ID": True, "Start Date": True, "End Date": False,
        "Billing Frequency": True, "Billing Policy": False, "Billing Offset (Days)": False,
        "Currency": False, "Payment Terms (Days)": False, "Discount": False, "Status": False, "CC": False,
        "Billed Through": False,
        "Usage Lines": False, "Usage Group By": False, "Purchase Order": False,
        "Partner Center Customer ID": False, "Usage Markup": False,  # Partner Center usage (partner_center.py)
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
    "Products": (False, {"Product": True, "Account Code": False, "Tax Type": False,  # for the sync post task
                         "Tax Category": False, "Tax Rate": False, "Tax Exemption Reason": False}),
    "Settings": (False, {"Key": True, "Value": True}),
}
# Sheets whose other columns are kept too, under their headers as typed: usage can be grouped by any column.
KEEPS_OTHER_COLUMNS = {"Usage"}

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted .xlsx and old .xls files are both OLE containers
ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # the stream that only an encrypted .xlsx holds
EXCEL_MAX_ROW = 1_048_576
MB = 1024 * 1024
CHUNK, OVERLAP = 1 << 20, 32  # parts are scanned as a stream, a megabyte at a time
# calamine reads ten times faster than openpyxl, but lays a sheet out as one grid from its first to
# its last cell, 32 bytes a cell, and aborts the process when that cannot be allocated; and it shows
# an error cell (#N/A, t="e") as a blank. So a sheet is left to openpyxl, which streams, when it has
# an error cell, a cell past column Z, a row past Excel's last, or a row or cell without its
# position (r="..."): then nothing bounds calamine's grid by the file's size.
# (Two patterns: each starts with a literal, which the regex engine searches for fast.)
UNPLACED_OR_WIDE = re.compile(rb'<(?:c|row)(?! r=")[ >/]|<c r="[A-Z]{2}')
FAR_DOWN = re.compile(rb' r="[A-Z]{0,3}(\d{7,})"')


@dataclass(frozen=True)
class Limits:
    """Bounds on the input, so a huge or hostile workbook is refused with a message
    instead of eating the machine's memory."""

    max_file_mb: float = 200  # each workbook file as stored (--max-input-mb)
    max_rows: int = 3_000_000  # rows holding data, all sheets of all workbooks together (--max-rows)
    max_unzipped_mb: float = 4096  # one workbook's parts unpacked; 3 million rows of sheet XML is about 1,100 MB
    max_ratio: float = 100  # unpacked over packed size of one part: workbooks stay near 10, zip bombs reach 1,000
    ratio_from_mb: float = 1  # a part smaller than this unpacked may compress as well as it likes: it cannot hurt


def normalise(name: object) -> str:
    return " ".join(str(name).split()).casefold() if name is not None else ""


@dataclass(frozen=True, slots=True)
class Cell:
    value: object  # str, int, float, date or datetime, time, bool or None
    source: Source


@dataclass(frozen=True, slots=True)
class SheetRead:
    """One sheet of one file, as read: the rows' common part."""

    file: str
    title: str
    columns: dict[str, tuple[int, str]]  # column name as in SCHEMA -> (position in Row.values, letter)


class Row:
    """A row's values, as small as a million rows need: a Cell and its Source are made only when
    something is reported about one."""

    __slots__ = ("sheet", "number", "values")

    def __init__(self, sheet: SheetRead, number: int, values: tuple):
        self.sheet, self.number, self.values = sheet, number, values

    @property
    def source(self) -> Source:
        return Source(self.sheet.file, self.sheet.title, self.number)

    def value(self, column: str) -> object:
        at = self.sheet.columns.get(column)
        return self.values[at[0]] if at is not None else None

    def __getitem__(self, column: str) -> Cell:
        at = self.sheet.columns.get(column)
        return Cell(self.value(column), Source(self.sheet.file, self.sheet.title, self.number, column,
                                               at[1] if at else None))


@dataclass
class RawBook:
    """The rows of every input workbook, sheets of the same name joined in file order."""

    files: list[Path] = field(default_factory=list)
    sheets: dict[str, list[Row]] = field(default_factory=lambda: {name: [] for name in SCHEMA})
    row_count: int = 0  # rows holding data, counted against Limits.max_rows
    other_columns: dict[str, list[str]] = field(default_factory=dict)  # sheet -> headers kept beyond SCHEMA


class InputFiles(list):
    """The workbooks to read, and where they were looked for (for a message when there are none)."""

    def __init__(self, files: Iterable[Path], where: Path):
        super().__init__(files)
        self.where = where


class Unreadable(Exception):
    """A workbook cannot be read at all; args[0] is the Problem that says why."""


def input_files(path: Path) -> list[Path]:
    if path.is_dir():
        # Excel's lock files (~$) and hidden files (macOS ._ copies) are not workbooks
        files = (p for p in path.iterdir() if p.suffix.lower() == ".xlsx" and p.is_file()
                 and not p.name.startswith(("~$", ".")))
        return InputFiles(sorted(files), path)
    return InputFiles([path], path)


def read(paths: Iterable[Path], limits: Limits = Limits()) -> tuple[RawBook, list[Problem]]:
    """Read every workbook. Problems here are structural: they stop the run."""
    book, problems = RawBook(), []
    seen_sheets: set[str] = set()
    titles: list[str] = []  # every sheet of every workbook, to name them when one is missing
    with warnings.catch_warnings():
        # openpyxl warns about what it drops (data validation, extensions): noise to a finance user
        warnings.simplefilter("ignore")
        for path in paths:
            book.files.append(path)
            try:
                problems += _read_file(path, book, seen_sheets, titles, limits)
            except Unreadable as exc:
                problems.append(exc.args[0])
                if book.row_count > limits.max_rows:
                    break  # the row limit counts over all workbooks: reading on cannot help
    if not book.files:
        where = getattr(paths, "where", None) or "the input"
        problems.append(problem("BB004", Source(str(where), ""), f"No .xlsx workbook was found in {where}."))
    elif not problems:
        for name, (required, _) in SCHEMA.items():
            if required and name not in seen_sheets:
                files = ", ".join(p.name for p in book.files)
                has = "the workbook has" if len(book.files) == 1 else "the workbooks have"
                problems.append(problem(
                    "BB002", Source(files, name),
                    f"No sheet is named {name}; {has} the sheets {', '.join(titles)}.",
                ))
    return book, problems


@contextmanager
def _file_errors(path: Path) -> Iterator[None]:
    """zipfile and openpyxl can fail in any way on a damaged or crafted file; that is the file's
    fault, not a bug, so it becomes a Problem. Wrap only calls into those libraries."""
    where = Source(path.name, "")
    try:
        yield
    except Unreadable:
        raise
    except Exception as exc:
        if _caused_by(exc, DefusedXmlException):  # openpyxl wraps it in a ValueError of its own
            raise Unreadable(problem(
                "BB008", where, f"{path.name} declares XML entities, which Excel never writes; "
                "such a file can be built to exhaust memory.")) from exc
        raise Unreadable(problem(
            "BB001", where, f"{path.name} cannot be read: it is damaged, or it is not an Excel workbook.")) from exc


def _caused_by(exc: BaseException | None, kind: type) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kind):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _check_container(path: Path, limits: Limits) -> bool:
    """Refuse, before a reader unpacks anything, a file that is too big, encrypted, a zip bomb or
    holding XML entities. Return whether a worksheet is not safe for calamine to read."""
    where = Source(path.name, "")
    with _file_errors(path):
        size = path.stat().st_size
        if size > limits.max_file_mb * MB:
            raise Unreadable(problem(
                "BB005", where, f"{path.name} is {_mb(size)}; the limit is {_mb(limits.max_file_mb * MB)}.",
                option="--max-input-mb"))
        with path.open("rb") as f:
            if f.read(len(OLE_MAGIC)) == OLE_MAGIC:
                if ENCRYPTED in f.read():
                    raise Unreadable(problem("BB006", where, f"{path.name} is protected with a password."))
                raise Unreadable(problem(
                    "BB001", where, f"{path.name} is an old Excel 97-2003 (.xls) or other Office file, "
                    "not an Excel workbook (.xlsx)."))
        with zipfile.ZipFile(path) as archive:
            parts = archive.infolist()
            unpacked = sum(part.file_size for part in parts)
            if unpacked > limits.max_unzipped_mb * MB:
                raise Unreadable(problem(
                    "BB007", where, f"{path.name} would unpack to {_mb(unpacked)}, more than the "
                    f"limit of {_mb(limits.max_unzipped_mb * MB)}."))
            for part in parts:
                ratio = part.file_size / max(part.compress_size, 1)
                if part.file_size > limits.ratio_from_mb * MB and ratio > limits.max_ratio:
                    raise Unreadable(problem(
                        "BB007", where, f"{path.name} holds a part ({part.filename}) that unpacks to more than "
                        f"{limits.max_ratio:,g} times its stored size; real workbooks stay near 10 times, "
                        "a 'zip bomb' does not."))
            return any([_scan_part(archive, part, path) for part in parts])  # every part, to the end


def _scan_part(archive: zipfile.ZipFile, part: zipfile.ZipInfo, path: Path) -> bool:
    """Excel never writes a DOCTYPE; one is how entity bombs and external entities come in:
    refuse it wherever it sits, whatever the reader. Return whether the part is a worksheet that
    calamine must not read (see UNPLACED_OR_WIDE)."""
    sheet = part.filename.startswith("xl/worksheets/") and part.filename.endswith(".xml")
    unsafe, kept = False, b""
    with archive.open(part) as f:
        while True:
            block = f.read(CHUNK)
            text = kept + block.replace(b"\0", b"")  # \0 gone: UTF-16 markup reads as ASCII
            if b"<!DOCTYPE" in text or b"<!ENTITY" in text:
                raise Unreadable(problem(
                    "BB008", Source(path.name, ""), f"{path.name} holds a part ({part.filename}) with an XML "
                    "document type declaration, which Excel never writes; such a file can be built to "
                    "exhaust memory."))
            if sheet and not unsafe:
                # a match in the last bytes may be cut short: those are searched again with the next block
                end = len(text) - OVERLAP if block else len(text)
                unsafe = (b't="e"' in text or (m := UNPLACED_OR_WIDE.search(text)) is not None and m.start() < end
                          or any(int(m[1]) > EXCEL_MAX_ROW for m in FAR_DOWN.finditer(text)))
            if not block:
                return unsafe
            kept = text[-OVERLAP:]


def _mb(size: float) -> str:
    return f"{size / MB:,.0f} MB" if size >= 10 * MB else f"{size / MB:.2g} MB"


def _read_file(path: Path, book: RawBook, seen_sheets: set[str], titles: list[str], limits: Limits) -> list[Problem]:
    calamine_unsafe = _check_container(path, limits)
    problems = []
    by_name = {normalise(name): name for name in SCHEMA}
    with _file_errors(path):
        opened = _OpenpyxlFile(path) if calamine_unsafe else _CalamineFile(path)
    try:
        titles += opened.titles
        for sheet in opened.sheets():
            name = by_name.get(normalise(sheet.title))
            if name is not None:
                seen_sheets.add(name)
                problems += _read_sheet(path, sheet, name, book, limits)
    finally:
        opened.close()
    return problems


class _CalamineFile:
    def __init__(self, path: Path):
        with path.open("rb") as f:  # by its content: a workbook saved as billing.xlsx.bak is still one
            self.book = CalamineWorkbook.from_filelike(f)
        self.path = path
        self.titles = [m.name for m in self.book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]

    def sheets(self) -> Iterator[_CalamineSheet]:
        for title in self.titles:
            yield _CalamineSheet(self.path, title, self.book)

    def close(self) -> None:
        self.book.close()


class _CalamineSheet:
    """Rows as openpyxl gives them: numbered from the sheet's row 1, blanks as None, whole numbers
    as int (calamine gives every number as a float, and 12.0 would print as such; past 2**53 a
    float is not the number typed, and stays a float as in openpyxl)."""

    def __init__(self, path: Path, title: str, book):
        self.path, self.title, self.book = path, title, book
        self._sheet = None

    def _load(self):
        if self._sheet is None:
            with _file_errors(self.path):
                self._sheet = self.book.get_sheet_by_name(self.title)
        return self._sheet

    def rows(self, min_row: int, max_col: int | None = None) -> Iterator[tuple[int, tuple]]:
        sheet = self._load()
        first_row, first_col = sheet.start or (0, 0)
        pad = (None,) * first_col  # rows start at the first used column: pad, or every letter shifts
        with _file_errors(self.path):
            for number, row in enumerate(sheet.iter_rows(), start=first_row + 1):
                if number < min_row:
                    continue
                yield number, tuple(
                    None if v == "" else int(v) if type(v) is float and v.is_integer() and abs(v) < 2 ** 53 else v
                    for v in (pad + tuple(row))[:max_col])


class _OpenpyxlFile:
    def __init__(self, path: Path):
        self._file = path.open("rb")  # by content, as above
        try:
            self.book = openpyxl.load_workbook(self._file, read_only=True, data_only=True)
        except BaseException:
            self._file.close()
            raise
        self.path = path
        self.titles = self.book.sheetnames

    def sheets(self) -> Iterator[_OpenpyxlSheet]:
        with _file_errors(self.path):
            worksheets = self.book.worksheets
        for ws in worksheets:
            yield _OpenpyxlSheet(self.path, ws)

    def close(self) -> None:
        self.book.close()
        self._file.close()


class _OpenpyxlSheet:
    def __init__(self, path: Path, ws):
        self.path, self.ws, self.title = path, ws, ws.title
        # The size a sheet states about itself is the file's claim, not a fact: never pad rows out to it.
        ws.reset_dimensions()

    def rows(self, min_row: int, max_col: int | None = None) -> Iterator[tuple[int, tuple]]:
        with _file_errors(self.path):
            yield from enumerate(self.ws.iter_rows(min_row=min_row, max_col=max_col, values_only=True),
                                 start=min_row)


def _read_sheet(path: Path, sheet, name: str, book: RawBook, limits: Limits) -> list[Problem]:
    columns = SCHEMA[name][1]
    wanted = {normalise(column): column for column in columns}
    number, header = next(sheet.rows(1), (1, ()))
    if number != 1:
        header = ()
    found: dict[int, tuple[str, str]] = {}  # position -> (column, letter)
    for i, title in enumerate(header):
        column = wanted.get(normalise(title))
        if column is not None and column not in {c for c, _ in found.values()}:
            found[i] = (column, get_column_letter(i + 1))
    missing = [c for c, required in columns.items() if required and c not in {c for c, _ in found.values()}]
    known = len(found)  # a row with values only in the other columns is blank, as before they were kept
    if name in KEEPS_OTHER_COLUMNS:
        kept = book.other_columns.setdefault(name, [])
        taken = {normalise(c) for c, _ in found.values()}
        for i, title in enumerate(header):
            typed = " ".join(str(title).split()) if title is not None else ""
            if typed and normalise(typed) not in taken:
                taken.add(normalise(typed))
                found[i] = (typed, get_column_letter(i + 1))
                if normalise(typed) not in {normalise(c) for c in kept}:
                    kept.append(typed)
    if missing:
        typed = [" ".join(str(t).split()) for t in header if t is not None and str(t).strip()]
        has = f"its first row holds {', '.join(typed[:12])}{', …' if len(typed) > 12 else ''}" if typed \
            else "its first row is empty"
        return [
            problem("BB003", Source(path.name, sheet.title, 1, column),
                    f"The {sheet.title} sheet has no {column} column; {has}.")
            for column in missing
        ]
    out = book.sheets[name]
    positions = list(found)
    read = SheetRead(path.name, sheet.title, {column: (k, letter) for k, (column, letter) in enumerate(found.values())})
    # Text and dates repeat down a column (contract IDs, products, days): keep one copy of each.
    # A column whose values do not repeat (the row's own ID) stops being remembered.
    seen: list[dict | None] = [{} for _ in positions]
    # Only the columns we read: a stray cell in column XFD must not make every row 16,384 wide.
    for number, row in sheet.rows(2, max(found) + 1):
        if number > EXCEL_MAX_ROW:
            raise Unreadable(problem(
                "BB001", Source(path.name, sheet.title), f"The {sheet.title} sheet claims rows after row "
                f"{EXCEL_MAX_ROW:,}, the last row Excel has: the file is damaged."))
        values = tuple(row[i] if i < len(row) else None for i in positions)
        if all(v is None or (type(v) is str and not v.strip()) for v in values[:known]):
            continue  # blank, or only notes in columns the batch does not read
        book.row_count += 1
        if book.row_count > limits.max_rows:
            raise Unreadable(problem(
                "BB005", Source(path.name, sheet.title, number), f"The input holds more than {limits.max_rows:,} "
                "rows of data, the most the batch reads.", option="--max-rows"))
        out.append(Row(read, number, tuple(_shared(v, seen, k) for k, v in enumerate(values))))
    return []


SHARED = (str, date, datetime)  # not numbers: 1, 1.0 and True are equal keys


def _shared(value: object, seen: list[dict | None], k: int) -> object:
    memo = seen[k]
    if memo is None or type(value) not in SHARED:
        return value
    value = memo.setdefault(value, value)
    if len(memo) > 50_000:
        seen[k] = None
    return value
