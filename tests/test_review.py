"""The run review: flags on crafted invoices, the page as written, and the Review sheet."""
from __future__ import annotations

import hashlib
import html.parser
import json
import re
import time
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path
from urllib.parse import unquote

import openpyxl
import pytest
from dateutil.relativedelta import relativedelta
from markupsafe import escape

from billing_batch.review import page as review
from billing_batch.review import chart as review_chart
from billing_batch.review import flags as review_flags
from billing_batch.review import runs as review_runs
from billing_batch.review import schedule_book
from billing_batch.errors import problem
from billing_batch.model import (
    Contract,
    Customer,
    Draft,
    Frequency,
    Inputs,
    Invoice,
    InvoiceStatus,
    Line,
    LineKind,
    Party,
    Policy,
    RunType,
    Settings,
    Source,
)

AS_OF = date(2026, 11, 2)
THRESHOLD = D("0.25")
SRC = Source("billing.xlsx", "Contracts", 2)

# ---------------------------------------------------------------- crafted values


def contract(cid="CTR-1", policy=Policy.ARREARS, start=date(2026, 1, 1), frequency=Frequency.MONTHLY,
             currency="USD") -> Contract:
    return Contract(cid, "CUST-1", start, None, frequency, policy, 0, currency, 30, D(0), True, SRC)


def inputs(*contracts: Contract, locale: str = "en_US") -> Inputs:
    customer = Customer("CUST-1", "Customer One", "one@example.com", "1 Main St", "Springfield", "1", "US", D(0), SRC)
    return Inputs(Settings(company_name="Acme Billing Ltd", locale=locale), {"CUST-1": customer},
                  {c.contract_id: c for c in contracts or (contract(),)})


def recurring(start=date(2026, 10, 1), end=date(2026, 10, 31), amount="100", prorated=False, product="Platform") -> Line:
    return Line(LineKind.RECURRING, product, "Seats", start, end, D(1), D(amount), D(amount), prorated, "SUB-1")


def used(day: date, quantity, product="API calls", uid=None, price="1") -> Line:
    uid = uid or f"U-{product}-{day.isoformat()}-{quantity}"
    return Line(LineKind.USAGE, product, "metered", day, day, D(quantity), D(price), D(quantity) * D(price), False,
                None, uid)


def invoice(number: int | str, cycle_start=date(2026, 10, 1), total="100", lines=None, contract_id="CTR-1",
            email="one@example.com", invoice_date=AS_OF, currency="USD", status=InvoiceStatus.ISSUED,
            replaced_by=None, customer="Customer One", locale="en_US") -> Invoice:
    number = number if isinstance(number, str) else f"INV-{number:06d}"
    cycle_end = cycle_start + relativedelta(months=1) - relativedelta(days=1)
    lines = (recurring(cycle_start, cycle_end, total),) if lines is None else tuple(lines)
    draft = Draft(contract_id, "CUST-1", customer, cycle_start, cycle_end, cycle_end, currency, lines,
                  D(total), D(0), D(0), D(total))
    return Invoice(number, draft, invoice_date, invoice_date + relativedelta(days=30), RunType.AUTOMATIC,
                   Party("Acme Billing Ltd"), Party(customer, ("1 Main St",), email), locale, status, replaced_by)


def flags_of(issued, history=(), differs=None, threshold=THRESHOLD, the_inputs=None) -> dict[str, str]:
    """The flags of the last issued invoice: name -> note."""
    rows = review_flags.review_rows(list(issued), list(history), the_inputs or inputs(), differs or {}, threshold)
    return {f.name: f.note for f in rows[-1].flags}


# ---------------------------------------------------------------- flags


@pytest.mark.parametrize("total, flagged", [
    ("125.00", False), ("125.01", True), ("75.00", False), ("74.99", True), ("100.00", False), ("300", True),
])
def test_a_total_that_moves_more_than_the_threshold_is_flagged(total, flagged):
    previous = invoice(1, date(2026, 9, 1), "100.00", invoice_date=date(2026, 10, 2))
    flags = flags_of([invoice(2, total=total)], [previous])
    assert ("changed" in flags) is flagged
    assert "first" not in flags


