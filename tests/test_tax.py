"""Taxes as EN 16931 has them: VAT categories and rates per line, the VAT breakdown with the discount
split between its groups, VAT IDs, exemption legends, on the PDF, in the ledger and in the exports."""
from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import openpyxl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pypdf import PdfReader
from stdnum.eu import vat

from billing_batch.engine.cycles import cycle
from billing_batch.ledger.store import Ledger
from billing_batch.model import ChargeType, Line, LineKind, Product, Source, Subscription
from billing_batch.engine.pricing import price_cycle
from billing_batch.engine.tax import DEFAULT_REASONS, PER_LINE, Rules, vat_groups
from test_pricing import contract, customer
from workbooks import HEADERS, contract as contract_row, customer as customer_row, settings, subscription, write_book

SRC = Source("test.xlsx", "Products", 2)
FIXTURE = Path(__file__).parent / "fixtures" / "ledger-0.1.0"
SELLER_VAT, BUYER_VAT = "NL004495445B01", "BE0477472701"  # checked valid in test_the_vat_ids_used_here_are_valid
HEADERS_TAX = {
    "Customers": HEADERS["Customers"] + ["VAT ID", "Tax Category", "Tax Exemption Reason"],
    "Products": ["Product", "Account Code", "Tax Type", "Tax Category", "Tax Rate", "Tax Exemption Reason"],
}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True)


def one_time(sid: str, product: str, amount: str):
    return Subscription(sid, "C-1", product, product, D(1), D(amount), date(2025, 1, 10), None, ChargeType.ONE_TIME,
                        SRC)


def product(name: str, category: str = "", rate: str | None = None, reason: str = "") -> Product:
    return Product(name, "", "", SRC, category, D(rate) if rate is not None else None, reason)


def test_the_vat_ids_used_here_are_valid():
    assert vat.is_valid(SELLER_VAT) and vat.is_valid(BUYER_VAT)
    assert not vat.is_valid("BE0477472702")  # the wrong check digit of the error case BB123


# ---------------------------------------------------------------- the arithmetic, to the cent


def test_three_rates_and_a_discount_to_the_cent():
    con = contract(discount="0.10")
    products = {"Books": product("Books", "S", "0.06"),
                "Training": product("Training", "E", reason="Exempt: Article 132(1)(i) Directive 2006/112/EC")}
    subs = [one_time("S-1", "Platform", "1234.56"), one_time("S-2", "Books", "100.01"),
            one_time("S-3", "Training", "50.00")]
    draft = price_cycle(cycle(con, 0), con, customer(tax="0.21"), subs, [], Rules(products))
    # subtotal 1234.56 + 100.01 + 50.00 = 1384.57; discount round(1384.57 x 10%) = round(138.457) = 138.46
    # = 13846 cents split by the nets 1234.56 : 100.01 : 50.00 (of 1384.57):
    #   13846 x 1234.56 / 1384.57 = 12345.87 -> 12345, 13846 x 100.01 / 1384.57 = 1000.12 -> 1000,
    #   13846 x 50.00 / 1384.57 = 500.01 -> 500; 13845 given, the 1 cent left to the largest remainder
    #   (.87, S 21%): 123.46 + 10.00 + 5.00 = 138.46
    # taxable: 1234.56 - 123.46 = 1111.10; 100.01 - 10.00 = 90.01; 50.00 - 5.00 = 45.00
    # tax: round(1111.10 x 21%) = round(233.331) = 233.33; round(90.01 x 6%) = round(5.4006) = 5.40; E: 0
    # tax 238.73; total 1384.57 - 138.46 + 238.73 = 1484.84
    assert [(g.category, g.rate, g.discount, g.taxable, g.tax) for g in draft.vat_groups] == [
        ("S", D("0.21"), D("123.46"), D("1111.10"), D("233.33")),
        ("S", D("0.06"), D("10.00"), D("90.01"), D("5.40")),
        ("E", D("0"), D("5.00"), D("45.00"), D("0.00")),
    ]
    assert (draft.subtotal, draft.discount, draft.tax, draft.total) == (
        D("1384.57"), D("138.46"), D("238.73"), D("1484.84"))
    assert draft.vat_groups[2].exemption_reason == "Exempt: Article 132(1)(i) Directive 2006/112/EC"
    assert [(line.tax_category, line.tax_rate) for line in draft.lines] == [
        ("S", D("0.21")), ("S", D("0.06")), ("E", D("0"))]


