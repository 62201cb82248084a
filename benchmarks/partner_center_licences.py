"""Seeded Partner Center new commerce (NCE) invoice reconciliation files: licence charges, for the tests, the
sample and the licence benchmark.

    python -m benchmarks.partner_center_licences --out licences.csv [--tenants 2000] [--rows 100000] [--seed N]

Every published column, in Partner Center's order (`write(legacy=True)`: the older header, ResellerMpnId and
no ProductCategory). One row per charge, as Microsoft writes them: a purchase (new) for the first charge cycle,
a cycle charge at each later cycle start, a renewal at the term's end (a monthly term renews every month), a
seat change as a refund of the earlier seats and a charge of the new ones for the rest of the cycle, a cancel
as a refund, a monthly-to-annual conversion as a refund and a new term tied by a ReferenceId, a customer
credit; beside them the Azure plan's rows (billed from the usage file, to be skipped). Charge cycles are
anchored on the term's start. EffectiveUnitPrice is UnitPrice x the days charged / the days of the cycle
(6 places, half up; negative for a refund) and Subtotal = ROUNDDOWN(EffectiveUnitPrice x PCToBCExchangeRate,
2) x BillableQuantity, Microsoft's formula for seat-based charges. Money is decimal text, never a float.
The tenants are those of benchmarks.partner_center_files for the same seed and count.
"""
from __future__ import annotations

import argparse
import csv
import functools
import random
import string
import sys
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from pathlib import Path

from dateutil.relativedelta import relativedelta

from benchmarks.partner_center_files import METERS, PARTNER, Tenant
from benchmarks.partner_center_files import tenants as make_tenants
from billing_batch.inputs.licences import AZURE_PLAN_PRODUCT, COLUMNS

CENT = Decimal("0.01")
PLACES = Decimal("0.000001")  # EffectiveUnitPrice: six places
ONE_DAY = timedelta(days=1)
TAX_RATE = Decimal(0)  # the partner's tax on Microsoft's invoice: reverse charge
LEGACY_COLUMNS = tuple("ResellerMpnId" if c == "Tier2MpnId" else c for c in COLUMNS if c != "ProductCategory")
DATE_COLUMNS = ("OrderDate", "ChargeStartDate", "ChargeEndDate", "SubscriptionStartDate", "SubscriptionEndDate",
                "PCToBCExchangeRateDate")
TERMS = {1: "One-Month commitment for monthly billing", 12: "One-Year commitment for monthly/yearly billing",
         36: "Three-3 Years commitment for monthly/3 Years/yearly billing"}


@dataclass(frozen=True)
class Product:
    product_id: str
    sku_id: str
    name: str  # ProductName and SkuName
    monthly: Decimal  # list price per seat per month on a yearly term, USD
    terms: tuple[int, ...]  # the terms it is sold on, months
    qualifiers: str = ""  # ProductQualifiers
    weight: int = 1  # how often resellers sell it


# Microsoft's catalogue IDs (the Dynamics 365 and Teams Premium ones in their form, not checked) and the US list
# prices per seat per month on a yearly term.
PRODUCTS = (
    Product("CFQ7TTC0LH18", "0001", "Microsoft 365 Business Basic", Decimal("6.00"), (1, 12), weight=6),
    Product("CFQ7TTC0LDPB", "0001", "Microsoft 365 Business Standard", Decimal("12.50"), (1, 12), weight=6),
    Product("CFQ7TTC0LCHC", "0001", "Microsoft 365 Business Premium", Decimal("22.00"), (1, 12), weight=5),
    Product("CFQ7TTC0LF8Q", "0001", "Office 365 E3", Decimal("23.00"), (1, 12, 36), weight=3),
    Product("CFQ7TTC0LFLZ", "0001", "Microsoft 365 E3", Decimal("36.00"), (1, 12, 36), weight=3),
    Product("CFQ7TTC0LFLX", "0001", "Microsoft 365 E5", Decimal("57.00"), (1, 12, 36), weight=2),
    Product("CFQ7TTC0LFMW", "0001", "Dynamics 365 Sales Enterprise", Decimal("105.00"), (12, 36), weight=1),
    Product("CFQ7TTC0MM8R", "0002", "Microsoft 365 Copilot", Decimal("30.00"), (12,), "AddOn", weight=2),
    Product("CFQ7TTC0LH16", "0001", "Exchange Online (Plan 1)", Decimal("4.00"), (1, 12), weight=4),
    Product("CFQ7TTC0RM8K", "0001", "Microsoft Teams Premium", Decimal("10.00"), (1, 12), "AddOn", weight=1),
)
BY_ID = {p.product_id: p for p in PRODUCTS}
CREDIT_REASONS = ("Service outage credit", "Goodwill credit", "Billing correction")
AZURE_METERS = [m for kind in METERS.values() for m in kind]


