"""The lines and totals of one cycle's invoice. Pure."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal

from billing_batch.model import (
    BilledUsage,
    ChargeType,
    Contract,
    Customer,
    Cycle,
    Draft,
    Line,
    LineKind,
    Subscription,
    Usage,
    UsageLines,
)
from billing_batch.money import round_money
from billing_batch.engine.licences import licence_line
from billing_batch.engine.tax import Rules, vat_groups, with_tax

RECURRING_KEY = f"{LineKind.RECURRING.value} "  # how the key of a subscription's recurring charge begins


def per_month(line: Line) -> bool:
    """Its unit price is per month: a recurring charge's, a licence's from the Price List, or that of an
    Adjustment of a recurring charge."""
    return line.kind is LineKind.RECURRING or (line.kind is LineKind.LICENCE and line.months is not None) or (
        line.kind is LineKind.ADJUSTMENT and line.adjusted is not None
        and line.adjusted.charge.key.startswith(RECURRING_KEY))


def exact_amount(line: Line) -> Decimal | None:
    """What the line bills before rounding, from the factors it prints: quantity x unit price, and for a
    price per month x months x days / full_days. None where the line holds no such factors: a sum
    (quantity 0: a credit of an amount, a rounding), or a price per month issued before the ledger kept
    its months (release 0.3.0 and earlier)."""
    if not line.quantity:
        return None
    if line.months is not None and line.full_days:
        # the order of the operations pricing has always used, so amounts billed before are made again
        return line.quantity * line.unit_price * line.months * line.days / line.full_days
    return None if per_month(line) else line.quantity * line.unit_price


def by_hand(line: Line, currency: str) -> tuple[Line, ...]:
    """The line, such that its printed factors make its amount rounded once: where the amount is not
    their product (a difference of two rounded amounts, what is left of a line after earlier credits),
    the line at that product and a line of the rest beside it, a sum (quantity 0) for the same charge."""
    exact = exact_amount(line)
    if exact is None or (rounded := round_money(exact, currency)) == line.amount:
        return (line,)
    rest = line.amount - rounded
    return (replace(line, amount=rounded),
            replace(line, quantity=Decimal(0), unit_price=rest, amount=rest, prorated=False, usage_rows=(),
                    months=None, full_days=None))


def recurring_line(sub: Subscription, cycle: Cycle, contract: Contract) -> Line | None:
    """Quantity x monthly price x months in the cycle, prorated by the days active
    over the days of the full, uncut cycle."""
    start = max(sub.start, cycle.start)
    end = min(sub.end, cycle.end) if sub.end is not None else cycle.end
    if start > end:
        return None
    active_days = (end - start).days + 1
    full_days = (cycle.full_end - cycle.start).days + 1
    exact = sub.quantity * sub.unit_price * contract.frequency.months * active_days / full_days
    return Line(
        kind=LineKind.RECURRING,
        product=sub.product,
        description=sub.description,
        period_start=start,
        period_end=end,
        quantity=sub.quantity,
        unit_price=sub.unit_price,
        amount=round_money(exact, contract.currency),
        prorated=active_days != full_days,
        subscription_id=sub.subscription_id,
        months=contract.frequency.months,
        full_days=full_days,
    )


def one_time_line(sub: Subscription, cycle: Cycle, contract: Contract) -> Line | None:
    """Billed once, on the cycle that contains the subscription's Start Date."""
    if not cycle.start <= sub.start <= cycle.end:
        return None
    return Line(
        kind=LineKind.ONE_TIME,
        product=sub.product,
        description=sub.description,
        period_start=sub.start,
        period_end=sub.start,
        quantity=sub.quantity,
        unit_price=sub.unit_price,
        amount=round_money(sub.quantity * sub.unit_price, contract.currency),
        subscription_id=sub.subscription_id,
    )


def billed_row(row: Usage, group_by: tuple[str, ...]) -> BilledUsage:
    return BilledUsage(row.usage_id, row.date, row.product, row.description, row.quantity, row.unit_price,
                       tuple((column, row.value(column)) for column in group_by))


