"""What the command line and the pipeline call: `billing-batch post`, and `--post-tasks` on run
and generate. Kept here so cli.py and pipeline.py need a few lines each."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from rich.table import Table
from rich.text import Text

from billing_batch.ledger import Ledger
from billing_batch.model import Inputs, Invoice, InvoiceStatus
from billing_batch.post.tasks import (
    FAILED,
    OUTBOX,
    TASKS,
    Outcome,
    Records,
    live_invoices,
    needs_attention,
    run_post_tasks,
    summary,
)

STATUSES = ("done", "outbox", "already done", "not done", "failed", "in doubt")


def after_billing(ledger: Ledger, issued: Sequence[Invoice], inputs: Inputs, tasks: Sequence[str], output,
                  templates, environ: Mapping[str, str] = os.environ, now: datetime | None = None) -> list[Outcome]:
    """For run and generate, once the PDFs are made: each task for the run's new invoices, and for the
    earlier invoices whose same task failed (or, for send with SMTP set up, waits in the outbox) so the next run retries
    them. Invoices a task was never asked for are left alone: naming them is `post`'s job. No tasks,
    nothing done."""
    if not tasks:
        return []
    now = now or datetime.now().astimezone()
    records = Records(ledger)
    live = {i.number: i for i in ledger.invoices() if i.status is not InvoiceStatus.REPLACED}
    outcomes: list[Outcome] = []
    for task in TASKS:
        if task not in tasks:
            continue
        again = {FAILED, OUTBOX} if task == "send" and inputs.settings.smtp_host.strip() else {FAILED}
        retry = {r.number for r in records.all() if r.task == task and r.outcome in again}
        candidates = list({i.number: i for i in [*issued, *(live[n] for n in sorted(retry) if n in live)]}.values())
        if candidates:
            outcomes += run_post_tasks(ledger, candidates, inputs, (task,), output, templates, now, environ=environ)
    return outcomes


@dataclass
class PostResult:
    report: object  # pipeline.Report: the input's problems
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


def post(options, tasks: Sequence[str], numbers: Sequence[str] = (), again: bool = False,
         environ: Mapping[str, str] = os.environ, now: datetime | None = None) -> PostResult:
    """`billing-batch post`: run the tasks for every live invoice, or for those named, reading the
    customers, settings and products from the input workbook. Raises pipeline.Refused without a ledger."""
    from billing_batch import pipeline  # pipeline imports this module for --post-tasks

    if again and not numbers:
        raise pipeline.Refused("--again repeats tasks that succeeded (an email sent, an invoice exported, a debit "
                               "collected): name the invoices to repeat with --invoice NUMBER.")
    report = pipeline.Report()
    checked = pipeline.load(options, report, preflight="send" in tasks)
    if checked is None:
        return PostResult(report)
    if not options.ledger_path.exists():
        raise pipeline.Refused(f"There is no ledger at {options.ledger_path}: nothing has been billed there, so there "
                               "is nothing to send, sync or charge. Point at the ledger with --ledger PATH or --output.")
    with pipeline.open_ledger(options, checked) as ledger:
        invoices, unknown = live_invoices(ledger, numbers)
        if unknown:
            return PostResult(report, [], unknown)
        outcomes = run_post_tasks(ledger, invoices, checked.inputs, tasks, options.output,
                                  options.look(checked.inputs.settings),
                                  now or datetime.now().astimezone(), again=again, environ=environ)
    return PostResult(report, outcomes, [])


def outcome_table(outcomes: Sequence[Outcome]) -> Table:
    """Invoices per task and status."""
    counts = summary(outcomes)
    table = Table(title="Post tasks", title_justify="left")
    table.add_column("Task")
    shown = [s for s in STATUSES if any(s in per for per in counts.values())]
    for status in shown:
        table.add_column(status.capitalize(), justify="right")
    for task in TASKS:
        if task in counts:
            table.add_row(task, *(str(counts[task].get(s, "")) for s in shown))
    return table


def attention_lines(outcomes: Sequence[Outcome], show: int = 8) -> list[Text]:
    """The lines a person should read: what failed and what to do, what is in doubt, what was not
    charged and why, and notes (a moved collection date, a replaced invoice). Invoices with the same
    message share one line, naming the first `show` of them."""
    lines = []
    outbox = [o for o in outcomes if o.status == "outbox"]
    if outbox:
        lines.append(Text(f"{len(outbox)} email(s) written to the outbox folder for review, not sent: "
                          "fill in SMTP Host in Settings to send them.", style="yellow"))
    groups: dict[tuple[str, str, bool], list[str]] = {}
    for o in needs_attention(outcomes):
        what = o.note if o.ok else (o.error or o.skipped_reason or o.note)
        groups.setdefault((o.task, what, bool(o.error) and not o.ok), []).append(o.number)
    for (task, what, failed), numbers in groups.items():
        named = ", ".join(numbers[:show]) + (f" and {len(numbers) - show} more" if len(numbers) > show else "")
        lines.append(Text(f"{named} {task}: {what}", style="red" if failed else "yellow"))
    return lines