def test_the_change_note_names_the_previous_invoice_and_never_rounds_to_the_threshold():
    previous = invoice(1, date(2026, 9, 1), "892.86", invoice_date=date(2026, 10, 2))
    assert flags_of([invoice(2, total="1250.00")], [previous])["changed"] == (
        "Total $1,250.00 is 40% above the previous invoice INV-000001 ($892.86).")
    previous = invoice(1, date(2026, 9, 1), "100.00", invoice_date=date(2026, 10, 2))
    assert "is 25.01% above" in flags_of([invoice(2, total="125.01")], [previous])["changed"]
    assert "is 50% below" in flags_of([invoice(2, total="50")], [previous])["changed"]
    previous = invoice(1, date(2026, 9, 1), "1000.00", invoice_date=date(2026, 10, 2))
    assert "is 25.001% above" in flags_of([invoice(2, total="1250.01")], [previous])["changed"]


def test_the_threshold_comes_from_the_caller():
    previous = invoice(1, date(2026, 9, 1), "100", invoice_date=date(2026, 10, 2))
    assert "changed" in flags_of([invoice(2, total="111")], [previous], threshold=D("0.10"))
    assert "changed" not in flags_of([invoice(2, total="111")], [previous], threshold=D("0.25"))


def test_the_previous_invoice_is_the_contracts_latest_earlier_live_one():
    history = [
        invoice(1, date(2026, 8, 1), "100", invoice_date=date(2026, 9, 2)),
        invoice(2, date(2026, 9, 1), "500", invoice_date=date(2026, 10, 2), status=InvoiceStatus.REPLACED,
                replaced_by="INV-000003"),
        invoice(3, date(2026, 9, 1), "100", invoice_date=date(2026, 10, 5)),  # replaced INV-000002
        invoice(4, date(2026, 9, 1), "900", contract_id="CTR-2", invoice_date=date(2026, 10, 2)),
    ]
    assert flags_of([invoice(5, total="110")], history) == {}
    assert "INV-000003 ($100.00)" in flags_of([invoice(5, total="200")], history)["changed"]


def test_a_change_of_currency_or_from_zero_is_a_change():
    assert flags_of([invoice(2, currency="EUR")],
                    [invoice(1, date(2026, 9, 1), currency="USD", invoice_date=date(2026, 10, 2))])["changed"] == (
        "Currency changed: €100.00 against $100.00 on the previous invoice INV-000001.")
    zero = invoice(1, date(2026, 9, 1), "0", lines=[], invoice_date=date(2026, 10, 2))
    assert flags_of([invoice(2, total="10")], [zero])["changed"] == (
        "Total $10.00 against $0.00 on the previous invoice INV-000001.")
    assert "changed" not in flags_of([invoice(2, total="0", lines=[])], [zero])


def test_first_invoice_of_a_contract():
    assert flags_of([invoice(1)]) == {"first": "First invoice of contract CTR-1."}
    # a catch-up run bills two cycles: only the earlier is the first
    rows = review_flags.review_rows([invoice(1, date(2026, 9, 1)), invoice(2)], [], inputs(), {}, THRESHOLD)
    assert [r.has("first") for r in rows] == [True, False]
    # another contract's invoices do not count
    assert "first" in flags_of([invoice(2)], [invoice(1, date(2026, 9, 1), contract_id="CTR-2")])
    # an older cycle billed by hand after later ones is not the contract's first invoice
    assert "first" not in flags_of([invoice(2, date(2026, 8, 1))], [invoice(1, date(2026, 9, 1))])


@pytest.mark.parametrize("total, flagged", [("0", True), ("-5", True), ("0.01", False)])
def test_zero_or_negative_total(total, flagged):
    lines = [] if total == "0" else None
    flags = flags_of([invoice(2, total=total, lines=lines)], [invoice(1, date(2026, 9, 1), total, lines=lines)])
    assert ("zero_or_negative" in flags) is flagged
    if total == "-5":
        assert flags["zero_or_negative"] == "Total is -$5.00 (a credit)."


def test_prorated_lines():
    history = [invoice(1, date(2026, 9, 1))]
    assert "prorated" not in flags_of([invoice(2)], history)
    flags = flags_of([invoice(2, lines=[recurring(date(2026, 10, 16), date(2026, 10, 31), "100", prorated=True)])],
                     history)
    assert flags["prorated"] == "Prorated: Platform 2026-10-16 – 2026-10-31."


