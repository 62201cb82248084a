"""Write OUTPUT/invoices/INV-000123-usage.xlsx: every usage row of one invoice, by invoice line.

A pure function of the invoice as the ledger holds it (made again, like a PDF, when it is missing).
Each row shows its exact amount, quantity x unit price, never rounded; each invoice line ends with
a subtotal row whose amount is the sum of its rows, which the invoice line rounds once.
It prints as the schedule workbook does (cell_writer.print_setup), on the paper of the invoice's locale.
"""
from __future__ import annotations

import multiprocessing
import os
import secrets
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import xlsxwriter

from billing_batch.documents.cell_writer import CellWriter
from billing_batch.documents.render_pool import IN_PROCESS_BELOW
from billing_batch.i18n import N_, gettext_for
from billing_batch.model import Invoice, LineKind

SHOWN_ALWAYS = ("Product", "Description")  # columns of their own; other group columns follow them
SUBTOTAL = N_("Subtotal")
# The workbook goes to the customer with the invoice: its own words are in the invoice's language (a
# group column is named by the usage data, and keeps its name).
SHEET, TITLE = N_("Usage"), N_("Usage of invoice {number}")


def columns(invoice: Invoice, translate: Callable[[str], str] = str) -> list[tuple[str, int, str]]:
    """(heading, width, kind) of each column; the headings translated, but a group column's, which
    the usage data names."""
    t = translate
    groups = dict.fromkeys(name for line in invoice.draft.lines if line.kind is LineKind.USAGE
                           for row in line.usage_rows for name, _ in row.groups if name not in SHOWN_ALWAYS)
    return [(title, max(width, *(len(word) + 2 for word in title.split())), kind)  # no word of a heading cut
            for title, width, kind in _columns(t, groups)]


def _columns(t: Callable[[str], str], groups: dict) -> list[tuple[str, int, str]]:
    return [(t(N_("Invoice Line")), 8, "number"), (t(N_("Usage ID")), 16, "text"), (t(N_("Date")), 12, "date"),
            (t(N_("Product")), 24, "text"), (t(N_("Description")), 36, "text"),
            *((g, max(14, len(g) + 2), "text") for g in groups),
            (t(N_("Quantity")), 12, "number"), (t(N_("Unit Price")), 12, "price"), (t(N_("Amount")), 14, "exact"),
            (t(N_("Invoice Amount")), 14, "money")]


def rows(invoice: Invoice, subtotal: str = SUBTOTAL) -> list[tuple]:
    """The sheet's rows: each usage row, then its invoice line's subtotal (the amount unrounded,
    beside the line's rounded amount), marked `subtotal` in the Usage ID column."""
    groups = [name for name, _, _ in columns(invoice)[5:-4]]
    currency = invoice.draft.currency
    out = []
    for n, line in enumerate(invoice.draft.lines, start=1):
        if line.kind is not LineKind.USAGE:  # a licence charge is its own line, its factors printed
            continue
        for row in line.usage_rows:
            values = dict(row.groups)
            out.append((n, row.usage_id, row.date, row.product, row.description,
                        *(values.get(g, "") for g in groups), row.quantity, row.unit_price, row.amount, None))
        exact = sum((row.amount for row in line.usage_rows), Decimal(0))
        out.append((n, subtotal, None, line.product, line.description, *("" for _ in groups),
                    line.quantity, line.unit_price, exact, (line.amount, currency)))
    return out


def write(out_dir: Path, invoice: Invoice) -> Path:
    """Written beside its final place and renamed over it, as the schedule book is, so the file is
    whole or absent. Streamed (constant_memory): 20,000 rows take a few seconds, not tens."""
    final = out_dir / invoice.usage_name
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    book = xlsxwriter.Workbook(tmp, {"constant_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    try:
        cells = _Cells(book, invoice.locale)
        translate = gettext_for(invoice.locale)
        ws = book.add_worksheet(translate(SHEET))
        cols = columns(invoice, translate)
        writers = [getattr(cells, f"_{kind}") for _, _, kind in cols]
        cells.header(ws, cols)
        count = 0
        for count, values in enumerate(rows(invoice, translate(SUBTOTAL)), start=1):
            for col, (write_cell, value) in enumerate(zip(writers, values)):
                if value is not None and value != "":
                    write_cell(ws, count, col, value)
        ws.autofilter(0, 0, count, len(cols) - 1)
        book.set_properties({"title": translate(TITLE).format(number=invoice.number)})
        book.close()
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return final


class _Cells(CellWriter):
    def _exact(self, ws, row, col, value: Decimal) -> None:
        # a spreadsheet number holds 15 significant digits, which usage amounts (price x quantity) stay within
        ws.write_number(row, col, float(value), self.fmt("#,##0.00########"))


def write_all(out_dir: Path, invoices: list[Invoice]) -> None:
    for invoice in invoices:
        write(out_dir, invoice)


def _write_all_quietly(out_dir: Path, invoices: list[Invoice]) -> None:
    """In the child: a failure shows as its exit code only; the parent then writes again and reports."""
    try:
        write_all(out_dir, invoices)
    except BaseException:  # noqa: BLE001 - the parent's own attempt reports it, without a traceback here
        os._exit(1)


class Writing:
    """The usage workbooks of some invoices being written while the PDFs render (20,000 rows take
    xlsxwriter seconds), when jobs > 1; else at once.

    A few invoices render in this process, so the workbooks go to a forked child on the other core
    (a spawned one would import the whole batch again first); it only writes and exits. Many invoices
    render in workers while this process waits, so a thread here writes them: a forked copy of a large
    batch becomes a second copy of its heap as Python touches its objects (on L, 1.6 GB in all
    against 1.0)."""

    def __init__(self, out_dir: Path, invoices: list[Invoice], jobs: int):
        self.out_dir, self.invoices = out_dir, invoices
        self._child: multiprocessing.Process | None = None
        self._thread: threading.Thread | None = None
        self._failed = False
        if not (jobs > 1 and invoices):
            write_all(out_dir, invoices)
        elif len(invoices) < IN_PROCESS_BELOW and "fork" in multiprocessing.get_all_start_methods():
            self._child = multiprocessing.get_context("fork").Process(
                target=_write_all_quietly, args=(out_dir, invoices), daemon=True)
            self._child.start()
        else:
            self._thread = threading.Thread(target=self._write_in_thread, daemon=True, name="usage workbooks")
            self._thread.start()

    def _write_in_thread(self) -> None:
        try:
            write_all(self.out_dir, self.invoices)
        except BaseException:  # noqa: BLE001 - wait() writes the missing ones again, in the caller, to raise
            self._failed = True

    def wait(self) -> None:
        """Until every workbook is written; what failed meanwhile is tried again here, to raise."""
        if self._child is not None:
            self._child.join()
            self._failed = self._child.exitcode != 0
            self._child = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failed:
            self._failed = False
            write_all(self.out_dir, [i for i in self.invoices if not (self.out_dir / i.usage_name).exists()])
