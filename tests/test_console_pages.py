"""The console's Home, This month, Review, Schedules and Ledger check pages through Starlette's test client: the
inbox and `check`'s problems with their cells, an upload that replaces the workbook and keeps the previous one,
the month's preview and Approve (refused when the inbox changed since the preview, or while a job runs), the run
as a job to the end, and the pages that read what it made."""
from __future__ import annotations

import re
import sqlite3
import threading
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from console_fixtures import console, post, wait_for  # noqa: F401
from workbooks import settings, simple_book

from billing_batch.console.pages.month import fingerprint
from billing_batch.ledger.store import Ledger

SMALL_AS_OF = "2026-02-05"  # simple_book's two monthly contracts from 2026-01-01: January is due, one invoice each


def state(client):
    return client.app.state.console


def small_inbox(client, **setting) -> Path:
    """The inbox holding simple_book alone (two contracts, one invoice each in January): runs in seconds."""
    inbox = state(client).inbox
    for path in inbox.iterdir():
        path.unlink()
    return simple_book(inbox / "billing.xlsx", Settings=settings(**setting))


def shown_fingerprint(page: str) -> str:
    return re.search(r'name="fingerprint" value="([0-9a-f]+)"', page).group(1)


def approve(client, as_of: str = SMALL_AS_OF, **fields):
    page = client.get(f"/month?as_of={as_of}")
    assert page.status_code == 200
    return post(client, "/month/approve", {"as_of": as_of, "fingerprint": shown_fingerprint(page.text), **fields})


def ledger_numbers(client) -> list[str]:
    with Ledger(state(client).output / "ledger.sqlite", read_only=True) as ledger:
        return [i.number for i in ledger.invoices()]


def test_every_page_renders_before_anything_is_billed(console):
    for url, words in (("/", "No problems"), ("/month", "Totals per currency"), ("/schedules", "CTR-1001/"),
                       ("/ledger", "There is no ledger"), ("/review", "run the month first")):
        response = console.get(url)
        assert response.status_code == 200, url
        assert words in response.text, url
        assert "Traceback" not in response.text
    home = console.get("/").text
    assert "billing.xlsx" in home and "partner_center_usage_2026-10.csv" in home
    assert 'action="/upload"' in home and 'enctype="multipart/form-data"' in home


