"""`ledger check`: does the ledger agree with itself, and does every PDF agree with the ledger? Reads only.

Each check is one query (or one pass over the invoices read once), so a large ledger checks in
seconds; reading the PDFs' text is the costly part and runs in worker processes.
"""
from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from pypdf import PdfReader

from billing_batch import ledger as ledger_module
from billing_batch.backups import FOLDER as BACKUP_FOLDER
from billing_batch.backups import Backups
from billing_batch.ledger import GROUP_COLUMNS, INVOICE_COLUMNS, LINE_COLUMNS, Ledger, LedgerUnusable
from billing_batch.credit_notes import left_to_credit
from billing_batch.model import DocType, Frequency, Invoice, InvoiceStatus, LineKind
from billing_batch.money import round_money
from billing_batch.render import invoice_view
from billing_batch.tax import percent, vat_groups

POOL_FROM = 200  # fewer PDFs than this are read in this process: starting workers would cost more


class NoLedger(Exception):
    """There is no ledger file at the path."""


@dataclass(frozen=True)
class Finding:
    number: str  # the invoice concerned; blank when it concerns the ledger as a whole
    check: str  # integrity, foreign keys, numbering, dates, one live invoice, replaced, credits, totals, tax, lines, pdf
    message: str


@dataclass(frozen=True)
class Result:
    checked: int  # invoices in the ledger
    findings: tuple[Finding, ...]


class _Remedies:
    def __init__(self, output: Path):
        backups = output / BACKUP_FOLDER
        self.edited = f"The ledger was edited outside billing_batch: restore it from the newest backup in {backups}/."
        self.damaged = f"The ledger file is damaged: restore it from the newest backup in {backups}/."
        self.remake = "Run billing-batch run (or generate) again: it remakes missing PDFs from the ledger."


def check_ledger(path: Path, output: Path, jobs: int = 1) -> Result:
    """Every finding about the ledger at path and the PDFs in output/invoices."""
    if not path.is_file():
        raise NoLedger(str(path))
    fix = _Remedies(output)
    findings: list[Finding] = []
    try:
        ledger = Ledger(path, read_only=True, backups=Backups(output / BACKUP_FOLDER))
    except LedgerUnusable as exc:  # damaged, another program's, or too new: says which backup to restore
        return Result(0, (Finding("", "integrity", str(exc)),))
    with ledger:
        db = ledger.db
        try:
            findings += _integrity(db, fix)
            findings += _foreign_keys(db, fix)
            findings += _numbering(db, fix)
            findings += _one_live_per_cycle(db, fix)
            findings += _replacements(db, fix)
            invoices, unreadable = _read_invoices(ledger, fix)
            findings += unreadable
            findings += [f for invoice in invoices for f in invoice_findings(invoice, fix)]
            findings += _credits(invoices, fix)
            stale = ledger.stale_pdfs()
            (count,) = db.execute("SELECT COUNT(*) FROM invoices").fetchone()
        except sqlite3.DatabaseError as exc:
            findings.append(Finding("", "integrity", f"The ledger could not be read to the end ({exc}). {fix.damaged}"))
            return Result(0, tuple(findings))
    # Where the ledger itself is wrong, a PDF that disagrees with it is to be kept, not remade.
    edited = {f.number for f in findings if f.check != "dates"}
    findings += _pdfs(invoices, output, stale, edited, fix, jobs)
    return Result(count, tuple(findings))


# ---------------------------------------------------------------- the ledger against itself


def _integrity(db: sqlite3.Connection, fix: _Remedies) -> list[Finding]:
    """The full check (opening the ledger ran the quick one): indexes against their tables too."""
    rows = [r for (r,) in db.execute("PRAGMA integrity_check")]
    if rows == ["ok"]:
        return []
    shown = "; ".join(rows[:5]) + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")
    return [Finding("", "integrity", f"The ledger file is inconsistent: {shown}. {fix.damaged}")]


