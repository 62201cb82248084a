"""Fuzz: workbooks of random cells in every column of every sheet, billed through the real CLI.

Whatever is typed, `billing-batch run` must never crash (exit 4 is an internal error: a bug),
must exit 0, 1 or 2, must write nothing when it exits 2, and every invoice in the ledger must add
up: subtotal = sum of its lines, total = subtotal - discount + tax.

Most rows hold plausible values, some hold one odd cell and some are a quarter junk, so that runs
bill something and the invoices get checked. Row n mostly refers to row n of the other sheets, and
now and then to an ID from a small pool: a duplicate, a near miss or an unknown one. Dates stay
near AS_OF so that catch-up billing (and PDF rendering) stays small. EDGES is always tried first.
More examples locally: BILLING_FUZZ_EXAMPLES=1000 .venv/bin/python -m pytest tests/test_fuzz.py
"""
from __future__ import annotations

import io
import os
import re
import sqlite3
import tempfile
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import openpyxl
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from rich.console import Console

from billing_batch import cli
from billing_batch.cli import terminal
from workbooks import HEADERS as BASE_HEADERS

AS_OF = date(2026, 3, 2)
# every column the loader reads, those for the post tasks too
HEADERS = {
    **BASE_HEADERS,
    "Customers": BASE_HEADERS["Customers"] + ["IBAN", "BIC", "Mandate ID", "Mandate Date"],
    "Contracts": BASE_HEADERS["Contracts"] + ["CC"],
    "Products": ["Product", "Account Code", "Tax Type"],
}
EXAMPLES = int(os.environ.get("BILLING_FUZZ_EXAMPLES", "80"))

# mostly IDs that the first rows of the sheets carry, then a stray space, a case slip, an unknown one
CUSTOMER_IDS = ["CUST-1"] * 4 + ["CUST-2"] * 3 + [" CUST-1 ", "cust-2", "CUST-9", "../../etc/x"]
CONTRACT_IDS = ["CTR-1"] * 4 + ["CTR-2"] * 3 + ["CTR-1 ", "ctr-2", "CTR-9"]


def near(start: date, end: date) -> st.SearchStrategy:
    """A date as Excel holds it, as a datetime, or as ISO text."""
    day = st.dates(start, end)
    return st.one_of(day, day.map(lambda d: datetime.combine(d, time())), day.map(date.isoformat))


def one_in(n: int, rare: st.SearchStrategy, usual: st.SearchStrategy) -> st.SearchStrategy:
    # sampled_from draws about uniformly; st.integers would favour its bounds and make "rare" common
    return st.sampled_from([True] + [False] * (n - 1)).flatmap(lambda hit: rare if hit else usual)


# every character an xlsx can hold: XML allows tab, line feed, carriage return and the C1 controls
text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n\r\x7f\x85\x9f"), max_size=24)
nasty = st.sampled_from([
    "", " ", "\t", "#REF!", "#N/A", "#DIV/0!", "#SPILL!", "ten", "US$", "20%", "150%", "1,200.50", "1.200,50",
    "03/04/2025", "31/01/2026", "2026-02-30", "=1+1", "=HYPERLINK(\"http://x\",\"y\")", "+1", "-", "@x", "%",
    "<img src='http://127.0.0.1:9/x'>", "../../etc/passwd", "nan", "inf", "1e400", "0", "-0", "９",
])
words = text.filter(str.strip)  # a required text: something besides spaces
markup = st.sampled_from(["<b>bold</b>", "<img src='http://127.0.0.1:9/x.png'>", "=1+1", "@SUM(A1)", "a & b"])
extreme = st.sampled_from([10**20, -10**20, 1e300, -1e300, 2**63, 1e-300, 10**7, -10**7, 99_999_999, 1e16])
not_dates = st.one_of(st.none(), nasty, text, extreme, st.integers(-10**18, 10**18), st.floats(),
                      st.floats(-1e6, 1e6), st.booleans())
junk = not_dates | st.one_of(
    st.dates(date(1900, 1, 1), date(2199, 12, 31)), st.sampled_from([date(1900, 1, 1), date(2199, 12, 31)]),
    st.datetimes(datetime(1900, 1, 1), datetime(2199, 12, 31)),
)
# The contract start decides how many cycles are billed: junk may move it, but not decades back
# (a start in 1900 is valid and would bill 1,500 monthly invoices: slow, and no new path).
junk_start = not_dates | near(date(2026, 3, 3), date(2199, 12, 31))

