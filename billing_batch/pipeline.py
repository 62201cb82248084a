"""The batch from end to end: load, validate, cycles, bill, render, write. One function per command.

Over 400 lines: a screen per command and the outputs every billing command derives from the ledger
(write_outputs), so that the whole program reads in this one file; what the commands share (options,
the loaded input, the ledger's state, the report) is in workspace.py."""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import jinja2

from billing_batch.documents import pdf_check, render, render_pool, template_trial, usage_book
from billing_batch.documents.licence_reconciliation import write_licence_flags
from billing_batch.documents.usage_reconciliation import write_mismatches
from billing_batch.engine import seat_register
from billing_batch.engine.credit_notes import Refusal, below_zero, credit_invoice, from_draft
from billing_batch.engine.plan import (
    Plan,
    Proposal,
    hold_long_catch_ups,
    make_document,
    plan_change_logs,
    plan_manual,
    plan_run,
    usage_billed_before,
    with_adjustments,
)
from billing_batch.engine.revisions import revised
from billing_batch.engine.schedules import ScheduleRow, schedule_rows
from billing_batch.i18n import N_
from billing_batch.inputs import workbook
from billing_batch.inputs.validate import Checked
from billing_batch.ledger import check as ledger_check
from billing_batch.ledger.store import Ledger
from billing_batch.model import AdjustmentInvoices, Draft, Invoice, InvoiceStatus, RunType
from billing_batch.post.records import DONE, Outcome, live_invoices, task_status
from billing_batch.post.tasks import after_billing, run_post_tasks
from billing_batch.review import chart as review_chart
from billing_batch.review import flags as review_flags
from billing_batch.review import licence_checks
from billing_batch.review import page
from billing_batch.review import runs as review_runs
from billing_batch.review import schedule_book
from billing_batch.workspace import (
    Options,
    Refused,
    Report,
    State,
    billed,
    failpoint,
    find_ledger,
    load,
    open_ledger,
    read_state,
)

REPLACE_REASON = N_("Replaced by a corrected invoice")  # printed, translated, on its credit note
Progress = Callable[[int, int], None]  # (PDFs rendered, PDFs to render)
CHANGED = "What it would bill changed since it was shown: nothing was billed. Look at it again."


def run(options: Options, on_rendered: Progress | None = None, report: Report | None = None,
        approve: Callable[[list[Draft]], bool] | None = None) -> Report:
    """The monthly batch: bill every due cycle not yet billed, then bring the outputs up to date. report: one
    the caller watches (the console shows its stages). approve(drafts): whether to bill what the run found, asked
    while the ledger is held (the console's Approve: what the person saw); refused (Refused) when it says no."""
    report = report or Report()
    render_pool.start_workers(options.jobs, options.executor)  # warm while the input is read
    checked = load(options, report, preflight=True)
    if checked is None:
        return report
    report.new_ledger = find_ledger(options, checked)
    with open_ledger(options, checked) as ledger:
        with report.stage("read ledger"):
            state = State.read(ledger)
        with report.stage("cycles and pricing"):
            plan = plan_automatic(checked, state, options, report)
            if approve is not None and not approve(list(plan.drafts)):
                raise Refused(CHANGED)
        with report.stage("write ledger"):
            # a cycle totalling below zero is issued as a credit note, and settled by it
            documents = [from_draft(d) if below_zero(d) else d for d in plan.drafts]
            issued = ledger.issue(documents, plan.empty, options.as_of,
                                  lambda seq, document: make_document(seq, document, checked.inputs, options.as_of,
                                                                      RunType.AUTOMATIC))
            failpoint("after-billing")
        report.issued, report.nothing_to_bill = issued, len(plan.empty)
        state.invoices += issued
        state.empty |= {(c.contract_id, c.start): options.as_of for c in plan.empty}
        write_outputs(options, checked, state, ledger, report, on_rendered, "run")
    return report


def plan_automatic(checked: Checked, state: State, options: Options, report: Report) -> Plan:
    """What `run` bills now. A contract over the Catch-Up Limit is set aside, as a problem in its
    rows would set it aside: its due cycles show Error, and the report lists it."""
    report.problems += state.hold_billed_twice(checked)
    billed_usage = state.billed_usage
    pending = state.pending(checked).lines
    plan = plan_run(
        checked.inputs,
        set_aside=checked.set_aside,
        settled=state.settled,
        billed_usage=billed_usage,
        as_of=options.as_of,
        adjustments=pending,
        change_logs=monthly_change_logs(checked, state, pending, options.as_of),
    )
    report.usage_billed_before = usage_billed_before(checked.inputs, billed_usage)
    if options.allow_catch_up:
        return plan
    plan, held = hold_long_catch_ups(plan, checked.inputs)
    for p in held:
        checked.set_aside[p.contract_id] = [p]
    report.problems += held
    report.set_aside = checked.set_aside
    return plan


