"""The cycle engine: anchored cycles, End Date cut, scheduling, and the listings built on them."""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal as D
from itertools import islice

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from billing_batch.engine.cycles import cycle, cycle_containing, cycles, due_cycles, listed_cycles
from billing_batch.model import Contract, Frequency, Policy, Source

SRC = Source("test.xlsx", "Contracts", 2)
FREQ = {f.label: f for f in Frequency}
ONE_DAY = timedelta(days=1)


def d(text: str | date | None) -> date | None:
    return text if text is None or isinstance(text, date) else date.fromisoformat(text)


def contract(start, freq="Monthly", policy="Arrears", offset=1, end=None, cid="C-1") -> Contract:
    return Contract(cid, "CU-1", d(start), d(end), FREQ[freq], Policy(policy), offset, "USD", 30, D(0), True, SRC)


def first(c: Contract, n: int) -> list:
    return list(islice(cycles(c), n))


def periods(cs) -> list[str]:
    return [f"{c.start}..{c.end}" for c in cs]


# ---------------------------------------------------------------- spec examples

@pytest.mark.parametrize("start, freq, expected", [
    ("2020-01-01", "Monthly", ["2020-01-01..2020-01-31", "2020-02-01..2020-02-29"]),
    ("2025-01-31", "Monthly", ["2025-01-31..2025-02-27", "2025-02-28..2025-03-30", "2025-03-31..2025-04-29"]),
    ("2025-01-01", "Quarterly", ["2025-01-01..2025-03-31", "2025-04-01..2025-06-30"]),
    ("2025-08-31", "Semi-Annual", ["2025-08-31..2026-02-27", "2026-02-28..2026-08-30"]),
    # leap-day anchor: clamped to the 28th for three years, back on the 29th in 2028
    ("2024-02-29", "Annual", ["2024-02-29..2025-02-27", "2025-02-28..2026-02-27", "2026-02-28..2027-02-27",
                              "2027-02-28..2028-02-28", "2028-02-29..2029-02-27"]),
    ("2025-03-15", "Triennial", ["2025-03-15..2028-03-14", "2028-03-15..2031-03-14"]),
])
def test_cycles_are_anchored_on_the_start_date(start, freq, expected):
    assert periods(first(contract(start, freq), len(expected))) == expected


def test_end_date_cuts_the_last_cycle_and_nothing_follows():
    c = contract("2025-01-01", end="2025-03-20")
    got = list(cycles(c))
    assert periods(got) == ["2025-01-01..2025-01-31", "2025-02-01..2025-02-28", "2025-03-01..2025-03-20"]
    assert [x.full_end for x in got] == [date(2025, 1, 31), date(2025, 2, 28), date(2025, 3, 31)]
    assert got[-1].scheduled == date(2025, 3, 22)  # Arrears +1: day after the cut end, plus one
    assert got[-1].usage_cutoff == date(2025, 3, 20)
    assert cycle(c, 3) is None


@pytest.mark.parametrize("end, expected", [
    ("2025-02-28", ["2025-01-01..2025-01-31", "2025-02-01..2025-02-28"]),  # ends on a cycle boundary
    ("2025-03-01", ["2025-01-01..2025-01-31", "2025-02-01..2025-02-28", "2025-03-01..2025-03-01"]),
    ("2025-01-01", ["2025-01-01..2025-01-01"]),
])
def test_end_date_edges(end, expected):
    assert periods(cycles(contract("2025-01-01", end=end))) == expected


@pytest.mark.parametrize("start, policy, offset, scheduled, cutoff", [
    ("2020-01-01", "Arrears", 1, "2020-02-02", "2020-01-31"),   # the defaults
    ("2020-01-01", "Arrears", -5, "2020-01-27", "2020-01-31"),
    ("2026-11-15", "Advance", -15, "2026-10-31", "2026-11-14"),
    ("2026-11-15", "Advance", 0, "2026-11-15", "2026-11-14"),
])
def test_first_cycle_scheduled_and_usage_cutoff(start, policy, offset, scheduled, cutoff):
    c0 = cycle(contract(start, policy=policy, offset=offset), 0)
    assert (c0.scheduled, c0.usage_cutoff) == (d(scheduled), d(cutoff))