@dataclass(frozen=True)
class Licence:
    """One subscription as bought."""
    tenant: Tenant
    subscription_id: str
    product_id: str
    sku_id: str
    sku_name: str
    product_name: str
    term_months: int  # 1, 12 or 36
    billing: str  # "Monthly", "Annual" or "" (upfront: one charge for the whole term)
    unit_price: Decimal  # per seat per charge cycle, USD (unit_price() from the list price)
    start: date
    seats: int


@dataclass(frozen=True)
class Event:
    """What happens to a subscription later. kind:
    add / remove: seats is the new total, on day (a refund of the earlier seats and a charge of the new ones);
    cancel: a refund of the rest of the cycle, nothing after;
    renew_price: amount is the unit price from the next renewal on;
    convert: a monthly term becomes a yearly one billed monthly from day; amount its unit price (0: the list
        price's, as unit_price() makes it);
    credit: a customer credit of amount (USD);
    and two that Microsoft's rules forbid and files show (tenant_rows(anomalies=True)):
    price: amount is the unit price from day on, inside the term;
    drift: the next cycle charge bills seats, with no seat change before it."""
    kind: str
    day: date
    seats: int = 0
    amount: Decimal = Decimal(0)


def unit_price(monthly: Decimal, term_months: int, billing: str) -> Decimal:
    """The price of a seat for one charge cycle from the yearly term's monthly list price: a monthly term costs 20%
    more, a yearly or longer term billed monthly 5% more (Microsoft's rules since April 2025)."""
    if term_months == 1:
        return (monthly * Decimal("1.2")).quantize(CENT, ROUND_HALF_UP)
    if billing == "Monthly":
        return (monthly * Decimal("1.05")).quantize(CENT, ROUND_HALF_UP)
    return monthly * (12 if billing == "Annual" else term_months)


@functools.lru_cache(maxsize=65_536)  # the same few anchors, month after month: relativedelta is slow
def _months(start: date, months: int) -> date:
    return start + relativedelta(months=months)


def _cycle_months(term_months: int, billing: str) -> int:
    return {"Monthly": 1, "Annual": 12}.get(billing, term_months)


def _us(d: date) -> str:
    return f"{d.month}/{d.day}/{d.year}"


def _money(d: Decimal) -> str:
    return "0" if d == 0 else format(d.normalize(), "f")


def guid(rng: random.Random) -> str:
    """A GUID from rng: a SubscriptionId, ReferenceId..."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


ALNUM = string.ascii_letters + string.digits


def _order_id(rng: random.Random) -> str:
    return "".join(rng.choices(ALNUM, k=32)) + "1"  # as Partner Center's: 0ET2qaZvJGfF9wgSKnWzR5JLmhp10lOc1


_INVOICES: dict[tuple[int, int], str] = {}


def invoice_number(d: date) -> str:
    """Microsoft's invoice of d's calendar month: the same for every row and seed, rising month by month."""
    key = (d.year, d.month)
    if key not in _INVOICES:
        _INVOICES[key] = f"G{10_000_000 + ((d.year - 2020) * 12 + d.month) * 12_347:09d}"
    return _INVOICES[key]


def _domain(tenant: Tenant) -> str:  # as the usage file has it
    return f"{tenant.name.split()[0].lower()}{tenant.name.split()[-1]}.onmicrosoft.com"


def _tier2(tenant: Tenant) -> str:
    """An indirect reseller's MPN ID for a third of the tenants, from the tenant ID (stable); blank: sold direct."""
    n = int(tenant.customer_id[:8], 16)
    return str(6_000_000 + n % 900_000) if n % 3 == 0 else ""


def _availability(product_id: str, sku_id: str) -> str:
    r = random.Random(f"availability/{product_id}/{sku_id}")
    return "CFQ7TTC0" + "".join(r.choices(string.ascii_uppercase + string.digits, k=4))


