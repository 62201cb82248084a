"""The run review page: output/runs/<run id>/review.html, the whole run at a glance, pointing at
the invoices that deserve a look.

A self-contained page (CSS, JavaScript and the SVG chart inlined; no network, no server) whose links
to the PDFs are relative, so the output folder can be moved or zipped whole. The flags come from
review/flags.py, the chart from review/chart.py, the run folders from review/runs.py; see docs/review.md.
"""
from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from billing_batch.review import format as fmt
from billing_batch.documents.licence_reconciliation import file_name as licence_file_name
from billing_batch.errors import Problem
from billing_batch.files import write_atomic
from billing_batch.documents.look import Look
from billing_batch.model import Inputs, Invoice
from billing_batch.engine.revisions import Revision
from billing_batch.inputs.partner_center import Mismatch
from billing_batch.review.chart import chart_span, charts, monthly_totals
from billing_batch.review.flags import DEFAULT_THRESHOLD, FLAG_KINDS, ReviewRow
from billing_batch.review.licence_checks import LicenceFlag, flag_counts
from billing_batch.review.runs import FACTS, RunFacts, review_path

TEMPLATE = "review.html"


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
    usage_checks: tuple[Sequence[Revision], Sequence[Mismatch]] = ((), ()),
    licence_checks: Sequence[LicenceFlag] = (),
) -> Path:
    """Write out_dir/runs/<run id>/review.html (and run.json beside it) atomically and return
    the page's path. inputs (optional) gives the change threshold, the company name and the
    customers of set-aside contracts; differs (optional) lists earlier invoices that differ
    from what the current data would bill, shown in their own section; usage_checks the Partner Center
    rows revised after billing and the tenant months that do not reconcile (partner_center); licence_checks the
    licence flags raised (review/licence_checks.py), each linking its CSV. The page is always made
    from the default review template (it is our tool, not the customer's paper), with the look's logo."""
    page = review_path(out_dir, facts.run_id)
    look = Look.of(templates)
    view = review_view(facts, rows, issued, history, set_aside, problems, inputs=inputs, differs=differs or {},
                       logo=look.logo_data_uri(), usage_checks=usage_checks, licence_checks=licence_checks)
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
    usage_checks: tuple[Sequence[Revision], Sequence[Mismatch]] = ((), ()),
    licence_checks: Sequence[LicenceFlag] = (),
) -> dict:
    """Everything the template prints, as strings and lists (no formatting in the template).
    logo is the company's logo as a data: URI (the page loads nothing from anywhere)."""
    differs = differs or {}
    # The page is the finance team's: in the workbook's Locale, not in the first customer's language.
    locale = inputs.settings.locale if inputs else (rows[0].locale if rows else "en_US")
    threshold = inputs.settings.review_change_threshold if inputs else DEFAULT_THRESHOLD
    company = inputs.settings.company_name if inputs else (issued[0].seller.name if issued else "")

    totals: dict[str, list[Decimal]] = defaultdict(list)  # the invoices'
    credited: dict[str, list[Decimal]] = defaultdict(list)  # the credit notes', counted apart
    for r in rows:
        (credited if r.is_credit_note else totals)[r.currency].append(r.total)
    currency_totals, credit_totals = (
        [{"currency": cur, "count": len(amounts), "total": fmt.money(locale, cur)(sum(amounts, Decimal(0)))}
         for cur, amounts in sorted(by_currency.items())]
        for by_currency in (totals, credited))
    invoice_count = sum(len(amounts) for amounts in totals.values())
    credit_count = len(rows) - invoice_count
    counts = {k.name: 0 for k in FLAG_KINDS}
    for r in rows:
        for f in r.flags:
            counts[f.name] += 1
    flagged = sum(1 for r in rows if r.flags)
    legend = [
        {"name": k.name, "label": k.label, "tone": k.tone, "count": counts[k.name],
         "explains": k.explains.format(threshold=fmt.percent(threshold, locale))}
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
        {"number": n, "href": _href(known[n].pdf_name) if n in known else "", "message": fmt.amounts_in(msg, locale)}
        for n, msg in sorted(differs.items()) if n not in issued_numbers
    ]

    table_rows = _table_rows(rows, locale)
    series = monthly_totals(history, issued, facts.as_of)
    this_month = facts.as_of.replace(day=1)
    summary = {
        "run_id": facts.run_id,
        "command": facts.command,
        "as_of": facts.as_of.isoformat(),
        "started": facts.started.isoformat(timespec="seconds"),
        "duration_s": round(facts.duration_s, 3),
        "invoices": invoice_count,
        "credit_notes": credit_count,
        "flagged": flagged,
        "flags": counts,
        "set_aside": len(set_aside),
        "errors": len(problems),
        "usage_revised": len(usage_checks[0]),
        "usage_unreconciled": len(usage_checks[1]),
        "licence_flags": flag_counts(licence_checks),
        "nothing_to_bill": facts.nothing_to_bill,
        "totals": {cur: str(sum(amounts, Decimal(0))) for cur, amounts in sorted(totals.items())},
        "credited": {cur: str(sum(amounts, Decimal(0))) for cur, amounts in sorted(credited.items())},
    }
    count = fmt.number
    return {
        "lang": "en",  # the page's words; its numbers are in the workbook's Locale
        "locale": str(fmt.babel_locale(locale)).replace("_", "-"),
        "title": f"Billing run review: {facts.as_of.isoformat()} ({facts.command})",
        "company": company,
        "logo": logo,
        "run": {
            "id": facts.run_id,
            "command": facts.command,
            "as_of": facts.as_of.isoformat(),
            "started": f"{facts.started:%Y-%m-%d %H:%M:%S}",
            "duration": fmt.duration(facts.duration_s),
            "threshold": fmt.percent(threshold, locale),
        },
        "files": [_file_facts(p, locale) for p in facts.input_files],
        "counts": {
            "invoices": count(locale, invoice_count),
            "credit_notes": count(locale, credit_count),
            "flagged": count(locale, flagged),
            "set_aside": count(locale, len(set_aside)),
            "errors": count(locale, len(problems)),
            "nothing_to_bill": count(locale, facts.nothing_to_bill),
            "rows": count(locale, len(table_rows)),
        },
        "currency_totals": currency_totals,
        "credit_totals": credit_totals,
        "currencies": sorted({r.currency for r in rows}),
        "legend": legend,
        "charts": charts(series, facts.as_of, locale),
        "chart_span": chart_span(facts.as_of, locale),
        "chart_key": {"earlier": any(e for points in series.values() for m, e, _ in points if m != this_month),
                      "month": any(e for points in series.values() for m, e, _ in points if m == this_month),
                      "run": any(t for points in series.values() for _, _, t in points)},
        "rows": table_rows,
        "row_count": len(table_rows),
        "widths": _widths(table_rows),
        "set_aside": aside,
        "other_problems": other_problems,
        "earlier_differs": earlier_differs,
        **_usage_checks(usage_checks, inputs, locale),
        "licence_flags": _licence_checks(licence_checks, locale),
        "book_href": "../../billing_schedules.xlsx",
        "summary": summary,
    }


