"""Invoice: one document of the ledger (GET /invoices/{number}): number, customer, dates, status, totals and lines,
its PDF and other files, the post tasks done (post/records), its credit notes or the invoice it credits.

Credit (POST /invoices/{number}/credit: the whole of what is left, a line's quantity or an amount off a line, the
reason required) runs `pipeline.credit` with the limits and refusals of `billing-batch credit`; Send, sync or
charge again (POST /invoices/{number}/post) runs `pipeline.post(options, [task], [number], again=True)` and then
refreshes the schedule workbook, as `billing-batch post` does. Both run as the console's one job; refusals are
shown in the CLI's words. The page reads the ledger read-only, and never holds its lock."""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from decimal import Decimal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing_batch import pipeline
from billing_batch.cli.parser import decimal_number
from billing_batch.cli.terminal import money
from billing_batch.console.jobs import Busy, Job, outcome_of
from billing_batch.console.views import render
from billing_batch.console.words import Text
from billing_batch.engine.credit_notes import Left, left_to_credit
from billing_batch.i18n import N_
from billing_batch.model import POST_TASKS, Invoice, InvoiceStatus
from billing_batch.post.records import STARTED, Record, Records
from billing_batch.workspace import Options, open_ledger

KINDS = ("credit", "post")  # the jobs this page starts (jobs.Job.kind)
TASKS = {"send": N_("send"), "sync": N_("sync"), "charge": N_("charge")}  # a task's name in the table
VERBS = {"send": N_("Send"), "sync": N_("Sync"), "charge": N_("Charge")}  # its button
AGAIN = {"send": N_("Send again"), "sync": N_("Sync again"), "charge": N_("Charge again")}  # its button, done before
DOING = {"send": N_("sending"), "sync": N_("syncing"), "charge": N_("charging")}  # the job's stage
# a task's record, or a task's outcome, in a word (post/records: a record's outcome, started shown as "in doubt";
# Outcome.status)
STATES = {"not done": N_("not done"), "in doubt": N_("in doubt"), "done": N_("done"),
          "already done": N_("already done"), "outbox": N_("outbox"), "failed": N_("failed"), "skipped": N_("skipped")}
FILES = (N_("PDF"), N_("Usage details"), N_("E-invoice"))
CREDITING, RENDERING, WRITING = N_("crediting"), N_("rendering PDFs"), N_("writing the workbook")
STOPPED = N_("The input has problems that stop it: nothing was billed and no file was written. Correct the workbook "
             "(the Home page lists them) and run again.")


@dataclass
class Document:
    """One document as the page shows it, read from the ledger."""

    invoice: Invoice
    tasks: list[tuple[str, Record | None]] = field(default_factory=list)  # (task, its record) for every task
    notes: list[Invoice] = field(default_factory=list)  # the credit notes crediting it
    credited: Invoice | None = None  # a credit note: the invoice it credits
    left: dict[int, Left] = field(default_factory=dict)  # line -> what is left of it to credit
    total_left: Decimal = Decimal(0)
    files: list[tuple[str, str]] = field(default_factory=list)  # (label, /output/ address) of the files made

    @property
    def creditable(self) -> bool:
        """Whether the credit form is shown (pipeline.credit decides, and says why not)."""
        i = self.invoice
        return not i.is_credit_note and i.status is not InvoiceStatus.REPLACED and self.total_left > 0


def read(options: Options, number: str) -> Document | str:
    """The document, or why it cannot be shown (the CLI's words)."""
    if not options.ledger_path.exists():
        return Text(N_("There is no ledger at %(ledger)s: nothing has been billed there, so there is no invoice "
                       "%(number)s. Bill the month (This month) or generate invoices first."),
                    ledger=str(options.ledger_path), number=number)
    with open_ledger(options, read_only=True) as ledger:
        invoices = ledger.invoices()
        invoice = next((i for i in invoices if i.number == number), None)
        if invoice is None:
            return Text(N_("The ledger holds no invoice %(number)s. Check the number as it is printed on the "
                           "invoice (billing_schedules.xlsx lists them all)."), number=number)
        records = Records(ledger)
        tasks = [(task, records.get(number, task)) for task in POST_TASKS]
    doc = Document(invoice, tasks)
    doc.notes = [i for i in invoices if i.credits == number]
    if invoice.credits:
        doc.credited = next((i for i in invoices if i.number == invoice.credits), None)
    if not invoice.is_credit_note:
        doc.left, doc.total_left = left_to_credit(invoice, invoices)
    for label, name in zip(FILES, (invoice.pdf_name, invoice.usage_name, invoice.einvoice_name)):
        if name and (options.output / name).exists():
            doc.files.append((label, f"/output/{name}"))
    return doc


