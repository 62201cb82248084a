"""The batch from end to end: load, validate, cycles, bill, render, write. One function per command."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

from billing_batch import render, schedule_book, workbook
from billing_batch.billing import make_invoice, plan_run
from billing_batch.errors import Problem
from billing_batch.ledger import Ledger
from billing_batch.model import Invoice, InvoiceStatus, RunType
from billing_batch.schedules import schedule_rows
from billing_batch.validate import Checked, check

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
LEDGER_NAME = "ledger.sqlite"


class Refused(Exception):
    """The run would be unsafe; nothing was written. The message says why and what to do."""


@dataclass(frozen=True)
class Options:
    input: Path
    output: Path
    as_of: date
    ledger: Path | None = None
    jobs: int = 1
    templates: Path = TEMPLATES

    @property
    def ledger_path(self) -> Path:
        return self.ledger or self.output / LEDGER_NAME


@dataclass
class Report:
    """What a run did, for the terminal summary."""

    problems: list[Problem] = field(default_factory=list)
    set_aside: dict[str, list[Problem]] = field(default_factory=dict)
    issued: list[Invoice] = field(default_factory=list)
    nothing_to_bill: int = 0
    pdfs: list[Path] = field(default_factory=list)
    book: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        if any(p.fatal for p in self.problems):
            return 2
        return 1 if self.problems else 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started


def load(options: Options, report: Report) -> Checked | None:
    """Read and validate the input; None when it cannot be used at all."""
    with report.stage("load"):
        book, problems = workbook.read(workbook.input_files(options.input))
    report.problems += problems
    if problems:
        return None
    with report.stage("validate"):
        checked = check(book)
    report.problems += checked.problems
    report.set_aside = checked.set_aside
    return None if checked.fatal else checked


def run(options: Options, on_rendered: Callable[[Invoice], None] | None = None) -> Report:
    """The monthly batch: bill every due cycle not yet billed, then bring the outputs up to date."""
    report = Report()
    checked = load(options, report)
    if checked is None:
        return report
    refuse_without_ledger(options)
    with Ledger(options.ledger_path) as ledger:
        with report.stage("cycles and billing"):
            invoices = ledger.invoices()
            empty = ledger.empty_cycles()
            live = [i for i in invoices if i.status is not InvoiceStatus.REPLACED]
            plan = plan_run(
                checked.inputs,
                set_aside=checked.set_aside,
                settled={(i.draft.contract_id, i.draft.cycle_start) for i in live} | set(empty),
                billed_usage={(i.draft.contract_id, line.usage_id) for i in live for line in i.draft.lines
                              if line.usage_id},
                as_of=options.as_of,
            )
            build = partial(_build, inputs=checked.inputs, as_of=options.as_of)
            report.issued = ledger.issue(plan.drafts, plan.empty, options.as_of, build)
            report.nothing_to_bill = len(plan.empty)
            invoices += report.issued
            empty |= {(c.contract_id, c.start): options.as_of for c in plan.empty}
        write_outputs(options, checked, invoices, empty, report, on_rendered)
    return report


def _build(seq, draft, inputs, as_of) -> Invoice:
    return make_invoice(seq, draft, inputs, as_of, RunType.AUTOMATIC)


def write_outputs(options, checked, invoices, empty, report, on_rendered) -> None:
    """Derive the PDFs and the schedule book from the ledger; a missing PDF is made again."""
    with report.stage("render"):
        missing = [i for i in invoices if not (options.output / i.pdf_name).exists()]
        render.render_invoices(missing, options.output, options.templates, options.jobs, on_rendered)
        report.pdfs = [options.output / i.pdf_name for i in report.issued]
    with report.stage("write workbook"):
        rows = schedule_rows(checked.inputs, checked.set_aside, checked.broken_contracts, invoices, empty,
                             options.as_of)
        report.book = schedule_book.write(options.output, rows, invoices)


def refuse_without_ledger(options: Options) -> None:
    """Outputs without a ledger mean the ledger was lost or moved: billing now would bill twice."""
    if options.ledger_path.exists():
        return
    leftovers = [p for p in (options.output / schedule_book.BOOK_NAME, options.output / "invoices") if p.exists()]
    if leftovers:
        raise Refused(
            f"{options.output} already holds {', '.join(p.name for p in leftovers)} but no ledger "
            f"({options.ledger_path.name}). The ledger records what was billed; without it every cycle "
            "would be billed again. Put the ledger back, or point at it with --ledger PATH, "
            "or use an empty output folder to start afresh."
        )
