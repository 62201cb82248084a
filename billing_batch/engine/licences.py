"""Microsoft's licence charges (Partner Center's NCE invoice reconciliation file) as the customer's lines. Pure.

Each charge is one line, at Microsoft's seats and charge period: priced at cost plus the contract's Licence
Markup (Microsoft's Subtotal x (1 + markup), rounded once), or at the Price List's price per seat per month
prorated over the charge period by Microsoft's day count: the days charged over the days of the charge cycle
(anchored on the subscription's start) they fall in. A refund (a negative Subtotal) takes its seats back: its
quantity is negative. Which invoice carries a charge is the usage rule: the first invoice made after the file
is read whose usage cut-off is on or after the charge's start (docs/decisions.md).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta

from billing_batch.errors import Problem, problem
from billing_batch.model import (
    BilledUsage,
    Contract,
    Inputs,
    Invoice,
    LicenceCharge,
    Line,
    LineKind,
    Price,
    Source,
    Subscription,
    Usage,
)
from billing_batch.money import round_money

ONE_DAY = timedelta(days=1)
UNIT_PLACES = Decimal("0.000001")  # a seat's price for a charge, as printed when the Subtotal does not divide
GROUPS = ("Charge Type", "Subscription ID")  # what the ledger keeps of a charge beside its usage row


def cycle_months(charge: LicenceCharge) -> int:
    """The months of the charge cycle: Monthly 1, Annual 12, upfront (blank) the whole term."""
    frequency = charge.billing_frequency.strip().casefold()
    if frequency.startswith("month"):
        return 1
    if frequency.startswith(("annual", "year")):
        return 12
    span = relativedelta(charge.term_end + ONE_DAY, charge.term_start)
    return max(span.years * 12 + span.months, 1)


def charge_cycle(charge: LicenceCharge) -> tuple[date, date, int]:
    """(start, end, months) of the charge cycle the charge's first day falls in, counted from the term's start."""
    months = cycle_months(charge)
    anchor = charge.term_start
    k = 0 if charge.start <= anchor else _months_between(anchor, charge.start) // months
    start = anchor + relativedelta(months=k * months)
    while start > charge.start:  # the anchor's day is missing in a short month
        k -= 1
        start = anchor + relativedelta(months=k * months)
    end = anchor + relativedelta(months=(k + 1) * months) - ONE_DAY
    while end < charge.start:
        k += 1
        start, end = end + ONE_DAY, anchor + relativedelta(months=(k + 1) * months) - ONE_DAY
    return start, end, months


def _months_between(a: date, b: date) -> int:
    return (b.year - a.year) * 12 + b.month - a.month


def price_of(sku_id: str, charge_type: str, contract: Contract, prices: Sequence[Price]) -> Decimal | None:
    """The Price List's price per seat per month of a charge of the SKU: the contract's own, else the one for every
    contract in its currency. None for a credit from Microsoft: an amount, not seats, passed on at cost plus markup."""
    if charge_type.casefold() == "customercredit":
        return None
    sku = sku_id.casefold()
    found = [p for p in prices if p.sku_id.casefold() == sku and p.currency == contract.currency
             and p.contract_id in ("", contract.contract_id)]
    return max(found, key=lambda p: p.contract_id != "").unit_price if found else None


def priced(charge: LicenceCharge, contract: Contract) -> tuple[Decimal, Decimal, int | None, int | None]:
    """(quantity, unit price per seat of the charge, months, full days) the customer is billed: at the charge's
    Price List price per month (months and full_days set), else at cost plus the contract's markup."""
    sign = Decimal(-1) if charge.refund else Decimal(1)
    seats = charge.quantity or Decimal(1)  # a credit of an amount: one of it
    if charge.price_per_month is not None:
        start, end, months = charge_cycle(charge)
        full_days = (end - start).days + 1
        days = (charge.end - charge.start).days + 1
        return sign * seats, charge.price_per_month * months * days / full_days, months, full_days
    per_seat = abs(charge.cost * (1 + contract.licence_markup)) / seats
    if per_seat != per_seat.quantize(UNIT_PLACES):  # the Subtotal does not divide: a rounding line carries the rest
        per_seat = per_seat.quantize(UNIT_PLACES)
    # as few places as it has (2.5070 and 2.507 are one price); never an exponent (1E+1)
    per_seat = per_seat.quantize(Decimal(1)) if per_seat == per_seat.to_integral_value() else per_seat.normalize()
    return sign * seats, per_seat, None, None


