"""The billing run: propose every due cycle, subtract what is settled, bill the rest. Pure."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from billing_batch.engine.cycles import billed_before, cycle_containing, cycles, due_cycles
from billing_batch.engine.credit_notes import CreditNote
from billing_batch.errors import Problem, problem
from billing_batch.i18n import country_code
from billing_batch.model import (
    Contract,
    Customer,
    Cycle,
    DocType,
    Draft,
    Inputs,
    Invoice,
    Line,
    LineKind,
    Party,
    RunType,
    Settings,
    Usage,
)
from billing_batch.engine import postal
from billing_batch.engine.pricing import make_draft, price_cycle
from billing_batch.engine.tax import Rules

CycleKey = tuple[str, date]  # (contract ID, cycle start)
CARRIED = (LineKind.USAGE, LineKind.LICENCE)  # lines of usage rows: an invoice carries them, compared by row


@dataclass(frozen=True)
class Plan:
    drafts: tuple[Draft, ...]  # in numbering order
    empty: tuple[Cycle, ...]  # due, with nothing to bill


def plan_run(
    inputs: Inputs,
    set_aside: Collection[str],
    settled: Collection[CycleKey],
    billed_usage: Collection[tuple[str, str]],
    as_of: date,
    adjustments: Mapping[str, Sequence[Line]] | None = None,
    change_logs: Collection[str] = (),
) -> Plan:
    """What a run as of as_of bills: every due cycle of every active contract that is not
    set aside, not settled (invoiced or found empty) and not billed before billing_batch
    (Billed Through), numbered by scheduled date, contract and cycle start. adjustments
    (contract ID -> Adjustment lines) go on the contract's first invoice of the run; those of
    the contracts in change_logs that have none go on an invoice of their own."""
    waiting = dict(adjustments or {})
    due = sorted(
        ((cycle, contract) for contract in inputs.contracts.values()
         if contract.active and contract.contract_id not in set_aside
         for cycle in due_cycles(contract, as_of)
         if (contract.contract_id, cycle.start) not in settled and not billed_before(contract, cycle)),
        key=lambda pair: (pair[0].scheduled, pair[1].contract_id, pair[0].start),
    )
    unbilled = {
        contract_id: [u for u in rows if (contract_id, u.usage_id) not in billed_usage]
        for contract_id, rows in inputs.usage.items()
    }
    drafts, empty = [], []
    for cycle, contract in due:
        usage = unbilled.get(contract.contract_id, [])
        draft = draft_for(cycle, contract, inputs, usage)
        if lines := waiting.pop(contract.contract_id, ()):
            draft = with_adjustments(draft, lines, cycle, contract, inputs)
        if draft.is_empty:
            empty.append(cycle)
            continue
        drafts.append(draft)
        taken = usage_ids(draft)
        usage[:] = [u for u in usage if u.usage_id not in taken]
    for contract_id in sorted(set(change_logs) & set(waiting)):
        contract = inputs.contracts[contract_id]
        if contract.active and contract_id not in set_aside:
            drafts.append(change_log_draft(contract, waiting[contract_id], inputs, as_of))
    drafts.sort(key=lambda d: (d.scheduled, d.contract_id, d.cycle_start))
    return Plan(tuple(drafts), tuple(empty))


def with_adjustments(draft: Draft, lines: Sequence[Line], cycle: Cycle, contract: Contract, inputs: Inputs) -> Draft:
    """The cycle's draft with the contract's Adjustment lines after its own; one that totals below
    zero is issued as a credit note (credit_notes.from_draft)."""
    customer = inputs.customers[contract.customer_id]
    return make_draft(cycle, contract, customer, [*draft.lines, *lines], Rules(inputs.products, inputs.settings.tax_rounding))


def change_log_period(lines: Sequence[Line], as_of: date) -> Cycle:
    """The period of an invoice of adjustments only (a change-log invoice): that of its lines,
    scheduled as_of. It is no cycle of the contract."""
    start, end = min(line.period_start for line in lines), max(line.period_end for line in lines)
    return Cycle(lines[0].adjusted.contract_id, -1, start, end, end, as_of, as_of)


def change_log_draft(contract: Contract, lines: Sequence[Line], inputs: Inputs, as_of: date) -> Draft:
    draft = make_draft(change_log_period(lines, as_of), contract, inputs.customers[contract.customer_id],
                       list(lines), Rules(inputs.products, inputs.settings.tax_rounding))
    return replace(draft, change_log=True)


def plan_change_logs(inputs: Inputs, set_aside: Mapping[str, list], adjustments: Mapping[str, Sequence[Line]],
                     contract_ids: Iterable[str], as_of: date) -> list[Proposal]:
    """For `generate --adjust`: each contract's pending adjustments on an invoice of their own."""
    proposals = []
    for contract_id in dict.fromkeys(contract_ids):
        contract = inputs.contracts.get(contract_id)
        lines = adjustments.get(contract_id)
        if why := unbillable(inputs, set_aside, contract_id):
            proposals.append(Proposal(contract_id, problem=why))
        elif not lines:
            proposals.append(Proposal(contract_id, problem=f"Nothing to bill: no adjustment is pending for {contract_id}"))
        else:  # below zero, it is issued as a credit note
            proposals.append(Proposal(contract_id, change_log_period(lines, as_of),
                                      change_log_draft(contract, lines, inputs, as_of)))
    return proposals


