"""Invoice → HTML → PDF with Jinja2, Babel and WeasyPrint.

`invoice_view` turns an Invoice into plain formatted strings; the template only loops over them.
The Jinja environment, the parsed CSS and the font configuration are built once per process
and per templates folder (`_resources`), because building them costs more than a render.
"""
from __future__ import annotations

import contextlib
import mimetypes
import multiprocessing
import os
import secrets
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from .model import Invoice, InvoiceStatus, Party

TEMPLATE = "invoice.html"
STYLESHEET = "invoice.css"

LABELS = {
    "invoice": "Invoice",
    "tax_id": "Tax ID: {tax_id}",
    "bill_to": "Bill to",
    "invoice_date": "Invoice date",
    "due_date": "Due date",
    "period": "Billing period",
    "customer": "Customer no.",
    "contract": "Contract",
    "currency": "Currency",
    "product": "Product",
    "description": "Description",
    "line_period": "Period",
    "quantity": "Qty",
    "unit_price": "Unit price",
    "amount": "Amount",
    "prorated": "(prorated)",
    "subtotal": "Subtotal",
    "discount": "Discount",
    "discount_rate": "Discount ({rate})",
    "tax": "Tax ({rate})",
    "total": "Total",
    "payment_terms": "Payment terms",
    "terms_net": "Net {days} days: please pay by {due}, quoting invoice {number}.",
    "terms_receipt": "Due on receipt: please pay by {due}, quoting invoice {number}.",
    "bank_details": "Bank details",
    "void": "VOID",
    "void_replaced": "VOID — replaced by {number}",
    "no_lines": "No charges this period.",
}


class RenderError(Exception):
    """The invoice could not be rendered (e.g. the template asked for a forbidden URL)."""


# ---------------------------------------------------------------- view model


def invoice_view(invoice: Invoice) -> dict:
    """Everything the template prints, as already formatted strings (pure function)."""
    draft = invoice.draft
    locale = Locale.parse(invoice.locale.replace("-", "_"))
    cur = draft.currency

    def money(amount: Decimal) -> str:
        return format_currency(amount, cur, locale=locale)

    def day(d: date) -> str:
        return format_date(d, format="medium", locale=locale)

    def period(start: date, end: date) -> str:
        return day(start) if start == end else f"{day(start)} – {day(end)}"

    def percent(rate: Decimal) -> str:
        return format_percent(rate, locale=locale, decimal_quantization=False)

    lines = [
        {
            "product": line.product,
            "description": line.description,
            "prorated": line.prorated,
            "period": period(line.period_start, line.period_end),
            "quantity": format_decimal(line.quantity, locale=locale, decimal_quantization=False),
            # At least the currency's digits, but never round away a price like 0.0125.
            "unit_price": format_currency(line.unit_price, cur, locale=locale, decimal_quantization=False),
            "amount": money(line.amount),
        }
        for line in draft.lines
    ]

    totals = [{"label": LABELS["subtotal"], "value": money(draft.subtotal), "total": False}]
    if draft.discount:
        label = LABELS["discount_rate"].format(rate=percent(draft.discount_rate)) if draft.discount_rate else LABELS["discount"]
        # Shown as a deduction whatever sign convention the pricing uses.
        totals.append({"label": label, "value": money(-abs(draft.discount)), "total": False})
    totals.append({"label": LABELS["tax"].format(rate=percent(draft.tax_rate)), "value": money(draft.tax), "total": False})
    totals.append({"label": LABELS["total"], "value": money(draft.total), "total": True})

    days = (invoice.due_date - invoice.invoice_date).days
    terms = LABELS["terms_net"] if days > 0 else LABELS["terms_receipt"]

    void = ""
    if invoice.status is InvoiceStatus.REPLACED:
        void = LABELS["void_replaced"].format(number=invoice.replaced_by) if invoice.replaced_by else LABELS["void"]

    return {
        "labels": LABELS,
        "lang": locale.language,
        "title": f"{LABELS['invoice']} {invoice.number}",
        "created": invoice.invoice_date.isoformat(),
        "number": invoice.number,
        "void": void,
        "seller": _party(invoice.seller, with_email=True),
        "buyer": _party(invoice.buyer, with_email=False),
        "meta": [
            (LABELS["invoice_date"], day(invoice.invoice_date)),
            (LABELS["due_date"], day(invoice.due_date)),
            (LABELS["period"], period(draft.cycle_start, draft.cycle_end)),
            (LABELS["customer"], draft.customer_id),
            (LABELS["contract"], draft.contract_id),
            (LABELS["currency"], cur),
        ],
        "lines": lines,
        "totals": totals,
        "terms": terms.format(days=days, due=day(invoice.due_date), number=invoice.number),
        "bank_lines": _split_lines([invoice.seller.bank_details]),
    }