def _usage_checks(checks: tuple[Sequence[Revision], Sequence[Mismatch]], inputs: Inputs | None,
                  locale: str) -> dict:
    """The Partner Center section: rows revised after billing, tenant months that do not reconcile."""
    revisions, mismatches = checks

    def money(contract_id: str):
        contract = inputs.contracts.get(contract_id) if inputs else None
        return fmt.money(locale, contract.currency if contract else "USD")

    def number(q: Decimal) -> str:
        return fmt.number(locale, q.normalize())

    return {
        "usage_revised": [
            {"where": str(r.source), "contract": r.contract_id, "usage_id": r.usage_id, "invoice": r.invoice,
             "billed": f"{number(r.billed_quantity)} × {money(r.contract_id)(r.billed_unit_price)}",
             "now": f"{number(r.quantity)} × {money(r.contract_id)(r.unit_price)}",
             "difference": money(r.contract_id)(r.difference)}
            for r in revisions],
        "usage_unreconciled": [
            {"contract": m.contract_id, "tenant": m.tenant, "month": m.month, "rows": fmt.number(locale, m.rows),
             "partner_center": money(m.contract_id)(m.billed_by_partner_center),
             "imported": money(m.contract_id)(m.imported), "difference": money(m.contract_id)(m.difference),
             "allowed": money(m.contract_id)(m.tolerance), "href": _href(m.file_name)}
            for m in mismatches],
    }


