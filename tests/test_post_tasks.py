"""Post tasks as a whole: once per invoice, whatever is rerun; Replaced invoices; the Billed status.

The invoices come from the real pipeline (a small workbook billed once per session, its output
copied for each test). The workbook loader does not read the new columns yet (CC, IBAN, BIC, Mandate
ID, Mandate Date, the Products sheet, the SMTP and creditor settings), so `post_inputs` adds them
to the loaded Inputs the way the loader will. test_post_send, test_post_sync and test_post_charge
import the fixtures from here.
"""
from __future__ import annotations

import argparse
import dataclasses
import email
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timezone
from email import policy
from pathlib import Path

import openpyxl
import pytest
from rich.console import Console
from workbooks import contract, customer, settings, subscription, usage, write_book

from billing_batch import pipeline, workspace
from billing_batch.cli.parser import task_list
from billing_batch.cli.post import attention_lines, outcome_table
from billing_batch.ledger.store import Ledger
from billing_batch.model import Inputs, InvoiceStatus, Product, Source
from billing_batch.post import (
    TASKS,
    Outcome,
    after_billing,
    is_billed,
    live_invoices,
    run_post_tasks,
    summary,
    task_status,
)
from billing_batch.post.records import STARTED, Records

AS_OF = date(2026, 3, 2)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=timezone.utc)
TEMPLATES = workspace.TEMPLATES
CREDITOR = {"creditor_iban": "DE89 3704 0044 0532 0130 00", "creditor_bic": "COBADEFFXXX",
            "creditor_id": "DE98ZZZ09999999999"}
MANDATES = {  # customer -> (IBAN, BIC, Mandate ID, Mandate Date)
    "CUST-2": ("FR14 2004 1010 0505 0001 3M02 606", "PSSTFRPPXXX", "MANDATE-0002", date(2025, 6, 1)),
    "CUST-3": ("NL91ABNA0417164300", "", "MANDATE-0003", date(2025, 7, 1)),  # no BIC: IBAN-only
    "CUST-1": ("DE89370400440532013000", "COBADEFFXXX", "MANDATE-0001", date(2025, 1, 1)),  # but bills USD
}
PRODUCTS = {"Platform": ("4000", "Tax on Sales"), "Support": ("4100", "Tax on Sales"),
            "API calls": ("4200", "Tax on Sales")}


def billing_book(path: Path) -> Path:
    """Four monthly contracts from 2026-01-01: USD; EUR with 20% tax, 10% discount and two
    products; EUR for a customer without an email; EUR for a customer without a mandate."""
    return write_book(path, {
        "Customers": [
            customer("CUST-1"),
            customer("CUST-2", Name="Kunde Zwei GmbH", **{"Tax Rate": 0.2, "Country": "DE"}),
            customer("CUST-3", Email=None, Name="Drie BV", Country="NL"),
            customer("CUST-4", Name="Quatre SARL", Country="FR"),
        ],
        "Contracts": [
            contract("CTR-1", "CUST-1"),
            contract("CTR-2", "CUST-2", Currency="EUR", Discount=0.1, **{"Payment Terms (Days)": 14}),
            contract("CTR-3", "CUST-3", Currency="EUR"),
            contract("CTR-4", "CUST-4", Currency="EUR"),
        ],
        "Subscriptions": [
            subscription("SUB-1", "CTR-1", 2, 50),
            subscription("SUB-2", "CTR-2", 3, 333.33),
            {**subscription("SUB-2B", "CTR-2", 1, 99.99), "Product": "Support", "Description": "Priority support"},
            subscription("SUB-3", "CTR-3", 1, 500),
            subscription("SUB-4", "CTR-4", 1, 250),
        ],
        # 1234 calls at 0.0125 = 15.425, billed 15.43: not exactly quantity x price
        "Usage": [usage("USG-1", "CTR-1", date(2026, 1, 15), 1234, 0.0125)],
        "Settings": settings(**{"Company Name": "Acme Billing Ltd", "Company Email": "billing@acme.example"}),
    })


