"""Read the input workbooks into rows whose every cell knows where it came from.

The workbook is untrusted input: its parts are looked at before a reader opens it (workbook_parts),
then read by calamine, or by openpyxl through defusedxml where calamine cannot be trusted with a
sheet; every failure to read the file becomes a Problem that says so in plain words, never a
traceback. Every sheet a table's name fits is read, or reported (hidden, one of two, a second
workbook's copy).

Over 400 lines: the two readers behind one interface and what is read through them (the sheets a
name fits, their headings, rows and merged IDs) are one idea, reading the tables of an untrusted file.
"""
from __future__ import annotations

import unicodedata
import warnings
from array import array
from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from python_calamine import CalamineWorkbook, SheetTypeEnum, SheetVisibleEnum
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name

from billing_batch.errors import Problem, problem
from billing_batch.inputs.workbook_parts import (
    EXCEL_MAX_ROW,
    FIRST_CELLS,
    FORMULA_SHOWN,
    Limits,
    SheetScan,
    Unreadable,
    check_parts,
    file_errors,
)
from billing_batch.model import Source

# Sheet -> (required sheet, {column: required}). Names are matched ignoring case and spaces.
SCHEMA: dict[str, tuple[bool, dict[str, bool]]] = {
    "Customers": (True, {
        "Customer ID": True, "Name": True, "Email": False, "Address": False, "City": False,
        "Postal Code": False, "State": False, "Country": False, "Tax Rate": False, "Language": False,
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
        "Licence Markup": False,  # Partner Center licences (licences.py)
    }),
    "Subscriptions": (True, {
        "Subscription ID": True, "Contract ID": True, "Product": True, "Description": False,
        "Quantity": True, "Unit Price": True, "Start Date": False, "End Date": False,
        "Charge Type": False, "Partner Center Subscription ID": False,
    }),
    "Usage": (False, {
        "Usage ID": True, "Contract ID": True, "Date": True, "Product": True,
        "Description": False, "Quantity": True, "Unit Price": True,
    }),
    "Products": (False, {"Product": True, "Account Code": False, "Tax Type": False,  # for the sync post task
                         "Tax Category": False, "Tax Rate": False, "Tax Exemption Reason": False}),
    "Price List": (False, {"Sku ID": True, "Unit Price": True, "Currency": False, "Contract ID": False}),
    "Settings": (False, {"Key": True, "Value": True}),
}
# Sheets whose other columns are kept too, under their headers as typed: usage can be grouped by any column.
KEEPS_OTHER_COLUMNS = {"Usage"}
# The one table several workbooks may hold, joined, so that usage can live in a workbook of its own; a second
# workbook holding another table is a copy whose rows would be billed twice (BB012).
JOINED = {"Usage"}
# The ID column of each sheet that says whose a row is: a merged range in it blanks every row but its top one.
OWNER_COLUMNS = {"Subscriptions": "Contract ID", "Usage": "Contract ID", "Contracts": "Customer ID"}

# Characters that print as nothing but are not format characters (which normalise drops): a heading holding
# one is shown with it spelled out, so that it never looks like the heading it fails to match.
BLANK_LOOKING = frozenset("\u034f\u115f\u1160\u17b4\u17b5\u2800\u3164\uffa0") | {chr(c) for c in range(0xFE00, 0xFE10)}


def normalise(name: object) -> str:
    """A name as a person reads it: case, runs of spaces (no-break ones too) and invisible format characters
    (zero-width space, byte order mark: Unicode category Cf) do not count."""
    if name is None:
        return ""
    text = str(name)
    if not text.isascii():
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    return " ".join(text.split()).casefold()