VALID = {
    "Customer ID": st.sampled_from(CUSTOMER_IDS),
    "Name": words | st.just("Acme Ltd"),
    "Tax Rate": st.sampled_from([None, 0, 0.2, "20%", 0.075, "7.5%", 1, "0"]),
    "Contract ID": st.sampled_from(CONTRACT_IDS),
    "Start Date": near(date(2025, 12, 1), date(2026, 2, 1)),
    "End Date": one_in(4, near(date(2026, 1, 15), date(2027, 6, 30)), st.none()),
    "Billing Frequency": st.sampled_from(["Monthly"] * 4 + ["Quarterly", "Semi-Annual", "Annual", "Triennial",
                                          "monthly "]),
    "Billing Policy": st.sampled_from([None, "Advance", "Arrears"]),
    "Billing Offset (Days)": st.sampled_from([None, 0, 1, -5, 30, "3"]),
    "Currency": st.sampled_from([None, "USD", "EUR", "JPY", "BHD", "usd"]),
    "Payment Terms (Days)": st.sampled_from([None, 0, 30, "45"]),
    "Discount": st.sampled_from([None, 0, 0.1, "10%", 0.3333]),
    "Status": st.sampled_from([None, None, "Active", "active ", "Inactive"]),
    "Subscription ID": st.sampled_from(["SUB-1", "SUB-2", " SUB-3"]),
    "Product": words | st.just("Platform"),
    "Description": text | markup,
    # money at the edges too: the largest accepted values, tiny fractions, and currencies of 0 and 3 decimals
    "Quantity": st.integers(0, 1000) | st.decimals(0, 10**6, places=3).map(str)
    | st.sampled_from(["1,200.50", 0.333, 10**12, 1e-9, "0.0000001", 999_999_999_999.5]),
    "Unit Price": st.integers(0, 10**5) | st.floats(0, 10**6)
    | st.sampled_from(["0.0125", "1,000", 19.99, 1000, 10**12, 1e-7, 0.005]),
    "Charge Type": st.sampled_from([None, "Recurring", "One-Time"]),
    "Usage ID": st.sampled_from(["USG-1", "USG-2 "]),
    "Date": near(date(2026, 2, 1), date(2026, 4, 30)),
    "Mandate Date": one_in(3, near(date(2024, 1, 1), date(2026, 6, 30)), st.none()),
    "Account Code": st.sampled_from([None, 4000, "4000", "REV-1"]),
}
SETTINGS = {
    "Company Name": text, "Company Address": text, "Invoice Prefix": st.sampled_from(["INV-", "F", "", "A_1-"]),
    "Default Currency": st.sampled_from(["USD", "EUR", "JPY", "KWD"]),
    "Locale": st.sampled_from(["en_US"] * 4 + ["de_DE", "fr_FR", "ja_JP", "en-GB"]),
    "Review Change Threshold": st.sampled_from([None, "25%", 0.5]),
}
ROW_IDS = {"Customer ID": "CUST-{}", "Contract ID": "CTR-{}", "Subscription ID": "SUB-{}", "Usage ID": "USG-{}"}


def cell(sheet: str, column: str, row: int, dirty: bool | str) -> st.SearchStrategy:
    """A plausible value; junk when dirty is this column, or with a chance of one in four when it is True."""
    valid = VALID.get(column, text | st.none())
    if column in ROW_IDS:
        # Row n is mostly CUST-n / CTR-n and refers to row n of the other sheets; now and then an ID
        # comes from the pool instead: a duplicate, a near miss or an unknown one.
        valid = one_in(15, VALID[column], st.just(ROW_IDS[column].format(row)))
    if sheet == "Subscriptions" and column in ("Start Date", "End Date"):
        valid = one_in(4, near(date(2026, 2, 1), date(2026, 6, 30)), st.none())
    bad = junk_start if (sheet, column) == ("Contracts", "Start Date") else junk
    if dirty is True:
        return one_in(4, bad, valid)
    return bad if dirty == column else valid


@st.composite
def workbooks(draw) -> dict[str, tuple[list, list[list]]]:
    """{sheet title: (header, rows)}"""
    book = {}
    size = draw(st.sampled_from([1, 2, 2, 3]))  # rows per sheet: mostly the same on every sheet
    for sheet, columns in HEADERS.items():
        if sheet in ("Usage", "Products", "Settings") and draw(one_in(10, st.just(True), st.just(False))):
            continue  # an optional sheet left out
        header = list(columns)
        if draw(one_in(25, st.just(True), st.just(False))):  # now and then a header is mistyped or odd
            i = draw(st.integers(0, len(header) - 1))
            header[i] = draw(st.sampled_from([header[i].upper(), f"  {header[i]} ", "Qty", None]))
        if sheet == "Settings":
            keys = draw(st.lists(st.sampled_from(list(SETTINGS)), unique=True, max_size=len(SETTINGS)))
            rows = [[key, draw(one_in(16, junk, SETTINGS[key]))] for key in keys]
        else:
            rows = []
            for n in range(1, draw(one_in(8, st.integers(0, 3), st.just(size))) + 1):
                # most rows clean; some with one odd cell, which reaches deepest; some a quarter junk
                dirty = draw(st.sampled_from([False] * 10 + [True] + ["one"] * 3))
                if dirty == "one":
                    dirty = draw(st.sampled_from(columns))
                rows.append([draw(cell(sheet, column, n, dirty)) for column in columns])
        title = draw(st.sampled_from([sheet, sheet, sheet, sheet.lower(), f"{sheet} "]))
        book[title] = (header, rows)
    return book