def test_late_usage_for_arrears_is_usage_before_the_cycle_start():
    history = [invoice(1, date(2026, 9, 1))]
    on_time = invoice(2, lines=[recurring(), used(date(2026, 10, 1), 5)], total="105")
    late = invoice(2, lines=[recurring(), used(date(2026, 9, 30), 5)], total="105")
    assert "late_usage" not in flags_of([on_time], history)
    assert flags_of([late], history)["late_usage"] == (
        "1 usage line dated 2026-09-30, before 2026-10-01 where this invoice's usage period starts.")


def test_late_usage_for_advance_is_usage_before_the_previous_cycle_start():
    advance = inputs(contract(policy=Policy.ADVANCE, start=date(2026, 1, 31)))
    history = [invoice(1, date(2026, 2, 28))]
    # cycles anchored on Jan 31: ..., Feb 28, Mar 31; the Mar 31 invoice takes usage from Feb 28 on
    on_time = invoice(2, date(2026, 3, 31), lines=[recurring(), used(date(2026, 2, 28), 5)], total="105")
    late = invoice(2, date(2026, 3, 31), lines=[recurring(), used(date(2026, 2, 27), 5), used(date(2026, 1, 31), 1)],
                   total="106")
    assert "late_usage" not in flags_of([on_time], history, the_inputs=advance)
    assert flags_of([late], history, the_inputs=advance)["late_usage"] == (
        "2 usage lines dated 2026-01-31 – 2026-02-27, before 2026-02-28 where this invoice's usage period starts.")


def _usage_history():
    # API calls 10, 12, 8 on earlier invoices: median 10; Storage at 1000 must not count
    return [
        invoice(1, date(2026, 7, 1), lines=[used(date(2026, 7, 10), 10), used(date(2026, 7, 11), 1000, "Storage")]),
        invoice(2, date(2026, 8, 1), lines=[used(date(2026, 8, 10), 12)]),
        invoice(3, date(2026, 9, 1), lines=[used(date(2026, 9, 10), 8)]),
    ]


@pytest.mark.parametrize("quantity, flagged", [("30", False), ("30.01", True), ("5", False)])
def test_usage_more_than_three_times_the_median_of_earlier_usage_is_a_spike(quantity, flagged):
    flags = flags_of([invoice(4, lines=[used(date(2026, 10, 10), quantity)])], _usage_history())
    assert ("usage_spike" in flags) is flagged
    if flagged:
        assert flags["usage_spike"] == "API calls: 30.01 on 2026-10-10 is 3.001× the usual 10 (median of 3 earlier lines)."


def test_a_spike_needs_earlier_usage_of_that_product():
    assert "usage_spike" not in flags_of([invoice(4, lines=[used(date(2026, 10, 10), 99, "Exports")])],
                                         _usage_history())
    # usage on the same day is not "earlier"; the rows on this invoice dated before do count
    same_day = invoice(4, lines=[used(date(2026, 10, 10), 1, uid="a"), used(date(2026, 10, 10), 50, uid="b")])
    assert "usage_spike" not in flags_of([same_day])
    later = invoice(4, lines=[used(date(2026, 10, 10), 1, uid="a"), used(date(2026, 10, 11), 50, uid="b")])
    assert "50 on 2026-10-11 is 50.0× the usual 1" in flags_of([later])["usage_spike"]


def test_usage_carried_over_to_a_replacement_counts_once():
    history = _usage_history() + [invoice(9, date(2026, 9, 1), lines=[used(date(2026, 9, 10), 8)])]
    history[2] = invoice(3, date(2026, 9, 1), lines=[used(date(2026, 9, 10), 8)], status=InvoiceStatus.REPLACED,
                         replaced_by="INV-000009")
    assert "median of 3 earlier lines" in flags_of([invoice(10, lines=[used(date(2026, 10, 10), 31)])],
                                                   history)["usage_spike"]


@pytest.mark.parametrize("email, flagged", [("", True), ("   ", True), ("ap@example.com", False)])
def test_missing_customer_email(email, flagged):
    flags = flags_of([invoice(2, email=email)], [invoice(1, date(2026, 9, 1))])
    assert ("no_email" in flags) is flagged
    if flagged:
        assert flags["no_email"] == "Customer CUST-1 has no email address."


