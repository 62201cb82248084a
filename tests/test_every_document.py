"""Every command over every kind of document: ONE ledger, built once through the command line, holding
an invoice, summarised usage with its usage details workbook, adjustment lines, a change-log invoice,
credit notes made automatically and by hand (whole and part of a line), a replaced invoice, a reverse
charge invoice and e-invoices; then every command, its preview and its --json run over it. Each call
must end without an internal error (exit 4) and do what it says."""
from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console
from test_einvoice import CUSTOMERS, HEADERS_EINV, SELLER
from test_post_send import Mailbox, SmtpServer
from test_post_tasks import parse_eml
from workbooks import contract, customer, settings, subscription, usage, write_book

from billing_batch import cli
from billing_batch.cli import terminal

HEADERS = {**HEADERS_EINV, "Contracts": HEADERS_EINV["Contracts"] + ["Usage Lines"],
           "Products": ["Product", "Account Code"]}
PRODUCTS = ("Platform", "Base fee", "API calls", "Seats", "Added seats", "February seats", "Licences", "Support",
            "Extra support", "Hosting", "Portal")
ADVANCE = {"Billing Policy": "Advance", "Billing Offset (Days)": 0, "Currency": "EUR"}
CONTRACTS = ("CTR-INV", "CTR-USE", "CTR-ADJ", "CTR-NEG", "CTR-Q", "CTR-RC", "CTR-EI")
JANUARY, FEBRUARY, MARCH = "2026-01-01", "2026-02-01", "2026-03-01"
DE_VAT = {"Tax Rate": 0.19}  # domestic customers of a VAT-registered seller: S at 19% (S at 0% is BB129)


def book(path: Path, stage: int, **more_settings) -> Path:
    """Stage 1 as first billed; stage 2 after mid-term changes to January (seats added to CTR-ADJ and
    CTR-Q, CTR-NEG's quantity lowered below what was billed); stage 3 adds seats to CTR-ADJ in February."""
    subs = [
        subscription("SUB-INV", "CTR-INV", 1, 100, Product="Platform"),
        subscription("SUB-USE", "CTR-USE", 1, 50, Product="Base fee"),
        subscription("SUB-ADJ", "CTR-ADJ", 10, 10, Product="Seats"),
        subscription("SUB-NEG", "CTR-NEG", 10 if stage == 1 else 1, 10, Product="Licences"),
        subscription("SUB-Q", "CTR-Q", 2, 30, Product="Support"),
        subscription("SUB-RC", "CTR-RC", 2, 500, Product="Hosting"),
        subscription("SUB-EI", "CTR-EI", 1, 250, Product="Portal"),
    ]
    if stage >= 2:
        subs += [subscription("SUB-ADJ2", "CTR-ADJ", 5, 10, Product="Added seats", **{"Start Date": date(2026, 1, 15)}),
                 subscription("SUB-Q2", "CTR-Q", 1, 30, Product="Extra support", **{"Start Date": date(2026, 1, 15)})]
    if stage >= 3:
        subs.append(subscription("SUB-ADJ3", "CTR-ADJ", 3, 10, Product="February seats",
                                 **{"Start Date": date(2026, 2, 10)}))
    rows = [usage(f"USG-{n}", "CTR-USE", date(2026, 1, 1 + n % 28), 1 + n % 5, 2,
                  Product="API calls", Description=("reads", "writes", "deletes")[n % 3]) for n in range(90)]
    return write_book(path, {
        "Customers": [customer("CUST-A", Country="DE", **DE_VAT), customer("CUST-B", Country="DE", **DE_VAT),
                      customer("CUST-C", Country="DE", **DE_VAT), CUSTOMERS["CUST-PE"] | {"Customer ID": "CUST-RC"},
                      CUSTOMERS["CUST-XR"]],
        "Contracts": [contract("CTR-INV", "CUST-A", **ADVANCE), contract("CTR-USE", "CUST-B", **ADVANCE, **{"Usage Lines": "Summary"}),
                      contract("CTR-ADJ", "CUST-A", **ADVANCE), contract("CTR-NEG", "CUST-B", **ADVANCE),
                      contract("CTR-Q", "CUST-C", **ADVANCE, **{"Billing Frequency": "Quarterly"}),
                      contract("CTR-RC", "CUST-RC", **ADVANCE, **{"Purchase Order": "PO-17"}), contract("CTR-EI", "CUST-XR", **ADVANCE)],
        "Subscriptions": subs,
        "Usage": rows,
        "Products": [{"Product": p, "Account Code": "200"} for p in PRODUCTS],
        "Settings": settings(**{**SELLER, "Locale": "en_US", "Usage Lines": "Summary", **more_settings}),
    }, headers=HEADERS)