def test_per_line_rounds_each_line_and_the_discount_as_a_negative_line():
    lines = [Line(LineKind.ONE_TIME, "P", "", date(2025, 1, 1), date(2025, 1, 1), D(1), D("0.10"), D("0.10"),
                  tax_category="S", tax_rate=D("0.25"))] * 3
    # Per Group: round(0.30 x 25%) = round(0.075) = 0.08. Per Line: 3 x round(0.025) = 3 x 0.03 = 0.09.
    assert vat_groups(lines, D(0), "USD")[0].tax == D("0.08")
    assert vat_groups(lines, D(0), "USD", PER_LINE)[0].tax == D("0.09")
    # with a discount of 0.10: Per Line 0.09 - round(0.10 x 25%) = 0.09 - 0.03 = 0.06; Per Group round(0.05) = 0.05
    assert vat_groups(lines, D("0.10"), "USD", PER_LINE)[0].tax == D("0.06")
    assert vat_groups(lines, D("0.10"), "USD")[0].tax == D("0.05")


def test_the_customer_category_overrides_every_line_and_its_rate_is_the_default_for_s():
    con = contract()
    products = {"Books": product("Books", "S", "0.06"), "Training": product("Training", "Z")}
    subs = [one_time("S-1", "Platform", "100"), one_time("S-2", "Books", "100"), one_time("S-3", "Training", "100")]
    plain = price_cycle(cycle(con, 0), con, customer(tax="0.21"), subs, [], Rules(products))
    assert [(g.category, g.rate, g.tax) for g in plain.vat_groups] == [
        ("S", D("0.21"), D("21.00")), ("S", D("0.06"), D("6.00")), ("Z", D(0), D("0.00"))]
    assert plain.vat_groups[2].exemption_reason == DEFAULT_REASONS["Z"]
    reverse = replace(customer(tax="0.21"), tax_category="AE", vat_id=BUYER_VAT)
    draft = price_cycle(cycle(con, 0), con, reverse, subs, [], Rules(products))
    assert [(g.category, g.taxable, g.tax, g.exemption_reason) for g in draft.vat_groups] == [
        ("AE", D("300.00"), D("0.00"), DEFAULT_REASONS["AE"])]
    assert draft.total == D("300.00")


cents = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n).scaleb(-2))


@given(st.lists(st.tuples(cents, st.sampled_from(["0.21", "0.06", "0.19", "0"])), min_size=1, max_size=12),
       st.integers(min_value=0, max_value=100))
def test_the_discount_split_adds_up_and_each_share_is_within_a_cent_of_its_proportion(items, percent):
    lines = [Line(LineKind.ONE_TIME, "P", "", date(2025, 1, 1), date(2025, 1, 1), D(1), amount, amount,
                  tax_category="S" if rate != "0" else "E", tax_rate=D(rate)) for amount, rate in items]
    subtotal = sum((line.amount for line in lines), D(0))
    discount = (subtotal * percent / 100).quantize(D("0.01"))
    groups = vat_groups(lines, discount, "USD")
    assert sum(g.discount for g in groups) == discount
    assert sum(g.taxable for g in groups) == subtotal - discount
    nets = defaultdict(D)
    for line in lines:
        nets[(line.tax_category, line.tax_rate)] += line.amount
    for g in groups:
        exact = discount * nets[(g.category, g.rate)] / subtotal if subtotal else None
        if exact is not None:
            assert abs(g.discount - exact) < D("0.01")
        assert g.taxable >= 0 and g.tax == (g.taxable * g.rate).quantize(D("0.01"), rounding="ROUND_HALF_UP")


# ---------------------------------------------------------------- today's workbooks bill as before


