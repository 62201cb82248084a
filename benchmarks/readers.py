"""Which reader for the input workbooks: time and peak memory to read every row of one sheet.

    python -m benchmarks.readers FILE.xlsx [--sheet Usage] [--readers openpyxl,calamine,calamine-iter]
    python -m benchmarks.readers INPUT_FOLDER --equivalence

Each reader runs in a fresh subprocess (so peak memory is its own, from ru_maxrss) and turns
every row into a tuple of Python values, which is what workbook.read needs; the row count and
the Python types of the first data row are printed, so differences in typing show (calamine
gives float for every number and date for a date-formatted cell; openpyxl gives int for
integers and datetime for dates).
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def read_openpyxl(path: str, sheet: str):
    import openpyxl

    wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        yield from wb[sheet].iter_rows(values_only=True)
    finally:
        wb.close()


def read_calamine(path: str, sheet: str):
    """The whole sheet as lists at once (CalamineSheet.to_python)."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(path)
    yield from book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)


def read_calamine_iter(path: str, sheet: str):
    """Row by row (CalamineSheet.iter_rows): calamine still parses the sheet whole, in Rust."""
    from python_calamine import CalamineWorkbook

    book = CalamineWorkbook.from_path(path)
    yield from book.get_sheet_by_name(sheet).iter_rows()


READERS = {"openpyxl": read_openpyxl, "calamine": read_calamine, "calamine-iter": read_calamine_iter}


# ---------------------------------------------------------------- calamine behind openpyxl's interface
#
# What workbook.py would need to read with calamine, with values typed as openpyxl types them:
# * calamine gives "" for an empty cell: None, as openpyxl.
# * calamine gives float for every number: int when it is whole, as openpyxl gives for "12"
#   (else Decimal(str(12.0)) would print as "12.0" on an invoice).
# * calamine gives date for a date cell, openpyxl datetime: validate.py accepts both.
# * CalamineSheet.iter_rows() starts at the sheet's first used column (rows are padded, columns
#   are not): pad each row with sheet.start[1] blanks, or every letter shifts.
# * calamine gives "" for an error cell (#N/A, #DIV/0!) where openpyxl gives the text "#N/A",
#   which validate.py reports (BB115). So a sheet whose XML holds an error cell (t="e") is read
#   with openpyxl instead: has_error_cells() finds them by streaming the sheet's XML (fast).


class CalamineSheet:
    def __init__(self, book, title: str, path: str | None):
        self.title, self._book, self._path = title, book, path

    def reset_dimensions(self) -> None:
        pass

    def iter_rows(self, values_only=True, min_row=1, max_row=None, max_col=None):
        sheet = self._book.get_sheet_by_name(self.title)
        pad = (None,) * (sheet.start[1] if sheet.start else 0)
        for number, row in enumerate(sheet.iter_rows(), start=1):
            if number < min_row:
                continue
            if max_row is not None and number > max_row:
                return
            values = pad + tuple(None if v == "" else int(v) if type(v) is float and v.is_integer() else v
                                 for v in row)
            yield values[:max_col] if max_col else values


class CalamineBook:
    """Enough of openpyxl's read-only Workbook for workbook._read_file."""

    def __init__(self, file, read_only=True, data_only=True):
        from python_calamine import CalamineWorkbook

        self._book = CalamineWorkbook.from_filelike(file)
        self.sheetnames = list(self._book.sheet_names)
        self.worksheets = [CalamineSheet(self._book, name, None) for name in self.sheetnames]

    def close(self) -> None:
        self._book.close()


def has_error_cells(path, chunk: int = 1 << 20) -> bool:
    """Whether any worksheet of the .xlsx holds an error cell (<c ... t="e">), by streaming its XML."""
    import zipfile

    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/") and name.endswith(".xml"):
                tail = b""
                with z.open(name) as f:
                    while block := f.read(chunk):
                        if b't="e"' in tail + block:
                            return True
                        tail = block[-8:]
    return False


def equivalence(folder: str) -> None:
    """Read and validate the input folder with openpyxl, then with calamine behind openpyxl's
    interface; the validated inputs and the problems must be equal."""
    from pathlib import Path

    import openpyxl

    from billing_batch import workbook
    from billing_batch.validate import check

    files = workbook.input_files(Path(folder))
    results = {}
    real = openpyxl.load_workbook
    for reader in ("openpyxl", "calamine"):
        openpyxl.load_workbook = real if reader == "openpyxl" else CalamineBook
        started = time.perf_counter()
        book, problems = workbook.read(files)
        read = time.perf_counter() - started
        checked = check(book)
        results[reader] = (checked, problems)
        print(f"{reader:<9} read {read:6.1f} s, validate {time.perf_counter() - started - read:5.1f} s; "
              f"{sum(len(v) for v in book.sheets.values()):,} rows, {len(checked.problems)} problems", flush=True)
    openpyxl.load_workbook = real
    a, b = results["openpyxl"][0], results["calamine"][0]
    same = a.inputs == b.inputs and [p.as_dict() for p in a.problems] == [p.as_dict() for p in b.problems]
    print("validated inputs and problems equal:", same)
    started = time.perf_counter()
    errors = [has_error_cells(f) for f in files]
    print(f"error-cell scan of {len(files)} file(s): {time.perf_counter() - started:.1f} s, found {any(errors)}")


def child(reader: str, path: str, sheet: str) -> None:
    started = time.perf_counter()
    rows = 0
    first = None
    for row in READERS[reader](path, sheet):
        values = tuple(row)
        if rows == 1:
            first = [type(v).__name__ for v in values]
        rows += 1
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"reader": reader, "rows": rows, "seconds": seconds, "peak_rss": peak, "types": first}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.readers", description=__doc__.split("\n\n")[0])
    p.add_argument("file")
    p.add_argument("--sheet", default="Usage")
    p.add_argument("--readers", default=",".join(READERS))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--equivalence", action="store_true",
                   help="FILE is an input folder: compare validated inputs read with openpyxl and with calamine")
    args = p.parse_args(argv)
    if args.equivalence:
        equivalence(args.file)
        return 0
    if args.child:
        child(args.child, args.file, args.sheet)
        return 0
    results = []
    for reader in args.readers.split(","):
        out = subprocess.run([sys.executable, "-m", "benchmarks.readers", args.file, "--sheet", args.sheet,
                              "--child", reader], capture_output=True, text=True, check=True).stdout
        results.append(json.loads(out))
        r = results[-1]
        print(f"{r['reader']:<14} {r['rows']:>10,} rows  {r['seconds']:7.1f} s  peak {r['peak_rss'] / 1e6:7.0f} MB  "
              f"row types {r['types']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
