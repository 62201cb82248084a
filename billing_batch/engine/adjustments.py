"""Bill the difference: what a change to the data makes a cycle already billed bill now, as
Adjustment lines for the contract's next invoice. Pure.

A cycle is compared charge by charge: each subscription's recurring or one-time charge, and each
usage row its invoice carried (by Usage ID, with its current quantity and price). What the cycle
carried for a charge is its invoice's line plus every Adjustment line for it since, and the charge
as last billed (the latest Adjustment's, else the invoice line's) says what changed."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from billing_batch.engine.cycles import billed_before, cycle_containing
from billing_batch.model import (
    Adjusted,
    Charge,
    Contract,
    Cycle,
    Inputs,
    Invoice,
    InvoiceStatus,
    Line,
    LineKind,
    Usage,
)
from billing_batch.money import round_money
from billing_batch.engine.pricing import RECURRING_KEY, by_hand, price_cycle
from billing_batch.engine.tax import Rules

CycleKey = tuple[str, date]  # (contract ID, cycle start)
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Pending:
    """What the current data bills differently from what was billed, per contract."""

    lines: dict[str, tuple[Line, ...]] = field(default_factory=dict)  # contract ID -> Adjustment lines
    gone: dict[str, str] = field(default_factory=dict)  # invoice number -> why its cycle cannot be compared

    def notes(self) -> dict[str, str]:
        """Invoice number -> what is pending for it, for the schedule and review."""
        owed: dict[str, Decimal] = defaultdict(Decimal)
        for lines in self.lines.values():
            for line in lines:
                if line.corrects:
                    owed[line.corrects] += line.amount
        found = {number: (f"{number} differs from what the current data would bill: an adjustment of {amount} "
                          "goes on the contract's next invoice.") for number, amount in owed.items()}
        return found | self.gone


def cycle_invoices(invoices: Iterable[Invoice]) -> dict[CycleKey, Invoice]:
    """The live document of each invoiced cycle (Invoice.is_live)."""
    return {(i.draft.contract_id, i.draft.cycle_start): i for i in invoices if i.is_live}


def pending(inputs: Inputs, set_aside: Collection[str], invoices: Sequence[Invoice],
            empty: Collection[CycleKey]) -> Pending:
    """Every adjustment the current data calls for: for each cycle of an active contract that was
    invoiced or found empty, and not billed before billing_batch, the difference between what the
    data bills for it now and what its invoice and earlier adjustments carried. invoices: every
    invoice in the ledger, in number order."""
    # A Credited invoice, and its Adjustment lines, no longer bill anything; a credit note of an invoice
    # is a deliberate reduction, which an adjustment must not undo (docs/decisions.md).
    live = [i for i in invoices if i.status not in (InvoiceStatus.REPLACED, InvoiceStatus.CREDITED)
            and not (i.is_credit_note and i.credits)]
    billed = cycle_invoices(live)
    earlier: dict[CycleKey, list[Line]] = defaultdict(list)
    for invoice in live:
        for line in _as_billed(invoice):
            if line.adjusted is not None:
                earlier[(line.adjusted.contract_id, line.adjusted.cycle_start)].append(line)
    # A cycle whose invoice was credited in full, and not billed again, stays settled (workspace.State.settled).
    credited = {(i.draft.contract_id, i.draft.cycle_start) for i in invoices if i.status is InvoiceStatus.CREDITED}
    found: dict[str, list[Line]] = defaultdict(list)
    gone = {}
    for key in sorted(set(billed) | set(empty) | (set(earlier) - credited)):
        contract_id, start = key
        contract = inputs.contracts.get(contract_id)
        if contract is None or not contract.active or contract_id in set_aside:
            continue
        invoice = billed.get(key)
        cycle = cycle_containing(contract, start)
        if cycle is None or cycle.start != start:
            if invoice is not None:
                gone[invoice.number] = f"{invoice.number}: its cycle is no longer in the contract's schedule."
            continue
        if billed_before(contract, cycle):
            continue
        found[contract_id] += cycle_adjustments(cycle, contract, inputs, invoice, earlier.get(key, []))
    return Pending({cid: tuple(lines) for cid, lines in found.items() if lines}, gone)


def cycle_adjustments(cycle: Cycle, contract: Contract, inputs: Inputs, invoice: Invoice | None,
                      earlier: Sequence[Line]) -> list[Line]:
    """The Adjustment lines that bring what the cycle carried (its invoice, if any, and the earlier
    Adjustment lines for it) to what the data bills for it now."""
    number = invoice.number if invoice else None
    carried_lines = _as_billed(invoice) if invoice else []
    last: dict[str, Charge] = {}  # charge key -> as last billed
    paid: dict[str, Decimal] = defaultdict(Decimal)  # charge key -> every amount carried for it
    for line in carried_lines:
        if line.kind in (LineKind.RECURRING, LineKind.ONE_TIME) and line.subscription_id:
            charge = _charge_of(line)
            last[charge.key], paid[charge.key] = charge, paid[charge.key] + line.amount
        for row in line.usage_rows:
            last[f"Usage {row.usage_id}"] = Charge(f"Usage {row.usage_id}", row.product, row.description, row.date,
                                                   row.date, row.quantity, row.unit_price, row.amount)
    usage_paid = sum((line.amount for line in carried_lines if line.kind in (LineKind.USAGE, LineKind.LICENCE)),
                     Decimal(0))
    for line in earlier:
        key = line.adjusted.charge.key
        last[key] = line.adjusted.charge
        if key.startswith("Usage "):
            usage_paid += line.amount
        else:
            paid[key] += line.amount
    now = subscription_charges(cycle, contract, inputs)
    lines = []
    for key in sorted(set(now) | {k for k in last if not k.startswith("Usage ")}):
        target = now.get(key)
        difference = (target.amount if target else Decimal(0)) - paid[key]
        if difference:
            lines += _lines(last.get(key), target, difference, paid[key], contract, number, cycle)
    if invoice is not None:
        lines += _usage_adjustments(invoice, contract, inputs, last, usage_paid, number, cycle)
    return [checked for line in lines for checked in by_hand(line, contract.currency)]


def _as_billed(invoice: Invoice) -> list[Line]:
    """Its lines as they bill: a credit note's (a cycle or adjustments below zero) are stored negated."""
    if invoice.is_credit_note:
        return [replace(line, quantity=-line.quantity, amount=-line.amount) for line in invoice.draft.lines]
    return list(invoice.draft.lines)


