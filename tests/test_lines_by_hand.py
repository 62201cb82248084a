"""Every invoice line can be checked by hand from what it prints (issue #23): the quantity, the unit price
(per month for a recurring charge), the months and the days of the full cycle it bills, such that their
product, rounded once half-up to the currency's minor unit, is the printed amount. Through the CLI, in
every language, on invoices, Adjustment lines, change-log invoices and credit notes, read back from the
PDFs with pypdf; and in the e-invoices, whose lines must make BT-131 = BT-129 x BT-146 / BT-149."""
from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pypdf
import pytest
from babel.numbers import get_currency_precision
from lxml import etree
from babel import Locale
from rich.console import Console

from billing_batch import cli, i18n
from billing_batch.cli import terminal
from billing_batch.documents import einvoice_check
from billing_batch.documents.invoice_view import LABELS, invoice_view
from billing_batch.ledger.store import Ledger
from billing_batch.model import Invoice
from test_einvoice import CUSTOMERS, HEADERS_EINV, SELLER
from workbooks import contract, settings, subscription, usage, write_book

LANGUAGES = ("de_DE", "en_GB", "es_ES", "fr_FR", "it_IT", "nl_NL")
HEADERS = {**HEADERS_EINV, "Customers": HEADERS_EINV["Customers"] + ["Language"],
           "Usage": ["Usage ID", "Contract ID", "Date", "Product", "Description", "Quantity", "Unit Price"]}
# The e-invoice each customer takes, after test_einvoice's three kinds of buyer
KINDS = ("CUST-FX", "CUST-XR", "CUST-PE", "CUST-FX", "CUST-FX", "CUST-PE")
QUARTER, YEAR = date(2026, 7, 1), date(2026, 7, 1)
SEATS_FROM = date(2026, 7, 21)  # 72 of the quarter's 92 days: the issue's "10 x 33,70 € = 791,22 €"


def book(path: Path, seats: int = 10, annual_end: date | None = None, setup: bool = True) -> Path:
    """Per language, a customer with a quarterly contract (seats from 21 July, prorated, a one-time
    setup, usage at a price of four decimals) and an annual one; all billed in advance in EUR."""
    customers, contracts, subscriptions, rows = [], [], [], []
    for n, (language, kind) in enumerate(zip(LANGUAGES, KINDS), 1):
        cid = f"C{n}"
        customers.append({**CUSTOMERS[kind], "Customer ID": cid, "Name": f"{kind} {language}", "Language": language})
        order = {"Purchase Order": f"PO-{n}"}
        contracts += [contract(f"Q{n}", cid, QUARTER, Currency="EUR", **order,
                               **{"Billing Frequency": "Quarterly", "Billing Policy": "Advance"}),
                      contract(f"A{n}", cid, YEAR, Currency="EUR", **order,
                               **{"Billing Frequency": "Annual", "Billing Policy": "Advance"})]
        subscriptions += [
            subscription(f"S{n}", f"Q{n}", seats, 33.70, **{"Start Date": SEATS_FROM}),
            subscription(f"Y{n}", f"A{n}", 5, 105, Product="Platform Pro", Description="Annual seats",
                         **{"End Date": annual_end}),
        ] + [subscription(f"O{n}", f"Q{n}", 1, 412.50, Product="Onboarding", Description="Setup",
                          **{"Charge Type": "One-Time", "Start Date": SEATS_FROM})] * setup
        rows.append(usage(f"U{n}", f"Q{n}", date(2026, 7, 25), Decimal("1234.5"), Decimal("0.0125")))
    return write_book(path, {
        "Customers": customers, "Contracts": contracts, "Subscriptions": subscriptions, "Usage": rows,
        "Settings": settings(**SELLER, **{"Adjustment Invoices": "Monthly"}),
    }, headers=HEADERS)


def cli_ok(*args: str) -> None:
    out = io.StringIO()
    terminal.console = Console(file=out, width=200)
    code = cli.main(list(args))
    assert code == 0, out.getvalue()


