"""Credit notes: what one credits, from a draft that totals below zero or from an issued invoice. Pure.

A credit note's amounts are stored positive, as what is credited: a draft's lines are negated (an
invoice's negative line appears positive on its credit note). Crediting an issued invoice never
credits more than is left of it, line by line and in total, counting its earlier credit notes.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from billing_batch.model import Draft, Invoice, InvoiceStatus, Line
from billing_batch.money import round_money
from billing_batch.engine.pricing import by_hand, exact_amount
from billing_batch.engine.tax import vat_groups


@dataclass(frozen=True)
class CreditNote:
    """A credit note to issue, not yet numbered."""

    draft: Draft  # positive amounts: what is credited
    credits: str | None = None  # the number of the invoice it credits
    credits_date: date | None = None
    reason: str = ""
    credited: Invoice | None = None  # the invoice credited: the note keeps its parties and language
    settles: bool = False  # it credits all that was left of that invoice, which becomes Credited


@dataclass(frozen=True)
class Refusal:
    """Why a credit cannot be made, in finance words with the numbers."""

    code: str  # BB130..BB134 (docs/errors.md, "Refusals of the credit command")
    message: str

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


def below_zero(draft: Draft) -> bool:
    """A draft that totals below zero is issued as a credit note instead (from_draft)."""
    return draft.total < 0


def from_draft(draft: Draft, credits: str | None = None, credits_date: date | None = None,
               reason: str = "") -> CreditNote:
    """The credit note a draft totalling below zero is issued as: every line negated (quantity and
    amount, so quantity x unit price still makes the amount), the totals made again from them.
    credits: the invoice its lines correct, if any."""
    lines = tuple(replace(line, quantity=-line.quantity, amount=-line.amount) for line in draft.lines)
    return CreditNote(_with_totals(draft, lines), credits, credits_date, reason)


@dataclass(frozen=True)
class Left:
    """What is left to credit of one invoice line."""

    quantity: Decimal
    amount: Decimal


def left_to_credit(invoice: Invoice, earlier: Iterable[Invoice]) -> tuple[dict[int, Left], Decimal]:
    """Line number -> what is left of it, and what is left of the total, after the earlier credit
    notes of the invoice. A credit by amount (quantity 0) leaves the line's quantity as it was."""
    left = {n: Left(line.quantity, line.amount) for n, line in enumerate(invoice.draft.lines, 1)}
    total = invoice.draft.total
    for note in earlier:
        if note.credits != invoice.number:
            continue
        total -= note.draft.total
        for line in note.draft.lines:
            if line.credits_line in left:
                was = left[line.credits_line]
                left[line.credits_line] = Left(was.quantity - line.quantity, was.amount - line.amount)
    return left, total