def subscription_charges(cycle: Cycle, contract: Contract, inputs: Inputs) -> dict[str, Charge]:
    """The recurring and one-time charges the data bills for the cycle, by charge key."""
    customer = inputs.customers[contract.customer_id]
    draft = price_cycle(cycle, contract, customer, inputs.subscriptions.get(contract.contract_id, ()), (),
                        Rules(inputs.products, inputs.settings.tax_rounding))
    return {(c := _charge_of(line)).key: c for line in draft.lines if line.subscription_id}


def _charge_of(line: Line) -> Charge:
    return Charge(f"{line.kind.value} {line.subscription_id}", line.product, line.description, line.period_start,
                  line.period_end, line.quantity, line.unit_price, line.amount)


def _usage_adjustments(invoice: Invoice, contract: Contract, inputs: Inputs, last: dict[str, Charge],
                       usage_paid: Decimal, number: str, cycle: Cycle) -> list[Line]:
    """The usage rows the invoice carried, at their current quantity and price (a row gone from the
    Usage sheet bills nothing). The cycle owes what the invoice's own usage lines would total with
    the rows as they are now, each line rounding its rows once; each changed row's line gets its
    exact change rounded, the last one also what the rounding leaves, so the cycle's total is exact."""
    rows: dict[str, Usage] = {u.usage_id: u for u in inputs.usage.get(contract.contract_id, ())}
    owed = Decimal(0)
    changed: list[tuple[Charge | None, Charge]] = []  # (as now, as last billed)
    for line in invoice.draft.lines:
        exact = Decimal(0)
        for billed in line.usage_rows:
            row = rows.get(billed.usage_id)
            now = None if row is None else Charge(f"Usage {row.usage_id}", row.product, row.description, row.date,
                                                  row.date, row.quantity, row.unit_price,
                                                  row.quantity * row.unit_price)
            exact += now.amount if now else Decimal(0)
            before = last[f"Usage {billed.usage_id}"]
            if now is None and not before.removed or now is not None and (
                    before.removed or (now.quantity, now.unit_price) != (before.quantity, before.unit_price)):
                changed.append((now, before))
        if line.usage_rows:
            owed += round_money(exact, contract.currency)
    difference = owed - usage_paid
    if not changed:
        return []
    amounts = [round_money((now.amount if now else 0) - (0 if before.removed else before.amount), contract.currency)
               for now, before in changed]
    amounts[-1] += difference - sum(amounts)
    lines = []
    for (now, before), amount in zip(changed, amounts):
        if amount:
            lines += _lines(before, now, amount, None, contract, number, cycle,
                            usage_id=before.key.removeprefix("Usage "))
    return lines


