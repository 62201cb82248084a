"""Pricing a cycle (lines, proration, rounding, totals) and planning a run."""
from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_batch.engine.plan import plan_run
from billing_batch.engine.cycles import cycle
from billing_batch.model import (
    ChargeType, Contract, Customer, Frequency, Inputs, LineKind, Policy, Settings, Source, Subscription, Usage,
)
from billing_batch.money import minor_unit, round_money
from billing_batch.engine.pricing import price_cycle

SRC = Source("test.xlsx", "Sheet", 2)
FREQ = {f.label: f for f in Frequency}
DIGITS = {"USD": 2, "JPY": 0, "BHD": 3}  # the ISO 4217 minor units, written down here


def d(text):
    return text if text is None or isinstance(text, date) else date.fromisoformat(text)


def contract(start="2025-01-01", freq="Monthly", policy="Arrears", offset=1, end=None, currency="USD",
             discount="0", cid="C-1", customer="CU-1", active=True) -> Contract:
    return Contract(cid, customer, d(start), d(end), FREQ[freq], Policy(policy), offset, currency, 30, D(discount),
                    active, SRC)


def customer(cid="CU-1", tax="0") -> Customer:
    return Customer(cid, f"Customer {cid}", "a@b.example", "1 Road", "Town", "12345", "GB", D(tax), SRC)


def sub(price, qty="1", start="2025-01-01", end=None, one_time=False, sid="S-1", cid="C-1") -> Subscription:
    kind = ChargeType.ONE_TIME if one_time else ChargeType.RECURRING
    return Subscription(sid, cid, "Product", "Desc", D(qty), D(price), d(start), d(end), kind, SRC)


def usage(uid, day, qty="1", price="1", cid="C-1") -> Usage:
    return Usage(uid, cid, d(day), "Calls", "API calls", D(qty), D(price), SRC)


def price(con: Contract, k: int, subs=(), rows=(), tax="0"):
    return price_cycle(cycle(con, k), con, customer(tax=tax), subs, rows)


def row_ids(lines) -> list[str]:
    """The usage rows on the lines, in line order."""
    return [row.usage_id for line in lines for row in line.usage_rows]


def amounts(draft) -> list[str]:
    return [str(line.amount) for line in draft.lines]


# ---------------------------------------------------------------- money

@pytest.mark.parametrize("amount, currency, expected", [
    ("1.005", "USD", "1.01"),      # half-up, not half-even (which gives 1.00)
    ("1.0049999", "USD", "1.00"),
    ("2.675", "USD", "2.68"),
    ("0.0375", "USD", "0.04"),
    ("2.5", "JPY", "3"),
    ("1000.4999", "JPY", "1000"),
    ("1.2345", "BHD", "1.235"),
    ("7", "USD", "7.00"),
])
def test_round_money(amount, currency, expected):
    assert str(round_money(D(amount), currency)) == expected


def test_minor_unit():
    assert (minor_unit("USD"), minor_unit("JPY"), minor_unit("BHD")) == (D("0.01"), D("1"), D("0.001"))


# ---------------------------------------------------------------- lines

def test_full_month():
    draft = price(contract(), 0, [sub("49", qty="12")])
    assert amounts(draft) == ["588.00"] and not draft.lines[0].prorated


def test_prorated_first_month():
    # Jan 10..31 is 22 of Jan's 31 days: 100 x 22/31 = 70.9677... -> 70.97
    line, = price(contract(), 0, [sub("100", start="2025-01-10")]).lines
    assert (str(line.amount), line.prorated) == ("70.97", True)
    assert (line.period_start, line.period_end) == (date(2025, 1, 10), date(2025, 1, 31))


def test_prorated_last_month_cut_by_contract_end():
    # Mar 1..20 is 20 of the uncut cycle's 31 days: 100 x 20/31 = 64.5161... -> 64.52
    draft = price(contract(end="2025-03-20"), 2, [sub("100")])
    assert amounts(draft) == ["64.52"] and draft.lines[0].prorated


def test_prorated_by_subscription_end():
    # Feb 1..14 is 14 of 28 days: exactly 50.00
    assert amounts(price(contract(), 1, [sub("100", end="2025-02-14")])) == ["50.00"]
    assert price(contract(), 2, [sub("100", end="2025-02-14")]).lines == ()


