"""Credit notes through the post tasks: emailed with their own templates, exported as credit notes,
never direct-debited. The credit notes come from tests/credit_notes.py."""
from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from billing_batch import look
from billing_batch.model import DocType
from credit_notes import credit_note
from test_post_send import Mailbox, SmtpServer, mailbox, smtp, with_smtp  # noqa: F401 (fixtures)
from test_post_tasks import Billed, billed, billed_once, by_number, parse_eml  # noqa: F401 (fixtures)


def invoice(billed: Billed, number: str):
    return next(i for i in billed.invoices() if i.number == number)


def euro(amount) -> str:
    return f"€{amount:,}"


# ---------------------------------------------------------------- send


def test_a_credit_note_is_emailed_with_its_own_subject_body_and_pdf(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    inv = invoice(billed, "INV-000002")
    note = credit_note(billed.out, inv)
    outcomes = by_number(billed.post(("send",), inputs=with_smtp(billed, smtp.port), invoices=[note]), "send")
    assert outcomes[note.number].ok
    (_, rcpts, data), = mailbox.messages
    assert rcpts == ["cust-2@example.com", "ap@kunde.example", "cfo@kunde.example"]  # as the invoice's
    msg = parse_eml(data)
    assert msg["Subject"] == f"Credit note CN-000001 for invoice INV-000002 from Acme Billing Ltd: {euro(inv.draft.total)}"
    body = msg.get_body(("plain",)).get_content()
    credited_on = f"{inv.invoice_date:%B} {inv.invoice_date.day}, {inv.invoice_date.year}"
    assert "Please find attached credit note CN-000001 for invoice INV-000002 of " + credited_on in body
    assert f"Total credited: {euro(inv.draft.total)}" in body
    assert "Total due" not in body and "Please pay" not in body  # nothing of the invoice's wording
    html = msg.get_body(("html",)).get_content()
    assert "<strong>CN-000001</strong>" in html and f"INV-000002 ({credited_on})" in html
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "CN-000001.pdf"
    assert attachment.get_content() == (billed.out / "invoices" / "CN-000001.pdf").read_bytes()

    again = by_number(billed.post(("send",), inputs=with_smtp(billed, smtp.port), invoices=[note]), "send")
    assert again[note.number].skipped_reason.startswith("already sent") and len(mailbox.messages) == 1


@pytest.mark.parametrize("locale, subject, body", [
    ("en_GB", "Credit note CN-000001 for invoice INV-000004", "Please find attached credit note"),
    ("de_DE", "Gutschrift CN-000001 zur Rechnung INV-000004", "anbei erhalten Sie die Gutschrift"),
    ("fr_FR", "Avoir CN-000001 sur la facture INV-000004", "Veuillez trouver ci-joint l'avoir"),
    ("nl_NL", "Creditnota CN-000001 bij factuur INV-000004", "Bijgaand ontvangt u creditnota"),
    ("es_ES", "Factura rectificativa CN-000001 de la factura INV-000004", "Le adjuntamos la factura rectificativa"),
    ("it_IT", "Nota di credito CN-000001 per la fattura INV-000004", "In allegato trova la nota di credito"),
])
def test_a_credit_note_email_is_in_the_customers_language(billed: Billed, locale, subject, body):
    note = credit_note(billed.out, invoice(billed, "INV-000004"), locale=locale)
    (outcome,) = billed.post(("send",), invoices=[note])
    assert outcome.reference == "outbox/CN-000001.eml"
    msg = parse_eml((billed.out / outcome.reference).read_bytes())
    assert msg["Subject"].startswith(subject)
    assert body in msg.get_body(("plain",)).get_content()


def test_a_templates_folder_may_change_the_credit_note_email_alone(billed: Billed, tmp_path):
    own = tmp_path / "brand"
    own.mkdir()
    (own / look.CREDIT_SUBJECT).write_text("Refund note {{ number }} (was {{ credits }})\n")
    (own / look.CREDIT_TEXT).write_text("Hello {{ customer_name }}\n")
    inv = invoice(billed, "INV-000004")
    note = credit_note(billed.out, inv)
    templates = look.Look(custom=own)
    by = by_number(billed.post(("send",), invoices=[inv, note], templates=templates), "send")
    cn = parse_eml((billed.out / by[note.number].reference).read_bytes())
    assert cn["Subject"] == "Refund note CN-000001 (was INV-000004)"
    assert cn.get_body(("html",)) is None  # a text body of its own, no HTML of its own: text only
    assert parse_eml((billed.out / by[inv.number].reference).read_bytes())["Subject"].startswith("Invoice INV-000004")


def test_the_input_check_tries_the_credit_note_templates(billed: Billed, tmp_path):
    own = tmp_path / "brand"
    own.mkdir()
    (own / look.CREDIT_TEXT).write_text("Hello {{ customer_nam }}\n")
    (problem,) = look.preflight(look.Look(custom=own), billed.inputs.settings, date(2026, 3, 2))
    assert problem.code == "BB009" and look.CREDIT_TEXT in problem.message
