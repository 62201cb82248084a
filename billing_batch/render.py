"""Invoice → HTML → PDF with Jinja2, Babel and WeasyPrint.

`invoice_view` turns an Invoice into plain formatted strings; the template only loops over them.
The Jinja environment, the parsed CSS and the font configuration are built once per process
and per Look (templates and logo: `_resources`), because building them costs more than a render.
"""
from __future__ import annotations

import gc
import ctypes
import itertools
import mimetypes
import multiprocessing
import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import lru_cache, partial
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jinja2
from markupsafe import Markup
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

from billing_batch import i18n
from billing_batch.files import write_atomic
from billing_batch.look import INVOICE as TEMPLATE, STYLESHEET, Look
from billing_batch.model import Invoice, InvoiceStatus, Party
from billing_batch.tax import CATEGORIES, DEFAULT_REASONS, REASON_SEPARATOR, STANDARD

Templates = Look | Path  # a bare folder is a complete set of templates

# Every text the invoice prints, in English. invoice_view translates each for the invoice's locale
# (i18n.labels); `pybabel extract` finds them here (i18n.extract_labels). To add one: add it here and
# translate it (docs/translations.md).
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
    "vat": "VAT",
    "vat_id": "VAT ID: {vat_id}",
    "vat_breakdown": "VAT breakdown",
    "vat_category": "VAT category",
    "vat_rate": "Rate",
    "taxable": "Taxable amount",
    "total": "Total",
    "payment_terms": "Payment terms",
    "page": "Page {page} of {pages}",
    "terms_net": "Net {days} days: please pay by {due}, quoting invoice {number}.",
    "terms_receipt": "Due on receipt: please pay by {due}, quoting invoice {number}.",
    "bank_details": "Bank details",
    "void": "VOID",
    "void_replaced": "VOID — replaced by {number}",
    "no_lines": "No charges this period.",
    "usage_details": "Usage details: {name}",
    "credit_note": "Credit note",
    "credit_note_date": "Credit note date",
    "credits_invoice": "Credits invoice {number} of {date}",
    "reason": "Reason: {reason}",
    "credit_terms": "Nothing to pay: this credit note reduces what is due under invoice {number}; "
                    "an amount already paid is refunded.",
    "credit_terms_account": "Nothing to pay: this amount is credited to your account.",
    "total_credited": "Total credited",
    "credited_by": "Credited in full by {numbers}",
    "part_credited_by": "Partly credited by {numbers}",
    "replaced_by": "Replaced by invoice {number}",
    "replaces": "Replaces invoice {number}",
}


class RenderError(Exception):
    """The invoice could not be rendered (e.g. the template asked for a forbidden URL)."""

    def __init__(self, message: str, url: str | None = None):
        super().__init__(message)
        self.url = url


class RefusedURL(PermissionError):
    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url


# ---------------------------------------------------------------- view model


