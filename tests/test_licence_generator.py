"""The seeded generator of Partner Center NCE invoice reconciliation files (benchmarks.partner_center_licences,
issue #22 item 8): its rows keep Microsoft's conventions, computed here from the rows, never typed in. Subtotal
by Microsoft's formula for seat-based charges; seat changes as a refund and a charge over one period; cycle
charges that tile each cycle; cancels that end a subscription; conversions tied by a ReferenceId; Azure plan
rows; the anomalies only when asked for; the same file from the same seed; the header as published."""
from __future__ import annotations

import csv
import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from dateutil.relativedelta import relativedelta
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import partner_center_files
from benchmarks import partner_center_licences as pcl
from billing_batch.inputs.licences import AZURE_PLAN_PRODUCT, COLUMNS

FIRST = date(2026, 1, 1)
FULL = ("new", "cycleCharge", "renew")  # a whole charge cycle at the term's unit price
SEAT_CHANGES = ("addQuantity", "removeQuantity")
CENT = Decimal("0.01")


def day(text: str) -> date:
    m, d, y = (int(p) for p in text.split("/"))
    return date(y, m, d)


def cycle_months(row: dict) -> int:
    frequency = row["BillingFrequency"]
    if frequency == "Monthly":
        return 1
    if frequency == "Annual":
        return 12
    span = relativedelta(day(row["SubscriptionEndDate"]) + timedelta(days=1), day(row["SubscriptionStartDate"]))
    return span.years * 12 + span.months


def cycle_of(row: dict) -> tuple[date, date]:
    """The charge cycle the row's first day falls in, counted from its term's start."""
    anchor, months, start = day(row["SubscriptionStartDate"]), cycle_months(row), day(row["ChargeStartDate"])
    k = 0
    while anchor + relativedelta(months=(k + 1) * months) <= start:
        k += 1
    return anchor + relativedelta(months=k * months), anchor + relativedelta(months=(k + 1) * months) - timedelta(1)


def by_subscription(rows: list[dict]) -> dict[str, list[dict]]:
    found = defaultdict(list)
    for r in rows:
        if r["ProductId"] != AZURE_PLAN_PRODUCT:
            found[r["SubscriptionId"]].append(r)
    return found


@pytest.fixture(scope="module")
def tenants() -> list[pcl.Tenant]:
    return partner_center_files.tenants(random.Random("licence-tests"), 40)


@pytest.fixture(scope="module")
def normal(tenants) -> list[dict]:
    return pcl.rows(7, tenants, FIRST, 12)


@pytest.fixture(scope="module")
def odd(tenants) -> list[dict]:
    return pcl.rows(7, tenants, FIRST, 12, anomalies=True)


def test_every_row_has_every_column_and_subtotal_by_microsofts_formula(normal, odd):
    for r in normal + odd:
        assert list(r) == list(COLUMNS)
        effective, rate = Decimal(r["EffectiveUnitPrice"]), Decimal(r["PCToBCExchangeRate"])
        subtotal = (effective * rate).quantize(CENT, ROUND_DOWN) * int(r["BillableQuantity"])
        assert Decimal(r["Subtotal"]) == subtotal, r
        assert Decimal(r["Total"]) == Decimal(r["Subtotal"]) + Decimal(r["TaxTotal"])
        assert r["Quantity"] == r["BillableQuantity"] and int(r["BillableQuantity"]) >= 0
        assert Decimal(r["UnitPrice"]) > 0 and r["PricingCurrency"] == "USD"
        assert (r["PCToBCExchangeRate"] == "1") == (r["Currency"] == "USD")
        for column in ("UnitPrice", "EffectiveUnitPrice", "Subtotal", "Total"):
            assert "E" not in r[column] and Decimal(r[column]) == Decimal(r[column]).normalize()  # "14.4", not 1.44E+1
        assert r["InvoiceNumber"] == pcl.invoice_number(day(r["ChargeStartDate"]))
        assert day(r["ChargeStartDate"]) <= day(r["ChargeEndDate"])


def test_effective_unit_price_is_the_unit_price_prorated_over_the_cycle(normal):
    for r in normal:
        if r["ProductId"] == AZURE_PLAN_PRODUCT or r["ChargeType"] == "customerCredit":
            continue
        s, e = cycle_of(r)
        a, b = day(r["ChargeStartDate"]), day(r["ChargeEndDate"])
        assert s <= a and b == e, r
        share = Decimal(r["UnitPrice"]) * ((b - a).days + 1) / ((e - s).days + 1)
        expected = share.quantize(Decimal("0.000001"), ROUND_HALF_UP) if (a, b) != (s, e) else Decimal(r["UnitPrice"])
        assert abs(Decimal(r["EffectiveUnitPrice"])) == expected, r


