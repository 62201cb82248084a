"""Credit notes for the post-task tests, made the way `billing-batch credit` stores them (iface.md):
an Invoice of type Credit Note, numbered CN-…, naming the invoice it credits, its amounts positive,
its PDF in OUTPUT/invoices/.

`credit_note` is the one place that makes them: once `billing-batch credit` has landed, its body
becomes that command (and a read of the ledger), and the tests stay as they are. Until then the
credit note lives in the test, not in the ledger, and is handed to the tasks as a candidate."""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from billing_batch import pipeline, render
from billing_batch.model import DocType, Invoice, InvoiceStatus, RunType
from billing_batch.money import round_money
from billing_batch.tax import vat_groups


def credit_note(out: Path, invoice: Invoice, seq: int = 1, lines: int | None = None,
                on: date | None = None, **changes) -> Invoice:
    """Credit note CN-00000<seq> for the whole of `invoice`, or for its first `lines` lines only,
    dated `on` (default: the day after the invoice), with its PDF written under out/invoices/.
    changes: other fields of the credit note (locale=...)."""
    d = invoice.draft
    if lines is None:
        draft = d
    else:
        kept = d.lines[:lines]
        subtotal = sum((line.amount for line in kept), Decimal(0))
        discount = round_money(subtotal * d.discount_rate, d.currency)
        groups = vat_groups(kept, discount, d.currency, d.tax_rounding)
        tax = sum((g.tax for g in groups), Decimal(0))
        draft = dataclasses.replace(d, lines=kept, subtotal=subtotal, discount=discount, tax=tax,
                                    total=subtotal - discount + tax, vat_groups=groups)
    day = on or invoice.invoice_date + timedelta(days=1)
    note = dataclasses.replace(
        invoice, number=f"CN-{seq:06d}", draft=draft, invoice_date=day, due_date=day, run_type=RunType.MANUAL,
        status=InvoiceStatus.ISSUED, replaced_by=None, doc_type=DocType.CREDIT_NOTE,
        credits=invoice.number, credits_date=invoice.invoice_date, **changes)
    pdf = out / note.pdf_name
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(render.render_pdf(note, pipeline.TEMPLATES))
    return note


def credited(invoice: Invoice) -> Invoice:
    """The invoice as the ledger holds it once a credit note corrects it in full."""
    return dataclasses.replace(invoice, status=InvoiceStatus.CREDITED)
