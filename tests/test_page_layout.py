"""Every page the program prints, read back from its PDF: no text outside the page's printable area and
no text over other text. One workbook bills every kind of document (invoice, credit notes made by the
run and by hand, adjustment lines, a change-log invoice, a replaced invoice with its VOID watermark,
summarised usage, reverse charge, a long name and address, 40 lines) for a customer in each language,
through the command line; pdfminer.six gives each glyph's box (pypdf gives positions, not widths)."""
from __future__ import annotations

import contextlib
import io
import re
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from pdfminer.converter import PDFPageAggregator
from pdfminer.layout import LTChar, LTContainer
from pdfminer.pdfinterp import PDFPageInterpreter, PDFResourceManager
from pdfminer.pdfpage import PDFPage
from rich.console import Console
from test_einvoice import HEADERS_EINV, SELLER
from weasyprint import HTML
from workbooks import contract, customer, settings, subscription, usage, write_book

from billing_batch import cli, i18n, templates
from billing_batch.cli import terminal
from billing_batch.documents.invoice_view import LABELS

LANGUAGES = {"de": "de_DE", "en": "en_GB", "es": "es_ES", "fr": "fr_FR", "it": "it_IT", "nl": "nl_NL"}
JANUARY, FEBRUARY = date(2026, 1, 1), date(2026, 2, 1)
ENDS_IN_JANUARY = {"End Date": date(2026, 1, 31)}  # billed once: February's run renders only what it must
ADVANCE = {"Billing Policy": "Advance", "Billing Offset (Days)": 0, "Currency": "EUR"}
LONG_NAME = "Internationale Gesellschaft für Datenverarbeitung, Logistik und Informationssysteme mbH & Co. KG"
LONG_ADDRESS = ("Gebäude C, 4. Obergeschoss, Raum 4.17 (Eingang über den Innenhof)\n"
                "z. Hd. Kreditorenbuchhaltung / Accounts Payable Department\n"
                "Industriepark Höchst, Tor Ost, Brüningstraße 50")
HEADERS_HERE = {"Customers": HEADERS_EINV["Customers"] + ["Language"],
                "Contracts": HEADERS_EINV["Contracts"] + ["Usage Lines"]}
# Per kind of document: its customer's cells and its contract's (each language has one of each).
PARTIES = {
    "INV": ({}, ENDS_IN_JANUARY),
    "VOID": ({}, ENDS_IN_JANUARY),
    "USE": ({}, {**ENDS_IN_JANUARY, "Usage Lines": "Summary"}),
    "MANY": ({}, ENDS_IN_JANUARY),
    "RC": ({"Name": "Belliard Data Services SRL", "Address": "Rue Belliard 40", "City": "Bruxelles",
            "Postal Code": "1040", "Country": "BE", "Tax Rate": 0.21, "VAT ID": "BE0477472701", "Tax Category": "AE"},
           {**ENDS_IN_JANUARY, "Purchase Order": "PO-2026-17"}),
    "LONG": ({"Name": LONG_NAME, "Address": LONG_ADDRESS, "City": "Frankfurt am Main", "Postal Code": "65929",
              "VAT ID": "DE136695976"}, {**ENDS_IN_JANUARY, "Purchase Order": "PO-2026-000017-FRANKFURT-HOECHST"}),
    "ADJ": ({}, {}),
    "NEG": ({}, {}),
    "Q": ({}, {"Billing Frequency": "Quarterly"}),
}
MM = 72 / 25.4  # PDF points in a millimetre
SLACK = 0.5  # points: what rounding in the PDF's numbers may move a box; far less than any real overflow


# ---------------------------------------------------------------- the documents


