"""Write OUTPUT/invoices/INV-000123-usage.xlsx: every usage row of one invoice, by invoice line.

A pure function of the invoice as the ledger holds it (made again, like a PDF, when it is missing).
Each row shows its exact amount, quantity x unit price, never rounded; each invoice line ends with
a subtotal row whose amount is the sum of its rows, which the invoice line rounds once.
"""
from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from billing_batch.files import write_atomic
from billing_batch.model import Invoice
from billing_batch.schedule_book import CellWriter

SHOWN_ALWAYS = ("Product", "Description")  # columns of their own; other group columns follow them
SUBTOTAL = "Subtotal"


def columns(invoice: Invoice) -> list[tuple[str, int, str]]:
    groups = dict.fromkeys(name for line in invoice.draft.lines for row in line.usage_rows
                           for name, _ in row.groups if name not in SHOWN_ALWAYS)
    return [("Invoice Line", 8, "number"), ("Usage ID", 16, "text"), ("Date", 12, "date"),
            ("Product", 24, "text"), ("Description", 36, "text"), *((g, max(14, len(g) + 2), "text") for g in groups),
            ("Quantity", 12, "number"), ("Unit Price", 12, "price"), ("Amount", 14, "exact"),
            ("Invoice Amount", 14, "money")]


def rows(invoice: Invoice) -> list[tuple]:
    """The sheet's rows: each usage row, then its invoice line's subtotal (the amount unrounded,
    beside the line's rounded amount)."""
    groups = [name for name, _, _ in columns(invoice)[5:-4]]
    currency = invoice.draft.currency
    out = []
    for n, line in enumerate(invoice.draft.lines, start=1):
        if not line.usage_rows:
            continue
        for row in line.usage_rows:
            values = dict(row.groups)
            out.append((n, row.usage_id, row.date, row.product, row.description,
                        *(values.get(g, "") for g in groups), row.quantity, row.unit_price, row.amount, None))
        exact = sum((row.amount for row in line.usage_rows), Decimal(0))
        out.append((n, SUBTOTAL, None, line.product, line.description, *("" for _ in groups),
                    line.quantity, line.unit_price, exact, (line.amount, currency)))
    return out


def content(invoice: Invoice) -> bytes:
    buffer = io.BytesIO()
    book = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False,
                                        "strings_to_urls": False, "strings_to_numbers": False})
    cells = _Cells(book)
    ws = book.add_worksheet("Usage")
    header = book.add_format({"bold": True, "bg_color": "#E7ECF3", "bottom": 1})
    cols = columns(invoice)
    for col, (title, width, _) in enumerate(cols):
        ws.set_column(col, col, width)
        ws.write_string(0, col, title, header)
    ws.freeze_panes(1, 0)
    count = 0
    for count, values in enumerate(rows(invoice), start=1):
        for col, ((_, _, kind), value) in enumerate(zip(cols, values)):
            cells.write(ws, count, col, kind, value)
    ws.autofilter(0, 0, count, len(cols) - 1)
    book.set_properties({"title": f"Usage of invoice {invoice.number}"})
    book.close()
    return buffer.getvalue()


def write(out_dir: Path, invoice: Invoice) -> Path:
    """Written beside and renamed, so the file is whole or absent."""
    target = out_dir / invoice.usage_name
    write_atomic(target, content(invoice))
    return target


class _Cells(CellWriter):
    def _exact(self, ws, row, col, value: Decimal) -> None:
        # a spreadsheet number holds 15 significant digits, which usage amounts (price x quantity) stay within
        ws.write_number(row, col, float(value), self.fmt("#,##0.00########"))