def _lines(before: Charge | None, now: Charge | None, difference: Decimal, paid: Decimal | None,
           contract: Contract, number: str | None, cycle: Cycle, usage_id: str | None = None) -> list[Line]:
    """The Adjustment line(s) for one charge: one line saying what changed where a change is one
    thing (the days, the quantity or the price), else the charge as billed reversed (paid: what was
    billed for it; None for a usage row) and billed anew. What is taken back has a negative quantity,
    so that each line's quantity x price (x the cycle's months x its days of the full cycle's, for a
    price per month) is its amount; cycle_adjustments adds a line of the rounding where it is not."""
    if before is not None and before.removed:
        before = None
    full_days = (cycle.full_end - cycle.start).days + 1

    def line(charge: Charge, start: date, end: date, quantity: Decimal, unit_price: Decimal, amount: Decimal,
             after: Charge) -> Line:
        sub_id = None if usage_id else charge.key.split(" ", 1)[1]
        monthly = charge.key.startswith(RECURRING_KEY)
        return Line(LineKind.ADJUSTMENT, charge.product, charge.description, start, end, quantity, unit_price,
                    amount, subscription_id=sub_id, usage_id=usage_id, corrects=number,
                    adjusted=Adjusted(contract.contract_id, cycle.start, after),
                    months=contract.frequency.months if monthly else None, full_days=full_days if monthly else None)

    if before is None:  # a new charge
        return [line(now, now.period_start, now.period_end, now.quantity, now.unit_price, difference, now)]
    if now is None:  # a charge gone: its quantity taken back
        return [line(before, before.period_start, before.period_end, -before.quantity, before.unit_price,
                     difference, replace(before, removed=True))]
    same_price, same_quantity = now.unit_price == before.unit_price, now.quantity == before.quantity
    same_period = (now.period_start, now.period_end) == (before.period_start, before.period_end)
    # days added at one end, or taken off: then the quantity is negative
    longer = now.period_end - now.period_start > before.period_end - before.period_start
    days_quantity = now.quantity if longer else -now.quantity
    if same_price and same_quantity and now.period_start == before.period_start and not same_period:
        start, end = sorted((now.period_end, before.period_end))
        return [line(now, start + ONE_DAY, end, days_quantity, now.unit_price, difference, now)]
    if same_price and same_quantity and now.period_end == before.period_end and not same_period:
        start, end = sorted((now.period_start, before.period_start))
        return [line(now, start, end - ONE_DAY, days_quantity, now.unit_price, difference, now)]
    if same_period and same_price:
        return [line(now, now.period_start, now.period_end, now.quantity - before.quantity, now.unit_price,
                     difference, now)]
    if same_period and same_quantity:
        return [line(now, now.period_start, now.period_end, now.quantity, now.unit_price - before.unit_price,
                     difference, now)]
    if paid is None:  # a usage row: its exact amount as billed, rounded as a line of its own would be
        paid = round_money(before.amount, contract.currency)
    return [line(before, before.period_start, before.period_end, -before.quantity, before.unit_price, -paid,
                 replace(before, removed=True)),
            line(now, now.period_start, now.period_end, now.quantity, now.unit_price, difference + paid, now)]