# ---------------------------------------------------------------- the matrix
#
# One row: policy, frequency, offset, start, then cycle 0 and cycle 1 as "start..end @scheduled".
# The row marked (*) on a timeline -- Arrears, Monthly, +1, anchor day 31:
#
#   Jan 31          Feb 27 | Feb 28          Mar 30 | Mar 31
#     |== cycle 0 =====|   |   |== cycle 1 =====|   |   |== cycle 2 ...
#                          |                        |
#            reference = end + 1 = Feb 28   reference = Mar 31
#              scheduled = Mar 1 (+1)         scheduled = Apr 1 (+1)
#
# Advance rows use the cycle start as the reference instead.

MATRIX = [
    # month-end start: the anchor day 31 is clamped in short months, never drifts
    ("Advance", "Monthly", -5, "2025-01-31", "2025-01-31..2025-02-27 @2025-01-26", "2025-02-28..2025-03-30 @2025-02-23"),
    ("Advance", "Monthly", 0, "2025-01-31", "2025-01-31..2025-02-27 @2025-01-31", "2025-02-28..2025-03-30 @2025-02-28"),
    ("Advance", "Monthly", 1, "2025-01-31", "2025-01-31..2025-02-27 @2025-02-01", "2025-02-28..2025-03-30 @2025-03-01"),
    ("Advance", "Monthly", 10, "2025-01-31", "2025-01-31..2025-02-27 @2025-02-10", "2025-02-28..2025-03-30 @2025-03-10"),
    ("Arrears", "Monthly", -5, "2025-01-31", "2025-01-31..2025-02-27 @2025-02-23", "2025-02-28..2025-03-30 @2025-03-26"),
    ("Arrears", "Monthly", 0, "2025-01-31", "2025-01-31..2025-02-27 @2025-02-28", "2025-02-28..2025-03-30 @2025-03-31"),
    ("Arrears", "Monthly", 1, "2025-01-31", "2025-01-31..2025-02-27 @2025-03-01", "2025-02-28..2025-03-30 @2025-04-01"),  # (*)
    ("Arrears", "Monthly", 10, "2025-01-31", "2025-01-31..2025-02-27 @2025-03-10", "2025-02-28..2025-03-30 @2025-04-10"),
    ("Advance", "Quarterly", -5, "2025-01-31", "2025-01-31..2025-04-29 @2025-01-26", "2025-04-30..2025-07-30 @2025-04-25"),
    ("Advance", "Quarterly", 0, "2025-01-31", "2025-01-31..2025-04-29 @2025-01-31", "2025-04-30..2025-07-30 @2025-04-30"),
    ("Advance", "Quarterly", 1, "2025-01-31", "2025-01-31..2025-04-29 @2025-02-01", "2025-04-30..2025-07-30 @2025-05-01"),
    ("Advance", "Quarterly", 10, "2025-01-31", "2025-01-31..2025-04-29 @2025-02-10", "2025-04-30..2025-07-30 @2025-05-10"),
    ("Arrears", "Quarterly", -5, "2025-01-31", "2025-01-31..2025-04-29 @2025-04-25", "2025-04-30..2025-07-30 @2025-07-26"),
    ("Arrears", "Quarterly", 0, "2025-01-31", "2025-01-31..2025-04-29 @2025-04-30", "2025-04-30..2025-07-30 @2025-07-31"),
    ("Arrears", "Quarterly", 1, "2025-01-31", "2025-01-31..2025-04-29 @2025-05-01", "2025-04-30..2025-07-30 @2025-08-01"),
    ("Arrears", "Quarterly", 10, "2025-01-31", "2025-01-31..2025-04-29 @2025-05-10", "2025-04-30..2025-07-30 @2025-08-10"),
    ("Advance", "Annual", -5, "2025-01-31", "2025-01-31..2026-01-30 @2025-01-26", "2026-01-31..2027-01-30 @2026-01-26"),
    ("Advance", "Annual", 0, "2025-01-31", "2025-01-31..2026-01-30 @2025-01-31", "2026-01-31..2027-01-30 @2026-01-31"),
    ("Advance", "Annual", 1, "2025-01-31", "2025-01-31..2026-01-30 @2025-02-01", "2026-01-31..2027-01-30 @2026-02-01"),
    ("Advance", "Annual", 10, "2025-01-31", "2025-01-31..2026-01-30 @2025-02-10", "2026-01-31..2027-01-30 @2026-02-10"),
    ("Arrears", "Annual", -5, "2025-01-31", "2025-01-31..2026-01-30 @2026-01-26", "2026-01-31..2027-01-30 @2027-01-26"),
    ("Arrears", "Annual", 0, "2025-01-31", "2025-01-31..2026-01-30 @2026-01-31", "2026-01-31..2027-01-30 @2027-01-31"),
    ("Arrears", "Annual", 1, "2025-01-31", "2025-01-31..2026-01-30 @2026-02-01", "2026-01-31..2027-01-30 @2027-02-01"),
    ("Arrears", "Annual", 10, "2025-01-31", "2025-01-31..2026-01-30 @2026-02-10", "2026-01-31..2027-01-30 @2027-02-10"),
    # mid-month start
    ("Advance", "Monthly", -5, "2025-01-15", "2025-01-15..2025-02-14 @2025-01-10", "2025-02-15..2025-03-14 @2025-02-10"),
    ("Advance", "Monthly", 0, "2025-01-15", "2025-01-15..2025-02-14 @2025-01-15", "2025-02-15..2025-03-14 @2025-02-15"),
    ("Advance", "Monthly", 1, "2025-01-15", "2025-01-15..2025-02-14 @2025-01-16", "2025-02-15..2025-03-14 @2025-02-16"),
    ("Advance", "Monthly", 10, "2025-01-15", "2025-01-15..2025-02-14 @2025-01-25", "2025-02-15..2025-03-14 @2025-02-25"),
    ("Arrears", "Monthly", -5, "2025-01-15", "2025-01-15..2025-02-14 @2025-02-10", "2025-02-15..2025-03-14 @2025-03-10"),
    ("Arrears", "Monthly", 0, "2025-01-15", "2025-01-15..2025-02-14 @2025-02-15", "2025-02-15..2025-03-14 @2025-03-15"),
    ("Arrears", "Monthly", 1, "2025-01-15", "2025-01-15..2025-02-14 @2025-02-16", "2025-02-15..2025-03-14 @2025-03-16"),
    ("Arrears", "Monthly", 10, "2025-01-15", "2025-01-15..2025-02-14 @2025-02-25", "2025-02-15..2025-03-14 @2025-03-25"),
    ("Advance", "Quarterly", -5, "2025-01-15", "2025-01-15..2025-04-14 @2025-01-10", "2025-04-15..2025-07-14 @2025-04-10"),
    ("Advance", "Quarterly", 0, "2025-01-15", "2025-01-15..2025-04-14 @2025-01-15", "2025-04-15..2025-07-14 @2025-04-15"),
    ("Advance", "Quarterly", 1, "2025-01-15", "2025-01-15..2025-04-14 @2025-01-16", "2025-04-15..2025-07-14 @2025-04-16"),
    ("Advance", "Quarterly", 10, "2025-01-15", "2025-01-15..2025-04-14 @2025-01-25", "2025-04-15..2025-07-14 @2025-04-25"),
    ("Arrears", "Quarterly", -5, "2025-01-15", "2025-01-15..2025-04-14 @2025-04-10", "2025-04-15..2025-07-14 @2025-07-10"),
    ("Arrears", "Quarterly", 0, "2025-01-15", "2025-01-15..2025-04-14 @2025-04-15", "2025-04-15..2025-07-14 @2025-07-15"),
    ("Arrears", "Quarterly", 1, "2025-01-15", "2025-01-15..2025-04-14 @2025-04-16", "2025-04-15..2025-07-14 @2025-07-16"),
    ("Arrears", "Quarterly", 10, "2025-01-15", "2025-01-15..2025-04-14 @2025-04-25", "2025-04-15..2025-07-14 @2025-07-25"),
    ("Advance", "Annual", -5, "2025-01-15", "2025-01-15..2026-01-14 @2025-01-10", "2026-01-15..2027-01-14 @2026-01-10"),
    ("Advance", "Annual", 0, "2025-01-15", "2025-01-15..2026-01-14 @2025-01-15", "2026-01-15..2027-01-14 @2026-01-15"),
    ("Advance", "Annual", 1, "2025-01-15", "2025-01-15..2026-01-14 @2025-01-16", "2026-01-15..2027-01-14 @2026-01-16"),
    ("Advance", "Annual", 10, "2025-01-15", "2025-01-15..2026-01-14 @2025-01-25", "2026-01-15..2027-01-14 @2026-01-25"),
    ("Arrears", "Annual", -5, "2025-01-15", "2025-01-15..2026-01-14 @2026-01-10", "2026-01-15..2027-01-14 @2027-01-10"),
    ("Arrears", "Annual", 0, "2025-01-15", "2025-01-15..2026-01-14 @2026-01-15", "2026-01-15..2027-01-14 @2027-01-15"),
    ("Arrears", "Annual", 1, "2025-01-15", "2025-01-15..2026-01-14 @2026-01-16", "2026-01-15..2027-01-14 @2027-01-16"),
    ("Arrears", "Annual", 10, "2025-01-15", "2025-01-15..2026-01-14 @2026-01-25", "2026-01-15..2027-01-14 @2027-01-25"),
]


