"""Invoice rendering: real PDFs read back with pypdf."""
from __future__ import annotations

import dataclasses
import io
import shutil
from datetime import date
from decimal import Decimal as D

import pypdf
import pytest

from billing_batch.documents import render, render_pool
from billing_batch.documents.invoice_view import invoice_view
from billing_batch.model import Draft, Invoice, InvoiceStatus, Line, LineKind, Party, RunType
from billing_batch.templates import FOLDER as TEMPLATES

IMG = '<img src="http://example.com/x.png">'


def line(product="Pro seats", description="Analytics workspace seats", start=date(2025, 1, 1), end=date(2025, 1, 31),
         quantity="12", unit_price="49", amount="588.00", kind=LineKind.RECURRING, prorated=False) -> Line:
    return Line(kind, product, description, start, end, D(quantity), D(unit_price), D(amount), prorated)


def usd_lines() -> tuple[Line, ...]:
    return (
        line(),
        line("API calls", f"Metered requests {IMG}", date(2025, 1, 20), date(2025, 1, 20), "12000", "0.0125", "150.00",
             kind=LineKind.USAGE),
        line("Onboarding", "Setup and training", quantity="1", unit_price="412.50", amount="412.50", kind=LineKind.ONE_TIME,
             prorated=True),
    )


def make_invoice(number="INV-000042", currency="USD", locale="en_US", lines=None, subtotal="1150.50", discount="115.05",
                 tax="207.09", total="1242.54", discount_rate="0.1", tax_rate="0.2", **kw) -> Invoice:
    draft = Draft(
        contract_id="C-0042", customer_id="CUST-007", customer_name="Globex Corporation",
        cycle_start=date(2025, 1, 1), cycle_end=date(2025, 1, 31), scheduled=date(2025, 2, 1), currency=currency,
        lines=usd_lines() if lines is None else lines, subtotal=D(subtotal), discount=D(discount), tax=D(tax),
        total=D(total), discount_rate=D(discount_rate), tax_rate=D(tax_rate),
    )
    seller = Party("Acme Analytics Ltd", ("12 Market Street", "London EC1A 1BB"), "billing@acme.example", "GB123456789",
                   "IBAN GB33 BUKB 2020 1555 5555 55\nBIC BUKBGB22")
    buyer = Party("Globex Corporation", ("500 Industrial Way", "Springfield, IL 62701"))
    return Invoice(number, draft, date(2025, 2, 1), date(2025, 3, 3), RunType.AUTOMATIC, seller, buyer, locale, **kw)


def pdf_pages(data: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages]


def squash(text: str) -> str:
    return "".join(text.split())  # table cells wrap: compare without whitespace


# ---------------------------------------------------------------- view model (no PDF)


def test_view_formats_amounts_prices_dates_and_rates():
    view = invoice_view(make_invoice())
    api, onboarding = view["lines"][1], view["lines"][2]
    assert view["lines"][0]["unit_price"] == "$49.00"
    assert api["unit_price"] == "$0.0125"
    assert api["quantity"] == "12,000"
    assert api["period"] == "Jan 20, 2025"
    assert view["lines"][0]["period"] == "Jan 1, 2025 – Jan 31, 2025"
    assert onboarding["prorated"] is True
    assert [(r["label"], r["value"]) for r in view["totals"]] == [
        ("Subtotal", "$1,150.50"), ("Discount (10%)", "-$115.05"), ("Tax (20%)", "$207.09"), ("Total", "$1,242.54")]


def test_view_hides_zero_discount_and_keeps_fractional_tax_rate():
    view = invoice_view(make_invoice(discount="0", discount_rate="0", tax="94.92", tax_rate="0.0825", total="1245.42"))
    assert [r["label"] for r in view["totals"]] == ["Subtotal", "Tax (8.25%)", "Total"]


def test_view_jpy_has_no_minor_unit():
    lines = (line(unit_price="4900", amount="58800"),)
    view = invoice_view(make_invoice(currency="JPY", locale="ja_JP", lines=lines, subtotal="58800",
                                            discount="0", tax="5880", total="64680", tax_rate="0.1"))
    assert view["lines"][0]["unit_price"] == "￥4,900"
    assert view["totals"][-1]["value"] == "￥64,680"


# ---------------------------------------------------------------- PDFs


