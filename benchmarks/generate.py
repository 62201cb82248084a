"""Seeded synthetic input workbooks for the benchmark, in the batch's input format.

    python -m benchmarks.generate --size S|M|L --out DIR [--seed N] [--split-usage | --no-split-usage]

Sizes (contracts, customers, subscriptions, usage rows):

    XS       12        6        120        1,200   (the CI smoke test)
    S       100       50      1,000       10,000
    M     1,000      500     10,000      100,000
    L    10,000    5,000    100,000    1,000,000   (usage in a second workbook, usage.xlsx)
    U         1        1          3       20,000   (usage at scale: 40 metered products in one cycle)
    O       120      120        360            0   (120 one-page invoices: the render pool's small run)
    P       500      500        500    1,000,000   (Partner Center: one tenant a contract, usage in a CSV file)

The data look like a SaaS book of business billed as of AS_OF (2026-11-02):

* 80 % monthly, 12 % quarterly, 3 % semi-annual, 5 % annual contracts; 65 % bill in arrears,
  35 % in advance; a few offsets, currencies, payment terms, discounts, inactive contracts and
  contracts with an End Date.
* Each contract starts so that exactly one cycle is due by AS_OF (a monthly run, not a catch-up:
  monthly contracts started 1-2 months before, quarterly 3-6, annual up to 24), except 5 % that
  started one cycle earlier (two invoices: a contract entered late). So a run issues about 1.05
  invoices per contract; the exact count is printed (and is what the batch issues).
* About 10 subscriptions per contract (3-17): mostly recurring seats and add-ons, some one-time
  fees on the first cycle, some that start or end mid-cycle (prorated lines).
* About 100 usage rows per contract (none for a fifth of them, up to 250 for the rest): API calls,
  storage, SMS, compute and support hours, dated over the last two months, so most fall in the
  billed cycle of an arrears contract and the rest in the current, not yet billed one.

Writing uses xlsxwriter in constant_memory mode (rows streamed to disk), so L takes tens of
seconds and little memory. The same seed and size give the same rows (the files differ only in
their creation timestamp, which xlsxwriter pins when told to: we pin it).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import xlsxwriter
from dateutil.relativedelta import relativedelta

from benchmarks import partner_center_files
from billing_batch.engine.cycles import due_cycles
from billing_batch.model import Contract, Frequency, Policy, Source

AS_OF = date(2026, 11, 2)
GENERATOR_VERSION = 2  # bump when the rows change, so cached inputs are made again
DEFAULT_SEED = 20261102
# A monthly run bills one or two cycles a contract: the guard must never set one aside here.
CATCH_UP_LIMIT = 3


@dataclass(frozen=True)
class Size:
    contracts: int
    customers: int
    subscriptions: int
    usage: int
    split_usage: bool  # usage rows in a second workbook, usage.xlsx
    meters: int = 0  # U: one Monthly Arrears contract whose due cycle carries every usage row, over this many products
    one_page: bool = False  # O: one Monthly Arrears contract per customer, one due cycle, a few subscriptions
    partner_center: bool = False  # P: the usage is a Partner Center daily rated usage file, one tenant a contract


SIZES = {
    "XS": Size(12, 6, 120, 1_200, False),
    "S": Size(100, 50, 1_000, 10_000, False),
    "M": Size(1_000, 500, 10_000, 100_000, False),
    "L": Size(10_000, 5_000, 100_000, 1_000_000, True),
    "U": Size(1, 1, 3, 20_000, False, meters=40),
    "O": Size(120, 120, 360, 0, False, one_page=True),
    "P": Size(500, 500, 500, 1_000_000, False, partner_center=True),
}

SETTINGS = [
    ("Company Name", "Lumenfield Software, Inc."),
    ("Company Address", "500 Harbor Boulevard, Suite 210\nSan Mateo, CA 94402\nUnited States"),
    ("Company Email", "billing@example.com"),
    ("Tax ID", "US EIN 94-3187265"),
    ("Bank Details", "Harborline Bank, N.A.\nAccount 4401-2210-9931 / ABA 123456780\nSWIFT HRBLUS33"),
    ("Invoice Prefix", "INV-"),
    ("Default Currency", "USD"),
    ("Locale", "en_US"),
    ("Catch-Up Limit", CATCH_UP_LIMIT),
]

HEADERS = {
    "Customers": ["Customer ID", "Name", "Email", "Address", "City", "Postal Code", "Country", "Tax Rate"],
    "Contracts": ["Contract ID", "Customer ID", "Start Date", "End Date", "Billing Frequency", "Billing Policy",
                  "Billing Offset (Days)", "Currency", "Payment Terms (Days)", "Discount", "Status"],
    "Subscriptions": ["Subscription ID", "Contract ID", "Product", "Description", "Quantity", "Unit Price",
                      "Start Date", "End Date", "Charge Type"],
    "Usage": ["Usage ID", "Contract ID", "Date", "Product", "Description", "Quantity", "Unit Price"],
    "Settings": ["Key", "Value"],
}
DATE_COLUMNS = {"Start Date", "End Date", "Date"}

# (city, postal code, country, tax rate, currency)
PLACES = [
    ("San Francisco", "94102", "United States", 0.085, "USD"), ("Austin", "78701", "United States", 0.0825, "USD"),
    ("Chicago", "60601", "United States", 0.1025, "USD"), ("Seattle", "98154", "United States", 0.101, "USD"),
    ("Boston", "02109", "United States", 0.0625, "USD"), ("Denver", "80203", "United States", 0.0881, "USD"),
    ("Portland", "97204", "United States", 0.0, "USD"), ("Atlanta", "30308", "United States", 0.089, "USD"),
    ("New York", "10001", "United States", 0.08875, "USD"), ("Miami", "33131", "United States", 0.07, "USD"),
    ("Berlin", "10119", "Germany", 0.19, "EUR"), ("Paris", "75011", "France", 0.20, "EUR"),
    ("Amsterdam", "1016 DV", "Netherlands", 0.21, "EUR"), ("Madrid", "28009", "Spain", 0.21, "EUR"),
    ("London", "EC1A 1BB", "United Kingdom", 0.20, "GBP"), ("Manchester", "M1 5LB", "United Kingdom", 0.20, "GBP"),
    ("Toronto", "M5H 1J9", "Canada", 0.13, "CAD"),
]
CURRENCY_OF = {country: currency for _, _, country, _, currency in PLACES}
NAME_A = ["Northwind", "Brightwave", "Harbor & Pine", "Quarry Lane", "Meridian", "Ostara", "Cobalt", "Tidewater",
          "Redfern", "Kestrel", "Ashcombe", "Solterra", "Granite Peak", "Lakeshore", "Maple Ridge", "Coastal",
          "Belliard", "Summit", "Orbitline", "Bluebird", "Ironclad", "Fiore", "Southbank", "Evergreen", "Silverline"]
NAME_B = ["Analytics", "Media", "Consulting", "Logistics", "Health", "Retail", "Design", "Marine", "Architecture",
          "Fintech", "Energy", "Outfitters", "Dental", "Software", "Roasters", "Data", "Legal", "Telecom", "Learning",
          "Manufacturing", "Capital", "Foods", "Robotics", "Travel", "Insurance"]
NAME_C = ["Inc.", "LLC", "Ltd", "GmbH", "Group", "Partners", "Corp.", "S.A.", "B.V.", "Co."]
STREETS = ["Market Street", "Main Street", "Harbor Drive", "Oak Avenue", "Industrial Parkway", "King Street West",
           "Commerce Drive", "Pearl Street", "Congress Avenue", "Collins Street"]

# Recurring products: (product, description, unit price per month, quantity range)
RECURRING = [
    ("Platform Pro", "Platform Pro seats", 39.90, (5, 60)),
    ("Platform Team", "Platform Team seats", 29.50, (3, 40)),
    ("Platform Enterprise", "Platform Enterprise seats", 32.75, (50, 400)),
    ("Analytics Add-on", "Advanced analytics module", 249.00, (1, 1)),
    ("SSO Add-on", "Single sign-on (SAML)", 99.00, (1, 1)),
    ("Priority Support", "24/7 priority support", 420.00, (1, 1)),
    ("Managed Hosting", "Dedicated managed hosting", 1850.00, (1, 2)),
    ("Data Warehouse Connector", "Snowflake / BigQuery connector", 189.00, (1, 3)),
    ("Data Archive License", "Long-term data archive", 310.00, (1, 1)),
    ("Sandbox Environment", "Additional sandbox environment", 149.00, (1, 4)),
]
ONE_TIME = [
    ("Onboarding Package", "Guided onboarding (one-time)", 1500.00),
    ("Implementation Services", "Data migration and setup (one-time)", 2400.00),
    ("Training Workshop", "Admin training workshop (one-time)", 950.00),
]
# Usage products: (product, description, unit price, quantity range, integer quantity?)
USAGE = [
    ("API Calls", "API calls (REST, metered)", 0.0008, (5_000, 250_000), True),
    ("Storage", "Object storage, GB-day", 0.004, (50, 5_000), False),
    ("SMS Notifications", "Outbound SMS", 0.0125, (100, 20_000), True),
    ("Compute Hours", "Batch compute, vCPU-hours", 0.045, (10, 900), False),
    ("Support Hours", "Support hours - incident follow-up", 145.00, (0.5, 4), False),
]


def months_back(months: int) -> date:
    return AS_OF - relativedelta(months=months)


def pick_start(rng: random.Random, frequency: str, policy: str, offset: int, extra_cycles: int) -> date:
    """A start date with exactly 1 + extra_cycles cycles due by AS_OF (for this offset)."""
    months = {"Monthly": 1, "Quarterly": 3, "Semi-Annual": 6, "Annual": 12}[frequency]
    # Advance: cycle k is due at start + k*months + offset; arrears: one cycle later (its end + 1 day).
    due_cycles_before = extra_cycles + (1 if policy == "Arrears" else 0)
    latest = months_back(months * due_cycles_before) - timedelta(days=offset)  # first cycle just due
    earliest = months_back(months * (due_cycles_before + 1)) - timedelta(days=offset) + timedelta(days=1)
    # Keep clear of the window edges (month-end clamping, offsets): a few days' margin.
    span = (latest - earliest).days
    margin = min(3, span // 4)
    return earliest + timedelta(days=rng.randint(margin, max(margin, span - margin)))


def customers(rng: random.Random, count: int) -> list[tuple]:
    rows = []
    for n in range(1, count + 1):
        city, postal, country, tax, _ = PLACES[rng.randrange(len(PLACES))]
        name = f"{rng.choice(NAME_A)} {rng.choice(NAME_B)} {rng.choice(NAME_C)}"
        address = f"{rng.randint(1, 9999)} {rng.choice(STREETS)}"
        if rng.random() < 0.15:
            address = f"Suite {rng.randint(100, 2400)}\n{address}"
        slug = name.split()[0].lower().replace("&", "and")
        rows.append((f"CUST-{n:05d}", name, f"ap.{slug}{n}@example.com", address, city, postal, country, tax))
    return rows


def contracts(rng: random.Random, count: int, customer_rows: list[tuple]) -> list[tuple]:
    rows = []
    for n in range(1, count + 1):
        # Every customer has at least one contract; the rest are spread at random.
        cust = customer_rows[n - 1] if n <= len(customer_rows) else rng.choice(customer_rows)
        currency = CURRENCY_OF[cust[6]]
        frequency = rng.choices(["Monthly", "Quarterly", "Semi-Annual", "Annual"], [80, 12, 3, 5])[0]
        policy = rng.choices(["Arrears", "Advance"], [65, 35])[0]
        offset = rng.choices([None, 0, -3, 5], [70, 20, 5, 5])[0]
        extra = 1 if rng.random() < 0.05 else 0
        start = pick_start(rng, frequency, policy, 1 if offset is None else offset, extra)
        end = None
        if rng.random() < 0.03:
            end = AS_OF + timedelta(days=rng.randint(30, 400))
        terms = rng.choices([30, 14, 45, 60, None], [60, 10, 10, 10, 10])[0]
        discount = round(rng.choice([0.05, 0.1, 0.15]), 2) if rng.random() < 0.1 else None
        status = "Inactive" if rng.random() < 0.02 else rng.choice(["Active", None])
        if policy == "Arrears" and rng.random() < 0.25:
            policy = None  # blank: the default, arrears
        if currency == "USD" and rng.random() < 0.5:
            currency = None  # blank: the Default Currency setting
        rows.append((f"CTR-{n:06d}", cust[0], start, end, frequency, policy, offset, currency, terms, discount,
                     status))
    return rows


def subscription_counts(rng: random.Random, contracts_n: int, total: int) -> list[int]:
    """Per contract, 3..17 around total/contracts, adding up to total exactly."""
    mean = total / contracts_n
    counts = [max(1, min(int(2 * mean) - 1, round(rng.gauss(mean, mean / 3)))) for _ in range(contracts_n)]
    return fix_total(rng, counts, total, low=1)


def usage_counts(rng: random.Random, contract_rows: list[tuple], total: int) -> list[int]:
    """None for a fifth of the contracts (and for those starting after AS_OF); the rest share
    total, each between 1 and 2x the mean."""
    metered = [rng.random() >= 0.2 and row[2] < AS_OF for row in contract_rows]
    mean = total / max(1, sum(metered))
    counts = [rng.randint(1, max(1, int(2 * mean) - 1)) if m else 0 for m in metered]
    return fix_total(rng, counts, total, low=1, indexes=[i for i, m in enumerate(metered) if m])


def fix_total(rng: random.Random, counts: list[int], total: int, low: int,
              indexes: list[int] | None = None) -> list[int]:
    """Add or take one at a time from random entries (never below low) until they add up to total."""
    indexes = list(range(len(counts))) if indexes is None else indexes
    diff = total - sum(counts)
    while diff:
        i = rng.choice(indexes)
        step = 1 if diff > 0 else -1
        if counts[i] + step >= low:
            counts[i] += step
            diff -= step
    return counts


def subscriptions(rng: random.Random, contract_rows: list[tuple], counts: list[int]) -> list[tuple]:
    rows = []
    n = 0
    for contract, count in zip(contract_rows, counts):
        cid, start, end = contract[0], contract[2], contract[3]
        life_end = end or AS_OF
        for i in range(count):
            n += 1
            sub_start = sub_end = None
            if i == 1 and rng.random() < 0.3:
                product, description, price = rng.choice(ONE_TIME)
                rows.append((f"SUB-{n:07d}", cid, product, description, 1, price, start, None, "One-Time"))
                continue
            product, description, price, (lo, hi) = RECURRING[(i + rng.randrange(3)) % len(RECURRING)]
            quantity = rng.randint(lo, hi)
            roll = rng.random()
            if roll < 0.08 and (life_end - start).days > 10:  # added mid-way: a prorated first line
                sub_start = start + timedelta(days=rng.randint(1, (life_end - start).days - 1))
            elif roll < 0.12:  # cancelled: ends at some point after the start
                sub_end = start + timedelta(days=rng.randint(0, max(0, (life_end - start).days)))
            rows.append((f"SUB-{n:07d}", cid, product, description, quantity, price, sub_start, sub_end,
                         None if rng.random() < 0.7 else "Recurring"))
    return rows


def usage(rng: random.Random, contract_rows: list[tuple], counts: list[int]) -> list[tuple]:
    """Dated uniformly over the last two months of each contract's life up to the day before AS_OF."""
    rows = []
    window_start = AS_OF - timedelta(days=62)
    for contract, count in zip(contract_rows, counts):
        if not count:
            continue
        cid, start, end = contract[0], contract[2], contract[3]
        lo = max(start, window_start)
        hi = min(end or AS_OF, AS_OF - timedelta(days=1))
        span = (hi - lo).days  # >= 0: only contracts started before AS_OF get usage
        kinds = rng.sample(USAGE, rng.randint(1, 3))
        for _ in range(count):
            product, description, price, (qlo, qhi), whole = rng.choice(kinds)
            quantity = rng.randint(qlo, qhi) if whole else round(rng.uniform(qlo, qhi), 1 if qhi < 10 else 2)
            rows.append((cid, lo + timedelta(days=rng.randint(0, span)), product, description, quantity, price))
    rows.sort(key=lambda r: (r[1], r[0]))  # as exported: by date
    return [(f"USG-{i:07d}", *r) for i, r in enumerate(rows, 1)]