def save(book: dict, path: Path) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, (header, rows) in book.items():
        ws = wb.create_sheet(title)
        ws.append(header)
        for row in rows:
            ws.append(row)
        for cells in ws.iter_rows(min_row=2):
            for c in cells:
                if isinstance(c.value, (date, datetime)):
                    c.number_format = "yyyy-mm-dd"
    wb.save(path)
    return path


def check_ledger(out: Path) -> int:
    """Every invoice adds up; returns how many there are."""
    with sqlite3.connect(out / "ledger.sqlite") as db:
        invoices = db.execute("SELECT number, subtotal, discount, tax, total FROM invoices").fetchall()
        lines = {}
        for number, amount in db.execute("SELECT number, amount FROM invoice_lines"):
            lines.setdefault(number, []).append(Decimal(amount))
    for number, subtotal, discount, tax, total in invoices:
        subtotal, discount, tax, total = map(Decimal, (subtotal, discount, tax, total))
        assert subtotal == sum(lines.get(number, []), Decimal(0)), number
        assert total == subtotal - discount + tax, number
        assert re.fullmatch(r"[A-Za-z0-9_-]*\d{6}", number)
        assert (out / "invoices" / f"{number}.pdf").stat().st_size > 0
    return len(invoices)


def table(sheet: str, *rows: dict) -> tuple[list, list[list]]:
    return HEADERS[sheet], [[row.get(h) for h in HEADERS[sheet]] for row in rows]


# Always tried first: money at its edges, so that every run checks invoices that must add up.
EDGES = {
    "Customers": table("Customers", {"Customer ID": "CUST-1", "Name": "<b>=Acme</b>", "Tax Rate": "7.5%"},
                       {"Customer ID": "CUST-2", "Name": "Beta", "Tax Rate": 0.19}),
    "Contracts": table(
        "Contracts",
        {"Contract ID": "CTR-1", "Customer ID": "CUST-1 ", "Start Date": date(2025, 12, 15),
         "End Date": date(2026, 2, 10), "Billing Frequency": "monthly", "Currency": "BHD", "Discount": 0.3333},
        {"Contract ID": "CTR-2", "Customer ID": "CUST-2", "Start Date": "2025-12-01", "Billing Frequency": "Quarterly",
         "Billing Policy": "Advance", "Currency": "JPY", "Discount": "10%"}),
    "Subscriptions": table(
        "Subscriptions",
        {"Subscription ID": "SUB-1", "Contract ID": "CTR-1", "Product": "Seats", "Quantity": "1,200.50",
         "Unit Price": 0.0125},
        {"Subscription ID": "SUB-2", "Contract ID": "CTR-2", "Product": "Setup", "Quantity": 3, "Unit Price": 333.33,
         "Start Date": date(2026, 1, 10), "Charge Type": "One-Time"},
        {"Subscription ID": "SUB-3", "Contract ID": "CTR-2", "Product": "Big", "Quantity": 10**12, "Unit Price": 1000}),
    "Usage": table("Usage", {"Usage ID": "USG-1", "Contract ID": "CTR-1", "Date": date(2026, 1, 31),
                             "Product": "Calls", "Quantity": 1e-9, "Unit Price": 0.005}),
    "Settings": (["Key", "Value"], [["Invoice Prefix", "F"], ["Locale", "en-GB"]]),
}


@settings(max_examples=EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
@given(workbooks())
@example(EDGES)
def test_any_workbook_is_billed_or_refused_calmly(book):
    with tempfile.TemporaryDirectory() as tmp:
        path, out = save(book, Path(tmp) / "billing.xlsx"), Path(tmp) / "out"
        stdout = io.StringIO()
        terminal.console = Console(file=stdout, highlight=False, width=200)
        try:
            code = cli.main(["run", "--input", str(path), "--output", str(out), "--as-of", AS_OF.isoformat(),
                             "--jobs", "1"])
        finally:
            terminal.console = CONSOLE
        log = out / "billing-batch-error.log"
        assert code != 4, log.read_text() if log.exists() else stdout.getvalue()
        assert code in (0, 1, 2), stdout.getvalue()
        assert "Traceback" not in stdout.getvalue()
        event(f"exit {code}")
        if code == 2:
            assert not out.exists() or not any(out.iterdir()), "a refused input must leave nothing written"
        else:
            count = check_ledger(out)
            event(f"invoices: {min(count, 5)}{'+' * (count >= 5)}")


CONSOLE = terminal.console
