"""A workbook's zip parts, looked at before any reader opens them: the size, a password, a zip bomb, XML
entities (each refused as a Problem); and what the worksheets' XML holds that the readers hide: formulas
stored without their result, merged ranges, cells calamine cannot be trusted with."""
from __future__ import annotations

import posixpath
import re
import zipfile
from array import array
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring
from xlsxwriter.utility import xl_cell_to_rowcol

from billing_batch.errors import problem
from billing_batch.model import Source

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # encrypted .xlsx and old .xls files are both OLE containers
ENCRYPTED = "EncryptedPackage".encode("utf-16-le")  # the stream that only an encrypted .xlsx holds
EXCEL_MAX_ROW = 1_048_576
MB = 1024 * 1024
CHUNK, OVERLAP = 1 << 20, 32  # parts are scanned as a stream, a megabyte at a time
# A cell's XML is at most about 200 KB (32,767 characters, each at most 6 bytes escaped, and a formula of
# 8,192): a stretch as long without a cell's end holds no cell that can still end (styled blanks, merges).
LONGEST_CELL = 1 << 18
# calamine reads ten times faster than openpyxl, but lays a sheet out as one grid from its first to
# its last cell, 32 bytes a cell, and aborts the process when that cannot be allocated; and it shows
# an error cell (#N/A, t="e") as a blank. So a sheet is left to openpyxl, which streams, when it has
# an error cell, a cell past column Z, a row past Excel's last, or a row or cell without its
# position (r="..."): then nothing bounds calamine's grid by the file's size.
# (Two patterns: each starts with a literal, which the regex engine searches for fast.)
UNPLACED_OR_WIDE = re.compile(rb'<(?:c|row)(?! r=")[ >/]|<c r="[A-Z]{2}')
FAR_DOWN = re.compile(rb' r="[A-Z]{0,3}(\d{7,})"')
# A formula stored without its result (<f> and then no <v>, or an empty one, before </c>): both readers show
# the cell as blank, where Excel shows the result. Programs that write formulas without calculating them
# (openpyxl, many exports) store them so; Excel stores every result. Formula text holds no "<" (it is &lt;).
BARE_FORMULA = re.compile(rb'<f(?:\s[^>]*+)?(?:/>|>([^<]*+)</f>)\s*(<v\s*/>|<v></v>)?\s*</c>')
CELL_REF = re.compile(rb'\sr="([A-Z]{1,3})(\d+)"')
TEXT_RESULT = re.compile(rb'\st="str"')  # an empty <v> of a text result is the text "" (=IF(A2="","",A2))
MERGE = re.compile(rb'<mergeCell\s+ref="([A-Z]{1,3})(\d+):([A-Z]{1,3})(\d+)"')
FIRST_CELLS = 20  # formulas without their result named one by one on a sheet; the rest are counted
FORMULA_SHOWN = 120  # bytes of such a formula shown as its value


@dataclass(frozen=True)
class Limits:
    """Bounds on the input, so a huge or hostile workbook is refused with a message
    instead of eating the machine's memory."""

    max_file_mb: float = 200  # each workbook file as stored (--max-input-mb)
    max_rows: int = 3_000_000  # rows holding data, all sheets of all workbooks together (--max-rows)
    max_unzipped_mb: float = 4096  # one workbook's parts unpacked; 3 million rows of sheet XML is about 1,100 MB
    max_ratio: float = 100  # unpacked over packed size of one part: workbooks stay near 10, zip bombs reach 1,000
    ratio_from_mb: float = 1  # a part smaller than this unpacked may compress as well as it likes: it cannot hurt


class Unreadable(Exception):
    """A workbook cannot be read at all; args[0] is the Problem that says why."""


@contextmanager
def file_errors(path: Path) -> Iterator[None]:
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


