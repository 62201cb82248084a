"""The runs folder: one folder per run (output/runs/<run id>/) holding its review page and facts."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

RUNS = "runs"
PAGE = "review.html"
FACTS = "run.json"
RUN_ID = re.compile(r"\d{4}-\d{2}-\d{2}T\d{6}-([a-z]+)(-\d+)?")
BILLING = ("run", "generate")  # the commands that bill; `credit` only corrects


@dataclass(frozen=True)
class RunFacts:
    """What the pipeline knows about the run."""

    run_id: str  # from new_run_id
    command: str  # "run", "generate" or "credit"
    as_of: date
    input_files: tuple[Path, ...]
    started: datetime
    duration_s: float
    nothing_to_bill: int = 0  # due cycles settled without an invoice


def new_run_id(now: datetime, command: str, out_dir: Path | None = None) -> str:
    """A sortable, filesystem-safe run ID from the start time (wall clock as given) and the
    command, e.g. 2026-11-02T081501-run. Given out_dir, a suffix (-2, -3, ...) keeps it unique
    when a run of the same command started in the same second."""
    command = re.sub(r"[^a-z]", "", command.lower()) or "run"
    base = f"{now:%Y-%m-%dT%H%M%S}-{command}"
    if out_dir is None:
        return base
    run_id, n = base, 1
    while (Path(out_dir) / RUNS / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def review_path(out_dir: Path, run_id: str) -> Path:
    """out_dir/runs/<run id>/review.html. The run ID must look like one from new_run_id,
    so `review --run` cannot be pointed outside the runs folder."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"{run_id!r} is not a run ID; run IDs look like 2026-11-02T081501-run")
    return Path(out_dir) / RUNS / run_id / PAGE


@dataclass(frozen=True)
class PastRun:
    run_id: str
    page: Path
    summary: dict  # what run.json holds: as_of, command, invoices, flagged, set_aside, errors, totals

    @property
    def command(self) -> str:
        """The command that made it, from run.json, else from its ID (2026-11-02T081501-credit)."""
        return str(self.summary.get("command") or RUN_ID.fullmatch(self.run_id).group(1))

    @property
    def bills(self) -> bool:
        return self.command in BILLING


def past_runs(out_dir: Path) -> list[PastRun]:
    """The runs with a review page, oldest first."""
    found = []
    root = Path(out_dir) / RUNS
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        page = folder / PAGE
        if RUN_ID.fullmatch(folder.name) and page.is_file():
            try:
                summary = json.loads((folder / FACTS).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {}
            found.append(PastRun(folder.name, page, summary))
    return found


def latest(runs: list[PastRun]) -> PastRun | None:
    """The run `review` opens by default: the latest that billed (a `run` or a `generate`), not a
    `credit` made since; when no run billed, the latest of any."""
    return next((r for r in reversed(runs) if r.bills), runs[-1] if runs else None)


def find_review(out_dir: Path, run_id: str | None) -> Path:
    """The page of run_id, or of the latest billing run (latest()) when run_id is None. Raises
    LookupError with a message for the user (listing the runs there are) when there is none."""
    runs = past_runs(out_dir)
    if run_id is None:
        if runs:
            return latest(runs).page
        raise LookupError(f"No run has been reviewed in {Path(out_dir) / RUNS} yet: "
                          "`billing-batch run` writes a review page for every run.")
    try:
        page = review_path(out_dir, run_id)
    except ValueError as exc:
        raise LookupError(str(exc)) from None
    if page.is_file():
        return page
    known = ", ".join(r.run_id for r in runs[-10:]) or "none yet"
    raise LookupError(f"There is no review for run {run_id} in {Path(out_dir) / RUNS}. Runs there: {known}.")


def open_page(page: Path) -> bool:
    """Show the page in the desktop's browser, if there is a desktop. On a server (no DISPLAY),
    do nothing rather than start a text browser in the terminal; the caller prints the path."""
    import sys
    import webbrowser

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(Path(page).resolve().as_uri())
    except webbrowser.Error:
        return False


# ---------------------------------------------------------------- the page
