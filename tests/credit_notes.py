"""Credit notes for the tests of what happens after billing.

`issue_credit_note` makes one as finance does, with `billing-batch credit` (pipeline.credit): in the
ledger, numbered in its own series, its PDF rendered. `credit_note` builds one as a model value only
(iface.md: an Invoice of type Credit Note naming the invoice it credits, amounts positive), for the
pure review tests on crafted invoices."""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from billing_batch import pipeline, workspace
from billing_batch.documents import render
from billing_batch.ledger.store import Ledger
from billing_batch.model import DocType, Invoice, InvoiceStatus, RunType
from billing_batch.money import round_money
from billing_batch.engine.tax import vat_groups
from test_post_tasks import Billed, billing_book

CREDITED_ON = date(2026, 3, 3)  # the day after the billed fixture's run


def issue_credit_note(billed: Billed, number: str, line: int | None = None, quantity: Decimal | None = None,
                      amount: Decimal | None = None, on: date = CREDITED_ON) -> Invoice:
    """billing-batch credit --invoice NUMBER [--line N --quantity Q | --amount A]: the credit note
    as the ledger holds it afterwards."""
    book = billed.out.parent / "billing.xlsx"
    if not book.exists():
        billing_book(book)  # the workbook the fixture billed from
    options = pipeline.Options(input=book, output=billed.out, as_of=on, jobs=1)
    report, refusal = pipeline.credit(options, number, "Corrected by the test", line, quantity, amount)
    assert refusal is None and report.exit_code == 0, (refusal, [str(p) for p in report.problems])
    (note,) = report.issued
    with Ledger(billed.ledger_path, read_only=True) as ledger:
        return next(i for i in ledger.invoices() if i.number == note.number)


def credit_note(out: Path, invoice: Invoice, seq: int = 1, lines: int | None = None,
                on: date | None = None, **changes) -> Invoice:
    """Credit note CN-00000<seq> for the whole of `invoice`, or for its first `lines` lines only,
    dated `on` (default: the day after the invoice), with its PDF written under out/invoices/.
    changes: other fields of the credit note (locale=...; credits=None for the credit note of a cycle
    that totals below zero)."""
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
    note = dataclasses.replace(invoice, **{
        "number": f"CN-{seq:06d}", "draft": draft, "invoice_date": day, "due_date": day, "run_type": RunType.MANUAL,
        "status": InvoiceStatus.ISSUED, "replaced_by": None, "doc_type": DocType.CREDIT_NOTE,
        "credits": invoice.number, "credits_date": invoice.invoice_date, **changes})
    pdf = out / note.pdf_name
    pdf.parent.mkdir(parents=True, exist_ok=True)
    pdf.write_bytes(render.render_pdf(note, workspace.TEMPLATES))
    return note
