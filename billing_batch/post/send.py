"""send: one email per invoice, with its PDF, over SMTP or into OUTPUT/outbox/ as .eml files.

Exactly once, as far as email allows: before handing a message to the server the ledger records
it as started (with its Message-ID); after the server's 250 reply, as done. Whatever fails before
the end of the message reaches the server (connection refused, sender or recipient refused, a
4xx/5xx reply, the connection lost while sending) is recorded as failed and retried by the next
call. Only two windows are left where nobody can tell: the server received the whole message but
its reply never arrived (the connection broke), or the run died between the 250 and the ledger
write. Both leave the record at started; the next call reports the invoice "in doubt" with its
Message-ID and does not send it again unless asked (again=True).
"""
from __future__ import annotations

import re
import smtplib
import socket
import ssl
from collections.abc import Sequence
from email.errors import MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path

import jinja2

from billing_batch.documents.emails import email_view, render_email
from billing_batch.files import write_atomic
from billing_batch.model import SMTP_SECURITY, Invoice, Settings
from billing_batch.post.addresses import (
    envelope_sender,
    one_address,
    parse_addresses,
    sender_problem,
)
from billing_batch.post.records import (
    DONE,
    FAILED,
    IN_DOUBT,
    OUTBOX,
    STARTED,
    Context,
    Outcome,
    relative,
    triage,
)

PASSWORD_VARIABLE = "BILLING_BATCH_SMTP_PASSWORD"
CAFILE_VARIABLE = "BILLING_BATCH_SMTP_CAFILE"  # a private CA for the mail relay, when it has one
TIMEOUT = 30  # seconds for connecting and for each reply
# Drops in a row (no message taken between) after which the server counts as unreachable: a flaky relay
# must not fail, or leave in doubt, hundreds of invoices one by one. The next call sends the rest.
MAX_DROPS = 3
# Headers as sent: folded at RFC 5322's hard limit only. Folded at 78, Python moves an encoded word
# that ends a subject ("... Ltd: €1,187.98") to a line of its own after a space, and readers show two.
WIRE = SMTP.clone(max_line_length=998)


class NotSent(Exception):
    """The server did not take the message: safe to try again."""


class InDoubt(Exception):
    """The whole message reached the server, but its answer did not reach us."""


class Unreachable(NotSent):
    """No connection to the server: the invoices after this one are not tried in this call."""