def charge_usage(charge: LicenceCharge, usage_id: str, contract: Contract, source: Source) -> Usage:
    """The charge as a usage row of the contract: billed once by its ID, like every usage row."""
    quantity, per_seat, months, full_days = priced(charge, contract)
    return Usage(usage_id, contract.contract_id, charge.start, charge.sku_name, description(charge), quantity,
                 per_seat, source, extra=(("Charge Type", charge.charge_type),
                                          ("Subscription ID", charge.subscription_id)),
                 licence=charge, months=months, full_days=full_days)


def description(charge: LicenceCharge) -> str:
    return f"{charge.charge_type} · {charge.subscription_id}"


def licence_line(row: Usage, contract: Contract) -> Line:
    """The line of one charge: its seats (negative: taken back) x the price of a seat, for the charge period."""
    charge = row.licence
    per_month = charge.price_per_month is not None
    unit_price = charge.price_per_month if per_month else row.unit_price
    if per_month:
        exact = row.quantity * unit_price * row.months * ((charge.end - charge.start).days + 1) / row.full_days
    else:  # Microsoft's Subtotal with its markup, rounded once (engine.pricing.by_hand prints any rest)
        exact = charge.cost * (1 + contract.licence_markup)
    billed = BilledUsage(row.usage_id, row.date, row.product, row.description, row.quantity, row.unit_price,
                         tuple(row.extra))
    return Line(kind=LineKind.LICENCE, product=row.product, description=row.description, period_start=charge.start,
                period_end=charge.end, quantity=row.quantity, unit_price=unit_price,
                amount=round_money(exact, contract.currency), prorated=False,
                subscription_id=charge.subscription_id, usage_id=row.usage_id, usage_rows=(billed,),
                months=row.months, full_days=row.full_days)


def hand_over(subscriptions: Mapping[str, tuple[Subscription, ...]],
              usage: Mapping[str, tuple[Usage, ...]]) -> tuple[dict[str, tuple[Subscription, ...]], dict[str, str]]:
    """The Subscriptions rows with a Partner Center Subscription ID, each ending the day before the first charge
    the licence file bills for that subscription (the file bills from then on); and, per licence usage ID, the
    note its line carries: the first charge of each such subscription says once that the row stopped."""
    first: dict[tuple[str, str], Usage] = {}
    for contract_id, rows in usage.items():
        for row in rows:
            if row.licence is not None:
                key = (contract_id, row.licence.subscription_id.casefold())
                if key not in first or (row.date, row.usage_id) < (first[key].date, first[key].usage_id):
                    first[key] = row
    changed: dict[str, tuple[Subscription, ...]] = dict(subscriptions)
    notes: dict[str, str] = {}
    for contract_id, subs in subscriptions.items():
        kept = []
        for sub in subs:
            row = first.get((contract_id, sub.partner_center_subscription_id.casefold())) \
                if sub.partner_center_subscription_id else None
            if row is not None:
                stop = row.date - ONE_DAY
                sub = replace(sub, end=min(sub.end, stop) if sub.end else stop)
                notes[row.usage_id] = sub.subscription_id
            kept.append(sub)  # ending before it starts, it bills nothing
        changed[contract_id] = tuple(kept)
    return changed, notes


def billed_twice(inputs: Inputs, invoices: Sequence[Invoice]) -> list[Problem]:
    """Where a Subscriptions row named by a Partner Center Subscription ID billed, on a live invoice, days the
    licence file now bills too, and no Adjustment will take them back (Mid-Term Changes: Flag Only): a problem
    setting the contract aside, rather than a double charge."""
    first: dict[tuple[str, str], date] = {}
    for contract_id, rows in inputs.usage.items():
        for row in rows:
            if row.licence is not None:
                key = (contract_id, row.licence.subscription_id.casefold())
                first[key] = min(first.get(key, date.max), row.date)
    typed = {(s.contract_id, s.subscription_id): s for subs in inputs.subscriptions.values() for s in subs
             if s.partner_center_subscription_id}
    found = []
    for invoice in invoices:
        if not invoice.is_live or invoice.is_credit_note:
            continue
        for line in invoice.draft.lines:
            sub = typed.get((invoice.draft.contract_id, line.subscription_id))
            if sub is None or line.kind is not LineKind.RECURRING:
                continue
            start = first.get((sub.contract_id, sub.partner_center_subscription_id.casefold()))
            if start is not None and line.period_end >= start:
                found.append(problem(
                    "BB175", sub.source, f"Subscription {sub.subscription_id} was billed on {invoice.number} for "
                    f"{max(start, line.period_start)} to {line.period_end}, and Partner Center's licence file bills "
                    f"subscription {sub.partner_center_subscription_id} from {start}: the same days twice. Contract "
                    f"{sub.contract_id} is set aside.", value=sub.partner_center_subscription_id,
                    contract_id=sub.contract_id))
                break
    return found
