"""The seat register: every licence subscription of each contract as periods of constant seats, made from
Microsoft's charges (Partner Center's licence file, inputs/licences.py). Pure.

Seats follow Microsoft's rows, per SubscriptionId, in time order: `new`, `renew` and `convert` open a period
at their seats (renew and convert with their new term); an `addQuantity`/`removeQuantity` pair ends the
period the day before (its refund row) and opens one at the seats of its positive row; `cancel` ends it and
opens one at 0 seats; a `cycleCharge` opens one only when its seats differ from the period's. Customer
credits change no seats. A period lasts to the day before the next change, else to its term's end, so the
seats of a month are the rows with From on or before its last day and To on or after its first.

Prices are per seat per month, in the contract's currency: Microsoft's is the cost of one seat over a
whole charge cycle (a period's first full-cycle charge, else its opening charge scaled from its days to
the cycle's), over the cycle's months; the customer's is the Price List's, else Microsoft's x (1 + Licence
Markup), as the invoice lines price them (engine/licences.py).
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing_batch.engine.licences import ONE_DAY, charge_cycle
from billing_batch.model import Contract, Inputs, LicenceCharge, Usage
from billing_batch.money import round_money

CANCELS = ("cancel", "cancelimmediate")
NO_SEATS = ("customercredit",)  # an amount credited, not seats
# The word a change shows; a seat change shows its difference (+2, -1) instead.
WORDS = {"new": "new", "renew": "renewed", "convert": "converted", "cancel": "cancelled",
         "cancelimmediate": "cancelled"}
# Charges of one day, in the order they happen: the term's charge, then a conversion or seat change, a cancel last.
DAY_ORDER = {"new": 0, "renew": 1, "cyclecharge": 2, "convert": 3, "addquantity": 4, "removequantity": 4,
             "cancel": 6, "cancelimmediate": 6}
FIRST_SEEN = "first seen"  # the file starts after the purchase: the seats before are not known


@dataclass(frozen=True, slots=True)
class RegisterRow:
    """One period of constant seats of one subscription (a row of the Seat Register sheet)."""

    contract_id: str
    customer: str
    tenant: str
    subscription_id: str
    sku_id: str  # ProductId:SkuId, as the Price List names it
    sku: str
    term: str  # TermAndBillingCycle
    billing_frequency: str
    term_start: date
    term_end: date
    start: date  # From..To, inclusive
    end: date
    seats: Decimal
    change: str  # new, renewed, converted, cancelled, or the difference in seats (+2, -1)
    charge_type: str  # Microsoft's ChargeType of the charge that set the seats
    changed_on: date  # its ChargeStartDate
    price_per_month: Decimal | None  # the customer's price of a seat for a month; None at 0 seats
    cost_per_month: Decimal | None  # Microsoft's
    currency: str
    usage_id: str  # the charge that set the seats: the invoice carrying it is Billed On


@dataclass
class _Period:
    opening: Usage  # the charge that set the seats
    start: date
    end: date
    seats: Decimal
    change: str


def register(charges: Mapping[str, Sequence[Usage]], inputs: Inputs) -> list[RegisterRow]:
    """The register of every contract's licence charges (Licences.charges), by contract, subscription, From."""
    rows: list[RegisterRow] = []
    for contract_id in sorted(charges):
        contract = inputs.contracts.get(contract_id)
        if contract is None:
            continue
        customer = inputs.customers.get(contract.customer_id)
        by_subscription: dict[str, list[Usage]] = defaultdict(list)
        for usage in charges[contract_id]:
            if usage.licence is not None and usage.licence.charge_type.casefold() not in NO_SEATS:
                by_subscription[usage.licence.subscription_id.casefold()].append(usage)  # IDs without case
        for key in sorted(by_subscription):
            rows += _rows(by_subscription[key], contract, customer.name if customer else "")
    return rows


def _rows(usages: list[Usage], contract: Contract, customer: str) -> list[RegisterRow]:
    usages = sorted(usages, key=_file_order)
    periods = _periods(usages)
    rows = []
    for period in periods:
        charge = period.opening.licence
        cost = price = None
        if period.seats:
            priced, cycle = _priced(period, usages)
            cost = _per_seat_per_month(priced.licence, cycle)
            if priced.licence.price_per_month is not None:
                price = priced.licence.price_per_month  # the Price List's, as typed
            elif cost is not None:
                price = round_money(cost * (1 + contract.licence_markup), contract.currency)
            cost = None if cost is None else round_money(cost, contract.currency)
        rows.append(RegisterRow(
            contract.contract_id, customer, charge.tenant, charge.subscription_id, charge.sku_id, charge.sku_name,
            charge.term, charge.billing_frequency, charge.term_start, charge.term_end, period.start, period.end,
            period.seats, period.change, charge.charge_type, charge.start, price, cost, contract.currency,
            period.opening.usage_id))
    return rows