def metered(rng: random.Random, count: int, meters: int) -> tuple[list[tuple], list[tuple]]:
    """Size U: one Monthly Arrears contract billed for October 2026 on AS_OF, with count usage rows dated
    in October over meters products (a cloud reseller's month of one customer's meters)."""
    start = date(2026, 10, 1)
    contract = ("CTR-000001", "CUST-00001", start, None, "Monthly", "Arrears", None, None, 30, None, "Active")
    products = [(f"Meter {k:02d}", f"{rng.choice(['Compute', 'Storage', 'Network', 'Database'])} meter {k:02d}",
                 rng.choice([0.0008, 0.004, 0.0125, 0.045, 0.11, 1.25])) for k in range(1, meters + 1)]
    rows = []
    for i in range(1, count + 1):
        product, description, price = products[rng.randrange(meters)]
        rows.append((f"USG-{i:07d}", contract[0], start + timedelta(days=rng.randrange(31)), product, description,
                     round(rng.uniform(0.1, 500), 3), price))
    rows.sort(key=lambda r: (r[2], r[0]))
    return [contract], rows


def one_page(count: int) -> list[tuple]:
    """Size O: count Monthly Arrears contracts, one per customer, started 2026-10-01, so that a run as of
    AS_OF issues exactly one short (one-page) invoice each: a small monthly run."""
    return [(f"CTR-{n:06d}", f"CUST-{n:05d}", date(2026, 10, 1), None, "Monthly", "Arrears", None, None, 30, None,
             "Active") for n in range(1, count + 1)]