@pytest.mark.parametrize("policy, freq, offset, start, cycle0, cycle1", MATRIX)
def test_matrix(policy, freq, offset, start, cycle0, cycle1):
    got = first(contract(start, freq, policy, offset), 2)
    assert [f"{c.start}..{c.end} @{c.scheduled}" for c in got] == [cycle0, cycle1]


# ---------------------------------------------------------------- lookups and listings

@pytest.mark.parametrize("day, expected", [
    ("2025-01-30", None),  # before the contract
    ("2025-01-31", "2025-01-31..2025-02-27"),
    ("2025-02-27", "2025-01-31..2025-02-27"),
    ("2025-02-28", "2025-02-28..2025-03-30"),
    ("2025-03-30", "2025-02-28..2025-03-30"),
    ("2025-03-31", "2025-03-31..2025-04-29"),
    ("2025-06-29", "2025-05-31..2025-06-29"),
    ("2025-06-30", "2025-06-30..2025-07-30"),
])
def test_cycle_containing_month_end_anchor(day, expected):
    found = cycle_containing(contract("2025-01-31"), d(day))
    assert (None if found is None else f"{found.start}..{found.end}") == expected


def test_cycle_containing_respects_end_date_and_long_cycles():
    cut = contract("2025-01-31", end="2025-03-10")
    assert f"{cycle_containing(cut, d('2025-03-10')).start}" == "2025-02-28"
    assert cycle_containing(cut, d("2025-03-11")) is None
    tri = contract("2025-03-15", "Triennial")
    assert cycle_containing(tri, d("2028-03-14")).index == 0
    assert cycle_containing(tri, d("2028-03-15")).index == 1


