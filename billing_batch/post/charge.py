"""charge: a SEPA Direct Debit file (pain.008) for the invoices that can be collected that way.

An invoice is charged when it is in EUR, its total is above zero and its customer has a mandate:
an IBAN, a Mandate ID and a Mandate Date (a BIC too, when given; since 2016 SEPA needs none).
Every other invoice gets an Outcome "not charged: <reason>", recorded as skipped: it is not looked
at again unless asked (again=True), so an old invoice paid by transfer is never debited later
because a mandate was added since.

The file is built with sepaxml and validated by it against the pain.008 schema it bundles (with
xmlschema) before it is written. Collection date = the invoice's due date, or tomorrow when the
due date has passed. The first collection under a mandate is sent as FRST, later ones as RCUR.
One file per call, under OUTPUT/exports/; exactly once the same way as sync (recorded as started
naming the file, file renamed into place, recorded as done).

Credit notes are never debited (docs/decisions.md, "Credit notes through the post tasks"). One
for an invoice not collected yet, that will be collected by direct debit, is taken off that
collection: the invoice is collected net, or not at all when nothing is left. Every other credit note is listed
"to refund by transfer" in OUTPUT/exports/refunds-to-transfer-<time>.csv, one file per call, written
the same exactly-once way; its outcome is skipped, with the reason.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from schwifty import BIC, IBAN

from billing_batch.files import csv_bytes, write_atomic
from billing_batch.inputs.bank_ids import (
    MAX_ID,
    bic_problem,
    creditor_id_problem,
    iban_problem,
    mandate_id_problem,
)
from billing_batch.model import Customer, DocType, Invoice, Settings
from billing_batch.post.records import (
    DONE,
    FAILED,
    SKIPPED,
    STARTED,
    Context,
    Outcome,
    relative,
    triage,
    unique_path,
)

REFUNDS = "refunds-to-transfer"  # the file of the credit notes to refund by transfer
REFUND_COLUMNS = ["Credit Note", "Credit Note Date", "Credited Invoice", "Customer ID", "Customer", "Currency",
                  "Amount", "IBAN", "BIC", "Transfer Reference", "Why"]
CREDITED_IN_FULL = "not charged: credited in full by"
PAIN = "pain.008.001.08"  # the EPC's current version (the 2019 rulebook, in use since November 2023)


def creditor_problem(settings: Settings) -> str:
    missing = [label for label, value in (("Company Name", settings.company_name), ("Creditor IBAN", settings.creditor_iban),
                                          ("Creditor ID", settings.creditor_id)) if not value.strip()]
    if missing:
        return (f"no SEPA creditor: fill in {', '.join(missing)} in the Settings sheet, "
                "then run post --tasks charge again.")
    for problem in (iban_problem(settings.creditor_iban), creditor_id_problem(settings.creditor_id),
                    bic_problem(settings.creditor_bic) if settings.creditor_bic.strip() else None):
        if problem:
            return f"the SEPA creditor in Settings is not usable: {problem}."
    return ""


# ---------------------------------------------------------------- the task


@dataclass(frozen=True)
class Payment:
    invoice: Invoice
    customer: Customer
    iban: str
    bic: str
    amount_cents: int
    collection: dt.date
    note: str
    deducted: tuple[Invoice, ...] = ()  # the credit notes taken off the invoice's total


def run(ctx: Context, invoices: Sequence[Invoice]) -> list[Outcome]:
    _settle_refund_lists(ctx, invoices)
    outcomes, todo = triage(ctx, "charge", invoices, "charged", files_exist=True)
    notes = [i for i in todo if i.doc_type is DocType.CREDIT_NOTE]
    collected, deducted = _collect(ctx, [i for i in todo if i.doc_type is not DocType.CREDIT_NOTE])
    return outcomes + collected + _refunds(ctx, notes, deducted)


def _collect(ctx: Context, todo: Sequence[Invoice]) -> tuple[list[Outcome], dict[str, str]]:
    """The invoices' direct debits, in one SEPA file; and the credit notes taken off them (credit
    note -> the SEPA file)."""
    outcomes: list[Outcome] = []
    payments: list[Payment] = []
    creditor = None
    for inv in todo:
        reason = not_charged(ctx, inv)
        if reason:
            ctx.records.mark(inv.number, "charge", SKIPPED, "", reason)
            outcomes.append(Outcome(inv.number, "charge", False, "", "", skipped_reason=reason))
            continue
        if creditor is None:
            creditor = creditor_problem(ctx.inputs.settings)
        problem = creditor or debtor_problem(ctx, inv)
        if problem:
            ctx.records.mark(inv.number, "charge", FAILED, "", problem)
            outcomes.append(Outcome(inv.number, "charge", False, "", problem))
            continue
        payments.append(_payment(ctx, inv))
    if not payments:
        return outcomes, {}

    # A payment the schema refuses must not sink the others: find it alone, leave it out.
    try:
        xml, sequences = build_file(ctx, payments)
    except Exception:
        kept = []
        for p in payments:
            try:
                build_file(ctx, [p])
                kept.append(p)
            except Exception as exc:
                error = f"left out of the SEPA file: {_why(exc)}; check the customer's IBAN, BIC and mandate."
                ctx.records.mark(p.invoice.number, "charge", FAILED, "", error)
                outcomes.append(Outcome(p.invoice.number, "charge", False, "", error))
        payments = kept
        if not payments:
            return outcomes, {}
        xml, sequences = build_file(ctx, payments)

    path = unique_path(ctx.out_dir / "exports", f"sepa-direct-debit-{ctx.stamp}", ".xml")
    ref = relative(ctx, path)
    numbers = [p.invoice.number for p in payments]
    with ctx.ledger.transaction():
        ctx.records.db.executemany(
            "INSERT OR REPLACE INTO post_sepa VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ((p.invoice.number, p.customer.mandate_id.strip(), p.iban, f"{Decimal(p.amount_cents) / 100:.2f}",
              p.collection.isoformat(), sequences[p.invoice.number], end_to_end_id(p.invoice), ref)
             for p in payments))
    ctx.records.mark_many(numbers, "charge", STARTED, ref)
    try:
        write_atomic(path, xml)
    except OSError as exc:
        error = f"the SEPA file could not be written to {path.parent}: {exc}"
        ctx.records.mark_many(numbers, "charge", FAILED, "", error)
        return outcomes + [Outcome(n, "charge", False, "", error) for n in numbers], {}
    ctx.records.mark_many(numbers, "charge", DONE, ref)
    return outcomes + [Outcome(p.invoice.number, "charge", True, ref, "",
                               note=f"{sequences[p.invoice.number]} collection of {_eur(p.amount_cents)} "
                                    f"on {p.collection.isoformat()}" + "".join(f"; {n}" for n in (_net(p), p.note) if n))
                       for p in payments], {n.number: ref for p in payments for n in p.deducted}


def _net(p: Payment) -> str:
    if not p.deducted:
        return ""
    return (f"{p.invoice.draft.total:.2f} EUR less credit note{'s' if len(p.deducted) > 1 else ''} "
            f"{', '.join(n.number for n in p.deducted)}")


def not_charged(ctx: Context, inv: Invoice) -> str:
    """Why the invoice is not for SEPA Direct Debit ("not charged: ..."), or ""."""
    d = inv.draft
    if d.currency == "EUR" and d.total <= 0:
        return f"not charged: nothing to collect (total {d.total} EUR)"
    reason = mandate_reason(ctx, inv)
    if reason:
        return reason
    deducted = deductions(ctx, inv)
    if deducted and d.total - sum(n.draft.total for n in deducted) <= 0:
        return f"{CREDITED_IN_FULL} {', '.join(n.number for n in deducted)}, so nothing is left to collect"
    collected = [n for n in ctx.replaces(inv) if (r := ctx.records.get(n, "charge")) and r.outcome in (DONE, STARTED)]
    if collected:
        return (f"not charged: it replaces {', '.join(collected)}, which was already put in a SEPA file "
                f"({ctx.records.get(collected[0], 'charge').reference}); settle the difference by hand")
    return ""


def mandate_reason(ctx: Context, inv: Invoice) -> str:
    """Why the invoice is not one to collect by direct debit at all, whatever its amount, or ""."""
    d = inv.draft
    if d.currency != "EUR":
        return f"not charged: the invoice is in {d.currency}; SEPA Direct Debit collects EUR only"
    customer = ctx.customer(inv)
    if customer is None:
        return f"not charged: customer {d.customer_id} is no longer in the Customers sheet"
    missing = [label for label, value in (("IBAN", customer.iban), ("Mandate ID", customer.mandate_id))
               if not (value or "").strip()]
    if customer.mandate_date is None:
        missing.append("Mandate Date")
    if missing:
        return (f"not charged: customer {d.customer_id} has no SEPA mandate "
                f"({', '.join(missing)} blank in the Customers sheet)")
    return ""


# ---------------------------------------------------------------- credit notes


def _refunds(ctx: Context, notes: Sequence[Invoice], deducted: dict[str, str]) -> list[Outcome]:
    """Each credit note: deducted from its invoice's direct debit (now, or when it is collected), or
    listed in this call's refunds file, to refund by transfer. Recorded as skipped: never debited."""
    outcomes: list[Outcome] = []
    listed: list[tuple[Invoice, str, str, str]] = []  # (credit note, why, IBAN, BIC)
    for note in notes:
        refund = _refund(ctx, note, deducted)
        if refund is not None:
            listed.append((note, *refund))
            continue
        amount = f"{note.draft.total:.2f} {note.draft.currency}"
        if note.number in deducted:
            ref = deducted[note.number]
            reason = (f"not charged: a credit note is never debited; its {amount} was taken off the direct debit "
                      f"of {note.credits} ({ref})")
        else:
            ref = ""
            reason = (f"not charged: a credit note is never debited; its {amount} is taken off the direct debit "
                      f"of {note.credits} when that is collected (nothing is collected if nothing is left)")
        ctx.records.mark(note.number, "charge", SKIPPED, ref, reason)
        outcomes.append(Outcome(note.number, "charge", False, ref, "", skipped_reason=reason))
    if not listed:
        return outcomes

    path = unique_path(ctx.out_dir / "exports", f"{REFUNDS}-{ctx.stamp}", ".csv")
    ref = relative(ctx, path)
    numbers = [note.number for note, *_ in listed]
    ctx.records.mark_many(numbers, "charge", STARTED, ref)
    try:
        write_atomic(path, _refunds_csv(listed))
    except OSError as exc:
        error = f"the list of refunds could not be written to {path.parent}: {exc}"
        ctx.records.mark_many(numbers, "charge", FAILED, "", error)
        return outcomes + [Outcome(n, "charge", False, "", error) for n in numbers]
    for note, why, _, _ in listed:
        reason = (f"not charged: a credit note is never debited; {note.draft.total:.2f} {note.draft.currency} "
                  f"to refund by transfer ({why}), listed in {ref}")
        ctx.records.mark(note.number, "charge", SKIPPED, ref, reason)
        outcomes.append(Outcome(note.number, "charge", False, ref, "", skipped_reason=reason))
    return outcomes