def _split_lines(texts: Sequence[str]) -> list[str]:
    # Spreadsheet cells may hold line breaks; the template prints one line per item.
    return [part.strip() for text in texts for part in text.splitlines() if part.strip()]


def _party(party: Party, with_email: bool) -> dict:
    details = _split_lines(party.address_lines)
    if with_email and party.email:
        details.append(party.email)
    if party.tax_id:
        details.append(LABELS["tax_id"].format(tax_id=party.tax_id))
    return {"name": party.name, "lines": details}


# ---------------------------------------------------------------- resources


class LocalFetcher(URLFetcher):
    """Serves file: URLs inside one folder and refuses everything else (no network, no other files)."""

    def __init__(self, root: Path):
        # fail_on_errors: a refused URL aborts the render instead of silently dropping an image.
        super().__init__(fail_on_errors=True)
        self.root = Path(root).resolve()

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            raise PermissionError(f"refused to fetch {url!r}: only files inside {self.root} are allowed")
        path = Path(url2pathname(parts.path)).resolve()  # resolve() also defeats ../ and symlinks out
        if not path.is_relative_to(self.root) or not path.is_file():
            raise PermissionError(f"refused to fetch {url!r}: not a file inside {self.root}")
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})


@dataclass(frozen=True)
class _Resources:
    template: jinja2.Template
    css: CSS
    font_config: FontConfiguration
    fetcher: LocalFetcher
    base_url: str


@lru_cache(maxsize=4)
def _resources(templates_dir: Path) -> _Resources:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # the batch never edits templates mid-run: skip a stat per render
        trim_blocks=True,
        lstrip_blocks=True,
    )
    fetcher = LocalFetcher(templates_dir)
    font_config = FontConfiguration()
    css = CSS(filename=str(templates_dir / STYLESHEET), url_fetcher=fetcher, font_config=font_config)
    return _Resources(env.get_template(TEMPLATE), css, font_config, fetcher, templates_dir.as_uri() + "/")


def _get(templates_dir: Path) -> _Resources:
    return _resources(Path(templates_dir).resolve())


# ---------------------------------------------------------------- rendering


def invoice_html(invoice: Invoice, templates_dir: Path) -> str:
    return _get(templates_dir).template.render(invoice_view(invoice))


def render_pdf(invoice: Invoice, templates_dir: Path) -> bytes:
    res = _get(templates_dir)
    html = res.template.render(invoice_view(invoice))
    try:
        document = HTML(string=html, base_url=res.base_url, url_fetcher=res.fetcher)
        return document.write_pdf(stylesheets=[res.css], font_config=res.font_config)
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint: make it an ordinary error
        raise RenderError(f"invoice {invoice.number}: {exc.__cause__ or exc}") from exc


def _write_atomic(target: Path, data: bytes) -> None:
    # Unique name in the same folder so os.replace is atomic; os.open honours the umask (mkstemp forces 0600).
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _render_to_file(invoice: Invoice, target: Path, templates_dir: Path) -> None:
    _write_atomic(target, render_pdf(invoice, templates_dir))


def _init_worker(templates_dir: Path) -> None:
    _get(templates_dir)


def render_invoices(
    invoices: Sequence[Invoice],
    out_dir: Path,
    templates_dir: Path,
    jobs: int = 1,
    on_done: Callable[[Invoice], None] | None = None,
) -> list[Path]:
    """Render each invoice to out_dir / invoice.pdf_name (e.g. out_dir/invoices/INV-000001.pdf), atomically
    (write to a temp file in the same folder, then os.replace). jobs > 1 uses a ProcessPoolExecutor whose
    initializer builds the reusable state once per worker; jobs == 1 renders in-process. Returns the paths in input order.
    on_done is called in the parent process once per finished invoice (for a progress bar)."""
    templates_dir = Path(templates_dir).resolve()
    targets = [Path(out_dir) / invoice.pdf_name for invoice in invoices]
    for folder in {t.parent for t in targets}:
        folder.mkdir(parents=True, exist_ok=True)

    workers = min(jobs, len(invoices))
    if workers <= 1:
        for invoice, target in zip(invoices, targets):
            _render_to_file(invoice, target, templates_dir)
            if on_done:
                on_done(invoice)
        return targets

    # spawn: each worker builds its own fontconfig/Pango state instead of inheriting the parent's via fork.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(templates_dir,)) as pool:
        pending = {pool.submit(_render_to_file, inv, target, templates_dir): inv for inv, target in zip(invoices, targets)}
        try:
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    invoice = pending.pop(future)
                    future.result()  # re-raises the worker's error
                    if on_done:
                        on_done(invoice)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return targets