def test_a_problem_in_the_workbook_shows_with_its_cell_and_catalogue_entry(console):
    book = state(console).inbox / "billing.xlsx"
    wb = openpyxl.load_workbook(book)
    sheet = wb["Subscriptions"]
    column = next(c.column_letter for c in sheet[1] if c.value == "Quantity")
    sheet[f"{column}3"] = "forty"
    wb.save(book)
    page = console.get("/").text
    row = re.search(r'<tr class="problem">(.*?)</tr>', page, re.DOTALL).group(1)
    cells = [" ".join(re.sub(r"<[^>]+>", " ", c).split()) for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
    assert cells[0].startswith("BB104 not a number") and "docs/errors.md#bb104-not-a-number" in cells[0]
    assert cells[1:5] == ["billing.xlsx", "Subscriptions", "3", f"{column} (Quantity)"]
    assert cells[5] == "forty"
    assert "Type a plain number, such as 1200.50." in cells[7]
    assert "set aside" in page


def test_upload_replaces_the_workbook_and_keeps_the_previous(console, tmp_path):
    inbox = state(console).inbox
    before = (inbox / "billing.xlsx").read_bytes()
    new = simple_book(tmp_path / "mine.xlsx").read_bytes()
    response = post(console, "/upload", files={"file": ("billing.xlsx", new, "application/octet-stream")})
    assert response.status_code == 303
    assert (inbox / "billing.xlsx").read_bytes() == new
    kept = list((inbox / ".previous").iterdir())
    assert len(kept) == 1 and kept[0].name.startswith("billing.xlsx.") and kept[0].read_bytes() == before
    page = console.get(response.headers["location"]).text
    assert "Saved billing.xlsx" in page and kept[0].name in page
    assert kept[0].name not in re.findall(r"<td>([^<]*)</td>", page)  # the kept copy is not listed as input


def test_an_upload_that_is_not_a_workbook_is_refused_and_changes_nothing(console):
    inbox = state(console).inbox
    before = {p.name: p.read_bytes() for p in inbox.iterdir()}
    response = post(console, "/upload", files={"file": ("billing.xlsx", b"not a zip at all", "application/octet-stream")})
    assert response.status_code == 400
    assert "is not a workbook that opens" in response.text and "Nothing in the inbox was changed" in response.text
    assert {p.name: p.read_bytes() for p in inbox.iterdir()} == before


def test_the_preview_shows_lines_totals_and_amounts_as_on_the_invoice(console):
    small_inbox(console, Locale="de_DE", **{"Default Currency": "EUR"})
    page = console.get(f"/month?as_of={SMALL_AS_OF}").text
    # CTR-1: 2 x 50 EUR; CTR-2: 1000 EUR at 20% tax; written as the German invoice writes them
    assert "CTR-1" in page and "CTR-2" in page and "Platform" in page
    assert "1.300,00\xa0€" in page  # the total per currency
    assert "1.200,00\xa0€" in page and "50,00\xa0€" in page  # CTR-2's total, SUB-1's unit price


def test_the_catch_up_guard_and_its_button(console):
    small_inbox(console)
    guarded = console.get("/month?as_of=2026-07-05").text
    guard = re.search(r'<section class="panel catch-up">(.*?)</section>', guarded, re.DOTALL).group(1)
    assert "CTR-1" in guard and "CTR-2" in guard and "--allow-catch-up" in guard and "Allow the catch-up" in guard
    assert re.search(r"Invoices <span", guarded) is None  # nothing billed: both contracts are held
    allowed = console.get("/month?as_of=2026-07-05&allow_catch_up=1").text
    assert "The catch-up is allowed" in allowed
    assert '<input type="hidden" name="allow_catch_up" value="1">' in allowed
    assert allowed.count('<details class="draft">') == 12  # January to June of both contracts


def test_a_wrong_as_of_date_says_so_and_previews_as_of_today(console):
    page = console.get("/month?as_of=31/10/2026").text
    assert "is not a date" in page and date.today().isoformat() in page


def test_approve_after_the_inbox_changed_is_refused(console):
    small_inbox(console)
    page = console.get(f"/month?as_of={SMALL_AS_OF}").text
    book = state(console).inbox / "billing.xlsx"
    wb = openpyxl.load_workbook(book)
    wb["Subscriptions"]["E2"] = 3  # SUB-1's quantity 2 -> 3: what it would bill changed
    wb.save(book)
    response = post(console, "/month/approve", {"as_of": SMALL_AS_OF, "fingerprint": shown_fingerprint(page)})
    assert response.status_code == 409
    assert "What it would bill changed since you looked: review it again" in response.text
    assert state(console).jobs.last("run") is None
    assert not (state(console).output / "ledger.sqlite").exists()
    # the page shows the new preview, whose own fingerprint then approves
    assert shown_fingerprint(response.text) != shown_fingerprint(page)


def test_approve_runs_the_month_and_the_pages_read_what_it_made(console):
    small_inbox(console)
    response = approve(console)
    assert response.status_code == 303 and response.headers["location"].startswith("/month?as_of=")
    job = wait_for(state(console).jobs.last("run"))
    assert (job.outcome, job.done, job.total) == ("ok", 2, 2), job.message
    assert job.message.startswith("Made 2 invoices as of 2026-02-05")
    assert ledger_numbers(console) == ["INV-000001", "INV-000002"]
    # the page after the reload: the job, the documents made, the review linked
    page = console.get(response.headers["location"]).text
    assert "PDFs rendered 2 of 2" in page and 'id="made"' in page
    assert '<a href="/output/invoices/INV-000001.pdf">' in page and "Review the run" in page
    fragment = console.get(f"/jobs/{job.id}").text
    assert "hx-trigger" not in fragment and "Review the run" in fragment
    review = console.get("/review")
    assert review.status_code == 303 and re.fullmatch(r"/output/runs/[^/]+-run/review\.html",
                                                      review.headers["location"])
    assert "INV-000001" in console.get(review.headers["location"]).text
    assert console.get("/output/invoices/INV-000001.pdf").content.startswith(b"%PDF")
    assert "Checked 2 invoices: no problem found." in console.get("/ledger").text
    schedules = console.get(f"/schedules?as_of={SMALL_AS_OF}&contract=CTR-2").text
    assert "INV-000002" in schedules and "CTR-1/" not in schedules
    # the preview since: nothing left to bill for that date
    assert "Nothing would be billed" in console.get(f"/month?as_of={SMALL_AS_OF}").text


def test_a_second_approve_while_a_job_runs_is_busy_and_starts_nothing(console):
    small_inbox(console)
    page = console.get(f"/month?as_of={SMALL_AS_OF}").text
    release = threading.Event()
    running = state(console).jobs.start("run", lambda job: release.wait(30))
    try:
        response = post(console, "/month/approve", {"as_of": SMALL_AS_OF, "fingerprint": shown_fingerprint(page)})
        assert response.status_code == 409
        assert "is still running" in response.text and "nothing was started" in response.text
        assert state(console).jobs.last("run") is running
        upload = post(console, "/upload", files={"file": ("billing.xlsx", b"PK", "application/octet-stream")})
        assert upload.status_code == 409 and "is still running" in upload.text  # the inbox is left alone
        during = console.get("/month").text
        assert f'hx-get="/jobs/{running.id}"' in during and "The preview shows again" in during
    finally:
        release.set()
    wait_for(running)
    assert not (state(console).output / "ledger.sqlite").exists()


def test_a_refusal_of_the_pipeline_is_said_on_the_pages(console):
    (state(console).output / "invoices").mkdir(parents=True)  # outputs without their ledger: billing would bill twice
    for url in ("/", "/month", "/schedules"):
        page = console.get(url)
        assert page.status_code == 200, url
        assert "but no ledger" in page.text, url
    assert 'action="/upload"' in console.get("/").text  # the inbox can still be put right


@pytest.mark.parametrize("total", ["100.00", "100.01"])
def test_the_fingerprint_is_the_ordered_contract_cycle_and_total(total):
    from decimal import Decimal

    from billing_batch.model import Draft

    def draft(contract: str, amount: str) -> Draft:
        return Draft(contract, "C", "C", date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 1), "USD", (),
                     Decimal(amount), Decimal(0), Decimal(0), Decimal(amount))

    one = [draft("A", "100.00"), draft("B", "5.00")]
    assert fingerprint(one) == fingerprint(list(one))
    assert (fingerprint([draft("A", total), draft("B", "5.00")]) == fingerprint(one)) == (total == "100.00")
    assert fingerprint(one[::-1]) != fingerprint(one)


