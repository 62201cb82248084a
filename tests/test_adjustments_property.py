"""The property of mid-term changes, on the pure engine: after any sequence of seat changes, price
edits, usage rows revised or withdrawn, and runs (reruns too), each cycle has been billed, by its
invoice and the adjustments for it, exactly what the final data bills for it, whether the next
invoice stays above zero (a large subscription nothing changes) or falls below it (a credit note)."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from billing_batch.engine.adjustments import cycle_invoices, pending
from billing_batch.engine.plan import make_document, plan_run, usage_ids
from billing_batch.engine.credit_notes import below_zero, from_draft
from billing_batch.engine.cycles import cycle_containing
from billing_batch.model import (
    ChargeType,
    Contract,
    Customer,
    Frequency,
    Inputs,
    LineKind,
    Policy,
    RunType,
    Settings,
    Source,
    Subscription,
    Usage,
)
from billing_batch.money import round_money
from billing_batch.engine.pricing import price_cycle

START = date(2026, 1, 1)
SOURCE = Source("t.xlsx", "Subscriptions")
CUSTOMER = Customer("CUST-1", "Customer", "c@example.com", "1 Main Street", "Town", "1000", "BE", Decimal("0.21"),
                    SOURCE)
# A large subscription nothing changes keeps every next invoice above zero; without it, credit notes are due.
BASE = Subscription("BASE", "CTR-1", "Platform", "Base", Decimal(100), Decimal(100), START, None,
                    ChargeType.RECURRING, SOURCE)


def contract(frequency: Frequency, policy: Policy) -> Contract:
    return Contract("CTR-1", "CUST-1", START, None, frequency, policy, 0, "EUR", 30, Decimal("0.1"), True, SOURCE)


@dataclass(frozen=True)
class Back:
    """A day counted from the last run's: most changes reach back into cycles billed already."""

    days: int


day = st.integers(-75, 10).map(Back)
money = st.decimals(1, 50, places=2)
rate = st.decimals("0.0001", 5, places=4)  # a usage price such as 0.0125: rows' amounts need rounding
change = st.one_of(
    st.tuples(st.just("add seats"), st.integers(1, 10), money, day),
    st.tuples(st.just("end seats"), st.integers(0, 20), day),
    st.tuples(st.just("price"), st.integers(0, 20), money),
    st.tuples(st.just("one-time"), money, day),
    st.tuples(st.just("usage"), st.integers(1, 20), rate, day),
    st.tuples(st.just("revise usage"), st.integers(0, 20), st.integers(0, 20), rate),
    st.tuples(st.just("withdraw usage"), st.integers(0, 20)),
)
# Rounds of changes, each followed by a run: 0 a rerun on the same day, 1 a month later.
rounds = st.lists(st.tuples(st.lists(change, max_size=4), st.integers(0, 1)), min_size=1, max_size=7)


