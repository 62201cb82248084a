"""How the review shows numbers, money, periods and durations: in the workbook's Locale (Settings'),
with Babel. Every amount of the page and of its notes goes through money(), in that one locale:
the review is the finance team's, not the customer's, so an invoice in German does not make its row
German."""
from __future__ import annotations

import math
import re
import unicodedata
from datetime import date
from decimal import Decimal

from babel.numbers import format_currency, format_decimal, is_currency

from billing_batch.i18n import babel_locale


def money(locale_name: str, currency: str):
    loc = babel_locale(locale_name)
    return lambda amount: format_currency(amount, currency, locale=loc)


_PLAIN_AMOUNT = re.compile(r"(?<![\w.,])(-?\d+(?:\.\d+)?) ([A-Z]{3})\b")


def amounts_in(text: str, locale_name: str) -> str:
    """text with each plain amount and currency code ("1250.00 EUR", as other parts of the program
    write them into their messages) as money() shows it, so that a note reads in the review's locale."""
    def shown(m: re.Match) -> str:
        amount, code = m.groups()
        return money(locale_name, code)(Decimal(amount)) if is_currency(code) else m.group(0)

    return _PLAIN_AMOUNT.sub(shown, text)


def number(locale_name: str, value: int | Decimal) -> str:
    """A count or a quantity, as the locale writes it, every digit kept."""
    return format_decimal(value, locale=babel_locale(locale_name), decimal_quantization=False)


def period(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()} – {end.isoformat()}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def percent(fraction: Decimal, locale_name: str = "en_US") -> str:
    return f"{number(locale_name, (fraction * 100).normalize())}%"


# The widest glyphs of DejaVu Sans Bold (what Linux browsers fall back to, and wider than Segoe UI or
# San Francisco), in em, by kind of character: an estimate that errs on the wide side.
_NARROW = set(" ,.:;'|!ilIjJ/\\-()[]ftr")
_WIDE = set("WMmw@%")


def width_em(text: str) -> float:
    """How wide text is at most, in em of a bold sans-serif font: so that a column sized from it
    holds every invoice number and total whole, with no browser measuring them."""
    def one(c: str) -> float:
        if c in _WIDE:
            return 1.1
        if c in _NARROW:
            return 0.5
        if c.isascii():
            return 0.86 if c.isupper() or not c.isalnum() else 0.72
        return 1.0 if unicodedata.east_asian_width(c) in "WF" else 0.9

    return math.ceil(sum(one(c) for c in text) * 10) / 10