def invoice_view(invoice: Invoice) -> dict:
    """Everything the template prints, as already formatted strings (pure function)."""
    draft = invoice.draft
    locale = Locale.parse(invoice.locale.replace("-", "_"))
    labels = i18n.labels(LABELS, invoice.locale)
    translate = i18n.gettext_for(invoice.locale)
    cur = draft.currency

    def money(amount: Decimal) -> str:
        return format_currency(amount, cur, locale=locale)

    def day(d: date) -> str:
        return format_date(d, format="medium", locale=locale)

    def period(start: date, end: date) -> str:
        return day(start) if start == end else f"{day(start)} – {day(end)}"

    def percent(rate: Decimal) -> str:
        return format_percent(rate, locale=locale, decimal_quantization=False)

    def credit(amount: Decimal) -> Decimal:
        """A credit note is shown as a credit: its stored amounts, which are what it credits, negated
        (a zero stays 0.00, not -0.00)."""
        return -amount if invoice.is_credit_note and amount else amount

    if invoice.is_credit_note:
        labels["invoice"] = labels["credit_note"]  # its title, in every template that prints labels.invoice

    lines = [
        {
            "product": line.product,
            "description": line.description,
            "prorated": line.prorated,
            "period": period(line.period_start, line.period_end),
            # blank for a credit of an amount off a line, which credits none of its units
            "quantity": format_decimal(credit(line.quantity), locale=locale, decimal_quantization=False)
            if line.quantity or not invoice.is_credit_note else "",
            # At least the currency's digits, but never round away a price like 0.0125.
            "unit_price": format_currency(line.unit_price, cur, locale=locale, decimal_quantization=False),
            "amount": money(credit(line.amount)),
            "vat": f"{line.tax_category} {percent(line.tax_rate)}",
        }
        for line in draft.lines
    ]

    totals = [{"label": labels["subtotal"], "value": money(credit(draft.subtotal)), "total": False}]
    if draft.discount:
        label = labels["discount_rate"].format(rate=percent(draft.discount_rate)) if draft.discount_rate else labels["discount"]
        # Shown as a deduction whatever sign convention the pricing uses (on a credit note, of the credit).
        totals.append({"label": label, "value": money(-credit(abs(draft.discount))), "total": False})
    groups = draft.vat_groups
    # One standard-rate group is what an invoice always showed: "Tax (21%)"; else the breakdown tells.
    plain = len(groups) <= 1 and all(g.category == STANDARD for g in groups)
    tax_label = labels["tax"].format(rate=percent(groups[0].rate if groups else draft.tax_rate)) if plain else labels["vat"]
    totals.append({"label": tax_label, "value": money(credit(draft.tax)), "total": False})
    totals.append({"label": labels["total_credited" if invoice.is_credit_note else "total"],
                   "value": money(credit(draft.total)), "total": True})

    days = (invoice.due_date - invoice.invoice_date).days
    terms = labels["terms_net"] if days > 0 else labels["terms_receipt"]
    if invoice.is_credit_note:
        terms = labels["credit_terms"] if invoice.credits else labels["credit_terms_account"]

    void = ""
    if invoice.status is InvoiceStatus.REPLACED:
        void = labels["void_replaced"].format(number=invoice.replaced_by) if invoice.replaced_by else labels["void"]
    corrects = {"credits": "", "reason": ""}
    if invoice.is_credit_note and invoice.credits:
        corrects["credits"] = labels["credits_invoice"].format(number=invoice.credits, date=day(invoice.credits_date))
    if invoice.reason:  # a reason the batch gave is translated; one typed by a person is printed as typed
        corrects["reason"] = labels["reason"].format(reason=i18n.gettext_for(invoice.locale)(invoice.reason))
    # How this invoice was corrected, or what it corrects: the documents linked to it.
    notes = []
    if invoice.credited_by:
        by = labels["credited_by" if invoice.status is InvoiceStatus.CREDITED else "part_credited_by"]
        notes.append(by.format(numbers=", ".join(invoice.credited_by)))
    if invoice.replaced_by and invoice.status is InvoiceStatus.CREDITED:
        notes.append(labels["replaced_by"].format(number=invoice.replaced_by))
    if invoice.replaces:
        notes.append(labels["replaces"].format(number=invoice.replaces))

    return {
        "labels": labels,
        "lang": locale.language,
        "locale": str(locale),  # the templates' _() and {% trans %} translate for it
        "page_footer": _css_content(labels["page"], page="counter(page)", pages="counter(pages)"),
        "title": f"{labels['invoice']} {invoice.number}",
        "created": invoice.invoice_date.isoformat(),
        "number": invoice.number,
        "void": void,
        # The watermark fills the page's diagonal: 120pt holds VOID; a longer word (STORNIERT) gets smaller.
        "void_mark_size": f"{min(120, 700 // max(1, len(labels['void'])))}pt",
        "credit": corrects,
        "status_notes": notes,
        "seller": _party(invoice.seller, labels, with_email=True),
        "buyer": _party(invoice.buyer, labels, with_email=False),
        "meta": [
            (labels["credit_note_date" if invoice.is_credit_note else "invoice_date"], day(invoice.invoice_date)),
            *([] if invoice.is_credit_note else [(labels["due_date"], day(invoice.due_date))]),
            (labels["period"], period(draft.cycle_start, draft.cycle_end)),
            (labels["customer"], draft.customer_id),
            (labels["contract"], draft.contract_id),
            (labels["currency"], cur),
        ],
        "lines": lines,
        "usage_note": labels["usage_details"].format(name=Path(invoice.usage_name).name) if invoice.usage_name else "",
        "totals": totals,
        # shown when it says more than the tax line, or to a customer with a VAT ID (a business that
        # books the VAT it is charged)
        "vat_groups": [] if plain and not invoice.buyer.vat_id else [
            {"category": f"{g.category} – {translate(CATEGORIES.get(g.category, g.category))}", "rate": percent(g.rate),
             "taxable": money(g.taxable), "tax": money(g.tax)} for g in groups],
        "legends": list(dict.fromkeys(f"{g.category} – {_legend(g.exemption_reason, translate)}"
                                      for g in groups if g.exemption_reason)),
        "terms": terms.format(days=days, due=day(invoice.due_date), number=invoice.credits or invoice.number),
        "bank_lines": _split_lines([invoice.seller.bank_details]),
    }