def run(ctx: Context, invoices: Sequence[Invoice]) -> list[Outcome]:
    outcomes, todo = triage(ctx, "send", invoices, "sent")
    settings = ctx.inputs.settings
    smtp_on = bool(settings.smtp_host.strip())
    pending = []
    for inv in todo:
        rec = ctx.records.get(inv.number, "send")
        if rec and rec.outcome == OUTBOX and not smtp_on and not ctx.again:
            outcomes.append(Outcome(inv.number, "send", True, rec.reference, "", skipped_reason=(
                f"already in the outbox ({rec.done_at}); not sent: no SMTP Host in Settings")))
        else:
            pending.append(inv)
    if not pending:
        return outcomes

    problem = settings_problem(settings, ctx.environ) if smtp_on else sender_problem(settings)
    if problem:
        ctx.records.mark_many([i.number for i in pending], "send", FAILED, "", problem)
        return outcomes + [Outcome(i.number, "send", False, "", problem) for i in pending]

    if not smtp_on:
        return outcomes + [_to_outbox(ctx, inv) for inv in pending]

    session = SmtpSession(settings, ctx.environ)
    unreachable = ""
    try:
        for inv in pending:
            if unreachable:
                error = f"not tried: {unreachable}"
                ctx.records.mark(inv.number, "send", FAILED, "", error)
                outcomes.append(Outcome(inv.number, "send", False, "", error))
                continue
            try:
                message, recipients = build_message(ctx, inv)
            except NotSent as exc:
                ctx.records.mark(inv.number, "send", FAILED, "", str(exc))
                outcomes.append(Outcome(inv.number, "send", False, "", str(exc)))
                continue
            msgid = message["Message-ID"]
            ctx.records.mark(inv.number, "send", STARTED, msgid)
            try:
                session.deliver(envelope_sender(settings), recipients, message.as_bytes(policy=WIRE))
            except InDoubt as exc:
                error = f"{IN_DOUBT} {exc} Message-ID {msgid}: check the server before sending it again (--again)."
                ctx.records.mark(inv.number, "send", STARTED, msgid, error)
                outcomes.append(Outcome(inv.number, "send", False, msgid, error))
                continue
            except NotSent as exc:
                if isinstance(exc, Unreachable):
                    unreachable = str(exc)
                ctx.records.mark(inv.number, "send", FAILED, "", str(exc))
                outcomes.append(Outcome(inv.number, "send", False, "", str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a bug or a surprise from the network: assume the worst, go on
                session.drop()
                error = f"{IN_DOUBT} sending broke off unexpectedly ({type(exc).__name__}: {exc}). Message-ID {msgid}."
                ctx.records.mark(inv.number, "send", STARTED, msgid, error)
                outcomes.append(Outcome(inv.number, "send", False, msgid, error))
                continue
            ctx.records.mark(inv.number, "send", DONE, msgid)
            outcomes.append(Outcome(inv.number, "send", True, msgid, "", note=_replaces_note(ctx, inv)))
    finally:
        session.close()
    return outcomes


def _to_outbox(ctx: Context, inv: Invoice) -> Outcome:
    try:
        message, _ = build_message(ctx, inv)
    except NotSent as exc:
        ctx.records.mark(inv.number, "send", FAILED, "", str(exc))
        return Outcome(inv.number, "send", False, "", str(exc))
    target = ctx.out_dir / "outbox" / f"{safe_name(inv.number)}.eml"
    try:
        write_atomic(target, message.as_bytes(policy=WIRE))
    except OSError as exc:
        error = f"the email could not be written to {target.parent}: {exc}"
        ctx.records.mark(inv.number, "send", FAILED, "", error)
        return Outcome(inv.number, "send", False, "", error)
    ref = relative(ctx, target)
    ctx.records.mark(inv.number, "send", OUTBOX, ref)
    return Outcome(inv.number, "send", True, ref, "")


def _replaces_note(ctx: Context, inv: Invoice) -> str:
    old = ctx.replaces(inv)
    return f"replaces {', '.join(old)}" if old else ""


# ---------------------------------------------------------------- settings


def settings_problem(settings: Settings, environ) -> str:
    security = (settings.smtp_security or "STARTTLS").strip().upper()
    if security not in SMTP_SECURITY:
        return f"SMTP Security is {settings.smtp_security!r}: use STARTTLS, SSL or None in the Settings sheet."
    if settings.smtp_user and not environ.get(PASSWORD_VARIABLE):
        return (f"SMTP User is {settings.smtp_user!r} but no password is set: put it in the environment variable "
                f"{PASSWORD_VARIABLE} (never in the workbook) and run post --tasks send again.")
    return sender_problem(settings)


# ---------------------------------------------------------------- the message


def build_message(ctx: Context, inv: Invoice) -> tuple[EmailMessage, list[str]]:
    """The email for an invoice and its envelope recipients. NotSent if it cannot be made."""
    customer = ctx.customer(inv)
    contract = ctx.contract(inv)
    email = customer.email if customer is not None else inv.buyer.email
    where = f"customer {inv.draft.customer_id} ({inv.draft.customer_name})"
    if not email.strip():
        raise NotSent(f"{where} has no email address: add it in the Customers sheet (Email), "
                      f"then run post --tasks send again.")
    try:
        to = parse_addresses(email)
    except ValueError as exc:
        raise NotSent(f"{where} has an email address that is not valid ({exc}): correct it in the Customers sheet.") from None
    try:
        cc = parse_addresses(contract.cc) if contract is not None and contract.cc else []
    except ValueError as exc:
        raise NotSent(f"contract {inv.draft.contract_id} has a CC address that is not valid ({exc}): "
                      "correct it in the Contracts sheet.") from None
    pdf = ctx.out_dir / inv.pdf_name
    if not pdf.is_file():
        raise NotSent(f"the PDF {inv.pdf_name} is missing: run billing-batch run (or generate) to make it again.")
    if inv.usage_name and not (ctx.out_dir / inv.usage_name).is_file():
        raise NotSent(f"the usage details {inv.usage_name} are missing: run billing-batch run (or generate) "
                      "to make them again.")
    if inv.email_xml and not (ctx.out_dir / inv.email_xml).is_file():
        raise NotSent(f"the e-invoice {inv.email_xml} is missing: run billing-batch run (or generate) to make it again.")

    view = email_view(inv, ctx.replaces(inv))
    try:
        subject, text, html = render_email(ctx.look, view, inv.doc_type)
    except jinja2.TemplateError as exc:
        raise NotSent(f"the email templates in {ctx.look.where} failed: {exc}") from None

    try:
        msg = _assemble(ctx, inv, to, cc, subject, text, html, pdf)
    except (ValueError, TypeError, MessageError) as exc:
        raise NotSent(f"the email for {inv.number} could not be made: {exc}") from None
    recipients = list(dict.fromkeys(addr for _, addr in to + cc))
    return msg, recipients


def _assemble(ctx: Context, inv: Invoice, to, cc, subject: str, text: str, html: str | None,
              pdf: Path) -> EmailMessage:
    settings = ctx.inputs.settings
    sender_addr = envelope_sender(settings)
    msg = EmailMessage(policy=SMTP)
    msg["From"] = Address(settings.company_name or "", addr_spec=sender_addr)
    msg["To"] = [Address(name or inv.buyer.name, addr_spec=addr) for name, addr in to]
    if cc:
        msg["Cc"] = [Address(name, addr_spec=addr) for name, addr in cc]
    if settings.company_email and settings.company_email.strip().lower() != sender_addr.lower():
        reply = one_address(settings.company_email)
        if reply:
            msg["Reply-To"] = reply
    msg["Subject"] = subject
    msg["Date"] = format_datetime(ctx.now if ctx.now.tzinfo else ctx.now.astimezone())
    msg["Message-ID"] = make_msgid(idstring=safe_name(inv.number), domain=sender_addr.rsplit("@", 1)[1])
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf",
                       filename=Path(inv.pdf_name).name)
    if inv.usage_name:  # the rows behind the summarised usage lines
        msg.add_attachment((ctx.out_dir / inv.usage_name).read_bytes(), maintype="application",
                           subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           filename=Path(inv.usage_name).name)
    if inv.email_xml:  # XRechnung or Peppol: the invoice itself, as the buyer's system reads it
        msg.add_attachment((ctx.out_dir / inv.email_xml).read_bytes(), maintype="application", subtype="xml",
                           filename=Path(inv.email_xml).name)
    return msg


def safe_name(number: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", number)


# ---------------------------------------------------------------- SMTP


class SmtpSession:
    """One connection for the whole batch, opened on first use and again after a drop, up to MAX_DROPS."""

    def __init__(self, settings: Settings, environ, timeout: float = TIMEOUT):
        self.settings = settings
        self.security = (settings.smtp_security or "STARTTLS").strip().upper()
        self.port = settings.smtp_port or (465 if self.security == "SSL" else 587)
        self.password = environ.get(PASSWORD_VARIABLE, "")
        self.cafile = environ.get(CAFILE_VARIABLE) or None
        self.timeout = timeout
        self.smtp: smtplib.SMTP | None = None
        self.drops = 0  # connections lost in a row with a message in hand (not gone stale between two)

    @property
    def where(self) -> str:
        return f"{self.settings.smtp_host}:{self.port}"

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def connect(self) -> None:
        host = self.settings.smtp_host.strip()
        try:
            if self.security == "SSL":
                smtp = smtplib.SMTP_SSL(host, self.port, timeout=self.timeout, context=self._context())
            else:
                smtp = smtplib.SMTP(host, self.port, timeout=self.timeout)
            try:
                smtp.ehlo()
                if self.security == "STARTTLS":
                    smtp.starttls(context=self._context())
                    smtp.ehlo()
                if self.settings.smtp_user:
                    smtp.login(self.settings.smtp_user, self.password)
            except BaseException:
                smtp.close()
                raise
        except smtplib.SMTPAuthenticationError as exc:
            raise Unreachable(f"the SMTP server {self.where} refused the login of {self.settings.smtp_user!r} "
                              f"({_reply(exc)}): check SMTP User and {PASSWORD_VARIABLE}.") from None
        except smtplib.SMTPNotSupportedError as exc:
            raise Unreachable(f"the SMTP server {self.where} does not support {exc}: check SMTP Security.") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise Unreachable(f"cannot connect to the SMTP server {self.where}: {_describe(exc)}") from None
        self.smtp = smtp

    def close(self) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()
            self.smtp = None

    def drop(self, lost: bool = True) -> None:
        self.drops += lost
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None

    def deliver(self, sender: str, recipients: list[str], data: bytes) -> None:
        """Hand one message to the server. NotSent if it surely did not take it, InDoubt if it may have."""
        if self.drops >= MAX_DROPS:
            raise Unreachable(f"the SMTP server {self.where} dropped the connection {self.drops} times in a row, "
                              "so sending stopped: the next post --tasks send sends the invoices left.")
        for attempt in (1, 2):
            if self.smtp is None:
                self.connect()
            try:
                code, reply = self.smtp.mail(sender)
                break
            except (smtplib.SMTPServerDisconnected, OSError):  # the kept connection went stale: open another
                self.drop(lost=False)
                if attempt == 2:
                    raise Unreachable(f"the SMTP server {self.where} closed the connection as soon as it was opened") from None
        try:
            if code != 250:
                raise NotSent(f"the SMTP server refused the sender {sender}: {code} {_text(reply)}")
            refused = []
            for rcpt in recipients:
                code, reply = self.smtp.rcpt(rcpt)
                if code not in (250, 251):
                    refused.append(f"{rcpt} ({code} {_text(reply)})")
            if refused:
                raise NotSent(f"the SMTP server refused {', '.join(refused)}; nobody was sent the invoice: "
                              "correct the address and run again.")
            code, reply = self.smtp.docmd("DATA")
            if code != 354:
                raise NotSent(f"the SMTP server refused to take the message: {code} {_text(reply)}")
        except NotSent:
            self._reset()
            raise
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            raise NotSent(f"the connection to {self.where} broke before the message was sent: {_describe(exc)}") from None
        try:
            self.smtp.send(_dot_stuffed(data))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # The message's last line (the lone dot) is sent last: it cannot have arrived, so the
            # server drops what it got.
            self.drop()
            raise NotSent(f"the connection to {self.where} broke while sending: {_describe(exc)}") from None
        try:
            code, reply = self.smtp.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self.drop()
            raise InDoubt(f"the message was handed to {self.where} but its answer never came ({_describe(exc)}).") from None
        if code != 250:
            if code == 421:
                self.drop()
            else:
                self._reset()
            raise NotSent(f"the SMTP server did not accept the message: {code} {_text(reply)}")
        self.drops = 0

    def _reset(self) -> None:
        try:
            self.smtp.rset()
        except (smtplib.SMTPException, OSError):
            self.drop()


def _dot_stuffed(data: bytes) -> bytes:
    data = re.sub(rb"(?:\r\n|\n|\r(?!\n))", b"\r\n", data)
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_text(exc.smtp_error)}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return _reply(exc)
    if isinstance(exc, socket.timeout):
        return "no answer (timed out)"
    return str(exc) or type(exc).__name__
