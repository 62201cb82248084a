"""The ledger's schema and its migrations: what brings a ledger of any release to SCHEMA_VERSION."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator

# The ledger's schema, as the migrations that made it: a ledger's PRAGMA user_version counts those it has had.
# A released migration is never edited (people's ledgers have had it); a schema change is a new one at the end.
MIGRATIONS: tuple[str, ...] = (
    # 1 (release 0.2.0): release 0.1.0's schema, which had no version. Its ledgers have every table but
    # the post-task ones, which it made on first use, so each statement may find its table there already.
    """
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
-- What the post-invoicing tasks did, one row per invoice and task.
CREATE TABLE IF NOT EXISTS post_tasks (
    number TEXT NOT NULL,
    task TEXT NOT NULL,
    done_at TEXT NOT NULL,   -- when it was last done or tried (UTC, ISO 8601)
    outcome TEXT NOT NULL,   -- done, outbox, failed, skipped or started
    reference TEXT NOT NULL, -- Message-ID, export file(s), SEPA file and end-to-end ID
    error TEXT NOT NULL,     -- why it failed or was skipped; blank when done
    PRIMARY KEY (number, task)
);
-- The direct debits collected, for the sequence type (first or recurring) of the next one.
CREATE TABLE IF NOT EXISTS post_sepa (
    number TEXT PRIMARY KEY,
    mandate_id TEXT NOT NULL,
    iban TEXT NOT NULL,
    amount TEXT NOT NULL,
    collection_date TEXT NOT NULL,
    sequence TEXT NOT NULL,   -- FRST or RCUR
    end_to_end_id TEXT NOT NULL,
    file TEXT NOT NULL
);
""",
    # 2 (release 0.2.0): taxes as EN 16931 has them: each line's VAT category and rate, and each invoice's VAT breakdown as
    # issued. A line issued before keeps S and its invoice's one rate, which is what it billed; an invoice
    # without breakdown rows has one group, S at its tax rate (ledger._invoice).
    """
ALTER TABLE invoice_lines ADD COLUMN tax_category TEXT NOT NULL DEFAULT 'S';
ALTER TABLE invoice_lines ADD COLUMN tax_rate TEXT NOT NULL DEFAULT '0';
UPDATE invoice_lines SET tax_rate = (SELECT tax_rate FROM invoices WHERE invoices.number = invoice_lines.number)
    WHERE number IN (SELECT number FROM invoices);
ALTER TABLE invoices ADD COLUMN tax_rounding TEXT NOT NULL DEFAULT 'Per Group';
CREATE TABLE invoice_vat_groups (
    number TEXT NOT NULL REFERENCES invoices (number),
    position INTEGER NOT NULL,
    category TEXT NOT NULL,      -- UNCL5305 code
    rate TEXT NOT NULL,
    taxable TEXT NOT NULL,       -- the group's lines less its share of the discount
    tax TEXT NOT NULL,
    exemption_reason TEXT NOT NULL,
    discount TEXT NOT NULL,      -- the group's share of the invoice's discount
    PRIMARY KEY (number, position)
);
""",
    # 3 (release 0.2.0): every billed usage row and the invoice line it went on, since a summary line
    # carries many. Release 0.1.0's ledgers billed one line per row: each such line becomes its row,
    # grouped by Product and Description, so no row billed then is billed again.
    """
CREATE TABLE usage_rows (
    number TEXT NOT NULL REFERENCES invoices (number),
    line INTEGER NOT NULL,
    usage_id TEXT NOT NULL,
    usage_date TEXT NOT NULL,
    product TEXT NOT NULL,
    description TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit_price TEXT NOT NULL,
    groups TEXT NOT NULL,  -- JSON [[column, value], ...]: the Usage columns its line was grouped by
    PRIMARY KEY (number, usage_id),
    FOREIGN KEY (number, line) REFERENCES invoice_lines (number, line)
);
INSERT INTO usage_rows
    SELECT number, line, usage_id, period_start, product, description, quantity, unit_price,
           json_array(json_array('Product', product), json_array('Description', description))
    FROM invoice_lines WHERE kind = 'Usage' AND usage_id IS NOT NULL ORDER BY number, line;
