"""Write billing_schedules.xlsx: schedules, invoices, invoice lines, the latest review and the seat register
of Microsoft licences, atomically.

Every sheet prints (documents/cell_writer.CellWriter.header): landscape, one page wide, its header row on
every page. Amounts are numbers in their currency's number format, placed as Settings' Locale writes
money, so that they still sum."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path

import xlsxwriter

from billing_batch.documents.cell_writer import ROW_HEIGHT, CellWriter, text_lines
from billing_batch.engine.schedules import BILLED, ScheduleRow
from billing_batch.engine.seat_register import RegisterRow
from billing_batch.model import Invoice, InvoiceStatus
from billing_batch.review.flags import FLAG_KINDS, ReviewRow

BOOK_NAME = "billing_schedules.xlsx"

# Each column: header, width, kind. Kinds pick the cell writer and number format.
SCHEDULE_COLUMNS = [
    ("Schedule ID", 24, "text"), ("Contract ID", 12, "text"), ("Customer ID", 12, "text"),
    ("Customer", 28, "text"), ("Cycle Start", 12, "date"), ("Cycle End", 12, "date"),
    ("Scheduled Date", 14, "date"), ("Status", 10, "text"), ("Status Reason", 15, "text"),
    ("Resulting Invoice", 17, "link"), ("Run Type", 11, "text"), ("Run Date", 12, "date"),
    ("Message", 48, "wrap"),
]
INVOICE_COLUMNS = [
    ("Invoice Number", 15, "link"), ("Type", 11, "text"), ("Contract ID", 12, "text"), ("Customer ID", 12, "text"),
    ("Customer", 28, "text"), ("Cycle Start", 12, "date"), ("Cycle End", 12, "date"),
    ("Invoice Date", 12, "date"), ("Due Date", 12, "date"), ("Currency", 9, "text"),
    ("Subtotal", 13, "money"), ("Discount", 12, "money"), ("Tax", 12, "money"), ("Total", 13, "money"),
    ("Status", 10, "text"), ("Replaced By", 14, "text"), ("Credits Invoice", 15, "text"),
    ("Credited By", 15, "text"), ("Reason", 30, "wrap"), ("PDF", 26, "text"), ("Usage Details", 22, "link"),
]
LINE_COLUMNS = [
    ("Invoice Number", 15, "text"), ("Line", 6, "number"), ("Kind", 10, "text"), ("Product", 24, "text"),
    ("Description", 36, "text"), ("Period Start", 12, "date"), ("Period End", 12, "date"),
    ("Quantity", 10, "number"), ("Unit Price", 12, "price"), ("Amount", 13, "money"),
    ("Corrects", 15, "text"),  # an Adjustment line: the invoice it corrects
]
# The latest review (see review/page.py): its invoices, one Yes/blank column per flag, then the notes,
# one flag's a line. The headers wrap, so that a flag's column is as narrow as its longest word.
REVIEW_COLUMNS = [
    ("Invoice Number", 15, "link"), ("Customer ID", 12, "text"), ("Customer", 28, "text"),
    ("Contract ID", 12, "text"), ("Cycle Start", 12, "date"), ("Cycle End", 12, "date"),
    ("Due Date", 12, "date"), ("Currency", 9, "text"), ("Total", 13, "money"), ("Flags", 7, "number"),
    *((kind.label, max(9, *(len(word) + 3 for word in kind.label.split())), "text") for kind in FLAG_KINDS),
    ("Notes", 60, "wrap"),
]
# Every licence subscription as periods of constant seats (engine/seat_register.py): a month's seats are the
# rows with From on or before its last day and To on or after its first.
REGISTER_COLUMNS = [
    ("Contract ID", 12, "text"), ("Customer", 28, "text"), ("Tenant", 38, "text"), ("Subscription ID", 38, "text"),
    ("SKU ID", 19, "text"), ("SKU", 28, "text"), ("Term", 30, "wrap"), ("Billing Frequency", 10, "text"),
    ("Term Start", 12, "date"), ("Term End", 12, "date"), ("From", 12, "date"), ("To", 12, "date"),
    ("Seats", 8, "number"), ("Change", 14, "text"), ("Charge Type", 15, "text"), ("Changed On", 12, "date"),
    ("Price per Seat per Month", 13, "money"), ("Microsoft Cost per Seat per Month", 13, "money"),
    ("Currency", 9, "text"), ("Billed On", 15, "link"),
]


def write(out_dir: Path, schedules: Iterable[ScheduleRow], invoices: Sequence[Invoice],
          review_rows: Sequence[ReviewRow] | None = None, billed: Collection[str] = (),
          locale: str | None = None, register: Sequence[RegisterRow] = ()) -> Path:
    """Write the book next to its final place, then rename it over the old one, so a
    reader never sees a half-written file and the old book stays until the new is whole.
    With review_rows (even empty), a sheet Review holds them and their flags; with register rows, a last
    sheet Seat Register holds them (a batch without Microsoft licences gets no empty sheet).
    billed: the invoices sent or synced, whose Status shows Billed. locale: Settings' Locale, which
    places the currency symbols and picks the paper (by default the review rows', else en_US)."""
    locale = book_locale(locale, review_rows)
    final = out_dir / BOOK_NAME
    tmp = out_dir / f".{BOOK_NAME}.tmp"
    book = xlsxwriter.Workbook(tmp, {"constant_memory": True, "strings_to_formulas": False,
                                     "strings_to_urls": False, "strings_to_numbers": False})
    try:
        cells = CellWriter(book, locale)
        for name, columns, rows in _sheets(schedules, invoices, review_rows, billed, register):
            _sheet(book, cells, name, columns, rows)
        book.close()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    return final


def digest(schedules: Iterable[ScheduleRow], invoices: Sequence[Invoice],
           review_rows: Sequence[ReviewRow] | None = None, billed: Collection[str] = (),
           locale: str | None = None, register: Sequence[RegisterRow] = ()) -> str:
    """A digest of every value the book would hold, and of how it shows them: equal digests, equal books."""
    h = hashlib.blake2b(digest_size=20)
    h.update(f"{book_locale(locale, review_rows)} {PRINT_SETUP_VERSION}".encode())
    for name, _, rows in _sheets(schedules, invoices, review_rows, billed, register):
        h.update(name.encode())
        for values in rows:
            h.update(repr(values).encode())
    return h.hexdigest()


PRINT_SETUP_VERSION = 1  # a book written before the print setup is written again


def book_locale(locale: str | None, review_rows: Sequence[ReviewRow] | None) -> str:
    return locale or (review_rows[0].locale if review_rows else "en_US")


def _sheets(schedules, invoices, review_rows, billed, register=()) -> Iterator[tuple[str, list, Iterable[tuple]]]:
    yield "Billing Schedules", SCHEDULE_COLUMNS, (_schedule(r) for r in schedules)
    yield "Invoices", INVOICE_COLUMNS, (_invoice(i, i.number in billed) for i in invoices)
    yield "Invoice Lines", LINE_COLUMNS, _lines(invoices)
    if review_rows is not None:
        yield "Review", REVIEW_COLUMNS, (_review(r) for r in review_rows)
    if register:
        carried = _carried(invoices)
        yield "Seat Register", REGISTER_COLUMNS, (_register(r, carried.get(r.usage_id)) for r in register)


def _schedule(r: ScheduleRow) -> tuple:
    invoice = (r.invoice.number, r.invoice.pdf_name) if r.invoice else None
    return (r.schedule_id, r.contract_id, r.customer_id, r.customer, r.cycle_start, r.cycle_end,
            r.scheduled, r.status, r.reason, invoice, r.run_type, r.run_date, r.message)


def _invoice(i: Invoice, billed: bool) -> tuple:
    d = i.draft
    status = BILLED if billed and i.status is InvoiceStatus.ISSUED else i.status.value
    money = [(amount, d.currency) for amount in (d.subtotal, d.discount, d.tax, d.total)]
    return (
        (i.number, i.pdf_name), i.doc_type.value, d.contract_id, d.customer_id, d.customer_name, d.cycle_start,
        d.cycle_end, i.invoice_date, i.due_date, d.currency, *money, status, i.replaced_by or "", i.credits or "",
        ", ".join(i.credited_by), i.reason, i.pdf_name,
        (Path(i.usage_name).name, i.usage_name) if i.usage_name else None,
    )


def _review(r: ReviewRow) -> tuple:
    names = {f.name for f in r.flags}
    return ((r.number, r.pdf_name), r.customer_id, r.customer, r.contract_id, r.period_start, r.period_end,
            r.due_date, r.currency, (r.signed_total, r.currency), len(r.flags),  # a credit note as a credit
            *("Yes" if kind.name in names else "" for kind in FLAG_KINDS), r.notes)


def _carried(invoices: Iterable[Invoice]) -> dict[str, Invoice]:
    """Usage ID -> the issued document billing it: not Replaced, Credited, nor a credit note correcting one."""
    found: dict[str, Invoice] = {}
    for i in invoices:
        if i.status is InvoiceStatus.ISSUED and i.credits is None:
            for line in i.draft.lines:
                for row in line.usage_rows:
                    found.setdefault(row.usage_id, i)
    return found


def _register(r: RegisterRow, invoice: Invoice | None) -> tuple:
    money = [None if amount is None else (amount, r.currency) for amount in (r.price_per_month, r.cost_per_month)]
    return (r.contract_id, r.customer, r.tenant, r.subscription_id, r.sku_id, r.sku, r.term, r.billing_frequency,
            r.term_start, r.term_end, r.start, r.end, r.seats, r.change, r.charge_type, r.changed_on, *money,
            r.currency, (invoice.number, invoice.pdf_name) if invoice else None)


def _lines(invoices: Iterable[Invoice]) -> Iterable[tuple]:
    for i in invoices:
        for n, line in enumerate(i.draft.lines, start=1):
            yield (i.number, n, line.kind.value, line.product, line.description, line.period_start,
                   line.period_end, line.quantity, line.unit_price, (line.amount, i.draft.currency),
                   line.corrects or "")


def _sheet(book, cells: CellWriter, name: str, columns: list[tuple[str, int, str]], rows: Iterable[tuple]) -> None:
    ws = book.add_worksheet(name)
    cells.header(ws, columns)
    wrapped = [(col, width) for col, (_, width, kind) in enumerate(columns) if kind == "wrap"]
    count = 0
    for count, values in enumerate(rows, start=1):
        lines = max((text_lines(str(values[col] or ""), width) for col, width in wrapped), default=1)
        if lines > 1:
            ws.set_row(count, ROW_HEIGHT * lines)
        for col, ((_, _, kind), value) in enumerate(zip(columns, values)):
            cells.write(ws, count, col, kind, value)
    ws.autofilter(0, 0, count, len(columns) - 1)
