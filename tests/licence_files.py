"""Licence files for the tests of issue #22 (tests/test_licences*.py): a workbook of contracts billing Partner
Center tenants, the command line run on it, the ledger read back with sqlite3, and what each licence row bills,
computed here from the row's own text with Decimal and dateutil, never with the batch's code."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D
from pathlib import Path

from dateutil.relativedelta import relativedelta
from workbooks import HEADERS, customer, settings, write_book

from benchmarks import partner_center_licences as pcl
from benchmarks.partner_center_files import Tenant
from billing_batch import cli
from billing_batch.inputs.licences import AZURE_PLAN_PRODUCT

ONE_DAY = timedelta(days=1)
# Billing currencies of the tenants, at Partner Center's rate from USD
ALPHA = Tenant("5a1f0c2e-7b34-4c8d-9e21-0f6a3b7c9d10", "Alpha Seats", "US", "USD", "1")
BETA = Tenant("6b2e1d3f-8c45-4d9e-8f32-1a7b4c8d0e21", "Beta Sitze", "DE", "EUR", "0.9123")
GAMMA = Tenant("7c3f2e40-9d56-4eaf-9043-2b8c5d9e1f32", "Gamma Seats", "US", "USD", "1")
DELTA = Tenant("8d403f51-ae67-4fb0-a154-3c9d6eaf2043", "Delta Places", "FR", "EUR", "0.9123")
STRANGER = Tenant("9e514062-bf78-40c1-b265-4daef0b03154", "Omega Unmapped", "GB", "EUR", "0.9123")
HEADINGS = {
    "Contracts": [*HEADERS["Contracts"], "Billed Through", "Partner Center Customer ID", "Licence Markup"],
    "Subscriptions": [*HEADERS["Subscriptions"], "Partner Center Subscription ID"],
    "Price List": ["Sku ID", "Unit Price", "Currency", "Contract ID"],
}


def cents(amount: D) -> D:
    return amount.quantize(D("0.01"), ROUND_HALF_UP)  # USD and EUR: two places, half up


def us_date(text: str) -> date:
    """Partner Center's M/D/YYYY."""
    month, day, year = (int(p) for p in text.split("/"))
    return date(year, month, day)


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def is_azure(row: dict[str, str]) -> bool:
    return row["ProductId"] == AZURE_PLAN_PRODUCT


def starts(row: dict[str, str]) -> date:
    return us_date(row["ChargeStartDate"])


def cycle(row: dict[str, str]) -> tuple[date, date, int]:
    """(start, end, months) of the charge cycle the row's first day falls in: anchored on SubscriptionStartDate,
    counted in months of the BillingFrequency (Monthly 1, Annual 12, blank: the whole term)."""
    anchor, term_end = us_date(row["SubscriptionStartDate"]), us_date(row["SubscriptionEndDate"])
    span = relativedelta(term_end + ONE_DAY, anchor)
    months = {"Monthly": 1, "Annual": 12}.get(row["BillingFrequency"], span.years * 12 + span.months)
    k = 0
    while anchor + relativedelta(months=(k + 1) * months) <= starts(row):
        k += 1
    return anchor + relativedelta(months=k * months), anchor + relativedelta(months=(k + 1) * months) - ONE_DAY, months


def seats(row: dict[str, str]) -> D:
    """The seats the row bills: negative for a refund (a negative Subtotal)."""
    n = D(row["BillableQuantity"])
    return -n if D(row["Subtotal"]) < 0 else n


def cost_plus(row: dict[str, str], markup: D) -> D:
    """The customer's amount of a row at cost plus markup: Microsoft's Subtotal x (1 + markup), rounded once."""
    return cents(D(row["Subtotal"]) * (1 + markup))


def price_listed(row: dict[str, str], per_month: D) -> D:
    """The customer's amount at a Price List price per seat per month: seats x price x months x the days charged
    over the days of the charge cycle they fall in."""
    start, end, months = cycle(row)
    days = (us_date(row["ChargeEndDate"]) - starts(row)).days + 1
    return cents(seats(row) * per_month * months * days / ((end - start).days + 1))


def sku(row: dict[str, str]) -> str:
    return f"{row['ProductId']}:{row['SkuId']}"


