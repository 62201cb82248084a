"""Partner Center daily rated usage: generated files (benchmarks.partner_center_files) billed through the
command line with markup, read again, revised, reconciled; the ledger is a real SQLite file. Expected amounts
are computed here from the CSV itself with the csv module and Decimal, not with the batch's code."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP
from decimal import Decimal as D
from pathlib import Path

import pytest

from benchmarks import partner_center_files as pcf
from billing_batch import cli
from billing_batch.ledger.store import Ledger
from workbooks import HEADERS, contract, customer, settings, subscription, write_book

AS_OF = "2026-11-02"  # bills October 2026, the generated month
CONTRACT_HEADERS = {"Contracts": [*HEADERS["Contracts"], "Partner Center Customer ID", "Usage Markup"]}
MARKUPS = {"CTR-1": D("0.15"), "CTR-2": None, "CTR-3": D("0.08")}  # None: blank, no markup


def cents(amount: D) -> D:
    return amount.quantize(D("0.01"), ROUND_HALF_UP)


@pytest.fixture
def billed(tmp_path: Path):
    """Four tenants (USD and EUR) in one file; three on contracts with markups, one on none."""
    folder = tmp_path / "inbox"
    folder.mkdir()
    tenants = pcf.generate(folder / "usage-2026-10.csv", 7, 4, 900)
    contracts = [
        contract(cid, f"CUST-{k}", date(2026, 10, 1), Currency=tenants[k].currency,
                 **{"Partner Center Customer ID": tenants[k].customer_id, "Usage Markup": MARKUPS[cid]})
        for k, cid in enumerate(MARKUPS)
    ]
    write_book(folder / "billing.xlsx", {
        "Customers": [customer(f"CUST-{k}") for k in range(3)],
        "Contracts": contracts,
        "Subscriptions": [subscription("SUB-1", "CTR-1", 1, 25)],
        "Settings": settings(),
    }, CONTRACT_HEADERS)
    return folder, tenants, tmp_path / "out"


def run(folder: Path, out: Path, as_of: str = AS_OF) -> int:
    return cli.main(["run", "--input", str(folder), "--output", str(out), "--as-of", as_of, "--jobs", "1"])


def check_json(folder: Path, out: Path, monkeypatch, as_of: str = AS_OF) -> dict:
    text = io.StringIO()
    monkeypatch.setattr("sys.stdout", text)
    code = cli.main(["check", "--input", str(folder), "--output", str(out), "--as-of", as_of, "--json"])
    monkeypatch.undo()
    report = json.loads(text.getvalue())
    assert report["exit_code"] == code
    return report


def csv_rows(path: Path) -> list[dict]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def ledger_usage(out: Path) -> list[tuple]:
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return db.execute("SELECT number, usage_id, quantity, unit_price FROM usage_rows").fetchall()


def test_a_generated_file_is_billed_with_markup_to_the_cent(billed):
    folder, tenants, out = billed
    assert run(folder, out) == 1  # the fourth tenant is on no contract: reported
    rows = csv_rows(folder / "usage-2026-10.csv")
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        invoices = {i.draft.contract_id: i for i in ledger.invoices()}
    assert set(invoices) == set(MARKUPS)
    for k, cid in enumerate(MARKUPS):
        mine = [r for r in rows if r["CustomerId"] == tenants[k].customer_id]
        # one summary line per product, description and unit price; each rounds its exact sum once
        sums: dict[tuple, D] = defaultdict(D)
        for r in mine:
            price = D(r["EffectiveUnitPrice"]) * D(r["PCToBCExchangeRate"]) * (1 + (MARKUPS[cid] or 0))
            sums[(r["MeterCategory"], r["MeterSubCategory"], r["MeterName"], price)] += D(r["Quantity"]) * price
        expected_usage = sorted(cents(s) for s in sums.values())
        draft = invoices[cid].draft
        usage_lines = [line for line in draft.lines if line.usage_rows]
        assert sorted(line.amount for line in usage_lines) == expected_usage
        assert sum(len(line.usage_rows) for line in usage_lines) == len(mine)
        recurring = D(25) if cid == "CTR-1" else D(0)
        assert draft.subtotal == sum(expected_usage) + recurring
        assert draft.currency == tenants[k].currency
        assert {line.product for line in usage_lines} == {r["MeterCategory"] for r in mine}


def test_reading_the_same_file_again_or_a_later_file_repeating_rows_bills_nothing_twice(billed, monkeypatch):
    folder, tenants, out = billed
    run(folder, out)
    first = ledger_usage(out)
    assert len(first) == len({u for _, u, _, _ in first})
    assert run(folder, out) == 1
    assert ledger_usage(out) == first
    # a later file repeats a twentieth of the rows, three of them revised; a month later the next cycles are due
    changed = pcf.revise(folder / "usage-2026-10.csv", folder / "usage-2026-10-revised.csv", 7)
    run(folder, out, "2026-12-02")
    assert sorted(ledger_usage(out)) == sorted(first)  # no row billed again, revised or not

    rows = csv_rows(folder / "usage-2026-10.csv")
    later = {(r["CustomerId"], r["MeterId"], r["ResourceURI"], r["UsageDate"]): r
             for r in csv_rows(folder / "usage-2026-10-revised.csv")}
    mapped = {t.customer_id: cid for t, cid in zip(tenants, MARKUPS)}
    expected = {}
    for line in changed:
        old = rows[line - 2]
        if old["CustomerId"] not in mapped:
            continue  # an unmapped tenant's rows were never billed
        new = later[(old["CustomerId"], old["MeterId"], old["ResourceURI"], old["UsageDate"])]
        price = D(old["EffectiveUnitPrice"]) * D(old["PCToBCExchangeRate"]) * (1 + (MARKUPS[mapped[old["CustomerId"]]] or 0))
        expected[mapped[old["CustomerId"]], D(old["Quantity"]), D(new["Quantity"])] = (D(new["Quantity"]) - D(old["Quantity"])) * price
    assert expected, "the seed must revise a billed row"
    report = check_json(folder, out, monkeypatch, "2026-12-02")
    found = {(r["contract_id"], D(r["billed_quantity"]), D(r["quantity"])): D(r["difference"]) for r in report["revised"]}
    assert found == expected
    review = max((out / "runs").glob("*/review.html")).read_text()
    assert "Revised after billing" in review
    assert all(r["usage_id"] in review for r in report["revised"])


def test_a_tenant_on_no_contract_is_reported_with_its_rows_and_cost(billed, monkeypatch):
    folder, tenants, out = billed
    report = check_json(folder, out, monkeypatch)
    lost = [r for r in csv_rows(folder / "usage-2026-10.csv") if r["CustomerId"] == tenants[3].customer_id]
    cost = sum((D(r["Quantity"]) * D(r["EffectiveUnitPrice"]) * D(r["PCToBCExchangeRate"]) for r in lost), D(0))
    (problem,) = [p for p in report["problems"] if p["code"] == "BB153"]
    assert problem["value"] == tenants[3].customer_id
    assert f"has {len(lost):,} usage row(s) costing {cents(cost):,} {tenants[3].currency}" in problem["message"]
    assert problem["row"] == 2 + next(i for i, r in enumerate(csv_rows(folder / "usage-2026-10.csv"))
                                      if r["CustomerId"] == tenants[3].customer_id)
    assert not problem["fatal"] and report["exit_code"] == 1


def _tamper(path: Path, tenant: str, by: D) -> D:
    """Raise one row's BillingPreTaxTotal; return the tenant's month total as Partner Center now states it."""
    rows = csv_rows(path)
    target = next(r for r in rows if r["CustomerId"] == tenant)
    target["BillingPreTaxTotal"] = str(D(target["BillingPreTaxTotal"]) + by)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=pcf.COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return sum((D(r["BillingPreTaxTotal"]) for r in rows if r["CustomerId"] == tenant), D(0))


def _imported(path: Path, tenant: str) -> D:
    return sum((D(r["Quantity"]) * D(r["EffectiveUnitPrice"]) * D(r["PCToBCExchangeRate"])
                for r in csv_rows(path) if r["CustomerId"] == tenant), D(0))


def test_reconciliation_is_flagged_beyond_the_tolerance_and_not_within(billed, monkeypatch):
    folder, tenants, out = billed
    path = folder / "usage-2026-10.csv"
    report = check_json(folder, out, monkeypatch)
    assert report["reconciliation"] == []  # truncation to the cent stays within 1%

    imported = _imported(path, tenants[0].customer_id)
    small = cents(imported * D("0.004"))  # well within 1 %
    _tamper(path, tenants[0].customer_id, small)
    assert check_json(folder, out, monkeypatch)["reconciliation"] == []

    stated = _tamper(path, tenants[0].customer_id, cents(imported * D("0.03")))
    assert run(folder, out) == 1
    (flag,) = check_json(folder, out, monkeypatch)["reconciliation"]
    assert flag["contract_id"] == "CTR-1" and flag["month"] == "2026-10"
    assert D(flag["billing_pre_tax_total"]) == stated
    assert D(flag["imported"]) == imported
    assert D(flag["difference"]) == imported - stated
    rows = csv_rows(out / flag["rows_file"])
    assert len(rows) == sum(1 for r in csv_rows(path) if r["CustomerId"] == tenants[0].customer_id)
    assert sum(D(r["Difference"]) for r in rows) == imported - stated
    review = max((out / "runs").glob("*/review.html")).read_text()
    assert "Does not reconcile with Partner Center" in review and flag["rows_file"] in review


def test_a_tolerance_set_wider_raises_no_flag(billed, monkeypatch):
    folder, tenants, out = billed
    path = folder / "usage-2026-10.csv"
    _tamper(path, tenants[0].customer_id, cents(_imported(path, tenants[0].customer_id) * D("0.03")))
    book = folder / "billing.xlsx"
    write_book(book, {
        "Customers": [customer(f"CUST-{k}") for k in range(3)],
        "Contracts": [contract(cid, f"CUST-{k}", date(2026, 10, 1), Currency=tenants[k].currency,
                               **{"Partner Center Customer ID": tenants[k].customer_id}) for k, cid in enumerate(MARKUPS)],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 1, 25)],
        "Settings": settings(**{"Usage Tolerance": "5%"}),
    }, CONTRACT_HEADERS)
    assert check_json(folder, out, monkeypatch)["reconciliation"] == []


def test_usage_group_by_names_partner_center_columns(billed):
    folder, tenants, out = billed
    book = folder / "billing.xlsx"
    write_book(book, {
        "Customers": [customer("CUST-0")],
        "Contracts": [contract("CTR-1", "CUST-0", date(2026, 10, 1), Currency=tenants[0].currency,
                               **{"Partner Center Customer ID": tenants[0].customer_id, "Usage Group By": "Resource Group, Meter Category"})],
        "Subscriptions": [],
        "Settings": settings(),
    }, {"Contracts": [*CONTRACT_HEADERS["Contracts"], "Usage Group By"]})
    run(folder, out)
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        (invoice,) = ledger.invoices()
    rows = [r for r in csv_rows(folder / "usage-2026-10.csv") if r["CustomerId"] == tenants[0].customer_id]
    prices = {(r["ResourceGroup"], r["MeterCategory"], D(r["EffectiveUnitPrice"]) * D(r["PCToBCExchangeRate"])) for r in rows}
    lines = [line for line in invoice.draft.lines if line.usage_rows]
    assert len(lines) == len(prices)
    assert {(line.product, line.unit_price) for line in lines} == {(g, p) for g, _, p in prices}
