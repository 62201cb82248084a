"""The review page in a real browser: headless Chromium (Debian's `chromium`), driven over the
DevTools protocol on a pipe (--remote-debugging-pipe), so no extra Python package and no port."""
from __future__ import annotations

import base64
import json
import os
import select
import sqlite3
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest


CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "review"  # build/ is git-ignored; look at the PNGs after a run
AS_OF = "2026-11-02"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium) to run the "
           "browser tests of the review page",
)


class Chromium:
    """Just enough of the DevTools protocol: messages are JSON, NUL-terminated; Chromium
    reads them on its fd 3 and answers on its fd 4."""

    def __init__(self, width: int = 1440, height: int = 1000):
        self.profile = tempfile.TemporaryDirectory(prefix="review-chromium-")
        to_child, self._out = os.pipe()
        self._in, from_child = os.pipe()

        def on_fds_3_and_4():  # in the child, before exec
            a, b = os.dup(to_child), os.dup(from_child)  # copies first: either may already be 3 or 4
            for fd, target in ((a, 3), (b, 4)):
                if fd != target:
                    os.dup2(fd, target)
                os.set_inheritable(target, True)

        # close_fds=False: Python's own descriptors are not inheritable anyway (PEP 446); only 3 and 4 go across.
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--hide-scrollbars", "--mute-audio", f"--user-data-dir={self.profile.name}",
             "--remote-debugging-pipe", "about:blank"],
            preexec_fn=on_fds_3_and_4, close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer, self._id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise ConnectionError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, session: str | None = None, timeout: float = 30, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read(timeout)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def send(self, method: str, **params) -> dict:
        """A command to the page."""
        return self.call(method, self.session, **params)

    def open(self, url: str, timeout: float = 30) -> None:
        """Load url afresh, and wait for its load event (also when only the #fragment differs)."""
        self.events.clear()
        if self.send("Page.navigate", url="about:blank").get("loaderId"):
            self._wait_for_load(timeout)
        self.events.clear()
        self.send("Page.navigate", url=url)
        self._wait_for_load(timeout)

    def _wait_for_load(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read(max(0.01, deadline - time.monotonic())))

    def js(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(json.dumps(result["exceptionDetails"])[:2000])
        return result["result"].get("value")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        x, y = self.js(f"""(() => {{
            const e = document.querySelector({json.dumps(selector)});
            e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect();
            return [r.x + r.width / 2, r.y + r.height / 2];
        }})()""")
        for kind in ("mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params: dict = {"format": "png"}
        if full_page:
            width, height = self.js("[document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
            params.update(captureBeyondViewport=True, clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", **params)["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._out)
        os.close(self._in)
        self.profile.cleanup()


@pytest.fixture(scope="module")
def browser():
    chromium = Chromium()
    try:
        yield chromium
    finally:
        chromium.close()


NUMBERS = "Array.from(document.querySelectorAll('#invoice-table tbody tr')).map(r => r.cells[0].querySelector('a').textContent)"
VISIBLE = "Array.from(document.querySelectorAll('#invoice-table tbody tr:not([hidden])')).map(r => r.cells[0].querySelector('a').textContent)"


def printed_review(out: Path, stdout: str) -> Path:
    """The page `run` wrote, which it must also have named."""
    (page,) = out.glob("runs/*/review.html")
    assert f"Review: {page}" in stdout.replace("\n", "")
    return page


def test_the_review_of_the_sample_run_in_chromium(browser: Chromium, tmp_path: Path):
    out, sample = tmp_path / "out", ROOT / "sample_data"
    result = subprocess.run([sys.executable, "-m", "billing_batch", "run", "--input", str(sample), "--output", str(out),
                             "--as-of", AS_OF, "--jobs", "2"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    page = printed_review(out, result.stdout)
    with sqlite3.connect(out / "ledger.sqlite") as db:
        totals = {n: Decimal(t) for n, t in db.execute("SELECT number, total FROM invoices")}

    browser.open(page.as_uri())
    assert browser.js("document.documentElement.dataset.ready") == "1"
    # every invoice of the run is listed, in number order
    numbers = browser.js(NUMBERS)
    assert numbers == sorted(totals) and len(numbers) > 50
    assert browser.js("document.getElementById('count').textContent") == f"{len(numbers)} of {len(numbers)}"
    # every link leads to an existing PDF
    hrefs = browser.js("Array.from(document.querySelectorAll('#invoice-table a')).map(a => a.href)")
    assert len([h for h in hrefs if h.endswith(".pdf")]) == len(numbers)  # and usage details beside some
    for href in hrefs:
        parts = urlsplit(href)
        assert parts.scheme == "file" and Path(unquote(parts.path)).is_file(), href
    # nothing was fetched from anywhere (CSP would block it, and the page asks for nothing)
    assert browser.js("performance.getEntriesByType('resource').length") == 0

    browser.screenshot(SCREENSHOTS / "review-sample.png")

    # sorting by clicking the Total header: biggest first, then smallest first
    browser.click("th[data-col=total] button")
    by_total = sorted(numbers, key=lambda n: (totals[n], n))
    assert browser.js(NUMBERS) == by_total[::-1]
    assert browser.js("document.querySelector('th[data-col=total]').getAttribute('aria-sort')") == "descending"
    assert browser.js("location.hash") == "#sort=total:desc"
    browser.click("th[data-col=total] button")
    assert browser.js(NUMBERS) == by_total
    browser.click("th[data-col=customer] button")
    customers = browser.js("Array.from(document.querySelectorAll('#invoice-table tbody tr td:nth-child(2)'))"
                           ".map(td => td.firstChild.textContent.trim().toLowerCase())")
    assert customers == sorted(customers)

    # filters: a flag, then a search word
    flagged = browser.js("Array.from(document.querySelectorAll('#invoice-table tbody tr'))"
                         ".filter(r => r.dataset.f.split(' ').includes('changed')).map(r => r.cells[0].querySelector('a').textContent)")
    assert flagged
    browser.click(".chip[data-flag=changed]")
    assert sorted(browser.js(VISIBLE)) == sorted(flagged)
    browser.screenshot(SCREENSHOTS / "review-sample-changed.png")
    browser.click("#reset")
    browser.js("(() => { const q = document.getElementById('q'); q.value = 'INV-000007';"
               " q.dispatchEvent(new Event('input')); })()")
    time.sleep(0.05)
    found = browser.js(VISIBLE)
    assert found[0] == "INV-000007" and len(found) < len(numbers)  # and those whose notes name it
    assert browser.js("Array.from(document.querySelectorAll('#invoice-table tbody tr:not([hidden])'))"
                      ".every(r => r.textContent.includes('INV-000007'))")
    assert browser.js("Array.from(document.querySelectorAll('#invoice-table tbody tr[hidden]'))"
                      ".every(r => getComputedStyle(r).display === 'none')")

    # a view given in the URL is applied on load
    browser.open(page.as_uri() + "#sort=total:desc&flag=first")
    visible = browser.js(VISIBLE)
    assert visible and visible == [n for n in by_total[::-1] if n in visible]
    assert browser.js("document.getElementById('flag').value") == "first"
    browser.open(page.as_uri())
    browser.screenshot(SCREENSHOTS / "review-sample-full.png", full_page=True)


def sort_and_filter_10000(browser: Chromium, out: Path) -> dict[str, float]:
    """Sort a 10,000-invoice page by three columns and filter it, checking what shows; the seconds each took."""
    from test_review import build_big_page

    page, rows, build_seconds = build_big_page(out)
    started = time.perf_counter()
    browser.open(page.as_uri(), timeout=60)
    load_seconds = time.perf_counter() - started
    assert browser.js("document.querySelectorAll('#invoice-table tbody tr').length") == 10_000

    timings = {}
    for column in ("total", "customer", "flags"):
        started = time.perf_counter()
        browser.click(f"th[data-col={column}] button")
        # wait for the next frames, so the time includes style, layout and paint
        browser.js("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 0))))")
        wall = time.perf_counter() - started  # includes the DevTools round trips
        sort_ms, paint_ms = browser.js("(t => [t.dataset.sortMs, t.dataset.clickToPaintMs])"
                                       "(document.getElementById('invoice-table'))")
        timings[column] = (float(sort_ms) / 1000, float(paint_ms) / 1000, wall)
    first = browser.js(NUMBERS + ".slice(0, 3)")
    by_flags = sorted(rows, key=lambda r: len(r.flags), reverse=True)
    assert len(next(r for r in rows if r.number == first[0]).flags) == len(by_flags[0].flags)

    started = time.perf_counter()
    browser.click(".chip[data-flag=changed]")
    filter_seconds = time.perf_counter() - started
    assert len(browser.js(VISIBLE)) == sum(1 for r in rows if r.has("changed"))
    browser.screenshot(SCREENSHOTS / "review-10000.png")
    return {"build": build_seconds, "load": load_seconds, "filter": filter_seconds,
            **{f"sort by {c} (click to screen)": p for c, (_, p, _) in timings.items()}}


def test_sorting_and_filtering_10000_invoices(browser: Chromium, tmp_path: Path):
    # How fast is measured by benchmarks/review_page.py.
    assert sort_and_filter_10000(browser, tmp_path)


# ---------------------------------------------------------------- nothing cut, at any width

WIDTHS = (1280, 1440, 800, 390)  # two laptops, half a screen, a phone

CUT = """Array.from(document.querySelectorAll('#invoice-table tbody td:nth-child(1), #invoice-table tbody td:nth-child(5)'))
  .filter(td => td.clientWidth === 0 || td.scrollWidth > td.clientWidth)
  .map(td => td.textContent.trim() + ' (' + td.scrollWidth + ' > ' + td.clientWidth + ')')"""
# Each row of cards (cards with the same top) must reach the right edge of the cards: none is left
# alone, short, on a row of its own.
SHORT_ROWS = """(() => {
  const box = document.querySelector('.cards').getBoundingClientRect();
  const rows = {};
  document.querySelectorAll('.cards .card').forEach(c => {
    const r = c.getBoundingClientRect();
    (rows[Math.round(r.top)] = rows[Math.round(r.top)] || []).push(r);
  });
  return Object.values(rows).filter(row => Math.abs(Math.max(...row.map(r => r.right)) - box.right) > 2)
    .map(row => row.map(r => Math.round(r.width)));
})()"""


def set_width(browser: Chromium, width: int) -> None:
    browser.send("Emulation.setDeviceMetricsOverride", width=width, height=900, deviceScaleFactor=1, mobile=False)


def look_at_every_width(browser: Chromium, page: Path, name: str) -> None:
    """At every width: no invoice number nor total is cut, no card is left alone; a screenshot of each."""
    try:
        for width in WIDTHS:
            set_width(browser, width)
            browser.open(page.as_uri())
            assert browser.js("document.documentElement.dataset.ready") == "1"
            assert browser.js(CUT) == [], (name, width)
            assert browser.js(SHORT_ROWS) == [], (name, width)
            browser.screenshot(SCREENSHOTS / f"{name}-{width}.png")
            browser.js("document.getElementById('invoice-table').scrollIntoView()")
            browser.screenshot(SCREENSHOTS / f"{name}-{width}-table.png")
    finally:
        set_width(browser, 1440)


def test_long_numbers_many_currencies_and_a_credit_note_are_never_cut(browser: Chromium, tmp_path: Path):
    from test_review_print import bill

    billed = bill(tmp_path)
    for page, name, prefix in ((billed.run_page, "review-long-numbers", "ACMEWW-26-"),
                               (billed.credit_page, "review-credit-note", "WW-CREDIT-")):
        browser.open(page.as_uri())
        listed = browser.js(NUMBERS)
        assert listed and all(n.startswith(prefix) for n in listed)
        # below the number: the usage file's link, or the invoice a credit note credits
        assert browser.js("document.querySelectorAll('#invoice-table .more').length") > 0
        look_at_every_width(browser, page, name)


def test_the_sample_run_cuts_nothing_either(browser: Chromium, tmp_path: Path):
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, "-m", "billing_batch", "run", "--input", str(ROOT / "sample_data"),
                             "--output", str(out), "--as-of", AS_OF, "--jobs", "2"], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    page = printed_review(out, result.stdout)
    browser.open(page.as_uri())
    assert browser.js("document.querySelectorAll('#invoice-table .more').length") > 0  # usage files
    look_at_every_width(browser, page, "review-sample")