@pytest.mark.parametrize("policy, offset, start, as_of, expected_starts", [
    ("Arrears", 1, "2025-01-01", "2025-04-01", ["2025-01-01", "2025-02-01"]),  # March's is due Apr 2
    ("Arrears", 1, "2025-01-01", "2025-04-02", ["2025-01-01", "2025-02-01", "2025-03-01"]),
    ("Arrears", 1, "2025-01-01", "2025-02-01", []),
    ("Advance", -15, "2026-11-15", "2026-11-30", ["2026-11-15", "2026-12-15"]),  # Dec 15 cycle due Nov 30
])
def test_due_cycles(policy, offset, start, as_of, expected_starts):
    got = due_cycles(contract(start, policy=policy, offset=offset), d(as_of))
    assert [str(c.start) for c in got] == expected_starts


def test_listed_cycles_monthly_shows_started_plus_twelve_months_of_schedule():
    # started by Mar 15: Jan, Feb, Mar 2025; scheduled by 2026-03-15: up to the Feb 2026 cycle (due 2026-03-02)
    got = list(listed_cycles(contract("2025-01-01"), d("2025-03-15")))
    assert len(got) == 14
    assert (str(got[0].start), str(got[-1].start)) == ("2025-01-01", "2026-02-01")


@pytest.mark.parametrize("c, as_of, expected_starts", [
    # Annual: the next cycle is due 2027-01-02, beyond the horizon, but at least one is shown
    (contract("2025-01-01", "Annual"), "2025-03-15", ["2025-01-01", "2026-01-01"]),
    # not started yet, first due in 2029: shown alone
    (contract("2026-01-01", "Triennial"), "2025-03-15", ["2026-01-01"]),
    # ended contract: no "next one" to show
    (contract("2024-01-01", end="2024-03-31"), "2025-06-01", ["2024-01-01", "2024-02-01", "2024-03-01"]),
    # Advance -15: cycles scheduled by the horizon 2027-11-20, the last being Nov 2027's (due 2027-10-31)
    (contract("2026-11-15", "Quarterly", "Advance", -15), "2026-11-20", ["2026-11-15", "2027-02-15", "2027-05-15",
                                                                         "2027-08-15", "2027-11-15"]),
])
def test_listed_cycles_edges(c, as_of, expected_starts):
    assert [str(x.start) for x in listed_cycles(c, d(as_of))] == expected_starts


