"""Messages a finance user can act on (issue #21, item 11): a logo the invoices would leave out is a
problem at check time naming the user's own file, never a file inside the installed package; and a
mail relay that keeps dropping the connection stops the sending after a few drops, not hundreds."""
from __future__ import annotations

import io
import re
from datetime import date
from pathlib import Path

from billing_batch.templates import FOLDER as PACKAGE_TEMPLATES
from pypdf import PdfReader
from rich.console import Console
from test_look import cli_run, nothing_billed, workbook
from test_post_send import SmtpServer
from test_post_tasks import parse_eml
from workbooks import contract, customer, settings, subscription, write_book

from billing_batch import cli
from billing_batch.cli import terminal
from billing_batch.post.send import MAX_DROPS

GREEN = '<rect width="40" height="20" fill="#00ff00"/>'  # drawn as "0 1 0 rg" in the PDF
SVG = f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">{GREEN}</svg>\n'
DOCTYPE = ('<?xml version="1.0" encoding="UTF-8"?>\n'
           '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd" [\n'
           '  <!ENTITY ns_svg "http://www.w3.org/2000/svg">\n'
           '  <!ENTITY name SYSTEM "file:///etc/hostname">\n'
           ']>\n')


def logo_drawn(book: Path) -> bool:
    page = PdfReader(book.parent / "out" / "invoices" / "INV-000001.pdf").pages[0]
    return b"0 1 0 rg" in page.get_contents().get_data()


def test_an_svg_logo_without_a_doctype_is_drawn(tmp_path, monkeypatch):
    (tmp_path / "logo.svg").write_text(SVG)
    book = workbook(tmp_path, Logo="logo.svg")
    assert cli_run(book, monkeypatch, command="check")[0] == 0
    code, stdout = cli_run(book, monkeypatch)
    assert code == 0, stdout
    assert logo_drawn(book)


def test_an_svg_logo_with_a_doctype_is_a_problem_at_check_and_run_naming_the_file(tmp_path, monkeypatch):
    # as Illustrator saves it: a DOCTYPE with entities, one of them the name drawn on the logo
    (tmp_path / "logo.svg").write_text(DOCTYPE + SVG.replace(GREEN, GREEN + "<text>&name;</text>"))
    book = workbook(tmp_path, Logo="logo.svg")
    for command in ("check", "run"):
        code, stdout = cli_run(book, monkeypatch, command=command)
        assert code == 2, stdout
        assert "BB201 invalid setting" in stdout and "value: 'logo.svg'" in stdout
        assert "The logo logo.svg has a DOCTYPE on line 2" in stdout
        assert "Delete the DOCTYPE (from <!DOCTYPE to its closing >) in a text editor and save, or use a PNG logo" in stdout
    assert nothing_billed(book)

    (tmp_path / "logo.svg").write_text(SVG)  # saved again without it: billed, with the logo
    assert cli_run(book, monkeypatch)[0] == 0 and logo_drawn(book)


def test_a_logo_the_invoice_cannot_draw_is_a_problem_naming_the_users_file(tmp_path, monkeypatch):
    # a PNG in name and first bytes, damaged after them: WeasyPrint would leave it out with no word
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"damaged" * 20)
    book = workbook(tmp_path, Logo="art/logo.png")
    for command in ("check", "run"):
        code, stdout = cli_run(book, monkeypatch, command=command)
        assert code == 2, stdout
        assert f"BB009 template or logo cannot be used\n  {tmp_path / 'art' / 'logo.png'}\n" in stdout
        assert "The logo logo.png cannot be used: the invoice cannot draw it, and would leave it out" in stdout
        assert "Save the logo again as a PNG or JPEG file" in stdout
        assert str(PACKAGE_TEMPLATES) not in stdout and "invoice.html" not in stdout
    assert nothing_billed(book)


