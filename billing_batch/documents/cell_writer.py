"""Typed cells of an xlsx workbook: text is always stored as text, never run as a formula."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import xlsxwriter
from babel.numbers import get_currency_precision


class CellWriter:
    """Writes one typed value; text is always stored as text, never run as a formula."""

    def __init__(self, book: xlsxwriter.Workbook):
        self.book = book
        self.formats: dict[str, object] = {}

    def fmt(self, num_format: str):
        if num_format not in self.formats:
            self.formats[num_format] = self.book.add_format({"num_format": num_format, "valign": "top"})
        return self.formats[num_format]

    def write(self, ws, row: int, col: int, kind: str, value) -> None:
        if value is None or value == "":
            return
        write: Callable[..., object] = getattr(self, f"_{kind}")
        write(ws, row, col, value)

    def _text(self, ws, row, col, value) -> None:
        ws.write_string(row, col, str(value), self.fmt("@"))

    def _date(self, ws, row, col, value: date) -> None:
        ws.write_datetime(row, col, value, self.fmt("yyyy-mm-dd"))

    def _number(self, ws, row, col, value) -> None:
        ws.write_number(row, col, float(value), self.fmt("General"))

    def _price(self, ws, row, col, value: Decimal) -> None:
        ws.write_number(row, col, float(value), self.fmt("#,##0.00######"))

    def _money(self, ws, row, col, value: tuple[Decimal, str]) -> None:
        amount, currency = value
        digits = get_currency_precision(currency)
        ws.write_number(row, col, float(amount), self.fmt("#,##0" + ("." + "0" * digits if digits else "")))

    def _link(self, ws, row, col, value: tuple[str, str]) -> None:
        # A HYPERLINK formula, not a stored link: a sheet may hold at most 65,530 of those.
        text, target = value
        ws.write_formula(row, col, f'=HYPERLINK("{target}","{text}")', self.fmt("@"), text)