@pytest.fixture(scope="module")
def billed(tmp_path_factory) -> tuple[Path, list[Invoice]]:
    """Two quarters billed, the second with Adjustment lines and invoices of adjustments only; then
    credits of every kind: part of a line's quantity, an amount off a line, an invoice in full, and
    what is left of an invoice after those (the 8 seats left of 10 are not 791.22 - 158.24 rounded
    once: that credit adds a sum of the rest)."""
    folder = tmp_path_factory.mktemp("by-hand")
    path, out = folder / "billing.xlsx", folder / "out"
    real = terminal.console
    try:
        io_options = ["--input", str(path), "--output", str(out), "--jobs", "1"]
        book(path)
        cli_ok("run", *io_options, "--as-of", "2026-07-02")
        # 13 seats for the same quarter (3 x 79.1217... is not 1,028.58 - 791.22: a line of the rounding),
        # the setup taken back, the annual seats end in March (an invoice of adjustments only, below zero:
        # a credit note)
        book(path, seats=13, annual_end=date(2027, 3, 31), setup=False)
        cli_ok("run", *io_options, "--as-of", "2026-10-02")
        with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
            issued = ledger.invoices()
        for invoice in (i for i in issued if not i.is_credit_note):  # the annual adjustments' are already
            if invoice.invoice_date > date(2026, 7, 2):  # October's, with usage or adjustments only: in full
                cli_ok("credit", *io_options, "--as-of", "2026-10-06", "--invoice", invoice.number, "--reason", "Paid twice")
                continue
            if invoice.draft.contract_id.startswith("Q"):
                cli_ok("credit", *io_options, "--as-of", "2026-10-06", "--invoice", invoice.number, "--line", "1",
                       "--quantity", "2", "--reason", "Two seats were never used")
                cli_ok("credit", *io_options, "--as-of", "2026-10-06", "--invoice", invoice.number, "--line", "2",
                       "--amount", "100", "--reason", "Goodwill")
            cli_ok("credit", *io_options, "--as-of", "2026-10-06", "--invoice", invoice.number,
                   "--reason", "Cancelled")
    finally:
        terminal.console = real
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        return out, ledger.invoices()


# ---------------------------------------------------------------- reading a line back from the PDF

MONEY_BODY = r"\d(?:[\d.,\u00a0\u202f]*\d)?"
MONEY = rf"(?:[-−]?€[\u00a0 ]?[-−]?{MONEY_BODY}|[-−]?{MONEY_BODY}[\u00a0 ]€)"
VAT = r"(?:^|\s)(?:S|Z|E|AE|K|G|O|L|M) \d+(?:[.,]\d+)?[\u00a0\u202f ]?%"


@dataclass(frozen=True)
class Printed:
    """One line as printed: the factors and the amount read back."""

    quantity: Decimal | None  # None: a sum (no quantity, no price)
    unit_price: Decimal | None
    per_month: bool
    months: int | None
    days: tuple[int, int] | None
    amount: Decimal

    def product(self) -> Decimal:
        if self.quantity is None:
            return self.amount  # a sum is its own factor
        value = self.quantity * self.unit_price * (self.months or 1)
        return value * self.days[0] / self.days[1] if self.days else value


def number(text: str, locale: str) -> Decimal:
    """A number or an amount as the locale prints it, read back: its group separators dropped."""
    symbols = Locale.parse(locale).number_symbols
    symbols = symbols.get("latn", symbols)  # Babel 2.14 keys the symbols by numbering system
    digits = re.sub(r"[^\d,.\-−]", "", text).replace("−", "-").replace(symbols["group"], "")
    return Decimal(digits.replace(symbols["decimal"], "."))


def row_pattern(locale: str) -> re.Pattern:
    """A line's figures after its VAT cell: quantity, unit price per month or not, the factors under the
    price, the amount; or a sum's word and its amount. The words are the invoice's own, in its language."""
    words = i18n.labels(LABELS, locale)

    def text(label: str, **groups: str) -> str:  # a cell may wrap wherever the label has a space
        parts = re.split(r"(\{\w+\})", words[label])
        return "".join(groups[part[1:-1]] if part.startswith("{") else r"\s+".join(map(re.escape, part.split(" ")))
                       for part in parts)

    months = text("months_factor", months=r"(?P<months>\d+)")
    days = text("days_factor", days=r"(?P<days>\d+)", full_days=r"(?P<full>\d+)")
    sums = f"{text('lump_sum')}|{text('rounding')}"
    return re.compile(
        rf"{VAT}\s+(?:(?P<quantity>[-−]?\d[\d.,\u202f\u00a0]*)\s+(?P<price>{MONEY})(?P<per>\s+{text('per_month')})?"
        rf"|(?P<sum>{sums}))(?:\s+{months})?(?:\s+{days})?\s+(?P<amount>{MONEY})")


