"""The SQLite ledger: the system of record of issued invoices and billed cycles.

Over 400 lines: the Ledger and the conversion of its rows to and from the model, one idea: what
the ledger holds. Its schema and migrations are ledger.migrations, read through the module
(migrations.SCHEMA_VERSION), so that a test patching them there is seen."""
from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from billing_batch.engine.credit_notes import CreditNote
from billing_batch.ledger import migrations
from billing_batch.ledger.backups import FOLDER as BACKUP_FOLDER
from billing_batch.ledger.backups import Backups
from billing_batch.model import (
    Adjusted,
    BilledUsage,
    Charge,
    Cycle,
    DocType,
    Draft,
    Invoice,
    InvoiceStatus,
    Line,
    LineKind,
    Party,
    RunType,
    VatGroup,
)

SQLITE_HEADER = b"SQLite format 3\x00"

INVOICE_COLUMNS = (
    "seq number contract_id customer_id customer_name cycle_start cycle_end scheduled invoice_date "
    "due_date currency subtotal discount tax total discount_rate tax_rate status replaced_by run_type "
    "seller buyer locale rendered_status reviewed_in tax_rounding doc_type series_seq credits credits_date reason "
    "change_log"
).split()
LINE_COLUMNS = (
    "number line kind product description period_start period_end quantity unit_price amount "
    "prorated subscription_id usage_id tax_category tax_rate credits_line corrects months full_days"
).split()
GROUP_COLUMNS = "number position category rate taxable tax exemption_reason discount".split()
USAGE_COLUMNS = "number line usage_id usage_date product description quantity unit_price groups".split()
ADJUSTMENT_COLUMNS = ("number line contract_id cycle_start charge product description period_start period_end "
                      "quantity unit_price amount removed").split()


class LedgerBusy(Exception):
    """Another run holds the ledger."""


class LedgerUnusable(Exception):
    """The ledger file cannot be used (damaged, foreign, or made by a newer release); nothing was
    written. The message says what is wrong and how to go on."""


