"""send: against a real SMTP server (aiosmtpd) on 127.0.0.1, and into the outbox without one."""
from __future__ import annotations

import dataclasses
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from billing_batch.ledger.store import Ledger
from billing_batch.post.records import STARTED, Records
from test_post_tasks import Billed, billed, billed_once, by_number, free_port, parse_eml  # noqa: F401 (fixtures)

# aiosmtpd warns when AUTH is allowed without TLS, which one test does on purpose.
pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

SENDABLE = ["INV-000001", "INV-000002", "INV-000004", "INV-000005", "INV-000006", "INV-000008"]  # CUST-3 has no email


class Mailbox:
    """The handler: keeps what it accepts; can refuse the nth message, go down, or hang up after DATA."""

    def __init__(self):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.data_commands = 0
        self.down_at: int | None = None  # on this DATA: stop listening and answer 421
        self.refuse_at: int | None = None  # on this DATA: answer 451
        self.hang_up_at: int | None = None  # on this DATA: keep the message, close without answering
        self.server = None  # the Controller, to stop listening

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        n = self.data_commands
        if n == self.down_at:
            self.server.server.close()  # no new connections from now on
            return "421 4.3.2 Service shutting down"
        if n == self.refuse_at:
            return "451 4.3.0 Temporary failure, try again later"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        if n == self.hang_up_at:
            server.transport.close()  # the message arrived, the answer never leaves
        return "250 2.0.0 Queued"

    def numbers(self) -> list[str]:
        return [parse_eml(data)["Subject"].split()[1] for _, _, data in self.messages]


class SmtpServer:
    def __init__(self, mailbox: Mailbox, **smtp_options):
        self.mailbox = mailbox
        self.port = free_port()
        self.options = smtp_options
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port, **self.options)
        self.controller.start()
        self.mailbox.server = self.controller
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def mailbox() -> Mailbox:
    return Mailbox()


@pytest.fixture
def smtp(mailbox):
    server = SmtpServer(mailbox).start()
    yield server
    server.stop()


def with_smtp(billed: Billed, port: int, **more):
    return dataclasses.replace(billed.inputs, settings=dataclasses.replace(
        billed.inputs.settings, smtp_host="127.0.0.1", smtp_port=port, smtp_security=more.pop("security", "None"),
        **more))


