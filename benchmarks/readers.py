"""Which reader for the input workbooks: time and peak memory to read every row of one sheet.

    python -m benchmarks.readers FILE.xlsx [--sheet Usage] [--readers openpyxl,calamine,calamine-iter]
    python -m benchmarks.readers INPUT_FOLDER --equivalence

The batch reads with calamine where a sheet allows it (billing_batch/inputs/workbook.py says when).
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


def equivalence(folder: str) -> None:
    """Read and validate the input folder as the batch does (calamine where the sheet allows it),
    then with openpyxl alone; the validated inputs and the problems must be equal."""
    from pathlib import Path

    from billing_batch.inputs import workbook
    from billing_batch.inputs.validate import check

    files = workbook.input_files(Path(folder))
    results = {}
    fast = workbook._CalamineFile
    for reader in ("calamine", "openpyxl"):
        workbook._CalamineFile = fast if reader == "calamine" else workbook._OpenpyxlFile
        started = time.perf_counter()
        book, problems = workbook.read(files)
        read = time.perf_counter() - started
        rows = sum(len(v) for v in book.sheets.values())
        checked = check(book)
        results[reader] = checked
        print(f"{reader:<9} read {read:6.1f} s, validate {time.perf_counter() - started - read:5.1f} s; "
              f"{rows:,} rows, {len(checked.problems)} problems", flush=True)
    workbook._CalamineFile = fast
    a, b = results["openpyxl"], results["calamine"]
    same = a.inputs == b.inputs and [p.as_dict() for p in a.problems] == [p.as_dict() for p in b.problems]
    print("validated inputs and problems equal:", same)


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
