"""What the review flags on each issued invoice, and why: pure. See docs/review.md for the rules."""
from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from babel.numbers import format_decimal
from dateutil.relativedelta import relativedelta

from billing_batch.review import format as fmt
from billing_batch.engine.adjustments import cycle_invoices
from billing_batch.engine.cycles import cycle_containing, cycle_start
from billing_batch.model import (
    Contract,
    DocType,
    Draft,
    Inputs,
    Invoice,
    LineKind,
    Policy,
)

DEFAULT_THRESHOLD = Decimal("0.25")
SPIKE_FACTOR = Decimal(3)  # a usage line more than this times the median of the earlier ones


# ---------------------------------------------------------------- flags


@dataclass(frozen=True)
class FlagKind:
    name: str  # short and stable: a CSS class, a URL filter value
    label: str  # column header in the Review sheet, badge text on the page
    tone: str  # "alert" (money may be wrong), "warn" (look closer) or "info" (know about it)
    explains: str  # one line for the legend; {threshold} is filled in


FLAG_KINDS: tuple[FlagKind, ...] = (
    FlagKind("differs", "Differs", "alert",
             "The invoice differs from what the current workbook data would bill for its cycle."),
    FlagKind("zero_or_negative", "Zero or negative", "alert", "The total is zero or negative."),
    FlagKind("credit_note", "Credit note", "warn",
             "A credit note: it credits the invoice it names (its total is refunded or taken off what the "
             "customer owes; it is never debited)."),
    FlagKind("changed", "Changed", "warn",
             "The total moved by more than {threshold} against the contract's previous invoice."),
    FlagKind("usage_spike", "Usage spike", "warn",
             "A usage line is more than 3\u00d7 the contract's usual for that product "
             "(the median of its earlier usage)."),
    FlagKind("late_usage", "Late usage", "warn",
             "Usage dated before the period this invoice normally bills: it arrived late."),
    FlagKind("no_email", "No email", "warn", "The customer has no email address, so the invoice cannot be emailed."),
    FlagKind("replaces", "Replaces", "info", "A reissue: it replaces an earlier invoice for the same cycle."),
    FlagKind("first", "First invoice", "info", "The contract's first invoice: check its set-up once."),
    FlagKind("prorated", "Prorated", "info", "Part of a charge is prorated (a start or end within the cycle)."),
)
FLAGS: dict[str, FlagKind] = {k.name: k for k in FLAG_KINDS}


@dataclass(frozen=True)
class Flag:
    name: str  # a key of FLAGS
    note: str  # one line about this invoice, e.g. "Total $1,250.00 is 40% above ..."

    @property
    def kind(self) -> FlagKind:
        return FLAGS[self.name]


@dataclass(frozen=True)
class ReviewRow:
    """One issued invoice as the review shows it."""

    number: str
    pdf_name: str  # relative to the output folder, e.g. invoices/INV-000001.pdf
    customer_id: str
    customer: str
    contract_id: str
    period_start: date
    period_end: date
    invoice_date: date
    due_date: date
    currency: str
    total: Decimal
    locale: str  # the review's (Settings' Locale), which its notes are written in; not the invoice's language
    flags: tuple[Flag, ...] = ()  # in FLAG_KINDS order
    usage_name: str | None = None  # the usage detail workbook, e.g. invoices/INV-000001-usage.xlsx
    doc_type: DocType = DocType.INVOICE
    credits: str | None = None  # a credit note: the invoice it credits
    credits_pdf: str | None = None  # ... and that invoice's PDF, relative to the output folder

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.flags)

    @property
    def is_credit_note(self) -> bool:
        return self.doc_type is DocType.CREDIT_NOTE

    @property
    def signed_total(self) -> Decimal:
        """The total as it moves the customer's balance: a credit note's is negative."""
        return -self.total if self.is_credit_note else self.total

    @property
    def notes(self) -> str:
        return "\n".join(f.note for f in self.flags)


# ---------------------------------------------------------------- the flags, computed


