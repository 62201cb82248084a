"""Generate: the dialog of the product this tool is modelled on, as `billing-batch generate` does it, over any
number of contracts and with no timeout.

Step 1 chooses contracts from the inbox's workbook (GET /generate: a list with checkboxes, a filter and "select
all", the list redrawn by htmx through POST /generate/contracts), step 2 the cycle: the one containing a date
(`generate --cycle`) or each contract's oldest cycle not billed. POST /generate/preview shows
`pipeline.propose`'s proposal for each contract: the cycle, the draft's lines and total (collapsible), a future
cycle's warning with "Allow future cycles", an invoice already made for the cycle with "Replace the existing
invoice", and why a contract cannot be billed. POST /generate/proceed runs `pipeline.generate` as one job (one
request, however many contracts), whose approve() bills what the person allowed, as the CLI's judge() does, and
refuses the whole when the proposals are no longer those previewed (their fingerprint). The job's page lists
what became of each contract, with links to each invoice made and its PDF.

Over 400 lines: the dialog's steps (choose, preview, proceed, the job's end) share the contracts' list and the
proposals' fingerprint, which only this dialog uses.

Over 400 lines: the dialog's steps, its preview and the job that bills what was previewed share the form's Choice,
the fingerprint and the CLI's judge(), and read best in the order a person goes through them."""
from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing_batch import pipeline
from billing_batch.cli.terminal import LINE_GROUPS, line_group, money
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
from billing_batch.console.security import MAX_FIELDS
from billing_batch.console.views import render
from billing_batch.console.words import Text, ngettext
from billing_batch.engine.plan import Proposal
from billing_batch.errors import Problem
from billing_batch.i18n import N_
from billing_batch.model import Draft, Line
from billing_batch.workspace import Options, Refused, Report, load

KIND = "generate"  # the job's kind (jobs.Job.kind)
CHANGED = N_("What it would bill changed since you looked at the preview (the inbox or the ledger changed): "
             "preview again. Nothing was billed.")
UNUSABLE = N_("Nothing was billed and no file was written. Correct the workbook and run again.")
STOPPED = N_("The input has problems that stop it: Nothing was billed and no file was written. Correct the workbook "
             "and run again.")  # "...stop it: " + UNUSABLE
NOTHING = N_("Nothing to bill for this cycle")
# Report.stage's names in `generate` -> the stage the page shows; it only moves forward.
STAGES = {"load": READING, "load Partner Center files": READING, "validate": READING, "preflight": READING,
          "render": RENDERING, "post tasks": POSTING, "cycles and pricing": WRITING, "write workbook": WRITING,
          "usage details": WRITING, "usage checks": REVIEW, "write review": REVIEW}
# what the form got wrong in a date, by field
NOT_A_DATE = {"cycle date": N_("The cycle date %(text)s is not a date in the form YYYY-MM-DD."),
              "as-of date": N_("The as-of date %(text)s is not a date in the form YYYY-MM-DD.")}
# what became of a contract billed: (a credit note?, replacing an invoice?, that had been sent?) -> its words
MADE = {(False, False, False): N_("Invoiced %(number)s"),
        (True, False, False): N_("Credit note %(number)s"),
        (False, True, False): N_("Invoiced %(number)s, replacing %(replaced)s"),
        (True, True, False): N_("Credit note %(number)s, replacing %(replaced)s"),
        (False, True, True): N_("Invoiced %(number)s, replacing %(replaced)s (sent already: credited by %(note)s)"),
        (True, True, True): N_("Credit note %(number)s, replacing %(replaced)s (sent already: credited by %(note)s)"),
        (False, False, True): N_("Invoiced %(number)s (sent already: credited by %(note)s)"),
        (True, False, True): N_("Credit note %(number)s (sent already: credited by %(note)s)")}


# ---------------------------------------------------------------- step 1: the contracts


@dataclass(frozen=True)
class Row:
    """A contract of the list."""

    contract_id: str
    customer: str
    frequency: str
    currency: str
    start: date
    end: date | None
    active: bool
    why_not: str = ""  # set aside by a problem in its rows: why

    def matches(self, q: str) -> bool:
        q = q.strip().casefold()
        return not q or any(q in text.casefold() for text in (self.contract_id, self.customer, self.currency,
                                                              self.frequency))