def _refund(ctx: Context, note: Invoice, deducted: dict[str, str]) -> tuple[str, str, str] | None:
    """None when the credit note is settled by its invoice's direct debit; else why it is to refund
    by transfer, and the account to refund (the one debited, else the customer's, else blank)."""
    number = note.credits or ""
    if note.number in deducted:
        return None
    rec = ctx.records.get(number, "charge") if number else None
    customer = ctx.customer(note)
    bic = customer.bic.strip() if customer is not None else ""
    if rec is not None and rec.outcome in (DONE, STARTED):
        row = ctx.records.db.execute("SELECT iban FROM post_sepa WHERE number = ?", (number,)).fetchone()
        return f"{number} was collected by direct debit, {rec.reference}", row[0] if row else "", bic
    invoice = ctx.document(number)
    waiting = rec is None or rec.outcome == FAILED or rec.error.startswith(CREDITED_IN_FULL)
    if invoice is not None and waiting and not mandate_reason(ctx, invoice):
        return None
    iban = IBAN(customer.iban).compact if customer is not None and not iban_problem(customer.iban) else ""
    if not number:  # a cycle that totals below zero: what the customer is owed
        return "it credits no invoice: its cycle totals below zero, and the customer is owed the amount", iban, bic
    return f"{number} is not collected by direct debit: refund only what the customer paid of it", iban, bic


