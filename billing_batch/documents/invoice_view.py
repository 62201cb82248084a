"""What an invoice shows: `invoice_view` turns an Invoice into plain formatted strings (Babel, in the
invoice's language), which the template only loops over; LABELS are the texts it prints.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal, format_percent
from markupsafe import Markup

from billing_batch import i18n
from billing_batch.engine.pricing import RECURRING_KEY, per_month
from billing_batch.engine.tax import (
    CATEGORIES,
    DEFAULT_REASONS,
    REASON_SEPARATOR,
    STANDARD,
)
from billing_batch.model import Invoice, InvoiceStatus, Line, LineKind, Party

# Every text the invoice prints, in English. invoice_view translates each for the invoice's locale
# (i18n.labels); `pybabel extract` finds them here (i18n.extract). To add one: add it here and
# translate it (docs/translations.md).
LABELS = {
    "invoice": "Invoice",
    "tax_id": "Tax ID: {tax_id}",
    "bill_to": "Bill to",
    "invoice_date": "Invoice date",
    "due_date": "Due date",
    "period": "Billing period",
    "customer": "Customer no.",
    "contract": "Contract",
    "currency": "Currency",
    "product": "Product",
    "description": "Description",
    "line_period": "Period",
    "quantity": "Qty",
    "unit_price": "Unit price",
    "amount": "Amount",
    "prorated": "(prorated)",
    "subtotal": "Subtotal",
    "discount": "Discount",
    "discount_rate": "Discount ({rate})",
    "tax": "Tax ({rate})",
    "vat": "VAT",
    "vat_id": "VAT ID: {vat_id}",
    "vat_breakdown": "VAT breakdown",
    "vat_category": "VAT category",
    "vat_rate": "Rate",
    "taxable": "Taxable amount",
    "total": "Total",
    "payment_terms": "Payment terms",
    "page": "Page {page} of {pages}",
    "terms_net": "Net {days} days: please pay by {due}, quoting invoice {number}.",
    "terms_receipt": "Due on receipt: please pay by {due}, quoting invoice {number}.",
    "bank_details": "Bank details",
    "void": "VOID",
    "void_replaced": "VOID — replaced by {number}",
    "no_lines": "No charges this period.",
    "usage_details": "Usage details: {name}",
    "credit_note": "Credit note",
    "credit_note_date": "Credit note date",
    "credits_invoice": "Credits invoice {number} of {date}",
    "reason": "Reason: {reason}",
    "credit_terms": "Nothing to pay: this credit note reduces what is due under invoice {number}; "
                    "an amount already paid is refunded.",
    "credit_terms_account": "Nothing to pay: this amount is credited to your account.",
    "total_credited": "Total credited",
    "credited_by": "Credited in full by {numbers}",
    "part_credited_by": "Partly credited by {numbers}",
    "replaced_by": "Replaced by invoice {number}",
    "replaces": "Replaces invoice {number}",
    "adjustment_to": "Adjustment to {number}",
    "adjustment": "Adjustment",  # to a cycle that had nothing to bill, so no invoice
    "one_day": "1 day",
    "days": "{days} days",
    # How a line's amount is made, under its unit price: 10 x 33.70 € / month x 3 months x 72/92 days.
    "per_month": "/ month",
    "months_factor": "× {months} months",
    "days_factor": "× {days}/{full_days} days",
    "lump_sum": "lump sum",  # a line that is a sum, not units at a price: a credit of an amount
    "rounding": "rounding",  # the cent an Adjustment's factors, rounded once, leave of the difference it bills
    # A Microsoft licence charge (Partner Center's ChargeType), and the subscription it is for
    "licence_new": "New subscription",
    "licence_renew": "Renewal",
    "licence_cycleCharge": "Subscription period",
    "licence_addQuantity": "Seats added",
    "licence_removeQuantity": "Seats removed",
    "licence_cancel": "Cancellation",
    "licence_convert": "Change of term",
    "licence_customerCredit": "Credit from Microsoft",
    "licence_refund": "{what}: refund of the earlier seats",
    "licence_subscription": "subscription {subscription}",
    "licence_replaces": "billed from Microsoft's charges from {day}, in place of {subscription}",
}


def invoice_view(invoice: Invoice) -> dict:
    """Everything the template prints, as already formatted strings (pure function)."""
    draft = invoice.draft
    locale = Locale.parse(invoice.locale.replace("-", "_"))
    labels = i18n.labels(LABELS, invoice.locale)
    translate = i18n.gettext_for(invoice.locale)
    cur = draft.currency

    def money(amount: Decimal) -> str:
        return format_currency(amount, cur, locale=locale)

    def day(d: date) -> str:
        return format_date(d, format="medium", locale=locale)

    def period(start: date, end: date) -> str:
        return day(start) if start == end else f"{day(start)} – {day(end)}"

    def percent(rate: Decimal) -> str:
        return format_percent(rate, locale=locale, decimal_quantization=False)

    def credit(amount: Decimal) -> Decimal:
        """A credit note is shown as a credit: its stored amounts, which are what it credits, negated
        (a zero stays 0.00, not -0.00)."""
        return -amount if invoice.is_credit_note and amount else amount

    if invoice.is_credit_note:
        labels["invoice"] = labels["credit_note"]  # its title, in every template that prints labels.invoice

    def description(line: Line) -> str:
        """An Adjustment says the invoice it corrects, and for a recurring charge its days; a licence charge
        what Microsoft charged and for which subscription."""
        if line.kind is LineKind.LICENCE and line.usage_rows:
            return licence(line, dict(line.usage_rows[0].groups))
        if line.kind is not LineKind.ADJUSTMENT:
            return line.description
        what = labels["adjustment_to"].format(number=line.corrects) if line.corrects else labels["adjustment"]
        text = f"{what} – {line.description}" if line.description else what
        if line.adjusted and line.adjusted.charge.key.startswith(RECURRING_KEY):
            text += f" ({labels['one_day'] if line.days == 1 else labels['days'].format(days=line.days)})"
        return text

    def licence(line: Line, facts: dict[str, str]) -> str:
        charge = facts.get("Charge Type", "")
        what = labels.get(f"licence_{charge}", charge)
        if line.quantity < 0 and charge in ("addQuantity", "removeQuantity", "convert"):
            what = labels["licence_refund"].format(what=what)
        text = f"{what} – {labels['licence_subscription'].format(subscription=facts.get('Subscription ID', ''))}"
        if replaced := facts.get("Replaces"):
            text += f"; {labels['licence_replaces'].format(day=day(line.period_start), subscription=replaced)}"
        return text

    def figures(line: Line) -> dict:
        """The factors whose product, rounded once, is the line's amount, as printed: its quantity, its
        unit price (per month for a recurring charge), and under the price the cycle's months (when more
        than one) and the days billed of the full cycle's (when not all). A sum, such as a credit of an
        amount off a line, has no quantity or price: it says what it is. A line issued before the
        ledger kept the months and days prints as it was issued."""
        if not line.quantity and (line.credits_line or line.kind in (LineKind.ADJUSTMENT, LineKind.LICENCE)):
            return {"quantity": "", "unit_price": "", "per": "", "factors": [],
                    "sum": labels["lump_sum" if line.credits_line else "rounding"]}
        factors = []
        if line.months is not None and line.full_days:
            if line.months != 1:
                factors.append(labels["months_factor"].format(months=line.months))
            if line.days != line.full_days:
                factors.append(labels["days_factor"].format(days=line.days, full_days=line.full_days))
        return {
            "quantity": format_decimal(credit(line.quantity), locale=locale, decimal_quantization=False),
            # At least the currency's digits, but never round away a price like 0.0125.
            "unit_price": format_currency(line.unit_price, cur, locale=locale, decimal_quantization=False),
            "per": labels["per_month"] if per_month(line) else "",
            "factors": factors,
            "sum": "",
        }

    lines = [
        {
            "product": line.product,
            "description": description(line),
            "prorated": line.prorated,
            "period": period(line.period_start, line.period_end),
            **figures(line),
            "amount": money(credit(line.amount)),
            "vat": f"{line.tax_category} {percent(line.tax_rate)}",
        }
        for line in draft.lines
    ]

    totals = [{"label": labels["subtotal"], "value": money(credit(draft.subtotal)), "total": False}]
    if draft.discount:
        label = labels["discount_rate"].format(rate=percent(draft.discount_rate)) if draft.discount_rate else labels["discount"]
        # Shown as a deduction whatever sign convention the pricing uses (on a credit note, of the credit).
        totals.append({"label": label, "value": money(-credit(abs(draft.discount))), "total": False})
    groups = draft.vat_groups
    # One standard-rate group is what an invoice always showed: "Tax (21%)"; else the breakdown tells.
    plain = len(groups) <= 1 and all(g.category == STANDARD for g in groups)
    tax_label = labels["tax"].format(rate=percent(groups[0].rate if groups else draft.tax_rate)) if plain else labels["vat"]
    totals.append({"label": tax_label, "value": money(credit(draft.tax)), "total": False})
    totals.append({"label": labels["total_credited" if invoice.is_credit_note else "total"],
                   "value": money(credit(draft.total)), "total": True})

    days = (invoice.due_date - invoice.invoice_date).days
    terms = labels["terms_net"] if days > 0 else labels["terms_receipt"]
    if invoice.is_credit_note:
        terms = labels["credit_terms"] if invoice.credits else labels["credit_terms_account"]

    void = ""
    if invoice.status is InvoiceStatus.REPLACED:
        void = labels["void_replaced"].format(number=invoice.replaced_by) if invoice.replaced_by else labels["void"]
    corrects = {"credits": "", "reason": ""}
    if invoice.is_credit_note and invoice.credits:
        corrects["credits"] = labels["credits_invoice"].format(number=invoice.credits, date=day(invoice.credits_date))
    if invoice.reason:  # a reason the batch gave is translated; one typed by a person is printed as typed
        corrects["reason"] = labels["reason"].format(reason=i18n.gettext_for(invoice.locale)(invoice.reason))
    # How this invoice was corrected, or what it corrects: the documents linked to it.
    notes = []
    if invoice.credited_by:
        by = labels["credited_by" if invoice.status is InvoiceStatus.CREDITED else "part_credited_by"]
        notes.append(by.format(numbers=", ".join(invoice.credited_by)))
    if invoice.replaced_by and invoice.status is InvoiceStatus.CREDITED:
        notes.append(labels["replaced_by"].format(number=invoice.replaced_by))
    if invoice.replaces:
        notes.append(labels["replaces"].format(number=invoice.replaces))

    return {
        "labels": labels,
        "lang": locale.language,
        "locale": str(locale),  # the templates' _() and {% trans %} translate for it
        "page_footer": _css_content(labels["page"], page="counter(page)", pages="counter(pages)"),
        "title": f"{labels['invoice']} {invoice.number}",
        "created": invoice.invoice_date.isoformat(),
        "number": invoice.number,
        "void": void,
        # The watermark fills the page's diagonal: 120pt holds VOID; a longer word (STORNIERT) gets smaller.
        "void_mark_size": f"{min(120, 700 // max(1, len(labels['void'])))}pt",
        "credit": corrects,
        "status_notes": notes,
        "seller": _party(invoice.seller, labels, with_email=True),
        "buyer": _party(invoice.buyer, labels, with_email=False),
        "meta": [
            (labels["credit_note_date" if invoice.is_credit_note else "invoice_date"], day(invoice.invoice_date)),
            *([] if invoice.is_credit_note else [(labels["due_date"], day(invoice.due_date))]),
            (labels["period"], period(draft.cycle_start, draft.cycle_end)),
            (labels["customer"], draft.customer_id),
            (labels["contract"], draft.contract_id),
            (labels["currency"], cur),
        ],
        "lines": lines,
        "usage_note": labels["usage_details"].format(name=Path(invoice.usage_name).name) if invoice.usage_name else "",
        "totals": totals,
        # shown when it says more than the tax line, or to a customer with a VAT ID (a business that
        # books the VAT it is charged)
        "vat_groups": [] if plain and not invoice.buyer.vat_id else [
            {"category": f"{g.category} – {translate(CATEGORIES.get(g.category, g.category))}", "rate": percent(g.rate),
             "taxable": money(g.taxable), "tax": money(g.tax)} for g in groups],
        "legends": list(dict.fromkeys(f"{g.category} – {_legend(g.exemption_reason, translate)}"
                                      for g in groups if g.exemption_reason)),
        "terms": terms.format(days=days, due=day(invoice.due_date), number=invoice.credits or invoice.number),
        "bank_lines": _split_lines([invoice.seller.bank_details]),
    }


_DEFAULT_REASONS = frozenset(DEFAULT_REASONS.values())


def _legend(reason: str, translate: Callable[[str], str]) -> str:
    """A group's legend in the invoice's language: the default texts translated, a Tax Exemption
    Reason typed in the workbook as typed (the ledger keeps the default texts in English)."""
    return REASON_SEPARATOR.join(translate(part) if part in _DEFAULT_REASONS else part
                                 for part in reason.split(REASON_SEPARATOR))


def _split_lines(texts: Sequence[str]) -> list[str]:
    # Spreadsheet cells may hold line breaks; the template prints one line per item.
    return [part.strip() for text in texts for part in text.splitlines() if part.strip()]


def _css_content(text: str, **counters: str) -> Markup:
    """A CSS `content` value: the text's {placeholders} become the given CSS counters, the rest quoted
    strings (the page footer is CSS, so it is translated here rather than in invoice.css)."""
    parts = re.split(r"\{(\w+)\}", text)
    quoted = ['"' + part.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\3c ") + '"'
              if i % 2 == 0 else counters[part] for i, part in enumerate(parts)]
    return Markup(" ".join(q for q in quoted if q != '""'))


def _party(party: Party, labels: dict[str, str], with_email: bool) -> dict:
    details = _split_lines(party.address_lines)
    if with_email and party.email:
        details.append(party.email)
    if party.vat_id:
        details.append(labels["vat_id"].format(vat_id=party.vat_id))
    if party.tax_id:
        details.append(_tax_id(party, labels["tax_id"]))
    return {"name": party.name, "lines": details}


def _tax_id(party: Party, pattern: str) -> str:
    """The Tax ID after its label, once: the seller's Tax ID Label as typed, else the generic label in the
    invoice's language, its punctuation taken from the translated pattern ("Identifiant fiscal : {tax_id}").
    A value typed with its label already ("Steuernummer 143/123/45678") is printed as typed."""
    generic, separator = re.fullmatch(r"(.*?)([\s:：]*)", pattern.partition("{tax_id}")[0]).groups()
    label = party.tax_id_label.strip().rstrip(":：").strip() or generic
    if not label or re.match(rf"{re.escape(label)}(?!\w)", party.tax_id, re.IGNORECASE):
        return party.tax_id
    return f"{label}{separator or ' '}{party.tax_id}"