def monthly_change_logs(checked: Checked, state: State, pending: dict, as_of: date) -> set[str]:
    """With Adjustment Invoices Monthly: the quarterly and longer contracts with adjustments pending
    and no invoice of adjustments yet in as_of's month, which the run bills on one of their own."""
    if checked.inputs.settings.adjustment_invoices is not AdjustmentInvoices.MONTHLY:
        return set()
    this_month = {i.draft.contract_id for i in state.invoices if i.draft.change_log
                  and (i.invoice_date.year, i.invoice_date.month) == (as_of.year, as_of.month)}
    return {cid for cid in pending if cid not in this_month and cid in checked.inputs.contracts
            and checked.inputs.contracts[cid].frequency.months >= 3}


def preview_run(options: Options) -> tuple[Report, list[Draft]]:
    """What `run` would bill now; writes nothing and takes no number."""
    report = Report()
    checked = load(options, report)
    if checked is None:
        return report, []
    return report, list(plan_automatic(checked, read_state(options, checked), options, report).drafts)


def check_input(options: Options) -> Report:
    """Every problem in the input, and the contracts a run now would set aside for a long catch-up
    (from the ledger if there is one); bills and writes nothing."""
    report = Report()
    checked = load(options, report, preflight=True)
    if checked is not None:
        state = read_state(options, checked)
        plan_automatic(checked, state, options, report)
        report.revised = revised(checked.inputs.usage, state.live.values())
        report.licence_checks = licence_checks.licence_checks(checked, state.billed_usage,
                                                              checked.inputs.settings.locale)
    return report


def propose(options: Options, contract_ids: Iterable[str], cycle_day: date | None) -> tuple[Report, list[Proposal]]:
    """What `generate` would bill for these contracts; writes nothing."""
    report = Report()
    checked = load(options, report)
    if checked is None:
        return report, []
    return report, _proposals(options, checked, read_state(options, checked), contract_ids, cycle_day, adjust=False)


def _proposals(options: Options, checked: Checked, state: State, contract_ids: Iterable[str],
               cycle_day: date | None, adjust: bool) -> list[Proposal]:
    """adjust: each contract's pending adjustments on an invoice of their own; else the cycle asked
    for, with the pending adjustments when it is the contract's next invoice (not a replacement)."""
    state.hold_billed_twice(checked)
    pending = state.pending(checked).lines
    if adjust:
        return plan_change_logs(checked.inputs, checked.set_aside, pending, contract_ids, options.as_of)
    proposals = plan_manual(checked.inputs, checked.set_aside, state.live, state.settled, contract_ids, cycle_day)
    for n, p in enumerate(proposals):
        if p.draft and not p.existing and (lines := pending.get(p.contract_id)):
            draft = with_adjustments(p.draft, lines, p.cycle, checked.inputs.contracts[p.contract_id], checked.inputs)
            proposals[n] = replace(p, draft=draft)
    return proposals


def generate(
    options: Options,
    contract_ids: list[str],
    cycle_day: date | None,
    approve: Callable[[list[Proposal]], list[Proposal]],
    on_rendered: Progress | None = None,
    adjust: bool = False,
    report: Report | None = None,
) -> Report:
    """Bill chosen cycles by hand (adjust: the pending adjustments, on invoices of their own).
    approve() sees every proposal (and may ask the user) and returns those to bill; it runs
    while the ledger is held, so nothing changes between. report: filled in, when given (approve
    may read what load put in it, such as the Locale)."""
    report = report or Report()
    render_pool.start_workers(options.jobs, options.executor)
    checked = load(options, report, preflight=True)
    if checked is None:
        return report
    report.new_ledger = find_ledger(options, checked)
    with open_ledger(options, checked) as ledger:
        state = State.read(ledger)
        proposals = _proposals(options, checked, state, contract_ids, cycle_day, adjust)
        chosen = sorted((p for p in approve(proposals) if p.draft and not p.draft.is_empty),
                        key=lambda p: (p.cycle.scheduled, p.contract_id, p.cycle.start))
        replaces = {p.draft.schedule_id: p.existing.number for p in chosen if p.existing}
        documents, gone = [], left_the_building(ledger)
        for p in chosen:
            # An invoice that has left the building is corrected by a credit note, never voided.
            if p.existing and p.existing.number in gone:
                note = credit_invoice(p.existing, state.invoices, REPLACE_REASON)
                if isinstance(note, Refusal):  # a credit note sent already: corrected by an invoice, by hand
                    raise Refused(f"{note} Nothing was billed.")
                documents.append(note)
            documents.append(from_draft(p.draft) if below_zero(p.draft) else p.draft)
        issued = ledger.issue(documents, [], options.as_of,
                              lambda seq, document: make_document(seq, document, checked.inputs, options.as_of,
                                                                  RunType.MANUAL),
                              replaces)
        failpoint("after-billing")
        report.issued = issued
        state = State.read(ledger)
        report.credited = credited_now(state, issued)
        plan_automatic(checked, state, options, Report())  # the catch-up guard's holds, shown as `run` shows them
        write_outputs(options, checked, state, ledger, report, on_rendered, "generate")
    return report