class Ledger:
    def __init__(self, path: Path, read_only: bool = False, backups: Backups | None = None):
        """Open for writing, holding the lock for as long as it is open: an older ledger is backed up,
        then upgraded, and a ledger this command changed is backed up when closed. read_only neither
        locks nor writes anything (an older ledger is upgraded in memory)."""
        self.path = path
        self.backups = backups or Backups(path.parent / BACKUP_FOLDER)
        self._lock = None
        if read_only:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                if self._version(db) < migrations.SCHEMA_VERSION:
                    memory = sqlite3.connect(":memory:", isolation_level=None)
                    db.backup(memory)
                    db.close()
                    migrations.migrate(db := memory)
            except BaseException:
                db.close()
                raise
            self.db, self._changes = db, None
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(path.with_name(path.name + ".lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise LedgerBusy(str(path)) from None
        try:
            if not path.exists():
                _create(path)
            self.db = sqlite3.connect(path, isolation_level=None)
        except BaseException:
            self._lock.close()
            raise
        try:
            version = self._version(self.db)
            if version < migrations.SCHEMA_VERSION:
                self.backups.take(self.db)
                migrations.migrate(self.db)
        except BaseException:
            self.db.close()
            self._lock.close()
            raise
        self.db.execute("PRAGMA foreign_keys = ON")
        self._changes = self.db.total_changes

    def _version(self, db: sqlite3.Connection) -> int:
        """The file's schema version, after making sure it is a sound ledger this release can read."""
        # A new ledger is made whole beside its place and renamed into it (_create): a file here that is
        # empty, or an SQLite file without tables, is not one this program made, nor what a crash leaves.
        if not self.path.stat().st_size:
            self._refuse("is empty (0 bytes): it holds no invoices, so it is not a ledger billing-batch made, "
                         "or it was emptied")
        with open(self.path, "rb") as f:
            if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                self._refuse("is not a ledger: it is not an SQLite database at all")
        try:
            (check,) = db.execute("PRAGMA quick_check(1)").fetchone()
            (version,) = db.execute("PRAGMA user_version").fetchone()
            (app,) = db.execute("PRAGMA application_id").fetchone()
            tables = _tables(db)
        except sqlite3.DatabaseError as exc:
            self._refuse(f"is damaged (SQLite says: {exc})")
        if not version and not tables:
            self._refuse("holds no ledger: it is an empty SQLite database")
        if check != "ok":
            self._refuse(f"is damaged (SQLite's check says: {' '.join(check.split())})")
        if (app not in (0, migrations.APPLICATION_ID) or tables and "invoices" not in tables
                or version and app != migrations.APPLICATION_ID):
            self._refuse("is not a billing_batch ledger: it is another program's SQLite database")
        if version > migrations.SCHEMA_VERSION:
            raise LedgerUnusable(
                f"The ledger {self.path} was made by a newer release of billing-batch (ledger version {version}; "
                f"this release reads up to version {migrations.SCHEMA_VERSION}). "
                "Nothing was billed and no file was written. "
                "Install the newer release (pip install --upgrade billing-batch) and run again.")
        return version

    def _refuse(self, what: str) -> None:
        newest = self.backups.newest()
        if newest:
            restore = (f"The newest backup is {newest}, made {datetime.fromtimestamp(newest.stat().st_mtime):%Y-%m-%d %H:%M}"
                       " (one is made after every command that changes the ledger). To restore it, move "
                       f"{self.path.name} aside (keep it for the record), copy the backup to {self.path}, then run "
                       "billing-batch ledger check and run again.")
        else:
            restore = (f"There is no backup in {self.backups.folder}. Restore {self.path.name} from your own "
                       "backups, then run again.")
        raise LedgerUnusable(f"The ledger {self.path} {what}. Nothing was billed and no file was written. {restore}")

    def close(self) -> None:
        try:
            # also when there is no backup at all: the last one may have failed on a full disk
            if self._changes is not None and (self.db.total_changes != self._changes or not self.backups.newest()):
                self.backups.take(self.db)
        finally:
            self.db.close()
            if self._lock:
                self._lock.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:  # SQLite rolls back by itself on a full disk or I/O error
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # Reading

    def invoices(self) -> list[Invoice]:
        """Every invoice ever issued, in number order."""
        usage: dict[tuple[str, int], list[BilledUsage]] = {}
        for row in self.db.execute(f"SELECT {', '.join(USAGE_COLUMNS)} FROM usage_rows ORDER BY number, line, rowid"):
            usage.setdefault((row[0], row[1]), []).append(_usage_row(row))
        adjusted = {(row[0], row[1]): _adjusted(row) for row in
                    self.db.execute(f"SELECT {', '.join(ADJUSTMENT_COLUMNS)} FROM adjustments")}
        lines: dict[str, list[Line]] = {}
        for row in self.db.execute(f"SELECT {', '.join(LINE_COLUMNS)} FROM invoice_lines ORDER BY number, line"):
            lines.setdefault(row[0], []).append(_line(row, tuple(usage.get((row[0], row[1]), ())),
                                                      adjusted.get((row[0], row[1]))))
        groups: dict[str, list[VatGroup]] = {}
        for row in self.db.execute(f"SELECT {', '.join(GROUP_COLUMNS)} FROM invoice_vat_groups ORDER BY number, position"):
            groups.setdefault(row[0], []).append(_group(row))
        rows = self.db.execute(f"SELECT {', '.join(INVOICE_COLUMNS)} FROM invoices ORDER BY seq").fetchall()
        invoices = [_invoice(row, lines.get(row[1], []), groups.get(row[1], [])) for row in rows]
        credited_by: dict[str, list[str]] = {}
        replaces = {}
        for i in invoices:
            if i.credits:
                credited_by.setdefault(i.credits, []).append(i.number)
            if i.replaced_by:
                replaces[i.replaced_by] = i.number
        return [replace(i, credited_by=tuple(credited_by.get(i.number, ())), replaces=replaces.get(i.number))
                if i.number in credited_by or i.number in replaces else i for i in invoices]

    def stale_pdfs(self) -> set[str]:
        """Numbers of invoices whose PDF is not made yet or shows an older status."""
        rows = self.db.execute("SELECT number FROM invoices WHERE rendered_status IS NOT status")
        return {number for (number,) in rows}

    def mark_rendered(self, invoices: Iterable[Invoice]) -> None:
        with self.transaction():
            self.db.executemany("UPDATE invoices SET rendered_status = ? WHERE number = ?",
                                ((i.status.value, i.number) for i in invoices))

    def unreviewed(self) -> set[str]:
        """Numbers of invoices no run's review has shown yet: a run that died before its
        review leaves its invoices to the next run's."""
        return {number for (number,) in self.db.execute("SELECT number FROM invoices WHERE reviewed_in IS NULL")}

    def last_reviewed(self) -> set[str]:
        """Numbers of the invoices the latest review showed: the review of the newest invoice."""
        rows = self.db.execute("SELECT number FROM invoices WHERE reviewed_in = (SELECT reviewed_in FROM invoices "
                               "WHERE reviewed_in IS NOT NULL ORDER BY seq DESC LIMIT 1)")
        return {number for (number,) in rows}

    def output_stamp(self, name: str) -> tuple[str, int, int] | None:
        """(digest, size, mtime_ns) of the output file as last written, or None."""
        return self.db.execute("SELECT digest, size, mtime_ns FROM outputs WHERE name = ?", (name,)).fetchone()

    def record_output(self, name: str, stamp: tuple[str, int, int]) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO outputs VALUES (?, ?, ?, ?)", (name, *stamp))

    def mark_reviewed(self, numbers: Iterable[str], run_id: str) -> None:
        with self.transaction():
            self.db.executemany("UPDATE invoices SET reviewed_in = ? WHERE number = ?",
                                ((run_id, number) for number in numbers))

    def empty_cycles(self) -> dict[tuple[str, date], date]:
        """(contract, cycle start) -> the date of the run that found nothing to bill."""
        rows = self.db.execute("SELECT contract_id, cycle_start, run_date FROM empty_cycles")
        return {(c, date.fromisoformat(s)): date.fromisoformat(d) for c, s, d in rows}

    # Writing

    def issue(
        self,
        drafts: Iterable[Draft | CreditNote],
        empty: Iterable[Cycle],
        run_date: date,
        build: Callable[[int, Draft | CreditNote], Invoice],
        replaces: Mapping[str, str] | None = None,
    ) -> list[Invoice]:
        """Number and store the drafts and credit notes, and settle the empty cycles, in one
        transaction. build(n, document) makes the invoice or credit note that is number n of its
        series. replaces maps a draft's schedule ID to the number of the live invoice it replaces,
        which is kept as Replaced, or stays Credited when a credit note before it credits it in full.
        An invoice a credit note credits in part has its PDF made again, to name the credit note."""
        replaces = replaces or {}
        with self.transaction():
            (last,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM invoices").fetchone()
            places = dict(self.db.execute("SELECT doc_type, MAX(series_seq) FROM invoices GROUP BY doc_type"))
            invoices, place = [], []
            for document in drafts:
                series = DocType.CREDIT_NOTE if isinstance(document, CreditNote) else DocType.INVOICE
                places[series.value] = places.get(series.value, 0) + 1
                place.append(places[series.value])
                invoices.append(build(places[series.value], document))
                if isinstance(document, CreditNote) and document.credits:
                    self.db.execute("UPDATE invoices SET status = CASE WHEN ? THEN 'Credited' ELSE status END, "
                                    "rendered_status = NULL WHERE number = ?", (document.settles, document.credits))
            self.db.executemany(
                "UPDATE invoices SET status = CASE WHEN status = 'Credited' THEN status ELSE 'Replaced' END, "
                "replaced_by = ? WHERE number = ? AND status <> 'Replaced'",
                ((inv.number, replaces[inv.draft.schedule_id]) for inv in invoices
                 if inv.credits is None and inv.draft.schedule_id in replaces),
            )
            self.db.executemany(
                _insert("invoices", INVOICE_COLUMNS),
                (_invoice_row(last + i, inv, n) for i, (inv, n) in enumerate(zip(invoices, place), start=1)),
            )
            self.db.executemany(
                _insert("invoice_lines", LINE_COLUMNS),
                (_line_row(inv.number, n, line) for inv in invoices for n, line in enumerate(inv.draft.lines, 1)),
            )
            self.db.executemany(
                _insert("invoice_vat_groups", GROUP_COLUMNS),
                ((inv.number, n, g.category, str(g.rate), str(g.taxable), str(g.tax), g.exemption_reason, str(g.discount))
                 for inv in invoices for n, g in enumerate(inv.draft.vat_groups, 1)),
            )
            self.db.executemany(
                _insert("usage_rows", USAGE_COLUMNS),
                ((inv.number, n, u.usage_id, u.date.isoformat(), u.product, u.description, str(u.quantity),
                  str(u.unit_price), json.dumps(u.groups))
                 for inv in invoices for n, line in enumerate(inv.draft.lines, 1) for u in line.usage_rows),
            )
            self.db.executemany(
                _insert("adjustments", ADJUSTMENT_COLUMNS),
                (_adjustment_row(inv.number, n, line.adjusted)
                 for inv in invoices for n, line in enumerate(inv.draft.lines, 1) if line.adjusted),
            )
            self.db.executemany(
                "INSERT INTO empty_cycles VALUES (?, ?, ?, ?)",
                ((c.contract_id, c.start.isoformat(), c.end.isoformat(), run_date.isoformat()) for c in empty),
            )
        return invoices


def _insert(table: str, columns: list[str]) -> str:
    # by name: the columns later migrations add come last in the table, in the order they were added
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _create(path: Path) -> None:
    """A new ledger, made whole beside path and renamed into place: never a half-made file at path."""
    tmp = path.with_name(f".{path.name}.new")
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(tmp, isolation_level=None)
        try:
            migrations.migrate(db)
        finally:
            db.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _tables(db: sqlite3.Connection) -> set[str]:
    return {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _invoice_row(seq: int, inv: Invoice, series_seq: int) -> tuple:
    d = inv.draft
    return (
        seq, inv.number, d.contract_id, d.customer_id, d.customer_name, d.cycle_start.isoformat(),
        d.cycle_end.isoformat(), d.scheduled.isoformat(), inv.invoice_date.isoformat(),
        inv.due_date.isoformat(), d.currency, str(d.subtotal), str(d.discount), str(d.tax), str(d.total),
        str(d.discount_rate), str(d.tax_rate), inv.status.value, inv.replaced_by, inv.run_type.value,
        json.dumps(asdict(inv.seller)), json.dumps(asdict(inv.buyer)), inv.locale, None, None, d.tax_rounding,
        inv.doc_type.value, series_seq, inv.credits, inv.credits_date.isoformat() if inv.credits_date else None,
        inv.reason,
        int(d.change_log),
    )


def _line_row(number: str, n: int, line: Line) -> tuple:
    return (
        number, n, line.kind.value, line.product, line.description, line.period_start.isoformat(),
        line.period_end.isoformat(), str(line.quantity), str(line.unit_price), str(line.amount),
        int(line.prorated), line.subscription_id, line.usage_id, line.tax_category, str(line.tax_rate),
        line.credits_line, line.corrects, line.months, line.full_days,
    )


def _adjustment_row(number: str, n: int, a: Adjusted) -> tuple:
    c = a.charge
    return (number, n, a.contract_id, a.cycle_start.isoformat(), c.key, c.product, c.description,
            c.period_start.isoformat(), c.period_end.isoformat(), str(c.quantity), str(c.unit_price), str(c.amount),
            int(c.removed))


def _adjusted(row: tuple) -> Adjusted:
    (_, _, contract_id, cycle_start, key, product, description, start, end, quantity, unit_price, amount,
     removed) = row
    return Adjusted(contract_id, date.fromisoformat(cycle_start), Charge(
        key, product, description, date.fromisoformat(start), date.fromisoformat(end), Decimal(quantity),
        Decimal(unit_price), Decimal(amount), bool(removed)))


def _group(row: tuple) -> VatGroup:
    (_, _, category, rate, taxable, tax, reason, discount) = row
    return VatGroup(category, Decimal(rate), Decimal(taxable), Decimal(tax), reason, Decimal(discount))


def _usage_row(row: tuple) -> BilledUsage:
    (_, _, usage_id, day, product, description, quantity, unit_price, groups) = row
    return BilledUsage(usage_id, date.fromisoformat(day), product, description, Decimal(quantity),
                       Decimal(unit_price), tuple(tuple(pair) for pair in json.loads(groups)))


def _line(row: tuple, usage_rows: tuple[BilledUsage, ...] = (), adjusted: Adjusted | None = None) -> Line:
    (_, _, kind, product, description, start, end, quantity, unit_price, amount, prorated, sub_id, usage_id,
     tax_category, tax_rate, credits_line, corrects, months, full_days) = row
    return Line(
        kind=LineKind(kind),
        product=product,
        description=description,
        period_start=date.fromisoformat(start),
        period_end=date.fromisoformat(end),
        quantity=Decimal(quantity),
        unit_price=Decimal(unit_price),
        amount=Decimal(amount),
        prorated=bool(prorated),
        subscription_id=sub_id,
        usage_id=usage_id,
        tax_category=tax_category,
        tax_rate=Decimal(tax_rate),
        usage_rows=usage_rows,
        credits_line=credits_line,
        corrects=corrects,
        adjusted=adjusted,
        months=months,
        full_days=full_days,
    )


def _party(text: str) -> Party:
    fields = json.loads(text)
    fields["address_lines"] = tuple(fields["address_lines"])
    return Party(**fields)


def _invoice(row: tuple, lines: list[Line], groups: list[VatGroup] = ()) -> Invoice:
    """groups: the VAT breakdown as issued; an invoice issued before the ledger kept one had one
    group, S at its tax rate, holding every line less the discount."""
    r = dict(zip(INVOICE_COLUMNS, row))
    if not groups:
        groups = [VatGroup("S", Decimal(r["tax_rate"]), Decimal(r["subtotal"]) - Decimal(r["discount"]),
                           Decimal(r["tax"]), "", Decimal(r["discount"]))]
    draft = Draft(
        contract_id=r["contract_id"],
        customer_id=r["customer_id"],
        customer_name=r["customer_name"],
        cycle_start=date.fromisoformat(r["cycle_start"]),
        cycle_end=date.fromisoformat(r["cycle_end"]),
        scheduled=date.fromisoformat(r["scheduled"]),
        currency=r["currency"],
        lines=tuple(lines),
        subtotal=Decimal(r["subtotal"]),
        discount=Decimal(r["discount"]),
        tax=Decimal(r["tax"]),
        total=Decimal(r["total"]),
        discount_rate=Decimal(r["discount_rate"]),
        tax_rate=Decimal(r["tax_rate"]),
        vat_groups=tuple(groups),
        tax_rounding=r["tax_rounding"],
        change_log=bool(r["change_log"]),
    )
    return Invoice(
        number=r["number"],
        draft=draft,
        invoice_date=date.fromisoformat(r["invoice_date"]),
        due_date=date.fromisoformat(r["due_date"]),
        run_type=RunType(r["run_type"]),
        seller=_party(r["seller"]),
        buyer=_party(r["buyer"]),
        locale=r["locale"],
        status=InvoiceStatus(r["status"]),
        replaced_by=r["replaced_by"],
        doc_type=DocType(r["doc_type"]),
        credits=r["credits"],
        credits_date=date.fromisoformat(r["credits_date"]) if r["credits_date"] else None,
        reason=r["reason"],
    )