def book(path: Path, stage: int) -> Path:
    """Per language, one customer and contract per kind of document. Stage 2 changes January after it
    was billed: seats added mid-cycle (ADJ: adjustment lines; Q: quarterly, billed by --adjust as a
    change log) and a quantity lowered below what was billed (NEG: the run makes a credit note)."""
    customers, contracts, subs, rows = [], [], [], []
    for lang, locale in LANGUAGES.items():
        for kind, (customer_cells, contract_cells) in PARTIES.items():
            cid = f"{lang.upper()}-{kind}"
            customers.append(customer(cid, **{"Name": f"Kunde {cid} GmbH", "Country": "DE", "Tax Rate": 0.19,
                                              "Language": locale, **customer_cells}))
            contracts.append(contract(cid, cid, **ADVANCE, **contract_cells))
        p = lang.upper()
        subs += [subscription(f"S-{p}-INV", f"{p}-INV", 3, 100, Product="Platform"),
                 subscription(f"S-{p}-VOID", f"{p}-VOID", 2, 250, Product="Platform"),
                 subscription(f"S-{p}-USE", f"{p}-USE", 1, 50, Product="Base fee"),
                 subscription(f"S-{p}-RC", f"{p}-RC", 2, 500, Product="Hosting"),
                 subscription(f"S-{p}-LONG", f"{p}-LONG", 12, 1234.5, Product="Enterprise platform licence",
                              Description="Named users of the enterprise platform, annual commitment billed monthly"),
                 subscription(f"S-{p}-ADJ", f"{p}-ADJ", 10, 10, Product="Seats"),
                 subscription(f"S-{p}-NEG", f"{p}-NEG", 10 if stage == 1 else 1, 10, Product="Licences"),
                 subscription(f"S-{p}-Q", f"{p}-Q", 2, 30, Product="Support")]
        subs += [subscription(f"S-{p}-MANY-{n:02}", f"{p}-MANY", n, round(1.5 * n + 0.25, 2), Product=f"Module {n:02}",
                              Description=f"Add-on module {n} with its named users",
                              **({"Start Date": date(2026, 1, 1 + n % 20)} if n % 3 == 0 else {}))
                 for n in range(1, 41)]
        if stage >= 2:
            subs += [subscription(f"S-{p}-ADJ2", f"{p}-ADJ", 5, 10, Product="Added seats",
                                  **{"Start Date": date(2026, 1, 15)}),
                     subscription(f"S-{p}-Q2", f"{p}-Q", 1, 30, Product="Extra support",
                                  **{"Start Date": date(2026, 1, 15)})]
        rows += [usage(f"U-{p}-{n}", f"{p}-USE", date(2026, 1, 1 + n % 28), 1 + n % 5, 0.25 * (1 + n % 4),
                       Product="API calls", Description=("reads", "writes", "deletes")[n % 3]) for n in range(60)]
    return write_book(path, {
        "Customers": customers, "Contracts": contracts, "Subscriptions": subs, "Usage": rows,
        "Settings": settings(**{**SELLER, "Tax ID": "143/123/45678", "Usage Lines": "Summary",
                                "Bank Details": "Commerzbank Berlin\nIBAN DE89 3704 0044 0532 0130 00\nBIC COBADEFFXXX"}),
    }, headers=HEADERS_HERE)


def call(*args: str) -> str:
    out = io.StringIO()
    saved, terminal.console = terminal.console, Console(file=out, highlight=False, width=250)
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(list(args))
    finally:
        terminal.console = saved
    assert code == 0, (args, out.getvalue())
    return out.getvalue()


@dataclass(frozen=True)
class Document:
    path: Path
    number: str
    locale: str
    kinds: frozenset[str]


KINDS = ("invoice", "credit note by the run", "credit note by hand", "adjustment lines", "change log", "VOID",
         "usage summary", "reverse charge", "long name and address", "40 lines")