def partner_center(rng: random.Random, seed: int, spec: Size, out: Path,
                   customer_rows: list[tuple]) -> tuple[list[tuple], list[tuple]]:
    """Size P: a cloud reseller's October. One Monthly Arrears contract a tenant from 1 October, in the tenant's
    billing currency, with a markup of 5 to 20 % and a managed-service fee; the usage file beside the workbook."""
    tenants = partner_center_files.generate(out / "partner_center_usage_2026-10.csv", seed, spec.contracts, spec.usage)
    contract_rows, sub_rows = [], []
    for k, tenant in enumerate(tenants, 1):
        cid = f"CTR-{k:06d}"
        markup = rng.choice([0.05, 0.08, 0.1, 0.12, 0.15, 0.2])
        contract_rows.append((cid, customer_rows[(k - 1) % len(customer_rows)][0], date(2026, 10, 1), None, "Monthly",
                              "Arrears", None, tenant.currency, 30, None, "Active", tenant.customer_id, markup))
        sub_rows.append((f"SUB-{k:07d}", cid, "Azure Management", "Managed Azure service, per month", 1,
                         rng.choice([99.0, 149.0, 249.0]), None, None, "Recurring"))
    return contract_rows, sub_rows


# ---------------------------------------------------------------- writing


class SheetWriter:
    def __init__(self, book: xlsxwriter.Workbook):
        self.book = book
        self.date = book.add_format({"num_format": "yyyy-mm-dd"})
        self.pct = book.add_format({"num_format": "0.0%"})
        self.bold = book.add_format({"bold": True})

    def sheet(self, name: str, rows: list[tuple]) -> None:
        ws = self.book.add_worksheet(name)
        headers = HEADERS[name] if name != "Contracts" or not rows or len(rows[0]) <= len(HEADERS[name]) \
            else [*HEADERS[name], "Partner Center Customer ID", "Usage Markup"]
        for col, title in enumerate(headers):
            ws.write_string(0, col, title, self.bold)
            ws.set_column(col, col, max(10, len(title) + 2))
        dates = [h in DATE_COLUMNS for h in headers]
        pct = [h in ("Tax Rate", "Discount", "Usage Markup") for h in headers]
        write_string, write_number, write_datetime = ws.write_string, ws.write_number, ws.write_datetime
        for r, row in enumerate(rows, 1):
            for c, value in enumerate(row):
                if value is None:
                    continue
                if dates[c]:
                    write_datetime(r, c, value, self.date)
                elif isinstance(value, str):
                    write_string(r, c, value)
                elif pct[c]:
                    write_number(r, c, value, self.pct)
                else:
                    write_number(r, c, value)