def hold_long_catch_ups(plan: Plan, inputs: Inputs) -> tuple[Plan, list[Problem]]:
    """The plan without the contracts it would issue more invoices for than the Catch-Up Limit,
    and a problem setting each of them aside: years of invoices at once are more likely a
    contract whose earlier cycles were billed before billing_batch than a real catch-up."""
    limit = inputs.settings.catch_up_limit
    by_contract = defaultdict(list)
    for draft in plan.drafts:
        if not draft.change_log:  # an invoice of adjustments bills no cycle
            by_contract[draft.contract_id].append(draft)
    held = {cid: drafts for cid, drafts in by_contract.items() if len(drafts) > limit}
    if not held:
        return plan, []
    problems = []
    for cid, drafts in held.items():
        contract = inputs.contracts[cid]
        problems.append(problem(
            "BB121", contract.source, f"Contract {cid} has {len(drafts)} cycles due since "
            f"{min(d.cycle_start for d in drafts)}, more than the Catch-Up Limit of {limit} invoices "
            "in one run, so none of them was billed.", contract_id=cid))
    kept = Plan(tuple(d for d in plan.drafts if d.contract_id not in held),
                tuple(c for c in plan.empty if c.contract_id not in held))
    return kept, problems


def usage_billed_before(inputs: Inputs, billed_usage: Collection[tuple[str, str]]) -> int:
    """The usage rows no invoice takes because their contract's Billed Through covers their date."""
    count = 0
    for cid, rows in inputs.usage.items():
        contract = inputs.contracts.get(cid)  # None for a contract too broken to read
        if contract and contract.billed_through:
            count += sum(1 for u in rows if u.date <= contract.billed_through and (cid, u.usage_id) not in billed_usage)
    return count


def draft_for(cycle: Cycle, contract: Contract, inputs: Inputs, unbilled_usage: Iterable[Usage]) -> Draft:
    customer = inputs.customers[contract.customer_id]
    subscriptions = inputs.subscriptions.get(contract.contract_id, ())
    rules = Rules(inputs.products, inputs.settings.tax_rounding)
    return price_cycle(cycle, contract, customer, subscriptions, unbilled_usage, rules)


def seller(settings: Settings, locale: str = "") -> Party:
    """The Company Address as typed; when blank, Company Street, City, Postal Code, State and Country as
    the country writes them (billing_batch.engine.postal), in the invoice's language."""
    lines = tuple(settings.company_address.splitlines()) or postal.address_lines(
        settings.company_street, settings.company_city, settings.company_postal_code, settings.company_state,
        settings.company_country, settings.company_country, locale or settings.locale)
    return Party(
        name=settings.company_name,
        address_lines=lines,
        email=settings.company_email,
        tax_id=settings.tax_id,
        tax_id_label=settings.tax_id_label,
        bank_details=settings.bank_details,
        vat_id=settings.vat_id,
        street=settings.company_street,
        city=settings.company_city,
        postal_code=settings.company_postal_code,
        state=settings.company_state,
        country=settings.company_country,
        registration_id=settings.registration_id,
        registration_scheme=settings.registration_scheme,
        electronic_address=settings.electronic_address,
        electronic_scheme=settings.electronic_scheme,
        contact_name=settings.contact_name,
        contact_phone=settings.contact_phone,
        contact_email=settings.contact_email,
        iban=settings.creditor_iban,
        bic=settings.creditor_bic,
        creditor_id=settings.creditor_id,
    )