def as_shown(text: str) -> str:
    """Text with every character that prints as nothing spelled out as <U+200B>."""
    return "".join(f"<U+{ord(c):04X}>" if c in BLANK_LOOKING or not c.isprintable() else c for c in text)


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
    # OWNER_COLUMNS column -> the merged ranges over rows that blank its cells, in order (see _merged_blanks)
    merged: dict[str, list[tuple[int, int, str, object]]] = field(default_factory=dict)

    def merged_blank(self, column: str, number: int) -> tuple[int, int, str, object] | None:
        """The merged range that blanks row number's cell in column, if any (see _merged_blanks)."""
        ranges = self.merged.get(column, ())
        at = bisect_right(ranges, number, key=lambda r: r[0]) - 1
        return ranges[at] if at >= 0 and ranges[at][0] <= number <= ranges[at][1] else None


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
    held: dict[str, list[str]] = defaultdict(list)  # table -> the files whose sheet of it holds rows
    with warnings.catch_warnings():
        # openpyxl warns about what it drops (data validation, extensions): noise to a finance user
        warnings.simplefilter("ignore")
        for path in paths:
            book.files.append(path)
            tables: set[str] = set()  # the tables this workbook has rows of
            try:
                problems += _read_file(path, book, seen_sheets, titles, limits, tables)
            except Unreadable as exc:  # reported for that alone: what it holds is not known
                problems.append(exc.args[0])
                if book.row_count > limits.max_rows:
                    break  # the row limit counts over all workbooks: reading on cannot help
            else:
                for name in tables:
                    held[name].append(path.name)
    problems += _held_twice(held)
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


def _held_twice(held: dict[str, list[str]]) -> list[Problem]:
    """One problem for each workbook holding rows of a table an earlier one holds (Usage aside): a copy left
    in the input folder, whose rows would be billed twice or each reported as a duplicate of itself."""
    twice: dict[tuple[str, str], list[str]] = defaultdict(list)  # (first file, later file) -> tables both hold
    for name, files in held.items():
        if name not in JOINED:
            for later in files[1:]:
                twice[files[0], later].append(name)
    problems = []
    for (first, later), names in twice.items():
        names.sort(key=list(SCHEMA).index)
        what = f"a {names[0]} sheet" if len(names) == 1 else f"the {_listed(names)} sheets"
        problems.append(problem(
            "BB012", Source(f"{first}, {later}", ""), f"The input holds two billing workbooks: {first} and {later} "
            f"both have rows on {what}, and only the Usage sheet is joined across workbooks."))
    return problems


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _read_file(path: Path, book: RawBook, seen_sheets: set[str], titles: list[str], limits: Limits,
               tables_held: set[str]) -> list[Problem]:
    """Every sheet of the workbook that a table's name fits is read, or reported: hidden, or one of two."""
    scan = check_parts(path, limits)
    problems = []
    by_name = {normalise(name): name for name in SCHEMA}
    with file_errors(path):
        opened = _OpenpyxlFile(path) if scan.calamine_unsafe else _CalamineFile(path)
    try:
        titles += opened.titles
        tables: dict[str, list] = defaultdict(list)  # table -> the sheets shown in Excel that fit its name
        for sheet in opened.sheets():
            name = by_name.get(normalise(sheet.title))
            if name is None:
                continue
            seen_sheets.add(name)
            if sheet.hidden:
                problems.append(problem(
                    "BB010", Source(path.name, sheet.title),
                    f"The sheet {sheet.title!r} is {sheet.hidden}, but its name makes it the {name} sheet: the "
                    "batch would read its rows though Excel does not show them."
                    + (" A very hidden sheet is not listed by Unhide: in the Visual Basic editor (Alt+F11), set "
                       "its Visible property to -1 - xlSheetVisible." if sheet.hidden == "very hidden" else "")))
            else:
                tables[name].append(sheet)
        for name, sheets in tables.items():
            if len(sheets) > 1:
                problems.append(problem(
                    "BB011", Source(path.name, name),
                    f"The sheets {_listed([repr(s.title) for s in sheets])} {'both' if len(sheets) == 2 else 'all'} "
                    f"fit the name {name}, since sheet names are compared ignoring case and spaces."))
            else:
                problems += _read_sheet(path, sheets[0], name, book, limits, tables_held, scan.sheets.get(sheets[0].title))
    finally:
        opened.close()
    return problems


# How openpyxl says a sheet is hidden, in the words of the message (BB010); calamine's enum is not hashable
OPENPYXL_HIDDEN = {"hidden": "hidden", "veryHidden": "very hidden"}


