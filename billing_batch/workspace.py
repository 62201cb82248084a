"""What every command works on: its options (the input, the output folder, the ledger), the input
read and checked, what the ledger holds, and the report of what the command did."""
from __future__ import annotations

import errno
import os
import signal
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from billing_batch.documents import template_trial
from billing_batch.documents.look import Look
from billing_batch.engine import adjustments
from billing_batch.engine.licences import billed_twice
from billing_batch.engine.plan import differences, usage_ids
from billing_batch.engine.revisions import Revision
from billing_batch.errors import Problem
from billing_batch.inputs import partner_center, workbook
from billing_batch.inputs.validate import Checked, check
from billing_batch.ledger import known
from billing_batch.ledger.backups import FOLDER as BACKUP_FOLDER
from billing_batch.ledger.backups import Backups
from billing_batch.ledger.store import Ledger
from billing_batch.model import Invoice, InvoiceStatus, MidTermChanges, Settings
from billing_batch.post.records import Outcome, is_billed, task_status
from billing_batch.review import schedule_book
from billing_batch.review.licence_checks import LicenceFlag
from billing_batch.templates import FOLDER as TEMPLATES

LEDGER_NAME = "ledger.sqlite"


class Refused(Exception):
    """The command would be unsafe; nothing was written. The message says why and what to do."""


@dataclass(frozen=True)
class Options:
    input: Path
    output: Path
    as_of: date
    ledger: Path | None = None
    jobs: int = 1
    executor: str = "process"  # or "dask", rendering on the cluster at scheduler
    scheduler: str | None = None
    templates: Path | None = None  # --templates: one's own templates folder, before Settings' Templates Folder
    post_tasks: tuple[str, ...] = ()  # send, sync, charge: run after billing
    allow_catch_up: bool = False  # bill a contract's due cycles even beyond the Catch-Up Limit
    new_ledger: bool = False  # start a ledger here though another known ledger bills these contracts
    limits: workbook.Limits = workbook.Limits()

    @staticmethod
    def default_output(input: Path) -> Path:
        """output/ beside the input folder (the workbook's folder when a file is named), wherever the
        command is run from: the same workbook always finds the same ledger."""
        folder = input if input.is_dir() else input.parent
        if folder.name in ("", ".", ".."):  # the current folder or above: name it, or its parent is itself
            folder = folder.resolve()
        return folder.parent / "output"

    @property
    def ledger_path(self) -> Path:
        return self.ledger or self.output / LEDGER_NAME

    def look(self, settings: Settings) -> Look:
        return Look.of(Look(self.templates or settings.templates_folder, TEMPLATES, settings.logo))


@dataclass
class Report:
    """What a command did, for the terminal summary."""

    problems: list[Problem] = field(default_factory=list)
    locale: str = "en_US"  # Settings' Locale: the terminal shows amounts in it
    set_aside: dict[str, list[Problem]] = field(default_factory=dict)
    issued: list[Invoice] = field(default_factory=list)  # invoices and credit notes
    credited: list[str] = field(default_factory=list)  # invoices this command credited in full
    nothing_to_bill: int = 0
    new_ledger: bool = False  # this command started the ledger
    post_earlier: int = 0  # documents of earlier commands that this one's post tasks took
    usage_billed_before: int = 0  # usage rows left out: dated on or before their contract's Billed Through
    differs: dict[str, str] = field(default_factory=dict)  # invoice number -> message
    revised: list[Revision] = field(default_factory=list)  # Partner Center rows revised after billing
    mismatches: list[partner_center.Mismatch] = field(default_factory=list)  # its reconciliation, beyond tolerance
    licence_checks: list[LicenceFlag] = field(default_factory=list)  # licence flags raised (review/licence_checks)
    post: list[Outcome] = field(default_factory=list)
    pdfs: list[Path] = field(default_factory=list)
    book: Path | None = None
    review: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)
    cpu_timings: dict[str, float] = field(default_factory=dict)  # this process's CPU seconds per stage
    started: datetime = field(default_factory=datetime.now)
    clock: float = field(default_factory=time.perf_counter)

    @property
    def exit_code(self) -> int:
        if any(p.fatal for p in self.problems):
            return 2
        return 1 if self.problems else 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started, cpu = time.perf_counter(), time.process_time()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started
        self.cpu_timings[name] = self.cpu_timings.get(name, 0.0) + time.process_time() - cpu


@dataclass
class State:
    """What the ledger holds: every invoice ever issued and the cycles settled without one."""

    invoices: list[Invoice] = field(default_factory=list)
    empty: dict[tuple[str, date], date] = field(default_factory=dict)
    billed: set[str] = field(default_factory=set)  # invoices sent or synced

    @property
    def live(self) -> dict[tuple[str, date], Invoice]:
        return adjustments.cycle_invoices(self.invoices)

    @property
    def settled(self) -> set[tuple[str, date]]:
        """The cycles a run does not bill: found empty, or with a document of any status. A cycle
        whose invoice was credited in full by hand stays settled: only generate --cycle bills it again."""
        return set(self.empty) | {(i.draft.contract_id, i.draft.cycle_start) for i in self.invoices
                                  if not i.draft.change_log}

    @property
    def billed_usage(self) -> set[tuple[str, str]]:
        """(contract, usage ID) of every usage row on a document that is not Replaced: a Credited
        invoice's rows were billed, and credited, and are not billed again by themselves."""
        return {(i.draft.contract_id, u) for i in self.invoices if i.status is not InvoiceStatus.REPLACED
                for u in usage_ids(i.draft)}

    def pending(self, checked: Checked) -> adjustments.Pending:
        """The adjustments the current data calls for; none when the Settings flag changes only."""
        if checked.inputs.settings.mid_term_changes is MidTermChanges.FLAG_ONLY:
            return adjustments.Pending()
        return adjustments.pending(checked.inputs, checked.set_aside, self.invoices, self.empty)

    def hold_billed_twice(self, checked: Checked) -> list[Problem]:
        """Set aside the contracts whose typed licence rows billed days the licence file bills too, where no
        Adjustment takes them back (engine/licences.billed_twice)."""
        if checked.inputs.settings.mid_term_changes is not MidTermChanges.FLAG_ONLY:
            return []
        found = billed_twice(checked.inputs, self.invoices)
        for p in found:
            checked.set_aside.setdefault(p.contract_id, []).append(p)
        return found

    def differs(self, checked: Checked) -> dict[str, str]:
        """Invoice number -> how the current data differs from what was billed for its cycle."""
        if checked.inputs.settings.mid_term_changes is MidTermChanges.FLAG_ONLY:
            return differences(checked.inputs, checked.set_aside, self.live.values())
        return self.pending(checked).notes()

    @classmethod
    def read(cls, ledger: Ledger) -> State:
        return cls(ledger.invoices(), ledger.empty_cycles(), billed(ledger))


