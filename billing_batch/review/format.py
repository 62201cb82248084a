"""How the review shows numbers, money, periods and durations: in the workbook's Locale, with Babel."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel import Locale
from babel.numbers import format_currency


@lru_cache(maxsize=32)
def babel_locale(name: str) -> Locale:
    try:
        return Locale.parse((name or "en_US").replace("-", "_"))
    except (ValueError, TypeError):
        return Locale.parse("en_US")


def money(locale_name: str, currency: str):
    loc = babel_locale(locale_name)
    return lambda amount: format_currency(amount, currency, locale=loc)


def period(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()} – {end.isoformat()}"


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f}%"
