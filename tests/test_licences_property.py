"""The property of licence billing (issue #22, "Done when"): for any purchases, seat changes, cancellations,
renewals, conversions and credits benchmarks.partner_center_licences can write, what the customer is billed per
subscription and charge period is Microsoft's Subtotal x (1 + Licence Markup), rounded per row, however many
times the batch runs, whether the file is in the inbox twice, and whether it arrives in two files, the later one
repeating rows of the earlier. The pipeline runs in-process on real files and a real ledger, without its PDFs and
review page (write_outputs: what the ledger says is what is checked); the expected amounts are computed from the
CSV rows (tests/licence_files.py)."""
from __future__ import annotations

import random
import shutil
import tempfile
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal as D
from pathlib import Path
from unittest import mock

import licence_files as lf
from dateutil.relativedelta import relativedelta
from hypothesis import HealthCheck, event, given, reject, settings
from hypothesis import strategies as st
from licence_files import ALPHA, BETA

from benchmarks import partner_center_licences as pcl
from billing_batch import pipeline

START = date(2026, 8, 1)  # the contract's start, and the first day a licence may be bought
SETTINGS_MARKUP = D("0.1")

# (kind, days after the purchase, seats added or taken away, a price rise at renewal, a credit)
change = st.tuples(st.sampled_from(["add", "add", "remove", "remove", "cancel", "renew_price", "convert", "credit"]),
                   st.integers(0, 200), st.integers(1, 6), st.sampled_from(["1.05", "1.083", "1.1"]),
                   st.sampled_from(["5", "12.5", "50"]))


@st.composite
def licences(draw, tenant) -> tuple[pcl.Licence, list[pcl.Event]]:
    """A subscription on any term the catalogue sells it on, and what happens to it, as the generator takes it."""
    product = draw(st.sampled_from(pcl.PRODUCTS))
    term = draw(st.sampled_from(product.terms))
    billing = "Monthly" if term == 1 else draw(st.sampled_from(["Monthly", "Annual"] if term == 12 else ["Annual", ""]))
    start = START + timedelta(days=draw(st.integers(0, 90)))
    seats = draw(st.integers(1, 25))
    price = pcl.unit_price(product.monthly, term, billing)
    licence = pcl.Licence(tenant, pcl.guid(random.Random(draw(st.integers(0, 2**32)))), product.product_id,
                          product.sku_id, product.name, product.name, term, billing, price, start, seats)
    events, monthly = [], term == 1
    for kind, days, by, rise, credit in sorted(draw(st.lists(change, max_size=5)), key=lambda c: c[1]):
        day = start + timedelta(days=days)
        if kind == "add":
            seats += by
            events.append(pcl.Event("add", day, seats))
        elif kind == "remove" and seats > 1:
            seats = max(1, seats - by)
            events.append(pcl.Event("remove", day, seats))
        elif kind == "cancel":
            events.append(pcl.Event("cancel", day))
        elif kind == "renew_price":
            events.append(pcl.Event("renew_price", day, amount=(price * D(rise)).quantize(D("0.01"))))
        elif kind == "convert" and monthly:
            monthly = False
            events.append(pcl.Event("convert", day))
        elif kind == "credit":
            events.append(pcl.Event("credit", day, amount=D(credit)))
    return licence, events


@st.composite
def worlds(draw):
    tenant = draw(st.sampled_from([ALPHA, BETA]))
    months = draw(st.integers(3, 9))
    until = START + relativedelta(months=months) - timedelta(days=1)
    split = draw(st.one_of(st.none(), st.integers(1, months - 1)))  # the month the second file starts
    rng = random.Random(draw(st.integers(0, 2**32)))
    rows = []
    for licence, events in draw(st.lists(licences(tenant), min_size=1, max_size=3)):
        try:
            rows += pcl.subscription_rows(licence, events, until, rng)
        except ValueError:
            reject()  # a sequence the generator does not make
    return tenant, until, split, pcl.in_charge_order(rows)


def run_quietly(inbox: Path, out: Path, as_of: date) -> int:
    """pipeline.run: the ledger written, no PDF, schedule book or review page."""
    with mock.patch.object(pipeline, "write_outputs", lambda *args: None):
        report = pipeline.run(pipeline.Options(input=inbox, output=out, as_of=as_of, new_ledger=True))
    return report.exit_code


def by_period(lines: list[lf.Billed]) -> dict[tuple, D]:
    found: dict[tuple, D] = defaultdict(D)
    for b in lines:
        found[(b.subscription_id or "").lower(), b.period_start, b.period_end] += b.amount
    return dict(found)


def expected_by_period(rows: list[dict[str, str]], markup: D) -> dict[tuple, D]:
    found: dict[tuple, D] = defaultdict(D)
    for r in rows:
        found[r["SubscriptionId"].lower(), lf.starts(r), lf.us_date(r["ChargeEndDate"])] += lf.cost_plus(r, markup)
    return dict(found)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(worlds(), st.sampled_from(["Advance", "Arrears"]), st.sampled_from([None, D(0), D("0.15"), D("0.1234"),
                                                                          D("-0.05")]),
       st.integers(0, 2), st.booleans(), st.integers(0, 45))
def test_each_subscription_and_period_is_billed_microsofts_amount_with_markup_once(world, policy, typed, reruns,
                                                                                   copied, overlap):
    tenant, until, split, rows = world
    markup = SETTINGS_MARKUP if typed is None else typed
    folder = Path(tempfile.mkdtemp(prefix="licence-property-"))
    try:
        inbox, out = folder / "inbox", folder / "out"
        lf.book(inbox, [lf.contract_row("CTR-1", tenant, START, policy, typed)], **{"Licence Markup": "10%"})
        last = until + timedelta(days=2)  # every contract's invoice cutting off on until is made by then
        runs: list[tuple[date, list[dict[str, str]], str]] = []
        cut = START + relativedelta(months=split) if split else None
        if cut:
            # the first file through the day before cut, billed; then a later one from overlap days before it
            runs.append((cut + timedelta(days=1), [r for r in rows if lf.starts(r) < cut], "licences-1.csv"))
            runs.append((last, [r for r in rows if lf.starts(r) >= cut - timedelta(days=overlap)], "licences-2.csv"))
        else:
            runs.append((last, rows, "licences.csv"))
        event(f"files: {len(runs)}, copied: {copied}, reruns: {reruns}")
        for kind in {r["ChargeType"] for r in rows}:
            event(f"charge type: {kind}")
        for as_of, part, name in runs:
            pcl.write(inbox / name, part)
            if copied:
                shutil.copyfile(inbox / name, inbox / f"copy of {name}")
            for _ in range(1 + reruns):
                assert run_quietly(inbox, out, as_of) == 0
        lines = lf.ledger_lines(out)
        assert {b.kind for b in lines} <= {"Licence"}
        event(f"credit notes: {min(1, sum(b.doc_type != 'Invoice' for b in lines))}")
        assert by_period(lines) == expected_by_period(rows, markup)
        assert len(lines) == len(rows) == len(set(lf.ledger_usage_ids(out)))  # each charge on one line, once
    finally:
        shutil.rmtree(folder, ignore_errors=True)