def write_book(path: Path, sheets: dict[str, list[tuple]]) -> Path:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False,
                                           "strings_to_formulas": False, "strings_to_urls": False})
    book.set_properties({"created": datetime(2026, 1, 1)})  # same bytes for the same seed
    writer = SheetWriter(book)
    for name, rows in sheets.items():
        writer.sheet(name, rows)
    book.close()
    return path


def expected(contract_rows: list[tuple], usage_rows: list[tuple]) -> dict:
    """What a run as of AS_OF on an empty ledger bills, from the batch's own cycle engine: the due
    cycles (each makes an invoice unless it has nothing to bill) and the usage rows they take."""
    invoices, cutoff = 0, {}
    for row in contract_rows:
        cid, _, start, end, frequency, policy, offset, *_ = row
        status = row[10]
        if status == "Inactive":
            continue
        contract = Contract(
            contract_id=cid, customer_id=row[1], start=start, end=end,
            frequency={f.label: f for f in Frequency}[frequency],
            policy=Policy(policy or "Arrears"), offset_days=1 if offset is None else offset, currency="USD",
            payment_terms_days=30, discount=Decimal(0), active=True, source=Source("", ""),
        )
        due = list(due_cycles(contract, AS_OF))
        assert len(due) <= CATCH_UP_LIMIT, f"{cid}: {len(due)} cycles due would be set aside by the catch-up guard"
        invoices += len(due)
        if due:
            cutoff[cid] = due[-1].usage_cutoff
    billed = sum(1 for u in usage_rows if u[1] in cutoff and u[2] <= cutoff[u[1]])
    if len(contract_rows[0]) > len(HEADERS["Contracts"]):  # P: every Partner Center row is October's, billed
        billed = SIZES["P"].usage
    return {"invoices": invoices, "billed_usage_rows": billed}


