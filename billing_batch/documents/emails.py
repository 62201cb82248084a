"""What an invoice's or credit note's email says: its subject and bodies, rendered from the look's
templates in the customer's language. Sending it is post/send.py's."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_percent

from billing_batch import i18n
from billing_batch.documents.look import EMAILS, Look
from billing_batch.model import DocType, Invoice


def email_view(inv: Invoice, replaces: list[str]) -> dict:
    """The values the email templates may use, formatted for the invoice's locale. For a credit note,
    number, invoice_date and total are its own; credits and credits_date name the invoice it credits."""
    d = inv.draft
    locale = Locale.parse(inv.locale.replace("-", "_"))

    def money(amount: Decimal) -> str:
        return format_currency(amount, d.currency, locale=locale)

    def day(value: date) -> str:
        return format_date(value, format="long", locale=locale)

    period = day(d.cycle_start) if d.cycle_start == d.cycle_end else f"{day(d.cycle_start)} – {day(d.cycle_end)}"
    return {
        "locale": str(locale),  # the templates' _() and {% trans %} translate for it
        "number": inv.number,
        "customer_name": d.customer_name,
        "customer_id": d.customer_id,
        "contract_id": d.contract_id,
        "period": period,
        "invoice_date": day(inv.invoice_date),
        "due_date": day(inv.due_date),
        "due_on_receipt": inv.due_date <= inv.invoice_date,
        "currency": d.currency,
        "subtotal": money(d.subtotal),
        "discount": money(d.discount) if d.discount else "",
        "discount_rate": format_percent(d.discount_rate, locale=locale, decimal_quantization=False) if d.discount_rate else "",
        "tax": money(d.tax),
        "total": money(d.total),
        "company_name": inv.seller.name,
        "company_email": inv.seller.email,
        "bank_lines": [line.strip() for line in inv.seller.bank_details.splitlines() if line.strip()],
        "pdf_name": Path(inv.pdf_name).name,
        "replaces": ", ".join(replaces),
        "credits": inv.credits or "",
        "credits_date": day(inv.credits_date) if inv.credits_date else "",
    }


@lru_cache(maxsize=4)
def _environment(look: Look) -> jinja2.Environment:
    return i18n.install(jinja2.Environment(
        loader=look.loader(),
        autoescape=lambda name: bool(name and name.endswith(".html")),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    ))


def render_email(templates: Look | Path, view: dict,
                 doc_type: DocType = DocType.INVOICE) -> tuple[str, str, str | None]:
    """(subject on one line, text body, HTML body or None when there is no HTML template), from the
    templates of the document's type (look.EMAILS)."""
    look = Look.of(templates)
    env = _environment(look)
    subject_file, text_file, _ = EMAILS[doc_type]
    # Fold line breaks only: str.split() would also break Babel's no-break spaces (1.234,56\xa0€), and
    # Python's header encoder then loses a plain space between two encoded words ("€fällig").
    subject = " ".join(re.split(r"[ \t\r\n]+", env.get_template(subject_file).render(view))).strip()
    text = env.get_template(text_file).render(view)
    html_file = look.email_html(doc_type)
    html = env.get_template(html_file.name).render(view) if html_file else None
    return subject, text, html
