"""The record of what happened to each invoice after it was issued (send, sync, charge, each once per
invoice), and what the task modules share to keep it.

The ledger's table post_tasks holds one row per (invoice, task): when it was last done or tried,
its outcome, a reference (the email's Message-ID, the export file, the SEPA file) and the error.
Each task records its outcome right after its side effect, one invoice at a time for email, one
file at a time for the exports, so a crash costs at most the invoice or file in hand.

Outcomes stored:
    done      the side effect happened; never repeated unless asked with again=True
    outbox    send only: written to OUTPUT/outbox/ for review, not sent; sent for real once SMTP is set up
    failed    it did not happen; the next call tries again
    skipped   will not be done (charge: "not charged: <reason>"); looked at again only with again=True
    started   the side effect was under way when the run stopped or the connection broke:
              for an export, the file tells (it is written atomically, so it exists whole or not at all);
              for an email, nobody can tell from here whether it went out: it is reported "in doubt"
              and left for a person to decide (send it again with again=True, or leave it)
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

from billing_batch.ledger.store import Ledger
from billing_batch.documents.look import Look
from billing_batch.model import POST_TASKS, DocType, Inputs, Invoice, InvoiceStatus

TASKS = POST_TASKS

DONE, OUTBOX, FAILED, SKIPPED, STARTED = "done", "outbox", "failed", "skipped", "started"


@dataclass(frozen=True)
class Outcome:
    """What one call did, or found, for one invoice and one task.

    ok: the task is in order for this invoice (done now, or done before);
    skipped_reason: nothing was attempted now, and why (already done, replaced, not charged, ...);
    error: what went wrong, and what to do about it, when ok is False;
    note: anything else finance should know (a collection date moved, a replaced invoice synced before)."""

    number: str
    task: str
    ok: bool
    reference: str
    error: str
    skipped_reason: str = ""
    note: str = ""

    @property
    def status(self) -> str:
        """One word for a report: done, already done, outbox, failed, not done, in doubt."""
        if self.error.startswith(IN_DOUBT):
            return "in doubt"
        if self.ok:
            if self.skipped_reason:
                return "already done"
            return "outbox" if self.reference.startswith("outbox/") else "done"
        return "not done" if self.skipped_reason else "failed"


IN_DOUBT = "in doubt:"


@dataclass(frozen=True)
class Record:
    number: str
    task: str
    done_at: str
    outcome: str
    reference: str
    error: str


class Records:
    """The post_tasks table on the ledger's connection. Every write is its own committed transaction."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.db = ledger.db

    def get(self, number: str, task: str) -> Record | None:
        row = self.db.execute("SELECT number, task, done_at, outcome, reference, error FROM post_tasks "
                              "WHERE number = ? AND task = ?", (number, task)).fetchone()
        return Record(*row) if row else None

    def all(self) -> list[Record]:
        rows = self.db.execute("SELECT number, task, done_at, outcome, reference, error FROM post_tasks "
                               "ORDER BY number, task")
        return [Record(*row) for row in rows]

    def mark(self, number: str, task: str, outcome: str, reference: str = "", error: str = "") -> None:
        self.mark_many([number], task, outcome, reference, error)

    def mark_many(self, numbers: Iterable[str], task: str, outcome: str, reference: str = "", error: str = "") -> None:
        at = _clock()
        with self.ledger.transaction():
            self.db.executemany(
                "INSERT OR REPLACE INTO post_tasks VALUES (?, ?, ?, ?, ?, ?)",
                ((n, task, at, outcome, reference, error) for n in numbers),
            )

    def replaced_by(self, number: str) -> list[str]:
        """The invoices that `number` replaced (normally one)."""
        rows = self.db.execute("SELECT number FROM invoices WHERE replaced_by = ? ORDER BY seq", (number,))
        return [n for (n,) in rows]


def _clock() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Context:
    """Everything a task needs for one call."""

    ledger: Ledger
    records: Records
    inputs: Inputs
    out_dir: Path
    look: Look
    now: datetime
    again: bool
    environ: Mapping[str, str]
    candidates: Sequence[Invoice] = ()  # the documents of this call
    stamp: str = field(init=False)

    def __post_init__(self) -> None:
        self.stamp = self.now.strftime("%Y%m%dT%H%M%S")

    def customer(self, invoice: Invoice):
        return self.inputs.customers.get(invoice.draft.customer_id)

    def contract(self, invoice: Invoice):
        return self.inputs.contracts.get(invoice.draft.contract_id)

    def replaces(self, invoice: Invoice) -> list[str]:
        """The invoices this one replaced and voided: not those a credit note corrects, which stand
        (the credit note takes their amount back)."""
        return [n for n in self.records.replaced_by(invoice.number) if not self.credit_notes_of(n)]

    def document(self, number: str) -> Invoice | None:
        """An invoice or credit note by number."""
        return self._documents.get(number)

    def credit_notes_of(self, number: str) -> list[Invoice]:
        """The credit notes that credit the invoice `number`, in number order."""
        return self._credit_notes.get(number, [])

    @cached_property
    def _documents(self) -> dict[str, Invoice]:
        # Read once per call, and only by a task that asks: the ledger's, with this call's candidates on top.
        return {d.number: d for d in [*self.ledger.invoices(), *self.candidates]}

    @cached_property
    def _credit_notes(self) -> dict[str, list[Invoice]]:
        by_invoice: dict[str, list[Invoice]] = {}
        for d in sorted(self._documents.values(), key=lambda d: d.number):
            if d.doc_type is DocType.CREDIT_NOTE and d.credits:
                by_invoice.setdefault(d.credits, []).append(d)
        return by_invoice


