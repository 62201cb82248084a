"""What the machine did to a command, in words: a full disk, a folder it may not write, a file gone.
These are not bugs: the command stops with exit 2 and the ledger as its last commit left it."""
from __future__ import annotations

import errno
import sqlite3
import tempfile
from pathlib import Path

# errno -> (what happened to the file, what to do)
WHAT = {
    errno.ENOSPC: ("the disk is full", "Free some space on that disk, or choose another output folder with "
                                       "--output, then run again."),
    errno.EROFS: ("it is read-only",
                  "Choose a folder you may write with --output, or ask for write access to this one, then run again."),
    errno.ENOENT: ("it vanished while billing-batch was using it (it, or its folder, was moved or deleted)",
                   "Leave the input and output folders alone while a command runs, then run again."),
    errno.EIO: ("the disk reported an error", "Check the disk or network drive, then run again."),
}
WHAT[errno.EDQUOT] = (WHAT[errno.ENOSPC][0] + " (your share of it)", WHAT[errno.ENOSPC][1])
WHAT[errno.EACCES] = WHAT[errno.EPERM] = ("it is read-only, or another user's",
                                          WHAT[errno.EROFS][1])
# SQLite says what happened to the ledger in words, not an errno
SQLITE = {"database or disk is full": errno.ENOSPC, "attempt to write a readonly database": errno.EROFS,
          "unable to open database file": errno.EACCES, "disk I/O error": errno.EIO}
KEPT = ("Nothing billed is lost: the ledger holds every invoice issued in full, and the next run makes the "
        "missing files without billing anything twice.")


def fault_message(exc: BaseException, ledger: Path | None) -> str | None:
    """The message for a fault of the machine, or None when exc is not one (a bug)."""
    for cause in _chain(exc):
        if isinstance(cause, OSError) and cause.errno in WHAT:
            where = cause.filename or cause.filename2
            return _message(cause.errno, Path(where) if where else None)
        if isinstance(cause, sqlite3.OperationalError):
            code = next((code for words, code in SQLITE.items() if words in str(cause)), None)
            if code is not None:
                return _message(code, ledger)
    return None


def _message(code: int, file: Path | None) -> str:
    what, todo = WHAT[code]
    if file is None:
        return f"billing-batch stopped: {what}. {todo} {KEPT}"
    if code in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"billing-batch may not write in {file.parent}: {what}. {todo} {KEPT}"
    return f"billing-batch could not use {file}: {what}. {todo} {KEPT}"


def _chain(exc: BaseException | None):
    """exc, what it wraps (xlsxwriter keeps the OSError in args) and what caused it."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        wrapped = next((a for a in exc.args if isinstance(a, BaseException)), None)
        exc = wrapped or exc.__cause__ or exc.__context__


def error_log(details: str, output: Path | None) -> Path | None:
    """Write the details where they can be written: the output folder, else the temporary folder."""
    for folder in (output or Path("output"), Path(tempfile.gettempdir())):
        log = folder / "billing-batch-error.log"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            log.write_text(details)
            return log
        except OSError:
            continue
    return None


def refusal(exc: Exception) -> str:
    """A refusal (the ledger busy, or another reason the command stopped before billing) in the words shown."""
    from billing_batch.ledger.store import LedgerBusy

    if isinstance(exc, LedgerBusy):
        return (f"Another billing run is using the ledger {exc}. Wait for it to finish, then run again; "
                "nothing was billed by this one.")
    return str(exc)