def test_an_svg_logo_loading_a_file_names_the_logo_not_a_file_of_the_package(tmp_path, monkeypatch):
    # the href is written relative, so the URL refused (file:///.../picture.png) is on no line as such
    (tmp_path / "picture.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "logo.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">\n'
                                       '<image href="picture.png" width="40" height="20"/></svg>')
    book = workbook(tmp_path, Logo="logo.svg")
    code, stdout = cli_run(book, monkeypatch, command="check")
    assert code == 2, stdout
    assert f"BB009 template or logo cannot be used\n  {tmp_path / 'logo.svg'}\n" in stdout
    assert (f"The logo logo.svg cannot be used: it refers to {(tmp_path / 'picture.png').as_uri()}, which the "
            "invoice may not load: a logo may not load other files or web addresses.") in stdout
    assert str(PACKAGE_TEMPLATES) not in stdout and "invoice.html" not in stdout and "site-packages" not in stdout
    assert nothing_billed(book)


# ---------------------------------------------------------------- a relay that drops the connection


class Flaky:
    """An SMTP handler that takes messages, but hangs up at RCPT on the transactions (counted from 1,
    each MAIL) that `drop` names: the message in hand surely did not arrive."""

    def __init__(self, drop):
        self.drop = drop
        self.mails = 0
        self.numbers: list[str] = []

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.mails += 1
        envelope.mail_from = address
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.drop(self.mails):
            server.transport.close()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.numbers.append(re.search(r"INV-\d+", parse_eml(envelope.original_content)["Subject"])[0])
        return "250 2.0.0 Queued"


INVOICES = [f"INV-00000{n}" for n in range(1, 7)]


def billed_with_smtp(tmp_path: Path, port: int) -> list[str]:
    """Six customers' January invoices billed; the options of post --tasks send over them."""
    ids = range(1, 7)
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer(f"CUST-{n}") for n in ids],
        "Contracts": [contract(f"CTR-{n}", f"CUST-{n}", date(2026, 1, 1)) for n in ids],
        "Subscriptions": [subscription(f"SUB-{n}", f"CTR-{n}") for n in ids],
        "Settings": settings(**{"Company Email": "billing@acme.example", "SMTP Host": "127.0.0.1",
                                "SMTP Port": port, "SMTP Security": "None"}),
    })
    io_options = ["--input", str(book), "--output", str(tmp_path / "out"), "--as-of", "2026-02-02", "--jobs", "1"]
    assert cli.main(["run", *io_options]) == 0
    return io_options


def send(monkeypatch, io_options: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    monkeypatch.setattr(terminal, "console", Console(file=out, highlight=False, width=1000))
    return cli.main(["post", "--tasks", "send", *io_options]), out.getvalue()


def test_a_dropped_connection_is_opened_again_for_the_next_invoice(tmp_path, monkeypatch):
    flaky = Flaky(lambda mail: mail in (2, 4))  # two drops, not in a row
    server = SmtpServer(flaky)
    io_options = billed_with_smtp(tmp_path, server.port)
    server.start()
    try:
        code, stdout = send(monkeypatch, io_options)
        assert code == 1, stdout
        assert flaky.numbers == ["INV-000001", "INV-000003", "INV-000005", "INV-000006"]
        assert (f"INV-000002, INV-000004 send: the connection to 127.0.0.1:{server.port} broke before the message "
                "was sent") in stdout
        assert "times in a row" not in stdout

        code, stdout = send(monkeypatch, io_options)  # the next call sends the two left
        assert code == 0, stdout
        assert sorted(flaky.numbers) == INVOICES  # each exactly once
    finally:
        server.stop()


def test_sending_stops_after_drops_in_a_row_and_the_next_call_sends_the_rest(tmp_path, monkeypatch):
    flaky = Flaky(lambda mail: mail > 1)  # takes the first message, then drops every connection
    server = SmtpServer(flaky)
    io_options = billed_with_smtp(tmp_path, server.port)
    server.start()
    try:
        code, stdout = send(monkeypatch, io_options)
        assert code == 1, stdout
        assert flaky.numbers == ["INV-000001"]
        assert flaky.mails == 1 + MAX_DROPS == 4  # INV-000002 to 4 tried and dropped; 5 and 6 not tried
        assert (f"the SMTP server 127.0.0.1:{server.port} dropped the connection 3 times in a row, so sending "
                "stopped: the next post --tasks send sends the invoices left.") in stdout
        assert "not tried: the SMTP server" in stdout

        flaky.drop = lambda mail: False  # the relay is well again
        code, stdout = send(monkeypatch, io_options)
        assert code == 0, stdout
        assert sorted(flaky.numbers) == INVOICES  # each exactly once
    finally:
        server.stop()