def _foreign_keys(db: sqlite3.Connection, fix: _Remedies) -> list[Finding]:
    """Lines, post tasks and direct debits of invoices the ledger does not hold."""
    found = []
    orphans: dict[str, set[int]] = {}
    for table, rowid, *_ in db.execute("PRAGMA foreign_key_check"):
        orphans.setdefault(table, set()).add(rowid)
    line_rows = orphans.pop("invoice_lines", set())
    if line_rows:
        numbers = db.execute(f"SELECT DISTINCT number FROM invoice_lines WHERE rowid IN "
                             f"({', '.join(map(str, sorted(line_rows)))}) ORDER BY number")
        found += [Finding(n, "foreign keys", f"{n}: the ledger holds lines of invoice {n}, but not the invoice itself. "
                                              f"{fix.edited}") for (n,) in numbers]
    for table, rowids in orphans.items():  # a reference added to the schema later
        found.append(Finding("", "foreign keys", f"{len(rowids)} row(s) of the ledger's {table} table refer to "
                                                  f"something the ledger does not hold. {fix.edited}"))
    for table, what in (("post_tasks", "a send, sync or charge"), ("post_sepa", "a direct debit")):
        rows = db.execute(f"SELECT DISTINCT number FROM {table} WHERE number NOT IN "
                          "(SELECT number FROM invoices) ORDER BY number")
        found += [Finding(n, "foreign keys", f"{n}: the ledger records {what} of invoice {n}, "
                                              f"but not the invoice itself. {fix.edited}") for (n,) in rows]
    return found


def _numbering(db: sqlite3.Connection, fix: _Remedies) -> list[Finding]:
    """Each series (invoices, credit notes) runs 1..N without a hole, each number once, following
    the documents' dates."""
    found = []
    rows = db.execute(
        "SELECT doc_type, series_seq, number, invoice_date, LAG(series_seq) OVER w, LAG(number) OVER w, "
        "LAG(invoice_date) OVER w FROM invoices "
        "WINDOW w AS (PARTITION BY doc_type ORDER BY series_seq) ORDER BY doc_type, series_seq")
    for doc_type, seq, number, day, prev_seq, prev_number, prev_day in rows:
        what = "Credit note" if doc_type == DocType.CREDIT_NOTE.value else "Invoice"
        expected = (prev_seq or 0) + 1
        if seq != expected:
            missing = ", ".join(_number_like(number, seq, s) for s in range(expected, min(seq, expected + 5)))
            more = f" and {seq - expected - 5} more" if seq - expected > 5 else ""
            after = f"between {prev_number} and {number}" if prev_number else f"before {number}"
            found.append(Finding(_number_like(number, seq, expected), "numbering",
                                 f"{missing}{more}: missing from the ledger ({after}). {what} numbers must run "
                                 f"without a gap. {fix.edited}"))
        if not number.endswith(f"{seq:06d}"):
            found.append(Finding(number, "numbering", f"{number}: the number does not match its place {seq} in "
                                                      f"the sequence. {fix.edited}"))
        if prev_day is not None and day < prev_day:
            # Not damage: a run with an --as-of earlier than the run before does this.
            found.append(Finding(number, "dates", f"{number}: dated {day}, before {prev_number} ({prev_day}): "
                                                  f"{what.lower()} numbers should follow their dates. This happens "
                                                  "when a run is made with an --as-of earlier than the run before. "
                                                  "Tell your accountant, and do not bill with an earlier --as-of "
                                                  "again."))
    duplicates = db.execute("SELECT number, COUNT(*) FROM invoices GROUP BY number HAVING COUNT(*) > 1 ORDER BY number")
    found += [Finding(n, "numbering", f"{n}: the ledger holds {c} invoices with this number. {fix.edited}")
              for n, c in duplicates]
    return found