def test_quarterly_multiplies_the_monthly_price():
    assert amounts(price(contract(freq="Quarterly"), 0, [sub("10", qty="2")])) == ["60.00"]  # 2 x 10 x 3
    # from Mar 1: 31 of Q1's 90 days (31+28+31): 60 x 31/90 = 20.666... -> 20.67
    assert amounts(price(contract(freq="Quarterly"), 0, [sub("10", qty="2", start="2025-03-01")])) == ["20.67"]


def test_one_time_only_on_the_cycle_containing_its_start():
    one_time = [sub("412.50", start="2025-02-10", one_time=True)]
    got = [amounts(price(contract(), k, one_time)) for k in range(3)]
    assert got == [[], ["412.50"], []]


@pytest.mark.parametrize("policy, k, billed", [
    ("Arrears", 0, ["u-jan31"]),              # cutoff = cycle end, Jan 31
    ("Advance", 0, []),                        # cutoff = Dec 31 2024
    ("Advance", 1, ["u-jan31"]),               # Feb cycle, cutoff Jan 31
    ("Advance", 2, ["u-jan31", "u-feb01"]),   # Mar cycle, cutoff Feb 28
])
def test_usage_cutoff(policy, k, billed):
    rows = [usage("u-feb01", "2025-02-01"), usage("u-jan31", "2025-01-31")]
    assert row_ids(price(contract(policy=policy), k, rows=rows).lines) == billed


def test_usage_is_never_prorated_and_tiny_prices_round_once():
    # 3 x 0.0125 = 0.0375 -> 0.04, on a cycle cut to 5 days
    draft = price(contract(end="2025-01-05"), 0, [sub("0.0125", qty="3")], [usage("u1", "2025-01-02", "3", "0.0125")])
    assert amounts(draft) == ["0.01", "0.04"]  # recurring: 0.0375 x 5/31 = 0.00604... -> 0.01
    assert draft.lines[1].kind is LineKind.USAGE and not draft.lines[1].prorated
    assert amounts(price(contract(), 0, [sub("0.0125", qty="3")])) == ["0.04"]  # full month


def test_discount_and_tax_round_half_up():
    # subtotal 10.05; discount 10% = 1.005 -> 1.01; tax 6.25% of 9.04 = 0.565 -> 0.57; total 9.61
    draft = price(contract(discount="0.1"), 0, [sub("10.05", one_time=True)], tax="0.0625")
    assert [str(x) for x in (draft.subtotal, draft.discount, draft.tax, draft.total)] == ["10.05", "1.01", "0.57",
                                                                                         "9.61"]


def test_jpy_rounds_to_whole_yen():
    # recurring 1000/month from Jan 22: 10/31 x 1000 = 322.58 -> 323; one-time 3 x 333.5 = 1000.5 -> 1001
    # subtotal 1324; discount 5% = 66.2 -> 66; tax 10% of 1258 = 125.8 -> 126; total 1384
    con = contract(currency="JPY", discount="0.05")
    draft = price(con, 0, [sub("1000", start="2025-01-22"), sub("333.5", qty="3", one_time=True, sid="S-2")],
                  tax="0.1")
    assert amounts(draft) == ["323", "1001"]
    assert [str(x) for x in (draft.subtotal, draft.discount, draft.tax, draft.total)] == ["1324", "66", "126", "1384"]


# ---------------------------------------------------------------- properties

currencies = st.sampled_from(sorted(DIGITS))
quantities = st.decimals(min_value=0, max_value=1000, places=2, allow_nan=False, allow_infinity=False)
prices = st.decimals(min_value=0, max_value=10000, places=4, allow_nan=False, allow_infinity=False)
rates = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(st.dates(date(2000, 1, 1), date(2040, 12, 31)), st.sampled_from(Frequency), st.integers(0, 2), currencies,
       quantities, prices, st.data())
