"""The SQLite ledger: the system of record of issued invoices and billed cycles."""
from __future__ import annotations

import fcntl
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from billing_batch.model import (
    Cycle,
    Draft,
    Invoice,
    InvoiceStatus,
    Line,
    LineKind,
    Party,
    RunType,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS invoices (
    seq INTEGER PRIMARY KEY,  -- gapless: the next is always max + 1, and rows are never deleted
    number TEXT NOT NULL UNIQUE,
    contract_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    customer_name TEXT NOT NULL,
    cycle_start TEXT NOT NULL,
    cycle_end TEXT NOT NULL,
    scheduled TEXT NOT NULL,
    invoice_date TEXT NOT NULL,
    due_date TEXT NOT NULL,
    currency TEXT NOT NULL,
    subtotal TEXT NOT NULL,
    discount TEXT NOT NULL,
    tax TEXT NOT NULL,
    total TEXT NOT NULL,
    discount_rate TEXT NOT NULL,
    tax_rate TEXT NOT NULL,
    status TEXT NOT NULL,
    replaced_by TEXT,
    run_type TEXT NOT NULL,
    seller TEXT NOT NULL,
    buyer TEXT NOT NULL,
    locale TEXT NOT NULL,
    rendered_status TEXT,  -- the status its PDF shows; NULL until rendered
    reviewed_in TEXT  -- the run whose review page first showed it; NULL until then
);
-- The last line of defence against double billing: one live invoice per cycle.
CREATE UNIQUE INDEX IF NOT EXISTS one_live_invoice_per_cycle
    ON invoices (contract_id, cycle_start) WHERE status <> 'Replaced';
CREATE TABLE IF NOT EXISTS invoice_lines (
    number TEXT NOT NULL REFERENCES invoices (number),
    line INTEGER NOT NULL,
    kind TEXT NOT NULL,
    product TEXT NOT NULL,
    description TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit_price TEXT NOT NULL,
    amount TEXT NOT NULL,
    prorated INTEGER NOT NULL,
    subscription_id TEXT,
    usage_id TEXT,
    PRIMARY KEY (number, line)
);
-- Cycles that came due with nothing to bill: settled, so a rerun does not look at them again.
CREATE TABLE IF NOT EXISTS empty_cycles (
    contract_id TEXT NOT NULL,
    cycle_start TEXT NOT NULL,
    cycle_end TEXT NOT NULL,
    run_date TEXT NOT NULL,
    PRIMARY KEY (contract_id, cycle_start)
);
-- What each derived file was last written from, so an unchanged one is not written again.
CREATE TABLE IF NOT EXISTS outputs (
    name TEXT PRIMARY KEY,
    digest TEXT NOT NULL,  -- of the content written
    size INTEGER NOT NULL,  -- size and mtime of the file as written: if either changed, someone
    mtime_ns INTEGER NOT NULL  -- else wrote the file, and it is written again
);
"""

INVOICE_COLUMNS = (
    "seq number contract_id customer_id customer_name cycle_start cycle_end scheduled invoice_date "
    "due_date currency subtotal discount tax total discount_rate tax_rate status replaced_by run_type "
    "seller buyer locale rendered_status reviewed_in"
).split()
LINE_COLUMNS = (
    "number line kind product description period_start period_end quantity unit_price amount "
    "prorated subscription_id usage_id"
).split()


class LedgerBusy(Exception):
    """Another run holds the ledger."""


class Ledger:
    def __init__(self, path: Path, read_only: bool = False):
        """Open for writing, holding the lock for as long as it is open; read_only
        neither locks nor creates anything."""
        self.path = path
        self._lock = None
        if read_only:
            self.db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = open(path.with_name(path.name + ".lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise LedgerBusy(str(path)) from None
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA foreign_keys = ON")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
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
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # Reading

    def invoices(self) -> list[Invoice]:
        """Every invoice ever issued, in number order."""
        lines: dict[str, list[Line]] = {}
        for row in self.db.execute(f"SELECT {', '.join(LINE_COLUMNS)} FROM invoice_lines ORDER BY number, line"):
            lines.setdefault(row[0], []).append(_line(row))
        rows = self.db.execute(f"SELECT {', '.join(INVOICE_COLUMNS)} FROM invoices ORDER BY seq")
        return [_invoice(row, lines.get(row[1], [])) for row in rows]

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
        drafts: Iterable[Draft],
        empty: Iterable[Cycle],
        run_date: date,
        build: Callable[[int, Draft], Invoice],
        replaces: Mapping[str, str] | None = None,
    ) -> list[Invoice]:
        """Number and store the drafts, and settle the empty cycles, in one transaction.
        build(seq, draft) makes the invoice that gets sequence number seq. replaces maps a
        draft's schedule ID to the number of the live invoice it replaces, which is kept
        as Replaced."""
        replaces = replaces or {}
        with self.transaction():
            (last,) = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM invoices").fetchone()
            invoices = [build(last + i, draft) for i, draft in enumerate(drafts, start=1)]
            self.db.executemany(
                "UPDATE invoices SET status = 'Replaced', replaced_by = ? WHERE number = ? AND status <> 'Replaced'",
                ((inv.number, replaces[inv.draft.schedule_id]) for inv in invoices if inv.draft.schedule_id in replaces),
            )
            self.db.executemany(
                f"INSERT INTO invoices VALUES ({', '.join('?' * len(INVOICE_COLUMNS))})",
                (_invoice_row(last + i, inv) for i, inv in enumerate(invoices, start=1)),
            )
            self.db.executemany(
                f"INSERT INTO invoice_lines VALUES ({', '.join('?' * len(LINE_COLUMNS))})",
                (_line_row(inv.number, n, line) for inv in invoices for n, line in enumerate(inv.draft.lines, 1)),
            )
            self.db.executemany(
                "INSERT INTO empty_cycles VALUES (?, ?, ?, ?)",
                ((c.contract_id, c.start.isoformat(), c.end.isoformat(), run_date.isoformat()) for c in empty),
            )
        return invoices


def _invoice_row(seq: int, inv: Invoice) -> tuple:
    d = inv.draft
    return (
        seq, inv.number, d.contract_id, d.customer_id, d.customer_name, d.cycle_start.isoformat(),
        d.cycle_end.isoformat(), d.scheduled.isoformat(), inv.invoice_date.isoformat(),
        inv.due_date.isoformat(), d.currency, str(d.subtotal), str(d.discount), str(d.tax), str(d.total),
        str(d.discount_rate), str(d.tax_rate), inv.status.value, inv.replaced_by, inv.run_type.value,
        json.dumps(asdict(inv.seller)), json.dumps(asdict(inv.buyer)), inv.locale, None, None,
    )


def _line_row(number: str, n: int, line: Line) -> tuple:
    return (
        number, n, line.kind.value, line.product, line.description, line.period_start.isoformat(),
        line.period_end.isoformat(), str(line.quantity), str(line.unit_price), str(line.amount),
        int(line.prorated), line.subscription_id, line.usage_id,
    )


def _line(row: tuple) -> Line:
    (_, _, kind, product, description, start, end, quantity, unit_price, amount, prorated, sub_id, usage_id) = row
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
    )


def _party(text: str) -> Party:
    fields = json.loads(text)
    fields["address_lines"] = tuple(fields["address_lines"])
    return Party(**fields)


def _invoice(row: tuple, lines: list[Line]) -> Invoice:
    r = dict(zip(INVOICE_COLUMNS, row))
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
    )
