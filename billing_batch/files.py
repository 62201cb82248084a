"""Writing output files so that they exist whole or not at all, and CSV files that stay inert in a spreadsheet."""
from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

# A cell starting with one of these is evaluated by Excel, LibreOffice or Google Sheets as a formula (=HYPERLINK,
# DDE payloads), also after a leading tab or carriage return: OWASP "CSV Injection".
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def write_atomic(target: Path, data: bytes) -> None:
    """Write beside the target and rename over it. The temp name is unique so that parallel
    writers never collide; os.open honours the umask (mkstemp would force 0600)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename:
            raise
        raise OSError(exc.errno, exc.strerror, str(target)) from exc  # a full disk names no file
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]], numbers: Collection[str] = ()) -> bytes:
    """A CSV file (UTF-8, CRLF) in which no text cell is a formula: a text starting with = + - @, tab or carriage
    return gets a leading apostrophe, the spreadsheets' "this is text" mark (docs/decisions.md). The columns named
    in numbers hold the program's own numbers and are written as they are, so that -12.50 stays an amount:
    which cells are text is decided by column, never by what a value looks like."""
    keep = [name in numbers for name in header]
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([value if number else _inert(str(value)) for value, number in zip(row, keep, strict=True)])
    return out.getvalue().encode("utf-8")


def _inert(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_START) else text
