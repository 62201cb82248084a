"""The template trial: before anything is billed, a custom look (templates folder, logo) renders
sample invoices to PDF through the same URL fetcher, and their emails, so that a template that
cannot render is a problem in the input, not a run that stops after the ledger issued the numbers."""
from __future__ import annotations

import logging
import traceback
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import jinja2

from billing_batch.documents import render
from billing_batch.documents.emails import email_view, render_email
from billing_batch.documents.look import INVOICE, STYLESHEET, Look
from billing_batch.engine.plan import credit_note_number, invoice_number, seller
from billing_batch.errors import Problem, problem
from billing_batch.model import (
    DocType,
    Draft,
    Invoice,
    InvoiceStatus,
    Line,
    LineKind,
    Party,
    RunType,
    Settings,
    Source,
)

# The samples: one invoice with every kind of line, a discount and a VOID mark; one with no lines, due
# on receipt; a credit note.


def problems(look: Look, settings: Settings, as_of: date) -> list[Problem]:
    """The problems that would stop this look from rendering; [] when it renders."""
    look = Look.of(look)
    samples = sample_invoices(settings, as_of)
    credit_note = replace(samples[0], number="CN-000001", status=InvoiceStatus.ISSUED, replaced_by=None,
                          doc_type=DocType.CREDIT_NOTE, credits=samples[0].number, credits_date=as_of)
    dropped = Dropped()
    weasyprint_log = logging.getLogger("weasyprint")
    weasyprint_log.addHandler(dropped)
    try:
        for sample in samples:
            render.render_pdf(sample, look)
            dropped.check()
            render_email(look, email_view(sample, [sample.replaced_by or ""]))
        render_email(look, email_view(credit_note, []), DocType.CREDIT_NOTE)
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the user gets words, not a traceback
        return [template_problem(exc, look)]
    finally:
        weasyprint_log.removeHandler(dropped)
    return []


class NotDrawn(Exception):
    """An image WeasyPrint could not load or draw: it leaves it out of the PDF and only logs it."""

    def __init__(self, url: str, reason: str):
        super().__init__(reason)
        self.url = url