def test_each_invoice_is_sent_once_with_its_pdf(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    inputs = with_smtp(billed, smtp.port)
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert sorted(mailbox.numbers()) == SENDABLE
    assert all(outcomes[n].ok and outcomes[n].reference.startswith("<") for n in SENDABLE)

    sender, rcpts, data = next(m for m in mailbox.messages if b"INV-000002" in m[2])
    msg = parse_eml(data)
    assert sender == "billing@acme.example"
    assert rcpts == ["cust-2@example.com", "ap@kunde.example", "cfo@kunde.example"]
    assert msg["To"] == "Kunde Zwei GmbH <cust-2@example.com>"
    assert msg["Cc"] == "ap@kunde.example, Controller <cfo@kunde.example>"
    assert msg["From"] == "Acme Billing Ltd <billing@acme.example>"
    assert msg["Message-ID"] == outcomes["INV-000002"].reference
    # 3 x 333.33 + 99.99 = 1,099.98; less 10% (110.00) = 989.98; plus 20% tax (198.00) = 1,187.98
    assert msg["Subject"] == "Invoice INV-000002 from Acme Billing Ltd: €1,187.98 due March 16, 2026"
    body = msg.get_body(("plain",)).get_content()
    for text in ("INV-000002", "January 1, 2026 – January 31, 2026", "€1,187.98", "March 16, 2026"):
        assert text in body
    assert "<strong>INV-000002</strong>" in msg.get_body(("html",)).get_content()
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "INV-000002.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == (billed.out / "invoices" / "INV-000002.pdf").read_bytes()

    # the customer without an email is reported, not skipped silently
    for n in ("INV-000003", "INV-000007"):
        assert not outcomes[n].ok
        assert outcomes[n].error.startswith("customer CUST-3 (Drie BV) has no email address")

    rerun = by_number(billed.post(("send",), inputs=inputs), "send")
    assert len(mailbox.messages) == 6  # nothing sent twice
    assert all(rerun[n].ok and rerun[n].skipped_reason.startswith("already sent") for n in SENDABLE)
    assert rerun["INV-000002"].reference == outcomes["INV-000002"].reference

    # once the email is in the workbook, the next call sends exactly those two
    customers = dict(inputs.customers)
    customers["CUST-3"] = dataclasses.replace(customers["CUST-3"], email="ap@drie.example")
    billed.post(("send",), inputs=dataclasses.replace(inputs, customers=customers))
    assert sorted(mailbox.numbers()) == sorted(SENDABLE + ["INV-000003", "INV-000007"])


def test_server_down_in_the_middle_then_up_again_sends_exactly_the_missing_ones(
        billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    inputs = with_smtp(billed, smtp.port)
    mailbox.down_at = 3  # the third message: the server answers 421 and stops listening
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert mailbox.numbers() == ["INV-000001", "INV-000002"]
    assert [n for n, o in outcomes.items() if o.ok] == ["INV-000001", "INV-000002"]
    assert "421" in outcomes["INV-000004"].error
    assert outcomes["INV-000005"].error.startswith("cannot connect to the SMTP server 127.0.0.1")
    assert outcomes["INV-000006"].error.startswith("not tried: cannot connect")
    smtp.stop()

    # still down: everything left fails cleanly, nothing is lost
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert [o.status for o in outcomes.values()] == ["already done", "already done"] + ["failed"] * 6

    smtp.start()  # up again, same port
    mailbox.down_at = None
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert mailbox.numbers() == SENDABLE  # each exactly once, over both servers
    assert all(outcomes[n].ok for n in SENDABLE)
    status = billed.status()
    assert [status[n]["send"] for n in SENDABLE] == ["done"] * 6
    assert status["INV-000003"]["send"] == "failed"


def test_a_refused_message_fails_alone_and_is_retried(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    inputs = with_smtp(billed, smtp.port)
    mailbox.refuse_at = 2
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert "451" in outcomes["INV-000002"].error
    assert mailbox.numbers() == [n for n in SENDABLE if n != "INV-000002"]  # the others went on
    billed.post(("send",), inputs=inputs)
    assert sorted(mailbox.numbers()) == SENDABLE


def test_an_answer_that_never_came_is_in_doubt_and_not_resent_unless_asked(
        billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    inputs = with_smtp(billed, smtp.port)
    mailbox.hang_up_at = 1  # INV-000001 reaches the server, its 250 does not reach us
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert outcomes["INV-000001"].status == "in doubt"
    assert outcomes["INV-000001"].reference in outcomes["INV-000001"].error  # the Message-ID, to look it up
    assert all(outcomes[n].ok for n in SENDABLE[1:])  # reconnected for the rest
    assert mailbox.numbers() == SENDABLE

    rerun = by_number(billed.post(("send",), inputs=inputs), "send")
    assert rerun["INV-000001"].status == "in doubt" and "--again" in rerun["INV-000001"].error
    assert len(mailbox.messages) == 6
    assert billed.status()["INV-000001"]["send"] == "in doubt"

    only = [i for i in billed.invoices() if i.number == "INV-000001"]
    (resent,) = billed.post(("send",), inputs=inputs, invoices=only, again=True)
    assert resent.ok and len(mailbox.messages) == 7


def test_a_crash_after_handing_over_leaves_the_invoice_in_doubt(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    with Ledger(billed.ledger_path) as ledger:  # what a run killed between the 250 and the ledger write leaves
        Records(ledger).mark("INV-000002", "send", STARTED, "<1.2.INV-000002@acme.example>")
    outcomes = by_number(billed.post(("send",), inputs=with_smtp(billed, smtp.port)), "send")
    assert outcomes["INV-000002"].status == "in doubt"
    assert "INV-000002" not in mailbox.numbers()


def test_server_down_from_the_start_fails_every_invoice_cleanly(billed: Billed):
    outcomes = billed.post(("send",), inputs=with_smtp(billed, free_port()))
    assert [o.status for o in outcomes] == ["failed"] * 8
    assert all("cannot connect" in o.error or "no email" in o.error for o in outcomes)


def test_login_uses_the_password_from_the_environment_only(billed: Billed, mailbox: Mailbox):
    logins = []

    def authenticator(server, session, envelope, mechanism, data):
        logins.append((mechanism, data.login, data.password))
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    # Plain-text AUTH is for this test only: real relays take it after STARTTLS (tested below).
    server = SmtpServer(mailbox, authenticator=authenticator, auth_required=True, auth_require_tls=False).start()
    try:
        inputs = with_smtp(billed, server.port, smtp_user="billing")
        outcomes = billed.post(("send",), inputs=inputs, environ={})
        assert all(not o.ok and "BILLING_BATCH_SMTP_PASSWORD" in o.error for o in outcomes)
        assert mailbox.messages == [] and logins == []

        outcomes = billed.post(("send",), inputs=inputs, environ={"BILLING_BATCH_SMTP_PASSWORD": "wrong"})
        assert "refused the login of 'billing'" in outcomes[0].error and mailbox.messages == []

        billed.post(("send",), inputs=inputs, environ={"BILLING_BATCH_SMTP_PASSWORD": "s3cret"})
        assert sorted(mailbox.numbers()) == SENDABLE
        assert logins[-1][1:] == (b"billing", b"s3cret")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(folder / "key.pem"), "-out", str(folder / "cert.pem")],
                   check=True, capture_output=True)
    return folder


def _server_context(certificate: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    return context


@pytest.mark.parametrize("security", ["STARTTLS", "SSL"])
def test_tls(billed: Billed, mailbox: Mailbox, certificate: Path, security: str):
    context = _server_context(certificate)
    options = {"tls_context": context, "require_starttls": True} if security == "STARTTLS" else {"ssl_context": context}
    server = SmtpServer(mailbox, **options).start()
    try:
        inputs = with_smtp(billed, server.port, security=security)
        untrusted = billed.post(("send",), inputs=inputs)  # a self-signed certificate is not trusted by default
        assert "certificate verify failed" in untrusted[0].error and mailbox.messages == []
        billed.post(("send",), inputs=inputs, environ={"BILLING_BATCH_SMTP_CAFILE": str(certificate / "cert.pem")})
        assert sorted(mailbox.numbers()) == SENDABLE
    finally:
        server.stop()


def test_without_smtp_settings_the_emails_go_to_the_outbox(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    outcomes = by_number(billed.post(("send",)), "send")
    outbox = billed.out / "outbox"
    assert sorted(p.name for p in outbox.iterdir()) == [f"{n}.eml" for n in SENDABLE]
    msg = parse_eml((outbox / "INV-000002.eml").read_bytes())
    assert msg["To"] == "Kunde Zwei GmbH <cust-2@example.com>" and msg["Subject"].startswith("Invoice INV-000002")
    assert msg["Date"] and msg["Message-ID"]
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content() == (billed.out / "invoices" / "INV-000002.pdf").read_bytes()
    assert outcomes["INV-000002"].reference == "outbox/INV-000002.eml"
    assert not outcomes["INV-000003"].ok  # no email: reported in outbox mode too

    written = (outbox / "INV-000001.eml").stat().st_mtime_ns
    rerun = by_number(billed.post(("send",)), "send")
    assert rerun["INV-000001"].skipped_reason.startswith("already in the outbox")
    assert (outbox / "INV-000001.eml").stat().st_mtime_ns == written

    # SMTP set up afterwards: the reviewed invoices are sent for real, once
    billed.post(("send",), inputs=with_smtp(billed, smtp.port))
    billed.post(("send",), inputs=with_smtp(billed, smtp.port))
    assert sorted(mailbox.numbers()) == SENDABLE


def test_a_missing_pdf_or_bad_address_fails_that_invoice_only(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    (billed.out / "invoices" / "INV-000001.pdf").unlink()
    customers = dict(billed.inputs.customers)
    customers["CUST-4"] = dataclasses.replace(customers["CUST-4"], email="not an address")
    inputs = dataclasses.replace(with_smtp(billed, smtp.port), customers=customers)
    outcomes = by_number(billed.post(("send",), inputs=inputs), "send")
    assert "PDF invoices/INV-000001.pdf is missing" in outcomes["INV-000001"].error
    assert "not valid" in outcomes["INV-000004"].error
    assert sorted(mailbox.numbers()) == ["INV-000002", "INV-000005", "INV-000006"]


def test_no_sender_address_fails_with_a_clear_message(billed: Billed):
    inputs = dataclasses.replace(billed.inputs, settings=dataclasses.replace(billed.inputs.settings, company_email=""))
    outcomes = billed.post(("send",), inputs=inputs)
    assert all("No sender address" in o.error for o in outcomes)


def test_address_check_for_the_input():
    from billing_batch.post import addresses_problem

    assert addresses_problem("ap@kunde.example; Controller <cfo@kunde.example>") is None
    assert addresses_problem("") is None
    assert addresses_problem("ap@kunde.example, not an address") == "'not an address' is not an email address"