""",
    # 4 (release 0.3.0): credit notes. They are stored like invoices, numbered in a series of their own:
    # series_seq is a document's place in its series (an invoice's is its seq until now). A credit note
    # names the invoice it credits, and each of its lines the line it credits. The cycle's live document
    # is an issued invoice, or a credit note that credits none (a cycle totalling below zero); a Credited
    # invoice and the credit note correcting it leave the place to the cycle's new invoice.
    """
ALTER TABLE invoices ADD COLUMN doc_type TEXT NOT NULL DEFAULT 'Invoice';
ALTER TABLE invoices ADD COLUMN series_seq INTEGER;
UPDATE invoices SET series_seq = seq;
ALTER TABLE invoices ADD COLUMN credits TEXT REFERENCES invoices (number);
ALTER TABLE invoices ADD COLUMN credits_date TEXT;
ALTER TABLE invoices ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE invoice_lines ADD COLUMN credits_line INTEGER;
CREATE UNIQUE INDEX one_number_per_place ON invoices (doc_type, series_seq);
DROP INDEX one_live_invoice_per_cycle;
CREATE UNIQUE INDEX one_live_invoice_per_cycle ON invoices (contract_id, cycle_start)
    WHERE status NOT IN ('Replaced', 'Credited')
      AND credits IS NULL;
""",
    # 5 (release 0.3.0): mid-term changes billed as Adjustment lines. Each line says the invoice it corrects
    # and what it corrected (the cycle, the charge and the charge as billed after it), so no difference
    # is billed twice. An invoice of adjustments only (change_log) is no cycle's invoice, so the index
    # leaves it out too.
    """
ALTER TABLE invoices ADD COLUMN change_log INTEGER NOT NULL DEFAULT 0;
ALTER TABLE invoice_lines ADD COLUMN corrects TEXT;
CREATE TABLE adjustments (
    number TEXT NOT NULL,        -- the invoice carrying the Adjustment line
    line INTEGER NOT NULL,
    contract_id TEXT NOT NULL,   -- the cycle it corrects
    cycle_start TEXT NOT NULL,
    charge TEXT NOT NULL,        -- Recurring SUB-1, One-Time SUB-2 or Usage U-7
    product TEXT NOT NULL,       -- the charge as billed after the line
    description TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    quantity TEXT NOT NULL,
    unit_price TEXT NOT NULL,
    amount TEXT NOT NULL,        -- a usage row's exact amount; a subscription's line amount
    removed INTEGER NOT NULL,    -- 1: the charge is gone from the data
    PRIMARY KEY (number, line),
    FOREIGN KEY (number, line) REFERENCES invoice_lines (number, line)
);
DROP INDEX one_live_invoice_per_cycle;
CREATE UNIQUE INDEX one_live_invoice_per_cycle
    ON invoices (contract_id, cycle_start)
    WHERE status NOT IN ('Replaced', 'Credited')
      AND credits IS NULL
      AND change_log = 0;
""",
    # 6 (release 0.4.0): the factors of a price per month, so that every line can be checked by hand from
    # what it prints: quantity x unit price x months x days of the line / full_days (engine.pricing.exact_amount).
    # A line issued before has them NULL and is printed as it was issued: the ledger does not hold the
    # length of its full cycle, so nothing is guessed for it.
    """
ALTER TABLE invoice_lines ADD COLUMN months INTEGER;
ALTER TABLE invoice_lines ADD COLUMN full_days INTEGER;
""",
)
SCHEMA_VERSION = len(MIGRATIONS)
# Marks the file as a billing_batch ledger (PRAGMA application_id), so another program's database is
# never taken for one. Release 0.1.0's ledgers have 0 and are known by their invoices table.
APPLICATION_ID = 0x42424C47  # "BBLG"


def migrate(db: sqlite3.Connection) -> None:
    """Bring the ledger to SCHEMA_VERSION in one transaction: all the missing migrations or none."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    db.execute("BEGIN IMMEDIATE")
    try:
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in _statements(script):
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
        db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself on a full disk or I/O error
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _statements(script: str) -> Iterator[str]:
    """The statements of a script one by one: executescript() would commit the transaction first."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    if statement.strip():
        yield statement.strip()
