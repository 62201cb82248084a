"""The run review: one static page per run that shows the whole run at a glance and
points at the invoices that deserve a look.

`review_rows` is pure: one ReviewRow per issued invoice, with its flags and a one-line
explanation of each. `write_review` turns the rows into output/runs/<run id>/review.html,
a self-contained page (CSS, JavaScript and the SVG chart inlined; no network, no server)
whose links to the PDFs are relative, so the output folder can be moved or zipped whole.
See docs/review.md for the flags and their rules.
"""
from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_compact_decimal, format_currency, format_decimal
from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from billing_batch.adjustments import cycle_invoices
from billing_batch.cycles import cycle_containing, cycle_start
from billing_batch.errors import Problem
from billing_batch.files import write_atomic
from billing_batch.look import Look
from billing_batch.model import Contract, Draft, Inputs, Invoice, LineKind, Policy

TEMPLATE = "review.html"
RUNS = "runs"
PAGE = "review.html"
FACTS = "run.json"
DEFAULT_THRESHOLD = Decimal("0.25")
SPIKE_FACTOR = Decimal(3)  # a usage line more than this times the median of the earlier ones
CHART_MONTHS = 12
RUN_ID = re.compile(r"\d{4}-\d{2}-\d{2}T\d{6}-[a-z]+(-\d+)?")


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
    locale: str
    flags: tuple[Flag, ...] = ()  # in FLAG_KINDS order
    usage_name: str | None = None  # the usage detail workbook, e.g. invoices/INV-000001-usage.xlsx

    def has(self, name: str) -> bool:
        return any(f.name == name for f in self.flags)

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
    known = _known(history, issued)
    live = _live(known, issued)
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

    rows = []
    for inv in issued:
        d = inv.draft
        money = _money(inv.locale, d.currency)
        flags: dict[str, str] = {}

        if inv.number in differs:
            flags["differs"] = differs[inv.number]

        if d.total <= 0:
            flags["zero_or_negative"] = (f"Total is {money(d.total)}" + (" (a credit)." if d.total < 0 else "."))

        starts = live_starts.get(d.contract_id, [])
        at = bisect.bisect_left(starts, d.cycle_start)
        previous = live_by_contract[d.contract_id][at - 1] if at > 0 else None
        if previous is not None:
            note = _changed(inv, previous, threshold)
            if note:
                flags["changed"] = note

        spikes = []
        for line in d.lines:
            if line.kind is LineKind.USAGE:
                median, count = usual.get((d.contract_id, line.product, line.period_start), (None, 0))
                if median is not None and line.quantity > SPIKE_FACTOR * median:
                    spikes.append((line, median, count))
        if spikes:
            flags["usage_spike"] = _spike_note(spikes, inv.locale)

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
            flags["replaces"] = (f"Replaces {old.number} (total {_money(old.locale, old.draft.currency)(old.draft.total)}, "
                                 f"invoice date {old.invoice_date.isoformat()}).")

        if not any(order[o.number] < order[inv.number] for o in others):  # none issued before it
            flags["first"] = f"First invoice of contract {d.contract_id}."

        prorated = [line for line in d.lines if line.prorated]
        if prorated:
            parts = [f"{line.product} {_period(line.period_start, line.period_end)}" for line in prorated[:3]]
            more = f" (+{len(prorated) - 3} more)" if len(prorated) > 3 else ""
            flags["prorated"] = f"Prorated: {'; '.join(parts)}{more}."

        rows.append(ReviewRow(
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
            locale=inv.locale,
            flags=tuple(Flag(k.name, flags[k.name]) for k in FLAG_KINDS if k.name in flags),
        ))
    return rows


def _known(history: Iterable[Invoice], issued: Iterable[Invoice]) -> list[Invoice]:
    """Every invoice once, in ledger order; the issued version of a number wins."""
    known: dict[str, Invoice] = {}
    for inv in history:
        known[inv.number] = inv
    for inv in issued:
        known[inv.number] = inv
    return list(known.values())


def _live(known: Iterable[Invoice], issued: Iterable[Invoice]) -> dict[tuple[str, date], Invoice]:
    """The live invoice of each cycle. An issued invoice wins its cycle even when the
    history was read before it replaced the old one."""
    live = cycle_invoices(known)
    live.update(cycle_invoices(issued))
    return live