def billed(ledger: Ledger) -> set[str]:
    """The invoices sent or synced."""
    return {number for number, status in task_status(ledger).items() if is_billed(status)}


def open_ledger(options: Options, checked: Checked | None = None, read_only: bool = False) -> Ledger:
    """The ledger, with its backups in OUTPUT/backups (as many kept as the Settings say). Opened to
    write, it is made if missing (find_ledger says when that is safe) and remembered as known."""
    keep = (checked.inputs.settings if checked else Settings()).ledger_backups
    if not read_only:  # an output folder that cannot be written stops the command here, before it bills
        options.output.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=options.output).close()
    ledger = Ledger(options.ledger_path, read_only, Backups(options.output / BACKUP_FOLDER, keep))
    if not read_only:
        known.remember(options.ledger_path)
    return ledger


def failpoint(name: str) -> None:
    """For the crash and fault tests: BILLING_BATCH_FAILPOINT=name dies here as a power cut would;
    name:ENOSPC (or another errno's name) fails here as the disk would; name:bug as a bug would."""
    point, _, fault = os.environ.get("BILLING_BATCH_FAILPOINT", "").partition(":")
    if point != name:
        return
    if fault == "bug":
        raise RuntimeError(f"a bug at failpoint {name}")
    if fault:
        code = getattr(errno, fault)
        raise OSError(code, os.strerror(code))
    os.kill(os.getpid(), signal.SIGKILL)


def load(options: Options, report: Report, preflight: bool = False) -> Checked | None:
    """Read and validate the input; None when it cannot be used at all. preflight: for commands that
    render, also prove that the templates and logo in use render (template_trial)."""
    with report.stage("load"):
        book, problems = workbook.read(workbook.input_files(options.input), options.limits)
    report.problems += problems
    if problems:
        return None
    with report.stage("load Partner Center files"):
        usage_file = licence_file = None
        if csv_files := partner_center.input_files(options.input):
            from billing_batch.inputs import licence_rows, partner_center_rows  # pandas: only with a CSV to read

            usage_file, licence_file = partner_center_rows.read(csv_files), licence_rows.read(csv_files)
    with report.stage("validate"):
        checked = check(book, usage_file, licence_file)
    report.problems += checked.problems
    report.set_aside = checked.set_aside
    report.mismatches = checked.mismatches
    report.locale = checked.inputs.settings.locale
    if checked.fatal:
        return None
    chosen = options.look(checked.inputs.settings)
    if preflight and not chosen.is_default:  # the defaults are proven by the tests
        with report.stage("preflight"):
            trouble = template_trial.problems(chosen, checked.inputs.settings, options.as_of)
        report.problems += trouble
        if trouble:
            return None
    return checked


def read_state(options: Options, checked: Checked) -> State:
    """The ledger's state for commands that write nothing: no ledger means nothing billed."""
    find_ledger(options, checked)
    if not options.ledger_path.exists():
        return State()
    with open_ledger(options, read_only=True) as ledger:
        return State.read(ledger)


def find_ledger(options: Options, checked: Checked) -> bool:
    """Whether the command starts a new ledger. A ledger is found, never silently made: outputs without
    a ledger, or another known ledger that has billed these contracts, mean the ledger was lost, moved
    or is elsewhere, and billing here would bill twice."""
    if options.ledger_path.exists():
        return False
    leftovers = [p for p in (options.output / schedule_book.BOOK_NAME, options.output / "invoices") if p.exists()]
    if leftovers:
        raise Refused(
            f"{options.output} already holds {', '.join(p.name for p in leftovers)} but no ledger "
            f"({options.ledger_path.name}). The ledger records what was billed; without it every cycle "
            "would be billed again. Put the ledger back, or point at it with --ledger PATH, "
            "or use an empty output folder to start afresh."
        )
    elsewhere = None if options.new_ledger else known.billing_elsewhere(options.ledger_path, checked.inputs.contracts)
    if elsewhere:
        other, contracts = elsewhere
        named = ", ".join(contracts[:3]) + (f" and {len(contracts) - 3} more" if len(contracts) > 3 else "")
        raise Refused(
            f"There is no ledger at {options.ledger_path}, but the ledger {other} has billed {named}: a new "
            f"ledger here would bill them again. To go on with that ledger, run with --output {other.parent} "
            f"(or --ledger {other}). To start a separate ledger on purpose (a trial, another company), add "
            "--new-ledger. Nothing was billed.")
    return True