class World:
    """The workbook as finance edits it, and the ledger as the runs leave it."""

    def __init__(self, frequency: Frequency, policy: Policy, base: bool = True):
        self.contract = contract(frequency, policy)
        self.subscriptions = [BASE] if base else []
        self.fixed = len(self.subscriptions)  # the subscriptions no change touches
        self.usage: list[Usage] = []
        self.invoices, self.empty = [], set()
        self.as_of, self.made = START, 0

    def inputs(self) -> Inputs:
        return Inputs(Settings(), {"CUST-1": CUSTOMER}, {"CTR-1": self.contract},
                      {"CTR-1": tuple(self.subscriptions)},
                      {"CTR-1": tuple(sorted(self.usage, key=lambda u: (u.date, u.usage_id)))})

    def apply(self, step: tuple) -> None:
        kind, *args = step
        args = [max(START, self.as_of + timedelta(days=a.days)) if isinstance(a, Back) else a for a in args]
        self.made += 1
        changeable = self.subscriptions[self.fixed:]
        if kind == "add seats":
            quantity, price, start = args
            self.subscriptions.append(Subscription(f"S{self.made}", "CTR-1", "Seats", "", Decimal(quantity), price,
                                                   start, None, ChargeType.RECURRING, SOURCE))
        elif kind == "one-time":
            price, start = args
            self.subscriptions.append(Subscription(f"S{self.made}", "CTR-1", "Setup", "", Decimal(1), price, start,
                                                   None, ChargeType.ONE_TIME, SOURCE))
        elif kind == "end seats" and changeable:
            n, end = args
            sub = changeable[n % len(changeable)]
            self._swap(sub, replace(sub, end=max(end, sub.start)))
        elif kind == "price" and changeable:
            n, price = args
            sub = changeable[n % len(changeable)]
            self._swap(sub, replace(sub, unit_price=price))
        elif kind == "usage":
            quantity, price, when = args
            self.usage.append(Usage(f"U{self.made}", "CTR-1", when, "API", "calls", Decimal(quantity), price, SOURCE))
        elif kind == "revise usage" and self.usage:
            n, quantity, price = args
            row = self.usage[n % len(self.usage)]
            self.usage[n % len(self.usage)] = replace(row, quantity=Decimal(quantity), unit_price=price)
        elif kind == "withdraw usage" and self.usage:
            self.usage.pop(args[0] % len(self.usage))

    def _swap(self, old: Subscription, new: Subscription) -> None:
        self.subscriptions[self.subscriptions.index(old)] = new

    def run(self) -> None:
        """What pipeline.run does with the ledger, without the files."""
        inputs, live = self.inputs(), cycle_invoices(self.invoices)
        billed_usage = {(cid, u) for (cid, _), i in live.items() for u in usage_ids(i.draft)}
        plan = plan_run(inputs, set(), set(live) | self.empty, billed_usage, self.as_of,
                        pending(inputs, set(), self.invoices, self.empty).lines)
        seq = len(self.invoices)
        self.invoices += [make_document(seq + n, from_draft(d) if below_zero(d) else d, inputs, self.as_of,
                                        RunType.AUTOMATIC) for n, d in enumerate(plan.drafts, 1)]
        self.empty |= {(c.contract_id, c.start) for c in plan.empty}


def billed_for(world: World, cycle_start: date) -> Decimal:
    """Every line amount billed for the cycle: its invoice's own lines and the adjustments for it (a credit
    note's amounts are stored as credited, so they bill negated)."""
    def sign(i): return -1 if i.is_credit_note else 1
    own = cycle_invoices(world.invoices).get(("CTR-1", cycle_start))
    total = sum((sign(own) * line.amount for line in own.draft.lines if line.kind is not LineKind.ADJUSTMENT),
                Decimal(0)) if own else Decimal(0)
    return total + sum((sign(i) * line.amount for i in world.invoices for line in i.draft.lines
                        if line.adjusted and line.adjusted.cycle_start == cycle_start), Decimal(0))


def final_bill(world: World, cycle_start: date) -> Decimal:
    """What the final data bills for the cycle, computed by pricing alone: its subscriptions, and the
    usage rows its invoice carried at their final values, each usage line rounding its rows once."""
    c, inputs = world.contract, world.inputs()
    cycle = cycle_containing(c, cycle_start)
    charges = price_cycle(cycle, c, CUSTOMER, world.subscriptions, ())
    total = sum((line.amount for line in charges.lines), Decimal(0))
    own = cycle_invoices(world.invoices).get(("CTR-1", cycle_start))
    rows = {u.usage_id: u for u in inputs.usage["CTR-1"]}
    for line in own.draft.lines if own else ():
        if line.usage_rows:
            exact = sum((rows[r.usage_id].quantity * rows[r.usage_id].unit_price
                         for r in line.usage_rows if r.usage_id in rows), Decimal(0))
            total += round_money(exact, c.currency)
    return total


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([Frequency.MONTHLY, Frequency.QUARTERLY]), st.sampled_from(list(Policy)),
       rounds, st.booleans())
def test_each_cycle_is_billed_what_the_final_data_bills(frequency, policy, steps, base):
    world = World(frequency, policy, base)
    world.run()
    for changes, months in steps:
        for step in changes:
            world.apply(step)
        world.as_of += relativedelta(months=months)
        world.run()
    world.as_of += relativedelta(months=frequency.months)  # the next invoice, which carries what is pending
    world.run()
    world.run()  # and a rerun bills nothing more
    event(f"adjustment lines: {min(3, sum(1 for i in world.invoices for x in i.draft.lines if x.adjusted))}+")
    event(f"credit notes: {min(2, sum(1 for i in world.invoices if i.is_credit_note))}+")
    assert not pending(world.inputs(), set(), world.invoices, world.empty).lines
    settled = set(cycle_invoices(world.invoices)) | world.empty
    assert settled, "the runs billed nothing"
    for _, start in settled:
        assert billed_for(world, start) == final_bill(world, start), start