def _changed(inv: Invoice, previous: Invoice, threshold: Decimal) -> str | None:
    d, p = inv.draft, previous.draft
    if d.currency != p.currency:
        return (f"Currency changed: {_money(inv.locale, d.currency)(d.total)} against "
                f"{_money(previous.locale, p.currency)(p.total)} on the previous invoice {previous.number}.")
    diff = d.total - p.total
    if abs(diff) <= threshold * abs(p.total):  # exactly at the threshold is not a change worth a look
        return None
    money = _money(inv.locale, d.currency)
    if p.total == 0:
        return f"Total {money(d.total)} against {money(p.total)} on the previous invoice {previous.number}."
    pct = abs(diff) / abs(p.total) * 100
    digits = 0
    while pct.quantize(Decimal(1).scaleb(-digits)) <= threshold * 100 and digits < 6:
        digits += 1  # never show "25%" for a flagged 25.01%
    shown = format_decimal(pct, format="#,##0." + "0" * digits if digits else "#,##0", locale=_locale(inv.locale))
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
    def number(q: Decimal) -> str:
        return format_decimal(q, locale=_locale(locale), decimal_quantization=False)

    def times(line, median) -> Decimal:
        return line.quantity / median if median else Decimal("Infinity")

    spikes.sort(key=lambda s: times(s[0], s[1]), reverse=True)
    line, median, count = spikes[0]
    ratio = times(line, median)
    digits = 1
    while ratio.is_finite() and ratio.quantize(Decimal(1).scaleb(-digits)) <= SPIKE_FACTOR and digits < 6:
        digits += 1  # never show "3.0x" for a flagged 3.001x
    how = f"{ratio:.{digits}f}\u00d7" if ratio.is_finite() else "far above"
    earlier = "1 earlier line" if count == 1 else f"{count} earlier lines"
    note = (f"{line.product}: {number(line.quantity)} on {line.period_start.isoformat()} is {how} "
            f"the usual {number(median)} (median of {earlier}).")
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


# ---------------------------------------------------------------- formatting


@lru_cache(maxsize=32)
def _locale(name: str) -> Locale:
    try:
        return Locale.parse((name or "en_US").replace("-", "_"))
    except (ValueError, TypeError):
        return Locale.parse("en_US")


def _money(locale: str, currency: str):
    loc = _locale(locale)
    return lambda amount: format_currency(amount, currency, locale=loc)


def _period(start: date, end: date) -> str:
    return start.isoformat() if start == end else f"{start.isoformat()} – {end.isoformat()}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _percent(fraction: Decimal) -> str:
    return f"{(fraction * 100).normalize():f}%"


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunFacts:
    """What the pipeline knows about the run."""

    run_id: str  # from new_run_id
    command: str  # "run" or "generate"
    as_of: date
    input_files: tuple[Path, ...]
    started: datetime
    duration_s: float
    nothing_to_bill: int = 0  # due cycles settled without an invoice


def new_run_id(now: datetime, command: str, out_dir: Path | None = None) -> str:
    """A sortable, filesystem-safe run ID from the start time (wall clock as given) and the
    command, e.g. 2026-11-02T081501-run. Given out_dir, a suffix (-2, -3, ...) keeps it unique
    when a run of the same command started in the same second."""
    command = re.sub(r"[^a-z]", "", command.lower()) or "run"
    base = f"{now:%Y-%m-%dT%H%M%S}-{command}"
    if out_dir is None:
        return base
    run_id, n = base, 1
    while (Path(out_dir) / RUNS / run_id).exists():
        n += 1
        run_id = f"{base}-{n}"
    return run_id