def test_release_0_1_0_workbook_bills_exactly_what_it_billed(tmp_path: Path):
    # 0.1.0 billed one line per usage row (Usage Lines = Detail now; Summary rounds once per line, which
    # moves cents: decisions.md), had no Catch-Up Limit, and no tax columns: with those two said, every
    # invoice must come out as it did.
    book = openpyxl.load_workbook(FIXTURE / "billing.xlsx")
    book["Settings"].append(["Usage Lines", "Detail"])
    book.save(tmp_path / "billing.xlsx")
    out = tmp_path / "out"
    result = run_cli("run", "--input", str(tmp_path / "billing.xlsx"), "--output", str(out), "--as-of", "2026-11-02",
                     "--jobs", "2", "--allow-catch-up")
    assert result.returncode == 0, result.stdout + result.stderr
    query = "SELECT number, contract_id, cycle_start, subtotal, discount, tax, total FROM invoices ORDER BY seq"
    with sqlite3.connect(FIXTURE / "ledger.sqlite") as old, sqlite3.connect(out / "ledger.sqlite") as new:
        before, after = old.execute(query).fetchall(), new.execute(query).fetchall()
    assert len(before) == 64 and after == before
    assert run_cli("ledger", "check", "--output", str(out), "--jobs", "1").returncode == 0


# ---------------------------------------------------------------- a Belgian business under reverse charge


def eu_book(path: Path, **customer_cells) -> Path:
    return write_book(path, {
        "Customers": [customer_row("CUST-1", Country="Netherlands", **{"Tax Rate": 0.21}),
                      customer_row("CUST-2", Name="Belliard Data Services SRL", Country="Belgium",
                                   **{"Tax Rate": 0.21, "Tax Category": "AE", "VAT ID": "BE 0477.472.701",
                                      **customer_cells})],
        "Contracts": [contract_row("CTR-1", "CUST-1", Currency="EUR", Discount=0.1),
                      contract_row("CTR-2", "CUST-2", Currency="EUR")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 2, 50), subscription("SUB-2", "CTR-2", 1, 1000),
                          subscription("SUB-3", "CTR-1", 1, 80, Product="Manuals")],
        "Products": [{"Product": "Platform", "Account Code": "4000"},
                     {"Product": "Manuals", "Account Code": "4100", "Tax Category": "S", "Tax Rate": 0.06}],
        "Settings": settings(**{"VAT ID": SELLER_VAT, "Tax ID": "KvK 12345678", "Locale": "en_GB"}),
    }, headers=HEADERS_TAX)


def pdf_text(path: Path) -> str:
    return " ".join("\n".join(page.extract_text() for page in PdfReader(path).pages).split())


def test_reverse_charge_invoice_shows_both_vat_ids_and_the_legend(tmp_path: Path):
    out = tmp_path / "out"
    result = run_cli("run", "--input", str(eu_book(tmp_path / "billing.xlsx")), "--output", str(out),
                     "--as-of", "2026-02-02", "--jobs", "1", "--post-tasks", "sync")
    assert result.returncode == 0, result.stdout + result.stderr
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        invoices = {i.draft.contract_id: i for i in ledger.invoices()}
    reverse, domestic = invoices["CTR-2"], invoices["CTR-1"]
    assert reverse.draft.tax == 0 and reverse.draft.total == reverse.draft.subtotal == D("1000.00")
    assert [(g.category, g.taxable, g.tax) for g in reverse.draft.vat_groups] == [("AE", D("1000.00"), D("0.00"))]
    assert (reverse.seller.vat_id, reverse.buyer.vat_id) == (SELLER_VAT, BUYER_VAT)
    text = pdf_text(out / reverse.pdf_name)
    assert f"VAT ID: {SELLER_VAT}" in text and f"VAT ID: {BUYER_VAT}" in text and "Tax ID: KvK 12345678" in text
    assert DEFAULT_REASONS["AE"] in text
    assert "AE – Reverse charge 0% €1,000.00 €0.00" in text  # the breakdown row
    assert len(PdfReader(out / reverse.pdf_name).pages) == 1

    # The domestic one: 100.00 at 21% and 80.00 at 6%, 10% off = 18.00 split 10.00 / 8.00;
    # tax round(90.00 x 21%) = 18.90 and round(72.00 x 6%) = 4.32.
    assert [(g.rate, g.discount, g.taxable, g.tax) for g in domestic.draft.vat_groups] == [
        (D("0.21"), D("10.00"), D("90.00"), D("18.90")), (D("0.06"), D("8.00"), D("72.00"), D("4.32"))]
    text = pdf_text(out / domestic.pdf_name)
    assert "S 21%" in text and "S 6%" in text and "S – Standard rate 21% €90.00 €18.90" in text
    assert "VAT €23.22" in text

    # The exports name each line's tax from its category and rate; each group's rows carry its own tax.
    (xero,) = (out / "exports").glob("xero-*.csv")
    rows = list(csv.DictReader(xero.open(newline="", encoding="utf-8")))
    taxes = defaultdict(D)
    for r in rows:
        taxes[(r["*InvoiceNumber"], r["*TaxType"])] += D(r["TaxAmount"])
    assert taxes == {(domestic.number, "21% (VAT on Income)"): D("18.90"),
                     (domestic.number, "6% (VAT on Income)"): D("4.32"),
                     (reverse.number, "Zero Rated EC Services"): D("0.00")}
    (qbo,) = (out / "exports").glob("quickbooks-*.csv")
    codes = {(r["InvoiceNo"], r["ItemTaxCode"]) for r in csv.DictReader(qbo.open(newline="", encoding="utf-8"))}
    assert codes == {(domestic.number, "21.0% S"), (domestic.number, "6.0% S"), (reverse.number, "0.0% ECS")}
    assert run_cli("ledger", "check", "--output", str(out), "--jobs", "1").returncode == 0