def test_pdf_shows_number_customer_and_totals_on_one_page():
    pages = pdf_pages(render.render_pdf(make_invoice(), TEMPLATES))
    assert len(pages) == 1
    text = pages[0]
    for expected in ("INV-000042", "Globex Corporation", "Acme Analytics Ltd", "$1,242.54", "-$115.05", "$0.0125",
                     "Discount (10%)", "Tax (20%)", "(prorated)", "Feb 1, 2025", "Mar 3, 2025", "Page 1 of 1",
                     "IBAN GB33 BUKB 2020 1555 5555 55"):
        assert expected in text, expected
    assert "VOID" not in text


def test_pdf_jpy_amounts_have_no_decimals():
    lines = (line(unit_price="4900", amount="58800"), line("Support", "Premium support", quantity="1", unit_price="15000",
                                                             amount="15000"))
    text = pdf_pages(render.render_pdf(make_invoice(currency="JPY", lines=lines, subtotal="73800", discount="0",
                                                    tax="7380", total="81180", tax_rate="0.1"), TEMPLATES))[0]
    assert "¥81,180" in text and "¥4,900" in text and "¥73,800" in text
    assert "¥81,180." not in text and ".00" not in text


def test_markup_in_description_is_printed_literally_and_nothing_is_fetched(monkeypatch):
    fetched = []
    real_fetch = render.LocalFetcher.fetch
    monkeypatch.setattr(render.LocalFetcher, "fetch", lambda self, url, headers=None: fetched.append(url) or real_fetch(self, url))
    assert "&lt;img" in render.invoice_html(make_invoice(), TEMPLATES)
    text = pdf_pages(render.render_pdf(make_invoice(), TEMPLATES))[0]
    assert squash(IMG) in squash(text)
    assert fetched == []


def test_replaced_invoice_has_void_banner():
    text = pdf_pages(render.render_pdf(make_invoice(status=InvoiceStatus.REPLACED, replaced_by="INV-000043"), TEMPLATES))[0]
    assert "VOID — replaced by INV-000043" in text
    assert "$1,242.54" in text  # same content underneath


def test_long_invoice_breaks_pages_and_repeats_table_header():
    lines = tuple(line(f"Seat pack {i}") for i in range(40))
    pages = pdf_pages(render.render_pdf(make_invoice(lines=lines, subtotal="23520", discount="0", tax="4704",
                                                     total="28224"), TEMPLATES))
    assert len(pages) == 2
    assert "Unit price".upper() in pages[1] and "Page 2 of 2" in pages[1]
    assert "$28,224.00" in pages[1]


# ---------------------------------------------------------------- URL fetcher


