"""Money: Decimal from a cell, and the one rounding function."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import get_currency_precision, list_currencies

KNOWN_CURRENCIES = frozenset(list_currencies())


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of a currency: 0.01 for USD, 1 for JPY."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The only place money is rounded: to the currency's minor unit, half-up."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)