@dataclass
class Contracts:
    """The inbox's contracts, or why they cannot be listed."""

    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # the input's problems when it cannot be used
    trouble: str = ""  # a refusal or a fault, in the CLI's words


def contracts(options: Options) -> Contracts:
    """The contracts of the inbox's workbook, read and checked by the pipeline's load."""
    report = Report()
    try:
        checked = load(options, report)
    except Exception as exc:  # noqa: BLE001 - a refusal, a fault of the machine or a bug: told in words
        return Contracts(trouble=outcome_of(exc, options.output)[1])
    if checked is None:
        return Contracts(problems=report.problems)
    customers = checked.inputs.customers
    return Contracts([Row(c.contract_id, customers[c.customer_id].name if c.customer_id in customers else c.customer_id,
                          c.frequency.label, c.currency, c.start, c.end, c.active,
                          checked.set_aside[cid][0].one_line() if checked.set_aside.get(cid) else "")
                      for cid, c in sorted(checked.inputs.contracts.items())])


@dataclass
class Choice:
    """What the form says: the contracts chosen, the filter, the cycle and the as-of date."""

    chosen: list[str] = field(default_factory=list)
    q: str = ""
    select_all: bool = False  # every contract the filter shows
    cycle_mode: str = "oldest"  # or "date": the cycle containing cycle_day
    cycle_day: date | None = None
    as_of: date = field(default_factory=date.today)
    wrong: list[str] = field(default_factory=list)  # what the form got wrong, in words

    def ids(self, rows: list[Row]) -> list[str]:
        """The contracts to bill, in the list's order, then any chosen that the list does not hold."""
        chosen = set(self.chosen)
        if self.select_all:
            chosen |= {r.contract_id for r in rows if r.matches(self.q)}
        known = [r.contract_id for r in rows if r.contract_id in chosen]
        listed = set(known)
        return known + [c for c in dict.fromkeys(self.chosen) if c not in listed]


def read_date(text: str, what: str, wrong: list[str]) -> date | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        wrong.append(Text(NOT_A_DATE[what], text=repr(text)))
        return None


def read_choice(form) -> Choice:
    wrong: list[str] = []
    chosen = [c.strip() for c in form.getlist("contract") if isinstance(c, str) and c.strip()]
    chosen += [c.strip() for c in str(form.get("contracts") or "").splitlines() if c.strip()]  # the preview's
    mode = "date" if form.get("cycle_mode") == "date" else "oldest"
    cycle_day = read_date(str(form.get("cycle_day") or ""), "cycle date", wrong)
    if mode == "date" and cycle_day is None and not wrong:
        wrong.append(N_("Give a date inside the cycle to bill, or choose the oldest cycle not billed."))
    as_of = read_date(str(form.get("as_of") or ""), "as-of date", wrong) or date.today()
    return Choice(list(dict.fromkeys(chosen)), str(form.get("q") or ""), form.get("select_all") is not None,
                  mode, cycle_day if mode == "date" else None, as_of, wrong)


def dialog(request: Request, choice: Choice, status: int = 200, **context) -> Response:
    """The whole dialog (steps 1 and 2), with the generation that runs or ran last."""
    console = request.app.state.console
    listed = contracts(console.options(choice.as_of))
    return render(request, "generate.html", status, **listing(listed, choice), job=generate_job(console),
                  **context)


def listing(listed: Contracts, choice: Choice) -> dict:
    """What the contract list shows: the rows the filter shows, which are chosen, and the chosen ones it
    hides (carried as hidden fields, so that filtering never loses a choice)."""
    shown = [r for r in listed.rows if r.matches(choice.q)]
    ids = choice.ids(listed.rows)
    on_show = {r.contract_id for r in shown}
    return {"listed": listed, "choice": choice, "shown": shown, "chosen": set(ids),
            "hidden": [c for c in ids if c not in on_show],
            "all_shown": bool(shown) and on_show <= set(ids)}