def test_microsofts_example_a_seat_added_on_day_2_of_a_30_day_cycle(tenants):
    """$4 a seat, a cycle of 30 days (June 10 - July 9), a second seat on June 11: the seat is refunded and two
    are charged for 29 of the 30 days, 4/30 x 29 = 3.866667 a seat. Microsoft's page prints -3.87 and +7.74
    (rounded to the cent); the NCE file's formula, ROUNDDOWN(EffectiveUnitPrice x rate, 2) x seats, which the
    generator follows, makes -3.86 and +7.72 of the same EffectiveUnitPrice."""
    usd = next(t for t in tenants if t.currency == "USD")
    licence = pcl.Licence(usd, "sub", "CFQ7TTC0LH16", "0001", "Exchange Online (Plan 1)", "Exchange Online (Plan 1)",
                          12, "Monthly", Decimal(4), date(2019, 6, 10), 1)
    rows = pcl.subscription_rows(licence, [pcl.Event("add", date(2019, 6, 11), 2)], date(2019, 6, 30),
                                 random.Random(1))
    new, refund, charge = rows
    assert (new["ChargeType"], new["ChargeStartDate"], new["ChargeEndDate"], new["Subtotal"]) == (
        "new", "6/10/2019", "7/9/2019", "4")
    assert refund["ChargeType"] == charge["ChargeType"] == "addQuantity"
    assert refund["OrderId"] == charge["OrderId"] != new["OrderId"]
    days = (date(2019, 7, 9) - date(2019, 6, 11)).days + 1
    cycle = (date(2019, 7, 9) - date(2019, 6, 10)).days + 1
    assert (days, cycle) == (29, 30)
    per_seat = (Decimal(4) * days / cycle).quantize(Decimal("0.000001"), ROUND_HALF_UP)
    for r, seats, sign in ((refund, 1, -1), (charge, 2, 1)):
        assert (r["ChargeStartDate"], r["ChargeEndDate"], r["UnitPrice"]) == ("6/11/2019", "7/9/2019", "4")
        assert Decimal(r["EffectiveUnitPrice"]) == sign * per_seat and r["BillableQuantity"] == str(seats)
        assert Decimal(r["Subtotal"]) == sign * per_seat.quantize(CENT, ROUND_DOWN) * seats
        assert sign * per_seat.quantize(CENT, ROUND_HALF_UP) * seats == {1: Decimal("-3.87"), 2: Decimal("7.74")}[
            seats]  # Microsoft's printed figures: the same price to the nearest cent


def test_seat_changes_are_a_refund_and_a_charge_over_one_period(normal):
    pairs = defaultdict(list)
    for r in normal:
        if r["ChargeType"] in SEAT_CHANGES:
            pairs[r["OrderId"]].append(r)
    assert {r["ChargeType"] for p in pairs.values() for r in p} == set(SEAT_CHANGES)
    for refund, charge in pairs.values():
        assert refund["SubscriptionId"] == charge["SubscriptionId"] and refund["ChargeType"] == charge["ChargeType"]
        assert (refund["ChargeStartDate"], refund["ChargeEndDate"]) == (charge["ChargeStartDate"], charge["ChargeEndDate"])
        assert Decimal(refund["Subtotal"]) < 0 < Decimal(charge["Subtotal"])
        assert Decimal(refund["EffectiveUnitPrice"]) == -Decimal(charge["EffectiveUnitPrice"])
        grew = int(charge["BillableQuantity"]) > int(refund["BillableQuantity"])
        assert grew == (charge["ChargeType"] == "addQuantity")