def task_status(ledger: Ledger) -> dict[str, dict[str, str]]:
    """Invoice number -> task -> "done", "outbox", "failed", "skipped" or "in doubt".
    An invoice is Billed in the schedule workbook when send or sync is "done"."""
    rows = ledger.db.execute("SELECT number, task, outcome FROM post_tasks").fetchall()
    status: dict[str, dict[str, str]] = {}
    for number, task, outcome in rows:
        status.setdefault(number, {})[task] = "in doubt" if outcome == STARTED else outcome
    return status


def is_billed(status: Mapping[str, str]) -> bool:
    """The schedule's Billed status: the invoice was sent or synced."""
    return status.get("send") == DONE or status.get("sync") == DONE


def live_invoices(ledger: Ledger, numbers: Sequence[str] = ()) -> tuple[list[Invoice], list[str]]:
    """The candidates for `billing-batch post`: every live invoice, or those named (Replaced ones
    included, so they are reported as such); and the named numbers the ledger does not know."""
    every = ledger.invoices()
    if not numbers:
        return [i for i in every if i.status is not InvoiceStatus.REPLACED], []
    by_number = {i.number: i for i in every}
    return [by_number[n] for n in dict.fromkeys(numbers) if n in by_number], [n for n in numbers if n not in by_number]


# ---------------------------------------------------------------- shared by the tasks


def triage(ctx: Context, task: str, invoices: Sequence[Invoice], verb: str,
           files_exist: bool = False) -> tuple[list[Outcome], list[Invoice]]:
    """Split the candidates into outcomes decided without doing anything (replaced, already done,
    in doubt) and the invoices to work on. files_exist: a 'started' record whose reference names
    files that all exist counts as done (the files are written atomically, so they are whole)."""
    outcomes: list[Outcome] = []
    todo: list[Invoice] = []
    for inv in invoices:
        if inv.status is InvoiceStatus.REPLACED:
            why = f"replaced by {inv.replaced_by}: a Replaced invoice is never {verb}" + (
                f"; its replacement {inv.replaced_by} is" if inv.replaced_by else "")
            outcomes.append(Outcome(inv.number, task, False, "", "", skipped_reason=why))
            continue
        rec = ctx.records.get(inv.number, task)
        if rec and rec.outcome == STARTED and files_exist:
            if all((ctx.out_dir / name).exists() for name in split_reference(rec.reference)):
                ctx.records.mark(inv.number, task, DONE, rec.reference)
                rec = ctx.records.get(inv.number, task)
            else:
                rec = None  # the run stopped before the file was in place: nothing was exported
        if rec is None or ctx.again:
            todo.append(inv)
        elif rec.outcome == DONE:
            outcomes.append(Outcome(inv.number, task, True, rec.reference, "",
                                    skipped_reason=f"already {verb} ({rec.done_at})"))
        elif rec.outcome == STARTED:
            outcomes.append(Outcome(inv.number, task, False, rec.reference, in_doubt_message(inv.number, task, rec),
                                    skipped_reason="in doubt"))
        elif rec.outcome == SKIPPED:
            outcomes.append(Outcome(inv.number, task, False, rec.reference, "", skipped_reason=rec.error))
        else:  # failed, or outbox (which send decides on)
            todo.append(inv)
    return outcomes, todo


def in_doubt_message(number: str, task: str, rec: Record) -> str:
    return (f"{IN_DOUBT} {number} was being handed to the mail server ({rec.reference}) on {rec.done_at} when the "
            f"connection or the run broke off, so it may or may not have been sent. Check the sent mail or the "
            f"server's log for that Message-ID; to send it (again), run post --tasks {task} --invoice {number} --again.")


def split_reference(reference: str) -> list[str]:
    return [part.strip() for part in reference.split(";") if part.strip()]


def unique_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/stem.suffix, or stem-2.suffix and so on if a file of that name exists."""
    folder.mkdir(parents=True, exist_ok=True)
    path, n = folder / f"{stem}{suffix}", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}-{n}{suffix}"
    return path


def relative(ctx: Context, path: Path) -> str:
    return path.relative_to(ctx.out_dir).as_posix()