def _periods(usages: list[Usage]) -> list[_Period]:
    """The subscription's periods of constant seats, from its charges in file order: each day's charges
    grouped by ChargeType, refunds before the charges of the new seats."""
    groups: dict[tuple[date, str], list[Usage]] = defaultdict(list)
    for usage in usages:
        groups[(usage.licence.start, usage.licence.charge_type.casefold())].append(usage)
    periods: list[_Period] = []
    dropped: _Period | None = None  # a period a change on its first day emptied: the next one says both

    def open_period(opening: Usage, seats: Decimal, word: str | None, before: Decimal | None) -> None:
        nonlocal dropped
        charge = opening.licence
        change = word or (FIRST_SEEN if before is None else _difference(seats - before))
        if word in (WORDS["renew"], WORDS["convert"]) and before is not None and seats != before:
            change = f"{word}, {_difference(seats - before)}"  # at other seats than before
        if dropped is not None and dropped.start == charge.start:
            change = f"{dropped.change}, {change}"
        dropped = None
        periods.append(_Period(opening, charge.start, max(charge.term_end, charge.start), seats, change))

    def close(day: date) -> Decimal | None:
        """End the open period the day before day; the seats it had (None: no period yet)."""
        nonlocal dropped
        if not periods:
            return None
        last = periods[-1]
        if day - ONE_DAY < last.start:  # nothing left of it: the change on its first day replaces it
            dropped = periods.pop()
        else:
            last.end = min(last.end, day - ONE_DAY)
        return last.seats

    for (day, kind), group in sorted(groups.items(), key=lambda g: (g[0][0], DAY_ORDER.get(g[0][1], 5),
                                                                    _file_order(g[1][0]))):
        refunds = [u for u in group if u.licence.refund]
        charged = [u for u in group if not u.licence.refund]
        current = periods[-1] if periods else None
        if kind == "cyclecharge" and not refunds and current is not None and all(
                u.licence.quantity == current.seats and u.licence.term_start == current.opening.licence.term_start
                for u in charged):
            continue  # the next cycle of the term at the same seats
        before = close(day) if periods else None
        if before is None and dropped is not None and dropped.start == day:
            before = dropped.seats
        if before is None and refunds:
            before = sum((u.licence.quantity for u in refunds), Decimal(0))  # what Microsoft refunded
        word = WORDS.get(kind)
        if not charged:  # a cancel, or a reduction whose charge of the new seats is missing
            seats = Decimal(0) if kind in CANCELS else max((before or Decimal(0)) - sum(
                (u.licence.quantity for u in refunds), Decimal(0)), Decimal(0))
            open_period(refunds[0], seats, word, before)
            continue
        for usage in charged:  # two charges of one day and type: two changes, in the file's order
            open_period(usage, usage.licence.quantity, word, before)
            before = usage.licence.quantity
            if usage is not charged[-1]:
                close(day)
    return periods


def _file_order(usage: Usage) -> tuple:
    return usage.licence.start, usage.source.file, usage.source.row or 0


def _difference(seats: Decimal) -> str:
    if seats == 0:
        return "±0"
    whole = seats == seats.to_integral_value()
    return f"{int(seats):+d}" if whole else f"{seats:+f}"


def _priced(period: _Period, usages: list[Usage]) -> tuple[Usage, tuple[date, date, int]]:  # usages in file order
    """The charge a period's prices come from, with its charge cycle: the period's first charge of a whole
    cycle at its seats, in its term (a part cycle's Subtotal is rounded down per seat, so scaling it up is less
    exact), else its opening charge."""
    term = period.opening.licence.term_start
    for usage in usages:
        charge = usage.licence
        if not charge.refund and charge.quantity == period.seats and charge.term_start == term \
                and period.start <= charge.start <= period.end:
            cycle = charge_cycle(charge)
            if cycle[:2] == (charge.start, charge.end):
                return usage, cycle
    return period.opening, charge_cycle(period.opening.licence)


def _per_seat_per_month(charge: LicenceCharge, cycle: tuple[date, date, int]) -> Decimal | None:
    """Microsoft's cost of one seat for a month: the charge's Subtotal per seat, over the share of its cycle
    it covers, over the cycle's months. Exact (the caller rounds)."""
    if not charge.quantity or charge.refund:
        return None
    start, end, months = cycle
    days = (charge.end - charge.start).days + 1
    full_days = (end - start).days + 1
    return charge.cost / charge.quantity * full_days / days / months
