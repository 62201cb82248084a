"""Invoice → HTML → PDF with Jinja2 and WeasyPrint.

The view (invoice_view) gives the template plain formatted strings. The Jinja environment, the parsed
CSS and the font configuration are built once per process and per Look (templates and logo:
`_resources`), because building them costs more than a render. Batches of invoices: render_pool.
"""
from __future__ import annotations

import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import url2pathname

import jinja2

from billing_batch import i18n
from billing_batch.documents.einvoice import einvoice_of, einvoice_xml, factur_x_pdf
from billing_batch.documents.invoice_view import invoice_view
from billing_batch.documents.look import INVOICE as TEMPLATE
from billing_batch.documents.look import STYLESHEET, Look
from billing_batch.files import write_atomic
from billing_batch.model import EInvoice, Invoice

if TYPE_CHECKING:
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration
    from weasyprint.urls import FatalURLFetchingError

# WeasyPrint (about 1 s to import) is imported where a PDF is made, not with this module: with --jobs 2
# the batch's own process never renders, and its workers have it from their forkserver (render_warm).

Templates = Look | Path  # a bare folder is a complete set of templates


class RenderError(Exception):
    """The invoice could not be rendered (e.g. the template asked for a forbidden URL)."""

    def __init__(self, message: str, url: str | None = None):
        super().__init__(message)
        self.url = url


class RefusedURL(PermissionError):
    def __init__(self, message: str, url: str):
        super().__init__(message)
        self.url = url


# ---------------------------------------------------------------- resources


def __getattr__(name: str):
    if name == "LocalFetcher":  # made with WeasyPrint's base class, on first use
        return _local_fetcher()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def _local_fetcher() -> type:
    from weasyprint.urls import URLFetcher, URLFetcherResponse

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

    return LocalFetcher


@dataclass(frozen=True)
class _Resources:
    template: jinja2.Template
    css: CSS
    font_config: FontConfiguration
    fetcher: "LocalFetcher"  # noqa: F821 - made by _local_fetcher
    base_url: str
    logo: str | None  # the logo's file: URL, for the template


@lru_cache(maxsize=4)
def _resources(look: Look) -> _Resources:
    from weasyprint import CSS
    from weasyprint.text.fonts import FontConfiguration

    env = i18n.install(jinja2.Environment(
        loader=look.loader(),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        auto_reload=False,  # the batch never edits templates mid-run: skip a stat per render
        trim_blocks=True,
        lstrip_blocks=True,
    ))
    fetcher = _local_fetcher()(*look.folders, files=[look.logo] if look.logo else [])
    font_config = FontConfiguration()
    stylesheet = look.find(STYLESHEET)
    if stylesheet is None:
        raise FileNotFoundError(2, f"No {STYLESHEET} in {fetcher.allowed}", str(look.folders[0] / STYLESHEET))
    css = CSS(filename=str(stylesheet), url_fetcher=fetcher, font_config=font_config)
    template = env.get_template(TEMPLATE)
    # Relative URLs in the template are found beside the invoice.html in use.
    base_url = Path(template.filename).parent.as_uri() + "/"
    return _Resources(template, css, font_config, fetcher, base_url, look.logo.as_uri() if look.logo else None)


_WARM: set[Look] = set()  # the looks this process has rendered a PDF with: its fonts are loaded


def _render_error(what: str, exc: FatalURLFetchingError) -> RenderError:
    cause = exc.__cause__ or exc
    return RenderError(f"{what}: {cause}", getattr(cause, "url", None))


def _get(templates: Templates) -> _Resources:
    from weasyprint.urls import FatalURLFetchingError

    try:
        return _resources(Look.of(templates))
    except FatalURLFetchingError as exc:  # from an @import in the stylesheet
        raise _render_error("the stylesheet", exc) from exc


def warm(look: Look) -> None:
    """Build the look's resources and render a page, so the fonts are loaded before the first invoice
    (about 0.2 s); once per process and look (a worker inherits what its forkserver warmed)."""
    from weasyprint import HTML

    if look in _WARM:
        return
    res = _get(look)
    HTML(string="<p>0</p>", base_url=res.base_url, url_fetcher=res.fetcher).write_pdf(
        stylesheets=[res.css], font_config=res.font_config)
    _WARM.add(look)


# ---------------------------------------------------------------- rendering


def _page(invoice: Invoice, res: _Resources) -> str:
    return res.template.render({**invoice_view(invoice), "logo": res.logo})


def invoice_html(invoice: Invoice, templates: Templates) -> str:
    return _page(invoice, _get(templates))


def render_pdf(invoice: Invoice, templates: Templates, xml: bytes | None = None) -> bytes:
    """The invoice's PDF; for a buyer on Factur-X a PDF/A-3b carrying xml (einvoice.einvoice_xml's CII)."""
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError

    res = _get(templates)
    html = _page(invoice, res)
    res.fetcher.refused.clear()
    factur_x = einvoice_of(invoice) is EInvoice.FACTUR_X
    try:
        document = HTML(string=html, base_url=res.base_url, url_fetcher=res.fetcher)
        pdf = document.write_pdf(stylesheets=[res.css], font_config=res.font_config,
                                 **({"pdf_variant": "pdf/a-3b"} if factur_x else {}))
    except FatalURLFetchingError as exc:  # a BaseException in WeasyPrint: make it an ordinary error
        raise _render_error(f"invoice {invoice.number}", exc) from exc
    if res.fetcher.refused:  # e.g. an image inside an SVG: refused, then dropped without a word
        url = res.fetcher.refused[0]
        raise RenderError(f"invoice {invoice.number}: refused to fetch {url!r}: "
                          f"not a file inside {res.fetcher.allowed}", url)
    _WARM.add(Look.of(templates))
    return factur_x_pdf(pdf, xml or einvoice_xml(invoice)) if factur_x else pdf


def render_to_file(invoice: Invoice, target: Path, templates: Look) -> None:
    """The PDF, and beside it in OUTPUT/einvoices/ the e-invoice XML of a buyer who takes one (written
    first: a PDF in place means its invoice's files are done)."""
    write_atomic(target, render_pdf(invoice, templates, write_einvoice(invoice, target)))


def write_einvoice(invoice: Invoice, pdf_target: Path) -> bytes | None:
    """Write the invoice's e-invoice XML, if its buyer takes one, into the output folder pdf_target is in."""
    if not invoice.einvoice_name:
        return None
    xml = einvoice_xml(invoice)
    write_atomic(pdf_target.parent.parent / invoice.einvoice_name, xml)
    return xml