def generate_job(console) -> Job | None:
    running = console.jobs.current()
    return running if running and running.kind == KIND else console.jobs.last(KIND)


async def start(request: Request) -> Response:
    """GET /generate[?q=...]: step 1 and 2, and the generation that runs or ran last."""
    query = request.query_params
    wrong: list[str] = []
    choice = Choice(chosen=[c for c in query.getlist("contract") if c], q=query.get("q", ""),
                    as_of=read_date(query.get("as_of", ""), "as-of date", wrong) or date.today(), wrong=wrong)
    return await run_in_threadpool(dialog, request, choice)


async def contract_list(request: Request) -> Response:
    """POST /generate/contracts (htmx): the list redrawn for the filter, keeping what is chosen. Reads only.
    toggle=all chooses every contract the filter shows, toggle=none lets them go."""
    async with request.form(max_fields=MAX_FIELDS) as form:
        choice = read_choice(form)
        toggle = form.get("toggle")
    console = request.app.state.console
    listed = await run_in_threadpool(contracts, console.options(choice.as_of))
    shown = {r.contract_id for r in listed.rows if r.matches(choice.q)}
    if toggle == "all":
        choice.select_all = True
    elif toggle == "none":
        choice.chosen = [c for c in choice.chosen if c not in shown]
    return render(request, "generate_contracts.html", **listing(listed, choice))


# ---------------------------------------------------------------- the preview


def fingerprint(proposals: list[Proposal]) -> str:
    """What a preview shows, in its order: each contract's cycle, total, existing invoice and problem, hashed."""
    digest = hashlib.sha256()
    for p in proposals:
        digest.update("\t".join((p.contract_id, p.cycle.start.isoformat() if p.cycle else "",
                                 p.draft.currency if p.draft else "", str(p.draft.total) if p.draft else "",
                                 p.existing.number if p.existing else "", p.problem)).encode() + b"\n")
    return digest.hexdigest()


@dataclass
class Preview:
    """propose()'s answer for the chosen contracts, as the preview page shows it."""

    choice: Choice
    ids: list[str]
    report: Report | None = None
    proposals: list[Proposal] = field(default_factory=list)
    trouble: str = ""  # a refusal or fault, in the CLI's words: nothing could be previewed

    @property
    def unusable(self) -> bool:
        return bool(self.trouble) or self.report is None or self.report.exit_code == 2

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.proposals)

    def billable(self, p: Proposal) -> bool:
        return not p.problem and p.draft is not None and not p.draft.is_empty

    @property
    def future(self) -> list[Proposal]:
        return [p for p in self.proposals if self.billable(p) and p.is_future(self.choice.as_of)]

    @property
    def existing(self) -> list[Proposal]:
        return [p for p in self.proposals if self.billable(p) and p.existing]

    @property
    def totals(self) -> list[tuple[str, int, Decimal]]:
        """Per currency: how many documents it would issue, and their total (a credit note's below zero)."""
        sums: dict[str, list] = defaultdict(lambda: [0, Decimal(0)])
        for p in self.proposals:
            if self.billable(p):
                sums[p.draft.currency][0] += 1
                sums[p.draft.currency][1] += p.draft.total
        return [(currency, n, total) for currency, (n, total) in sorted(sums.items())]


def preview(options: Options, choice: Choice, ids: list[str]) -> Preview:
    result = Preview(choice, ids)
    try:
        result.report, result.proposals = pipeline.propose(options, ids, choice.cycle_day)
    except Exception as exc:  # noqa: BLE001 - a refusal (outputs without a ledger), a fault, a bug: in words
        result.trouble = outcome_of(exc, options.output)[1]
    return result


def preview_page(request: Request, shown: Preview, status: int = 200, **context) -> Response:
    console = request.app.state.console
    locale = shown.report.locale if shown.report and not shown.unusable else console.locale()

    def exact(amount: Decimal, currency: str) -> str:
        """A unit price with every digit typed (0.0125 stays 0.0125), as the CLI's preview shows it."""
        return money(amount, currency, locale, exact=True)

    return render(request, "generate_preview.html", status, preview=shown, choice=shown.choice, locale=locale,
                  lines_in_order=lines_in_order, group=line_group, exact=exact, busy_job=console.jobs.current(),
                  **context)


