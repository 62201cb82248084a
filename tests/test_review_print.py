"""What the review and the schedule workbook give a finance team, through the CLI: every amount in
Settings' Locale (the page, its notes, the Review sheet), `review` opening the latest billing run
rather than a credit made since, and every sheet of every workbook set up to print.

The batch bills six customers in six currencies and languages, with long invoice and credit note
numbers (prefixes of 10 characters) and usage files, then credits an invoice; tests/test_review_browser.py
opens the same pages in Chromium."""
from __future__ import annotations

import contextlib
import html.parser
import io
import re
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pypdf
import pytest
from babel.numbers import format_currency, get_currency_symbol
from rich.console import Console
from workbooks import (
    HEADERS,
    contract,
    customer,
    settings,
    subscription,
    usage,
    write_book,
)

from billing_batch import cli
from billing_batch.cli import terminal

LOCALE = "de_DE"  # the finance team's: the page and the workbook are in it, whatever each invoice's language
INVOICE_PREFIX, CREDIT_PREFIX = "ACMEWW-26-", "WW-CREDIT-"  # 10 characters each
AS_OF, CREDITED_ON = "2026-03-02", "2026-03-03"
CUSTOMERS = [  # ID, language, currency, tax rate, unit price: big amounts and none alike
    ("CUST-US", "en_US", "USD", 0, 795.07), ("CUST-DE", "de_DE", "EUR", 0.19, 7284.94),
    ("CUST-GB", "en_GB", "GBP", 0.2, 449.1), ("CUST-JP", "ja_JP", "JPY", 0.1, 1250000),
    ("CUST-CH", "de_CH", "CHF", 0.081, 1234567.89), ("CUST-SE", "sv_SE", "SEK", 0.25, 98765.4),
]


@dataclass
class Billed:
    book: Path
    out: Path
    run_page: Path  # the review of the run
    credit_page: Path  # the review of the credit made after it
    credited: str  # the invoice credited
    review_text: str  # what `review --no-open` printed
    list_text: str  # what `review --list` printed
    run_book: Path  # the schedule workbook as the run left it (the credit's Review sheet holds the credit note)


