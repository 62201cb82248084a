"""This month: what `run` would bill as of a date (`pipeline.preview_run`): totals per currency, each invoice with
its lines, the contracts set aside and why, and the catch-up guard with a button that allows the catch-up; then
Approve, which runs the month in the background (one job, jobs.py) while the page shows its stages and the PDFs
rendered, and ends with the documents made and a link to the review.

Approve carries a fingerprint of the preview the person looked at (the ordered contract, cycle start, currency and
total of every invoice it shows); the server previews again and refuses when the fingerprint differs, and the run
checks it once more while it holds the ledger (pipeline.run's approve), so that nothing is billed that was not seen."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from babel.numbers import format_currency
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing_batch import pipeline
from billing_batch.cli.terminal import LINE_GROUPS, line_group
from billing_batch.console.jobs import (
    BILLING,
    POSTING,
    READING,
    RENDERING,
    REVIEW,
    WRITING,
    Busy,
    Job,
    Staged,
    advance,
    outcome_of,
)
from billing_batch.console.pages import home
from billing_batch.console.views import render
from billing_batch.console.words import Text, ngettext
from billing_batch.errors import Problem
from billing_batch.i18n import N_, parse
from billing_batch.model import Draft, Invoice
from billing_batch.workspace import Options, Report

CATCH_UP = "BB121"  # the catch-up guard's problem (errors.py)
KIND = "run"  # the month's job, as jobs.Job.kind names it
CHANGED = N_("What it would bill changed since you looked: review it again. Nothing was billed.")
STOPPED = N_("The input has problems that stop the run: nothing was billed. Correct the workbook (the Home page lists "
             "them) and preview again.")
# Report.stage's names in `run` -> the stage the page shows; the shown stage only moves forward (`run` prices
# again after rendering, to flag what the data would bill otherwise).
STAGES = {"load": READING, "load Partner Center files": READING, "validate": READING, "preflight": READING,
          "read ledger": BILLING, "cycles and pricing": BILLING, "write ledger": BILLING, "render": RENDERING,
          "post tasks": POSTING, "write workbook": WRITING, "usage checks": REVIEW, "write review": REVIEW}


@dataclass
class Preview:
    """What the page shows of preview_run, and the fingerprint Approve sends back."""

    as_of: date
    allow_catch_up: bool
    report: Report | None = None
    drafts: list[Draft] = field(default_factory=list)  # the documents it would issue (none empty)
    trouble: str | None = None  # a refusal or fault, in the CLI's words: nothing could be previewed

    @property
    def unusable(self) -> bool:
        return self.trouble is not None or self.report is None or self.report.exit_code == 2

    @property
    def guard(self) -> list[Problem]:
        """The contracts the catch-up guard sets aside (BB121)."""
        return [p for p in self.report.problems if p.code == CATCH_UP] if self.report else []

    @property
    def set_aside(self) -> list[tuple[str, list[Problem]]]:
        """Contracts set aside for a problem in their rows (those the guard holds are listed with it)."""
        if not self.report:
            return []
        return sorted((cid, problems) for cid, problems in self.report.set_aside.items()
                      if any(p.code != CATCH_UP for p in problems))

    @property
    def other_problems(self) -> list[Problem]:
        """The input's problems that set aside no contract of their own (a tenant on no contract, ...)."""
        if not self.report:
            return []
        return [p for p in self.report.problems if p.code != CATCH_UP and not p.contract_id and not p.customer_id]

    @property
    def totals(self) -> list[tuple[str, int, Decimal, int, Decimal]]:
        """Per currency: invoices and their total, credit notes (a cycle below zero) and theirs."""
        return currency_totals(self.drafts)

    @property
    def credit_notes(self) -> bool:
        """Whether a cycle totals below zero: the totals then have columns for credit notes."""
        return any(d.total < 0 for d in self.drafts)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.drafts)


