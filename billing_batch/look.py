"""The company's own look: a templates folder whose files replace the default ones one by one,
and a logo. `Look` is the one value passed wherever a templates folder used to be; `preflight`
proves a custom look renders before anything is billed."""
from __future__ import annotations

import base64
import shutil
import traceback
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import jinja2

from billing_batch.errors import problem, Problem
from billing_batch.model import DocType, Draft, Invoice, InvoiceStatus, Line, LineKind, Party, RunType, Settings, Source
from billing_batch.templates import FOLDER as DEFAULT

INVOICE, STYLESHEET = "invoice.html", "invoice.css"
SUBJECT, BODY_TEXT, BODY_HTML = "email_subject.txt", "email_body.txt", "email_body.html"
CUSTOMISABLE = (INVOICE, STYLESHEET, SUBJECT, BODY_TEXT, BODY_HTML)  # the review page is always ours
LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Look:
    """Where the templates come from: each file from `custom` when it is there, else from `default`.
    Frozen and made of paths, so it is hashable: render.py caches its parsed templates by it."""

    custom: Path | None = None
    default: Path = DEFAULT
    logo: Path | None = None

    @classmethod
    def of(cls, value: Look | Path | str) -> Look:
        """A Look, resolved; a bare folder is a complete set of templates on its own."""
        look = value if isinstance(value, Look) else cls(default=Path(value))
        return cls(*(Path(p).resolve() if p is not None else None for p in (look.custom, look.default, look.logo)))

    @property
    def is_default(self) -> bool:
        return self.custom is None and self.logo is None and self.default == DEFAULT.resolve()

    @property
    def folders(self) -> tuple[Path, ...]:
        return (self.custom, self.default) if self.custom else (self.default,)

    @property
    def where(self) -> str:
        """The folders, for a message."""
        return " or ".join(map(str, self.folders))

    def find(self, name: str) -> Path | None:
        """The file used for `name`: the custom one if there is one, else the default."""
        return next((folder / name for folder in self.folders if (folder / name).is_file()), None)

    def loader(self) -> jinja2.BaseLoader:
        return jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder) for folder in self.folders])

    def email_html(self) -> Path | None:
        """The HTML body. A custom text body with no custom HTML body sends text only: otherwise
        customers would read the default HTML body, not the text the company wrote."""
        if self.custom and (self.custom / BODY_TEXT).is_file() and not (self.custom / BODY_HTML).is_file():
            return None
        return self.find(BODY_HTML)

    def logo_data_uri(self) -> str | None:
        if self.logo is None:
            return None
        data = base64.b64encode(self.logo.read_bytes()).decode("ascii")
        return f"data:{LOGO_TYPES[self.logo.suffix.lower()]};base64,{data}"


def logo_trouble(path: Path) -> str | None:
    """Why this file cannot be the logo, or None when it is a PNG, JPEG or SVG file."""
    if path.suffix.lower() not in LOGO_TYPES:
        return f"The logo {path.name} is not a PNG, JPEG or SVG file."
    try:
        head = path.read_bytes()[:4096]
    except FileNotFoundError:
        return f"There is no logo file {path}."
    except OSError as exc:
        return f"The logo file {path} cannot be read ({exc.strerror or exc})."
    kind = path.suffix.lower()
    looks_right = (head.startswith(b"\x89PNG\r\n\x1a\n") if kind == ".png" else
                   head.startswith(b"\xff\xd8\xff") if kind in (".jpg", ".jpeg") else b"<svg" in head)
    return None if looks_right else f"The logo {path.name} is not a {kind[1:].upper()} image inside."


def export(target: Path) -> list[Path]:
    """Copy the default templates one can change into target, to start one's own from.
    Raises FileExistsError, writing nothing, when any of them is there already."""
    target = Path(target)
    there = [target / name for name in CUSTOMISABLE if (target / name).exists()]
    if there:
        raise FileExistsError(", ".join(str(p) for p in there))
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(DEFAULT / name, target / name)) for name in CUSTOMISABLE]


# ---------------------------------------------------------------- preflight
#
# Rendering fails late: after the ledger has issued the numbers. So before, a custom look renders
# sample invoices (one with every kind of line, a discount and a VOID mark; one with no lines, due
# on receipt) to PDF through the same URL fetcher, and their emails; what fails is a Problem.


def preflight(look: Look, settings: Settings, as_of: date) -> list[Problem]:
    """The problems that would stop this look from rendering; [] when it renders."""
    from billing_batch import render
    from billing_batch.post import send

    look = Look.of(look)
    samples = sample_invoices(settings, as_of)
    try:
        for sample in samples:
            render.render_pdf(sample, look)
            send.render_email(look, send.email_view(sample, [sample.replaced_by or ""]))
    except Exception as exc:  # noqa: BLE001 - whatever breaks, the user gets words, not a traceback
        return [template_problem(exc, look)]
    return []


def sample_invoices(settings: Settings, as_of: date) -> list[Invoice]:
    from billing_batch.billing import credit_note_number, invoice_number, seller

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
    """A failed render, told as the file (and line) to correct."""
    from billing_batch.render import RenderError

    file, line = None, None
    if isinstance(exc, jinja2.TemplateSyntaxError):
        file, line = exc.filename, exc.lineno
        what = f"it is not a valid template ({_clause(exc.message)})"
    elif isinstance(exc, jinja2.TemplateNotFound):
        what = f"no template {exc.name} is in {look.where}"
    elif isinstance(exc, jinja2.UndefinedError):
        file, line = _template_frame(exc, look)
        what = f"it uses a value the batch does not provide ({_clause(exc.message)})"
    elif isinstance(exc, RenderError) and exc.url:
        file, line = _mention(look, exc.url)
        what = (f"it refers to {exc.url}, which the invoice may not load: only files inside "
                f"{look.where} (and the logo) are allowed")
    elif isinstance(exc, OSError):
        file = exc.filename
        what = f"it cannot be read ({exc.strerror or exc})"
    else:
        what = f"it cannot be rendered ({_clause(f'{type(exc).__name__}: {exc}')})"
    file = str(file or look.find(INVOICE) or look.folders[0])
    where = f" on line {line}" if line else ""
    noun = "logo" if look.logo and Path(file) == look.logo else "template"
    return problem("BB009", Source(file, "", line), f"The {noun} {Path(file).name}{where} cannot be used: {what}.")


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