def _fixed(tenant: Tenant) -> dict[str, str]:
    """The columns of every row of the tenant, the rest blank."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(PartnerId=PARTNER[0], CustomerId=tenant.customer_id, CustomerName=tenant.name,
               CustomerDomainName=_domain(tenant), CustomerCountry=tenant.country, MpnId=PARTNER[2],
               Tier2MpnId=_tier2(tenant), Currency=tenant.currency, PublisherName="Microsoft Corporation",
               PricingCurrency="USD", PCToBCExchangeRate=tenant.rate)
    return row


def _charge(base: dict[str, str], rng: random.Random, rate: Decimal, kind: str, start: date, end: date,
            price: Decimal, effective: Decimal, seats: int, order: str, ordered: date) -> dict[str, str]:
    """One row: Subtotal by Microsoft's formula for seat-based charges."""
    subtotal = (effective * rate).quantize(CENT, ROUND_DOWN) * seats
    tax = (subtotal * TAX_RATE).quantize(CENT, ROUND_HALF_UP)
    row = dict(base)
    row.update(InvoiceNumber=invoice_number(start), OrderId=order, OrderDate=_us(ordered), ChargeType=kind,
               UnitPrice=_money(price), Quantity=str(seats), Subtotal=_money(subtotal), TaxTotal=_money(tax),
               Total=_money(subtotal + tax), ChargeStartDate=_us(start), ChargeEndDate=_us(end),
               EffectiveUnitPrice=_money(effective), AlternateId=f"{rng.getrandbits(48):012x}",
               BillableQuantity=str(seats), PCToBCExchangeRateDate=_us(start.replace(day=1)))
    return row


def _prorated(price: Decimal, a: date, b: date, s: date, e: date) -> Decimal:
    """UnitPrice for days a..b of the cycle s..e: the days charged over the cycle's days."""
    if (a, b) == (s, e):
        return price
    return (price * ((b - a).days + 1) / ((e - s).days + 1)).quantize(PLACES, ROUND_HALF_UP)


def subscription_rows(licence: Licence, events: Sequence[Event], until: date,
                      rng: random.Random) -> list[dict[str, str]]:
    """Every row Microsoft writes for the subscription from its start through `until` (the rows whose charge
    starts on or before it), in time order. Events after until, or after a cancel, are not made."""
    if licence.term_months not in TERMS or licence.billing not in ("Monthly", "Annual", ""):
        raise ValueError(f"no such term: {licence.term_months} months billed {licence.billing!r}")
    if licence.seats < 1 or licence.unit_price <= 0:
        raise ValueError("a licence has seats and a price")
    pending = sorted(events, key=lambda ev: ev.day)  # stable: same-day events in the order given
    if pending and pending[0].day < licence.start:
        raise ValueError(f"an event before the purchase on {licence.start}")
    product = BY_ID.get(licence.product_id)
    base = _fixed(licence.tenant)
    base.update(ProductId=licence.product_id, SkuId=licence.sku_id,
                AvailabilityId=_availability(licence.product_id, licence.sku_id), SkuName=licence.sku_name,
                ProductName=licence.product_name, SubscriptionDescription=licence.product_name,
                SubscriptionId=licence.subscription_id, UnitType="Licenses",
                ProductQualifiers=product.qualifiers if product else "", ProductCategory="OnlineServicesNCE")
    rate = Decimal(licence.tenant.rate)
    term_start, term_months, billing = licence.start, licence.term_months, licence.billing
    price, next_price, seats, drift = licence.unit_price, None, licence.seats, None
    made: list[dict[str, str]] = []

    def term(row: dict[str, str]) -> dict[str, str]:
        row.update(TermAndBillingCycle=TERMS[term_months], BillingFrequency=billing,
                   SubscriptionStartDate=_us(term_start),
                   SubscriptionEndDate=_us(_months(term_start, term_months) - ONE_DAY))
        made.append(row)
        return row

    def charge(kind, a, b, s, e, n, order, ordered, sign=1):
        return term(_charge(base, rng, rate, kind, a, b, price, sign * _prorated(price, a, b, s, e), n, order,
                            ordered))

    order, kind, k, i = _order_id(rng), "new", 0, 0
    while True:
        step = _cycle_months(term_months, billing)
        s, e = _months(term_start, k * step), _months(term_start, (k + 1) * step) - ONE_DAY
        if s > until:
            break
        if drift is not None:  # seats that do not add up: the cycle bills another count
            seats, drift = drift, None
        charge(kind, s, e, s, e, seats, order, s)
        while i < len(pending) and pending[i].day <= min(e, until):
            ev, d = pending[i], pending[i].day
            i += 1
            if ev.kind in ("add", "remove"):
                if ev.seats < 1 or (ev.seats <= seats if ev.kind == "add" else ev.seats >= seats):
                    raise ValueError(f"{ev.kind} on {d} to {ev.seats} seats from {seats}")
                change = _order_id(rng)
                kind_ = "addQuantity" if ev.kind == "add" else "removeQuantity"
                charge(kind_, d, e, s, e, seats, change, d, sign=-1)
                seats = ev.seats
                charge(kind_, d, e, s, e, seats, change, d)
            elif ev.kind == "cancel":
                charge("cancel", d, e, s, e, seats, _order_id(rng), d, sign=-1)
                return made
            elif ev.kind == "renew_price":
                next_price = ev.amount
            elif ev.kind == "price":
                price = ev.amount
            elif ev.kind == "drift":
                drift = ev.seats
            elif ev.kind == "credit":
                row = _charge(base, rng, rate, "customerCredit", d, e, ev.amount, -ev.amount, 1, _order_id(rng), d)
                row.update(CreditReasonCode=rng.choice(CREDIT_REASONS),
                           PriceAdjustmentDescription=f'["Customer credit of {_money(ev.amount)} USD"]')
                term(row)
            elif ev.kind == "convert":
                if term_months != 1:
                    raise ValueError(f"convert on {d}: only a monthly term converts to a yearly one")
                order, reference = _order_id(rng), guid(rng)
                charge("convert", d, e, s, e, seats, order, d, sign=-1)["ReferenceId"] = reference
                list_price = (price / Decimal("1.2")).quantize(CENT, ROUND_HALF_UP)
                price = ev.amount or unit_price(list_price, 12, "Monthly")
                term_start, term_months, billing, next_price, k = d, 12, "Monthly", None, 0
                s, e = d, _months(d, 1) - ONE_DAY
                charge("convert", s, e, s, e, seats, order, d)["ReferenceId"] = reference
            else:
                raise ValueError(f"no such event: {ev.kind}")
        k += 1
        if _months(term_start, k * _cycle_months(term_months, billing)) > _months(term_start, term_months) - ONE_DAY:
            # the term ends: it renews, at the price announced for the renewal if one was
            term_start, k, kind, order = _months(term_start, term_months), 0, "renew", _order_id(rng)
            price, next_price = next_price or price, None
        else:
            kind = "cycleCharge"
    return made