def test_the_job_shows_the_run_stages_in_order(console):
    from billing_batch.console.jobs import Job
    from billing_batch.console.pages.month import bill, preview

    class Watched(Job):
        def __setattr__(self, name, value):
            if name == "stage" and (not hasattr(self, "seen") or self.seen[-1] != value):
                object.__setattr__(self, "seen", [*getattr(self, "seen", []), value])
            object.__setattr__(self, name, value)

    small_inbox(console)
    job = Watched(id="1", kind="run")
    options = state(console).options(date.fromisoformat(SMALL_AS_OF))
    bill(job, options, preview(options).fingerprint)
    assert [s for s in job.seen if s in ("billing", "rendering PDFs", "writing the workbook", "review")] == [
        "billing", "rendering PDFs", "writing the workbook", "review"]
    assert len(job.seen) == len(set(job.seen))  # never back to a stage left


def test_a_report_that_tells_its_stages_moves_the_job_through_them(monkeypatch):
    """When pipeline.run takes the report to fill (asked of the lead), the job follows run's Report.stage names."""
    from billing_batch import pipeline
    from billing_batch.console.jobs import Job
    from billing_batch.console.pages.month import bill

    seen = []

    def run(options, on_rendered=None, report=None, approve=None):
        for name in ("load", "validate", "read ledger", "cycles and pricing", "write ledger", "render",
                     "cycles and pricing", "write workbook", "usage checks", "write review", "usage details"):
            with report.stage(name):
                seen.append(job.stage)
                if name == "render":
                    on_rendered(1, 2)
                    seen.append(job.stage)
        return report

    monkeypatch.setattr(pipeline, "run", run)
    job = Job(id="1", kind="run")
    report = bill(job, None, "")
    assert list(dict.fromkeys(seen)) == ["reading the inbox", "billing", "rendering PDFs", "writing the workbook",
                                         "review"]
    assert (job.done, job.total, job.outcome) == (1, 2, "ok") and "render" in report.timings


def test_the_run_bills_nothing_when_what_it_finds_is_not_what_was_shown(console):
    """The fingerprint is checked again by the run itself, while the ledger is held: nothing slips in between."""
    from billing_batch.console.jobs import Job
    from billing_batch.console.pages.month import bill
    from billing_batch.workspace import Refused

    small_inbox(console)
    options = state(console).options(date.fromisoformat(SMALL_AS_OF))
    with pytest.raises(Refused, match="nothing was billed"):
        bill(Job(id="1", kind="run"), options, "what another preview showed")
    ledger = state(console).output / "ledger.sqlite"
    assert not ledger.exists() or not sqlite3.connect(ledger).execute("SELECT count(*) FROM invoices").fetchone()[0]


def test_every_code_names_its_heading_in_the_catalogue():
    from billing_batch.console.pages.home import anchor
    from billing_batch.errors import CATALOGUE, Problem
    from billing_batch.model import Source

    headings = re.findall(r"^### (BB\d{3} .+)$", (Path(__file__).parent.parent / "docs" / "errors.md").read_text(),
                          re.MULTILINE)
    slugs = {"-".join(re.sub(r"[^\w\- ]", "", h.lower()).split(" ")) for h in headings}
    for code in CATALOGUE:
        assert anchor(Problem(code, Source("billing.xlsx", ""), None, "", "")) in slugs, code
    assert {"bb129-standard-rate-of-0", "bb163-sellers-e-invoice-data-missing"} <= slugs  # punctuation as GitHub drops it