def test_fetcher_serves_only_files_inside_templates_dir(tmp_path):
    inside = tmp_path / "templates"
    inside.mkdir()
    (inside / "logo.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    (tmp_path / "secret.txt").write_text("secret")
    fetcher = render.LocalFetcher(inside)

    assert fetcher.fetch((inside / "logo.svg").as_uri()).read().startswith(b"<svg")
    for url in ("http://example.com/x.png", "https://example.com/x.css", (tmp_path / "secret.txt").as_uri(),
                inside.as_uri() + "/../secret.txt", "file:///etc/passwd", "data:text/plain,hi"):
        with pytest.raises(PermissionError):
            fetcher.fetch(url)


@pytest.mark.parametrize("src, ok", [("logo.svg", True), ("http://example.com/x.png", False), ("../secret.svg", False)])
def test_template_urls_are_confined_to_templates_dir(tmp_path, src, ok):
    templates = tmp_path / "templates"
    templates.mkdir()
    shutil.copy(TEMPLATES / render.STYLESHEET, templates)
    (templates / render.TEMPLATE).write_text(f'<p>{{{{ number }}}}</p><img src="{src}">')
    svg = "<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>"
    (templates / "logo.svg").write_text(svg)
    (tmp_path / "secret.svg").write_text(svg)
    if ok:
        assert "INV-000042" in pdf_pages(render.render_pdf(make_invoice(), templates))[0]
    else:
        with pytest.raises(render.RenderError):
            render.render_pdf(make_invoice(), templates)


# ---------------------------------------------------------------- batch


@pytest.mark.parametrize("jobs", [1, 2])
def test_render_invoices_writes_each_pdf_atomically(tmp_path, jobs):
    invoices = [dataclasses.replace(make_invoice(), number=f"INV-00010{i}") for i in range(3)]
    done = []
    paths = render_pool.render_invoices(invoices, tmp_path, TEMPLATES, jobs=jobs, on_done=done.append)

    assert paths == [tmp_path / "invoices" / f"INV-00010{i}.pdf" for i in range(3)]
    for invoice, path in zip(invoices, paths):
        assert invoice.number in pdf_pages(path.read_bytes())[0]
    assert sorted(i.number for i in done) == [i.number for i in invoices]
    assert sorted(p.name for p in (tmp_path / "invoices").iterdir()) == [p.name for p in paths]  # no temp files left


def test_workers_are_replaced_after_their_share_of_invoices(tmp_path, monkeypatch):
    pools = []

    class CountedPool(render_pool.ProcessPoolExecutor):
        def __init__(self, *args, **kwargs):
            pools.append(self)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(render_pool, "ProcessPoolExecutor", CountedPool)
    monkeypatch.setattr(render_pool, "INVOICES_PER_WORKER", 2)
    invoices = [dataclasses.replace(make_invoice(), number=f"INV-00020{i}") for i in range(9)]
    done = []
    paths = render_pool.render_invoices(invoices, tmp_path, TEMPLATES, jobs=2, on_done=done.append)

    assert len(pools) == 3  # 2 workers x 2 invoices per pool, 9 invoices
    assert sorted(i.number for i in done) == [i.number for i in invoices]
    for invoice, path in zip(invoices, paths):
        assert invoice.number in pdf_pages(path.read_bytes())[0]


class CountedPool(render_pool.ProcessPoolExecutor):
    made: list = []

    def __init__(self, *args, **kwargs):
        CountedPool.made.append(self)
        super().__init__(*args, **kwargs)


def various_invoices(count: int, prefix: str) -> list[Invoice]:
    """Invoices that differ in number, currency, language and length, so their PDFs differ."""
    kinds = [dict(), dict(currency="EUR", locale="de_DE"), dict(lines=usd_lines()[:1], subtotal="588.00",
                                                               discount="0", tax="117.60", total="705.60",
                                                               discount_rate="0")]
    return [make_invoice(number=f"{prefix}{i:03d}", **kinds[i % len(kinds)]) for i in range(count)]


def test_a_small_run_renders_in_process_when_this_process_is_warm(tmp_path, monkeypatch):
    monkeypatch.setattr(CountedPool, "made", [])
    monkeypatch.setattr(render_pool, "ProcessPoolExecutor", CountedPool)
    invoices = various_invoices(render_pool.IN_PROCESS_BELOW - 1, "INV-0003")
    render.warm(render_pool.DEFAULT_LOOK)
    paths = render_pool.render_invoices(invoices, tmp_path, TEMPLATES, jobs=2)
    assert CountedPool.made == []
    for invoice, path in zip(invoices, paths):
        assert invoice.number in pdf_pages(path.read_bytes())[0]

    # A process that has not loaded WeasyPrint's fonts for the look forks workers (warm) instead.
    monkeypatch.setattr(render, "_WARM", set())
    render_pool.render_invoices(invoices[:2], tmp_path / "cold", TEMPLATES, jobs=2)
    assert len(CountedPool.made) == 1
    # and one invoice is never worth a worker
    render_pool.render_invoices(invoices[:1], tmp_path / "one", TEMPLATES, jobs=2)
    assert len(CountedPool.made) == 1


def test_the_pool_makes_the_same_pdfs_as_the_in_process_loop(tmp_path, monkeypatch):
    monkeypatch.setattr(CountedPool, "made", [])
    monkeypatch.setattr(render_pool, "ProcessPoolExecutor", CountedPool)
    invoices = various_invoices(render_pool.IN_PROCESS_BELOW + 2, "INV-0004")
    render_pool.start_workers(2)  # as a run does, before reading its input
    pooled = render_pool.render_invoices(invoices, tmp_path / "pool", TEMPLATES, jobs=2)
    assert len(CountedPool.made) == 1
    alone = render_pool.render_invoices(invoices, tmp_path / "alone", TEMPLATES, jobs=1)
    assert len(CountedPool.made) == 1

    for invoice, a, b in zip(invoices, pooled, alone):
        assert a.read_bytes() == b.read_bytes(), invoice.number
        assert invoice.number in pdf_pages(a.read_bytes())[0]
    assert len({p.read_bytes() for p in pooled}) == len(invoices)
