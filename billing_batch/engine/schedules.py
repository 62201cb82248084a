"""Billing schedules: one row per cycle, derived from the contracts and the ledger. Pure."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace
from datetime import date

from billing_batch.engine.cycles import billed_before, listed_cycles
from billing_batch.errors import Problem
from billing_batch.model import Contract, Cycle, Inputs, Invoice, InvoiceStatus, Usage

PENDING, ERROR, INVOICED, BILLED, NOTHING = "Pending", "Error", "Invoiced", "Billed", "Nothing to bill"
CREDITED = "Credited"  # its invoice was credited in full by hand, and no other bills the cycle
BILLED_BEFORE = "Billed before billing_batch"  # the cycle ends on or before the contract's Billed Through


@dataclass(frozen=True)
class ScheduleRow:
    schedule_id: str
    contract_id: str
    customer_id: str
    customer: str
    cycle_start: date | None
    cycle_end: date | None
    scheduled: date | None
    status: str  # Active or Inactive
    reason: str  # Pending, Error, Invoiced, Billed, Credited, Nothing to bill, Billed before billing_batch
    invoice: Invoice | None = None
    run_type: str = ""
    run_date: date | None = None
    message: str = ""


def schedule_rows(
    inputs: Inputs,
    set_aside: dict[str, list[Problem]],
    broken: dict[str, Problem],
    invoices: Iterable[Invoice],
    empty: dict[tuple[str, date], date],
    as_of: date,
    differs: dict[str, str] | None = None,
    billed: Collection[str] = (),
) -> list[ScheduleRow]:
    """differs: invoice number -> how it differs from what the current data would bill.
    billed: invoices sent or synced, whose cycles show Billed rather than Invoiced."""
    differs = differs or {}
    live: dict[tuple[str, date], Invoice] = {}
    # in number order: the cycle's live document, else its last Credited invoice (change-log invoices are no cycle's)
    for i in (i for i in invoices if not i.draft.change_log):
        key = (i.draft.contract_id, i.draft.cycle_start)
        if i.is_live or i.status is InvoiceStatus.CREDITED and not (key in live and live[key].is_live):
            live[key] = i
    rows = []
    for contract in inputs.contracts.values():
        customer = inputs.customers.get(contract.customer_id)
        name = customer.name if customer else ""
        problems = set_aside.get(contract.contract_id, [])
        for cycle in listed_cycles(contract, as_of):
            key = (contract.contract_id, cycle.start)
            invoice = live.pop(key, None)
            if invoice is None and not contract.active:
                continue  # an inactive contract's history is its invoices alone
            if invoice is None and billed_before(contract, cycle):
                rows.append(_billed_before_row(contract, name, cycle, inputs.usage.get(contract.contract_id, ())))
                continue
            rows.append(_row(contract, name, cycle, invoice, empty.get(key), problems, as_of, differs))
    for contract_id, p in broken.items():
        rows.append(ScheduleRow(contract_id, contract_id, "", "", None, None, None, "Active", ERROR,
                                message=_messages(set_aside.get(contract_id, [p]))))
    # invoiced cycles no longer drawn from the workbook (a contract shortened, removed or far ahead)
    for invoice in live.values():
        d = invoice.draft
        rows.append(ScheduleRow(
            d.schedule_id, d.contract_id, d.customer_id, d.customer_name,
            d.cycle_start, d.cycle_end, d.scheduled, "Inactive", _invoiced(invoice), invoice,
            invoice.run_type.value, invoice.invoice_date, differs.get(invoice.number, ""),
        ))
    rows.sort(key=lambda r: (r.contract_id, r.cycle_start or date.min))
    return [replace(r, reason=BILLED) if r.reason == INVOICED and r.invoice.number in billed else r for r in rows]


def _invoiced(invoice: Invoice) -> str:
    return CREDITED if invoice.status is InvoiceStatus.CREDITED else INVOICED


def _common(contract: Contract, customer: str, cycle: Cycle) -> dict:
    return dict(
        schedule_id=cycle.schedule_id, contract_id=contract.contract_id, customer_id=contract.customer_id,
        customer=customer, cycle_start=cycle.start, cycle_end=cycle.end, scheduled=cycle.scheduled,
    )


def _billed_before_row(contract: Contract, customer: str, cycle: Cycle, usage: tuple[Usage, ...]) -> ScheduleRow:
    """A cycle billed outside billing_batch; its usage rows are left out, and counted so nobody wonders."""
    on = lambda u: u.date  # noqa: E731 - usage is in date order
    left_out = bisect_right(usage, cycle.end, key=on) - bisect_left(usage, cycle.start, key=on)
    message = (f"{left_out} usage row(s) dated in this cycle not billed: the Billed Through "
               f"{contract.billed_through} says they were billed before billing_batch.") if left_out else ""
    return ScheduleRow(**_common(contract, customer, cycle), status="Inactive", reason=BILLED_BEFORE, message=message)


def _row(contract: Contract, customer: str, cycle: Cycle, invoice: Invoice | None, empty_on: date | None,
         problems: list[Problem], as_of: date, differs: dict[str, str]) -> ScheduleRow:
    common = _common(contract, customer, cycle)
    if invoice is not None:
        return ScheduleRow(**common, status="Inactive", reason=_invoiced(invoice), invoice=invoice,
                           run_type=invoice.run_type.value, run_date=invoice.invoice_date,
                           message=differs.get(invoice.number, ""))
    if empty_on is not None:
        return ScheduleRow(**common, status="Inactive", reason=NOTHING, run_type="Automatic", run_date=empty_on)
    if problems and cycle.scheduled <= as_of:
        return ScheduleRow(**common, status="Active", reason=ERROR, message=_messages(problems))
    return ScheduleRow(**common, status="Active", reason=PENDING)


def _messages(problems: list[Problem]) -> str:
    return "\n".join(f"{p.source}: {p.one_line()}" for p in problems)