def printed_lines(pdf: Path, locale: str) -> list[Printed]:
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    found = []
    for m in row_pattern(locale).finditer(text):
        is_sum = m["sum"] is not None
        found.append(Printed(
            None if is_sum else number(m["quantity"], locale), None if is_sum else number(m["price"], locale),
            bool(m["per"]), int(m["months"]) if m["months"] else None,
            (int(m["days"]), int(m["full"])) if m["days"] else None, number(m["amount"], locale)))
    return found


def rounded(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-get_currency_precision(currency)), ROUND_HALF_UP)


# ---------------------------------------------------------------- the tests


def test_every_printed_line_s_factors_make_its_amount_in_every_language(billed):
    out, invoices = billed
    kinds = set()
    for invoice in invoices:
        printed = printed_lines(out / invoice.pdf_name, invoice.locale)
        # every line of the document was read back, in order: none escapes the check
        assert len(printed) == len(invoice.draft.lines), (invoice.number, printed)
        for n, (line, shown) in enumerate(zip(invoice.draft.lines, printed), 1):
            assert rounded(shown.product(), invoice.draft.currency) == shown.amount, (invoice.number, n, shown)
            sign = -1 if invoice.is_credit_note else 1
            assert shown.amount == sign * line.amount, (invoice.number, n)  # what was billed, as billed
            kinds.add((line.kind.value, invoice.doc_type.value, shown.quantity is None, bool(shown.months),
                       bool(shown.days), invoice.draft.change_log))
    assert {invoice.locale for invoice in invoices} == set(LANGUAGES)
    # What the scenario was made to print, so the check above covered each way a line is made.
    shown = {(kind, doc) for kind, doc, *_ in kinds}
    assert shown >= {("Recurring", "Invoice"), ("One-Time", "Invoice"), ("Usage", "Invoice"), ("Adjustment", "Invoice"),
                     ("Recurring", "Credit Note"), ("One-Time", "Credit Note"), ("Usage", "Credit Note"),
                     ("Adjustment", "Credit Note")}
    assert any(k[0] == "Recurring" and k[3] and k[4] for k in kinds)  # prorated: months and days
    assert any(k[0] == "Recurring" and k[3] and not k[4] for k in kinds)  # a whole year: 12 months
    assert any(k[0] == "Adjustment" and k[4] and k[5] for k in kinds)  # days taken off, on a change-log invoice
    assert any(k[2] and k[1] == "Credit Note" and k[0] != "Adjustment" for k in kinds)  # an amount, the rest
    assert any(k[2] and k[0] == "Adjustment" for k in kinds)  # a rounding
    assert any(k[0] == "Adjustment" and not k[3] and not k[2] for k in kinds)  # the setup taken back


def test_the_issue_s_lines_read_as_a_calculation(billed):
    """"10 × 33,70 € = 791,22 €" and "5 × 105.00 = 6,300.00" now say their months and days."""
    out, invoices = billed
    german = {i.draft.contract_id: i for i in invoices if i.locale == "de_DE" and not i.is_credit_note
              and i.invoice_date == date(2026, 7, 2)}
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(out / german["Q1"].pdf_name).pages).split())
    assert "10 33,70 € / Monat × 3 Monate × 72/92 Tage 791,22 €" in text
    english = {i.draft.contract_id: i for i in invoices if i.locale == "en_GB" and not i.is_credit_note
               and i.invoice_date == date(2026, 7, 2)}
    text = " ".join(" ".join(p.extract_text() for p in pypdf.PdfReader(out / english["A2"].pdf_name).pages).split())
    assert "5 €105.00 / month × 12 months €6,300.00" in text