@dataclass
class SheetScan:
    """What one worksheet's XML holds that the readers hide: formulas stored without their result, which both
    show as blank, and merged ranges, which openpyxl's streaming reader does not give."""

    # column letter -> [how many, the first FIRST_CELLS as (row, formula)]
    bare: dict[str, list] = field(default_factory=lambda: defaultdict(lambda: [0, []]))
    merged: array = field(default_factory=lambda: array("q"))  # first column, row, last column, row: ranges over rows

    def add(self, text: bytes, start: int, end: int) -> None:
        """Take what text[start:end] holds; end is the end of a cell, so no cell is cut in two."""
        for m in BARE_FORMULA.finditer(text, start, end):
            at = text.rfind(b"<c", 0, m.start())
            tag = text[at:m.start()] if at >= 0 else b""
            if m[2] and TEXT_RESULT.search(tag):
                continue
            ref = CELL_REF.search(tag)
            column, row = (ref[1].decode(), int(ref[2])) if ref else ("", 0)  # no position: only openpyxl reads it
            seen = self.bare[column]
            seen[0] += 1
            if len(seen[1]) < FIRST_CELLS:
                seen[1].append((row, m[1][:FORMULA_SHOWN + 1] if m[1] else None))
        for m in MERGE.finditer(text, start, end) if text.find(b"<mergeCell", start, end) >= 0 else ():
            if m[2] != m[4]:  # a range within one row blanks no row's ID
                self.merged.extend((_column(m[1]), int(m[2]), _column(m[3]), int(m[4])))


def _column(letters: bytes) -> int:
    """B -> 2, as openpyxl's column_index_from_string (openpyxl is not imported for it: see workbook.py)."""
    return xl_cell_to_rowcol(letters.decode() + "1")[1] + 1


@dataclass
class Scan:
    """What the look at a workbook's parts found."""

    calamine_unsafe: bool  # a worksheet calamine must not read (UNPLACED_OR_WIDE): openpyxl reads the file
    sheets: dict[str, SheetScan]  # sheet title -> what its XML holds


def check_parts(path: Path, limits: Limits) -> Scan:
    """Refuse, before a reader unpacks anything, a file that is too big, encrypted, a zip bomb or
    holding XML entities; and note what the worksheets hold that the readers hide."""
    where = Source(path.name, "")
    with file_errors(path):
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
            scans = {part.filename: SheetScan() for part in parts if _is_sheet(part)}
            unsafe = any([_scan_part(archive, part, path, scans.get(part.filename)) for part in parts])  # to the end
            # only now, every part being free of a DOCTYPE, are the workbook's parts parsed
            titles = _sheet_titles(archive)
            return Scan(unsafe, {titles[name]: scan for name, scan in scans.items() if name in titles})


def _is_sheet(part: zipfile.ZipInfo) -> bool:
    return part.filename.startswith("xl/worksheets/") and part.filename.endswith(".xml")


def _sheet_titles(archive: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet part -> sheet title, from the parts calamine reads them from (openpyxl finds the same)."""
    def local(tag: str) -> str:
        return tag.rpartition("}")[2]

    rels = fromstring(archive.read("xl/_rels/workbook.xml.rels"))
    targets = {r.get("Id"): r.get("Target", "") for r in rels if local(r.tag) == "Relationship"}
    parts = {rid: t[1:] if t.startswith("/") else posixpath.normpath(posixpath.join("xl", t))
             for rid, t in targets.items()}
    titles = {}
    for sheet in fromstring(archive.read("xl/workbook.xml")).iter():
        rid = next((v for k, v in sheet.attrib.items() if local(k) == "id"), None)
        if local(sheet.tag) == "sheet" and rid in parts:
            titles[parts[rid]] = sheet.get("name")
    return titles


def _scan_part(archive: zipfile.ZipFile, part: zipfile.ZipInfo, path: Path, found: SheetScan | None = None) -> bool:
    """Excel never writes a DOCTYPE; one is how entity bombs and external entities come in:
    refuse it wherever it sits, whatever the reader. Return whether the part is a worksheet that
    calamine must not read (see UNPLACED_OR_WIDE). found, for a worksheet, gets what it holds."""
    sheet = _is_sheet(part)
    unsafe, kept, done = False, b"", 0  # done: the bytes of kept that found has taken already
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
            cut = len(text)
            if found is not None:
                # up to the last cell's end; the rest is kept for the next block, so that no cell is cut in two
                at = text.rfind(b"</c>", done)
                cut = len(text) if not block else at + 4 if at >= 0 else done
                if len(text) - cut > LONGEST_CELL:  # no cell ends there: cut between tags, never keep more
                    cut = max(text.rfind(b">", done) + 1, len(text) - LONGEST_CELL)
                found.add(text, done, cut)
            if not block:
                return unsafe
            start = max(0, min(cut, len(text) - OVERLAP))
            kept, done = text[start:], cut - start


def _mb(size: float) -> str:
    return f"{size / MB:,.0f} MB" if size >= 10 * MB else f"{size / MB:.2g} MB"


