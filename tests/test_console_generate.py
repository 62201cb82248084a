"""The console's Generate dialog and Invoice page (issue #24), through Starlette's test client: the sample month is
billed once (pipeline.run), then each test works on a copy of that workspace."""
from __future__ import annotations

import html
import re
import shutil
import threading
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from console_fixtures import client, post, wait_for, workspace

from billing_batch import pipeline
from billing_batch.console.pages.generate import CHANGED
from billing_batch.ledger.store import Ledger
from billing_batch.model import InvoiceStatus
from billing_batch.post.records import Records

AS_OF = date(2026, 12, 7)  # the sample's November cycles are billed; CTR-1001's December cycle is due 2027-01-02
DAY = AS_OF.isoformat()


@pytest.fixture(scope="module")
def billed(tmp_path_factory) -> Path:
    """The sample workspace after the month's run as of AS_OF."""
    folder = workspace(tmp_path_factory.mktemp("billed") / "workspace")
    options = client(folder).app.state.console.options(AS_OF)
    report = pipeline.run(options)
    assert report.issued and report.exit_code in (0, 1), [p.one_line() for p in report.problems]
    return folder


@pytest.fixture
def console(billed: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("BILLING_BATCH_DATA", str(tmp_path / "known-ledgers"))
    folder = tmp_path / "workspace"
    shutil.copytree(billed, folder, symlinks=True)
    with client(folder) as test_client:
        yield test_client


def ledger(test_client) -> list:
    with Ledger(test_client.app.state.console.output / "ledger.sqlite", read_only=True) as book:
        return book.invoices()


def live_invoice(test_client, contract_id: str, cycle_start: date):
    return next(i for i in ledger(test_client) if i.draft.contract_id == contract_id
                and i.draft.cycle_start == cycle_start and i.is_live)


def fields(page: str) -> dict[str, str]:
    """The proceed form's hidden fields (and the contracts it carries), as the browser would send them back."""
    found = {name: html.unescape(value) for name, value in
             re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', page)}
    found["contracts"] = html.unescape(re.search(r'<textarea name="contracts" hidden>(.*?)</textarea>', page,
                                                 re.DOTALL).group(1))
    found.pop("csrf", None)
    return found


def preview(test_client, contracts: list[str], cycle_day: str = "", **extra):
    data = {"contract": contracts, "as_of": DAY, "cycle_mode": "date" if cycle_day else "oldest",
            "cycle_day": cycle_day, **extra}
    page = post(test_client, "/generate/preview", data)
    assert page.status_code == 200, page.text
    return page.text


def proceed(test_client, page: str, **ticks):
    """Proceed from a preview page with these ticks; the generation's finished job."""
    answer = post(test_client, "/generate/proceed", {**fields(page), **ticks})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/generate")
    job = wait_for(test_client.app.state.console.jobs.last("generate"))
    shown = test_client.get("/generate")  # the page follows the job, and shows each contract's outcome
    assert shown.status_code == 200 and job.message in html.unescape(shown.text)
    return job


def results(job) -> dict[str, str]:
    return {o.contract_id: o.result for o in job.result.outcomes}


def test_the_dialog_lists_the_contracts_and_filters_keeping_the_choice(console):
    page = console.get("/generate")
    assert page.status_code == 200
    assert "CTR-1001" in page.text and "Northwind Analytics Inc." in page.text and 'name="contract"' in page.text
    assert 'name="cycle_mode" value="oldest"' in page.text and 'name="cycle_day"' in page.text
    token = {"X-CSRF-Token": console.app.state.console.csrf}  # as htmx sends it
    shown = console.post("/generate/contracts", data={"q": "brightwave", "contract": ["CTR-1001"]}, headers=token)
    assert shown.status_code == 200
    assert 'value="CTR-1002"' in shown.text and ">CTR-1003<" not in shown.text  # CTR-1002 is Brightwave's
    assert '<input type="hidden" name="contract" value="CTR-1001">' in shown.text  # chosen, filtered out, kept
    every = console.post("/generate/contracts", data={"q": "EUR", "toggle": "all"}, headers=token)
    assert every.text.count(" checked>") >= 10 and "CTR-1001" not in every.text  # every EUR contract, chosen
    assert "Choose the contracts to bill" in post(console, "/generate/preview", {"as_of": DAY}).text


def test_an_existing_invoice_is_shown_and_replaced_only_when_ticked(console):
    existing = live_invoice(console, "CTR-1001", date(2026, 11, 1))
    page = preview(console, ["CTR-1001"], "2026-11-15")
    assert "This cycle is already billed by" in page and f'href="/invoices/{existing.number}"' in page
    assert '<input type="checkbox" name="replace" value="CTR-1001">' in page
    assert "Replace the existing invoice" in page and "<details>" in page and "Platform Pro" in page
    before = len(ledger(console))

    job = proceed(console, page)  # no tick: nothing billed for it
    assert results(job)["CTR-1001"].startswith(f"Refused: already billed by {existing.number}")
    assert len(ledger(console)) == before and job.outcome == "problems"

    job = proceed(console, preview(console, ["CTR-1001"], "2026-11-15"), replace="CTR-1001")
    assert job.outcome == "ok", job.message
    (made,) = job.result.report.issued
    assert results(job)["CTR-1001"] == f"Invoiced {made.number}, replacing {existing.number}"
    old = next(i for i in ledger(console) if i.number == existing.number)
    assert old.status is InvoiceStatus.REPLACED and old.replaced_by == made.number
    shown = console.get("/generate").text
    assert f'href="/invoices/{made.number}"' in shown and f'href="/output/invoices/{made.number}.pdf"' in shown
    pdf = console.get(f"/output/invoices/{made.number}.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_a_future_cycle_needs_the_allow_future_tick(console):
    page = preview(console, ["CTR-1001"])  # its oldest cycle not billed: December, scheduled 2027-01-02
    assert 'id="future-warning"' in page and 'name="allow_future"' in page and "Allow future cycles" in page
    before = len(ledger(console))
    job = proceed(console, page)
    assert results(job)["CTR-1001"].startswith("Refused: future cycle 2026-12-01 to 2026-12-31 (scheduled 2027-01-02)")
    assert len(ledger(console)) == before

    job = proceed(console, preview(console, ["CTR-1001"]), allow_future="1")
    (made,) = job.result.report.issued
    assert made.draft.cycle_start == date(2026, 12, 1) and job.outcome == "ok"


def test_a_changed_inbox_between_preview_and_proceed_is_refused(console):
    page = preview(console, ["CTR-1001"], "2026-11-15")
    book = console.app.state.console.inbox / "billing.xlsx"
    workbook = openpyxl.load_workbook(book)
    sheet = workbook["Subscriptions"]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[0].value == "SUB-0001")
    row[4].value = 30  # Platform Pro: 25 seats -> 30, so the replacement's total changes
    workbook.save(book)
    before = ledger(console)
    job = proceed(console, page, replace="CTR-1001")
    assert job.outcome == "refused" and job.message == CHANGED
    assert ledger(console) == before


def test_many_contracts_are_billed_by_one_job(console):
    page = preview(console, [], select_all="1")  # every contract, each its oldest cycle not billed
    ids = fields(page)["contracts"].split()
    assert len(ids) == 32 and "CTR-1010" in ids
    assert "CTR-1010 is Inactive: set its Status to Active first" in page
    before = len(ledger(console))
    job = proceed(console, page, allow_future="1")
    assert console.app.state.console.jobs.last("generate") is job
    issued = job.result.report.issued
    assert len(issued) >= 25 and len(ledger(console)) == before + len(issued)
    assert {o.contract_id for o in job.result.outcomes} == set(ids)
    assert ("Refused" not in results(job)["CTR-1001"]) and results(job)["CTR-1010"].startswith("CTR-1010 is Inactive")
    assert (f"/invoices/{issued[0].number}" in dict(job.links).values()
            and f"/output/invoices/{issued[-1].number}.pdf" in dict(job.links).values())
    assert job.done == job.total >= len(issued)  # PDFs rendered N of N


def test_the_invoice_page_shows_the_document(console):
    invoice = live_invoice(console, "CTR-1001", date(2026, 11, 1))
    page = console.get(f"/invoices/{invoice.number}")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert f"Invoice {invoice.number}" in text and "Northwind Analytics Inc." in text
    assert "Platform Pro seats" in text and "Advanced analytics module" in text and "$1,352.45" in text
    assert f'href="/output/invoices/{invoice.number}.pdf"' in page.text and "Issued" in text
    assert 'data-task="send"' in page.text and 'name="reason"' in page.text
    missing = console.get("/invoices/INV-999999")
    assert missing.status_code == 404 and "The ledger holds no invoice INV-999999" in missing.text


def test_a_credit_of_a_line_quantity_and_too_much(console):
    invoice = live_invoice(console, "CTR-1001", date(2026, 11, 1))  # line 1: 25 Platform Pro seats
    url = f"/invoices/{invoice.number}/credit"
    unreasoned = post(console, url, {"what": "quantity", "line": "1", "quantity": "2"})
    assert unreasoned.status_code == 400 and "Give the reason" in unreasoned.text
    no_line = post(console, url, {"what": "quantity", "quantity": "2", "reason": "x"})
    assert "Name a line and what to credit of it together" in no_line.text
    not_a_number = post(console, url, {"what": "amount", "line": "1", "amount": "lots", "reason": "x"})
    assert "&#39;lots&#39; is not a number such as 2 or 120.50" in not_a_number.text
    whole_by_mistake = post(console, url, {"what": "whole", "line": "1", "quantity": "2", "reason": "x"})
    assert whole_by_mistake.status_code == 400 and "but chose the whole invoice" in whole_by_mistake.text

    answer = post(console, url, {"what": "quantity", "line": "1", "quantity": "2", "reason": "Two seats unused"})
    assert answer.status_code == 303
    job = wait_for(console.app.state.console.jobs.last("credit"))
    assert job.outcome == "ok", job.message
    note = next(i for i in ledger(console) if i.credits == invoice.number)
    assert note.is_credit_note and note.reason == "Two seats unused"
    assert [(line.credits_line, line.quantity) for line in note.draft.lines] == [(1, 2)]
    assert job.message.startswith(f"Issued credit note {note.number} for $") and "still due" in job.message
    page = console.get(f"/invoices/{invoice.number}").text
    assert f'href="/invoices/{note.number}"' in page and job.message in html.unescape(page)
    assert "Two seats unused" in console.get(f"/invoices/{note.number}").text

    post(console, url, {"what": "quantity", "line": "1", "quantity": "100", "reason": "Too many"})
    job = wait_for(console.app.state.console.jobs.last("credit"))
    assert job.outcome == "refused"
    assert job.message == (f"Not credited: BB132 Cannot credit a quantity of 100 of line 1 of {invoice.number} "
                           "(Platform Pro): it billed 25, and 23 of that is left to credit (2 credited before).")
    assert len([i for i in ledger(console) if i.credits == invoice.number]) == 1


def test_send_again(console):
    invoice = live_invoice(console, "CTR-1001", date(2026, 11, 1))
    for _ in range(2):  # the second time repeats a task done
        answer = post(console, f"/invoices/{invoice.number}/post", {"task": "send"})
        assert answer.status_code == 303
        job = wait_for(console.app.state.console.jobs.last("post"))
        assert job.outcome == "ok", job.message
        assert job.message.startswith(f"{invoice.number} send: outbox")
    with Ledger(console.app.state.console.output / "ledger.sqlite", read_only=True) as book:
        assert Records(book).get(invoice.number, "send").outcome == "outbox"
    page = console.get(f"/invoices/{invoice.number}").text
    assert "Send again" in page and "outbox" in page
    assert post(console, f"/invoices/{invoice.number}/post", {"task": "fax"}).status_code == 400


def test_the_job_pages_follow_a_generation_and_one_job_runs_at_a_time(console):
    state = console.app.state.console
    page = preview(console, ["CTR-1001"], "2026-11-15")
    release = threading.Event()
    other = state.jobs.start("run", lambda job: release.wait(30))
    try:
        busy = post(console, "/generate/proceed", fields(page))
        assert busy.status_code == 409 and "is still running" in busy.text and "nothing was started" in busy.text
        invoice = live_invoice(console, "CTR-1001", date(2026, 11, 1))
        credit = post(console, f"/invoices/{invoice.number}/credit", {"what": "whole", "reason": "x"})
        assert credit.status_code == 409 and "is still running" in credit.text
        assert state.jobs.last("generate") is None and state.jobs.last("credit") is None
    finally:
        release.set()
        wait_for(other)
    job = proceed(console, page, replace="CTR-1001")
    fragment = console.get(f"/generate/jobs/{job.id}")
    assert fragment.status_code == 200 and "hx-get" not in fragment.text  # finished: it polls no more
    assert f'href="/invoices/{job.result.report.issued[0].number}"' in fragment.text
    assert console.get("/generate/jobs/0-000000").status_code == 404

    post(console, f"/invoices/{invoice.number}/post", {"task": "send"})
    sent = wait_for(state.jobs.last("post"))
    polled = console.get(f"/invoices/{invoice.number}/jobs/{sent.id}", headers={"HX-Request": "true"})
    assert polled.headers.get("HX-Refresh") == "true"  # the whole page shows what it did