async def show_preview(request: Request) -> Response:
    """POST /generate/preview: what generate would bill for each chosen contract."""
    async with request.form(max_fields=MAX_FIELDS) as form:
        choice = read_choice(form)
    console = request.app.state.console
    if choice.wrong:
        return await run_in_threadpool(dialog, request, choice, 400)
    listed = await run_in_threadpool(contracts, console.options(choice.as_of))
    ids = choice.ids(listed.rows)
    if not ids:
        choice.wrong.append(N_("Choose the contracts to bill: tick them in the list (or tick the box atop it for "
                               "every contract shown)."))
        return await run_in_threadpool(dialog, request, choice, 400)
    shown = await run_in_threadpool(preview, console.options(choice.as_of), choice, ids)
    return await run_in_threadpool(preview_page, request, shown)


def lines_in_order(draft: Draft) -> list[Line]:
    """The draft's lines grouped as the CLI's preview shows them: full cycle, prorated, then each other kind."""
    return sorted(draft.lines, key=lambda line: LINE_GROUPS.index(line_group(line)))


# ---------------------------------------------------------------- proceed: the job


@dataclass(frozen=True)
class Verdict:
    """What became of one contract: the CLI's result words, and the document made if any."""

    contract_id: str
    result: str
    number: str = ""  # the invoice (or credit note) made
    pdf: str = ""  # its /output/ address
    credit_note: str = ""  # the credit note that corrected the invoice replaced, when it had been sent


@dataclass
class Generated:
    """A generation's job result: its report and each contract's outcome."""

    report: Report
    outcomes: list[Verdict] = field(default_factory=list)
    refused: bool = False  # a contract was not billed for want of a tick (future, replace) or for a problem

    @property
    def exit_code(self) -> int:
        return max(self.report.exit_code, 3 if self.refused else 0)


def judge(p: Proposal, replace: set[str], replace_all: bool, allow_future: bool, as_of: date) -> str | None:
    """None to bill the proposal, else why not: the CLI's judge() with the page's ticks for its options."""
    if p.problem:
        return p.problem
    if p.draft is None or p.draft.is_empty:
        return Text(NOTHING)
    if p.is_future(as_of) and not allow_future:
        return Text(N_("Refused: future cycle %(start)s to %(end)s (scheduled %(scheduled)s); tick Allow future "
                       "cycles"), start=p.cycle.start, end=p.cycle.end, scheduled=p.cycle.scheduled)
    if p.existing is not None and not (replace_all or p.contract_id in replace):
        return Text(N_("Refused: already billed by %(number)s; tick Replace the existing invoice to reissue it"),
                    number=p.existing.number)
    return None


