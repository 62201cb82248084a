"""Copies of the ledger, made with SQLite's online backup API (consistent even while it is open)."""
from __future__ import annotations

import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

FOLDER = "backups"  # inside the output folder
KEEP = 12
NAME = re.compile(r"ledger-(\d{8}T\d{6})(?:-(\d+))?\.sqlite")


@dataclass(frozen=True)
class Backups:
    folder: Path
    keep: int = KEEP

    def take(self, db: sqlite3.Connection, now: datetime | None = None) -> Path:
        """Copy the ledger to folder/ledger-YYYYMMDDTHHMMSS.sqlite (-1, -2, ... within one second),
        then keep only the newest `keep`. The copy appears whole or not at all."""
        self.folder.mkdir(parents=True, exist_ok=True)
        stamp = (now or datetime.now()).strftime("%Y%m%dT%H%M%S")
        path, n = self.folder / f"ledger-{stamp}.sqlite", 0
        while path.exists():
            n += 1
            path = self.folder / f"ledger-{stamp}-{n}.sqlite"
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            copy = sqlite3.connect(tmp)
            try:
                db.backup(copy)
            finally:
                copy.close()
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)  # a full disk must not leave half a copy
        for old in self.all()[:-self.keep]:
            old.unlink()
        return path

    def all(self) -> list[Path]:
        """The backups, oldest first."""
        if not self.folder.is_dir():
            return []
        found = [(m.group(1), int(m.group(2) or 0), p) for p in self.folder.iterdir()
                 if (m := NAME.fullmatch(p.name))]
        return [p for *_, p in sorted(found)]

    def newest(self) -> Path | None:
        backups = self.all()
        return backups[-1] if backups else None