_DEFAULT_REASONS = frozenset(DEFAULT_REASONS.values())


def _legend(reason: str, translate: Callable[[str], str]) -> str:
    """A group's legend in the invoice's language: the default texts translated, a Tax Exemption
    Reason typed in the workbook as typed (the ledger keeps the default texts in English)."""
    return REASON_SEPARATOR.join(translate(part) if part in _DEFAULT_REASONS else part
                                 for part in reason.split(REASON_SEPARATOR))


def _split_lines(texts: Sequence[str]) -> list[str]:
    # Spreadsheet cells may hold line breaks; the template prints one line per item.
    return [part.strip() for text in texts for part in text.splitlines() if part.strip()]


def _css_content(text: str, **counters: str) -> Markup:
    """A CSS `content` value: the text's {placeholders} become the given CSS counters, the rest quoted
    strings (the page footer is CSS, so it is translated here rather than in invoice.css)."""
    parts = re.split(r"\{(\w+)\}", text)
    quoted = ['"' + part.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ") + '"'
              if i % 2 == 0 else counters[part] for i, part in enumerate(parts)]
    return Markup(" ".join(q for q in quoted if q != '""'))


def _party(party: Party, labels: dict[str, str], with_email: bool) -> dict:
    details = _split_lines(party.address_lines)
    if with_email and party.email:
        details.append(party.email)
    if party.vat_id:
        details.append(labels["vat_id"].format(vat_id=party.vat_id))
    if party.tax_id:
        details.append(labels["tax_id"].format(tax_id=party.tax_id))
    return {"name": party.name, "lines": details}


# ---------------------------------------------------------------- resources


class LocalFetcher(URLFetcher):
    """Serves file: URLs inside the given folders, and the given files, and refuses everything else
    (no network, no data: URLs, no other files)."""

    def __init__(self, *roots: Path, files: Sequence[Path] = ()):
        # fail_on_errors: a refused URL aborts the render instead of silently dropping an image.
        super().__init__(fail_on_errors=True)
        self.roots = tuple(Path(root).resolve() for root in roots)
        self.files = frozenset(Path(file).resolve() for file in files)
        self.allowed = " or ".join(map(str, self.roots))
        self.refused: list[str] = []  # WeasyPrint's SVG code drops a failed image silently: render_pdf looks here

    def fetch(self, url: str, headers: dict | None = None) -> URLFetcherResponse:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            self.refused.append(url)
            raise RefusedURL(f"refused to fetch {url!r}: only files inside {self.allowed} are allowed", url)
        path = Path(url2pathname(parts.path)).resolve()  # resolve() also defeats ../ and symlinks out
        inside = path in self.files or any(path.is_relative_to(root) for root in self.roots)
        if not inside or not path.is_file():
            self.refused.append(url)
            raise RefusedURL(f"refused to fetch {url!r}: not a file inside {self.allowed}", url)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return URLFetcherResponse(path.as_uri(), path.read_bytes(), {"Content-Type": content_type})