def task_state(record: Record | None) -> str:
    """One word for a task's record, as post/records.task_status says it."""
    if record is None:
        return "not done"
    return "in doubt" if record.outcome == STARTED else record.outcome


def invoice_job(console, number: str) -> Job | None:
    """The credit or post job of this document that runs now, else the last one that concerned it."""
    running = console.jobs.current()
    if running and running.kind in KINDS:
        return running if getattr(running, "invoice", None) == number else None
    jobs = [j for j in (console.jobs.last(kind) for kind in KINDS) if j and getattr(j, "invoice", None) == number]
    return max(jobs, key=lambda j: j.started, default=None)


def page(request: Request, number: str, status: int = 200, **context) -> Response:
    console = request.app.state.console
    options = console.options()
    try:
        doc = read(options, number)
    except Exception as exc:  # noqa: BLE001 - an unusable ledger, a fault of the machine, a bug: in words
        doc = outcome_of(exc, options.output)[1]
    if isinstance(doc, str):
        return render(request, "invoice.html", 404 if status == 200 else status, number=number, missing=doc,
                      job=invoice_job(console, number), **context)
    return render(request, "invoice.html", status, number=number, doc=doc, inv=doc.invoice, task_state=task_state,
                  tasks=TASKS, states=STATES, verbs=VERBS, again=AGAIN, job=invoice_job(console, number), **context)


async def show(request: Request) -> Response:
    """GET /invoices/{number}: the document, its files, post tasks and credit notes."""
    return await run_in_threadpool(page, request, request.path_params["number"])


# ---------------------------------------------------------------- credit


@dataclass
class CreditAsked:
    """The credit form, read: what to credit, or what is wrong with it (the CLI's words where it has them)."""

    reason: str = ""
    line: int | None = None
    quantity: Decimal | None = None
    amount: Decimal | None = None
    wrong: list[str] = field(default_factory=list)


def read_credit(form) -> CreditAsked:
    asked = CreditAsked(reason=str(form.get("reason") or "").strip())
    what = str(form.get("what") or "whole")
    if not asked.reason:
        asked.wrong.append(N_("Give the reason it is credited: it is printed on the credit note."))
    if what not in ("whole", "quantity", "amount"):
        asked.wrong.append(N_("Choose what to credit: the whole invoice, a quantity of a line or an amount off a "
                              "line."))
        return asked
    typed = [name for name in ("quantity", "amount") if str(form.get(name) or "").strip()]
    if len(typed) == 2:  # the CLI's --quantity and --amount exclude each other
        asked.wrong.append(N_("Name a quantity or an amount to credit, not both."))
        return asked
    if what == "whole":
        if typed:  # a figure typed, the whole chosen: ask rather than credit the whole invoice
            asked.wrong.append(N_("You typed a quantity but chose the whole invoice: choose what to credit again.")
                               if typed == ["quantity"] else
                               N_("You typed an amount but chose the whole invoice: choose what to credit again."))
        return asked
    line, value = str(form.get("line") or "").strip(), str(form.get(what) or "").strip()
    if not line or not value:
        asked.wrong.append(N_("Name a line and what to credit of it together: a line with a quantity or an amount; "
                              "without them the whole invoice is credited."))
        return asked
    try:
        asked.line = int(line)
    except ValueError:
        asked.wrong.append(Text(N_("%(line)s is not a line number: the lines are numbered from 1, as printed on the "
                                   "invoice."), line=repr(line)))
    try:
        number = decimal_number(value)
    except argparse.ArgumentTypeError as exc:
        asked.wrong.append(f"{str(exc)[0].upper()}{str(exc)[1:]}.")
    else:
        setattr(asked, what, number)
    return asked


def credit_job(job: Job, options: Options, number: str, asked: CreditAsked):
    """The job: pipeline.credit, told as `billing-batch credit` tells it."""
    job.stage = CREDITING

    def on_rendered(done: int, total: int) -> None:
        job.stage = RENDERING
        job.progress(done, total)

    report, refusal = pipeline.credit(options, number, asked.reason, asked.line, asked.quantity, asked.amount,
                                      on_rendered)
    if report.exit_code == 2:
        job.outcome = "refused"
        job.message = Text(STOPPED)
        return report
    if refusal:
        job.outcome, job.message = "refused", Text(N_("Not credited: %(refusal)s"), refusal=refusal)
        return report
    note = report.issued[0]
    amount = money(note.draft.total, note.draft.currency, report.locale)
    words = (N_("Issued credit note %(number)s for %(amount)s, crediting %(credits)s: %(credits)s is now Credited in "
                "full.") if report.credited else
             N_("Issued credit note %(number)s for %(amount)s, crediting %(credits)s; the rest of %(credits)s is still "
                "due."))
    job.message = Text(words, number=note.number, amount=amount, credits=note.credits)
    job.outcome = "problems" if report.exit_code else "ok"
    job.links += [(note.number, f"/invoices/{note.number}"),
                  (Text(N_("%(number)s PDF"), number=note.number), f"/output/{note.pdf_name}")]
    return report