def credit(options: Options, number: str, reason: str, line: int | None = None,
           quantity: Decimal | None = None, amount: Decimal | None = None,
           on_rendered: Progress | None = None) -> tuple[Report, Refusal | None]:
    """Credit an issued invoice by hand: what is left of it, or part of one line. A refusal
    writes nothing."""
    report = Report()
    checked = load(options, report, preflight=True)
    if checked is None:
        return report, None
    if find_ledger(options, checked):
        return report, Refusal("BB130", f"There is no ledger at {options.ledger_path}, so no invoice {number} "
                                        "to credit. Name the ledger with --ledger PATH or --output DIR.")
    with open_ledger(options, checked) as ledger:
        state = State.read(ledger)
        invoice = next((i for i in state.invoices if i.number == number), None)
        if invoice is None:
            return report, Refusal("BB130", f"The ledger holds no invoice {number}. Check the number as it is "
                                            "printed on the invoice (billing_schedules.xlsx lists them all).")
        note = credit_invoice(invoice, state.invoices, reason, line, quantity, amount)
        if isinstance(note, Refusal):
            return report, note
        report.issued = ledger.issue([note], [], options.as_of,
                                     lambda seq, document: make_document(seq, document, checked.inputs,
                                                                         options.as_of, RunType.MANUAL))
        failpoint("after-billing")
        state = State.read(ledger)
        report.credited = credited_now(state, report.issued)
        plan_automatic(checked, state, options, Report())  # the catch-up guard's holds, shown as `run` shows them
        write_outputs(options, checked, state, ledger, report, on_rendered, "credit")
    return report, None


def credited_now(state: State, issued: list[Invoice]) -> list[str]:
    """The invoices the issued credit notes credited in full."""
    credited = {i.credits for i in issued if i.credits}
    return [i.number for i in state.invoices if i.number in credited and i.status is InvoiceStatus.CREDITED]


def left_the_building(ledger: Ledger) -> set[str]:
    """The invoices sent, synced or charged: the customer or the books have them."""
    return {number for number, status in task_status(ledger).items() if DONE in status.values()}


def schedules(options: Options) -> tuple[Report, list[ScheduleRow]]:
    """The schedule rows as the workbook would show them; bills nothing."""
    report = Report()
    checked = load(options, report)
    if checked is None:
        return report, []
    state = read_state(options, checked)
    plan_automatic(checked, state, options, report)  # a run's catch-up guard sets aside, and shows Error, here too
    return report, _schedule_rows(options, checked, state, state.differs(checked))


@dataclass
class PostResult:
    report: Report  # the input's problems
    outcomes: list[Outcome] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # --invoice numbers the ledger does not know

    @property
    def exit_code(self) -> int:
        """2: the input cannot be used; 3: an --invoice is unknown; 1: a task failed or is in doubt; else 0."""
        if self.report.exit_code == 2:
            return 2
        if self.unknown:
            return 3
        return 1 if any(not o.ok and not o.skipped_reason for o in self.outcomes) or any(
            o.status == "in doubt" for o in self.outcomes) else 0


