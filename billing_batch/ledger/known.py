"""The ledgers this user has billed with, so that a run about to start a new ledger can see that
another one already bills its contracts (the same workbook run with another output folder)."""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import platformdirs

from billing_batch.files import write_atomic

LIST_NAME = "ledgers.txt"


def folder() -> Path:
    """BILLING_BATCH_DATA, or the user's data folder (~/.local/share/billing-batch on Linux)."""
    return Path(os.environ.get("BILLING_BATCH_DATA") or platformdirs.user_data_dir("billing-batch"))


def known() -> list[Path]:
    try:
        return [Path(line) for line in (folder() / LIST_NAME).read_text("utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return []


def remember(ledger: Path) -> None:
    """Add the ledger to the list. A list that cannot be written (no home folder) costs only this guard."""
    path = ledger.resolve()
    paths = known()
    if path in paths:
        return
    kept = [p for p in paths if p.is_file()]  # ledgers deleted since (trial folders) are forgotten
    try:
        write_atomic(folder() / LIST_NAME, "".join(f"{p}\n" for p in [*kept, path]).encode("utf-8"))
    except OSError:
        pass


def billing_elsewhere(ledger: Path, contract_ids: Iterable[str]) -> tuple[Path, list[str]] | None:
    """Another known ledger that has billed some of these contracts, and which ones."""
    wanted, here = set(contract_ids), ledger.resolve()
    for other in known():
        if other == here or not other.is_file():
            continue
        try:
            db = sqlite3.connect(f"{other.as_uri()}?mode=ro", uri=True)
            try:
                billed = {c for (c,) in db.execute("SELECT DISTINCT contract_id FROM invoices")}
            finally:
                db.close()
        except sqlite3.Error:
            continue  # not a ledger any more: `ledger check` is where it is looked at
        if wanted & billed:
            return other, sorted(wanted & billed)
    return None