def review_path(out_dir: Path, run_id: str) -> Path:
    """out_dir/runs/<run id>/review.html. The run ID must look like one from new_run_id,
    so `review --run` cannot be pointed outside the runs folder."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"{run_id!r} is not a run ID; run IDs look like 2026-11-02T081501-run")
    return Path(out_dir) / RUNS / run_id / PAGE


@dataclass(frozen=True)
class PastRun:
    run_id: str
    page: Path
    summary: dict  # what run.json holds: as_of, command, invoices, flagged, set_aside, errors, totals


def past_runs(out_dir: Path) -> list[PastRun]:
    """The runs with a review page, oldest first."""
    found = []
    root = Path(out_dir) / RUNS
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        page = folder / PAGE
        if RUN_ID.fullmatch(folder.name) and page.is_file():
            try:
                summary = json.loads((folder / FACTS).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                summary = {}
            found.append(PastRun(folder.name, page, summary))
    return found


def find_review(out_dir: Path, run_id: str | None) -> Path:
    """The page of run_id, or of the latest run when run_id is None. Raises LookupError
    with a message for the user (listing the runs there are) when there is none."""
    runs = past_runs(out_dir)
    if run_id is None:
        if runs:
            return runs[-1].page
        raise LookupError(f"No run has been reviewed in {Path(out_dir) / RUNS} yet: "
                          "`billing-batch run` writes a review page for every run.")
    try:
        page = review_path(out_dir, run_id)
    except ValueError as exc:
        raise LookupError(str(exc)) from None
    if page.is_file():
        return page
    known = ", ".join(r.run_id for r in runs[-10:]) or "none yet"
    raise LookupError(f"There is no review for run {run_id} in {Path(out_dir) / RUNS}. Runs there: {known}.")


def open_page(page: Path) -> bool:
    """Show the page in the desktop's browser, if there is a desktop. On a server (no DISPLAY),
    do nothing rather than start a text browser in the terminal; the caller prints the path."""
    import sys
    import webbrowser

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(Path(page).resolve().as_uri())
    except webbrowser.Error:
        return False


# ---------------------------------------------------------------- the page


def write_review(
    out_dir: Path,
    facts: RunFacts,
    rows: Sequence[ReviewRow],
    issued: Sequence[Invoice],
    history: Sequence[Invoice],
    set_aside: Mapping[str, Sequence[Problem]],
    problems: Sequence[Problem],
    *,
    inputs: Inputs | None = None,
    differs: Mapping[str, str] | None = None,
    templates: Look | Path = Look(),
) -> Path:
    """Write out_dir/runs/<run id>/review.html (and run.json beside it) atomically and return
    the page's path. inputs (optional) gives the change threshold, the company name and the
    customers of set-aside contracts; differs (optional) lists earlier invoices that differ
    from what the current data would bill, shown in their own section. The page is always made
    from the default review template (it is our tool, not the customer's paper), with the look's logo."""
    page = review_path(out_dir, facts.run_id)
    look = Look.of(templates)
    view = review_view(facts, rows, issued, history, set_aside, problems, inputs=inputs, differs=differs or {},
                       logo=look.logo_data_uri())
    html = _template(look.default).render(view)
    page.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(page, html.encode("utf-8"))
    write_atomic(page.with_name(FACTS), json.dumps(view["summary"], indent=2).encode("utf-8"))
    return page


@lru_cache(maxsize=4)
def _template(templates: Path) -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["inline"] = lambda name: Markup(_inline_asset(templates / name))
    return env.get_template(TEMPLATE)


def _inline_asset(path: Path) -> str:
    # Our own CSS/JS: a literal "</" could close the element early, so refuse it rather than mangle it.
    text = path.read_text(encoding="utf-8")
    if "</" in text:
        raise ValueError(f"{path.name} must not contain '</' (it is inlined into the page)")
    return text


def review_view(
    facts: RunFacts,
    rows: Sequence[ReviewRow],
    issued: Sequence[Invoice],
    history: Sequence[Invoice],
    set_aside: Mapping[str, Sequence[Problem]],
    problems: Sequence[Problem],
    *,
    inputs: Inputs | None = None,
    differs: Mapping[str, str] | None = None,
    logo: str | None = None,
) -> dict:
    """Everything the template prints, as strings and lists (no formatting in the template).
    logo is the company's logo as a data: URI (the page loads nothing from anywhere)."""
    differs = differs or {}
    # The page is the finance team's: in the workbook's Locale, not in the first customer's language.
    locale = inputs.settings.locale if inputs else (rows[0].locale if rows else "en_US")
    threshold = inputs.settings.review_change_threshold if inputs else DEFAULT_THRESHOLD
    company = inputs.settings.company_name if inputs else (issued[0].seller.name if issued else "")

    totals: dict[str, list[Decimal]] = defaultdict(list)
    for r in rows:
        totals[r.currency].append(r.total)
    currency_totals = [
        {"currency": cur, "count": len(amounts), "total": _money(locale, cur)(sum(amounts, Decimal(0)))}
        for cur, amounts in sorted(totals.items())
    ]
    counts = {k.name: 0 for k in FLAG_KINDS}
    for r in rows:
        for f in r.flags:
            counts[f.name] += 1
    flagged = sum(1 for r in rows if r.flags)
    legend = [
        {"name": k.name, "label": k.label, "tone": k.tone, "count": counts[k.name],
         "explains": k.explains.format(threshold=_percent(threshold))}
        for k in FLAG_KINDS
    ]

    issued_numbers = {r.number for r in rows}
    contract_customer = {}
    if inputs:
        for cid, contract in inputs.contracts.items():
            customer = inputs.customers.get(contract.customer_id)
            contract_customer[cid] = f"{customer.name} ({customer.customer_id})" if customer else contract.customer_id
    aside = [
        {"contract": cid, "customer": contract_customer.get(cid, ""),
         "problems": [{"where": str(p.source), "what": p.one_line()} for p in ps]}
        for cid, ps in sorted(set_aside.items())
    ]
    listed = {p for ps in set_aside.values() for p in ps}
    other_problems = [{"where": str(p.source), "what": p.one_line()} for p in problems if p not in listed]
    known = {i.number: i for i in history}
    earlier_differs = [
        {"number": n, "href": _href(known[n].pdf_name) if n in known else "", "message": msg}
        for n, msg in sorted(differs.items()) if n not in issued_numbers
    ]

    table_rows = _table_rows(rows)
    series = monthly_totals(history, issued, facts.as_of)
    this_month = facts.as_of.replace(day=1)
    summary = {
        "run_id": facts.run_id,
        "command": facts.command,
        "as_of": facts.as_of.isoformat(),
        "started": facts.started.isoformat(timespec="seconds"),
        "duration_s": round(facts.duration_s, 3),
        "invoices": len(rows),
        "flagged": flagged,
        "flags": counts,
        "set_aside": len(set_aside),
        "errors": len(problems),
        "nothing_to_bill": facts.nothing_to_bill,
        "totals": {cur: str(sum(amounts, Decimal(0))) for cur, amounts in sorted(totals.items())},
    }
    return {
        "lang": _locale(locale).language,
        "title": f"Billing run review: {facts.as_of.isoformat()} ({facts.command})",
        "company": company,
        "logo": logo,
        "run": {
            "id": facts.run_id,
            "command": facts.command,
            "as_of": facts.as_of.isoformat(),
            "started": f"{facts.started:%Y-%m-%d %H:%M:%S}",
            "duration": _duration(facts.duration_s),
            "threshold": _percent(threshold),
        },
        "files": [_file_facts(p) for p in facts.input_files],
        "counts": {
            "invoices": f"{len(rows):,}",
            "flagged": f"{flagged:,}",
            "set_aside": f"{len(set_aside):,}",
            "errors": f"{len(problems):,}",
            "nothing_to_bill": f"{facts.nothing_to_bill:,}",
        },
        "currency_totals": currency_totals,
        "currencies": sorted(totals),
        "legend": legend,
        "charts": _charts(series, facts.as_of, locale),
        "chart_span": _span(facts.as_of, locale),
        "chart_key": {"earlier": any(e for points in series.values() for m, e, _ in points if m != this_month),
                      "month": any(e for points in series.values() for m, e, _ in points if m == this_month),
                      "run": any(t for points in series.values() for _, _, t in points)},
        "rows": table_rows,
        "row_count": len(table_rows),
        "set_aside": aside,
        "other_problems": other_problems,
        "earlier_differs": earlier_differs,
        "book_href": "../../billing_schedules.xlsx",
        "summary": summary,
    }


SORT_COLUMNS = ("number", "customer", "contract", "period", "total", "due", "flags")


def _natural(text: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


def _table_rows(rows: Sequence[ReviewRow]) -> list[dict]:
    """The table, with each row's rank under every sort column (ties broken by invoice
    number), so the page sorts by placing rows at their rank instead of comparing strings."""
    number = [_natural(r.number) for r in rows]
    keys = {
        "number": lambda i: number[i],
        "customer": lambda i: (rows[i].customer.casefold(), number[i]),
        "contract": lambda i: (_natural(rows[i].contract_id), rows[i].period_start, number[i]),
        "period": lambda i: (rows[i].period_start, rows[i].period_end, number[i]),
        "total": lambda i: (rows[i].total, number[i]),
        "due": lambda i: (rows[i].due_date, number[i]),
        "flags": lambda i: (len(rows[i].flags), [-_TONE_ORDER[f.kind.tone] for f in rows[i].flags], number[i]),
    }
    ranks = {}
    for column in SORT_COLUMNS:
        rank = [0] * len(rows)
        for position, i in enumerate(sorted(range(len(rows)), key=keys[column])):
            rank[i] = position
        ranks[column] = rank
    out = []
    for i, r in enumerate(rows):
        out.append({
            "number": r.number,
            "href": _href(r.pdf_name),
            "usage_href": _href(r.usage_name) if r.usage_name else "",
            "customer": r.customer,
            "customer_id": r.customer_id,
            "contract": r.contract_id,
            "period": _period(r.period_start, r.period_end),
            "total": _money(r.locale, r.currency)(r.total),
            "currency": r.currency,
            "negative": r.total <= 0,
            "due": r.due_date.isoformat(),
            "flags": [{"name": f.name, "label": f.kind.label, "tone": f.kind.tone, "note": _unbroken(f.note)}
                      for f in r.flags],
            "ranks": " ".join(str(ranks[c][i]) for c in SORT_COLUMNS),
        })
    return out


_TONE_ORDER = {"alert": 2, "warn": 1, "info": 0}
_HYPHENATED = re.compile(r"\S*\w-\w\S*")


def _unbroken(note: str) -> Markup:
    """The note, escaped, with hyphenated words (INV-000123, 2026-10-01) kept on one line."""
    return Markup(_HYPHENATED.sub(lambda m: f'<span class="nw">{m.group(0)}</span>', str(Markup.escape(note))))


def _span(as_of: date, locale: str) -> str:
    first = as_of.replace(day=1) - relativedelta(months=CHART_MONTHS - 1)
    return f"{format_date(first, 'LLL y', locale=_locale(locale))} – {format_date(as_of, 'LLL y', locale=_locale(locale))}"


def _href(pdf_name: str) -> str:
    """From runs/<run id>/review.html to the PDF in the output folder."""
    return "../../" + quote(pdf_name)


def _file_facts(path: Path) -> dict:
    path = Path(path)
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        stat = path.stat()
        return {"name": path.name, "path": str(path), "sha256": digest.hexdigest(), "size": f"{stat.st_size:,} bytes",
                "modified": f"{datetime.fromtimestamp(stat.st_mtime):%Y-%m-%d %H:%M}"}
    except OSError as exc:
        return {"name": path.name, "path": str(path), "sha256": f"unreadable: {exc.strerror}", "size": "", "modified": ""}


# ---------------------------------------------------------------- the chart


def monthly_totals(history: Iterable[Invoice], issued: Iterable[Invoice], as_of: date,
                   months: int = CHART_MONTHS) -> dict[str, list[tuple[date, Decimal, Decimal]]]:
    """currency -> for each of the last `months` months up to as_of's: (month, billed by
    earlier runs, billed by this run), by Invoice Date, Replaced invoices left out. Pure."""
    issued = list(issued)
    first = as_of.replace(day=1) - relativedelta(months=months - 1)
    month_list = [first + relativedelta(months=n) for n in range(months)]
    this_run = {i.number for i in issued}
    sums: dict[str, dict[date, list[Decimal]]] = defaultdict(lambda: {m: [Decimal(0), Decimal(0)] for m in month_list})
    for inv in _live(_known(history, issued), issued).values():
        month = inv.invoice_date.replace(day=1)
        if first <= month <= month_list[-1]:
            sums[inv.draft.currency][month][1 if inv.number in this_run else 0] += inv.draft.total
    return {cur: [(m, *by_month[m]) for m in month_list] for cur, by_month in sorted(sums.items())}


def _charts(series: Mapping[str, list[tuple[date, Decimal, Decimal]]], as_of: date, locale: str) -> list[dict]:
    return [{"currency": cur, "svg": Markup(_chart_svg(n, cur, points, as_of, locale)),
             "rows": [{"month": format_date(m, "LLL y", locale=_locale(locale)), "earlier": _money(locale, cur)(e), "this_run": _money(locale, cur)(t),
                       "highlight": m == as_of.replace(day=1)} for m, e, t in points]}
            for n, (cur, points) in enumerate(series.items())]


EARLIER_COLOUR, RUN_COLOUR, MONTH_COLOUR = "#9fb3c8", "#1d4ed8", "#60a5fa"


def _chart_svg(n: int, currency: str, points: list[tuple[date, Decimal, Decimal]], as_of: date, locale: str) -> str:
    """One currency's bars as inline SVG: the as-of month's bar stands out, and the part of it
    this run billed is drawn darker. Text stays text (svg.fonttype none) so the page's font is used."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    loc = _locale(locale)
    money = _money(locale, currency)
    this_month = as_of.replace(day=1)

    def month_name(m: date, pattern: str = "LLL") -> str:
        return format_date(m, pattern, locale=loc)

    labels = [month_name(m) for m, _, _ in points]  # one line: the years are in the panel's heading
    earlier = [float(e) for _, e, _ in points]
    current = [float(t) for _, _, t in points]
    highlight = [m == this_month for m, _, _ in points]

    with matplotlib.rc_context({
        "svg.fonttype": "none", "svg.hashsalt": f"review-{n}", "font.family": _chart_fonts(),
        "font.size": 9, "axes.edgecolor": "#c4ccd6", "axes.labelcolor": "#334155",
        "xtick.color": "#475569", "ytick.color": "#475569",
    }):
        fig = Figure(figsize=(4.6, 2.2), layout="constrained")
        ax = fig.subplots()
        xs = range(len(points))
        colours = [MONTH_COLOUR if h else EARLIER_COLOUR for h in highlight]
        below = ax.bar(xs, earlier, color=colours, width=0.7, zorder=2)
        above = ax.bar(xs, current, bottom=earlier, color=RUN_COLOUR, width=0.7, zorder=2)
        titles = {}
        for i, (m, e, t) in enumerate(points):
            titles[f"bar-{i}"] = titles[f"run-{i}"] = (
                f"{month_name(m, 'LLLL y')}: {money(e + t)}" + (f" ({money(t)} in this run)" if t else ""))
            below[i].set_gid(f"bar-{i}")
            above[i].set_gid(f"run-{i}")
        ax.set_xticks(list(xs), labels)
        ax.tick_params(axis="x", length=0)
        ax.tick_params(axis="y", length=0)
        for i, label in enumerate(ax.get_xticklabels()):
            if highlight[i]:
                label.set_fontweight("bold")
                label.set_color("#1e3a8a")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=3))
        ax.yaxis.set_major_formatter(FuncFormatter(
            lambda v, _: format_compact_decimal(v, locale=loc, fraction_digits=1) if v else "0"))
        ax.grid(axis="y", color="#e2e8f0", linewidth=0.8, zorder=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.set_ylim(bottom=0, top=max(max(e + t for e, t in zip(earlier, current)), 1) * 1.1)
        ax.set_title(currency, loc="left", fontsize=10, fontweight="bold", color="#0f172a")
        month, before, now = points[highlight.index(True)]
        ax.set_title(f"{month_name(month, 'LLL y')}: {money(before + now)}", loc="right", fontsize=9, fontweight="bold",
                     color="#1e3a8a")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline_svg(buf.getvalue(), f"c{n}-", titles)


# DejaVu Sans has no Chinese, Japanese or Korean: matplotlib (3.6+) takes each glyph it lacks from the
# next family, Noto Sans CJK (fonts-noto-cjk, installed by setup.sh).
CHART_FONTS = ("DejaVu Sans", "Noto Sans CJK JP")


@lru_cache(maxsize=1)
def _chart_fonts() -> list[str]:
    """The CHART_FONTS installed, after making sure matplotlib knows them: its font list is cached on
    disk the first time it runs, so fonts installed later are missing from it until added."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    known = {font.name for font in manager.ttflist}
    if not set(CHART_FONTS) <= known:
        added = [manager.addfont(path) for path in font_manager.findSystemFonts() if "NotoSansCJK" in Path(path).name]
        known = {font.name for font in manager.ttflist}
        if added:  # keep them in matplotlib's cache: the next process need not look again
            import matplotlib

            cache = Path(matplotlib.get_cachedir()) / f"fontlist-v{font_manager.FontManager.__version__}.json"
            with contextlib.suppress(OSError):
                font_manager.json_dump(manager, cache)
    return [family for family in CHART_FONTS if family in known] + ["sans-serif"]


def _inline_svg(svg: str, prefix: str, titles: Mapping[str, str]) -> str:
    """Make matplotlib's SVG document fit inside HTML: no prolog, no namespace URLs (the HTML
    parser supplies them), ids unique on the page, a tooltip on each bar, and scalable."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = re.sub(r'\s(width|height)="[\d.]+pt"', "", svg, count=2)
    svg = svg.replace("<svg", '<svg role="img" preserveAspectRatio="xMidYMid meet"', 1)
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)

    def titled(m: re.Match) -> str:
        title = titles.get(m.group(1))
        tag = m.group(0)
        return tag + f"<title>{Markup.escape(title)}</title>" if title else tag

    svg = re.sub(rf'<g id="{prefix}((?:bar|run)-\d+)">', titled, svg)
    if re.search(r"https?:", svg):
        raise ValueError("the chart SVG refers to a URL")
    return svg


# ---------------------------------------------------------------- files