def credit_invoice(invoice: Invoice, earlier: Iterable[Invoice], reason: str, line: int | None = None,
                   quantity: Decimal | None = None, amount: Decimal | None = None) -> CreditNote | Refusal:
    """The credit note for what is left of the invoice (line None), or for part of one line: a
    quantity of it (priced as the line was: its factors with that quantity, or for a line issued
    without them its amount x quantity / its quantity) or an amount. What is left of a line that its
    factors do not make (after an earlier credit of an amount, or roundings of earlier credits) is
    credited as those factors and a sum for the rest (pricing.by_hand).
    Its tax follows each line's VAT category and rate, its discount the invoice's rate."""
    earlier = list(earlier)
    n = invoice.number
    if invoice.is_credit_note:
        return Refusal("BB131", f"{n} is a credit note: a credit note is not credited. Issue an invoice instead.")
    if invoice.status is InvoiceStatus.REPLACED:
        return Refusal("BB131", f"{n} was replaced by {invoice.replaced_by} before it was sent, and is void: "
                                f"nothing of it is due. Credit {invoice.replaced_by} instead.")
    left, total_left = left_to_credit(invoice, earlier)
    cur = invoice.draft.currency
    if total_left <= 0 or all(lf.amount <= 0 for lf in left.values()):
        return Refusal("BB132", f"{n} is credited in full already (by {', '.join(invoice.credited_by)}): "
                                "nothing of it is left to credit.")
    lines = invoice.draft.lines
    if line is None:
        # a line below zero (an Adjustment taking days off, a rounding) is credited too: it is reversed
        credited = tuple(checked for k, lf in left.items() if lf.amount for checked in by_hand(
            replace(lines[k - 1], quantity=lf.quantity, amount=lf.amount, usage_rows=(), credits_line=k), cur))
    else:
        if line not in left:
            return Refusal("BB133", f"{n} has no line {line}: its lines are numbered 1 to {len(lines)}, "
                                    "as they are printed on it.")
        billed, lf = lines[line - 1], left[line]
        what = f"line {line} of {n} ({billed.product})"
        if quantity is not None:
            if quantity <= 0:
                return Refusal("BB133", f"The quantity to credit must be more than 0, not {quantity}.")
            if quantity > lf.quantity:
                return Refusal("BB132", f"Cannot credit a quantity of {quantity} of {what}: it billed "
                                        f"{billed.quantity}, and {lf.quantity} of that is left to credit "
                                        f"({billed.quantity - lf.quantity} credited before).")
            # priced as the line was: its factors with this quantity; the last of it is what is left
            exact = exact_amount(replace(billed, quantity=quantity))
            part = lf.amount if quantity == lf.quantity else round_money(
                billed.amount * quantity / billed.quantity if exact is None else exact, cur)
            credited = by_hand(replace(billed, quantity=quantity, amount=part, usage_rows=(), credits_line=line), cur)
        else:
            if amount is None or amount <= 0:
                return Refusal("BB133", f"Name what to credit of line {line}: --quantity Q or --amount A, "
                                        "more than 0.")
            if amount != round_money(amount, cur):
                return Refusal("BB133", f"The amount {amount} has more decimals than {cur} has.")
            part = amount = round_money(amount, cur)  # 300 as 300.00
            # a sum off the line, not a number of its units: its quantity stays to be credited
            credited = (replace(billed, quantity=Decimal(0), unit_price=amount, amount=amount, usage_rows=(),
                                credits_line=line, prorated=False, months=None, full_days=None),)
        if part > lf.amount:
            return Refusal("BB132", f"Cannot credit {part:,} {cur} of {what}: it billed {billed.amount:,}, "
                                    f"and {lf.amount:,} of that is left to credit "
                                    f"({billed.amount - lf.amount:,} credited before).")
    draft = _with_totals(invoice.draft, credited)
    if draft.total > total_left:
        return Refusal("BB132", f"Cannot credit {draft.total:,} {cur} (tax included) of {n}: its total is "
                                f"{invoice.draft.total:,}, and {total_left:,} of that is left to credit "
                                f"({invoice.draft.total - total_left:,} credited before).")
    after = dict(left)
    for c in credited:
        was = after[c.credits_line]
        after[c.credits_line] = Left(was.quantity - c.quantity, was.amount - c.amount)
    settles = draft.total == total_left or all(lf.amount <= 0 for lf in after.values())
    return CreditNote(draft, n, invoice.invoice_date, reason, invoice, settles)


def _with_totals(like: Draft, lines: tuple[Line, ...]) -> Draft:
    """like, with these lines and the totals they make at its discount rate and Tax Rounding, as
    pricing makes them; each line keeps its VAT category and rate, each group its legend."""
    cur = like.currency
    subtotal = sum((line.amount for line in lines), Decimal(0))
    discount = round_money(subtotal * like.discount_rate, cur)
    reasons = {(g.category, g.rate): g.exemption_reason for g in like.vat_groups}
    groups = vat_groups(lines, discount, cur, like.tax_rounding, reasons)
    tax = sum((g.tax for g in groups), Decimal(0))
    return replace(like, lines=lines, subtotal=subtotal, discount=discount, tax=tax,
                   total=subtotal - discount + tax, vat_groups=groups)
