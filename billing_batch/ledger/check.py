"""`ledger check`, first half: does the ledger agree with itself? Reads only. (The second half, every PDF
against the ledger, is documents/pdf_check.py.)

Each check is one query (or one pass over the invoices read once), so a large ledger checks in seconds.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from billing_batch.ledger import store
from billing_batch.ledger.backups import FOLDER as BACKUP_FOLDER
from billing_batch.ledger.backups import Backups
from billing_batch.ledger.store import GROUP_COLUMNS, INVOICE_COLUMNS, LINE_COLUMNS, Ledger, LedgerUnusable
from billing_batch.engine.credit_notes import left_to_credit
from billing_batch.engine.pricing import exact_amount
from billing_batch.model import DocType, Frequency, Invoice, InvoiceStatus, Line, LineKind
from billing_batch.money import round_money
from billing_batch.engine.tax import percent, vat_groups


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
    invoices: tuple[Invoice, ...] = ()  # as read, for the PDFs to be checked against; none when unreadable
    stale: frozenset[str] = frozenset()  # invoices whose PDF was not remade when they changed


class Remedies:
    def __init__(self, output: Path):
        backups = output / BACKUP_FOLDER
        self.edited = f"The ledger was edited outside billing_batch: restore it from the newest backup in {backups}/."
        self.damaged = f"The ledger file is damaged: restore it from the newest backup in {backups}/."
        self.remake = "Run billing-batch run (or generate) again: it remakes missing PDFs from the ledger."


def check_ledger(path: Path, output: Path) -> Result:
    """Every finding about the ledger at path by itself (output: where its backups are)."""
    if not path.is_file():
        raise NoLedger(str(path))
    fix = Remedies(output)
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
    return Result(count, tuple(findings), tuple(invoices), frozenset(stale))


# ---------------------------------------------------------------- the ledger against itself


def _integrity(db: sqlite3.Connection, fix: Remedies) -> list[Finding]:
    """The full check (opening the ledger ran the quick one): indexes against their tables too."""
    rows = [r for (r,) in db.execute("PRAGMA integrity_check")]
    if rows == ["ok"]:
        return []
    shown = "; ".join(rows[:5]) + (f" (and {len(rows) - 5} more)" if len(rows) > 5 else "")
    return [Finding("", "integrity", f"The ledger file is inconsistent: {shown}. {fix.damaged}")]


def _foreign_keys(db: sqlite3.Connection, fix: Remedies) -> list[Finding]:
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


def _numbering(db: sqlite3.Connection, fix: Remedies) -> list[Finding]:
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


def _credits(invoices: list[Invoice], fix: Remedies) -> list[Finding]:
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
        # past zero: below it for a line that billed an amount, above it for a line below zero (a rounding)
        billed = {k: line.amount for k, line in enumerate(credited.draft.lines, 1)}
        over = [f"line {k} by {abs(lf.amount):,}" for k, lf in left.items() if lf.amount * (billed[k] or 1) < 0]
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


def _one_live_per_cycle(db: sqlite3.Connection, fix: Remedies) -> list[Finding]:
    # the condition of the ledger's index one_live_invoice_per_cycle
    rows = db.execute(
        "SELECT contract_id, cycle_start, GROUP_CONCAT(number, ', ') FROM "
        "(SELECT contract_id, cycle_start, number FROM invoices "
        " WHERE status NOT IN ('Replaced', 'Credited') AND credits IS NULL AND change_log = 0 ORDER BY seq) "
        "GROUP BY contract_id, cycle_start HAVING COUNT(*) > 1 ORDER BY MIN(number)")
    return [Finding(numbers.split(", ")[-1], "one live invoice",
                    f"{numbers.split(', ')[-1]}: {numbers} are all live invoices for contract {contract} and its "
                    f"cycle starting {start}: the customer would pay that cycle twice. {fix.edited}")
            for contract, start, numbers in rows]


def _replacements(db: sqlite3.Connection, fix: Remedies) -> list[Finding]:
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


def _read_invoices(ledger: Ledger, fix: Remedies) -> tuple[list[Invoice], list[Finding]]:
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
            lines.setdefault(row[0], []).append(store._line(row))
        except bad_value as exc:
            bad.setdefault(row[0], f"line {row[1]}: {exc}")
    groups = {}
    for row in db.execute(f"SELECT {', '.join(GROUP_COLUMNS)} FROM invoice_vat_groups ORDER BY number, position"):
        try:
            groups.setdefault(row[0], []).append(store._group(row))
        except bad_value as exc:
            bad.setdefault(row[0], f"VAT group {row[1]}: {exc}")
    for row in db.execute(f"SELECT {', '.join(INVOICE_COLUMNS)} FROM invoices ORDER BY seq"):
        try:
            invoice = store._invoice(row, lines.get(row[1], []), groups.get(row[1], []))
        except bad_value as exc:
            bad.setdefault(row[1], str(exc))
            continue
        if row[1] not in bad:
            invoices.append(invoice)
    return invoices, [Finding(n, "readable", f"{n}: the ledger holds a value billing_batch cannot read ({why}). "
                                             f"{fix.edited}") for n, why in bad.items()]


def invoice_findings(invoice: Invoice, fix: Remedies) -> list[Finding]:
    """Totals against lines, and the lines that can be recomputed, computed as pricing computes them."""
    d, n = invoice.draft, invoice.number
    money = lambda amount: f"{amount:,}"  # noqa: E731
    found = []

    def wrong(check: str, what: str) -> None:
        found.append(Finding(n, check, f"{n}: {what}. {fix.edited}"))

    if not d.lines:
        wrong("lines", "the invoice has no lines (billing_batch never issues one without)")
    for i, line in enumerate(d.lines, 1):
        factors = _factors(line)
        if factors is not None and line.amount != (exact := round_money(factors[0], d.currency)):
            wrong("lines", f"line {i} ({line.product}) is {money(line.amount)}, but {factors[1]} = {money(exact)}")
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


def _factors(line: Line) -> tuple[Decimal, str] | None:
    """What the line's amount is, unrounded, and how, where the ledger holds all it depends on: the
    factors the line prints (pricing.exact_amount); for a recurring line issued before the ledger kept
    them, quantity x unit price x the months of its period, if it spans a whole cycle. Not recomputed:
    a prorated line issued then (its full cycle's length is not kept), and a line issued then as a
    difference of two charges (an Adjustment) or crediting part of another line (checked against that
    line, _credits), whose per-unit lines hold no factors to tell them from those issued now."""
    how = f"quantity {line.quantity} x unit price {line.unit_price}"
    if line.months is not None:
        exact = exact_amount(line)
        days = f" x {line.days}/{line.full_days} days" if line.days != line.full_days else ""
        return (exact, f"{how} x {line.months} month(s){days}") if exact is not None else None
    if line.credits_line or line.kind is LineKind.ADJUSTMENT or not line.quantity:  # not line.quantity: a sum
        return None
    if line.kind is not LineKind.RECURRING:
        return line.quantity * line.unit_price, how
    months = None if line.prorated else _months(line)
    return (line.quantity * line.unit_price * months, f"{how} x {months} month(s)") if months else None


def _months(line: Line) -> int | None:
    """The months of a recurring line that spans a whole cycle, whose length tells them (28 to 31 days a month)."""
    days = (line.period_end - line.period_start).days + 1
    return next((f.months for f in Frequency if 28 * f.months <= days <= 31 * f.months), None)