@pytest.mark.parametrize(("cells", "code", "words"), [
    ({"VAT ID": None}, "BB122", "needs the customer's VAT ID; customer CUST-2 has none"),
    ({"VAT ID": "BE0477472702"}, "BB123", "check digits do not match"),
])
def test_a_missing_or_mistyped_vat_id_sets_the_contract_aside(tmp_path: Path, cells, code, words):
    book = eu_book(tmp_path / "billing.xlsx", **cells)
    checked = run_cli("check", "--input", str(book), "--output", str(tmp_path / "out"), "--as-of", "2026-02-02")
    text = " ".join(checked.stdout.split())
    assert checked.returncode == 1, checked.stdout
    assert code in text and words in text and "Customers > row 3, column I (VAT ID)" in text
    result = run_cli("run", "--input", str(book), "--output", str(tmp_path / "out"), "--as-of", "2026-02-02",
                     "--jobs", "1")
    assert result.returncode == 1, result.stdout
    with Ledger(tmp_path / "out" / "ledger.sqlite", read_only=True) as ledger:
        assert {i.draft.contract_id for i in ledger.invoices()} == {"CTR-1"}  # CTR-2 set aside, CTR-1 billed


def test_a_mistyped_seller_vat_id_stops_the_run(tmp_path: Path):
    book = eu_book(tmp_path / "billing.xlsx")
    wb = openpyxl.load_workbook(book)
    for row in wb["Settings"].iter_rows(min_row=2):
        if row[0].value == "VAT ID":
            row[1].value = "NL004495446B01"
    wb.save(book)
    checked = run_cli("check", "--input", str(book), "--output", str(tmp_path / "out"), "--as-of", "2026-02-02")
    assert checked.returncode == 2 and "BB201" in checked.stdout and "NL004495446B01" in checked.stdout


def test_an_edited_vat_group_is_found_by_ledger_check(tmp_path: Path):
    out = tmp_path / "out"
    assert run_cli("run", "--input", str(eu_book(tmp_path / "billing.xlsx")), "--output", str(out),
                   "--as-of", "2026-02-02", "--jobs", "1").returncode == 0
    with sqlite3.connect(out / "ledger.sqlite") as db:
        number, = db.execute("SELECT number FROM invoice_vat_groups WHERE rate = '0.06'").fetchone()
        db.execute("UPDATE invoice_vat_groups SET tax = '4.33' WHERE rate = '0.06'")
        db.execute("UPDATE invoices SET tax = '23.23', total = '185.23' WHERE number = ?", (number,))
    result = run_cli("ledger", "check", "--output", str(out), "--json")
    assert result.returncode == 1
    assert f"{number}: the VAT group S 6% has tax 4.33, but round(72.00 x 0.06) = 4.32" in result.stdout
