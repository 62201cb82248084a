"""Typed cells of an xlsx workbook: text is always stored as text, never run as a formula; money is a
number shown with its currency, so that a column of amounts still sums."""
from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from functools import lru_cache

import xlsxwriter
from babel.core import get_global
from babel.numbers import get_currency_precision, get_currency_symbol

from billing_batch.i18n import babel_locale


class CellWriter:
    """Writes one typed value; text is always stored as text, never run as a formula. locale places
    the currency's symbol, as the locale writes money (€1,234.50 or 1.234,50 €)."""

    def __init__(self, book: xlsxwriter.Workbook, locale: str = "en_US"):
        self.book = book
        self.locale = locale
        self.formats: dict[str, object] = {}

    def fmt(self, num_format: str, wrap: bool = False):
        key = f"{num_format}\n{wrap}"
        if key not in self.formats:
            self.formats[key] = self.book.add_format({"num_format": num_format, "valign": "top", "text_wrap": wrap})
        return self.formats[key]

    def header(self, ws, columns: list[tuple[str, int, str]]) -> None:
        """The header row of a table sheet: (title, width, kind) per column; the titles wrap, their row
        as tall as the longest takes (a spreadsheet does not make a row taller for wrapped text by
        itself, nor LibreOffice on opening the file). Frozen, and the sheet set up to print."""
        style = self.book.add_format({"bold": True, "bg_color": "#E7ECF3", "bottom": 1, "text_wrap": True,
                                      "valign": "top"})
        ws.set_row(0, ROW_HEIGHT * max(text_lines(title, width, letters=1.0) for title, width, _ in columns))
        for col, (title, width, _) in enumerate(columns):
            ws.set_column(col, col, width)
            ws.write_string(0, col, title, style)
        ws.freeze_panes(1, 0)
        print_setup(ws, self.locale)

    def write(self, ws, row: int, col: int, kind: str, value) -> None:
        if value is None or value == "":
            return
        write: Callable[..., object] = getattr(self, f"_{kind}")
        write(ws, row, col, value)

    def _text(self, ws, row, col, value) -> None:
        ws.write_string(row, col, str(value), self.fmt("@"))

    def _wrap(self, ws, row, col, value) -> None:
        # long text (a message, the notes) wraps in its column rather than widen the printed page
        ws.write_string(row, col, str(value), self.fmt("@", wrap=True))

    def _date(self, ws, row, col, value: date) -> None:
        ws.write_datetime(row, col, value, self.fmt("yyyy-mm-dd"))

    def _number(self, ws, row, col, value) -> None:
        ws.write_number(row, col, float(value), self.fmt("General"))

    def _price(self, ws, row, col, value: Decimal) -> None:
        ws.write_number(row, col, float(value), self.fmt("#,##0.00######"))

    def _money(self, ws, row, col, value: tuple[Decimal, str]) -> None:
        amount, currency = value
        ws.write_number(row, col, float(amount), self.fmt(money_format(self.locale, currency)))

    def _link(self, ws, row, col, value: tuple[str, str]) -> None:
        # A HYPERLINK formula, not a stored link: a sheet may hold at most 65,530 of those.
        text, target = value
        ws.write_formula(row, col, f'=HYPERLINK("{target}","{text}")', self.fmt("@"), text)


ROW_HEIGHT = 15  # points: a line of the default font (Calibri 11)


def text_lines(text: str, width: int, letters: float = 1.3) -> int:
    """How many lines text takes wrapped in a column width characters wide. A column's width counts
    digits, and a sentence's letters are narrower on average: about 1.3 of them to a digit (a bold
    heading's, 1)."""
    return sum(len(textwrap.wrap(part, max(1, int(width * letters) - 1))) or 1 for part in text.split("\n"))


_BIDI_MARKS = str.maketrans("", "", "\u200e\u200f\u061c")


@lru_cache(maxsize=256)
def money_format(locale: str, currency: str) -> str:
    """The spreadsheet number format of an amount in currency, the symbol where the locale's currency
    pattern (Babel's) puts it, with the currency's minor unit: '"€"#,##0.00;"-€"#,##0.00' in en_US,
    '#,##0.00" €";"-"#,##0.00" €"' in de_DE, '"¥"#,##0;"-¥"#,##0' for JPY. The separators themselves are
    the reader's spreadsheet's, as for every number in a workbook."""
    loc = babel_locale(locale)
    pattern = loc.currency_formats["standard"]
    symbol = get_currency_symbol(currency, locale=loc)
    digits = get_currency_precision(currency)
    body = "#,##0" + ("." + "0" * digits if digits else "")

    def side(text: str, before: bool) -> str:
        text = text.translate(_BIDI_MARKS).replace("\xa0", " ")
        if "¤" in text and symbol[-1 if before else 0].isalpha():
            # a code such as CHF stands apart from the digits (CLDR's currency spacing), as Babel prints it
            at_digits = text.endswith("¤") if before else text.startswith("¤")
            text = text.replace("¤", symbol + " " if before else " " + symbol) if at_digits else text.replace("¤", symbol)
        else:
            text = text.replace("¤", symbol)
        return '"' + text.replace('"', "") + '"' if text else ""

    sections = [side(pattern.prefix[i], True) + body + side(pattern.suffix[i], False) for i in (0, 1)]
    return ";".join(sections)


# CLDR's supplemental paperSize data: the territories that print on US Letter; the rest of the world on A4.
LETTER_TERRITORIES = frozenset(("BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"))
A4, LETTER = 9, 1  # the spreadsheet's paper codes


def paper(locale: str) -> int:
    """The paper of the locale's territory (for a bare language, its likeliest: en is en_US)."""
    loc = babel_locale(locale)
    territory = loc.territory
    if not territory:
        likely = get_global("likely_subtags").get(loc.language, "")
        territory = next((part for part in likely.split("_")[1:] if part.isupper() and len(part) == 2), "")
    return LETTER if territory in LETTER_TERRITORIES else A4


def print_setup(ws, locale: str) -> None:
    """Print a sheet as a table reads on paper: landscape, as wide as the page (as many pages tall as
    it takes), the header row on top of every page, gridlines, the paper of the locale, and the sheet's
    name and page number at the foot."""
    ws.set_landscape()
    ws.set_paper(paper(locale))
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(0)
    ws.hide_gridlines(0)
    ws.set_margins(left=0.4, right=0.4, top=0.5, bottom=0.6)
    ws.set_footer("&L&A&R&P / &N", {"margin": 0.25})  # the sheet's name; page n of N