def call(*args: str) -> tuple[int, str]:
    """One command through cli.main, as typed; its exit code and all it printed (tables and JSON)."""
    out = io.StringIO()
    saved, terminal.console = terminal.console, Console(file=out, highlight=False, width=250)
    try:
        with contextlib.redirect_stdout(out):
            code = cli.main(list(args))
    finally:
        terminal.console = saved
    text = out.getvalue()
    assert code != 4 and "Traceback" not in text and "internal error" not in text, (args, code, text)
    return code, text


def ok(*args: str) -> str:
    code, text = call(*args)
    assert code == 0, (args, text)
    return text


@dataclass
class Folder:
    root: Path

    @property
    def out(self) -> Path:
        return self.root / "out"

    def book(self, stage: int = 2) -> Path:
        return self.root / f"stage{stage}.xlsx"

    def io(self, stage: int = 2, as_of: str = FEBRUARY) -> list[str]:
        return ["--input", str(self.book(stage)), "--output", str(self.out), "--as-of", as_of, "--jobs", "1"]

    def rows(self, sql: str, *params) -> list[tuple]:
        with sqlite3.connect(self.out / "ledger.sqlite") as db:
            return db.execute(sql, params).fetchall()

    def number(self, contract_id: str, cycle_start: str, doc_type: str = "Invoice") -> str:
        return self.rows("SELECT number FROM invoices WHERE contract_id = ? AND cycle_start = ? AND status <> 'Replaced' "
                         "AND doc_type = ? ORDER BY seq", contract_id, cycle_start, doc_type)[0][0]


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Folder:
    with pytest.MonkeyPatch.context() as mp:  # conftest's own list of known ledgers is per test, this is per module
        mp.setenv("BILLING_BATCH_DATA", str(tmp_path_factory.mktemp("known-ledgers")))
        f = Folder(tmp_path_factory.mktemp("every"))
        for stage in (1, 2, 3):
            book(f.book(stage), stage)
        ok("run", *f.io(1, JANUARY))
        # generate --adjust: CTR-Q's added seats now, on an invoice of adjustments (a change log)
        assert "Extra support" in ok("generate", "--contract", "CTR-Q", "--adjust", *f.io())
        # February: Added seats adjust January; CTR-NEG's lowered quantity takes its cycle below zero
        ok("run", *f.io())
        jan_rc, jan_adj = f.number("CTR-RC", JANUARY), f.number("CTR-ADJ", JANUARY)
        ok("credit", "--invoice", jan_rc, "--reason", "Service outage", *f.io())
        ok("credit", "--invoice", jan_adj, "--line", "1", "--quantity", "2", "--reason", "Two seats unused", *f.io())
        assert "replacing" in ok("generate", "--contract", "CTR-INV", "--cycle", FEBRUARY, "--replace", *f.io())
        yield f


@pytest.fixture
def copy(ledger: Folder, tmp_path: Path) -> Folder:
    """The ledger's folder to change: commands that bill or post work on a copy."""
    shutil.copytree(ledger.root, tmp_path / "copy")
    return Folder(tmp_path / "copy")


