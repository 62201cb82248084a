"""The console in a real browser (issue #24): `billing-batch serve` started as a user starts it, driven by headless
Chromium (Debian's, through Playwright, which cannot download its own browser here).

One console for the module, on a workspace whose inbox starts with the Partner Center files only; the tests run in
file order (the suite shares files out whole) and build on each other as a person's month does:

1. a request without the token or cookie gets the page saying to open the console's own address;
2. the whole month: a workbook with a broken cell uploaded, its problem shown with its cell, the good workbook
   uploaded in its place, the preview as of 2026-11-02, Approve, the progress polled to the end, a PDF opened from
   the links, the review page;
3. the Generate dialog: an existing invoice with its Replace box, a future cycle refused without its box and billed
   with it, the link to the invoice made;
4. that invoice's page: a line's quantity credited, the credit note shown;
5. a form on another 127.0.0.1 port posting to /month/approve (with the right CSRF token and fingerprint, even) is
   refused, and nothing is billed.

Each page is screenshotted into build/console/ (git-ignored): look at them after a run."""
from __future__ import annotations

import http.server
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openpyxl
import pytest

from billing_batch.ledger.store import Ledger

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
SHOTS = ROOT / "build" / "console"
AS_OF = "2026-11-02"  # the sample's October cycles are due: 70 documents
BROKEN = "31/02/2026"  # CTR-1001's Start Date (Contracts, row 2, column C): BB103 not a date
WAIT = 60_000  # ms: the longest a step may take (the month's run takes about 12 s on 2 cores)

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: install Debian's chromium "
                                "package (apt-get install chromium) to run the console's browser tests")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'")
expect = sync_api.expect


# ---------------------------------------------------------------- the console, as a user starts it


class Served:
    """A running `billing-batch serve`: its workspace, its printed address, its port."""

    def __init__(self, workspace: Path, process: subprocess.Popen, url: str):
        self.workspace, self.process, self.url = workspace, process, url
        self.origin = re.match(r"http://[^/]+", url).group(0)
        self.port = int(self.origin.rsplit(":", 1)[1])

    def ledger(self) -> list:
        """The ledger's documents ([] before anything is billed)."""
        path = self.workspace / "output" / "ledger.sqlite"
        if not path.exists():
            return []
        with Ledger(path, read_only=True) as book:
            return book.invoices()