class _CalamineFile:
    def __init__(self, path: Path):
        with path.open("rb") as f:  # by its content: a workbook saved as billing.xlsx.bak is still one
            self.book = CalamineWorkbook.from_filelike(f)
        self.path = path
        sheets = [m for m in self.book.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
        self.titles = [m.name for m in sheets]
        self.hidden = {m.name: "very hidden" if m.visible == SheetVisibleEnum.VeryHidden else "hidden"
                       for m in sheets if m.visible != SheetVisibleEnum.Visible}

    def sheets(self) -> Iterator[_CalamineSheet]:
        for title in self.titles:
            yield _CalamineSheet(self.path, title, self.book, self.hidden.get(title, ""))

    def close(self) -> None:
        self.book.close()


class _CalamineSheet:
    """Rows as openpyxl gives them: numbered from the sheet's row 1, blanks as None, whole numbers
    as int (calamine gives every number as a float, and 12.0 would print as such; past 2**53 a
    float is not the number typed, and stays a float as in openpyxl)."""

    def __init__(self, path: Path, title: str, book, hidden: str):
        self.path, self.title, self.book, self.hidden = path, title, book, hidden
        self._sheet = None

    def _load(self):
        if self._sheet is None:
            with file_errors(self.path):
                self._sheet = self.book.get_sheet_by_name(self.title)
        return self._sheet

    def rows(self, min_row: int, max_col: int | None = None) -> Iterator[tuple[int, tuple]]:
        sheet = self._load()
        first_row, first_col = sheet.start or (0, 0)
        pad = (None,) * first_col  # rows start at the first used column: pad, or every letter shifts
        with file_errors(self.path):
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
            import openpyxl  # only for a sheet calamine must not read: openpyxl costs a third of a second to import

            self.book = openpyxl.load_workbook(self._file, read_only=True, data_only=True)
        except BaseException:
            self._file.close()
            raise
        self.path = path
        self.titles = self.book.sheetnames

    def sheets(self) -> Iterator[_OpenpyxlSheet]:
        with file_errors(self.path):
            worksheets = self.book.worksheets
        for ws in worksheets:
            yield _OpenpyxlSheet(self.path, ws)

    def close(self) -> None:
        self.book.close()
        self._file.close()


class _OpenpyxlSheet:
    def __init__(self, path: Path, ws):
        self.path, self.ws, self.title = path, ws, ws.title
        self.hidden = OPENPYXL_HIDDEN.get(ws.sheet_state, "hidden") if ws.sheet_state != "visible" else ""
        # The size a sheet states about itself is the file's claim, not a fact: never pad rows out to it.
        ws.reset_dimensions()

    def rows(self, min_row: int, max_col: int | None = None) -> Iterator[tuple[int, tuple]]:
        with file_errors(self.path):
            yield from enumerate(self.ws.iter_rows(min_row=min_row, max_col=max_col, values_only=True),
                                 start=min_row)


def _read_sheet(path: Path, sheet, name: str, book: RawBook, limits: Limits, tables_held: set[str],
                scan: SheetScan | None) -> list[Problem]:
    columns = SCHEMA[name][1]
    wanted = {normalise(column): column for column in columns}
    number, header = next(sheet.rows(1), (1, ()))
    if number != 1:
        header = ()
    found: dict[int, tuple[str, str]] = {}  # position -> (column, letter)
    for i, title in enumerate(header):
        column = wanted.get(normalise(title))
        if column is not None and column not in {c for c, _ in found.values()}:
            found[i] = (column, xl_col_to_name(i))
    missing = [c for c, required in columns.items() if required and c not in {c for c, _ in found.values()}]
    known = len(found)  # a row with values only in the other columns is blank, as before they were kept
    if name in KEEPS_OTHER_COLUMNS:
        kept = book.other_columns.setdefault(name, [])
        taken = {normalise(c) for c, _ in found.values()}
        for i, title in enumerate(header):
            typed = " ".join(str(title).split()) if title is not None else ""
            if typed and normalise(typed) not in taken:
                taken.add(normalise(typed))
                found[i] = (typed, xl_col_to_name(i))
                if normalise(typed) not in {normalise(c) for c in kept}:
                    kept.append(typed)
    bare = _bare_formulas(path, sheet.title, scan, found)
    if missing:
        typed = [as_shown(" ".join(str(t).split())) for t in header if t is not None and str(t).strip()]
        has = f"its first row holds {', '.join(typed[:12])}{', …' if len(typed) > 12 else ''}" if typed \
            else "its first row is empty"
        return bare + [
            problem("BB003", Source(path.name, sheet.title, 1, column),
                    f"The {sheet.title} sheet has no {column} column; {has}.")
            for column in missing
        ]
    if bare:
        return bare
    out = book.sheets[name]
    before = len(out)
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
    if len(out) > before:
        tables_held.add(name)
    owner = OWNER_COLUMNS.get(name)
    if scan is not None and scan.merged and owner in read.columns:
        read.merged[owner] = _merged_blanks(scan.merged, read.columns[owner], out, before)
    return []


def _bare_formulas(path: Path, title: str, scan: SheetScan | None, found: dict[int, tuple[str, str]]) -> list[Problem]:
    """BB013 for the formulas without their result in the columns read, and in the header row (read whole):
    the first few named one by one, the rest counted."""
    if scan is None or not scan.bare:
        return []
    names = {letter: column for column, letter in found.values()}
    cells, total = [], 0
    for letter, (count, first) in scan.bare.items():
        if letter in names or not letter:
            total += count
            cells += [(row, letter, formula) for row, formula in first]
        else:
            heads = [(row, letter, formula) for row, formula in first if row == 1]
            total += len(heads)
            cells += heads
    cells.sort(key=lambda cell: (cell[0], len(cell[1]), cell[1]))
    problems = []
    for row, letter, formula in cells[:FIRST_CELLS]:
        where = Source(path.name, title, row or None, names.get(letter, letter or None),
                       letter if letter in names else None)
        cell = f"The cell {letter}{row}" if letter else "A cell"
        problems.append(problem(
            "BB013", where, f"{cell} holds a formula saved without its result: the batch would read it as empty, "
            "where Excel shows a value.", value=f"={_unescape(formula)}" if formula else None))
    if total > len(problems):
        problems.append(problem(
            "BB013", Source(path.name, title), f"{total - len(problems):,} more cells of the {title} sheet hold "
            "formulas saved without their result."))
    return problems


def _unescape(formula: bytes) -> str:
    """A formula's XML text as typed, its first FORMULA_SHOWN bytes."""
    text = formula[:FORMULA_SHOWN].decode("utf-8", "replace")
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&quot;", '"'), ("&apos;", "'"), ("&amp;", "&")):
        text = text.replace(entity, char)
    return text + ("…" if len(formula) > FORMULA_SHOWN else "")


def _merged_blanks(merged: array, at: tuple[int, str], out: list[Row], before: int) -> list[tuple]:
    """The merged ranges over rows that cover the column at (position in Row.values, letter), as (first row
    blank, last row, range, the value Excel shows in them): only the top left cell of a range holds its value."""
    position, letter = at
    column = xl_cell_to_rowcol(f"{letter}1")[1] + 1
    ranges = []
    for i in range(0, len(merged), 4):
        first_col, first_row, last_col, last_row = merged[i:i + 4]
        if first_col <= column <= last_col:
            top = None
            if first_col == column:  # the top cell holds the value; the rows below it are blank
                k = bisect_left(out, first_row, lo=before, key=lambda row: row.number)
                top = out[k].values[position] if k < len(out) and out[k].number == first_row else None
            ref = f"{xl_col_to_name(first_col - 1)}{first_row}:{xl_col_to_name(last_col - 1)}{last_row}"
            ranges.append((first_row + (first_col == column), last_row, ref, top))
    return sorted(ranges, key=lambda r: r[0])  # by row alone: a crafted file may overlap ranges, tops of any type


SHARED = (str, date, datetime)  # not numbers: 1, 1.0 and True are equal keys


def _shared(value: object, seen: list[dict | None], k: int) -> object:
    memo = seen[k]
    if memo is None or type(value) not in SHARED:
        return value
    value = memo.setdefault(value, value)
    if len(memo) > 50_000:
        seen[k] = None
    return value