@dataclass(frozen=True)
class _Resources:
    template: jinja2.Template
    css: CSS
    font_config: FontConfiguration
    fetcher: LocalFetcher
    base_url: str
    logo: str | None  # the logo's file: URL, for the template


@lru_cache(maxsize=4)
def _resources(look: Look) -> _Resources:
    env = i18n.install(jinja2.Environment(
        loader=look.loader(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # the batch never edits templates mid-run: skip a stat per render
        trim_blocks=True,
        lstrip_blocks=True,
    ))
    fetcher = LocalFetcher(*look.folders, files=[look.logo] if look.logo else [])
    font_config = FontConfiguration()
    stylesheet = look.find(STYLESHEET)
    if stylesheet is None:
        raise FileNotFoundError(2, f"No {STYLESHEET} in {fetcher.allowed}", str(look.folders[0] / STYLESHEET))
    css = CSS(filename=str(stylesheet), url_fetcher=fetcher, font_config=font_config)
    template = env.get_template(TEMPLATE)
    # Relative URLs in the template are found beside the invoice.html in use.
    base_url = Path(template.filename).parent.as_uri() + "/"
    return _Resources(template, css, font_config, fetcher, base_url, look.logo.as_uri() if look.logo else None)


def _render_error(what: str, exc: FatalURLFetchingError) -> RenderError:
    cause = exc.__cause__ or exc
    return RenderError(f"{what}: {cause}", getattr(cause, "url", None))


def _get(templates: Templates) -> _Resources:
    try:
        return _resources(Look.of(templates))
    except FatalURLFetchingError as exc:  # from an @import in the stylesheet
        raise _render_error("the stylesheet", exc) from exc


# ---------------------------------------------------------------- rendering


def _page(invoice: Invoice, res: _Resources) -> str:
    return res.template.render({**invoice_view(invoice), "logo": res.logo})


def invoice_html(invoice: Invoice, templates: Templates) -> str:
    return _page(invoice, _get(templates))


def render_pdf(invoice: Invoice, templates: Templates) -> bytes:
    res = _get(templates)
    html = _page(invoice, res)
    res.fetcher.refused.clear()
    try:
        document = HTML(string=html, base_url=res.base_url, url_fetcher=res.fetcher)
        pdf = document.write_pdf(stylesheets=[res.css], font_config=res.font_config)
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint: make it an ordinary error
        raise _render_error(f"invoice {invoice.number}", exc) from exc
    if res.fetcher.refused:  # e.g. an image inside an SVG: refused, then dropped without a word
        url = res.fetcher.refused[0]
        raise RenderError(f"invoice {invoice.number}: refused to fetch {url!r}: "
                          f"not a file inside {res.fetcher.allowed}", url)
    return pdf


def _render_to_file(invoice: Invoice, target: Path, templates: Look) -> None:
    write_atomic(target, render_pdf(invoice, templates))


# ---------------------------------------------------------------- batches: in-process, processes or Dask
#
# What a batch costs besides WeasyPrint, and what is done about it:
# * Starting a worker (spawn, imports, fonts, the parsed CSS) costs about 0.6 s: once per worker,
#   by the pool initializer, never per invoice.
# * Each task carries a chunk of a few invoices, so the pickling and the queue round trips are paid
#   per chunk; chunks stay small enough (at most CHUNK_MAX) that the last ones balance across workers.
# * Workers are replaced after about INVOICES_PER_WORKER invoices, which bounds their memory and
#   costs a worker start (0.6 s) per 1,500 invoices, under 0.5 %.
# * At most IN_FLIGHT_PER_WORKER chunks per worker are submitted at a time: waiting is O(workers)
#   per completion, not O(invoices) (concurrent.futures.wait over 10,000 futures, once per
#   completion, is quadratic), and the parent holds no queue of 10,000 pickled invoices.

CHUNK_MAX = 8
IN_FLIGHT_PER_WORKER = 3
INVOICES_PER_WORKER = 1500  # then the pool is replaced (max_tasks_per_child can deadlock on 3.11: cpython#115634)
EXECUTORS = ("process", "dask")


def chunk_size(count: int, workers: int) -> int:
    """About 16 chunks per worker, 1 to CHUNK_MAX invoices each."""
    return max(1, min(CHUNK_MAX, count // (workers * 16)))


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _render_chunk_to_files(pairs: Sequence[tuple[Invoice, Path]], look: Look) -> int:
    for invoice, target in pairs:
        _render_to_file(invoice, target, look)
    return len(pairs)


def _die_with_parent() -> None:
    """A worker must not outlive a run that was killed: it would hold the run's files and pipes."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before we asked
            os._exit(1)


def _init_worker(look: Look) -> None:
    _die_with_parent()
    res = _get(look)
    # Load the fonts now rather than in the first invoice (about 0.1 s).
    HTML(string="<p>0</p>", base_url=res.base_url, url_fetcher=res.fetcher).write_pdf(
        stylesheets=[res.css], font_config=res.font_config)


def render_invoices(
    invoices: Sequence[Invoice],
    out_dir: Path,
    look: Templates,
    jobs: int = 1,
    on_done: Callable[[Invoice], None] | None = None,
    executor: str = "process",
    scheduler: object = None,
) -> list[Path]:
    """Render each invoice to out_dir / invoice.pdf_name (e.g. out_dir/invoices/INV-000001.pdf), atomically
    (write to a temp file in the same folder, then os.replace). Returns the paths in input order.
    on_done is called in the calling process once per finished invoice, after its PDF is in place
    (for a progress bar, and for recording progress).

    executor="process": jobs > 1 uses a ProcessPoolExecutor of min(jobs, chunks) spawned workers whose
    initializer builds the reusable state once per worker; jobs == 1 renders in-process.
    executor="dask": the invoices go to the Dask cluster whose scheduler is at `scheduler` (an address
    such as "tcp://10.0.0.5:8786", or a distributed.Client); see _render_dask."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    look = Look.of(look)
    targets = [Path(out_dir) / invoice.pdf_name for invoice in invoices]
    for folder in {t.parent for t in targets}:
        folder.mkdir(parents=True, exist_ok=True)
    if not invoices:
        return targets
    if executor == "dask":
        _render_dask(invoices, targets, look, on_done, scheduler)
        return targets

    workers = min(jobs, len(invoices))
    if workers <= 1:
        # The caller's heap (the validated input: a million usage rows on a large run) would be walked
        # by every full garbage collection that WeasyPrint's allocations trigger: set it aside.
        # Measured: 0.089 -> 0.075 s CPU per invoice beside a million-object heap.
        gc.freeze()
        try:
            for invoice, target in zip(invoices, targets):
                _render_to_file(invoice, target, look)
                if on_done:
                    on_done(invoice)
        finally:
            gc.unfreeze()
        return targets

    chunks = _chunks(list(zip(invoices, targets)), chunk_size(len(invoices), workers))
    workers = min(workers, len(chunks))
    # spawn: each worker builds its own fontconfig/Pango state instead of inheriting the parent's via fork.
    context = multiprocessing.get_context("spawn")
    per_pool = max(1, workers * INVOICES_PER_WORKER // len(chunks[0]))
    for start in range(0, len(chunks), per_pool):
        # A fresh pool now and then: a worker's memory grows with what it has rendered
        # (about 60 kB an invoice, inside WeasyPrint), to 380 MB after 5,000 invoices.
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(look,)) as pool:
            try:
                submit = partial(pool.submit, _render_chunk_to_files, look=look)
                for chunk in _bounded(submit, chunks[start:start + per_pool], workers * IN_FLIGHT_PER_WORKER):
                    if on_done:
                        for invoice, _ in chunk:
                            on_done(invoice)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return targets


def _bounded(submit: Callable[[Sequence], Future], chunks: Sequence[Sequence], limit: int) -> Iterator[Sequence]:
    """Submit the chunks with at most `limit` in flight; yield each chunk once its task has succeeded
    (re-raising the first task error), in completion order."""
    pending: dict[Future, Sequence] = {}
    queue = iter(chunks)
    for chunk in itertools.islice(queue, limit):
        pending[submit(chunk)] = chunk
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            chunk = pending.pop(future)
            future.result()  # re-raises the worker's error
            for nxt in itertools.islice(queue, 1):
                pending[submit(nxt)] = nxt
            yield chunk


# ---------------------------------------------------------------- Dask
#
# Workers return the PDF bytes and this process (the driver) writes them: the output folder
# need not be shared with the cluster, and files appear, atomically, only where the ledger is.
# A PDF is 15-40 kB, so 10,000 invoices move about 250 MB over the network, a few seconds on
# any LAN: small beside the render time. The look (templates folders and logo) travels with the
# tasks (its files are read once here and scattered to the workers once; a worker unpacks them
# into a private temporary folder), so workers need the billing_batch package (pip install
# "billing-batch[dask]") of the same version, and nothing else of this machine.


def _render_dask(invoices: Sequence[Invoice], targets: Sequence[Path], look: Look,
                 on_done: Callable[[Invoice], None] | None, scheduler: object) -> None:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RenderError('--executor dask needs Dask: pip install "billing-batch[dask]"') from exc
    own_client = not isinstance(scheduler, Client)
    if own_client and not scheduler:
        raise RenderError("--executor dask needs --scheduler ADDRESS (such as tcp://10.0.0.5:8786)")
    client = Client(scheduler, set_as_default=False) if own_client else scheduler
    try:
        workers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        bundle = client.scatter(_template_bundle(look), broadcast=True)
        pairs = list(zip(invoices, targets))
        chunks = _chunks(pairs, chunk_size(len(pairs), workers))

        def submit(chunk: Sequence[tuple[Invoice, Path]]) -> Future:
            return client.submit(_dask_render_chunk, [inv for inv, _ in chunk], bundle, pure=False)

        for chunk, pdfs in _bounded_dask(client, submit, chunks, workers * IN_FLIGHT_PER_WORKER):
            for (invoice, target), pdf in zip(chunk, pdfs):
                write_atomic(target, pdf)
                if on_done:
                    on_done(invoice)
    finally:
        if own_client:
            client.close()


def _bounded_dask(client, submit, chunks: Sequence[Sequence], limit: int) -> Iterator[tuple[Sequence, list[bytes]]]:
    """As _bounded, for Dask futures: yield (chunk, its PDFs) in completion order."""
    from distributed import as_completed

    queue = iter(chunks)
    pending = {}
    for chunk in itertools.islice(queue, limit):
        pending[submit(chunk)] = chunk
    completed = as_completed(list(pending), loop=client.loop)
    for future in completed:
        chunk = pending.pop(future)
        pdfs = future.result()  # re-raises the worker's error
        for nxt in itertools.islice(queue, 1):
            new = submit(nxt)
            pending[new] = nxt
            completed.add(new)
        yield chunk, pdfs


Bundle = tuple[tuple[str, str, bytes], ...]  # (custom, default or logo; file name; its bytes)


def _template_bundle(look: Look) -> Bundle:
    """The look's files (the folders' files, not subfolders, and the logo) as one value."""
    parts = [(role, p.name, p.read_bytes()) for role, folder in (("custom", look.custom), ("default", look.default))
             if folder for p in sorted(folder.iterdir()) if p.is_file()]
    return tuple(parts + ([("logo", look.logo.name, look.logo.read_bytes())] if look.logo else []))


_BUNDLES: dict[int, Look] = {}


def _unpack_bundle(bundle: Bundle) -> Look:
    """On a worker: the bundle's files in a private temporary folder, unpacked once per content."""
    key = hash(bundle)
    look = _BUNDLES.get(key)
    if look is None:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="billing-batch-templates-"))
        for role, name, data in bundle:
            (folder / role).mkdir(exist_ok=True)
            (folder / role / name).write_bytes(data)
        roles = {role: folder / role / name for role, name, _ in bundle}
        look = Look.of(Look(folder / "custom" if "custom" in roles else None, folder / "default", roles.get("logo")))
        _BUNDLES[key] = look
    return look


def _dask_render_chunk(invoices: Sequence[Invoice], bundle: Bundle) -> list[bytes]:
    look = _unpack_bundle(bundle)
    return [render_pdf(invoice, look) for invoice in invoices]
