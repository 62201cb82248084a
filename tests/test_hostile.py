"""Hostile content, end to end through `billing-batch run`: nothing typed into the workbook is ever
executed by Excel, rendered as markup, fetched from the network or used as a path; the input is
never modified; and a failure mid-write never leaves a half-written output."""
from __future__ import annotations

import hashlib
import io
import os
import re
import socket
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader
from rich.console import Console

from billing_batch import cli
from billing_batch.cli import terminal
from billing_batch.documents.cell_writer import CellWriter
from billing_batch.review import schedule_book
from workbooks import contract, customer, settings, subscription, write_book

AS_OF = "2026-02-02"  # January is due for every contract starting 2026-01-01
FORMULAS = ['=HYPERLINK("http://127.0.0.1:9/x","Click me")', "+1+1", "-2+3", "@SUM(A1:A2)",
            "=cmd|' /C calc'!A0"]


def run(book: Path, out: Path, monkeypatch, as_of: str = AS_OF) -> tuple[int, str]:
    stdout = io.StringIO()
    monkeypatch.setattr(terminal, "console", Console(file=stdout, highlight=False, width=1000))
    code = cli.main(["run", "--input", str(book), "--output", str(out), "--as-of", as_of, "--jobs", "1"])
    return code, stdout.getvalue()


def as_text_cells(path: Path) -> Path:
    """Store every value beginning with = as text, as Excel does for '=... typed with an apostrophe
    (openpyxl would otherwise save it as a formula)."""
    wb = openpyxl.load_workbook(path)
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                if cell.data_type == "f":
                    cell.data_type = "s"
    wb.save(path)
    return path


def pdf_text(path: Path) -> str:
    return "".join("".join(page.extract_text().split()) for page in PdfReader(path).pages)


def test_text_that_looks_like_a_formula_is_stored_as_text(tmp_path, monkeypatch):
    customers = [customer(f"CUST-{i}", Name=name) for i, name in enumerate(FORMULAS)]
    customers.append(customer("CUST-T", Name="\tTabbed", City="\rReturned"))
    book = as_text_cells(write_book(tmp_path / "billing.xlsx", {
        "Customers": customers,
        "Contracts": [contract(f"CTR-{c['Customer ID']}", c["Customer ID"]) for c in customers],
        "Subscriptions": [subscription(f"SUB-{i}", f"CTR-CUST-{i}", Product=f, Description=f)
                          for i, f in enumerate(FORMULAS)] + [subscription("SUB-T", "CTR-CUST-T")],
        "Settings": settings(),
    }))
    code, stdout = run(book, tmp_path / "out", monkeypatch)
    assert code == 0, stdout

    wb = openpyxl.load_workbook(tmp_path / "out" / "billing_schedules.xlsx")  # not data_only: formulas show
    found = {}
    for ws in wb:
        for row in ws.iter_rows(min_row=2):
            for cell in row:
                if isinstance(cell.value, str):
                    found.setdefault(cell.value, set()).add(cell.data_type)
                    # leading tabs and carriage returns are trimmed on the way in, like other spaces
                    assert not cell.value.startswith(("\t", "\r")), cell.value
    for text in FORMULAS:
        assert found.get(text) == {"s"}, (text, found.get(text))
    assert found.get("Tabbed") == {"s"}
    # the only formulas are the batch's own links to its PDFs
    formulas = {v for v, types in found.items() if "f" in types}
    assert formulas and all(re.fullmatch(r'=HYPERLINK\("invoices/INV-\d{6}\.pdf","INV-\d{6}"\)', f) for f in formulas)