def usage_line(row: Usage, contract: Contract) -> Line:
    """Detail: one line per usage row, as release 0.1.0 billed it."""
    return Line(
        kind=LineKind.USAGE,
        product=row.product,
        description=row.description,
        period_start=row.date,
        period_end=row.date,
        quantity=row.quantity,
        unit_price=row.unit_price,
        amount=round_money(row.quantity * row.unit_price, contract.currency),
        usage_id=row.usage_id,
        usage_rows=(billed_row(row, contract.usage_group_by),),
    )


def summary_lines(rows: Iterable[Usage], contract: Contract) -> list[Line]:
    """Summary: one line per group of rows with the same values in the contract's Usage Group By
    columns and the same Unit Price, in order of those values. The line's quantity is the rows'
    total and its amount that total x the price, rounded once; its period runs from the first
    usage date to the last. Its Product is the first group value, its Description the others."""
    groups: dict[tuple, list[BilledUsage]] = {}
    for row in rows:
        billed = billed_row(row, contract.usage_group_by)
        groups.setdefault((tuple(v for _, v in billed.groups), row.unit_price), []).append(billed)
    lines = []
    for (values, unit_price), members in sorted(groups.items()):
        quantity = sum((r.quantity for r in members), Decimal(0))
        lines.append(Line(
            kind=LineKind.USAGE,
            product=values[0] if values else "",
            description=" – ".join(v for v in values[1:] if v),
            period_start=min(r.date for r in members),
            period_end=max(r.date for r in members),
            quantity=quantity,
            unit_price=unit_price,
            amount=round_money(quantity * unit_price, contract.currency),
            usage_rows=tuple(members),
        ))
    return lines


def price_cycle(
    cycle: Cycle,
    contract: Contract,
    customer: Customer,
    subscriptions: Iterable[Subscription],
    unbilled_usage: Iterable[Usage],
    tax_rules: Rules = Rules(),
) -> Draft:
    """The draft invoice of a cycle. unbilled_usage holds the contract's usage not yet
    on any live invoice; the rows dated on or before the cycle's cutoff, and after the
    contract's Billed Through, are taken."""
    subscriptions = tuple(subscriptions) if not cycle.closing else ()  # a closing cycle bills usage only
    line_makers = (
        (ChargeType.RECURRING, recurring_line),
        (ChargeType.ONE_TIME, one_time_line),
    )
    lines = [
        line
        for charge_type, make in line_makers
        for sub in subscriptions
        if sub.charge_type is charge_type and (line := make(sub, cycle, contract)) is not None
    ]
    # usage dated on or before the Billed Through was billed outside billing_batch
    billed_through = contract.billed_through or date.min
    usage = sorted(
        (row for row in unbilled_usage if billed_through < row.date <= cycle.usage_cutoff),
        key=lambda row: (row.date, row.usage_id),
    )
    lines += [part for row in usage if row.licence is not None for part in by_hand(licence_line(row, contract),
                                                                                   contract.currency)]
    usage = [row for row in usage if row.licence is None]
    if contract.usage_lines is UsageLines.DETAIL:
        lines += [usage_line(row, contract) for row in usage]
    else:
        lines += summary_lines(usage, contract)
    return make_draft(cycle, contract, customer, lines, tax_rules)


def make_draft(cycle: Cycle, contract: Contract, customer: Customer, lines: list[Line],
               tax_rules: Rules = Rules()) -> Draft:
    """Totals of the lines: the discount a document-level allowance, the tax that of the VAT
    groups (billing_batch.engine.tax)."""
    currency = contract.currency
    lines, reasons = with_tax(lines, customer, tax_rules)
    subtotal = sum((line.amount for line in lines), Decimal(0))
    discount = round_money(subtotal * contract.discount, currency)
    groups = vat_groups(lines, discount, currency, tax_rules.rounding, reasons)
    tax = sum((group.tax for group in groups), Decimal(0))
    return Draft(
        contract_id=contract.contract_id,
        customer_id=customer.customer_id,
        customer_name=customer.name,
        cycle_start=cycle.start,
        cycle_end=cycle.end,
        scheduled=cycle.scheduled,
        currency=currency,
        lines=tuple(lines),
        subtotal=subtotal,
        discount=discount,
        tax=tax,
        total=subtotal - discount + tax,
        discount_rate=contract.discount,
        tax_rate=customer.tax_rate,
        vat_groups=groups,
        tax_rounding=tax_rules.rounding,
    )