def bill(job: Job, options: Options, ids: list[str], cycle_day: date | None, expected: str,
             replace: set[str], replace_all: bool, allow_future: bool) -> Generated:
    """The job: generate, approving what the page allowed once the proposals prove to be those previewed."""
    report = Staged(job, STAGES)
    result = Generated(report)
    verdicts: dict[str, str] = {}
    replacing: dict[str, str] = {}

    def approve(proposals: list[Proposal]) -> list[Proposal]:
        if fingerprint(proposals) != expected:
            raise Refused(Text(CHANGED))  # the ledger is held: nothing is billed, nothing written
        advance(job, BILLING)
        chosen = []
        for p in proposals:
            verdict = judge(p, replace, replace_all, allow_future, options.as_of)
            if verdict is None:
                chosen.append(p)
                if p.existing:
                    replacing[p.contract_id] = p.existing.number
            else:
                verdicts[p.contract_id] = verdict
                result.refused = result.refused or not verdict.startswith("Nothing to bill")
        return chosen

    def on_rendered(done: int, total: int) -> None:
        advance(job, RENDERING)
        job.progress(done, total)

    pipeline.generate(options, ids, cycle_day, approve, on_rendered, report=report)
    advance(job, REVIEW)
    if report.exit_code == 2 and not report.issued:
        job.outcome, job.message = "refused", Text(STOPPED)
        return result
    notes: dict[str, str] = {}
    made: dict[str, tuple[str, str]] = {}
    for invoice in report.issued:
        contract_id = invoice.draft.contract_id
        if invoice.is_credit_note and invoice.credits:
            notes[contract_id] = invoice.number
            continue
        # a note: it had been sent, synced or charged, so it was corrected by a credit note, not voided
        words = MADE[(invoice.is_credit_note, contract_id in replacing, contract_id in notes)]
        verdicts[contract_id] = Text(words, number=invoice.number, replaced=replacing.get(contract_id, ""),
                                     note=notes.get(contract_id, ""))
        made[contract_id] = (invoice.number, f"/output/{invoice.pdf_name}")
    for contract_id in dict.fromkeys(ids):
        number, pdf = made.get(contract_id, ("", ""))
        result.outcomes.append(Verdict(contract_id, verdicts.get(contract_id, ""), number, pdf,
                                       notes.get(contract_id, "")))
    for invoice in report.issued:
        job.links.append((invoice.number, f"/invoices/{invoice.number}"))
        job.links.append((Text(N_("%(number)s PDF"), number=invoice.number), f"/output/{invoice.pdf_name}"))
    if report.review:
        try:
            job.links.append((N_("Review"), "/output/" + report.review.resolve().relative_to(
                options.output.resolve()).as_posix()))
        except ValueError:
            pass
    documents = len(report.issued)
    refused = sum(1 for o in result.outcomes if not o.number and not o.result.startswith("Nothing to bill"))
    if documents:
        made = Text.join([ngettext("Made %(n)s document", "Made %(n)s documents", documents, n=documents),
                          ngettext("%(n)s contract not billed: the table says why",
                                   "%(n)s contracts not billed: the table says why", refused, n=refused)
                          if refused else ""], "; ")
        job.message = Text.join([made, "."])
    else:
        job.message = Text.join([N_("Nothing was billed."),
                                 N_("The table says why for each contract.") if result.outcomes else ""], " ")
    job.outcome = "problems" if result.exit_code else "ok"
    return result


async def proceed(request: Request) -> Response:
    """POST /generate/proceed: bill the previewed proposals in one job; the page then follows the job."""
    async with request.form(max_fields=MAX_FIELDS) as form:
        choice = read_choice(form)
        expected = str(form.get("fingerprint") or "")
        replace = {c for c in form.getlist("replace") if isinstance(c, str)}
        replace_all = form.get("replace_all") is not None
        allow_future = form.get("allow_future") is not None
    console = request.app.state.console
    ids = choice.chosen
    if choice.wrong or not ids or not expected:
        choice.wrong.append(N_("The form lost what was previewed: choose the contracts and preview again."))
        return await run_in_threadpool(dialog, request, choice, 400)
    options = console.options(choice.as_of)
    try:
        console.jobs.start(KIND, lambda job: bill(job, options, ids, choice.cycle_day, expected, replace,
                                                      replace_all, allow_future))
    except Busy as exc:
        shown = await run_in_threadpool(preview, options, choice, ids)
        return await run_in_threadpool(preview_page, request, shown, 409, refused=exc.text)
    return RedirectResponse("/generate#job", status_code=303)  # a reload shows the job, never bills again


async def job_fragment(request: Request) -> Response:
    """GET /generate/jobs/{id}: the generation's progress, then each contract's outcome (polled by htmx)."""
    job = request.app.state.console.jobs.get(request.path_params["id"])
    if job is None or job.kind != KIND:
        return render(request, "generate_job.html", 404, job=None)
    return render(request, "generate_job.html", job=job)


routes = [Route("/generate", start, methods=["GET"]),
          Route("/generate/contracts", contract_list, methods=["POST"]),
          Route("/generate/preview", show_preview, methods=["POST"]),
          Route("/generate/proceed", proceed, methods=["POST"]),
          Route("/generate/jobs/{id}", job_fragment, methods=["GET"])]