# What the ledger says each document is; the long name is what the workbook gave its customer.
KIND_SQL = """
SELECT i.number, i.locale, i.customer_name,
       i.doc_type = 'Invoice' AND i.status = 'Issued' AND i.change_log = 0,
       i.doc_type = 'Credit Note' AND i.credits IS NULL,
       i.doc_type = 'Credit Note' AND i.credits IS NOT NULL,
       i.change_log = 0 AND EXISTS (SELECT 1 FROM invoice_lines l WHERE l.number = i.number AND l.kind = 'Adjustment'),
       i.change_log = 1,
       i.status = 'Replaced',
       EXISTS (SELECT 1 FROM invoice_lines l WHERE l.number = i.number AND l.kind = 'Usage'),
       EXISTS (SELECT 1 FROM invoice_vat_groups g WHERE g.number = i.number AND g.category = 'AE'),
       (SELECT count(*) FROM invoice_lines l WHERE l.number = i.number) >= 40
FROM invoices i"""


@pytest.fixture(scope="module")
def documents(tmp_path_factory) -> list[Document]:
    root = tmp_path_factory.mktemp("layout")
    out = root / "out"

    def io_(stage: int, as_of: date) -> list[str]:
        return ["--input", str(root / f"stage{stage}.xlsx"), "--output", str(out), "--as-of", as_of.isoformat(),
                "--jobs", "2"]

    for stage in (1, 2):
        book(root / f"stage{stage}.xlsx", stage)
    call("run", *io_(1, JANUARY))
    call("generate", *(a for lang in LANGUAGES for a in ("--contract", f"{lang.upper()}-Q")), "--adjust",
         "--yes", *io_(2, FEBRUARY))
    call("run", *io_(2, FEBRUARY))
    with sqlite3.connect(out / "ledger.sqlite") as db:
        for lang in LANGUAGES:
            (number,) = db.execute("SELECT number FROM invoices WHERE contract_id = ?", (f"{lang.upper()}-RC",)).fetchone()
            call("credit", "--invoice", number, "--reason", "Service outage in January", *io_(2, FEBRUARY))
        call("generate", *(a for lang in LANGUAGES for a in ("--contract", f"{lang.upper()}-VOID")),
             "--cycle", JANUARY.isoformat(), "--replace", "--yes", *io_(2, FEBRUARY))
        rows = db.execute(KIND_SQL).fetchall()
    return [Document(out / "invoices" / f"{number}.pdf", number, locale,
                     frozenset(kind for kind, yes in zip(KINDS, (*flags, name == LONG_NAME)) if yes))
            for number, locale, name, *flags in rows]


def test_every_kind_of_document_in_every_language(documents):
    made = {(d.locale, kind) for d in documents if d.path.is_file() for kind in d.kinds}
    wanted = {(locale, kind) for locale in LANGUAGES.values() for kind in KINDS}
    assert made >= wanted, sorted(wanted - made)


# ---------------------------------------------------------------- reading the pages back


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlaps(self, other: Box) -> bool:
        return (min(self.x1, other.x1) - max(self.x0, other.x0) > SLACK
                and min(self.y1, other.y1) - max(self.y0, other.y0) > SLACK)

    def inside(self, area: Box) -> bool:
        return (self.x0 >= area.x0 - SLACK and self.x1 <= area.x1 + SLACK
                and self.y0 >= area.y0 - SLACK and self.y1 <= area.y1 + SLACK)


@dataclass
class Run:
    """The glyphs one text-showing operator (Tj, TJ) drew: a piece of text of one text box, on one
    line, set by the font's advances and kerning. Two runs that overlap are text printed over text."""
    text: str
    box: Box


@dataclass
class Page:
    box: Box  # the page (MediaBox), in points from its bottom-left corner
    runs: list[Run]
    rotated: Run | None  # the glyphs drawn at an angle: only the VOID watermark is


class _Glyphs(PDFPageAggregator):
    """pdfminer.six's glyphs as drawn (no grouping into paragraphs), each tagged with the operator that
    drew it: glyphs of one operator may overlap by their kerning ("To", "Va"), which is no overlap."""
    operator = 0

    def render_string(self, *args, **kwargs) -> None:
        self.operator += 1
        super().render_string(*args, **kwargs)

    def render_char(self, *args, **kwargs) -> float:
        advance = super().render_char(*args, **kwargs)
        self.cur_item._objs[-1].operator = self.operator
        return advance