def test_the_ledger_holds_every_kind_of_document(ledger: Folder):
    assert {t for (t,) in ledger.rows("SELECT DISTINCT doc_type FROM invoices")} == {"Invoice", "Credit Note"}
    assert {s for (s,) in ledger.rows("SELECT DISTINCT status FROM invoices")} >= {"Issued", "Replaced", "Credited"}
    assert {k for (k,) in ledger.rows("SELECT DISTINCT kind FROM invoice_lines")} == {
        "Recurring", "Usage", "Adjustment"}
    # the usage is summarised: 90 rows on a few lines, with the rows in a usage details workbook
    usage_lines = ledger.rows("SELECT number FROM invoice_lines WHERE kind = 'Usage'")
    assert 0 < len(usage_lines) <= 3
    assert (ledger.out / "invoices" / f"{usage_lines[0][0]}-usage.xlsx").is_file()
    # the change-log invoice of CTR-Q holds adjustments only
    change_log = ledger.rows("SELECT number FROM invoices WHERE contract_id = 'CTR-Q' AND change_log = 1")
    assert change_log, ledger.rows("SELECT number, change_log FROM invoices WHERE contract_id = 'CTR-Q'")
    assert {k for (k,) in ledger.rows("SELECT kind FROM invoice_lines WHERE number = ?", change_log[0][0])} == {
        "Adjustment"}
    # a credit note made by the run (CTR-NEG below zero), and two by hand (whole, part of a line)
    notes = dict(ledger.rows("SELECT contract_id, count(*) FROM invoices WHERE doc_type = 'Credit Note' "
                             "GROUP BY contract_id"))
    assert notes["CTR-NEG"] == 1 and notes["CTR-RC"] == 1 and notes["CTR-ADJ"] == 1
    assert ledger.rows("SELECT status FROM invoices WHERE number = ?", ledger.number("CTR-RC", JANUARY)) == [
        ("Credited",)]
    replaced = ledger.rows("SELECT number, replaced_by FROM invoices WHERE status = 'Replaced'")
    assert len(replaced) == 1 and replaced[0][1]
    assert ledger.rows("SELECT DISTINCT category FROM invoice_vat_groups WHERE number = ?",
                       ledger.number("CTR-RC", FEBRUARY)) == [("AE",)]
    assert (ledger.out / "einvoices" / f"{ledger.number('CTR-EI', JANUARY)}.xml").is_file()


def test_check_and_its_json(ledger: Folder):
    code, text = call("check", *ledger.io())
    assert code == 0 and "No problems found" in text
    code, text = call("check", "--json", *ledger.io())
    assert code == 0 and json.loads(text)["problems"] == []


def test_run_preview_shows_the_adjustment_lines_and_its_json_too(ledger: Folder):
    code, text = call("run", "--preview", *ledger.io(3, MARCH))
    assert code == 0, text
    assert "Adjustment" in text and "February seats" in text and "CTR-ADJ" in text
    code, text = call("run", "--preview", "--json", *ledger.io(3, MARCH))
    assert code == 0
    groups = {d["contract_id"]: d["groups"] for d in json.loads(text)["invoices"]}
    assert groups["CTR-ADJ"]["Adjustment"][0]["product"] == "February seats"
    assert set(groups) >= {"CTR-INV", "CTR-USE", "CTR-ADJ", "CTR-NEG", "CTR-RC", "CTR-EI"}


@pytest.mark.parametrize("contract_id", CONTRACTS)
def test_preview_each_contract_and_its_json(ledger: Folder, contract_id: str):
    code, text = call("preview", "--contract", contract_id, *ledger.io(3, MARCH))
    assert code in (0, 3) and contract_id in text, text
    code, text = call("preview", "--contract", contract_id, "--json", *ledger.io(3, MARCH))
    assert code in (0, 3)
    drafts = json.loads(text)["invoices"]
    assert all(d["contract_id"] == contract_id for d in drafts)
    if contract_id == "CTR-ADJ":
        assert "February seats" in {line["product"] for line in drafts[0]["groups"]["Adjustment"]}


def test_generate_every_contract_for_real(copy: Folder):
    code, text = call("generate", *(a for c in CONTRACTS for a in ("--contract", c)), "--allow-future",
                      *copy.io(3, MARCH))
    assert code == 0, text
    assert "Adjustment" in text and "February seats" in text  # the preview generate shows before billing
    for contract_id in CONTRACTS:
        assert f"{contract_id} " in text
    assert text.count("Invoiced INV-") == len(CONTRACTS), text