def azure_rows(rng: random.Random, tenant: Tenant, first_month: date, until: date) -> list[dict[str, str]]:
    """The Azure plan's monthly charges per meter: on Microsoft's invoice, billed from the usage file."""
    base = _fixed(tenant)
    base.update(ProductId=AZURE_PLAN_PRODUCT, SkuId="0001", AvailabilityId="DZH318Z0BPS7", SkuName="Azure plan",
                ProductName="Azure plan", SubscriptionDescription="Azure plan", SubscriptionId=guid(rng),
                SubscriptionStartDate=_us(first_month), ProductCategory="Azure")
    order, rate = _order_id(rng), Decimal(tenant.rate)
    meters = rng.sample(AZURE_METERS, rng.randint(1, 3))
    made, month = [], first_month
    while month <= until:
        end = _months(month, 1) - ONE_DAY
        for category, sub_category, name, unit, *_ in meters:
            # one unit of the month's cost, to the cent: Subtotal is the same by the seat and the usage formula
            amount = Decimal(rng.randint(200, 60_000)) / 100
            row = _charge(base, rng, rate, "new", month, end, amount, amount, 1, order, month)
            row.update(MeterDescription=f"{category} - {sub_category} - {name}", UnitType=unit)
            made.append(row)
        month = _months(month, 1)
    return made


def _pick(rng: random.Random) -> Product:
    return rng.choices(PRODUCTS, weights=[p.weight for p in PRODUCTS])[0]