def read_pages(path: Path) -> list[Page]:
    """Each glyph's box as pdfminer.six computes it: its advance width by the font size, from the font's
    descent (so an accent above a capital does not count as overlapping the line above)."""
    manager = PDFResourceManager()
    device = _Glyphs(manager, laparams=None)
    interpreter = PDFPageInterpreter(manager, device)
    pages = []
    with path.open("rb") as f:
        for pdf_page in PDFPage.get_pages(f):
            interpreter.process_page(pdf_page)
            layout = device.get_result()
            glyphs = [g for g in _glyphs(layout) if g.get_text().strip()]  # a space prints nothing
            rotated = [g for g in glyphs if abs(g.matrix[1]) > 1e-3 or abs(g.matrix[2]) > 1e-3]
            runs: dict[int, list[LTChar]] = {}
            for g in glyphs:
                if g not in rotated:
                    runs.setdefault(g.operator, []).append(g)
            mark = _run(rotated) if rotated else None
            pages.append(Page(Box(*layout.bbox), [_run(g) for g in runs.values()], mark))
    return pages


def _run(glyphs: list[LTChar]) -> Run:
    return Run("".join(g.get_text() for g in glyphs), Box(min(g.x0 for g in glyphs), min(g.y0 for g in glyphs),
                                                          max(g.x1 for g in glyphs), max(g.y1 for g in glyphs)))


def _glyphs(container: LTContainer):
    for item in container:
        if isinstance(item, LTChar):
            yield item
        elif isinstance(item, LTContainer):  # a form XObject (LTFigure) may hold text too
            yield from _glyphs(item)


def page_margins() -> tuple[float, float, float, float]:
    """The @page margins of the invoice.css the documents were rendered with (top, right, bottom, left),
    in points."""
    css = (templates.FOLDER / "invoice.css").read_text(encoding="utf-8")
    rule = re.search(r"@page\s*\{[^{}]*?\bmargin:\s*([^;]+);", css)
    assert rule, "invoice.css has no @page margin"
    units = {"mm": MM, "cm": 10 * MM, "in": 72.0, "pt": 1.0, "px": 0.75}
    values = [float(v) * units[u] for v, u in re.findall(r"([\d.]+)(mm|cm|in|pt|px)", rule[1])]
    sides = {1: (0, 0, 0, 0), 2: (0, 1, 0, 1), 3: (0, 1, 2, 1), 4: (0, 1, 2, 3)}[len(values)]  # CSS shorthand
    top, right, bottom, left = (values[i] for i in sides)
    return top, right, bottom, left


def outside(page: Page, margins: tuple[float, float, float, float], footer: set[str]) -> list[str]:
    """Text outside the printable area: the body's outside the page less its margins; the page footer
    (its margin boxes, known by their text, such as "Page 1 of 2") outside the bottom margin between
    the side margins. A glyph cut at the page's edge is outside both."""
    top, right, bottom, left = margins
    body = Box(page.box.x0 + left, page.box.y0 + bottom, page.box.x1 - right, page.box.y1 - top)
    margin_boxes = Box(body.x0, page.box.y0, body.x1, body.y0)
    wrong = [f"{run.text!r} at {_mm(run.box, page.box)} is outside the printable area {_mm(body, page.box)}"
             for run in page.runs
             if not run.box.inside(body) and not (_bare(run.text) in footer and run.box.inside(margin_boxes))]
    if page.rotated and not page.rotated.box.inside(page.box):
        wrong.append(f"{page.rotated.text!r} (at an angle) at {_mm(page.rotated.box, page.box)} is cut by the page's edge")
    return wrong


def overlapping(page: Page) -> list[str]:
    """Runs whose boxes intersect (by more than SLACK each way): text printed over other text."""
    wrong = []
    runs = sorted(page.runs, key=lambda r: r.box.y0)
    for i, run in enumerate(runs):
        for other in runs[i + 1:]:
            if other.box.y0 >= run.box.y1:
                break
            if run.box.overlaps(other.box):
                wrong.append(f"{run.text!r} at {_mm(run.box, page.box)} overlaps {other.text!r} at {_mm(other.box, page.box)}")
    return wrong