def test_generate_adjust_bills_the_pending_adjustment_now(copy: Folder):
    code, text = call("generate", "--contract", "CTR-ADJ", "--adjust", *copy.io(3, "2026-02-20"))
    assert code == 0, text
    assert "Adjustment" in text and "February seats" in text and "Invoiced INV-" in text
    code, text = call("generate", "--contract", "CTR-ADJ", "--adjust", *copy.io(3, "2026-02-20"))
    assert code == 0 and "no adjustment is pending for CTR-ADJ" in text


def test_schedules(ledger: Folder):
    code, text = call("schedules", *ledger.io())
    assert code == 0 and all(c in text for c in CONTRACTS)
    code, text = call("schedules", "--contract", "CTR-Q", *ledger.io())
    assert code == 0 and "CTR-Q" in text and "CTR-INV" not in text


def test_credit_whole_and_part(copy: Folder):
    number = copy.number("CTR-EI", FEBRUARY)
    code, text = call("credit", "--invoice", number, "--line", "1", "--amount", "10", "--reason", "Goodwill",
                      *copy.io())
    assert code == 0 and f"crediting {number}" in text and "still due" in text, text
    code, text = call("credit", "--invoice", number, "--reason", "Cancelled", *copy.io())
    assert code == 0 and "Credited in full" in text, text
    code, text = call("credit", "--invoice", number, "--reason", "Again", *copy.io())
    assert code == 1 and "Not credited" in text


def test_review_without_a_browser(ledger: Folder):
    code, text = call("review", "--no-open", "--output", str(ledger.out))
    assert code == 0 and "review.html" in text
    code, text = call("review", "--list", "--output", str(ledger.out))
    assert code == 0 and "run" in text


def test_ledger_check_and_its_json(ledger: Folder):
    code, text = call("ledger", "check", "--output", str(ledger.out), "--jobs", "1")
    assert code == 0, text
    code, text = call("ledger", "check", "--json", "--output", str(ledger.out), "--jobs", "1")
    assert code == 0 and json.loads(text) == []  # no problem found


def test_post_sync_and_charge_write_their_files(copy: Folder):
    code, text = call("post", "--tasks", "sync,charge", *copy.io())
    assert code == 0 and "Post tasks" in text, text  # no mandate: not charged, which is no failure
    assert "sync: not exported" not in text
    exports = {p.name.split("-2026")[0] for p in (copy.out / "exports").iterdir()}
    assert {"xero-sales-invoices", "xero-credit-notes", "quickbooks-invoices", "sepa-direct-debit",
            "refunds-to-transfer"} <= exports, exports


def test_post_send_over_a_real_smtp_server(copy: Folder):
    mailbox = Mailbox()
    server = SmtpServer(mailbox).start()
    try:
        book(copy.book(2), 2, **{"SMTP Host": "127.0.0.1", "SMTP Port": server.port, "SMTP Security": "None"})
        code, text = call("post", "--tasks", "send", *copy.io())
    finally:
        server.stop()
    assert code == 0, text
    live = copy.rows("SELECT number FROM invoices WHERE status <> 'Replaced'")
    sent = [re.search(r"(?:INV|CN)-\d+", parse_eml(data)["Subject"])[0] for _, _, data in mailbox.messages]
    assert sorted(sent) == sorted(n for (n,) in live)


def test_validate_einvoice_on_one_the_run_made(ledger: Folder):
    xml = ledger.out / "einvoices" / f"{ledger.number('CTR-EI', FEBRUARY)}.xml"
    code, text = call("validate-einvoice", str(xml))
    assert code == 0 and "XRechnung" in text, text


def test_templates_export(tmp_path: Path):
    code, text = call("templates", "--export", str(tmp_path / "mine"))
    assert "invoice.html" in text
    assert code == 0 and (tmp_path / "mine" / "invoice.html").is_file()
