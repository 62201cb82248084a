"""Write OUTPUT/reconciliation/licences-<flag>.csv: for each licence flag the run raised (review/licence_checks.py),
the rows behind it, linked from the review page. The files always say what the current data says: a flag no
longer raised has its file removed, so an old file is never read as news."""
from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from billing_batch.files import csv_bytes, write_atomic

FOLDER = "reconciliation"


class Flagged(Protocol):
    """What is written of a flag (review/licence_checks.LicenceFlag)."""

    @property
    def name(self) -> str: ...
    @property
    def columns(self) -> Sequence[str]: ...
    @property
    def rows(self) -> Iterable[Sequence[object]]: ...
    @property
    def numbers(self) -> Collection[str]: ...


def file_name(flag: str) -> str:
    """The CSV of a flag, relative to the output folder."""
    return f"{FOLDER}/licences-{flag}.csv"


def write_licence_flags(output: Path, flags: Iterable[Flagged], every: Iterable[str]) -> list[Path]:
    """One CSV per flag raised; every: the names of all the flags, whose files are removed when not raised.
    Amounts and counts the checks computed are written as numbers; Microsoft's text (a SKU name, a tenant) is
    kept inert in a spreadsheet by csv_bytes."""
    written, raised = [], set()
    for flag in flags:
        path = output / file_name(flag.name)
        write_atomic(path, csv_bytes(list(flag.columns), flag.rows, flag.numbers))
        written.append(path)
        raised.add(flag.name)
    for name in sorted(set(every) - raised):
        (output / file_name(name)).unlink(missing_ok=True)
    return written
