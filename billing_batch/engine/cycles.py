"""The cycle engine: a contract's billing cycles and when each is due. Pure."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

from dateutil.relativedelta import relativedelta

from billing_batch.model import Contract, Cycle, Policy

ONE_DAY = timedelta(days=1)


def cycle_start(contract: Contract, k: int) -> date:
    """Start of cycle k, counted from the anchor so month-end starts never drift."""
    return contract.start + relativedelta(months=k * contract.frequency.months)


def cycle(contract: Contract, k: int) -> Cycle | None:
    """Cycle k of the contract, or None if it would start after the contract's End Date."""
    start = cycle_start(contract, k)
    if contract.end is not None and start > contract.end:
        return None
    full_end = cycle_start(contract, k + 1) - ONE_DAY
    end = min(full_end, contract.end) if contract.end is not None else full_end
    if contract.policy is Policy.ADVANCE:
        reference, usage_cutoff = start, start - ONE_DAY
    else:
        reference, usage_cutoff = end + ONE_DAY, end
    return Cycle(
        contract_id=contract.contract_id,
        index=k,
        start=start,
        end=end,
        full_end=full_end,
        scheduled=reference + timedelta(days=contract.offset_days),
        usage_cutoff=usage_cutoff,
    )


def closing_cycle(contract: Contract, k: int | None = None) -> Cycle | None:
    """The closing cycle of an Advance contract with an End Date: an Advance invoice takes the usage
    dated before its cycle starts, so the usage of the last cycle needs an invoice after the End Date.
    It starts (and ends) the day after the End Date, is scheduled the Billing Offset after that, and
    bills usage only. k: its index, one past the last cycle's."""
    if contract.policy is not Policy.ADVANCE or contract.end is None:
        return None
    if k is None:
        k = sum(1 for _ in _regular_cycles(contract))
    day = contract.end + ONE_DAY
    return Cycle(contract_id=contract.contract_id, index=k, start=day, end=day, full_end=day,
                 scheduled=day + timedelta(days=contract.offset_days), usage_cutoff=contract.end, closing=True)


def _regular_cycles(contract: Contract) -> Iterator[Cycle]:
    k = 0
    while (c := cycle(contract, k)) is not None:
        yield c
        k += 1


def cycles(contract: Contract) -> Iterator[Cycle]:
    """Every cycle of the contract in order, the closing one last; endless when it has no End Date."""
    k = 0
    for k, c in enumerate(_regular_cycles(contract), start=1):
        yield c
    if (closing := closing_cycle(contract, k)) is not None:
        yield closing


def cycle_containing(contract: Contract, day: date) -> Cycle | None:
    """The cycle whose period contains day, if any (the closing cycle for the day after the End Date)."""
    if contract.end is not None and day == contract.end + ONE_DAY:
        return closing_cycle(contract)
    if day < contract.start or (contract.end is not None and day > contract.end):
        return None
    months = relativedelta(day, contract.start)
    k = (months.years * 12 + months.months) // contract.frequency.months
    # The clamped month-end anchor can put day one cycle either side of the estimate.
    for candidate in (k - 1, k, k + 1):
        c = cycle(contract, candidate) if candidate >= 0 else None
        if c is not None and c.start <= day <= c.end:
            return c
    return None


def billed_before(contract: Contract, cycle: Cycle) -> bool:
    """Whether the cycle ends on or before the contract's Billed Through: billed outside billing_batch."""
    return contract.billed_through is not None and cycle.end <= contract.billed_through


def due_cycles(contract: Contract, as_of: date) -> Iterator[Cycle]:
    """The cycles scheduled on or before as_of, oldest first."""
    for c in cycles(contract):
        if c.scheduled > as_of:
            return
        yield c


def listed_cycles(contract: Contract, as_of: date) -> Iterator[Cycle]:
    """The cycles the schedule workbook shows: every one started by as_of, those
    scheduled within the next 12 months, and at least the next one."""
    horizon = as_of + relativedelta(months=12)
    shown_future = False
    for c in cycles(contract):
        if c.start <= as_of or c.scheduled <= horizon:
            shown_future = shown_future or c.start > as_of
            yield c
        elif not shown_future:
            yield c
            return
        else:
            return