def _credits(invoices: list[Invoice], fix: _Remedies) -> list[Finding]:
    """A credit note credits an invoice the ledger holds, issued before it, and never more than the
    invoice billed, line by line and in total, with the invoice's earlier credit notes."""
    by_number = {i.number: i for i in invoices}
    found = []
    for note in invoices:
        if not note.credits:
            continue
        credited = by_number.get(note.credits)
        if credited is None or credited.is_credit_note:
            why = "is not in the ledger" if credited is None else "is a credit note itself"
            found.append(Finding(note.number, "credits", f"{note.number}: it credits {note.credits}, which {why}. "
                                                         f"{fix.edited}"))
            continue
        earlier = [i for i in invoices if i.credits == credited.number]
        left, total = left_to_credit(credited, earlier[:earlier.index(note) + 1])
        over = [f"line {k} by {-lf.amount:,}" for k, lf in left.items() if lf.amount < 0]
        if total < 0:
            over.append(f"its total by {-total:,}")
        if any(line.credits_line not in left for line in note.draft.lines):
            over.append("a line it does not have")
        if over:
            found.append(Finding(note.number, "credits", f"{note.number}: with the credit notes before it, it "
                                                         f"credits more than {credited.number} billed: "
                                                         f"{', '.join(over)}. {fix.edited}"))
    return found


def _number_like(number: str, seq: int, other: int) -> str:
    """The number sequence position other would have, with number's prefix."""
    digits = f"{seq:06d}"
    prefix = number[:-len(digits)] if number.endswith(digits) else ""
    return f"{prefix}{other:06d}"


def _one_live_per_cycle(db: sqlite3.Connection, fix: _Remedies) -> list[Finding]:
    # the condition of the ledger's index one_live_invoice_per_cycle
    rows = db.execute(
        "SELECT contract_id, cycle_start, GROUP_CONCAT(number, ', ') FROM "
        "(SELECT contract_id, cycle_start, number FROM invoices "
        " WHERE status NOT IN ('Replaced', 'Credited') AND credits IS NULL ORDER BY seq) "
        "GROUP BY contract_id, cycle_start HAVING COUNT(*) > 1 ORDER BY MIN(number)")
    return [Finding(numbers.split(", ")[-1], "one live invoice",
                    f"{numbers.split(', ')[-1]}: {numbers} are all live invoices for contract {contract} and its "
                    f"cycle starting {start}: the customer would pay that cycle twice. {fix.edited}")
            for contract, start, numbers in rows]


def _replacements(db: sqlite3.Connection, fix: _Remedies) -> list[Finding]:
    """A Replaced invoice names a later invoice of its own contract and cycle."""
    rows = db.execute(
        "SELECT r.number, r.replaced_by, n.number IS NOT NULL, "
        "n.contract_id = r.contract_id AND n.cycle_start = r.cycle_start, n.seq > r.seq "
        "FROM invoices r LEFT JOIN invoices n ON n.number = r.replaced_by WHERE r.status = ? ORDER BY r.seq",
        (InvoiceStatus.REPLACED.value,))
    found = []
    for number, by, exists, same_cycle, later in rows:
        if by is None:
            why = "is marked Replaced but names no replacement"
        elif not exists:
            why = f"is marked Replaced by {by}, which is not in the ledger"
        elif not same_cycle:
            why = f"is marked Replaced by {by}, which bills another contract or cycle"
        elif not later:
            why = f"is marked Replaced by {by}, which was issued before it"
        else:
            continue
        found.append(Finding(number, "replaced", f"{number}: {why}. {fix.edited}"))
    return found


def _read_invoices(ledger: Ledger, fix: _Remedies) -> tuple[list[Invoice], list[Finding]]:
    """The invoices, and a finding for each row that cannot be read as one."""
    bad_value = (ValueError, TypeError, KeyError, ArithmeticError)
    try:
        return ledger.invoices(), []
    except bad_value:
        pass
    # Row by row, with the ledger's own row readers, to name the rows at fault.
    db, bad, lines, invoices = ledger.db, {}, {}, []
    for row in db.execute(f"SELECT {', '.join(LINE_COLUMNS)} FROM invoice_lines ORDER BY number, line"):
        try:
            lines.setdefault(row[0], []).append(ledger_module._line(row))
        except bad_value as exc:
            bad.setdefault(row[0], f"line {row[1]}: {exc}")
    groups = {}
    for row in db.execute(f"SELECT {', '.join(GROUP_COLUMNS)} FROM invoice_vat_groups ORDER BY number, position"):
        try:
            groups.setdefault(row[0], []).append(ledger_module._group(row))
        except bad_value as exc:
            bad.setdefault(row[0], f"VAT group {row[1]}: {exc}")
    for row in db.execute(f"SELECT {', '.join(INVOICE_COLUMNS)} FROM invoices ORDER BY seq"):
        try:
            invoice = ledger_module._invoice(row, lines.get(row[1], []), groups.get(row[1], []))
        except bad_value as exc:
            bad.setdefault(row[1], str(exc))
            continue
        if row[1] not in bad:
            invoices.append(invoice)
    return invoices, [Finding(n, "readable", f"{n}: the ledger holds a value billing_batch cannot read ({why}). "
                                             f"{fix.edited}") for n, why in bad.items()]