def test_splitting_a_subscription_costs_at_most_one_minor_unit(start, freq, k, currency, qty, unit, data):
    con = Contract("C-1", "CU-1", start, None, freq, Policy.ARREARS, 1, currency, 30, D(0), True, SRC)
    c = cycle(con, k)
    split = c.start + timedelta(days=data.draw(st.integers(0, (c.end - c.start).days - 1)))
    whole = Subscription("S-1", "C-1", "P", "", qty, unit, start, None, ChargeType.RECURRING, SRC)
    left = Subscription("S-2", "C-1", "P", "", qty, unit, start, split, ChargeType.RECURRING, SRC)
    right = Subscription("S-3", "C-1", "P", "", qty, unit, split + timedelta(days=1), None, ChargeType.RECURRING, SRC)
    u, = price_cycle(c, con, customer(), [whole], []).lines
    a, b = price_cycle(c, con, customer(), [left, right], []).lines
    assert a.prorated and b.prorated and not u.prorated
    assert abs(a.amount + b.amount - u.amount) <= D(1).scaleb(-DIGITS[currency])


@settings(max_examples=200, deadline=None)
@given(currencies, rates, st.decimals(min_value=0, max_value=D("0.3"), places=4), st.data())
def test_totals_add_up_and_carry_only_minor_unit_digits(currency, discount, tax, data):
    con = contract(currency=currency, discount=str(discount), end="2025-01-20")
    subs = [sub(str(data.draw(prices)), str(data.draw(quantities)), start=f"2025-01-{data.draw(st.integers(1, 25)):02}",
                one_time=data.draw(st.booleans()), sid=f"S-{i}") for i in range(data.draw(st.integers(0, 4)))]
    rows = [usage(f"U-{i}", "2024-12-31", str(data.draw(quantities)), str(data.draw(prices)))
            for i in range(data.draw(st.integers(0, 4)))]
    draft = price(con, 0, subs, rows, tax=str(tax))  # Arrears: cycle Jan 1..20, all usage rows due
    unit = D(1).scaleb(-DIGITS[currency])
    # one summary line per unit price: the rows share Product and Description
    assert len(draft.lines) == sum(s.start <= date(2025, 1, 20) for s in subs) + len({r.unit_price for r in rows})
    assert draft.subtotal == sum((line.amount for line in draft.lines), D(0))
    assert abs(draft.discount - draft.subtotal * discount) <= unit / 2
    assert abs(draft.tax - (draft.subtotal - draft.discount) * tax) <= unit / 2
    assert draft.total == draft.subtotal - draft.discount + draft.tax
    for amount in [line.amount for line in draft.lines] + [draft.subtotal, draft.discount, draft.tax, draft.total]:
        assert -amount.as_tuple().exponent <= DIGITS[currency]


# ---------------------------------------------------------------- plan_run

def run_inputs(extra_usage=()) -> Inputs:
    contracts = [  # on ties, ID order (C-0 first) is neither insertion order nor cycle-start order
        contract("2025-01-01", cid="C-1"),
        contract("2025-02-02", policy="Advance", offset=0, cid="C-0", customer="CU-2"),
        contract("2025-01-01", cid="C-3", active=False),
        contract("2025-01-01", cid="C-4"),
        contract("2025-03-01", cid="C-5"),  # nothing to bill
    ]
    rows = [usage("u1", "2025-01-20", "10", "0.5"), usage("u2", "2025-02-28"), usage("u3", "2025-03-31"),
            usage("u4", "2025-04-03"), *extra_usage]
    return Inputs(
        settings=Settings(),
        customers={"CU-1": customer("CU-1", tax="0.2"), "CU-2": customer("CU-2")},
        contracts={c.contract_id: c for c in contracts},
        subscriptions={cid: (sub("100", cid=cid),) for cid in ("C-0", "C-1", "C-3", "C-4")},
        usage={
            "C-1": tuple(sorted(rows, key=lambda r: r.date)),
            "C-0": (usage("v1", "2025-02-10", cid="C-0"), usage("v2", "2025-03-01", cid="C-0"),
                    usage("v3", "2025-03-02", cid="C-0")),
            "C-3": (usage("w1", "2025-01-15", cid="C-3"),),
            "C-4": (usage("x1", "2025-01-15", cid="C-4"),),
        },
    )


def summary(plan) -> list[tuple[str, str, str, list[str]]]:
    return [(str(x.scheduled), x.contract_id, str(x.cycle_start), row_ids(x.lines))
            for x in plan.drafts]