def generate(size: str, out: Path, seed: int = DEFAULT_SEED, split_usage: bool | None = None,
             quiet: bool = False) -> dict:
    spec = SIZES[size]
    split = spec.split_usage if split_usage is None else split_usage
    rng = random.Random(f"{seed}/{size}")
    started = time.perf_counter()
    customer_rows = customers(rng, spec.customers)
    if spec.partner_center:
        contract_rows, sub_rows = partner_center(rng, seed, spec, out, customer_rows)
        usage_rows = []
    elif spec.meters:
        contract_rows, usage_rows = metered(rng, spec.usage, spec.meters)
        sub_rows = subscriptions(rng, contract_rows, [spec.subscriptions])
    elif spec.one_page:
        contract_rows, usage_rows = one_page(spec.contracts), []
        sub_rows = subscriptions(rng, contract_rows, [spec.subscriptions // spec.contracts] * spec.contracts)
    else:
        contract_rows = contracts(rng, spec.contracts, customer_rows)
        sub_rows = subscriptions(rng, contract_rows, subscription_counts(rng, spec.contracts, spec.subscriptions))
        usage_rows = usage(rng, contract_rows, usage_counts(rng, contract_rows, spec.usage))
    made = time.perf_counter()

    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.xlsx"):
        old.unlink()
    main = {"Settings": SETTINGS, "Customers": customer_rows, "Contracts": contract_rows, "Subscriptions": sub_rows}
    files = []
    if split:
        files.append(write_book(out / "billing.xlsx", main))
        files.append(write_book(out / "usage.xlsx", {"Usage": usage_rows}))
    else:
        files.append(write_book(out / "billing.xlsx", {**main, "Usage": usage_rows}))
    written = time.perf_counter()
    facts = {
        "size": size, "seed": seed, "as_of": AS_OF.isoformat(), "files": [f.name for f in files],
        "customers": len(customer_rows), "contracts": len(contract_rows), "subscriptions": len(sub_rows),
        "usage_rows": len(usage_rows) or spec.usage * spec.partner_center, **expected(contract_rows, usage_rows),
        "seconds_to_make": round(made - started, 2), "seconds_to_write": round(written - made, 2),
        "generator_version": GENERATOR_VERSION,
    }
    if not quiet:
        print(f"{size}: {facts['contracts']:,} contracts, {facts['customers']:,} customers, "
              f"{facts['subscriptions']:,} subscriptions, {facts['usage_rows']:,} usage rows in "
              f"{', '.join(facts['files'])} ({out}); a run as of {AS_OF} finds {facts['invoices']:,} due cycles "
              f"(an invoice each, unless one has nothing to bill) billing {facts['billed_usage_rows']:,} usage rows. Made in {facts['seconds_to_make']} s, "
              f"written in {facts['seconds_to_write']} s.")
    return facts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.generate", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=list(SIZES), required=True)
    p.add_argument("--out", type=Path, required=True, help="folder for billing.xlsx (and usage.xlsx)")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    split = p.add_mutually_exclusive_group()
    split.add_argument("--split-usage", dest="split", action="store_true", default=None,
                       help="usage rows in a second workbook usage.xlsx (default for L)")
    split.add_argument("--no-split-usage", dest="split", action="store_false")
    args = p.parse_args(argv)
    generate(args.size, args.out, args.seed, args.split)
    return 0


if __name__ == "__main__":
    sys.exit(main())