def invoice_findings(invoice: Invoice, fix: _Remedies) -> list[Finding]:
    """Totals against lines, and the lines that can be recomputed, computed as pricing computes them."""
    d, n = invoice.draft, invoice.number
    money = lambda amount: f"{amount:,}"  # noqa: E731
    found = []

    def wrong(check: str, what: str) -> None:
        found.append(Finding(n, check, f"{n}: {what}. {fix.edited}"))

    if not d.lines:
        wrong("lines", "the invoice has no lines (billing_batch never issues one without)")
    for i, line in enumerate(d.lines, 1):
        # a credit note's line crediting an invoice's line is checked against that line (_credits)
        months = None if line.credits_line else _months(line)
        if months is not None and line.amount != (exact := round_money(line.quantity * line.unit_price * months,
                                                                        d.currency)):
            how = f"quantity {line.quantity} x unit price {line.unit_price}" + (
                f" x {months} month(s)" if line.kind is LineKind.RECURRING else "")
            wrong("lines", f"line {i} ({line.product}) is {money(line.amount)}, but {how} = {money(exact)}")
        elif line.amount != round_money(line.amount, d.currency):
            wrong("lines", f"line {i} ({line.product}) is {line.amount}, not rounded to the currency {d.currency}")
    subtotal = sum((line.amount for line in d.lines), Decimal(0))
    if d.subtotal != subtotal:
        wrong("totals", f"the subtotal {money(d.subtotal)} does not equal the sum of its lines, {money(subtotal)}")
    discount = round_money(d.subtotal * d.discount_rate, d.currency)
    if d.discount != discount:
        wrong("totals", f"the discount {money(d.discount)} does not equal subtotal x {d.discount_rate} = "
                        f"{money(discount)}")
    found += [Finding(n, "tax", f"{n}: {what}. {fix.edited}") for what in tax_findings(invoice)]
    tax = sum((g.tax for g in d.vat_groups), Decimal(0))
    if d.tax != tax:
        wrong("totals", f"the tax {money(d.tax)} does not equal the sum of its VAT groups' tax, {money(tax)}")
    total = d.subtotal - d.discount + d.tax
    if d.total != total:
        wrong("totals", f"the total {money(d.total)} does not equal subtotal - discount + tax = {money(total)}")
    return found


def tax_findings(invoice: Invoice) -> list[str]:
    """The VAT breakdown against the lines, computed as pricing computes it: each group's lines,
    their share of the discount, and its tax by the invoice's Tax Rounding."""
    d = invoice.draft
    stored = d.vat_groups
    reasons = {(g.category, g.rate): g.exemption_reason for g in stored}
    expected = vat_groups(d.lines, d.discount, d.currency, d.tax_rounding, reasons)
    name = lambda g: f"{g.category} {percent(g.rate)}%"  # noqa: E731
    keys = [(g.category, g.rate) for g in stored]
    if keys != [(g.category, g.rate) for g in expected]:
        return [f"its VAT breakdown has the groups {', '.join(map(name, stored)) or 'none'}, but its lines' "
                f"categories and rates make {', '.join(map(name, expected))}"]
    found = []
    for g, e in zip(stored, expected):
        if (g.discount, g.taxable) != (e.discount, e.taxable):
            found.append(f"the VAT group {name(g)} has taxable amount {g.taxable:,} after a discount share of "
                         f"{g.discount:,}, but its lines less their share of the discount give {e.taxable:,} after "
                         f"{e.discount:,}")
        elif g.tax != e.tax:
            how = f"round({e.taxable:,} x {g.rate})" if d.tax_rounding != "Per Line" else "rounded line by line"
            found.append(f"the VAT group {name(g)} has tax {g.tax:,}, but {how} = {e.tax:,}")
    return found