def test_plan_run_catches_up_in_numbering_order():
    plan = plan_run(run_inputs(), set_aside={"C-4"}, settled=set(), billed_usage=set(), as_of=date(2025, 4, 5))
    # C-1 (Arrears +1) is due Feb 2, Mar 2, Apr 2; C-0 (Advance, 0) on the same days: ties go by contract ID.
    # C-0's Advance cutoffs are Feb 1, Mar 1, Apr 1; u4 (Apr 3) waits for April's cycle.
    assert summary(plan) == [
        ("2025-02-02", "C-0", "2025-02-02", []),
        ("2025-02-02", "C-1", "2025-01-01", ["u1"]),
        ("2025-03-02", "C-0", "2025-03-02", ["v1", "v2"]),
        ("2025-03-02", "C-1", "2025-02-01", ["u2"]),
        ("2025-04-02", "C-0", "2025-04-02", ["v3"]),
        ("2025-04-02", "C-1", "2025-03-01", ["u3"]),
    ]
    jan = plan.drafts[1]  # 100 + 10 x 0.5 = 105; tax 20% = 21
    assert (jan.subtotal, jan.tax, jan.total) == (D("105.00"), D("21.00"), D("126.00"))
    assert [(c.contract_id, str(c.start)) for c in plan.empty] == [("C-5", "2025-03-01")]


def test_plan_run_each_usage_row_on_exactly_one_draft():
    plan = plan_run(run_inputs(), set_aside={"C-4"}, settled=set(), billed_usage=set(), as_of=date(2025, 4, 5))
    seen = Counter(row_ids(ln for x in plan.drafts for ln in x.lines))
    assert seen == Counter({"u1": 1, "u2": 1, "u3": 1, "v1": 1, "v2": 1, "v3": 1})


def test_plan_run_late_usage_lands_on_the_next_draft():
    late = usage("u5", "2025-01-25")  # January is already invoiced
    plan = plan_run(run_inputs([late]), set_aside={"C-4"}, settled={("C-1", date(2025, 1, 1)), ("C-1", date(2025, 2, 1))},
                    billed_usage={("C-1", "u1"), ("C-1", "u2")}, as_of=date(2025, 4, 5))
    c1 = [row for row in summary(plan) if row[1] == "C-1"]
    assert c1 == [("2025-04-02", "C-1", "2025-03-01", ["u5", "u3"])]


def test_plan_run_inactive_and_set_aside_contracts_produce_nothing():
    plan = plan_run(run_inputs(), set_aside={"C-4"}, settled=set(), billed_usage=set(), as_of=date(2025, 4, 5))
    touched = {x.contract_id for x in plan.drafts} | {c.contract_id for c in plan.empty}
    assert touched == {"C-0", "C-1", "C-5"}
    # without the set-aside, C-4 bills like C-1 does; C-3 stays inactive
    plan = plan_run(run_inputs(), set_aside=set(), settled=set(), billed_usage=set(), as_of=date(2025, 4, 5))
    assert Counter(x.contract_id for x in plan.drafts) == Counter({"C-0": 3, "C-1": 3, "C-4": 3})


def test_plan_run_bills_usage_of_the_last_advance_cycle():
    con = contract(policy="Advance", offset=0, end="2025-02-28")  # cycles Jan, Feb; Feb's cutoff is Jan 31
    inputs = Inputs(Settings(), {"CU-1": customer()}, {"C-1": con}, {"C-1": (sub("100"),)},
                    {"C-1": (usage("u1", "2025-02-10"),)})
    plan = plan_run(inputs, set_aside=set(), settled=set(), billed_usage=set(), as_of=date(2030, 1, 1))
    assert row_ids(ln for x in plan.drafts for ln in x.lines) == ["u1"]
    closing = plan.drafts[-1]  # a usage-only invoice the day after the End Date: no recurring charge again
    assert (closing.cycle_start, closing.scheduled) == (date(2025, 3, 1), date(2025, 3, 1))
    assert [ln.kind for ln in closing.lines] == [LineKind.USAGE] and closing.subtotal == D(1)
    assert [x.cycle_start for x in plan.drafts] == [date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)]