@dataclass(frozen=True)
class Billed:
    """One invoice line as the ledger keeps it, signed as the customer pays it (a credit note's lines negated)."""

    contract_id: str
    number: str
    doc_type: str
    kind: str
    product: str
    description: str
    period_start: date
    period_end: date
    quantity: D
    amount: D
    subscription_id: str | None
    usage_id: str | None


def ledger_lines(out: Path) -> list[Billed]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        found = db.execute(
            "SELECT i.contract_id, i.number, i.doc_type, l.kind, l.product, l.description, l.period_start, "
            "l.period_end, l.quantity, l.amount, l.subscription_id, l.usage_id FROM invoice_lines l "
            "JOIN invoices i USING (number) ORDER BY i.seq, l.line").fetchall()
    made = []
    for cid, number, doc, kind, product, text, a, b, quantity, amount, sub, usage in found:
        sign = -1 if doc != "Invoice" else 1
        made.append(Billed(cid, number, doc, kind, product, text, date.fromisoformat(a), date.fromisoformat(b),
                           sign * D(quantity), sign * D(amount), sub, usage))
    return made


def ledger_usage_ids(out: Path) -> list[str]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return [u for (u,) in db.execute("SELECT usage_id FROM usage_rows ORDER BY number, usage_id")]


def licence_lines(out: Path) -> list[Billed]:
    return [b for b in ledger_lines(out) if b.kind == "Licence"]


def charge_key(subscription_id: str, charge_type: str, start: date, end: date, quantity: D, amount: D) -> tuple:
    return subscription_id.lower(), charge_type, start, end, quantity, amount


def expected_charges(rows: list[dict[str, str]], markup: D, prices: dict[str, D] | None = None) -> Counter:
    """Each row's charge as its line should read: (subscription, charge type, period, seats, amount)."""
    found: Counter = Counter()
    for r in rows:
        price = (prices or {}).get(sku(r))
        amount = price_listed(r, price) if price is not None else cost_plus(r, markup)
        found[charge_key(r["SubscriptionId"], r["ChargeType"], starts(r), us_date(r["ChargeEndDate"]), seats(r),
                         amount)] += 1
    return found


def billed_charges(lines: list[Billed]) -> Counter:
    """The licence lines as charges: the description is `charge type · subscription ID`."""
    found: Counter = Counter()
    for b in lines:
        charge_type, _, subscription = b.description.partition(" · ")
        assert subscription.lower() == (b.subscription_id or "").lower(), b
        found[charge_key(subscription, charge_type, b.period_start, b.period_end, b.quantity, b.amount)] += 1
    return found


def totals(lines: list[Billed]) -> dict[str, D]:
    found: dict[str, D] = defaultdict(D)
    for b in lines:
        found[b.contract_id] += b.amount
    return dict(found)


def contract_row(cid: str, tenant: Tenant, start: date, policy: str = "Advance", markup=None, **kw) -> dict:
    return {"Contract ID": cid, "Customer ID": f"CUST-{cid}", "Start Date": start, "Billing Frequency": "Monthly",
            "Billing Policy": policy, "Currency": tenant.currency, "Partner Center Customer ID": tenant.customer_id,
            "Licence Markup": markup, **kw}


def book(inbox: Path, contracts: list[dict], subscriptions: list[dict] = (), prices: list[dict] = (),
         **setting) -> Path:
    """The workbook: a customer per contract; Settings with a Catch-Up Limit wide enough for months of charges."""
    inbox.mkdir(parents=True, exist_ok=True)
    sheets = {"Customers": [customer(c["Customer ID"]) for c in contracts], "Contracts": contracts,
              "Subscriptions": list(subscriptions), "Settings": settings(**{"Catch-Up Limit": 24, **setting})}
    if prices:
        sheets["Price List"] = list(prices)
    return write_book(inbox / "billing.xlsx", sheets, HEADINGS)


def run(inbox: Path, out: Path, as_of: str, *extra: str) -> int:
    return cli.main(["run", "--input", str(inbox), "--output", str(out), "--as-of", as_of, "--jobs", "1", *extra])


def check_json(inbox: Path, out: Path, as_of: str) -> dict:
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = cli.main(["check", "--input", str(inbox), "--output", str(out), "--as-of", as_of, "--json"])
    report = json.loads(text.getvalue())
    assert report["exit_code"] == code
    return report


def copy_folder(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def write_rows(path: Path, rows: list[dict[str, str]]) -> Path:
    return pcl.write(path, rows)