def test_every_einvoice_line_is_quantity_times_price_per_base_quantity_and_passes_the_rules(billed):
    out, invoices = billed
    checked = 0
    for invoice in invoices:
        path = out / invoice.einvoice_name
        result = einvoice_check.check_file(path)
        assert result.errors == (), (invoice.number, [str(f) for f in result.errors])
        root = etree.parse(str(path)).getroot()
        if result.syntax is einvoice_check.Syntax.CII:
            lines = [(node.findtext(".//{*}BilledQuantity"), node.findtext(".//{*}NetPriceProductTradePrice/{*}ChargeAmount"),
                      node.findtext(".//{*}NetPriceProductTradePrice/{*}BasisQuantity"),
                      node.findtext(".//{*}SpecifiedTradeSettlementLineMonetarySummation/{*}LineTotalAmount"))
                     for node in root.iter("{*}IncludedSupplyChainTradeLineItem")]
        else:
            lines = [(node.findtext("{*}InvoicedQuantity") or node.findtext("{*}CreditedQuantity"),
                      node.findtext("{*}Price/{*}PriceAmount"), node.findtext("{*}Price/{*}BaseQuantity"),
                      node.findtext("{*}LineExtensionAmount"))
                     for node in root if etree.QName(node).localname in ("InvoiceLine", "CreditNoteLine")]
        assert len(lines) == len(invoice.draft.lines)
        for quantity, price, base, amount in lines:  # BT-129, BT-146, BT-149, BT-131
            assert rounded(Decimal(quantity) * Decimal(price) / Decimal(base or 1), "EUR") == Decimal(amount), \
                (invoice.number, quantity, price, base, amount)
            checked += 1
    assert checked >= 60


def test_ledger_check_recomputes_every_line_from_its_factors(billed, tmp_path):
    """The ledger the scenario made agrees with itself (roundings, sums and lines below zero on credit
    notes included); an edited prorated line, which the ledger could not recompute before it kept the
    full cycle's days, is found with its factors."""
    out = tmp_path / "out"
    shutil.copytree(billed[0], out, ignore=shutil.ignore_patterns("backups", "*.lock"))
    ok = subprocess.run([sys.executable, "-m", "billing_batch", "ledger", "check", "--output", str(out), "--json"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    with sqlite3.connect(out / "ledger.sqlite") as db:
        number, line, quantity, price, months, full_days, start, end = db.execute(
            "SELECT number, line, quantity, unit_price, months, full_days, period_start, period_end FROM invoice_lines "
            "WHERE kind = 'Recurring' AND prorated = 1 AND credits_line IS NULL LIMIT 1").fetchone()
        db.execute("UPDATE invoice_lines SET amount = '791.23' WHERE number = ? AND line = ?", (number, line))
    found = subprocess.run([sys.executable, "-m", "billing_batch", "ledger", "check", "--output", str(out), "--json"],
                           capture_output=True, text=True)
    assert found.returncode == 1
    lines = [f["message"] for f in json.loads(found.stdout) if f["check"] == "lines"]
    days = (date.fromisoformat(end) - date.fromisoformat(start)).days + 1
    exact = rounded(Decimal(quantity) * Decimal(price) * months * days / full_days, "EUR")
    assert lines == [f"{number}: line {line} (Platform) is 791.23, but quantity {quantity} x unit price {price} x "
                     f"{months} month(s) x {days}/{full_days} days = {exact}. " + lines[0].split(". ", 1)[1]]


def test_a_line_issued_before_the_ledger_kept_its_factors_prints_as_it_was_issued(tmp_path):
    """Release 0.3.0's ledger, upgraded: its lines have no months or days, so none are printed or guessed;
    a recurring price still says it is per month, and `ledger check` finds nothing amiss."""
    release = Path(__file__).parent / "fixtures" / "ledger-0.3.0"
    out = tmp_path / "out"
    shutil.copytree(release, out)
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:  # upgraded in memory
        invoices = ledger.invoices()
    prorated = [(i, n) for i in invoices for n, line in enumerate(i.draft.lines) if line.prorated]
    assert prorated and all(line.months is None and line.full_days is None for i in invoices for line in i.draft.lines)
    for invoice, n in prorated:
        shown = invoice_view(invoice)["lines"][n]
        assert shown["factors"] == [] and shown["per"] and shown["quantity"] and not shown["sum"]
    checked = subprocess.run([sys.executable, "-m", "billing_batch", "ledger", "check", "--output", str(out)],
                             capture_output=True, text=True)
    assert checked.returncode == 0 and "no problem found" in checked.stdout, checked.stdout
