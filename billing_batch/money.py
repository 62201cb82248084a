"""Money: Decimal from a cell, and the one rounding function."""
from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from babel.numbers import get_currency_precision, list_currencies

KNOWN_CURRENCIES = frozenset(list_currencies())


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of a currency: 0.01 for USD, 1 for JPY."""
    return Decimal(1).scaleb(-get_currency_precision(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """The only place money is rounded: to the currency's minor unit, half-up."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal], unit: Decimal) -> list[Decimal]:
    """Share total (a whole number of units) between the weights in proportion, each share a whole
    number of units, the leftover units going to the largest remainders (ties: the first). The
    shares add up to total exactly."""
    if not weights:
        return []
    units = int(total / unit)
    whole = sum(weights, Decimal(0))
    if units == 0:
        return [Decimal(0) * unit for _ in weights]
    if whole == 0:
        return [total] + [Decimal(0) * unit for _ in weights[1:]]
    exact = [Fraction(units) * Fraction(w) / Fraction(whole) for w in weights]
    shares = [e.numerator // e.denominator for e in exact]
    left = units - sum(shares)
    for i in sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))[:left]:
        shares[i] += 1
    return [Decimal(s) * unit for s in shares]