def _refunds_csv(listed: Sequence[tuple[Invoice, str, str, str]]) -> bytes:
    rows = [[note.number, note.invoice_date.isoformat(), note.credits or "", note.draft.customer_id,
             note.draft.customer_name, note.draft.currency, f"{note.draft.total:.2f}", iban, bic,
             f"Credit note {note.number} for invoice {note.credits}" if note.credits else note.number, why]
            for note, why, iban, bic in listed]
    return csv_bytes(REFUND_COLUMNS, rows, numbers={"Amount"})  # the other cells are text, kept inert


def _settle_refund_lists(ctx: Context, invoices: Sequence[Invoice]) -> None:
    """A credit note left started by a stopped run: listed if its refunds file is there (written
    whole or not at all), else listed again by this call (triage finds its file missing)."""
    for note in invoices:
        rec = ctx.records.get(note.number, "charge") if note.doc_type is DocType.CREDIT_NOTE else None
        if rec and rec.outcome == STARTED and (ctx.out_dir / rec.reference).is_file():
            ctx.records.mark(note.number, "charge", SKIPPED, rec.reference,
                             f"not charged: a credit note is never debited; to refund by transfer, listed in "
                             f"{rec.reference}")


def debtor_problem(ctx: Context, inv: Invoice) -> str:
    customer = ctx.customer(inv)
    where = f"customer {customer.customer_id}"
    problem = iban_problem(customer.iban) or mandate_id_problem(customer.mandate_id)
    if not problem and customer.bic.strip():
        problem = bic_problem(customer.bic)
    if problem:
        return f"not charged: {where}: {problem}; correct it in the Customers sheet."
    iban = IBAN(customer.iban)
    if not iban.in_sepa_zone:
        return f"not charged: {where}: the IBAN's country {iban.country_code} is outside the SEPA zone."
    collection = _collection_date(ctx, inv)[0]
    if customer.mandate_date > collection:
        return (f"not charged: {where}: the Mandate Date {customer.mandate_date.isoformat()} is after the "
                f"collection date {collection.isoformat()}; check the mandate.")
    if not end_to_end_id(inv):
        return f"not charged: the invoice number {inv.number!r} cannot serve as a SEPA end-to-end reference."
    return ""