def call(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    saved, terminal.console = terminal.console, Console(file=out, highlight=False, width=250)
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(list(args))
    finally:
        terminal.console = saved
    return code, out.getvalue()


def bill(root: Path) -> Billed:
    """Bill January and February of six contracts, then credit the German February invoice."""
    sheets = {
        "Customers": [customer(cid, Language=lang, Name=f"Kunde {cid} mit einem langen Namen GmbH & Co. KG",
                               **{"Tax Rate": rate}) for cid, lang, _, rate, _ in CUSTOMERS],
        "Contracts": [contract(f"CTR-{cid[5:]}", cid, Currency=cur) for cid, _, cur, _, _ in CUSTOMERS],
        "Subscriptions": [subscription(f"SUB-{cid[5:]}", f"CTR-{cid[5:]}", 1, price) for cid, _, _, _, price in CUSTOMERS],
        "Usage": [usage(f"USG-{cid[5:]}-{m}", f"CTR-{cid[5:]}", date(2026, m, 15), 10 * m, 2)
                  for cid in ("CUST-US", "CUST-DE") for m in (1, 2)],
        "Settings": settings(Locale=LOCALE, **{"Invoice Prefix": INVOICE_PREFIX, "Credit Note Prefix": CREDIT_PREFIX}),
    }
    (root / "inbox").mkdir(parents=True)
    book = write_book(root / "inbox" / "billing.xlsx", sheets, {"Customers": [*HEADERS["Customers"], "Language"]})
    out = root / "output"
    code, text = call("run", "--input", str(book), "--output", str(out), "--as-of", AS_OF, "--jobs", "1")
    assert code == 0, text
    shutil.copy(out / "billing_schedules.xlsx", root / "after-the-run.xlsx")  # its Review sheet: the run's invoices
    with sqlite3.connect(out / "ledger.sqlite") as db:
        (credited,) = db.execute("SELECT number FROM invoices WHERE customer_id = 'CUST-DE' ORDER BY seq DESC LIMIT 1"
                                 ).fetchone()
    code, text = call("credit", "--invoice", credited, "--reason", "Goodwill", "--input", str(book), "--output",
                      str(out), "--as-of", CREDITED_ON, "--jobs", "1")
    assert code == 0, text
    (run_page,) = out.glob("runs/*-run/review.html")
    (credit_page,) = out.glob("runs/*-credit/review.html")
    _, review_text = call("review", "--no-open", "--output", str(out))
    _, list_text = call("review", "--list", "--output", str(out))
    return Billed(book, out, run_page, credit_page, credited, review_text, list_text, root / "after-the-run.xlsx")


@pytest.fixture(scope="module")
def billed(tmp_path_factory) -> Billed:
    return bill(tmp_path_factory.mktemp("print"))


def ledger_totals(out: Path) -> dict[str, tuple[Decimal, str, str]]:
    """number -> (total as it moves the balance, currency, the invoice's own locale)"""
    with sqlite3.connect(out / "ledger.sqlite") as db:
        return {n: (-Decimal(t) if kind == "Credit Note" else Decimal(t), cur, loc)
                for n, t, cur, loc, kind in db.execute("SELECT number, total, currency, locale, doc_type FROM invoices")}


# ---------------------------------------------------------------- the default run


def test_review_opens_the_latest_billing_run_not_the_credit_made_since(billed: Billed):
    assert str(billed.run_page) in billed.review_text.replace("\n", "")
    assert str(billed.credit_page) not in billed.review_text.replace("\n", "")
    assert f"The latest billing run, {billed.run_page.parent.name}" in billed.review_text
    # --list names both, with their command, and marks the one `review` opens
    runs = (billed.run_page.parent.name, billed.credit_page.parent.name)
    lines = {run: [line for line in billed.list_text.splitlines() if run in line] for run in runs}
    assert all(len(found) == 1 for found in lines.values()), billed.list_text
    lines = {run: found[0] for run, found in lines.items()}
    assert "*" in lines[billed.run_page.parent.name] and "*" not in lines[billed.credit_page.parent.name]
    assert " credit " in lines[billed.credit_page.parent.name] and " run " in lines[billed.run_page.parent.name]
    # and the credit is one --run away
    code, text = call("review", "--no-open", "--output", str(billed.out), "--run", billed.credit_page.parent.name)
    assert code == 0 and str(billed.credit_page) in text.replace("\n", "")


# ---------------------------------------------------------------- one locale


class Cells(html.parser.HTMLParser):
    """The invoice table's rows: each a list of its cells' text."""

    def __init__(self):
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "tbody":
            self._in_body = True
        elif self._in_body and tag == "tr":
            self.rows.append([])
        elif self._in_body and tag == "td":
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag == "td" and self._cell is not None:
            self.rows[-1].append(" ".join(self._cell))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def table_of(page: Path) -> dict[str, list[str]]:
    text = page.read_text(encoding="utf-8")
    table = text[text.index('<table id="invoice-table"'):]
    cells = Cells()
    cells.feed(table[:table.index("</table>")])
    return {row[0].split()[0]: row for row in cells.rows}


# An amount written the English way, its symbol or code first: "$795.07", "€1,234.00", "CHF 1,234,567.89".
ENGLISH_AMOUNT = re.compile(r"(?:[$€£¥]|\b(?:USD|EUR|GBP|JPY|CHF|SEK)\s)-?\d[\d,]*(?:\.\d+)?")


@pytest.mark.parametrize("which", ["run_page", "credit_page"])
def test_every_amount_on_the_page_is_in_the_settings_locale(billed: Billed, which: str):
    page = getattr(billed, which)
    totals = ledger_totals(billed.out)
    rows = table_of(page)
    assert rows
    if which == "run_page":  # its invoices are in six languages
        assert len({loc for n, (_, _, loc) in totals.items() if n in rows}) == len(CUSTOMERS)
    for number, cells in rows.items():
        amount, currency, _ = totals[number]
        assert cells[4] == format_currency(amount, currency, locale=LOCALE), number
    text = page.read_text(encoding="utf-8")
    start = text.index('<section class="cards"')
    shown = text[start:text.index('<section class="panel" id="inputs"')]  # cards, flags, chart, table and notes
    shown = re.sub(r"<svg.*?</svg>", "", shown, flags=re.DOTALL)  # the charts' own text is tested apart
    assert not ENGLISH_AMOUNT.search(shown), ENGLISH_AMOUNT.search(shown).group(0)
    # every amount a note names, the German way: "Gutschrift" for EUR 8,686.27 shows "8.686,27 €"
    if which == "credit_page":
        note = rows[next(iter(rows))][6]
        amount, currency, _ = totals[billed.credited]
        assert format_currency(amount, currency, locale=LOCALE) in note


def test_the_review_sheet_holds_amounts_as_numbers_in_their_currency(billed: Billed):
    wb = openpyxl.load_workbook(billed.run_book)
    totals = ledger_totals(billed.out)
    ws = wb["Review"]
    header = [c.value for c in ws[1]]
    total_col, currency_col = header.index("Total"), header.index("Currency")
    seen = []
    for row in ws.iter_rows(min_row=2):
        number = re.search(r'"([^"]+)"\)$', row[0].value).group(1)  # =HYPERLINK("...pdf","NUMBER")
        cell = row[total_col]
        amount, currency, _ = totals[number]
        assert isinstance(cell.value, (int, float)) and Decimal(str(cell.value)) == amount, number
        assert row[currency_col].value == currency
        symbol = get_currency_symbol(currency, locale=LOCALE)
        # the symbol after the digits, as German writes money; JPY without decimals
        assert re.fullmatch(rf'#,##0(\.00)?" {re.escape(symbol)}";"-"#,##0(\.00)?" {re.escape(symbol)}"',
                            cell.number_format), cell.number_format
        assert ("." in cell.number_format) is (currency != "JPY")
        seen.append(currency)
    assert len(set(seen)) == len(CUSTOMERS)
    # the Invoices sheet's amounts alike, and they add up
    ws = wb["Invoices"]
    header = [c.value for c in ws[1]]
    column = header.index("Total")
    usd = [r[column] for r in ws.iter_rows(min_row=2) if r[header.index("Currency")].value == "USD"]
    assert all(f'" {get_currency_symbol("USD", locale=LOCALE)}"' in c.number_format for c in usd)
    assert Decimal(str(round(sum(c.value for c in usd), 2))) == sum(a for a, cur, _ in totals.values()
                                                                     if cur == "USD" and a > 0)


def test_the_notes_of_the_review_sheet_are_in_the_settings_locale(billed: Billed):
    ws = openpyxl.load_workbook(billed.run_book)["Review"]
    notes = " ".join(str(r[-1].value or "") for r in ws.iter_rows(min_row=2))
    assert notes and not ENGLISH_AMOUNT.search(notes), ENGLISH_AMOUNT.search(notes).group(0)


# ---------------------------------------------------------------- on paper


def workbooks(billed: Billed) -> list[Path]:
    books = [billed.out / "billing_schedules.xlsx", *sorted(billed.out.glob("invoices/*-usage.xlsx"))]
    assert len(books) >= 3  # the schedule workbook and usage files
    return books


LETTER, A4 = 1, 9


def test_every_sheet_of_every_workbook_prints_landscape_one_page_wide_with_its_header(billed: Billed):
    locales = {n: loc for n, (_, _, loc) in ledger_totals(billed.out).items()}
    for path in workbooks(billed):
        wb = openpyxl.load_workbook(path)
        for ws in wb.worksheets:
            where = f"{path.name}: {ws.title}"
            assert ws.page_setup.orientation == "landscape", where
            assert ws.sheet_properties.pageSetUpPr.fitToPage, where
            # 1 page wide (OOXML's default, which xlsxwriter leaves out), as many pages tall as it takes
            assert (ws.page_setup.fitToWidth or 1, ws.page_setup.fitToHeight) == (1, 0), where
            assert ws.print_title_rows == "$1:$1", where  # the header on every page
            assert ws.freeze_panes == "A2", where
            # the schedule workbook on the paper of the finance team's locale, a usage file on its invoice's
            locale = LOCALE if path.name == "billing_schedules.xlsx" else locales[path.name.removesuffix("-usage.xlsx")]
            assert int(ws.page_setup.paperSize) == (LETTER if locale == "en_US" else A4), where
            assert ws.print_options.gridLines, where
            assert "&P" in ws.oddFooter.right.text, where


def test_the_long_text_of_a_sheet_wraps_in_rows_tall_enough(billed: Billed):
    ws = openpyxl.load_workbook(billed.run_book)["Review"]
    notes = ws.cell(1, ws.max_column)
    assert notes.value == "Notes" and ws.column_dimensions[notes.column_letter].width <= 61
    noted = [row for row in ws.iter_rows(min_row=2) if row[-1].value]
    assert noted
    for row in noted:
        lines = row[-1].value.count("\n") + 1
        assert row[-1].alignment.wrap_text
        assert (ws.row_dimensions[row[0].row].height or 15) >= 15 * lines


LIBREOFFICE = shutil.which("libreoffice") or shutil.which("soffice")


@pytest.mark.skipif(not LIBREOFFICE, reason="LibreOffice is not installed: the workbooks are not printed to PDF")
def test_printed_by_libreoffice_every_page_is_landscape_and_starts_with_its_header(billed: Billed, tmp_path: Path):
    for path in workbooks(billed)[:2]:
        subprocess.run([LIBREOFFICE, "--headless", f"-env:UserInstallation=file://{tmp_path}/profile", "--convert-to",
                        "pdf", "--outdir", str(tmp_path), str(path)], check=True, capture_output=True, timeout=300)
        pdf = pypdf.PdfReader(tmp_path / path.with_suffix(".pdf").name)
        sheets = {ws.title: [c.value for c in ws[1]] for ws in openpyxl.load_workbook(path).worksheets}
        for number, page in enumerate(pdf.pages, start=1):
            assert page.mediabox.width > page.mediabox.height, (path.name, number)
            text = page.extract_text()
            # the footer names the sheet; the page's first row is that sheet's header, whole
            sheet = next(name for name in sheets if name in text)
            assert all(str(title).split()[0] in text for title in sheets[sheet]), (path.name, number, sheet)
        assert len(pdf.pages) >= len(sheets)