def test_cycle_charges_tile_each_cycle_and_seats_add_up(normal):
    """Within Microsoft's rules: each whole cycle starts the day after the last ended (a conversion's refund
    gives back the rest of a cycle; the new term starts that day), bills the seats the changes left, and its
    term's unit price; reductions and cancels come within 7 days of the purchase, renewal or addition."""
    for rows in by_subscription(normal).values():
        covered, seats, price, anchors = None, None, None, []
        for r in rows:
            kind, a, b = r["ChargeType"], day(r["ChargeStartDate"]), day(r["ChargeEndDate"])
            n = int(r["BillableQuantity"])
            negative = Decimal(r["Subtotal"]) < 0
            if kind in FULL or (kind == "convert" and not negative):
                assert covered is None if kind == "new" else a == covered + timedelta(days=1), r
                assert (a, b) == cycle_of(r) and a == cycle_of(r)[0]
                if kind == "new" or kind == "renew" or kind == "convert":
                    assert a == day(r["SubscriptionStartDate"]) and a == day(r["OrderDate"])
                    anchors.append(a)
                else:
                    assert r["UnitPrice"] == price and n == seats, r  # the term's price, the seats as left
                covered, seats, price = b, n, r["UnitPrice"]
            elif kind == "convert":  # the refund of the rest of the monthly cycle
                assert b == covered and r["TermAndBillingCycle"].startswith("One-Month") and n == seats
                covered = a - timedelta(days=1)
            elif kind in SEAT_CHANGES:
                assert b == covered and r["UnitPrice"] == price
                if negative:
                    assert n == seats
                else:
                    if kind == "removeQuantity":
                        assert (a - anchors[-1]).days <= 7
                    seats = n
                    if kind == "addQuantity":
                        anchors.append(a)
            elif kind == "cancel":
                assert negative and n == seats and b == covered and (a - anchors[-1]).days <= 7
            else:
                assert kind == "customerCredit" and negative and n == 1


def test_a_cancel_ends_the_subscription(normal, tenants):
    cancelled = 0
    for rows in by_subscription(normal).values():
        kinds = [r["ChargeType"] for r in rows]
        if "cancel" in kinds:
            cancelled += 1
            assert kinds[-1] == "cancel" and kinds.count("cancel") == 1
    assert cancelled
    licence = pcl.Licence(tenants[0], "sub", "CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic",
                          "Microsoft 365 Business Basic", 1, "Monthly", Decimal("7.2"), date(2026, 3, 5), 4)
    rows = pcl.subscription_rows(licence, [pcl.Event("cancel", date(2026, 4, 8)), pcl.Event("add", date(2026, 4, 9), 6),
                                           pcl.Event("credit", date(2026, 5, 1), amount=Decimal(5))],
                                 date(2026, 12, 31), random.Random(2))
    assert [(r["ChargeType"], r["ChargeStartDate"], r["ChargeEndDate"]) for r in rows] == [
        ("new", "3/5/2026", "4/4/2026"), ("renew", "4/5/2026", "5/4/2026"), ("cancel", "4/8/2026", "5/4/2026")]


def test_a_conversion_shares_a_reference_id(normal):
    references = defaultdict(list)
    for r in normal:
        if r["ReferenceId"]:
            references[r["ReferenceId"]].append(r)
    assert references
    assert sum(r["ChargeType"] == "convert" for r in normal) == 2 * len(references)
    for refund, charge in references.values():
        assert refund["ChargeType"] == charge["ChargeType"] == "convert"
        assert refund["SubscriptionId"] == charge["SubscriptionId"] and refund["OrderId"] == charge["OrderId"]
        assert Decimal(refund["Subtotal"]) < 0 < Decimal(charge["Subtotal"])
        assert refund["ChargeStartDate"] == charge["ChargeStartDate"] == charge["SubscriptionStartDate"]
        assert refund["TermAndBillingCycle"] == "One-Month commitment for monthly billing"
        assert charge["TermAndBillingCycle"] == "One-Year commitment for monthly/yearly billing"
        start = day(charge["SubscriptionStartDate"])
        assert day(charge["SubscriptionEndDate"]) == start + relativedelta(years=1) - timedelta(days=1)


def test_azure_plan_rows_two_subscriptions_of_one_sku_and_the_mix(normal):
    azure = [r for r in normal if r["ProductId"] == AZURE_PLAN_PRODUCT]
    assert azure and all(r["ProductName"] == r["SkuName"] == "Azure plan" and r["ChargeType"] == "new"
                         and r["MeterDescription"] and Decimal(r["Subtotal"]) > 0 for r in azure)
    skus = defaultdict(set)
    for r in normal:
        if r["ProductId"] != AZURE_PLAN_PRODUCT:
            skus[(r["CustomerId"], r["ProductId"], r["SkuId"])].add(r["SubscriptionId"])
    assert any(len(s) > 1 for s in skus.values())
    assert {r["ChargeType"] for r in normal} == {"new", "cycleCharge", "renew", "addQuantity", "removeQuantity",
                                                  "cancel", "convert", "customerCredit"}
    credits = [r for r in normal if r["ChargeType"] == "customerCredit"]
    assert all(r["CreditReasonCode"] and r["PriceAdjustmentDescription"] and r["BillableQuantity"] == "1"
               for r in credits)
    renewed = [r for r in normal if r["ChargeType"] == "renew"]
    before = {(r["SubscriptionId"], r["SubscriptionEndDate"]): r["UnitPrice"] for r in normal if r["ChargeType"] in FULL}
    new_price = [r for r in renewed if before.get((r["SubscriptionId"], _day_before(r["SubscriptionStartDate"])),
                                                  r["UnitPrice"]) != r["UnitPrice"]]
    assert new_price  # a renewal at a new price
    assert {r["ProductQualifiers"] for r in normal} >= {"", "AddOn"}
    assert {r["BillingFrequency"] for r in normal} >= {"Monthly", "Annual"}