class Dropped(logging.Handler):
    """Collects WeasyPrint's logged errors, each an image silently missing from the PDF just made."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def check(self) -> None:
        if self.records:
            record = self.records[0]
            url = record.args[0] if record.args and isinstance(record.args[0], str) else ""
            cause = record.args[1] if len(record.args or ()) > 1 else None
            cause = getattr(cause, "__cause__", None) or cause
            raise NotDrawn(url, _clause(f"{type(cause).__name__}: {cause}") if cause else "")


def sample_invoices(settings: Settings, as_of: date) -> list[Invoice]:
    cur = settings.default_currency
    lines = tuple(Line(kind, f"Sample {kind.value}", "Sample line", as_of.replace(day=1), as_of,
                       Decimal(2), Decimal("10.00"), Decimal("20.00"), prorated=kind is LineKind.RECURRING)
                  for kind in LineKind)
    draft = Draft("SAMPLE", "SAMPLE", "Sample Customer", as_of.replace(day=1), as_of, as_of, cur, lines,
                  Decimal("60.00"), Decimal("6.00"), Decimal("10.80"), Decimal("64.80"), Decimal("0.1"), Decimal("0.2"))
    buyer = Party("Sample Customer", ("1 Sample Street", "Sample Town"), "sample@example.com", "SAMPLE-TAX-ID")
    full = Invoice(invoice_number(settings, 1), draft, as_of, as_of + timedelta(days=30), RunType.AUTOMATIC,
                   seller(settings), buyer, settings.locale, InvoiceStatus.REPLACED, invoice_number(settings, 2))
    empty = replace(full, draft=replace(draft, lines=(), subtotal=Decimal(0), discount=Decimal(0),
                                        discount_rate=Decimal(0), tax=Decimal(0), total=Decimal(0)),
                    due_date=as_of, status=InvoiceStatus.ISSUED, replaced_by=None)
    credit_note = replace(full, number=credit_note_number(settings, 1), due_date=as_of, status=InvoiceStatus.ISSUED,
                          replaced_by=None, doc_type=DocType.CREDIT_NOTE, credits=invoice_number(settings, 1),
                          credits_date=as_of, reason="Sample reason")
    return [full, empty, credit_note]


def template_problem(exc: Exception, look: Look) -> Problem:
    """A failed render, told as the user's own file (and line) to correct: never a default template
    inside the package, which the tests prove."""
    file, line, url = None, None, getattr(exc, "url", None)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        file, line = exc.filename, exc.lineno
        what = f"it is not a valid template ({_clause(exc.message)})"
    elif isinstance(exc, jinja2.TemplateNotFound):
        what = f"no template {exc.name} is in {look.custom or look.where}"
    elif isinstance(exc, jinja2.UndefinedError):
        file, line = _template_frame(exc, look)
        what = f"it uses a value the batch does not provide ({_clause(exc.message)})"
    elif isinstance(exc, NotDrawn):
        file, line = _mention(look, url)
        what = "the invoice cannot draw it, and would leave it out" + (f" ({exc})" if str(exc) else "")
    elif isinstance(exc, render.RenderError) and url:
        file, line = _mention(look, url)
        what = f"it refers to {url}, which the invoice may not load"
    elif isinstance(exc, OSError):
        file = exc.filename
        what = f"it cannot be read ({exc.strerror or exc})"
    else:
        what = f"it cannot be rendered ({_clause(f'{type(exc).__name__}: {exc}')})"
    file = _culprit(look, file, url)
    where = f" on line {line}" if line else ""
    if look.logo and Path(file) == look.logo:
        if isinstance(exc, render.RenderError) and url:
            what += ": a logo may not load other files or web addresses"
        found = problem("BB009", Source(file, "", line), f"The logo {Path(file).name}{where} cannot be used: {what}.")
        return replace(found, fix="Save the logo again as a PNG or JPEG file, or as an SVG without a DOCTYPE that "
                                  "loads nothing else, or clear the Logo setting.")
    if isinstance(exc, render.RenderError) and url:
        what += f": only files inside {look.custom or look.where} are allowed"
    return problem("BB009", Source(file, "", line), f"The template {Path(file).name}{where} cannot be used: {what}.")


def _culprit(look: Look, file: str | None, url: str | None) -> str:
    """The user's file to name. A file of theirs found by the error is it; else (none found, or a
    default template, whose only part of theirs is the logo) the logo when there are no templates of
    theirs or the failed URL can be the logo's or come from an SVG logo, else their templates."""
    if file and (look.custom and Path(file).is_relative_to(look.custom) or look.logo and Path(file) == look.logo):
        return str(file)
    svg = look.logo is not None and look.logo.suffix.lower() == ".svg"
    if look.logo and (look.custom is None or url and (svg or url == look.logo.as_uri())):
        return str(look.logo)
    if look.custom:
        return str(look.custom / INVOICE if (look.custom / INVOICE).is_file() else look.custom)
    return str(file or look.find(INVOICE) or look.folders[0])


def _clause(text: str | None) -> str:
    return " ".join(str(text).split()).rstrip(".")


def _template_frame(exc: BaseException, look: Look) -> tuple[str | None, int | None]:
    """Jinja rewrites tracebacks so that template code shows as frames of the template file."""
    found: tuple[str | None, int | None] = (None, None)
    for frame in traceback.extract_tb(exc.__traceback__):
        if any(Path(frame.filename).parent == folder for folder in look.folders):
            found = (frame.filename, frame.lineno)
    return found


def _mention(look: Look, url: str) -> tuple[str | None, int | None]:
    """The template file (or SVG logo) and line that write this URL, if one writes it as it was fetched."""
    svg = [look.logo] if look.logo and look.logo.suffix.lower() == ".svg" else []
    for path in [look.find(INVOICE), look.find(STYLESHEET), *svg]:
        if path is None:
            continue
        for number, text in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if url in text:
                return str(path), number
    return None, None