def post_inputs(inputs: Inputs, **setting_changes) -> Inputs:
    """The loaded Inputs plus what the loader of the new columns will give."""
    customers = {}
    for cid, c in inputs.customers.items():
        if cid in MANDATES:
            iban, bic, mandate, signed = MANDATES[cid]
            c = dataclasses.replace(c, iban=iban, bic=bic, mandate_id=mandate, mandate_date=signed)
        customers[cid] = c
    contracts = dict(inputs.contracts)
    contracts["CTR-2"] = dataclasses.replace(contracts["CTR-2"], cc="ap@kunde.example; Controller <cfo@kunde.example>")
    products = {name: Product(name, code, tax, Source("billing.xlsx", "Products", n + 2))
                for n, (name, (code, tax)) in enumerate(PRODUCTS.items())}
    settings_ = dataclasses.replace(inputs.settings, **{**CREDITOR, **setting_changes})
    return dataclasses.replace(inputs, settings=settings_, customers=customers, contracts=contracts, products=products)


@dataclass
class Billed:
    """A billed output folder (ledger and PDFs) and the Inputs it was billed from."""

    out: Path
    inputs: Inputs

    @property
    def ledger_path(self) -> Path:
        return self.out / "ledger.sqlite"

    def invoices(self):
        with Ledger(self.ledger_path, read_only=True) as ledger:
            return ledger.invoices()

    def post(self, tasks=TASKS, inputs: Inputs | None = None, invoices=None, now: datetime = NOW,
             again: bool = False, environ=None, templates: Path = TEMPLATES) -> list[Outcome]:
        with Ledger(self.ledger_path) as ledger:
            if invoices is None:
                invoices, _ = live_invoices(ledger)
            return run_post_tasks(ledger, invoices, inputs or self.inputs, tasks, self.out, templates, now,
                                  again=again, environ=environ if environ is not None else {})

    def status(self) -> dict[str, dict[str, str]]:
        with Ledger(self.ledger_path) as ledger:
            return task_status(ledger)


_BILLED: list[tuple[Path, Inputs]] = []  # the other test modules import this fixture: bill once per session


@pytest.fixture(scope="session")
def billed_once(tmp_path_factory) -> tuple[Path, Inputs]:
    if not _BILLED:
        _BILLED.append(_bill(tmp_path_factory.mktemp("billed")))
    return _BILLED[0]


def _bill(root: Path) -> tuple[Path, Inputs]:
    book = billing_book(root / "billing.xlsx")
    options = pipeline.Options(input=book, output=root / "out", as_of=AS_OF, jobs=1)
    report = pipeline.run(options)
    assert report.exit_code == 0, [str(p) for p in report.problems]
    assert len(report.issued) == 8
    checked = pipeline.load(options, pipeline.Report())
    return root / "out", post_inputs(checked.inputs)