def post(options: Options, tasks: Sequence[str], numbers: Sequence[str] = (), again: bool = False,
         environ: Mapping[str, str] = os.environ, now: datetime | None = None) -> PostResult:
    """`billing-batch post`: run the tasks for every live invoice, or for those named, reading the
    customers, settings and products from the input workbook. Raises Refused without a ledger."""
    if again and not numbers:
        raise Refused("--again repeats tasks that succeeded (an email sent, an invoice exported, a debit "
                      "collected): name the invoices to repeat with --invoice NUMBER.")
    report = Report()
    checked = load(options, report, preflight="send" in tasks)
    if checked is None:
        return PostResult(report)
    if not options.ledger_path.exists():
        raise Refused(f"There is no ledger at {options.ledger_path}: nothing has been billed there, so there "
                      "is nothing to send, sync or charge. Point at the ledger with --ledger PATH or --output.")
    with open_ledger(options, checked) as ledger:
        invoices, unknown = live_invoices(ledger, numbers)
        if unknown:
            return PostResult(report, [], unknown)
        outcomes = run_post_tasks(ledger, invoices, checked.inputs, tasks, options.output,
                                  options.look(checked.inputs.settings),
                                  now or datetime.now().astimezone(), again=again, environ=environ)
    return PostResult(report, outcomes, [])


def check_ledger(path: Path, output: Path, jobs: int = 1) -> ledger_check.Result:
    """`ledger check`: the ledger against itself, then every PDF against the ledger. Reads only."""
    return pdf_check.check_pdfs(ledger_check.check_ledger(path, output), output, jobs)


def refresh_book(options: Options) -> Path | None:
    """Rewrite the schedule workbook from the ledger, after `post` changed what is Billed."""
    report = Report()
    checked = load(options, report)
    if checked is None or not options.ledger_path.exists():
        return None
    with open_ledger(options, checked) as ledger:
        state = State.read(ledger)
        plan_automatic(checked, state, options, Report())  # the catch-up guard's holds, as `run` shows them
        differs = state.differs(checked)
        rows = _schedule_rows(options, checked, state, differs)
        return _write_book(options, ledger, rows, state, checked,
                           _review_rows(checked, state, differs, ledger.unreviewed() or ledger.last_reviewed()))


def write_outputs(options: Options, checked: Checked, state: State, ledger: Ledger, report: Report,
                  on_rendered: Progress | None, command: str) -> None:
    """Derive the PDFs, the schedule book and the run's review page from the ledger: whatever
    is missing or stale (a crash, a deleted file, an invoice since replaced) is made again."""
    with report.stage("render"):
        for leftover in (options.output / "invoices").glob(".*.tmp"):
            leftover.unlink()  # from a run that died while rendering
    # The usage workbooks, from the ledger alone like the PDFs, are written meanwhile.
    usage_files = usage_book.Writing(options.output, [i for i in state.invoices if i.usage_name and not (
        options.output / i.usage_name).exists()], options.jobs)
    try:
        _derive(options, checked, state, ledger, report, on_rendered, command, usage_files)
    finally:
        with report.stage("usage details"):
            usage_files.wait()