def test_differs_comes_from_the_lifecycle_check_with_its_amounts_in_the_reviews_locale():
    message = "INV-000002 differs from what the current data would bill (total 100.00 USD, now 120.50 USD)."
    assert flags_of([invoice(2)], [invoice(1, date(2026, 9, 1))], differs={"INV-000002": message}) == {
        "differs": "INV-000002 differs from what the current data would bill (total $100.00, now $120.50)."}
    assert flags_of([invoice(2)], [invoice(1, date(2026, 9, 1))], differs={"INV-000001": message}) == {}
    german = flags_of([invoice(2)], [invoice(1, date(2026, 9, 1))], differs={"INV-000002": message},
                      the_inputs=inputs(locale="de_DE"))
    assert "(total 100,00\xa0$, now 120,50\xa0$)" in german["differs"]


def test_a_reissue_names_the_invoice_it_replaces():
    history = [invoice(1, date(2026, 9, 1), "100", invoice_date=date(2026, 10, 2)),
               invoice(2, date(2026, 10, 1), "100", invoice_date=date(2026, 10, 20))]
    # history read before the reissue: the old invoice still shows as Issued
    flags = flags_of([invoice(3, total="110")], history)
    assert flags == {"replaces": "Replaces INV-000002 (total $100.00, invoice date 2026-10-20)."}


def test_history_may_include_the_issued_invoices():
    issued = [invoice(2, total="200")]
    history = [invoice(1, date(2026, 9, 1))]
    assert flags_of(issued, history) == flags_of(issued, history + issued)
    assert set(flags_of(issued, history)) == {"changed"}


def test_rows_carry_the_invoice_and_flags_in_a_stable_order():
    late_and_zero = invoice(1, total="0", email="", lines=[used(date(2026, 9, 1), 0)])
    (row,) = review_flags.review_rows([late_and_zero], [], inputs(), {"INV-000001": "differs"}, THRESHOLD)
    assert (row.number, row.pdf_name, row.contract_id, row.customer, row.total, row.currency) == (
        "INV-000001", "invoices/INV-000001.pdf", "CTR-1", "Customer One", D(0), "USD")
    assert [f.name for f in row.flags] == ["differs", "zero_or_negative", "late_usage", "no_email", "first"]
    assert [f.name for f in row.flags] == [k.name for k in review_flags.FLAG_KINDS if row.has(k.name)]
    assert row.notes.count("\n") == 4


# ---------------------------------------------------------------- run IDs and paths


def test_run_ids_sort_by_time_and_are_safe_folder_names(tmp_path: Path):
    first = review_runs.new_run_id(datetime(2026, 11, 2, 8, 15, 1), "run")
    assert first == "2026-11-02T081501-run"
    assert review_runs.new_run_id(datetime(2026, 11, 2, 8, 15, 1), "Generate") == "2026-11-02T081501-generate"
    assert sorted([review_runs.new_run_id(datetime(2026, 12, 1, 0, 0), "run"), first]) == [first, "2026-12-01T000000-run"]
    (tmp_path / "runs" / first).mkdir(parents=True)
    assert review_runs.new_run_id(datetime(2026, 11, 2, 8, 15, 1), "run", tmp_path) == "2026-11-02T081501-run-2"
    assert review_runs.review_path(tmp_path, first) == tmp_path / "runs" / first / "review.html"
    for bad in ("../../etc", "2026-11-02T081501-run/../x", "", "latest"):
        with pytest.raises(ValueError):
            review_runs.review_path(tmp_path, bad)