def _months(line) -> int | None:
    """What quantity x unit price is multiplied by, where the ledger holds all it depends on: 1 for
    a one-time or usage line, the cycle's months for a full-cycle line. A prorated line depends on
    its cycle's full length, which the ledger does not keep, so it is not recomputed."""
    if line.kind is not LineKind.RECURRING:
        return 1
    if line.prorated:
        return None
    # A full-cycle line spans the whole cycle, whose length tells its months (28 to 31 days a month).
    days = (line.period_end - line.period_start).days + 1
    return next((f.months for f in Frequency if 28 * f.months <= days <= 31 * f.months), None)


# ---------------------------------------------------------------- the PDFs against the ledger


def _pdfs(invoices: list[Invoice], output: Path, stale: set[str], edited: set[str], fix: _Remedies,
          jobs: int) -> list[Finding]:
    found, to_read = [], []
    for invoice in invoices:
        path = output / invoice.pdf_name
        n = invoice.number
        if not path.exists():
            found.append(Finding(n, "pdf", f"{n}: the PDF {path} is missing. {fix.remake}"))
        elif n in stale:
            found.append(Finding(n, "pdf", f"{n}: the PDF {path} was not brought up to date when the invoice "
                                           f"changed (a run stopped early). {fix.remake}"))
        else:
            to_read.append((invoice, path))
    for (invoice, path), problem in zip(to_read, _read_all(to_read, jobs)):
        if problem:
            n = invoice.number
            todo = ("Restore the ledger first (see above), then check again." if n in edited else
                    f"Delete that PDF, then {fix.remake[0].lower()}{fix.remake[1:]}")
            found.append(Finding(n, "pdf", f"{n}: the PDF {path} {problem}. {todo}"))
    return found


def _read_all(work: list[tuple[Invoice, Path]], jobs: int) -> Iterator[str]:
    if jobs <= 1 or len(work) < POOL_FROM:
        yield from map(pdf_problem, work)
        return
    # spawn, as rendering does: a forked copy of a process holding an SQLite connection is unsafe.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(pdf_problem, work, chunksize=max(1, min(100, len(work) // (4 * jobs))))


def pdf_problem(item: tuple[Invoice, Path]) -> str:
    """What is wrong with the invoice's PDF, in words, or "" when it shows the invoice."""
    invoice, path = item
    try:
        reader = PdfReader(path)
        pages = reader.pages
        # The number heads the first page; the total and the VOID note are on the first or last.
        text = "\n".join(page.extract_text() for page in _first_and_last(pages))
    except Exception as exc:  # pypdf raises many kinds for a file that is not a sound PDF
        return f"cannot be read as a PDF ({type(exc).__name__}: {exc})"
    lines = {_plain(line) for line in text.splitlines()}
    view = invoice_view(invoice)
    total = view["totals"][-1]
    total_line = _plain(f"{total['label']} {total['value']}")
    wrong = []
    if _plain(invoice.number) not in lines:
        wrong.append(f"does not show the number {invoice.number}")
    if not any(line == total_line or line.startswith(total_line + " ") for line in lines):
        wrong.append(f"does not show the total {total['value']}")
    labels = view["labels"]  # in the invoice's language
    replaced = _plain(labels["void_replaced"].split("{")[0])  # "VOID — replaced by"
    shows_void = labels["void"] in lines or any(line.startswith(replaced) for line in lines)
    if view["void"] and _plain(view["void"]) not in lines:
        wrong.append(f"does not show \"{view['void']}\", though the invoice is Replaced")
    elif not view["void"] and shows_void:
        wrong.append("shows VOID, though the invoice is live")
    return f"does not match the invoice: it {'; it '.join(wrong)}" if wrong else ""


def _first_and_last(pages) -> Iterable:
    return [pages[0], pages[-1]] if len(pages) > 1 else list(pages)


def _plain(text: str) -> str:
    """Text with its runs of spaces (no-break and narrow ones too, as currencies print) as one space."""
    return " ".join(text.split())