def _plan(rng: random.Random, tenant: Tenant, first_month: date, until: date, product: Product | None = None,
          anomaly: str | None = None) -> tuple[Licence, list[Event]]:
    """One subscription and what happens to it: within Microsoft's rules (reductions and cancels within 7 days
    of the purchase, renewal or addition they undo; prices changed at renewal), or else `anomaly`."""
    product = product or _pick(rng)
    term_months = rng.choice(product.terms)
    if anomaly in ("price", "drift"):  # they show on a later cycle charge of the same term
        term_months, billing = 12, "Monthly"
    elif term_months == 1:
        billing = "Monthly"
    elif term_months == 12:
        billing = rng.choices(["Monthly", "Annual"], weights=[3, 1])[0]
    else:
        billing = rng.choice(["Annual", ""])
    window = (until - first_month).days
    start = first_month + timedelta(days=rng.randint(0, max(0, window * 2 // 3)))
    seats = rng.choice([1, 1, 2, 3, 5, 5, 8, 10, 12, 15, 20, 25, 40, 60, 100, 250])
    price = unit_price(product.monthly, term_months, billing)
    licence = Licence(tenant, guid(rng), product.product_id, product.sku_id, product.name, product.name,
                      term_months, billing, price, start, seats)
    term_end = _months(start, term_months) - ONE_DAY
    events: list[Event] = []
    if anomaly == "late_cancel":  # a cancel 8 to 25 days after the purchase
        return licence, [Event("cancel", start + timedelta(days=rng.randint(8, 25)))]
    if anomaly == "late_remove":  # seats added, then fewer than before 8 to 20 days later
        added = start + timedelta(days=rng.randint(1, 5))
        more = seats + rng.randint(1, 4)
        fewer = seats - 1 if seats > 1 else more - 1
        return licence, [Event("add", added, more), Event("remove", added + timedelta(days=rng.randint(8, 20)), fewer)]
    if anomaly == "price":  # the unit price changes inside the term, not at a renewal
        raised = (price * Decimal("1.1")).quantize(CENT, ROUND_HALF_UP)
        return licence, [Event("price", start + timedelta(days=rng.randint(20, 60)), amount=raised)]
    if anomaly == "drift":  # a cycle charge for seats no change explains
        other = seats + rng.choice([-1, 1, 2, 3]) if seats > 1 else seats + 2
        return licence, [Event("drift", start + timedelta(days=rng.randint(5, 20)), other)]
    if rng.random() < 0.1:  # cancelled within 7 days of the purchase or of a (monthly) renewal
        renewal = start
        for _ in range(rng.randint(0, 3) if term_months == 1 else 0):
            renewal = _months(renewal, 1)  # each monthly term from the day after the last one's end
        return licence, [Event("cancel", renewal + timedelta(days=rng.randint(0, 6)))]
    day = start
    if rng.random() < 0.4:  # seats added; some taken back within 7 days
        day = start + timedelta(days=rng.randint(1, 80))
        more = seats + rng.randint(1, 5)
        events.append(Event("add", day, more))
        if rng.random() < 0.4:
            day += timedelta(days=rng.randint(1, 6))
            events.append(Event("remove", day, more - rng.randint(1, more - seats)))
    if term_months == 1 and rng.random() < 0.25:  # to a yearly term
        day += timedelta(days=rng.randint(10, 60))
        events.append(Event("convert", day))
    elif term_end < until and rng.random() < 0.6:  # a new price from the renewal on
        raised = (price * Decimal(rng.choice(["1.05", "1.083", "1.1"]))).quantize(CENT, ROUND_HALF_UP)
        events.append(Event("renew_price", term_end - timedelta(days=rng.randint(10, 25)), amount=raised))
    if rng.random() < 0.15:
        events.append(Event("credit", start + timedelta(days=rng.randint(3, 90)),
                            amount=Decimal(rng.choice(["5", "10", "12.5", "25", "50"]))))
    return licence, events


ANOMALIES = ("late_cancel", "late_remove", "price", "drift")


def _blocks(rng: random.Random, tenant: Tenant, first_month: date, months: int,
            anomalies: bool) -> list[list[dict[str, str]]]:
    """The tenant's rows, one list per subscription (and one for its Azure plan)."""
    until = _months(first_month, months) - ONE_DAY
    blocks, picked = [], []
    count = rng.choices([1, 2, 3, 4], weights=[2, 3, 3, 2])[0]
    wrong = set(rng.sample(range(count), rng.randint(1, count))) if anomalies else set()
    for n in range(count):
        # a second subscription of a product already bought, now and then (keyed on SubscriptionId, never SKU)
        again = picked[-1] if picked and rng.random() < 0.3 else None
        anomaly = rng.choice(ANOMALIES) if n in wrong else None
        licence, events = _plan(rng, tenant, first_month, until, again, anomaly)
        picked.append(BY_ID[licence.product_id])
        blocks.append(subscription_rows(licence, events, until, rng))
    if rng.random() < 0.5:
        blocks.append(azure_rows(rng, tenant, first_month, until))
    return blocks


def _start_key(row: dict[str, str]) -> tuple[int, int, int]:
    m, d, y = row["ChargeStartDate"].split("/")
    return int(y), int(m), int(d)


def in_charge_order(rows_made: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    """The rows by ChargeStartDate, stable (a subscription's own rows stay in time order)."""
    return sorted(rows_made, key=_start_key)


def tenant_rows(rng: random.Random, tenant: Tenant, first_month: date, months: int,
                anomalies: bool = False) -> list[dict[str, str]]:
    """A realistic mix for one tenant over the invoices of months from first_month: one to four subscriptions
    bought from first_month on (sometimes two of one SKU), seat additions and reductions, cancels within 7 days,
    renewals with a new price, monthly-to-annual conversions, customer credits, an Azure plan's rows. anomalies:
    also what Microsoft's rules forbid and files show: a reduction or cancel more than 7 days after what it
    undoes, a UnitPrice change inside a term, a cycle charge whose seats no change explains. In charge order."""
    made = [r for block in _blocks(rng, tenant, first_month, months, anomalies) for r in block]
    made.sort(key=_start_key)
    return made


def rows(seed: int, tenants: list[Tenant], first_month: date, months: int,
         anomalies: bool = False) -> list[dict[str, str]]:
    """tenant_rows of each tenant, tenant after tenant."""
    rng = random.Random(f"{seed}/licences")
    return [r for tenant in tenants for r in tenant_rows(rng, tenant, first_month, months, anomalies)]


def _iso(text: str) -> str:
    if not text:
        return ""
    m, d, y = text.split("/")
    return f"{y}-{int(m):02d}-{int(d):02d}T00:00:00"


def write(path: Path, rows_made: Iterable[dict[str, str]], legacy: bool = False, iso: bool = False) -> Path:
    """The rows as Partner Center writes the file: UTF-8, comma-separated. legacy: the older header (ResellerMpnId
    for Tier2MpnId, no ProductCategory); iso: dates as 2026-10-01T00:00:00, not 10/1/2026."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [c for c in COLUMNS if c != "ProductCategory"] if legacy else list(COLUMNS)
    at = [columns.index(c) for c in DATE_COLUMNS] if iso else []
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(LEGACY_COLUMNS if legacy else COLUMNS)
        for row in rows_made:
            values = [row[c] for c in columns]
            for j in at:
                values[j] = _iso(values[j])
            w.writerow(values)
    return path


def generate(path: Path, seed: int, tenant_count: int, row_count: int,
             first_month: date = date(2026, 1, 1)) -> list[Tenant]:
    """About row_count rows of a year of invoices from first_month for tenant_count tenants (those of
    partner_center_files.generate for the same seed and count): each tenant its share, whole subscriptions
    (a tenant short of its share buys more; one over it keeps fewer)."""
    tenant_list = make_tenants(random.Random(f"{seed}/tenants"), tenant_count)
    write(path, _shares(seed, tenant_list, row_count, first_month))
    return tenant_list


def _shares(seed: int, tenant_list: list[Tenant], row_count: int, first_month: date):
    """Each tenant's rows in turn (streamed: a million rows never held at once)."""
    rng = random.Random(f"{seed}/licences")
    until = _months(first_month, 12) - ONE_DAY
    made = 0
    for t, tenant in enumerate(tenant_list):
        want = row_count * (t + 1) // len(tenant_list) - made  # what earlier tenants missed, too
        kept: list[dict[str, str]] = []
        for block in _blocks(rng, tenant, first_month, 12, False):
            if len(kept) + len(block) // 2 <= want:
                kept += block
        while len(kept) < want:
            licence, events = _plan(rng, tenant, first_month, until)
            block = subscription_rows(licence, events, until, rng)
            if len(kept) + len(block) // 2 > want:
                break
            kept += block
        made += len(kept)
        yield from in_charge_order(kept)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.partner_center_licences",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tenants", type=int, default=2000)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=20261102)
    args = p.parse_args(argv)
    made = generate(args.out, args.seed, args.tenants, args.rows)
    with args.out.open(encoding="utf-8") as f:
        count = sum(1 for _ in f) - 1
    print(f"{args.out}: {count:,} rows for {len(made)} tenants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