# ---------------------------------------------------------------- properties

@st.composite
def contracts(draw) -> Contract:
    start = draw(st.dates(date(1990, 1, 1), date(2100, 12, 31)))
    length = draw(st.none() | st.integers(0, 3650))
    return Contract(
        "C-1", "CU-1", start, None if length is None else start + timedelta(days=length),
        draw(st.sampled_from(Frequency)), draw(st.sampled_from(Policy)), draw(st.integers(-60, 60)),
        "USD", 30, D(0), True, SRC,
    )


def all_or_first(c: Contract) -> list:
    """The regular cycles, which tile the contract period: not the closing one after its End Date."""
    got = first(c, 200)  # a 10-year contract has at most 121 cycles
    assert c.end is None or len(got) < 200
    closing = [x for x in got if x.closing]
    assert len(closing) == (c.policy is Policy.ADVANCE and c.end is not None) and got[-len(closing) or len(got):] == closing
    return [x for x in got if not x.closing]


@settings(max_examples=200, deadline=None)
@given(contracts())
def test_an_ended_advance_contract_closes_with_a_usage_cycle_the_day_after_its_end(c):
    got = first(c, 200)
    if c.policy is not Policy.ADVANCE or c.end is None:
        assert not any(x.closing for x in got)
        return
    last, closing = got[-2:]
    assert closing.closing and closing.index == last.index + 1
    assert closing.start == closing.end == c.end + ONE_DAY  # a key of its own, after every regular cycle
    assert closing.scheduled == c.end + ONE_DAY + timedelta(days=c.offset_days)
    assert last.usage_cutoff < last.start <= c.end == closing.usage_cutoff  # it takes what the last one cannot
    assert cycle_containing(c, c.end + ONE_DAY) == closing


@settings(max_examples=200, deadline=None)
@given(contracts())
def test_cycles_tile_the_contract_period(c):
    got = all_or_first(c)
    assert got[0].start == c.start
    for prev, nxt in zip(got, got[1:]):
        assert nxt.start == prev.end + ONE_DAY
        assert prev.end == prev.full_end  # only the last cycle may be cut
    if c.end is not None:
        assert got[-1].end == c.end
        assert got[-1].start <= c.end <= got[-1].full_end
    for x in got:
        reference = x.start if c.policy is Policy.ADVANCE else x.end + ONE_DAY
        assert x.scheduled == reference + timedelta(days=c.offset_days)


@settings(max_examples=200, deadline=None)
@given(contracts())
def test_cycle_starts_never_drift(c):
    for k, x in enumerate(all_or_first(c)):
        assert x.index == k
        assert x.start == c.start + relativedelta(months=k * c.frequency.months)
        months = c.start.month - 1 + k * c.frequency.months
        assert (x.start.year, x.start.month) == (c.start.year + months // 12, months % 12 + 1)
        last_day = calendar.monthrange(x.start.year, x.start.month)[1]
        assert x.start.day == min(c.start.day, last_day)  # preserved whenever the month has that day


@settings(max_examples=200, deadline=None)
@given(contracts(), st.data())
def test_cycle_containing_finds_the_cycle_holding_the_day(c, data):
    span = (c.end - c.start).days + 1 if c.end else 3650
    day = c.start + timedelta(days=data.draw(st.integers(0, span - 1)))
    found = cycle_containing(c, day)
    assert found is not None and found.start <= day <= found.end
    assert found == cycle(c, found.index)
    assert cycle_containing(c, c.start - ONE_DAY) is None
    if c.end is not None:  # the day after the End Date is the closing cycle's, for Advance
        after = cycle_containing(c, c.end + ONE_DAY)
        assert (after is not None and after.closing) == (c.policy is Policy.ADVANCE)
