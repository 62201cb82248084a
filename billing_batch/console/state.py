"""What every request of the console works on: the workspace (inbox/ and output/ in one folder, as the CLI
finds them), the start's token and CSRF token, its port, and the one job that may run."""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from billing_batch.console.jobs import Jobs
from billing_batch.i18n import parse
from billing_batch.inputs.workbook import input_files, normalise
from billing_batch.inputs.workbook_parts import Limits
from billing_batch.workspace import Options

DEFAULT_LOCALE = "en_US"


@dataclass
class Console:
    workspace: Path
    token: str
    csrf: str
    port: int
    jobs: Jobs = field(default_factory=lambda: Jobs())
    proxied: bool = False  # started with --behind-proxy: the Host header is the proxy's, not ours
    _locale: tuple[tuple, str] | None = field(default=None, repr=False)  # (the inbox's stat, its Locale)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.jobs.output is None:
            self.jobs.output = self.output  # a bug's error log goes where the CLI's goes

    @property
    def inbox(self) -> Path:
        return self.workspace / "inbox"

    @property
    def output(self) -> Path:
        return self.workspace / "output"

    def options(self, as_of: date | None = None, **kw) -> Options:
        """The Options the CLI builds for this workspace (cli/dispatch.py) when run in it with its defaults:
        the input inbox/, the output output/ beside it, a render process per core. kw: any other field of
        Options (allow_catch_up=True, post_tasks=(...), ...)."""
        settings = {"input": self.inbox, "output": Options.default_output(self.inbox),
                    "as_of": as_of or date.today(), "jobs": max(1, os.cpu_count() or 1), "limits": Limits()}
        settings.update(kw)
        return Options(**settings)

    def locale(self) -> str:
        """Settings' Locale as the inbox's workbooks give it (read again only when they change), else en_US.
        The pages are shown in it, amounts formatted as on the invoices."""
        try:
            files = input_files(self.inbox) if self.inbox.is_dir() else []
            stamp = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        except OSError:
            return DEFAULT_LOCALE
        with self._lock:
            if self._locale and self._locale[0] == stamp:
                return self._locale[1]
        found = next((value for value in map(_settings_locale, files) if value), DEFAULT_LOCALE)
        with self._lock:
            self._locale = (stamp, found)
        return found


def _settings_locale(path: Path) -> str | None:
    """The Locale row of a workbook's Settings sheet, when it has one that names a known locale. Only that sheet
    is read (python-calamine): the whole check is the Home page's, this only picks the language."""
    try:
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_path(str(path))
        name = next((n for n in book.sheet_names if normalise(n) == normalise("Settings")), None)
        if name is None:
            return None
        rows = book.get_sheet_by_name(name).to_python(nrows=500)
        header = [normalise(c) for c in rows[0]] if rows else []
        key, value = header.index(normalise("Key")), header.index(normalise("Value"))
        for row in rows[1:]:
            if len(row) > max(key, value) and normalise(row[key]) == normalise("Locale"):
                text = str(row[value]).strip().replace("-", "_")
                return str(parse(text)) if text else None
    except Exception:  # noqa: BLE001 - an unreadable workbook, no Key column, an unknown locale: the check page says so
        return None
    return None