def fingerprint(drafts: list[Draft]) -> str:
    """The documents a preview shows, in its order: contract, cycle start, currency and total, hashed."""
    digest = hashlib.sha256()
    for d in drafts:
        digest.update(f"{d.contract_id}\t{d.cycle_start.isoformat()}\t{d.currency}\t{d.total}\n".encode())
    return digest.hexdigest()


def currency_totals(drafts: list[Draft]) -> list[tuple[str, int, Decimal, int, Decimal]]:
    sums: dict[str, list] = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0)])
    for d in drafts:
        row = sums[d.currency]
        if d.total < 0:  # issued as a credit note (engine/credit_notes.below_zero)
            row[2], row[3] = row[2] + 1, row[3] - d.total
        else:
            row[0], row[1] = row[0] + 1, row[1] + d.total
    return [(currency, *row) for currency, row in sorted(sums.items())]


def preview(options: Options) -> Preview:
    result = Preview(options.as_of, options.allow_catch_up)
    try:
        result.report, drafts = pipeline.preview_run(options)
    except home.REFUSALS as exc:
        result.trouble = outcome_of(exc, options.output)[1]
        return result
    result.drafts = [d for d in drafts if not d.is_empty]
    return result


def exact(amount: Decimal, currency: str, locale: str) -> str:
    """A unit price with every digit typed (0.0125 stays 0.0125), in the invoice's locale, as the terminal shows it."""
    try:
        where = parse(locale)
    except ValueError:
        where = parse("en_US")
    return format_currency(amount, currency, locale=where, decimal_quantization=False)


def lines_in_order(draft: Draft) -> list:
    """The draft's lines grouped as `run --preview` shows them: full cycle, prorated, then each other kind."""
    return sorted(draft.lines, key=lambda line: LINE_GROUPS.index(line_group(line)))


def read_as_of(value: str | None) -> tuple[date, str | None]:
    """The as-of date given (YYYY-MM-DD), else today; with a message when what was given is not a date."""
    if not value:
        return date.today(), None
    try:
        return date.fromisoformat(value.strip()), None
    except ValueError:
        return date.today(), Text(N_("%(value)s is not a date: type it as 2026-10-31. The preview is as of today."),
                                  value=repr(value))


def month_job(console) -> Job | None:
    """The run that runs now, else the last one: the page shows it, whichever page started it."""
    running = console.jobs.current()
    return running if running and running.kind == KIND else console.jobs.last(KIND)


def page(request: Request, as_of: date, allow_catch_up: bool, status: int = 200, shown: Preview | None = None,
         **context) -> Response:
    console = request.app.state.console
    job = month_job(console)
    running = console.jobs.current()
    if shown is None and running is None:
        shown = preview(console.options(as_of, allow_catch_up=allow_catch_up))
    if shown is not None and shown.report is not None:
        context.setdefault("locale", shown.report.locale)  # the Locale the preview read: amounts as on the invoice
    return render(request, "month.html", status, as_of=as_of, allow_catch_up=allow_catch_up, preview=shown,
                  job=job, busy_job=running, exact=exact, lines_in_order=lines_in_order, line_group=line_group,
                  documents=documents(job), anchor=home.anchor, catalogue=home.CATALOGUE, **context)


def month(request: Request) -> Response:
    """GET /month[?as_of=YYYY-MM-DD&allow_catch_up=1]: the preview (none while a job runs) and the month's job."""
    as_of, wrong = read_as_of(request.query_params.get("as_of"))
    return page(request, as_of, request.query_params.get("allow_catch_up") == "1", wrong_date=wrong)