def _derive(options: Options, checked: Checked, state: State, ledger: Ledger, report: Report,
            on_rendered: Progress | None, command: str, usage_files: usage_book.Writing) -> None:
    chosen = options.look(checked.inputs.settings)
    unreviewed = ledger.unreviewed()
    to_review = [i for i in state.invoices if i.number in unreviewed]
    charts = review_chart.warm_up(state.invoices, to_review, options.as_of, checked.inputs.settings.locale) \
        if to_review else None
    with report.stage("render"):
        stale = ledger.stale_pdfs()
        todo = [i for i in state.invoices if i.number in stale or not (options.output / i.pdf_name).exists()
                or i.einvoice_name and not (options.output / i.einvoice_name).exists()]
        done: list[Invoice] = []
        count = 0

        def rendered(invoice: Invoice) -> None:
            nonlocal count
            done.append(invoice)
            count += 1
            if len(done) == 200:  # record progress now and then, so a crash costs little
                ledger.mark_rendered(done)
                done.clear()
            failpoint("while-rendering")
            if on_rendered:
                on_rendered(count, len(todo))

        try:
            render_pool.render_invoices(todo, options.output, chosen, options.jobs, rendered,
                                        executor=options.executor, scheduler=options.scheduler)
        except (render.RenderError, jinja2.TemplateError) as exc:
            if isinstance(exc, render.RenderError) and not exc.url:
                raise
            # A template branch the preflight's samples did not reach: the invoices stand, their PDFs wait.
            ledger.mark_rendered(done)
            raise Refused(f"The invoices are in the ledger ({len(report.issued)} issued by this run), but a PDF "
                          "could not be made. "
                          f"{template_trial.template_problem(exc, chosen).message} Correct it and run again: the missing "
                          "PDFs are made then, and nothing is billed twice.") from None
        ledger.mark_rendered(done)
        report.pdfs = [options.output / i.pdf_name for i in report.issued]

    if options.post_tasks:
        usage_files.wait()  # send attaches them
        with report.stage("post tasks"):
            report.post = after_billing(ledger, report.issued, checked.inputs, options.post_tasks, options.output,
                                        chosen)
            report.post_earlier = len({o.number for o in report.post} - {i.number for i in report.issued})
            state.billed = billed(ledger)
    with report.stage("cycles and pricing"):  # the invoices that current data would bill otherwise
        report.differs = state.differs(checked)
    with report.stage("write workbook"):
        rows = _schedule_rows(options, checked, state, report.differs)
        review_rows = _review_rows(checked, state, report.differs, unreviewed)
        # The Review sheet shows the latest invoices to review: a run that issued none keeps the last ones.
        book_review = review_rows if unreviewed else _review_rows(checked, state, report.differs,
                                                                  ledger.last_reviewed())
        report.book = _write_book(options, ledger, rows, state, checked, book_review, "writing-workbook")
    with report.stage("usage checks"):
        report.revised = revised(checked.inputs.usage, state.live.values())
        write_mismatches(options.output, report.mismatches)
        report.licence_checks = licence_checks.licence_checks(checked, state.billed_usage,
                                                              checked.inputs.settings.locale)
        write_licence_flags(options.output, report.licence_checks, licence_checks.KIND_NAMES)
    with report.stage("write review"):
        failpoint("writing-review")
        if charts:
            charts.join()
        last = review_runs.latest(review_runs.past_runs(options.output))
        if last and not (report.issued or unreviewed or report.problems or checked.set_aside or report.differs
                         or report.revised or report.mismatches or report.nothing_to_bill
                         or last.summary.get("licence_flags", {})
                         != licence_checks.flag_counts(report.licence_checks)):
            report.review = last.page  # an unchanged rerun: nothing new to review, and nothing to rewrite
            return
        run_id = review_runs.new_run_id(report.started, command, options.output)
        facts = review_runs.RunFacts(
            run_id=run_id, command=command,
            as_of=options.as_of, input_files=tuple(workbook.input_files(options.input)), started=report.started,
            duration_s=time.perf_counter() - report.clock, nothing_to_bill=report.nothing_to_bill)
        report.review = page.write_review(options.output, facts, review_rows, to_review, state.invoices,
                                            checked.set_aside, report.problems, inputs=checked.inputs,
                                            differs=report.differs, templates=chosen,
                                            usage_checks=(report.revised, report.mismatches),
                                            licence_checks=report.licence_checks)
        ledger.mark_reviewed(unreviewed, run_id)


def _review_rows(checked: Checked, state: State, differs: dict[str, str], numbers: set[str]) -> list[review_flags.ReviewRow]:
    shown = [i for i in state.invoices if i.number in numbers]
    return review_flags.review_rows(shown, state.invoices, checked.inputs, differs,
                                    checked.inputs.settings.review_change_threshold)


def _failing_midway(rows: list, name: str | None) -> Iterator:
    """The rows, with the failpoint name hit after the first one is written."""
    for i, row in enumerate(rows):
        if i == 1 and name:
            failpoint(name)
        yield row


def _write_book(options: Options, ledger: Ledger, rows: list[ScheduleRow], state: State, checked: Checked,
                review_rows: list[review_flags.ReviewRow], failpoint_name: str | None = None) -> Path:
    """Write the schedule book, unless it holds exactly this already (the unchanged rerun of a
    large batch would spend most of its time rewriting it). Amounts in Settings' Locale."""
    path = options.output / schedule_book.BOOK_NAME
    locale = checked.inputs.settings.locale
    register = seat_register.register(checked.licences.charges, checked.inputs)
    digest = schedule_book.digest(rows, state.invoices, review_rows, state.billed, locale, register=register)
    if path.exists() and ledger.output_stamp(path.name) == (digest, *_size_and_mtime(path)):
        return path
    schedule_book.write(options.output, _failing_midway(rows, failpoint_name), state.invoices, review_rows,
                        state.billed, locale, register=register)
    ledger.record_output(path.name, (digest, *_size_and_mtime(path)))
    return path


def _size_and_mtime(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def _schedule_rows(options: Options, checked: Checked, state: State, differs: dict[str, str]) -> list[ScheduleRow]:
    return schedule_rows(checked.inputs, checked.set_aside, checked.broken_contracts, state.invoices, state.empty,
                         options.as_of, differs, state.billed)