def billing_batch() -> str:
    """The installed command, beside this Python (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("billing-batch")
    return str(beside) if beside.exists() else (shutil.which("billing-batch") or pytest.skip("no billing-batch"))


def read_line(stream, seconds: float) -> str:
    """The first line of stream, or "" after seconds."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return got[0].strip() if got else ""


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("console")
    workspace = folder / "workspace"
    (workspace / "inbox").mkdir(parents=True)
    for csv in SAMPLE.glob("*.csv"):
        shutil.copy2(csv, workspace / "inbox" / csv.name)
    env = {**os.environ, "BILLING_BATCH_DATA": str(folder / "known-ledgers"), "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    errors = (folder / "serve-stderr.txt").open("w")  # a file, not a pipe: nothing blocks if it says much
    process = subprocess.Popen([billing_batch(), "serve", str(workspace), "--no-browser", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=errors, text=True, env=env, cwd=folder)
    try:
        url = read_line(process.stdout, 30)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[\w-]{40,}", url), \
            f"serve printed {url!r}; stderr: {(folder / 'serve-stderr.txt').read_text()}"
        yield Served(workspace, process, url)
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            code = process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
        errors.close()
        assert code == 0, f"serve did not stop cleanly on Ctrl-C (exit {code})"


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(browser, served):
    """A tab signed in by opening the printed address (token -> cookie -> redirect)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(WAIT)
    tab = context.new_page()
    tab.goto(served.url)
    assert tab.url == f"{served.origin}/", "the token is taken out of the address bar"
    cookie = {c["name"]: c for c in context.cookies()}[f"bb_session_{served.port}"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    yield tab
    context.close()


def shot(tab, name: str) -> None:
    tab.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def broken_workbook(folder: Path) -> Path:
    """sample_data's workbook with CTR-1001's Start Date typed as 31/02/2026 (no such day), same file name."""
    folder.mkdir(parents=True, exist_ok=True)
    book = openpyxl.load_workbook(SAMPLE / "billing.xlsx")
    book["Contracts"]["C2"].value = BROKEN
    book.save(folder / "billing.xlsx")
    return folder / "billing.xlsx"


def wait_for_job(tab, selector: str = "section.job", running: str = "") -> list[str]:
    """Watch a job's fragment (htmx polls it) until it shows its outcome; the texts of progress seen on the way.
    running: the name of a screenshot taken once PDFs are being rendered."""
    seen: list[str] = []
    deadline = time.monotonic() + WAIT / 1000
    while time.monotonic() < deadline:
        fragment = tab.locator(selector)
        text = fragment.inner_text() if fragment.count() else ""
        if text and (not seen or seen[-1] != text):
            seen.append(text)
            if running and "PDFs rendered" in text and "Stage: rendering PDFs" in text:
                shot(tab, running)
                running = ""
        if tab.locator(f"{selector} p.outcome").count():
            return seen
        time.sleep(0.2)
    pytest.fail(f"the job did not finish in {WAIT // 1000} s; last seen: {seen[-1:]}")


# ---------------------------------------------------------------- the tests


def test_without_the_token_or_cookie_there_is_no_page(browser, served):
    context = browser.new_context()
    try:
        tab = context.new_page()
        for path in ("/", "/month", "/output/ledger.sqlite"):
            answer = tab.goto(served.origin + path)
            assert answer.status == 403
            expect(tab.locator("h1")).to_have_text("Open the console's own address")
        shot(tab, "00-no-token")
        answer = tab.goto(f"{served.origin}/?token=not-the-token")
        assert answer.status == 403 and "Wrong token" in tab.content()
        assert not context.cookies()
    finally:
        context.close()


def test_the_whole_month(page, served, tmp_path):
    expect(page.locator("h1")).to_have_text("Inbox")
    shot(page, "01-home-no-workbook")

    # A workbook with a date that does not exist: the problem with its cell.
    page.set_input_files("input[type=file][name=file]", broken_workbook(tmp_path / "broken"))
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/\?saved=billing\.xlsx"))
    expect(page.locator("p.notice.ok").first).to_contain_text("Saved billing.xlsx in the inbox.")
    problem = page.locator("table tr", has_text=BROKEN)
    expect(problem).to_have_count(1)
    row = problem.inner_text()
    for part in ("billing.xlsx", "Contracts", "2", "C", "BB103", "Start Date"):
        assert part in row, f"{part!r} is not in the problem's row: {row!r}"
    shot(page, "02-home-problem")

    # The good workbook in its place; the broken one kept.
    page.set_input_files("input[type=file][name=file]", SAMPLE / "billing.xlsx")
    page.get_by_role("button", name="Upload", exact=True).click()
    page.wait_for_url(re.compile(r"/\?saved=billing\.xlsx&kept=billing\.xlsx\."))
    expect(page.locator("main")).to_contain_text("The file it replaced is kept as inbox/.previous/billing.xlsx.")
    expect(page.locator("main")).not_to_contain_text(BROKEN)
    assert len(list((served.workspace / "inbox" / ".previous").iterdir())) == 1
    shot(page, "03-home-replaced")

    # This month: the preview as of the date, then Approve.
    page.locator("header nav").get_by_role("link", name="This month").click()
    page.fill("input[name=as_of]", AS_OF)
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url(re.compile(rf"/month\?as_of={AS_OF}"))
    expect(page.locator("table.totals")).to_contain_text("USD")
    expect(page.locator("h2", has_text="Invoices")).to_contain_text("70")
    shot(page, "04-month-preview")
    assert served.ledger() == []
    page.get_by_role("button", name="Approve and bill").click()
    page.wait_for_url(re.compile(rf"/month\?as_of={AS_OF}$"))
    seen = wait_for_job(page, running="05a-month-running")
    assert len(seen) >= 2, f"the page showed no progress before the end: {seen}"
    assert any("PDFs rendered" in text for text in seen), seen
    finished = page.locator("section.job")
    expect(finished).to_contain_text("Done")
    expect(finished).to_contain_text("PDFs rendered 70 of 70")
    assert finished.get_attribute("hx-get") is None, "a finished job polls no more"
    expect(page.locator("div.running")).to_have_count(0)  # the banner on every page goes with the job
    assert len(served.ledger()) == 70
    page.reload()  # the page survives a reload and lists what the run made
    expect(page.locator("#made table.documents tbody tr")).to_have_count(70)
    shot(page, "05b-month-done")

    # A PDF from the links (the browser's own session: its cookie).
    link = page.locator("#made table.documents a[href^='/output/invoices/']").first
    pdf = page.request.get(served.origin + link.get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")

    # The review page, from the job's link.
    page.locator("section.job").get_by_role("link", name="Review the run").click()
    page.wait_for_url(re.compile(r"/output/runs/.+/review\.html$"))
    expect(page.locator("body")).to_contain_text("INV-000070")
    shot(page, "06-review")
    page.goto(f"{served.origin}/review")  # the menu's Review goes to the latest run's page
    assert re.search(r"/output/runs/.+/review\.html$", page.url)


def test_the_generate_dialog(page, served):
    existing = next(i for i in served.ledger() if i.draft.contract_id == "CTR-1001" and i.is_live
                    and i.draft.cycle_start.isoformat() == "2026-10-01")

    # CTR-1001's October cycle is billed: the invoice and its Replace box.
    page.goto(f"{served.origin}/generate")
    expect(page.locator("h1")).to_have_text("Generate invoices")
    page.fill("input[type=search][name=q]", "CTR-1001")
    expect(page.locator("#contracts tbody tr")).to_have_count(1)
    page.check("#contracts input[name=contract][value='CTR-1001']")
    page.check("input[name=cycle_mode][value=date]")
    page.fill("input[name=cycle_day]", "2026-10-15")
    page.fill("input[name=as_of]", AS_OF)
    shot(page, "07-generate-dialog")
    page.get_by_role("button", name="Preview", exact=True).click()
    expect(page.locator("h1")).to_have_text("Generate invoices: preview")
    row = page.locator("tr.proposal[data-contract='CTR-1001']")
    expect(row).to_contain_text(f"This cycle is already billed by {existing.number}")
    expect(row.get_by_role("link", name=existing.number)).to_have_attribute("href", f"/invoices/{existing.number}")
    expect(row.get_by_label("Replace the existing invoice")).not_to_be_checked()
    page.locator("tr.proposal-lines summary").click()  # the preview's lines, shown
    expect(page.locator("tr.proposal-lines table.lines")).to_be_visible()
    shot(page, "08-generate-existing")

    # Its oldest cycle not billed is November's, scheduled 2026-12-02: a future cycle.
    page.goto(f"{served.origin}/generate?q=CTR-1001")
    page.check("#contracts input[name=contract][value='CTR-1001']")
    page.fill("input[name=as_of]", AS_OF)
    page.get_by_role("button", name="Preview", exact=True).click()
    warning = page.locator("#future-warning")
    expect(warning).to_contain_text("Warning: 1 future cycle")
    expect(warning.get_by_label("Allow future cycles")).not_to_be_checked()
    shot(page, "09-generate-future")
    before = len(served.ledger())
    page.get_by_role("button", name="Proceed").click()  # without the box: not billed
    page.wait_for_url(re.compile(r"/generate#job$"))
    wait_for_job(page, "#generate-job")
    expect(page.locator("#generate-job table.results")).to_contain_text(
        "Refused: future cycle 2026-11-01 to 2026-11-30 (scheduled 2026-12-02)")
    assert len(served.ledger()) == before
    shot(page, "10-generate-refused")

    page.goto(f"{served.origin}/generate?q=CTR-1001")
    page.check("#contracts input[name=contract][value='CTR-1001']")
    page.fill("input[name=as_of]", AS_OF)
    page.get_by_role("button", name="Preview", exact=True).click()
    page.locator("#future-warning").get_by_label("Allow future cycles").check()
    page.get_by_role("button", name="Proceed").click()
    page.wait_for_url(re.compile(r"/generate#job$"))
    seen = wait_for_job(page, "#generate-job")
    made = [i for i in served.ledger() if i.draft.contract_id == "CTR-1001"
            and i.draft.cycle_start.isoformat() == "2026-11-01"]
    assert len(made) == 1 and len(served.ledger()) == before + 1, seen
    number = made[0].number
    result = page.locator("#generate-job table.results tr", has_text="CTR-1001")
    expect(result).to_contain_text(f"Invoiced {number}")
    shot(page, "11-generate-made")
    pdf = page.request.get(served.origin + result.get_by_role("link", name="PDF").get_attribute("href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    result.get_by_role("link", name=number).click()
    page.wait_for_url(f"{served.origin}/invoices/{number}")
    expect(page.locator("h1")).to_have_text(f"Invoice {number}")
    shot(page, "12-invoice")


def test_credit_a_line_quantity(page, served):
    invoice = next(i for i in served.ledger() if i.draft.contract_id == "CTR-1001"
                   and i.draft.cycle_start.isoformat() == "2026-11-01")
    page.goto(f"{served.origin}/invoices/{invoice.number}")
    expect(page.locator("#credit-notes")).to_have_count(0)
    form = page.locator("#credit-form")
    form.get_by_label("A quantity of one line").check()
    form.locator("select[name=line]").select_option("1")
    form.locator("input[name=quantity]").fill("2")
    form.get_by_label("Reason (printed on the credit note)").fill("Two seats unused")
    shot(page, "13-credit-form")
    form.get_by_role("button", name="Issue the credit note").click()
    # The job's fragment polls; once finished, the whole page reloads and lists the credit note.
    notes = page.locator("#credit-notes li")
    expect(notes).to_have_count(1, timeout=WAIT)
    note = next(i for i in served.ledger() if i.credits == invoice.number)
    expect(notes).to_contain_text(note.number)
    expect(notes).to_contain_text("Two seats unused")
    expect(page.locator("main")).to_contain_text(f"Issued credit note {note.number}")
    assert [(line.credits_line, line.quantity) for line in note.draft.lines] == [(1, 2)]
    shot(page, "14-credited")
    notes.get_by_role("link", name=note.number).click()
    expect(page.locator("h1")).to_have_text(f"Credit note {note.number}")
    expect(page.locator("#credits")).to_contain_text(invoice.number)
    shot(page, "15-credit-note")


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def test_a_form_from_another_port_is_refused(browser, page, served, tmp_path):
    """Another local tool's page (127.0.0.1, another port: the same site, so the Strict cookie goes along) posts
    to Approve, with the CSRF token and the preview's fingerprint even: refused on its origin, nothing billed."""
    as_of = "2026-12-07"  # November's cycles are due: an Approve would bill them
    page.goto(f"{served.origin}/month?as_of={as_of}")
    csrf = page.locator("form.approve input[name=csrf]").get_attribute("value")
    fingerprint = page.locator("form.approve input[name=fingerprint]").get_attribute("value")
    before = served.ledger()
    (tmp_path / "index.html").write_text(
        f'<!DOCTYPE html><html><body><form id="f" method="post" action="{served.origin}/month/approve">'
        f'<input name="csrf" value="{csrf}"><input name="as_of" value="{as_of}">'
        f'<input name="fingerprint" value="{fingerprint}"></form>'
        '<script>document.getElementById("f").submit()</script></body></html>')
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: Quiet(*a, directory=str(tmp_path)))
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        tab = page.context.new_page()  # the signed-in browser: its cookie is there to be abused
        with tab.expect_response(f"{served.origin}/month/approve") as answered:
            tab.goto(f"http://127.0.0.1:{other.server_address[1]}/index.html")
        assert answered.value.status == 403
        expect(tab.locator("h1")).to_have_text("Not from this console")
        shot(tab, "16-cross-origin-refused")
        tab.close()
    finally:
        other.shutdown()
        other.server_close()
    time.sleep(1)
    assert served.ledger() == before
    page.goto(f"{served.origin}/month?as_of={as_of}")
    expect(page.locator("div.running")).to_have_count(0)  # no job was started