def review_rows(
    issued: Sequence[Invoice],
    history: Sequence[Invoice],
    inputs: Inputs,
    differs: Mapping[str, str],
    threshold: Decimal,
) -> list[ReviewRow]:
    """One row per issued invoice, in the order given, with its flags. Pure.

    history is every invoice in the ledger before this run; it may include the issued
    ones (deduplicated by number; the issued version wins)."""
    known = known_invoices(history, issued)
    by_number = {inv.number: inv for inv in known}
    known = [inv for inv in known if inv.doc_type is not DocType.CREDIT_NOTE]  # the invoices' flags compare invoices
    live = live_by_cycle(known, [inv for inv in issued if not inv.is_credit_note])
    by_contract: dict[str, list[Invoice]] = defaultdict(list)
    for inv in known:
        by_contract[inv.draft.contract_id].append(inv)
    live_by_contract: dict[str, list[Invoice]] = defaultdict(list)
    for inv in sorted(live.values(), key=lambda i: i.draft.cycle_start):
        live_by_contract[inv.draft.contract_id].append(inv)
    live_starts = {cid: [i.draft.cycle_start for i in invs] for cid, invs in live_by_contract.items()}
    usual = _usual_usage(live.values())
    issued_numbers = {i.number for i in issued}
    order = {inv.number: n for n, inv in enumerate(known)}
    # Every amount of every note in the review's one locale, whatever language each invoice is in.
    locale = inputs.settings.locale

    rows = []
    for inv in issued:
        d = inv.draft
        money = fmt.money(locale, d.currency)
        flags: dict[str, str] = {}
        if inv.doc_type is DocType.CREDIT_NOTE:
            credited = by_number.get(inv.credits or "")
            flags["credit_note"] = _credit_note(inv, credited, locale)
            if not inv.buyer.email.strip():
                flags["no_email"] = f"Customer {d.customer_id} has no email address."
            rows.append(_row(inv, flags, locale, credited.pdf_name if credited else None))
            continue

        if inv.number in differs:
            flags["differs"] = fmt.amounts_in(differs[inv.number], locale)

        if d.total <= 0:
            flags["zero_or_negative"] = (f"Total is {money(d.total)}" + (" (a credit)." if d.total < 0 else "."))

        starts = live_starts.get(d.contract_id, [])
        at = bisect.bisect_left(starts, d.cycle_start)
        previous = live_by_contract[d.contract_id][at - 1] if at > 0 else None
        if previous is not None:
            note = _changed(inv, previous, threshold, locale)
            if note:
                flags["changed"] = note

        spikes = []
        for line in d.lines:
            if line.kind is LineKind.USAGE:
                median, count = usual.get((d.contract_id, line.product, line.period_start), (None, 0))
                if median is not None and line.quantity > SPIKE_FACTOR * median:
                    spikes.append((line, median, count))
        if spikes:
            flags["usage_spike"] = _spike_note(spikes, locale)

        late_from = _usage_window_start(d, inputs.contracts.get(d.contract_id))
        late = sorted(line.period_start for line in d.lines
                      if line.kind is LineKind.USAGE and line.period_start < late_from)
        if late:
            when = late[0].isoformat() if late[0] == late[-1] else f"{late[0].isoformat()} – {late[-1].isoformat()}"
            what = "1 usage line dated" if len(late) == 1 else f"{len(late)} usage lines dated"
            flags["late_usage"] = (f"{what} {when}, before {late_from.isoformat()} where this invoice's "
                                   "usage period starts.")

        if not inv.buyer.email.strip():
            flags["no_email"] = f"Customer {d.customer_id} has no email address."

        others = [o for o in by_contract[d.contract_id] if o.number != inv.number]
        replaced = [o for o in others if o.draft.cycle_start == d.cycle_start and o.number not in issued_numbers
                    and order[o.number] < order[inv.number]]
        if replaced:
            old = next((o for o in replaced if o.replaced_by == inv.number), replaced[-1])
            flags["replaces"] = (f"Replaces {old.number} (total {fmt.money(locale, old.draft.currency)(old.draft.total)}, "
                                 f"invoice date {old.invoice_date.isoformat()}).")

        if not any(order[o.number] < order[inv.number] for o in others):  # none issued before it
            flags["first"] = f"First invoice of contract {d.contract_id}."

        prorated = [line for line in d.lines if line.prorated]
        if prorated:
            parts = [f"{line.product} {fmt.period(line.period_start, line.period_end)}" for line in prorated[:3]]
            more = f" (+{len(prorated) - 3} more)" if len(prorated) > 3 else ""
            flags["prorated"] = f"Prorated: {'; '.join(parts)}{more}."

        rows.append(_row(inv, flags, locale))
    return rows


def _row(inv: Invoice, flags: Mapping[str, str], locale: str, credits_pdf: str | None = None) -> ReviewRow:
    d = inv.draft
    return ReviewRow(
        number=inv.number,
        pdf_name=inv.pdf_name,
        usage_name=inv.usage_name,
        customer_id=d.customer_id,
        customer=d.customer_name,
        contract_id=d.contract_id,
        period_start=d.cycle_start,
        period_end=d.cycle_end,
        invoice_date=inv.invoice_date,
        due_date=inv.due_date,
        currency=d.currency,
        total=d.total,
        locale=locale,
        flags=tuple(Flag(k.name, flags[k.name]) for k in FLAG_KINDS if k.name in flags),
        doc_type=inv.doc_type,
        credits=inv.credits,
        credits_pdf=credits_pdf,
    )


def _credit_note(note: Invoice, credited: Invoice | None, locale: str) -> str:
    money = fmt.money(locale, note.draft.currency)
    if not note.credits:
        return (f"Credits {money(note.draft.total)} for {fmt.period(note.draft.cycle_start, note.draft.cycle_end)}: "
                "the cycle totals below zero, no invoice is credited.")
    text = f"Credits {money(note.draft.total)} of invoice {note.credits}"
    if note.credits_date:
        text += f" of {note.credits_date.isoformat()}"
    if credited is not None:
        whole = "in full" if note.draft.total == credited.draft.total else f"part of its {money(credited.draft.total)}"
        text += f" ({whole})"
    return text + "."