@pytest.fixture
def listener():
    """A server on a free local port that records whether anything connected to it."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.setblocking(False)
    yield f"127.0.0.1:{server.getsockname()[1]}", server
    server.close()


def connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def test_markup_is_printed_as_text_and_nothing_is_fetched(tmp_path, monkeypatch, listener):
    address, server = listener
    img = f'<img src="http://{address}/x.png">'
    markup = {
        "Description": f"{img}<b>bold</b>",
        "Product": f'<link rel="stylesheet" href="http://{address}/evil.css">',
        "Name": f'<style>@import url("http://{address}/s.css");</style>Evil & Co',
        "Address": f'<iframe src="file:///etc/passwd"></iframe><object data="http://{address}/o">',
        "Company Name": f'<script src="http://{address}/x.js"></script>Seller',
    }
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer(Name=markup["Name"], Address=markup["Address"])],
        "Contracts": [contract()],
        "Subscriptions": [subscription(Description=markup["Description"], Product=markup["Product"])],
        "Settings": settings(**{"Company Name": markup["Company Name"]}),
    })
    code, stdout = run(book, tmp_path / "out", monkeypatch)
    assert code == 0, stdout
    text = pdf_text(tmp_path / "out" / "invoices" / "INV-000001.pdf")
    for typed in markup.values():
        assert "".join(typed.split()) in text  # printed literally (whitespace aside: the PDF wraps lines)
    assert connections(server) == 0


def test_ids_that_look_like_paths_never_become_file_names(tmp_path, monkeypatch):
    evil = ["../../etc/x", "../../../../tmp/evil", "..\\..\\windows\\x", "/abs/path", "CON", "a/../../b"]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # so a relative path that escaped would land in tmp_path, where we look
    book = write_book(work / "billing.xlsx", {
        "Customers": [customer(cid) for cid in evil],
        "Contracts": [contract(f"{cid}/c", cid) for cid in evil],
        "Subscriptions": [subscription(f"{cid}/s", f"{cid}/c") for cid in evil],
        "Settings": settings(),
    })
    before = {p for p in tmp_path.rglob("*")}
    code, stdout = run(book, work / "out", monkeypatch)
    assert code == 0, stdout
    created = {p for p in tmp_path.rglob("*")} - before
    assert created and all(p.is_relative_to(work / "out") for p in created), created
    pdfs = sorted(p.name for p in (work / "out" / "invoices").iterdir())
    assert pdfs == [f"INV-{n:06d}.pdf" for n in range(1, len(evil) + 1)]
    assert not Path("/abs/path").exists() and not Path("/tmp/evil").exists()


def test_the_input_workbook_is_never_modified(tmp_path, monkeypatch):
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer()], "Contracts": [contract(), contract("CTR-2", start="03/04/2026")],
        "Subscriptions": [subscription()], "Settings": settings(),
    })
    digest, mtime = hashlib.sha256(book.read_bytes()).hexdigest(), book.stat().st_mtime_ns
    assert run(book, tmp_path / "out", monkeypatch)[0] == 1  # CTR-2 set aside, CTR-1 billed
    assert cli.main(["check", "--input", str(book), "--output", str(tmp_path / "out")]) == 1
    assert hashlib.sha256(book.read_bytes()).hexdigest() == digest
    assert book.stat().st_mtime_ns == mtime


def two_months(tmp_path: Path) -> Path:
    return write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer("CUST-1"), customer("CUST-2")],
        "Contracts": [contract("CTR-1", "CUST-1", date(2026, 1, 1)), contract("CTR-2", "CUST-2", date(2026, 1, 1))],
        "Subscriptions": [subscription("SUB-1", "CTR-1"), subscription("SUB-2", "CTR-2")],
        "Settings": settings(),
    })


def fail_on_call(n: int, real):
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == n:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)
    return failing


def test_a_failing_schedule_book_write_keeps_the_previous_book(tmp_path, monkeypatch):
    book, out = two_months(tmp_path), tmp_path / "out"
    assert run(book, out, monkeypatch)[0] == 0
    previous = (out / schedule_book.BOOK_NAME).read_bytes()

    # the disk fills up in the middle of the Invoices sheet of the next run
    monkeypatch.setattr(CellWriter, "_money", fail_on_call(3, CellWriter._money))
    code, stdout = run(book, out, monkeypatch, as_of="2026-03-02")
    assert code == 2 and "the disk is full" in stdout, stdout  # a fault of the machine, not a bug
    assert (out / schedule_book.BOOK_NAME).read_bytes() == previous
    assert openpyxl.load_workbook(out / schedule_book.BOOK_NAME).sheetnames[:3] == [
        "Billing Schedules", "Invoices", "Invoice Lines"]

    monkeypatch.undo()
    assert run(book, out, monkeypatch, as_of="2026-03-02")[0] == 0
    invoices = openpyxl.load_workbook(out / schedule_book.BOOK_NAME)["Invoices"]
    assert invoices.max_row == 1 + 4  # January and February of both contracts


def test_a_failing_schedule_book_write_leaves_no_temp_file(tmp_path, monkeypatch):
    book, out = two_months(tmp_path), tmp_path / "out"
    monkeypatch.setattr(CellWriter, "_money", fail_on_call(3, CellWriter._money))
    assert run(book, out, monkeypatch)[0] == 2
    assert sorted(p.name for p in out.iterdir() if p.suffix in (".xlsx", ".tmp")) == []


def test_a_failing_pdf_write_leaves_no_half_written_pdf(tmp_path, monkeypatch):
    book, out = two_months(tmp_path), tmp_path / "out"
    # the second PDF fails after its bytes are written, before it is renamed into place (the first
    # fsync is the list of known ledgers')
    monkeypatch.setattr(os, "fsync", fail_on_call(3, os.fsync))
    code, stdout = run(book, out, monkeypatch)
    assert code == 2 and "INV-000002.pdf: the disk is full" in " ".join(stdout.split()), stdout
    assert sorted(p.name for p in (out / "invoices").iterdir()) == ["INV-000001.pdf"]
    assert "INV-000001" in pdf_text(out / "invoices" / "INV-000001.pdf")
    assert not (out / schedule_book.BOOK_NAME).exists()

    monkeypatch.undo()
    assert run(book, out, monkeypatch)[0] == 0  # the next run makes the missing PDF from the ledger
    assert sorted(p.name for p in (out / "invoices").iterdir()) == ["INV-000001.pdf", "INV-000002.pdf"]