def buyer(customer: Customer, contract: Contract | None = None, settings: Settings | None = None,
          locale: str = "") -> Party:
    """The customer's address as its country writes it (billing_batch.engine.postal), in the invoice's language."""
    code = country_code(customer.country)
    lines = postal.address_lines(customer.address, customer.city, customer.postal_code, customer.state,
                                 customer.country, code, locale or customer.language or
                                 (settings.locale if settings else "en_US"))
    einvoice = customer.einvoice or (settings.einvoice if settings else None)
    mandate = bool(customer.mandate_id and customer.iban)  # collected by direct debit (payment means 59)
    return Party(name=customer.name, address_lines=tuple(line for line in lines if line.strip()), email=customer.email,
                 vat_id=customer.vat_id, street=customer.address, city=customer.city,
                 postal_code=customer.postal_code, country=code, state=customer.state,
                 electronic_address=customer.electronic_address, electronic_scheme=customer.electronic_scheme,
                 iban=customer.iban if mandate else "", bic=customer.bic if mandate else "",
                 mandate_id=customer.mandate_id if mandate else "", buyer_reference=customer.buyer_reference,
                 purchase_order=contract.purchase_order if contract else "",
                 einvoice=einvoice.value if einvoice else "")


def invoice_number(settings: Settings, seq: int) -> str:
    return f"{settings.invoice_prefix}{seq:06d}"


def credit_note_number(settings: Settings, seq: int) -> str:
    return f"{settings.credit_note_prefix}{seq:06d}"


def make_document(seq: int, document: Draft | CreditNote, inputs: Inputs, as_of: date, run_type: RunType) -> Invoice:
    """The invoice, or credit note, that is number seq of its series."""
    if isinstance(document, Draft):
        return make_invoice(seq, document, inputs, as_of, run_type)
    # A credit note goes to the parties of the invoice it credits, in its language; it is due at once.
    like = document.credited or make_invoice(seq, document.draft, inputs, as_of, run_type)
    return Invoice(
        number=credit_note_number(inputs.settings, seq),
        draft=document.draft,
        invoice_date=as_of,
        due_date=as_of,
        run_type=run_type,
        seller=like.seller,
        buyer=like.buyer,
        locale=like.locale,
        doc_type=DocType.CREDIT_NOTE,
        credits=document.credits,
        credits_date=document.credits_date,
        reason=document.reason,
    )


def make_invoice(seq: int, draft: Draft, inputs: Inputs, as_of: date, run_type: RunType) -> Invoice:
    """Invoice Date is the as-of date; Due Date adds the contract's payment terms."""
    contract = inputs.contracts[draft.contract_id]
    customer = inputs.customers[draft.customer_id]
    locale = customer.language or inputs.settings.locale  # the ledger keeps it: the invoice keeps its language
    return Invoice(
        number=invoice_number(inputs.settings, seq),
        draft=draft,
        invoice_date=as_of,
        due_date=as_of + timedelta(days=contract.payment_terms_days),
        run_type=run_type,
        seller=seller(inputs.settings, locale),
        buyer=buyer(customer, contract, inputs.settings, locale),
        locale=locale,
    )


@dataclass(frozen=True)
class Proposal:
    """What a manual generation would do for one contract."""

    contract_id: str
    cycle: Cycle | None = None
    draft: Draft | None = None
    existing: Invoice | None = None  # the cycle's live invoice, which only --replace may replace
    problem: str = ""  # why this contract cannot be billed at all

    def is_future(self, as_of: date) -> bool:
        return self.cycle is not None and self.cycle.scheduled > as_of


def unbillable(inputs: Inputs, set_aside: Mapping[str, list], contract_id: str) -> str:
    """Why the contract cannot be billed by hand at all; "" when it can."""
    contract = inputs.contracts.get(contract_id)
    if contract is None or contract_id in set_aside:
        why = set_aside[contract_id][0].one_line() if contract_id in set_aside else "not in the Contracts sheet"
        return f"Cannot bill {contract_id}: {why}"
    if not contract.active:
        return f"{contract_id} is Inactive: set its Status to Active first"
    return ""