def known_invoices(history: Iterable[Invoice], issued: Iterable[Invoice]) -> list[Invoice]:
    """Every invoice once, in ledger order; the issued version of a number wins."""
    known: dict[str, Invoice] = {}
    for inv in history:
        known[inv.number] = inv
    for inv in issued:
        known[inv.number] = inv
    return list(known.values())


def live_by_cycle(known: Iterable[Invoice], issued: Iterable[Invoice]) -> dict[tuple[str, date], Invoice]:
    """The live invoice of each cycle. An issued invoice wins its cycle even when the
    history was read before it replaced the old one."""
    live = cycle_invoices(known)
    live.update(cycle_invoices(issued))
    return live


def _changed(inv: Invoice, previous: Invoice, threshold: Decimal, locale: str) -> str | None:
    d, p = inv.draft, previous.draft
    if d.currency != p.currency:
        return (f"Currency changed: {fmt.money(locale, d.currency)(d.total)} against "
                f"{fmt.money(locale, p.currency)(p.total)} on the previous invoice {previous.number}.")
    diff = d.total - p.total
    if abs(diff) <= threshold * abs(p.total):  # exactly at the threshold is not a change worth a look
        return None
    money = fmt.money(locale, d.currency)
    if p.total == 0:
        return f"Total {money(d.total)} against {money(p.total)} on the previous invoice {previous.number}."
    pct = abs(diff) / abs(p.total) * 100
    digits = 0
    while pct.quantize(Decimal(1).scaleb(-digits)) <= threshold * 100 and digits < 6:
        digits += 1  # never show "25%" for a flagged 25.01%
    shown = format_decimal(pct, format="#,##0." + "0" * digits if digits else "#,##0", locale=fmt.babel_locale(locale))
    way = "above" if diff > 0 else "below"
    return f"Total {money(d.total)} is {shown}% {way} the previous invoice {previous.number} ({money(p.total)})."


def _usual_usage(live: Iterable[Invoice]) -> dict[tuple[str, str, date], tuple[Decimal, int]]:
    """(contract, product, day) -> (median quantity, count) of the contract's usage of that
    product dated strictly before day, over every live invoice (each usage row once)."""
    groups: dict[tuple[str, str], dict[str, tuple[date, Decimal]]] = defaultdict(dict)
    for inv in live:
        for n, line in enumerate(inv.draft.lines):
            if line.kind is LineKind.USAGE:
                key = line.usage_id or f"{inv.number}/{n}"
                groups[(inv.draft.contract_id, line.product)][key] = (line.period_start, line.quantity)
    usual: dict[tuple[str, str, date], tuple[Decimal, int]] = {}
    for (contract_id, product), rows in groups.items():
        seen: list[Decimal] = []
        by_day: dict[date, list[Decimal]] = defaultdict(list)
        for day, quantity in rows.values():
            by_day[day].append(quantity)
        for day in sorted(by_day):
            if seen:
                usual[(contract_id, product, day)] = (_median(seen), len(seen))
            for quantity in by_day[day]:
                bisect.insort(seen, quantity)
    return usual


def _median(ordered: list[Decimal]) -> Decimal:
    n = len(ordered)
    mid = n // 2
    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _spike_note(spikes: list, locale: str) -> str:
    def times(line, median) -> Decimal:
        return line.quantity / median if median else Decimal("Infinity")

    spikes.sort(key=lambda s: times(s[0], s[1]), reverse=True)
    line, median, count = spikes[0]
    ratio = times(line, median)
    digits = 1
    while ratio.is_finite() and ratio.quantize(Decimal(1).scaleb(-digits)) <= SPIKE_FACTOR and digits < 6:
        digits += 1  # never show "3.0x" for a flagged 3.001x
    how = (format_decimal(ratio, format="0." + "0" * digits, locale=fmt.babel_locale(locale)) + "\u00d7"
           if ratio.is_finite() else "far above")
    earlier = "1 earlier line" if count == 1 else f"{count} earlier lines"
    note = (f"{line.product}: {fmt.number(locale, line.quantity)} on {line.period_start.isoformat()} is {how} "
            f"the usual {fmt.number(locale, median)} (median of {earlier}).")
    if len(spikes) > 1:
        note = note[:-1] + f" (+{len(spikes) - 1} more)."
    return note


def _usage_window_start(draft: Draft, contract: Contract | None) -> date:
    """The earliest usage date this invoice takes in the normal course: the cycle start
    for Arrears; for Advance, the start of the previous cycle (an Advance invoice bills the
    usage up to the day before its cycle starts). Anything dated earlier arrived late."""
    if contract is None:  # no longer in the workbook: assume the lenient rule
        return draft.cycle_start - (draft.cycle_end - draft.cycle_start + timedelta(days=1))
    if contract.policy is Policy.ARREARS:
        return draft.cycle_start
    cycle = cycle_containing(contract, draft.cycle_start)
    if cycle is not None and cycle.start == draft.cycle_start:
        return cycle_start(contract, cycle.index - 1)
    return draft.cycle_start - relativedelta(months=contract.frequency.months)