# ---------------------------------------------------------------- the page


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs, self.srcs = [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "href" and tag == "a":
                self.hrefs.append(value)
            if name in ("src", "srcset", "data"):
                self.srcs.append(value)


def _facts(run_id="2026-11-02T081501-run", files=()) -> review_runs.RunFacts:
    return review_runs.RunFacts(run_id, "run", AS_OF, tuple(files), datetime(2026, 11, 2, 8, 15, 1), 12.5, 3)


def _write(tmp_path: Path, issued, history=(), set_aside=None, problems=(), differs=None, the_inputs=None,
           files=()) -> Path:
    the_inputs = the_inputs or inputs()
    rows = review_flags.review_rows(issued, history, the_inputs, differs or {}, THRESHOLD)
    return review.write_review(tmp_path, _facts(files=files), rows, issued, history, set_aside or {}, list(problems),
                               inputs=the_inputs, differs=differs)


def test_the_page_lists_every_invoice_and_links_each_pdf_relatively(tmp_path: Path):
    history = [invoice(n, date(2026, 9, 1), contract_id=f"CTR-{n}", invoice_date=date(2026, 10, 2)) for n in range(1, 4)]
    issued = [invoice(n + 3, contract_id=f"CTR-{n}", total=str(100 * n)) for n in range(1, 4)]
    for inv in history + issued:
        (tmp_path / inv.pdf_name).parent.mkdir(exist_ok=True)
        (tmp_path / inv.pdf_name).write_bytes(b"%PDF-1.7")
    book = tmp_path / "billing.xlsx"
    book.write_bytes(b"workbook bytes")
    page = _write(tmp_path, issued, history, files=[book])
    assert page == tmp_path / "runs" / "2026-11-02T081501-run" / "review.html"
    text = page.read_text(encoding="utf-8")
    for inv in issued:
        assert inv.number in text
    assert text.count("<tr data-k=") == len(issued)
    links = Links()
    links.feed(text)
    pdfs = [h for h in links.hrefs if h.endswith(".pdf")]
    assert pdfs == [f"../../invoices/{inv.number}.pdf" for inv in issued]
    assert all((page.parent / unquote(h)).resolve().is_file() for h in pdfs)
    # the run's facts
    assert hashlib.sha256(b"workbook bytes").hexdigest() in text
    assert "Run as of 2026-11-02" in text and "12.5 s" in text
    assert "$600.00" in text  # 100 + 200 + 300 USD in this run


def test_the_page_is_self_contained(tmp_path: Path):
    history = [invoice(1, date(2026, 9, 1), invoice_date=date(2026, 10, 2)),
               invoice(2, date(2026, 9, 1), contract_id="CTR-2", currency="EUR", invoice_date=date(2026, 10, 2))]
    issued = [invoice(3, total="300"), invoice(4, contract_id="CTR-2", currency="EUR")]
    text = _write(tmp_path, issued, history).read_text(encoding="utf-8")
    assert not re.search(r"https?:", text, re.IGNORECASE)  # no resource, not even a namespace URL
    links = Links()
    links.feed(text)
    assert links.srcs == []
    assert all(h.startswith(("#", "../../")) for h in links.hrefs)
    assert "<link" not in text and "@import" not in text and "url(" not in re.sub(r"url\(#[\w-]+\)", "", text)
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert text.count("<svg") == 2  # one chart per currency, inline
    assert "<script src" not in text


def test_text_from_the_workbook_is_escaped(tmp_path: Path):
    evil = '<script>alert("x")</script> & Co'
    issued = [invoice(1, customer=evil)]
    set_aside = {"CTR-9": [problem("BB104", SRC.at("Quantity", "E"), f"Quantity is {evil}", value=evil,
                                   contract_id="CTR-9")]}
    text = _write(tmp_path, issued, set_aside=set_aside, problems=set_aside["CTR-9"]).read_text(encoding="utf-8")
    assert evil not in text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in text


def test_notes_are_escaped_too(tmp_path: Path):
    evil = "<img src=x onerror=alert(1)>"
    issued = [invoice(1, lines=[recurring(date(2026, 10, 5), date(2026, 10, 31), prorated=True, product=evil)])]
    text = _write(tmp_path, issued).read_text(encoding="utf-8")
    assert evil not in text and "&lt;img src=x onerror=alert(1)&gt;" in text
    assert '<span class="nw">2026-10-05</span>' in text  # dates and numbers in notes do not break across lines


def test_set_aside_contracts_and_their_problems_are_listed(tmp_path: Path):
    bad = problem("BB109", SRC.at("Quantity", "E"), "Quantity is negative.", value="-3", contract_id="CTR-2",
                  instead="give a reduction with the Discount column")
    other = problem("BB101", Source("billing.xlsx", "Usage", 7), "Customer CUST-9 is not in the Customers sheet.",
                    value="CUST-9")
    the_inputs = inputs(contract("CTR-1"), contract("CTR-2"))
    text = _write(tmp_path, [invoice(1)], set_aside={"CTR-2": [bad]}, problems=[bad, other],
                  the_inputs=the_inputs).read_text(encoding="utf-8")
    assert "CTR-2" in text and "Customer One (CUST-1)" in text
    assert escape(bad.one_line()) in text and escape(str(bad.source)) in text
    assert "Other problems in the input" in text and escape(other.one_line()) in text
    summary = json.loads((tmp_path / "runs" / "2026-11-02T081501-run" / "run.json").read_text())
    assert (summary["invoices"], summary["set_aside"], summary["errors"], summary["nothing_to_bill"]) == (1, 1, 2, 3)


def test_earlier_invoices_that_differ_are_listed_too(tmp_path: Path):
    old = invoice(1, date(2026, 9, 1), invoice_date=date(2026, 10, 2))
    text = _write(tmp_path, [invoice(2)], [old], differs={"INV-000001": "INV-000001 differs (now 120 USD)."}).read_text()
    assert "Earlier invoices that differ" in text and "INV-000001 differs (now $120.00)." in text


def test_an_empty_run_still_writes_a_page(tmp_path: Path):
    text = _write(tmp_path, [], [invoice(1, date(2026, 9, 1), invoice_date=date(2026, 10, 2))]).read_text()
    assert "No invoice was issued in this run." in text
    assert text.count("<svg") == 1  # last month's invoice is still charted


def test_monthly_totals_split_this_run_and_leave_out_replaced_invoices():
    history = [
        invoice(1, date(2026, 9, 1), "100", invoice_date=date(2026, 10, 2)),
        invoice(2, date(2026, 10, 1), "40", invoice_date=date(2026, 11, 1), status=InvoiceStatus.REPLACED),
        invoice(3, date(2026, 10, 1), "50", invoice_date=date(2026, 11, 1)),  # this month, an earlier run
        invoice(4, date(2025, 10, 1), "999", invoice_date=date(2025, 11, 2)),  # 13 months back: out of range
        invoice(5, date(2026, 10, 1), "70", contract_id="CTR-2", currency="EUR", invoice_date=date(2026, 11, 1)),
    ]
    issued = [invoice(6, date(2026, 10, 1), "30", contract_id="CTR-3")]
    series = review_chart.monthly_totals(history, issued, AS_OF)
    assert list(series) == ["EUR", "USD"]
    usd = series["USD"]
    assert len(usd) == 12 and usd[0][0] == date(2025, 12, 1) and usd[-1][0] == date(2026, 11, 1)
    assert usd[-2][1:] == (D(100), D(0))
    assert usd[-1][1:] == (D(50), D(30))
    assert sum(e + t for _, e, t in usd) == D(180)


def test_past_runs_can_be_found_again(tmp_path: Path):
    with pytest.raises(LookupError, match="No run"):
        review_runs.find_review(tmp_path, None)
    page = _write(tmp_path, [invoice(1)])
    assert review_runs.find_review(tmp_path, None) == page
    assert review_runs.find_review(tmp_path, "2026-11-02T081501-run") == page
    with pytest.raises(LookupError, match="Runs there: 2026-11-02T081501-run"):
        review_runs.find_review(tmp_path, "2026-11-03T000000-run")
    with pytest.raises(LookupError, match="not a run ID"):
        review_runs.find_review(tmp_path, "../..")
    (run,) = review_runs.past_runs(tmp_path)
    assert run.summary["as_of"] == "2026-11-02" and run.summary["totals"] == {"USD": "100"}


# ---------------------------------------------------------------- the Review sheet


def test_the_review_sheet_has_a_column_per_flag_and_the_notes(tmp_path: Path):
    history = [invoice(1, date(2026, 9, 1), "100", invoice_date=date(2026, 10, 2))]
    issued = [invoice(2, total="200", email=""), invoice(3, contract_id="CTR-2", currency="EUR", total="0", lines=[])]
    rows = review_flags.review_rows(issued, history, inputs(), {}, THRESHOLD)
    path = schedule_book.write(tmp_path, [], history + issued, review_rows=rows)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Billing Schedules", "Invoices", "Invoice Lines", "Review"]
    ws = wb["Review"]
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref
    table = [dict(zip([c.value for c in ws[1]], [c.value for c in r])) for r in ws.iter_rows(min_row=2)]
    header = [c.value for c in ws[1]]
    assert header[:10] == ["Invoice Number", "Customer ID", "Customer", "Contract ID", "Cycle Start", "Cycle End",
                           "Due Date", "Currency", "Total", "Flags"]
    assert header[10:] == [k.label for k in review_flags.FLAG_KINDS] + ["Notes"]
    first, second = table
    assert first["Invoice Number"] == '=HYPERLINK("invoices/INV-000002.pdf","INV-000002")'
    assert (first["Total"], first["Flags"], first["Changed"], first["No email"], first["First invoice"]) == (
        200, 2, "Yes", "Yes", None)
    assert first["Notes"] == rows[0].notes and "100% above" in first["Notes"]
    assert (second["Currency"], second["Zero or negative"], second["First invoice"], second["Flags"]) == (
        "EUR", "Yes", "Yes", 2)
    assert isinstance(first["Cycle Start"], datetime)


def test_without_review_rows_the_book_is_as_before(tmp_path: Path):
    path = schedule_book.write(tmp_path, [], [invoice(1)])
    assert openpyxl.load_workbook(path).sheetnames == ["Billing Schedules", "Invoices", "Invoice Lines"]
    empty = schedule_book.write(tmp_path, [], [invoice(1)], review_rows=[])
    assert openpyxl.load_workbook(empty)["Review"].max_row == 1


# ---------------------------------------------------------------- 10,000 invoices


CURRENCIES = ("USD", "EUR", "GBP", "JPY")


def many(n: int) -> tuple[list[Invoice], list[Invoice], Inputs]:
    """n issued invoices, one per contract, each with two earlier ones; about one in ten is flagged."""
    contracts, history, issued = [], [], []
    seq = 0
    for k in range(n):
        cid = f"CTR-{k:05d}"
        currency = CURRENCIES[k % len(CURRENCIES)]
        policy = Policy.ADVANCE if k % 2 else Policy.ARREARS
        contracts.append(contract(cid, policy=policy, start=date(2026, 1, 1), currency=currency))
        base = D(100 + k % 900)
        for months_back in (2, 1):
            seq += 1
            start = date(2026, 10, 1) - relativedelta(months=months_back)
            history.append(invoice(seq, start, str(base), contract_id=cid, currency=currency,
                                   lines=[recurring(start, start + relativedelta(months=1, days=-1), str(base)),
                                          used(start + relativedelta(days=9), 10 + k % 7, uid=f"U{seq}")],
                                   invoice_date=start + relativedelta(months=1, days=1), customer=f"Customer {k % 997}"))
    for k in range(n):
        seq += 1
        cid = contracts[k].contract_id
        total = D(100 + k % 900) * (D(2) if k % 10 == 0 else 1)
        quantity = 100 if k % 25 == 0 else 10 + k % 7
        issued.append(invoice(seq, date(2026, 10, 1), str(total), contract_id=cid, currency=contracts[k].currency,
                              lines=[recurring(amount=str(total), prorated=k % 40 == 0),
                                     used(date(2026, 10, 15), quantity, uid=f"U{seq}")],
                              email="" if k % 97 == 0 else "ap@example.com", customer=f"Customer {k % 997}"))
    the_inputs = Inputs(Settings(company_name="Acme Billing Ltd"), {}, {c.contract_id: c for c in contracts})
    return issued, history, the_inputs


def build_big_page(out: Path, n: int = 10_000) -> tuple[Path, list[review_flags.ReviewRow], float]:
    issued, history, the_inputs = many(n)
    started = time.perf_counter()
    rows = review_flags.review_rows(issued, history, the_inputs, {}, THRESHOLD)
    page = review.write_review(out, _facts(), rows, issued, history, {}, [], inputs=the_inputs)
    return page, rows, time.perf_counter() - started


def test_a_10000_invoice_page_holds_every_invoice(tmp_path: Path):
    # How fast it builds is measured by benchmarks/review_page.py.
    page, rows, _ = build_big_page(tmp_path)
    assert len(rows) == 10_000 and sum(1 for r in rows if r.has("changed")) == 1000
    assert page.read_text(encoding="utf-8").count("<tr data-k=") == 10_000
