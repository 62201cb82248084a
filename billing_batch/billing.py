"""The billing run: propose every due cycle, subtract what is settled, bill the rest. Pure."""
from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from billing_batch.cycles import due_cycles
from billing_batch.model import (
    Contract,
    Customer,
    Cycle,
    Draft,
    Inputs,
    Invoice,
    Party,
    RunType,
    Settings,
    Usage,
)
from billing_batch.pricing import price_cycle

CycleKey = tuple[str, date]  # (contract ID, cycle start)


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
) -> Plan:
    """What a run as of as_of bills: every due cycle of every active contract that is not
    set aside and not settled (invoiced or found empty), numbered by scheduled date,
    contract and cycle start."""
    due = sorted(
        ((cycle, contract) for contract in inputs.contracts.values()
         if contract.active and contract.contract_id not in set_aside
         for cycle in due_cycles(contract, as_of)
         if (contract.contract_id, cycle.start) not in settled),
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
        if draft.is_empty:
            empty.append(cycle)
            continue
        drafts.append(draft)
        taken = {line.usage_id for line in draft.lines if line.usage_id}
        usage[:] = [u for u in usage if u.usage_id not in taken]
    return Plan(tuple(drafts), tuple(empty))


def draft_for(cycle: Cycle, contract: Contract, inputs: Inputs, unbilled_usage: Iterable[Usage]) -> Draft:
    customer = inputs.customers[contract.customer_id]
    subscriptions = inputs.subscriptions.get(contract.contract_id, ())
    return price_cycle(cycle, contract, customer, subscriptions, unbilled_usage)


def seller(settings: Settings) -> Party:
    return Party(
        name=settings.company_name,
        address_lines=tuple(settings.company_address.splitlines()),
        email=settings.company_email,
        tax_id=settings.tax_id,
        bank_details=settings.bank_details,
    )


def buyer(customer: Customer) -> Party:
    town = " ".join(part for part in (customer.postal_code, customer.city) if part)
    lines = [*customer.address.splitlines(), town, customer.country]
    return Party(name=customer.name, address_lines=tuple(line for line in lines if line.strip()), email=customer.email)


def invoice_number(settings: Settings, seq: int) -> str:
    return f"{settings.invoice_prefix}{seq:06d}"


def make_invoice(seq: int, draft: Draft, inputs: Inputs, as_of: date, run_type: RunType) -> Invoice:
    """Invoice Date is the as-of date; Due Date adds the contract's payment terms."""
    contract = inputs.contracts[draft.contract_id]
    return Invoice(
        number=invoice_number(inputs.settings, seq),
        draft=draft,
        invoice_date=as_of,
        due_date=as_of + timedelta(days=contract.payment_terms_days),
        run_type=run_type,
        seller=seller(inputs.settings),
        buyer=buyer(inputs.customers[draft.customer_id]),
        locale=inputs.settings.locale,
    )