def plan_manual(
    inputs: Inputs,
    set_aside: dict[str, list],
    live: dict[CycleKey, Invoice],
    settled: Collection[CycleKey],
    contract_ids: Iterable[str],
    cycle_day: date | None,
) -> list[Proposal]:
    """For each contract, the cycle containing cycle_day, or else its oldest cycle not settled,
    priced from the current data. A replacement takes the usage the replaced invoice
    carried plus any not yet invoiced up to the cycle's cutoff."""
    proposals = []
    live_by_contract = defaultdict(list)
    for (contract_id, _), invoice in live.items():
        live_by_contract[contract_id].append(invoice)
    for contract_id in dict.fromkeys(contract_ids):
        contract = inputs.contracts.get(contract_id)
        if why := unbillable(inputs, set_aside, contract_id):
            proposals.append(Proposal(contract_id, problem=why))
            continue
        if cycle_day is not None:
            cycle = cycle_containing(contract, cycle_day)
            if cycle is None:
                proposals.append(Proposal(contract_id, problem=f"{cycle_day} is outside the period of {contract_id}"))
                continue
        else:
            cycle = next((c for c in cycles(contract) if (contract_id, c.start) not in settled
                          and not billed_before(contract, c)), None)
            if cycle is None:
                proposals.append(Proposal(contract_id, problem=f"Every cycle of {contract_id} is billed already"))
                continue
        if billed_before(contract, cycle):
            proposals.append(Proposal(contract_id, problem=(
                f"The cycle {cycle.start} to {cycle.end} of {contract_id} was billed before billing_batch "
                f"(its Billed Through is {contract.billed_through}): it is never invoiced here")))
            continue
        existing = live.get((contract_id, cycle.start))
        on_other_invoices = {u for inv in live_by_contract[contract_id] if inv is not existing
                             for u in usage_ids(inv.draft)}
        usage = [u for u in inputs.usage.get(contract_id, ()) if u.usage_id not in on_other_invoices]
        proposals.append(Proposal(contract_id, cycle, draft_for(cycle, contract, inputs, usage), existing))
    return proposals


def differences(inputs: Inputs, set_aside: Collection[str], live: Iterable[Invoice]) -> dict[str, str]:
    """Invoice number -> how it differs from what the current data would bill for its cycle,
    with the same usage rows. Usage billed late on a later invoice is not a difference."""
    found = {}
    for invoice in live:
        if invoice.is_credit_note:  # its amounts are those of a draft negated
            continue
        d = invoice.draft
        contract = inputs.contracts.get(d.contract_id)
        if contract is None or d.contract_id in set_aside:
            continue
        cycle = cycle_containing(contract, d.cycle_start)
        if cycle is None or cycle.start != d.cycle_start:
            found[invoice.number] = f"{invoice.number}: its cycle is no longer in the contract's schedule."
            continue
        carried = usage_ids(d)
        usage = [u for u in inputs.usage.get(d.contract_id, ()) if u.usage_id in carried]
        now = draft_for(replace(cycle, usage_cutoff=date.max), contract, inputs, usage)
        # How usage is laid out in lines (Summary or Detail, the grouping) is not a charge: the rows
        # are compared, and the totals as the invoice's own usage lines make them.
        kept = [line for line in now.lines if line.kind not in CARRIED]
        kept += [line for line in d.lines if line.kind in (*CARRIED, LineKind.ADJUSTMENT)]
        customer = inputs.customers[contract.customer_id]
        kept_draft = make_draft(cycle, contract, customer, kept, Rules(inputs.products, inputs.settings.tax_rounding))
        if _charges(now) != _charges(d) or _totals(kept_draft) != _totals(d):
            found[invoice.number] = (
                f"{invoice.number} differs from what the current data would bill "
                f"(total {d.total} {d.currency}, now {now.total} {now.currency}); use generate --replace to reissue it."
            )
    return found


def usage_ids(draft: Draft) -> set[str]:
    """The usage rows the draft bills."""
    return {row.usage_id for line in draft.lines for row in line.usage_rows}


def _totals(draft: Draft) -> tuple:
    return draft.subtotal, draft.discount, draft.tax, draft.total


def _charges(draft: Draft) -> tuple:
    lines = tuple(sorted(
        (line.kind.value, line.product, line.period_start, line.period_end, line.quantity, line.unit_price,
         line.amount, line.subscription_id or "")
        for line in draft.lines if line.kind not in (*CARRIED, LineKind.ADJUSTMENT)
    ))
    rows = sorted((row.usage_id, row.quantity, row.unit_price) for line in draft.lines for row in line.usage_rows)
    return lines, rows, draft.currency