@pytest.fixture(scope="module")
def pages(documents) -> dict[str, list[Page]]:
    return {d.number: read_pages(d.path) for d in documents if d.path.is_file()}


def each_page(documents: list[Document], pages: dict[str, list[Page]], locale: str | None = None):
    for document in documents:
        if document.number in pages and locale in (None, document.locale):
            doc_pages = pages[document.number]
            kinds = ", ".join(sorted(document.kinds)) or "other"
            for n, page in enumerate(doc_pages, 1):
                name = f"{document.number} ({document.locale}; {kinds}) page {n} of {len(doc_pages)}"
                yield name, document, n, len(doc_pages), page


# ---------------------------------------------------------------- the checks


@pytest.mark.parametrize("locale", LANGUAGES.values())
def test_no_text_outside_the_printable_area(documents, pages, locale):
    margins, label = page_margins(), i18n.labels(LABELS, locale)["page"]
    wrong = [f"{name}: {problem}" for name, document, n, count, page in each_page(documents, pages, locale)
             for problem in outside(page, margins, {_bare(document.number), _bare(label.format(page=n, pages=count))})]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("locale", LANGUAGES.values())
def test_no_text_over_other_text(documents, pages, locale):
    wrong = [f"{name}: {problem}" for name, *_, page in each_page(documents, pages, locale)
             for problem in overlapping(page)]
    assert not wrong, "\n".join(wrong)


def test_only_the_void_watermark_is_drawn_at_an_angle(documents, pages):
    """What the overlap check leaves out is the VOID watermark, drawn over the text on purpose: the
    glyphs at an angle, which must spell VOID in the document's language, on every page of a replaced
    invoice and on no other page."""
    wrong = []
    for name, document, *_, page in each_page(documents, pages):
        void = i18n.labels(LABELS, document.locale)["void"] if "VOID" in document.kinds else ""
        if (page.rotated.text if page.rotated else "") != void:
            wrong.append(f"{name}: at an angle {page.rotated!r}, not {void!r}")
    assert not wrong, "\n".join(wrong)


def test_the_checks_see_text_off_the_page_and_over_text_and_not_kerning_or_accents(tmp_path):
    """The checks themselves, on a page made to break them: text over text and past the margin are
    found; kerned pairs (To, AV), accents and a watermark at an angle are not taken for overlaps."""
    path = tmp_path / "broken.pdf"
    HTML(string="""<style>@page { size: A4; margin: 14mm } body { font: 10pt "DejaVu Sans"; line-height: 1.2 }
      .a, .b { position: absolute; top: 40mm; left: 0 } .b { top: 41mm; left: 6mm }
      .mark { position: fixed; top: 100mm; left: 20mm; font-size: 60pt; transform: rotate(-30deg) }</style>
      <p>To AVAST Tÿ WAVE Été Ångström Überprüfung</p><p>ÉCHÉANCE Ça Ñandú</p>
      <p class="a">Overlapping</p><p class="b">over this</p>
      <p style="white-space: nowrap; margin-left: 160mm">past the margin</p>
      <div class="mark">VOID</div>""").write_pdf(path)
    (page,) = read_pages(path)
    assert page.rotated and page.rotated.text == "VOID"
    (over,) = overlapping(page)
    assert "Overlapping" in over and "overthis" in over
    (off,) = outside(page, (14 * MM,) * 4, set())
    assert "margin" in off


def _bare(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _mm(box: Box, page: Box) -> str:
    """A box as a reader measures it: millimetres from the page's top-left corner."""
    return (f"({(box.x0 - page.x0) / MM:.1f}, {(page.y1 - box.y1) / MM:.1f})–"
            f"({(box.x1 - page.x0) / MM:.1f}, {(page.y1 - box.y0) / MM:.1f}) mm")
