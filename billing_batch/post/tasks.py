"""Run the post tasks (send, sync, charge) for invoices: those a run just issued, or those named.
The task modules share post/records.py; this module is the only one that calls them."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from billing_batch.documents.look import Look
from billing_batch.ledger.store import Ledger
from billing_batch.model import Inputs, Invoice, InvoiceStatus
from billing_batch.post import charge, send, sync
from billing_batch.post.records import FAILED, OUTBOX, TASKS, Context, Outcome, Records


def run_post_tasks(
    ledger: Ledger,
    invoices: Sequence[Invoice],
    inputs: Inputs,
    tasks: Sequence[str],
    out_dir: Path,
    templates: Look | Path,
    now: datetime,
    again: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> list[Outcome]:
    """Run the tasks (in the order send, sync, charge, whatever order they are named in) for the
    candidate invoices; one Outcome per invoice and task. A failure of one invoice never stops the
    others; nothing here raises for a bad invoice, a refused email or a server that is down."""
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown post task {', '.join(map(repr, unknown))}: use {', '.join(TASKS)}")
    candidates = list({i.number: i for i in invoices}.values())
    ctx = Context(ledger, Records(ledger), inputs, Path(out_dir), Look.of(templates), now, again, environ, candidates)
    runners = {"send": send.run, "sync": sync.run, "charge": charge.run}
    outcomes: list[Outcome] = []
    for task in TASKS:
        if task in tasks:
            outcomes += runners[task](ctx, candidates)
    order = {inv.number: n for n, inv in enumerate(candidates)}
    return sorted(outcomes, key=lambda o: (TASKS.index(o.task), order.get(o.number, 0)))


def after_billing(ledger: Ledger, issued: Sequence[Invoice], inputs: Inputs, tasks: Sequence[str], output,
                  templates, environ: Mapping[str, str] = os.environ, now: datetime | None = None) -> list[Outcome]:
    """For run and generate, once the PDFs are made: each task for the command's new documents, and for
    the earlier ones the task has not done: those it failed (or, for send with SMTP set up, that wait in
    the outbox), and those issued since the task was first used on this ledger with no record for it (a
    run that stopped before its tasks, a generate without them). Documents older than the task's first
    use are left alone: naming them is `post`'s job. No tasks, nothing done."""
    if not tasks:
        return []
    now = now or datetime.now().astimezone()
    records = Records(ledger).all()
    invoices = ledger.invoices()  # in the order issued
    outcomes: list[Outcome] = []
    for task in TASKS:
        if task not in tasks:
            continue
        again = {FAILED, OUTBOX} if task == "send" and inputs.settings.smtp_host.strip() else {FAILED}
        recorded = {r.number: r.outcome for r in records if r.task == task}
        first = next((n for n, i in enumerate(invoices) if i.number in recorded), len(invoices))
        earlier = [i for n, i in enumerate(invoices) if i.status is not InvoiceStatus.REPLACED
                   and (recorded.get(i.number) in again or n > first and i.number not in recorded)]
        candidates = list({i.number: i for i in [*issued, *earlier]}.values())
        if candidates:
            outcomes += run_post_tasks(ledger, candidates, inputs, (task,), output, templates, now, environ=environ)
    return outcomes


# ---------------------------------------------------------------- for the command line


def summary(outcomes: Sequence[Outcome]) -> dict[str, dict[str, int]]:
    """task -> status (see Outcome.status) -> how many invoices, for the terminal's table."""
    counts: dict[str, dict[str, int]] = {}
    for o in outcomes:
        per = counts.setdefault(o.task, {})
        per[o.status] = per.get(o.status, 0) + 1
    return counts


def needs_attention(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The outcomes a person should read: failures, in doubt, not charged, and notes."""
    return [o for o in outcomes if (not o.ok and not o.skipped_reason.startswith("replaced by")) or o.note]