async def approve(request: Request) -> Response:
    """POST /month/approve (as_of, allow_catch_up, fingerprint): preview again, compare, start the run."""
    console = request.app.state.console
    async with request.form() as form:
        given = {name: str(form.get(name) or "") for name in ("as_of", "allow_catch_up", "fingerprint")}
    as_of, wrong = read_as_of(given["as_of"])
    allow = given["allow_catch_up"] == "1"
    if wrong:
        return await run_in_threadpool(page, request, as_of, allow, 400, wrong_date=wrong)
    if (running := console.jobs.current()) is not None:
        return await run_in_threadpool(page, request, as_of, allow, 409, refused=Busy(running).text)
    options = console.options(as_of, allow_catch_up=allow)
    now = await run_in_threadpool(preview, options)
    if now.unusable:
        refused = now.trouble or STOPPED
        return await run_in_threadpool(page, request, as_of, allow, 409, shown=now, refused=refused)
    if now.fingerprint != given["fingerprint"]:
        return await run_in_threadpool(page, request, as_of, allow, 409, shown=now, refused=CHANGED)
    try:
        console.jobs.start(KIND, lambda job: bill(job, options, given["fingerprint"]))
    except Busy as exc:
        return await run_in_threadpool(page, request, as_of, allow, 409, refused=exc.text)
    told = {"as_of": as_of.isoformat()} | ({"allow_catch_up": "1"} if allow else {})
    return RedirectResponse(f"/month?{urlencode(told)}", status_code=303)  # a reload shows the job, never bills again


def bill(job: Job, options: Options, shown: str) -> Report:
    """The job: `run` of what the page showed (its fingerprint, checked again while the ledger is held), its
    stages and PDFs shown as it goes; its outcome in the terminal's words."""
    def on_rendered(done: int, total: int) -> None:
        advance(job, RENDERING)
        job.progress(done, total)
        if done == total:
            advance(job, WRITING)

    report = pipeline.run(options, on_rendered, report=Staged(job, STAGES), approve=lambda drafts: fingerprint(drafts) == shown)
    advance(job, REVIEW)
    if report.exit_code == 2:
        job.outcome = "problems"
        job.message = Text(N_("The input has problems that stop the run: nothing was billed and no file was written. "
                              "Correct the workbook (the Home page lists them) and run again."))
        return report
    job.outcome = "problems" if report.exit_code else "ok"
    what = (Text(N_("Made %(documents)s as of %(day)s."), documents=made(report.issued), day=options.as_of)
            if report.issued else Text(N_("No new invoice: every due cycle is billed already.")))
    if report.set_aside:
        n = len(report.set_aside)
        what = Text.join([what, ngettext("%(n)s contract set aside (not billed): the review page lists it.",
                                         "%(n)s contracts set aside (not billed): the review page lists them.", n,
                                         n=n)], " ")
    job.message = what
    if report.review:
        job.links.append((N_("Review the run"), output_link(options, report.review)))
    if report.issued:
        job.links.append((N_("The documents made"), f"/month?as_of={options.as_of.isoformat()}#made"))
    return report


def made(documents: list[Invoice]) -> Text:
    """"2 invoices and 1 credit note": what a run made (the CLI's terminal.made, in words the page says)."""
    notes = sum(i.is_credit_note for i in documents)
    invoices = len(documents) - notes
    kinds = [ngettext("%(n)s invoice", "%(n)s invoices", invoices, n=invoices) if invoices else "",
             ngettext("%(n)s credit note", "%(n)s credit notes", notes, n=notes) if notes else ""]
    if all(kinds):
        return Text(N_("%(invoices)s and %(credit_notes)s"), invoices=kinds[0], credit_notes=kinds[1])
    return next((kind for kind in kinds if kind), Text(""))


def output_link(options: Options, path: Path) -> str:
    """The /output/ address of a file of the output folder."""
    return "/output/" + path.resolve().relative_to(options.output.resolve()).as_posix()


def documents(job: Job | None) -> list[Invoice]:
    """The documents the finished job issued."""
    report = job.result if job and job.finished else None
    return list(report.issued) if isinstance(report, Report) else []


routes = [Route("/month", month, methods=["GET"]), Route("/month/approve", approve, methods=["POST"])]