SHOW_FINDINGS = 20  # per licence flag; its CSV has every row


def _licence_checks(flags: Sequence[LicenceFlag], locale: str) -> list[dict]:
    """The licence section: each flag raised with what it found (the first SHOW_FINDINGS) and its CSV."""
    return [
        {"name": f.name, "label": f.kind.label, "tone": f.kind.tone, "explains": f.kind.explains,
         "count": fmt.number(locale, len(f.findings)), "rows": fmt.number(locale, len(f.rows)),
         "href": _href(licence_file_name(f.name)),
         "findings": [{"contract": x.contract_id, "tenant": x.tenant, "subscription": x.subscription_id,
                       "note": _unbroken(x.note)} for x in f.findings[:SHOW_FINDINGS]],
         "more": fmt.number(locale, len(f.findings) - SHOW_FINDINGS) if len(f.findings) > SHOW_FINDINGS else ""}
        for f in flags]


SORT_COLUMNS = ("number", "customer", "contract", "period", "total", "due", "flags")


def _natural(text: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
                 for part in re.split(r"(\d+)", text) if part)


def _table_rows(rows: Sequence[ReviewRow], locale: str) -> list[dict]:
    """The table, with each row's rank under every sort column (ties broken by invoice
    number), so the page sorts by placing rows at their rank instead of comparing strings.
    Every total in the page's one locale."""
    number = [_natural(r.number) for r in rows]
    keys = {
        "number": lambda i: number[i],
        "customer": lambda i: (rows[i].customer.casefold(), number[i]),
        "contract": lambda i: (_natural(rows[i].contract_id), rows[i].period_start, number[i]),
        "period": lambda i: (rows[i].period_start, rows[i].period_end, number[i]),
        "total": lambda i: (rows[i].signed_total, number[i]),
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
            "credits": r.credits or "",
            "credits_href": _href(r.credits_pdf) if r.credits_pdf else "",
            "customer": r.customer,
            "customer_id": r.customer_id,
            "contract": r.contract_id,
            "period": _unbroken(fmt.period(r.period_start, r.period_end)),  # breaks between the dates only
            "total": fmt.money(locale, r.currency)(r.signed_total),
            "currency": r.currency,
            "negative": r.signed_total <= 0,
            "due": r.due_date.isoformat(),
            "flags": [{"name": f.name, "label": f.kind.label, "tone": f.kind.tone, "note": _unbroken(f.note)}
                      for f in r.flags],
            "ranks": " ".join(str(ranks[c][i]) for c in SORT_COLUMNS),
        })
    return out


def _widths(table_rows: Sequence[dict]) -> dict[str, str]:
    """The widths of the Invoice and Total columns, from their longest text: each row is a grid of
    its own (so that only the rows in view are laid out), which cannot size a column to its content,
    and an invoice number or a total is never cut. The rest of a cell (usage, credits ...) wraps below."""
    def widest(texts, at_least: float) -> str:
        return f"calc({max([at_least, *map(fmt.width_em, texts)]):.1f}em + 21px)"

    return {"number": widest((t for r in table_rows for t in (r["number"], r["credits"])), 6.7),
            "total": widest((r["total"] for r in table_rows), 6.0)}


_TONE_ORDER = {"alert": 2, "warn": 1, "info": 0}
_HYPHENATED = re.compile(r"\S*\w-\w\S*")


def _unbroken(note: str) -> Markup:
    """The note, escaped, with hyphenated words (INV-000123, 2026-10-01) kept on one line."""
    return Markup(_HYPHENATED.sub(lambda m: f'<span class="nw">{m.group(0)}</span>', str(Markup.escape(note))))


def _href(pdf_name: str) -> str:
    """From runs/<run id>/review.html to the PDF in the output folder."""
    return "../../" + quote(pdf_name)


def _file_facts(path: Path, locale: str) -> dict:
    path = Path(path)
    try:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        stat = path.stat()
        return {"name": path.name, "path": str(path), "sha256": digest.hexdigest(), "size": f"{fmt.number(locale, stat.st_size)} bytes",
                "modified": f"{datetime.fromtimestamp(stat.st_mtime):%Y-%m-%d %H:%M}"}
    except OSError as exc:
        return {"name": path.name, "path": str(path), "sha256": f"unreadable: {exc.strerror}", "size": "", "modified": ""}