def _day_before(text: str) -> str:
    d = day(text) - timedelta(days=1)
    return f"{d.month}/{d.day}/{d.year}"


def anomalies_in(rows: list[dict]) -> set[str]:
    """What Microsoft's rules forbid, found as issue #22 item 7 asks: a reduction or cancel more than 7 days after
    the purchase, renewal or addition; a UnitPrice change inside a term; seats that do not add up."""
    found = set()
    for subscription in by_subscription(rows).values():
        seats, price, anchor = None, {}, None
        for r in subscription:
            kind, a, n = r["ChargeType"], day(r["ChargeStartDate"]), int(r["BillableQuantity"])
            negative = Decimal(r["Subtotal"]) < 0
            term = r["SubscriptionStartDate"], r["SubscriptionEndDate"]  # a conversion on a renewal day: two terms
            if kind != "customerCredit" and price.setdefault(term, r["UnitPrice"]) != r["UnitPrice"]:
                found.add("price")
            if kind in ("new", "renew") or (kind == "convert" and not negative):
                seats, anchor = n, a
            elif kind == "cycleCharge":
                if n != seats:
                    found.add("seats")
                seats = n
            elif kind in SEAT_CHANGES and not negative:
                if kind == "removeQuantity" and (a - anchor).days > 7:
                    found.add("late reduction")
                if kind == "addQuantity":
                    anchor = a
                seats = n
            elif kind == "cancel" and (a - anchor).days > 7:
                found.add("late cancel")
    return found


def test_anomalies_only_when_asked(normal, odd):
    assert anomalies_in(normal) == set()
    assert anomalies_in(odd) == {"price", "seats", "late reduction", "late cancel"}


def test_the_same_seed_the_same_file_another_seed_another(tmp_path, tenants):
    one = pcl.write(tmp_path / "one.csv", pcl.rows(11, tenants[:8], FIRST, 6))
    again = pcl.write(tmp_path / "again.csv", pcl.rows(11, tenants[:8], FIRST, 6))
    other = pcl.write(tmp_path / "other.csv", pcl.rows(12, tenants[:8], FIRST, 6))
    assert one.read_bytes() == again.read_bytes() != other.read_bytes()
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert pcl.generate(a, 5, 6, 300) == pcl.generate(b, 5, 6, 300)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("iso", [False, True])
def test_write_round_trips_with_the_published_header(tmp_path, normal, legacy, iso):
    path = pcl.write(tmp_path / "licences.csv", normal, legacy=legacy, iso=iso)
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        back = list(reader)
    header = list(COLUMNS)
    if legacy:
        header = ["ResellerMpnId" if c == "Tier2MpnId" else c for c in header if c != "ProductCategory"]
    assert reader.fieldnames == header and len(header) == (46 if legacy else 47)
    for written, read in zip(normal, back, strict=True):
        if legacy:
            read = {("Tier2MpnId" if c == "ResellerMpnId" else c): v for c, v in read.items()}
        for column, value in written.items():
            if legacy and column == "ProductCategory":
                continue
            if iso and column in pcl.DATE_COLUMNS and value:
                assert read[column] == day(value).isoformat() + "T00:00:00"
            else:
                assert read[column] == value