async def credit(request: Request) -> Response:
    """POST /invoices/{number}/credit (what: whole | quantity | amount, line, quantity, amount, reason)."""
    number = request.path_params["number"]
    async with request.form() as form:
        asked = read_credit(form)
    if asked.wrong:
        return await run_in_threadpool(page, request, number, 400, credit_wrong=asked.wrong, asked=asked)
    return await start(request, number, "credit", lambda job, options: credit_job(job, options, number, asked))


# ---------------------------------------------------------------- send, sync or charge again


def post_job(job: Job, options: Options, number: str, task: str):
    """The job: pipeline.post for this invoice, again; then the schedule workbook, as `billing-batch post`."""
    job.stage = DOING[task]
    result = pipeline.post(options, [task], [number], again=True)
    if result.report.exit_code == 2:
        job.outcome = "refused"
        job.message = Text(N_("The input has problems that stop it: nothing was done. Correct the workbook (the Home "
                              "page lists them) and try again."))
        return result
    if result.unknown:
        job.outcome = "refused"
        job.message = Text(N_("The ledger has no live invoice %(numbers)s: nothing was done."),
                           numbers=", ".join(result.unknown))
        return result
    job.stage = WRITING
    pipeline.refresh_book(options)
    told = []
    for o in result.outcomes:
        what = o.note if o.ok else (o.error or o.skipped_reason or o.note)
        said = {"number": o.number, "task": Text(TASKS.get(o.task, o.task)),
                "status": Text(STATES.get(o.status, o.status))}
        told.append(Text(N_("%(number)s %(task)s: %(status)s: %(what)s"), **said, what=what) if what
                    else Text(N_("%(number)s %(task)s: %(status)s"), **said))
    if any(o.status == "outbox" for o in result.outcomes):
        told.append(N_("The email is written to the outbox folder for review, not sent: fill in SMTP Host in Settings "
                       "to send it."))
    job.message = Text.join(told, " ") if told else Text(N_("Nothing was done."))
    job.outcome = "problems" if result.exit_code else "ok"
    return result


async def post(request: Request) -> Response:
    """POST /invoices/{number}/post (task: send | sync | charge): the task again for this invoice."""
    number = request.path_params["number"]
    async with request.form() as form:
        task = str(form.get("task") or "")
    if task not in POST_TASKS:
        wrong = Text(N_("unknown task %(task)s: use one of %(tasks)s"), task=repr(task), tasks=", ".join(POST_TASKS))
        return await run_in_threadpool(page, request, number, 400, post_wrong=wrong)
    return await start(request, number, "post", lambda job, options: post_job(job, options, number, task))


async def start(request: Request, number: str, kind: str, work) -> Response:
    """Start the job (one at a time) and show the document, which follows it; Busy: nothing started."""
    console = request.app.state.console
    options = console.options()
    try:
        job = console.jobs.start(kind, lambda job: work(job, options))
    except Busy as exc:
        return await run_in_threadpool(page, request, number, 409, refused=exc.text)
    job.invoice = number  # the page of this document shows it
    return RedirectResponse(f"/invoices/{number}#job", status_code=303)  # a reload never credits twice


async def job_fragment(request: Request) -> Response:
    """GET /invoices/{number}/jobs/{id}: the job's status, polled; once finished, htmx reloads the whole page
    (HX-Refresh) so that it shows the new credit note or task."""
    number, job = request.path_params["number"], request.app.state.console.jobs.get(request.path_params["id"])
    if job is None or job.kind not in KINDS:
        return render(request, "invoice_job.html", 404, job=None, number=number)
    response = render(request, "invoice_job.html", job=job, number=number)
    if job.finished and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


routes = [Route("/invoices/{number}", show, methods=["GET"]),
          Route("/invoices/{number}/credit", credit, methods=["POST"]),
          Route("/invoices/{number}/post", post, methods=["POST"]),
          Route("/invoices/{number}/jobs/{id}", job_fragment, methods=["GET"])]