def _collection_date(ctx: Context, inv: Invoice) -> tuple[dt.date, str]:
    earliest = ctx.now.date() + dt.timedelta(days=1)
    if inv.due_date >= earliest:
        return inv.due_date, ""
    return earliest, f"the due date {inv.due_date.isoformat()} has passed: collection on {earliest.isoformat()}"


def _payment(ctx: Context, inv: Invoice) -> Payment:
    customer = ctx.customer(inv)
    collection, note = _collection_date(ctx, inv)
    deducted = tuple(deductions(ctx, inv))
    cents = (inv.draft.total - sum((n.draft.total for n in deducted), Decimal(0))) * 100
    bic = BIC(customer.bic.strip()).compact if customer.bic.strip() else ""
    return Payment(inv, customer, IBAN(customer.iban).compact, bic, int(cents), collection, note, deducted)


def deductions(ctx: Context, inv: Invoice) -> list[Invoice]:
    """The credit notes of an invoice that its collection takes off: all but those listed to refund."""
    return [n for n in ctx.credit_notes_of(inv.number) if not _refund_listed(ctx, n)]


def _refund_listed(ctx: Context, note: Invoice) -> bool:
    rec = ctx.records.get(note.number, "charge")
    return rec is not None and rec.reference.startswith(f"exports/{REFUNDS}-")


def end_to_end_id(inv: Invoice) -> str:
    text = re.sub(r"[^A-Za-z0-9/\-?:().,'+ ]", "-", inv.number).strip()[:MAX_ID]
    return text if text and not text.startswith("/") else ""


def _sequences(ctx: Context, payments: Sequence[Payment]) -> dict[str, str]:
    """FRST for the first collection ever made under a mandate (same ID and IBAN), RCUR after."""
    seen = set()
    rows = ctx.records.db.execute(
        "SELECT s.mandate_id, s.iban FROM post_sepa s JOIN post_tasks t "
        "ON t.number = s.number AND t.task = 'charge' AND t.outcome = 'done'")
    seen.update((m, i) for m, i in rows)
    out = {}
    for p in sorted(payments, key=lambda p: (p.collection, p.invoice.number)):
        key = (p.customer.mandate_id.strip(), p.iban)
        out[p.invoice.number] = "RCUR" if key in seen else "FRST"
        seen.add(key)
    return out


def build_file(ctx: Context, payments: Sequence[Payment]) -> tuple[bytes, dict[str, str]]:
    """The pain.008 document, validated against its schema by sepaxml (raises if it is not valid)."""
    from sepaxml import SepaDD

    s = ctx.inputs.settings
    config = {"name": s.company_name.strip(), "IBAN": IBAN(s.creditor_iban).compact, "batch": True,
              "creditor_id": re.sub(r"\s", "", s.creditor_id).upper(), "currency": "EUR", "instrument": "CORE"}
    if s.creditor_bic.strip():
        config["BIC"] = BIC(s.creditor_bic.strip()).compact
    sepa = SepaDD(config, schema=PAIN, clean=True)
    sequences = _sequences(ctx, payments)
    for p in payments:
        d = p.invoice.draft
        payment = {
            "name": p.customer.name,
            "IBAN": p.iban,
            "amount": p.amount_cents,
            "type": sequences[p.invoice.number],
            "collection_date": p.collection,
            "mandate_id": p.customer.mandate_id.strip(),
            "mandate_date": p.customer.mandate_date,
            "description": f"Invoice {p.invoice.number} {d.cycle_start.isoformat()} to {d.cycle_end.isoformat()}"
                           + "".join(f" less {n.number}" for n in p.deducted),
            "endtoend_id": end_to_end_id(p.invoice),
        }
        if p.bic:
            payment["BIC"] = p.bic
        sepa.add_payment(payment)
    return sepa.export(validate=True, pretty_print=True), sequences


def _why(exc: Exception) -> str:
    cause = exc.__cause__
    if cause is not None and getattr(cause, "reason", None):
        return f"the schema refuses it ({cause.reason})"
    return str(exc)


def _eur(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f} EUR"