def test_generate_makes_about_the_rows_asked_for_the_usage_files_tenants(tmp_path):
    made = pcl.generate(tmp_path / "licences.csv", 9, 40, 2_000)
    assert made == partner_center_files.tenants(random.Random("9/tenants"), 40)
    with (tmp_path / "licences.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert 1_900 <= len(rows) <= 2_100
    assert {r["CustomerId"] for r in rows} <= {t.customer_id for t in made}
    assert pcl.main(["--out", str(tmp_path / "cli.csv"), "--tenants", "3", "--rows", "120", "--seed", "4"]) == 0
    pcl.generate(tmp_path / "again.csv", 4, 3, 120)
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()


EVENT = st.sampled_from(["add", "remove", "cancel", "renew_price", "convert", "credit"])


@settings(max_examples=60, deadline=None)
@given(term=st.sampled_from([(1, "Monthly"), (12, "Monthly"), (12, "Annual"), (36, "Annual"), (36, "")]),
       start=st.dates(date(2026, 1, 1), date(2026, 12, 31)), seats=st.integers(1, 30),
       steps=st.lists(st.tuples(EVENT, st.integers(0, 200), st.integers(1, 5)), max_size=6))
def test_any_sequence_keeps_the_conventions(term, start, seats, steps):
    """Whatever purchases, seat changes, cancels, renewals and conversions come, in any order: every row by the
    formula, seat changes in pairs, nothing after a cancel, every charge inside its term and cycle."""
    tenant = partner_center_files.tenants(random.Random("hypothesis"), 1, ("EUR",))[0]
    months, billing = term
    licence = pcl.Licence(tenant, "sub", "CFQ7TTC0LFLZ", "0001", "Microsoft 365 E3", "Microsoft 365 E3", months,
                          billing, pcl.unit_price(Decimal(36), months, billing), start, seats)
    events, now, monthly = [], seats, months == 1
    for kind, offset, size in sorted(steps, key=lambda s: s[1]):
        when = start + timedelta(days=offset)
        if kind == "add":
            now += size
            events.append(pcl.Event("add", when, now))
        elif kind == "remove" and now > 1:
            now = max(1, now - size)
            events.append(pcl.Event("remove", when, now))
        elif kind == "convert" and monthly:
            monthly = False
            events.append(pcl.Event("convert", when))
        elif kind in ("cancel", "renew_price", "credit"):
            events.append(pcl.Event(kind, when, amount=Decimal(size)))
    rows = pcl.subscription_rows(licence, events, start + timedelta(days=400), random.Random(3))
    assert rows[0]["ChargeType"] == "new"
    kinds = [r["ChargeType"] for r in rows]
    assert "cancel" not in kinds[:-1]
    for r in rows:
        subtotal = (Decimal(r["EffectiveUnitPrice"]) * Decimal("0.9187")).quantize(CENT, ROUND_DOWN)
        assert Decimal(r["Subtotal"]) == subtotal * int(r["BillableQuantity"])
        a, b = day(r["ChargeStartDate"]), day(r["ChargeEndDate"])
        assert day(r["SubscriptionStartDate"]) <= a <= b <= day(r["SubscriptionEndDate"])
        if r["ChargeType"] != "customerCredit":
            assert b == cycle_of(r)[1]
    changes = defaultdict(list)
    for r in rows:
        if r["ChargeType"] in SEAT_CHANGES:
            changes[r["OrderId"]].append(r)
    assert all(len(p) == 2 and p[0]["ChargeStartDate"] == p[1]["ChargeStartDate"] for p in changes.values())


def test_the_sample_licence_file(tmp_path):
    """scripts/make_sample_data.py's licence file: the usage file's two tenants, Microsoft's October 2026 invoice
    of licences bought from August, each of the cases the brief names, within Microsoft's rules."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_data",
                                                  Path(__file__).parent.parent / "scripts" / "make_sample_data.py")
    sample = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sample)
    path = sample.partner_center_licences(tmp_path / "licences.csv")
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    usage = partner_center_files.tenants(random.Random("20261102/tenants"), 2, ("USD", "EUR"))
    assert {(r["CustomerId"], r["CustomerName"], r["Currency"]) for r in rows} == {
        (t.customer_id, t.name, t.currency) for t in usage}
    assert {r["InvoiceNumber"] for r in rows} == {pcl.invoice_number(date(2026, 10, 1))}
    assert rows == [r for r in sample.licence_history() if r["InvoiceNumber"] in {x["InvoiceNumber"] for x in rows}]
    rows = sample.licence_history()  # the subscriptions' whole story: its seats and cycles add up
    assert anomalies_in(rows) == set()
    kinds = {r["ChargeType"] for r in rows}
    assert kinds >= {"new", "renew", "cycleCharge", "addQuantity", "removeQuantity", "cancel"}
    assert any(r["ProductId"] == AZURE_PLAN_PRODUCT for r in rows)
    test_seat_changes_are_a_refund_and_a_charge_over_one_period(rows)
    test_cycle_charges_tile_each_cycle_and_seats_add_up(rows)
    skus = defaultdict(set)
    for r in rows:
        skus[(r["CustomerId"], r["ProductId"])].add(r["SubscriptionId"])
    assert max(len(s) for s in skus.values()) == 2
    assert sample.partner_center_licences(tmp_path / "again.csv").read_bytes() == path.read_bytes()  # every run