@pytest.fixture
def billed(billed_once, tmp_path) -> Billed:
    source, inputs = billed_once
    out = tmp_path / "out"
    shutil.copytree(source, out)
    return Billed(out, inputs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_number(outcomes: list[Outcome], task: str) -> dict[str, Outcome]:
    return {o.number: o for o in outcomes if o.task == task}


def parse_eml(data: bytes):
    return email.message_from_bytes(data, policy=policy.default)


# ---------------------------------------------------------------- tests


def test_the_sample_invoices(billed: Billed):
    numbers = [(i.number, i.draft.contract_id, i.draft.currency) for i in billed.invoices()]
    assert numbers == [
        ("INV-000001", "CTR-1", "USD"), ("INV-000002", "CTR-2", "EUR"), ("INV-000003", "CTR-3", "EUR"),
        ("INV-000004", "CTR-4", "EUR"), ("INV-000005", "CTR-1", "USD"), ("INV-000006", "CTR-2", "EUR"),
        ("INV-000007", "CTR-3", "EUR"), ("INV-000008", "CTR-4", "EUR"),
    ]


def test_parse_tasks():
    assert task_list("send,sync,charge") == TASKS
    assert task_list(" Charge , send,send ") == ("charge", "send")
    assert task_list("all") == TASKS
    with pytest.raises(argparse.ArgumentTypeError, match="'mail'"):
        task_list("send,mail")
    with pytest.raises(argparse.ArgumentTypeError):
        task_list("")


def test_an_unknown_task_is_refused_before_anything_is_done(billed: Billed):
    with pytest.raises(ValueError, match="fax"):
        billed.post(("send", "fax"))
    assert billed.status() == {}
    assert not (billed.out / "outbox").exists()


def test_every_task_runs_once_per_invoice_whatever_is_rerun(billed: Billed):
    first = billed.post()
    assert summary(first) == {
        "send": {"outbox": 6, "failed": 2},  # CUST-3 has no email: reported, not skipped silently
        "sync": {"done": 8},
        "charge": {"done": 4, "not done": 4},  # CTR-2 and CTR-3 by SEPA; USD and no-mandate listed
    }
    files = sorted(p.name for p in (billed.out / "exports").iterdir())
    outbox = {p.name: p.stat().st_mtime_ns for p in (billed.out / "outbox").iterdir()}

    for _ in range(2):
        again = billed.post()
        assert summary(again) == {
            "send": {"already done": 6, "failed": 2},
            "sync": {"already done": 8},
            "charge": {"already done": 4, "not done": 4},
        }
    assert sorted(p.name for p in (billed.out / "exports").iterdir()) == files  # no new export, no new SEPA file
    assert {p.name: p.stat().st_mtime_ns for p in (billed.out / "outbox").iterdir()} == outbox

    # one Outcome per invoice and task, in task order, then invoice order
    assert [(o.task, o.number) for o in again] == [(t, f"INV-{n:06d}") for t in TASKS for n in range(1, 9)]
    reasons = {o.number: o.skipped_reason for o in again if o.task == "charge" and not o.ok}
    assert reasons["INV-000001"].startswith("not charged: the invoice is in USD")
    assert reasons["INV-000004"].startswith("not charged: customer CUST-4 has no SEPA mandate")


def test_only_the_named_tasks_run(billed: Billed):
    outcomes = billed.post(("sync",))
    assert {o.task for o in outcomes} == {"sync"}
    assert not (billed.out / "outbox").exists()
    assert [p.name.split("-")[0] for p in sorted((billed.out / "exports").iterdir())] == ["quickbooks", "xero"]


def test_task_status_gives_the_schedule_its_billed_status(billed: Billed):
    assert billed.status() == {}
    billed.post(("sync",), invoices=[i for i in billed.invoices() if i.number in ("INV-000001", "INV-000002")])
    billed.post(("send",))
    status = billed.status()
    assert status["INV-000001"] == {"send": "outbox", "sync": "done"}
    assert status["INV-000003"] == {"send": "failed"}
    assert status["INV-000005"] == {"send": "outbox"}
    assert is_billed(status["INV-000001"])  # synced
    assert not is_billed(status["INV-000005"])  # only in the outbox: not sent yet
    assert not is_billed(status["INV-000003"])
    with Ledger(billed.ledger_path, read_only=True) as ledger:
        assert task_status(ledger) == status  # readable by read-only commands too


def test_a_ledger_without_post_tasks_reads_as_nothing_done(billed: Billed):
    with Ledger(billed.ledger_path, read_only=True) as ledger:
        assert task_status(ledger) == {}


def test_a_replaced_invoice_is_never_processed_and_its_replacement_is(billed: Billed):
    # Reissue CTR-2's January invoice (INV-000002) before any post task: it is Replaced, not credited.
    # (Once sent, synced or charged it would be corrected by a credit note: test_post_credit_notes.)
    book = billing_book(billed.out.parent / "billing.xlsx")
    options = pipeline.Options(input=book, output=billed.out, as_of=date(2026, 3, 3), jobs=1)
    report = pipeline.generate(options, ["CTR-2"], date(2026, 1, 15), lambda proposals: proposals)
    (replacement,) = report.issued
    assert replacement.number == "INV-000009"

    with Ledger(billed.ledger_path) as ledger:
        invoices, unknown = live_invoices(ledger, ["INV-000002", "INV-000009", "INV-999999"])
    assert [i.number for i in invoices] == ["INV-000002", "INV-000009"] and unknown == ["INV-999999"]
    assert invoices[0].status is InvoiceStatus.REPLACED

    outcomes = billed.post(invoices=invoices)
    old = [o for o in outcomes if o.number == "INV-000002"]
    assert [o.task for o in old] == list(TASKS)
    assert all(not o.ok and o.skipped_reason.startswith("replaced by INV-000009") for o in old)
    new = {o.task: o for o in outcomes if o.number == "INV-000009"}
    assert new["send"].ok and new["send"].reference == "outbox/INV-000009.eml"
    body = parse_eml((billed.out / "outbox" / "INV-000009.eml").read_bytes()).get_body(("plain",)).get_content()
    assert "replaces invoice INV-000002" in body
    assert new["sync"].ok and new["sync"].note == ""  # INV-000002 never reached the accounting system
    assert new["charge"].ok  # nor the bank

    with Ledger(billed.ledger_path, read_only=True) as ledger:
        live, _ = live_invoices(ledger)
    assert "INV-000002" not in [i.number for i in live] and "INV-000009" in [i.number for i in live]


def test_a_file_export_interrupted_before_its_file_was_in_place_is_done_again(billed: Billed):
    with Ledger(billed.ledger_path) as ledger:
        Records(ledger).mark("INV-000001", "sync", STARTED, "exports/xero-sales-invoices-lost.csv; "
                                                               "exports/quickbooks-invoices-lost.csv")
    outcomes = by_number(billed.post(("sync",)), "sync")
    assert outcomes["INV-000001"].ok and "lost" not in outcomes["INV-000001"].reference


def test_again_repeats_a_task_that_succeeded(billed: Billed):
    billed.post(("sync",))
    outcomes = billed.post(("sync",), invoices=[billed.invoices()[0]], again=True)
    assert [o.status for o in outcomes] == ["done"]
    assert len(list((billed.out / "exports").glob("xero-*.csv"))) == 2


def test_the_post_command_reads_the_workbook_and_reports(billed: Billed, monkeypatch, tmp_path: Path):
    real_check = workspace.check

    def check_with_new_columns(book, *usage_file):  # what the loader of the new columns will give
        checked = real_check(book, *usage_file)
        return dataclasses.replace(checked, inputs=post_inputs(checked.inputs))

    monkeypatch.setattr(workspace, "check", check_with_new_columns)
    book = billing_book(tmp_path / "billing.xlsx")
    options = pipeline.Options(input=book, output=billed.out, as_of=AS_OF)

    result = pipeline.post(options, ("sync", "charge"), environ={}, now=NOW)
    assert result.exit_code == 0  # "not charged" is listed, not a failure
    assert summary(result.outcomes) == {"sync": {"done": 8}, "charge": {"done": 4, "not done": 4}}
    console = Console(record=True, width=200)
    console.print(outcome_table(result.outcomes))
    for line in attention_lines(result.outcomes):
        console.print(line)
    shown = console.export_text()
    assert "sync" in shown and "Not done" in shown
    assert "INV-000004, INV-000008 charge: not charged: customer CUST-4 has no SEPA mandate" in shown

    result = pipeline.post(options, ("send",), numbers=["INV-000003"], environ={}, now=NOW)
    assert result.exit_code == 1 and result.outcomes[0].error.startswith("customer CUST-3 (Drie BV) has no email")
    assert pipeline.post(options, ("send",), numbers=["INV-000042"], now=NOW).exit_code == 3

    with pytest.raises(pipeline.Refused, match="no ledger"):
        pipeline.post(dataclasses.replace(options, output=tmp_path / "empty"), ("send",), now=NOW)


def test_after_billing_takes_the_new_invoices_and_retries_the_failed_ones(billed: Billed):
    with Ledger(billed.ledger_path) as ledger:
        invoices = ledger.invoices()
        assert after_billing(ledger, invoices, billed.inputs, (), billed.out, TEMPLATES) == []
        # a first run: INV-000003 (no email) fails
        first = after_billing(ledger, invoices[:4], billed.inputs, ("send", "sync"), billed.out, TEMPLATES,
                                      environ={}, now=NOW)
        assert [(o.task, o.number, o.status) for o in first if o.status != "outbox"] == [
            ("send", "INV-000003", "failed"),
            ("sync", "INV-000001", "done"), ("sync", "INV-000002", "done"),
            ("sync", "INV-000003", "done"), ("sync", "INV-000004", "done")]
        # the next run's new invoice, the earlier failure, and the invoices issued since the task was first
        # used that it never did (6-8: as after a run that stopped before its tasks); charge, never used
        # before, takes only the new invoice
        nxt = after_billing(ledger, invoices[4:5], billed.inputs, ("send", "sync", "charge"), billed.out,
                                    TEMPLATES, environ={}, now=NOW)
    assert [(o.task, o.number[-1]) for o in nxt] == [
        ("send", "5"), ("send", "3"), ("send", "6"), ("send", "7"), ("send", "8"),
        ("sync", "5"), ("sync", "6"), ("sync", "7"), ("sync", "8"), ("charge", "5")]


def test_again_must_name_its_invoices(billed: Billed):
    options = pipeline.Options(input=billed.out, output=billed.out, as_of=AS_OF)
    with pytest.raises(pipeline.Refused, match="--invoice"):
        pipeline.post(options, ("send",), again=True)


# ---------------------------------------------------------------- through the command line, once wired


def test_through_the_command_line(tmp_path: Path):
    """`run --post-tasks` then `post --tasks ... --invoice ... --again`, with the optional workbook
    columns and settings the post tasks read."""
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer("CUST-1", IBAN="DE89370400440532013000", BIC="COBADEFFXXX",
                               **{"Mandate ID": "M-1", "Mandate Date": date(2025, 1, 1)})],
        "Contracts": [contract("CTR-1", "CUST-1", Currency="EUR", CC="ap@example.com")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 2, 50)],
        "Products": [{"Product": "Platform", "Account Code": "4000", "Tax Type": "Tax Exempt"}],
        "Settings": settings(**{"Company Email": "billing@acme.example", "Creditor IBAN": CREDITOR["creditor_iban"],
                                "Creditor BIC": CREDITOR["creditor_bic"], "Creditor ID": CREDITOR["creditor_id"]}),
    }, headers={
        "Customers": ["Customer ID", "Name", "Email", "Address", "City", "Postal Code", "Country", "Tax Rate",
                      "IBAN", "BIC", "Mandate ID", "Mandate Date"],
        "Contracts": ["Contract ID", "Customer ID", "Start Date", "End Date", "Billing Frequency", "Billing Policy",
                      "Billing Offset (Days)", "Currency", "Payment Terms (Days)", "Discount", "Status", "CC"],
        "Products": ["Product", "Account Code", "Tax Type"],
    })
    out = tmp_path / "out"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "BILLING_BATCH_DATA": os.environ["BILLING_BATCH_DATA"]})

    result = cli("run", "--input", str(book), "--output", str(out), "--as-of", "2026-02-02", "--jobs", "1",
                 "--post-tasks", "send,sync,charge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "outbox" / "INV-000001.eml").exists()
    assert len(list((out / "exports").glob("xero-sales-invoices-*.csv"))) == 1
    assert len(list((out / "exports").glob("sepa-direct-debit-*.xml"))) == 1
    book_out = openpyxl.load_workbook(out / "billing_schedules.xlsx", read_only=True)
    (invoice_row,) = list(book_out["Invoices"].iter_rows(min_row=2, values_only=True))
    assert "INV-000001" in invoice_row[0] and "Billed" in invoice_row  # synced: Billed in both sheets
    assert "Billed" in next(r for r in book_out["Billing Schedules"].iter_rows(min_row=2, values_only=True)
                            if "INV-000001" in str(r[9]))

    result = cli("post", "--input", str(book), "--output", str(out), "--tasks", "sync,charge")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((out / "exports").iterdir())) == 3  # nothing exported or charged twice

    result = cli("post", "--input", str(book), "--output", str(out), "--tasks", "sync", "--invoice", "INV-000001",
                 "--again")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((out / "exports").glob("xero-sales-invoices-*.csv"))) == 2
