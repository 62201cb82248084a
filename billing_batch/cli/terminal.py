"""What the terminal shows, shared by the commands: the one console, problems, previews and the summary
of a run. Every module prints through `terminal.console`, looked up when it prints (tests replace it)."""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from collections.abc import Mapping
from decimal import Decimal

from babel.numbers import format_currency, format_decimal
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from billing_batch.cli.exits import EXIT_UNUSABLE
from billing_batch.engine.credit_notes import below_zero
from billing_batch.errors import Problem
from billing_batch.i18n import parse
from billing_batch.model import DocType, Draft, Invoice, Line, LineKind
from billing_batch.workspace import Options, Report

SHOW_DOCUMENTS = 20  # the summary's table lists this many documents made, then says how many more

# Logs and pipes get wide tables; a terminal gets its own width.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


class render_progress:
    """Rendering progress: a bar with an ETA at a terminal, a line every tenth otherwise.
    The bar starts with the first PDF, so it never covers a question asked before. It counts PDFs:
    a run also redraws earlier documents' (a replaced invoice marked VOID, a PDF missing); `rendered`
    says how many, for the summary."""

    def __enter__(self):
        self.bar = None
        self.rendered = 0
        return self.advance

    def advance(self, done: int, total: int) -> None:
        self.rendered = done
        if not console.is_terminal:
            if total >= 100 and done % max(1, total // 10) == 0 or done == total:
                console.print(f"Rendered {done} of {total} PDFs")
            return
        if self.bar is None:
            self.bar = Progress(TextColumn("Rendering PDFs"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("render", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def unusable(report: Report) -> bool:
    show_problems(report.problems)
    if report.exit_code != EXIT_UNUSABLE:
        return False
    console.print("Nothing was billed and no file was written. Correct the workbook and run again.")
    return True


def show_problems(problems: list[Problem]) -> None:
    if not problems:
        return
    console.print(Text(f"{len(problems)} problem(s) in the input:", style="bold red"))
    for p in problems:
        console.print(Text(str(p)), soft_wrap=True)
    console.print()


# The preview's line groups in the order shown: recurring lines split in two, then every other kind as it
# stands in LineKind, so a kind added there can never be missing here.
LINE_GROUPS = ("Full cycle", "Prorated", *(kind.value for kind in LineKind if kind is not LineKind.RECURRING))


def line_group(line: Line) -> str:
    if line.kind is LineKind.RECURRING:
        return "Prorated" if line.prorated else "Full cycle"
    return line.kind.value


def draft_json(d: Draft) -> dict:
    groups: dict[str, list] = defaultdict(list)
    for line in d.lines:
        groups[line_group(line)].append({
            "product": line.product, "description": line.description,
            "period_start": line.period_start.isoformat(), "period_end": line.period_end.isoformat(),
            "quantity": str(line.quantity), "unit_price": str(line.unit_price), "amount": str(line.amount),
        })
    return {
        "type": (DocType.CREDIT_NOTE if below_zero(d) else DocType.INVOICE).value,  # below zero: issued as a credit note
        "contract_id": d.contract_id, "customer_id": d.customer_id, "cycle_start": d.cycle_start.isoformat(),
        "cycle_end": d.cycle_end.isoformat(), "scheduled": d.scheduled.isoformat(), "currency": d.currency,
        "groups": groups, "subtotal": str(d.subtotal), "discount": str(d.discount), "tax": str(d.tax),
        "total": str(d.total),
    }


def money(amount: Decimal, currency: str, locale: str, exact: bool = False) -> str:
    """An amount with its currency as the locale writes it (exact: every digit typed, for a unit price
    such as 0.0125)."""
    return format_currency(amount, currency, locale=parse(locale), decimal_quantization=not exact)


def show_preview(report: Report, drafts: list[Draft], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"invoices": [draft_json(d) for d in drafts if not d.is_empty],
                          "problems": [p.as_dict() for p in report.problems]}, indent=2))
        return report.exit_code
    if unusable(report):
        return EXIT_UNUSABLE
    show_drafts([d for d in drafts if not d.is_empty], report.locale)
    if not drafts:
        console.print("Nothing would be billed.")
    return report.exit_code


def show_drafts(drafts: list[Draft], locale: str) -> None:
    for d in drafts:
        table = Table(title=f"{d.contract_id} · {d.customer_name} · cycle {d.cycle_start} to {d.cycle_end} · "
                            f"scheduled {d.scheduled} · {d.currency}", title_justify="left")
        for title, justify in (("Group", "left"), ("Product", "left"), ("Description", "left"),
                               ("Period", "left"), ("Quantity", "right"), ("Unit price", "right"),
                               ("Amount", "right")):
            table.add_column(title, justify=justify)
        for line in sorted(d.lines, key=lambda line: LINE_GROUPS.index(line_group(line))):
            period = str(line.period_start) if line.period_start == line.period_end else \
                f"{line.period_start} to {line.period_end}"
            table.add_row(line_group(line), Text(line.product), Text(line.description), period,
                          format_decimal(line.quantity, locale=parse(locale), decimal_quantization=False),
                          money(line.unit_price, d.currency, locale, exact=True),
                          money(line.amount, d.currency, locale))
        table.add_section()
        for label, amount in (("Subtotal", d.subtotal), ("Discount", -d.discount), ("Tax", d.tax),
                              ("Total", d.total)):
            table.add_row("", "", "", "", "", label, money(amount, d.currency, locale))
        console.print(table)


def totals_by_currency(issued: list) -> dict[str, dict[str, list[Decimal]]]:
    """currency -> "invoices" or "credit_notes" -> their totals (a credit note's is what it credits)."""
    totals: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: {"invoices": [], "credit_notes": []})
    for invoice in issued:
        totals[invoice.draft.currency]["credit_notes" if invoice.is_credit_note else "invoices"].append(
            invoice.draft.total)
    return totals


def counted(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def made(documents: list[Invoice]) -> str:
    """"2 invoices and 1 credit note": what a command made."""
    notes = sum(i.is_credit_note for i in documents)
    kinds = [counted(len(documents) - notes, "invoice", "invoices") if len(documents) > notes else "",
             counted(notes, "credit note", "credit notes") if notes else ""]
    return " and ".join(kind for kind in kinds if kind)


def documents_table(report: Report, options: Options) -> Table:
    """The documents made: number, customer, type and total as printed (a credit note's below zero),
    the first SHOW_DOCUMENTS of them; the schedule workbook lists them all."""
    table = Table(title=f"Made {made(report.issued)} as of {options.as_of.isoformat()}", title_justify="left",
                  caption_justify="left")
    for title, justify in (("Number", "left"), ("Customer", "left"), ("Type", "left"), ("Total", "right")):
        table.add_column(title, justify=justify)
    for i in report.issued[:SHOW_DOCUMENTS]:
        table.add_row(i.number, Text(i.draft.customer_name), "Credit note" if i.is_credit_note else "Invoice",
                      money(-i.draft.total if i.is_credit_note else i.draft.total, i.draft.currency, report.locale))
    if len(report.issued) > SHOW_DOCUMENTS:
        book = report.book.name if report.book else "the schedule workbook"
        table.caption = f"and {len(report.issued) - SHOW_DOCUMENTS:,} more; every document is in {book}"
    return table


def totals_table(report: Report) -> Table:
    """Per currency, the invoices and credit notes made and their totals: a column only for a kind made."""
    totals = totals_by_currency(report.issued)
    kinds = [(kind, label, total) for kind, label, total in (("invoices", "Invoices", "Total billed"),
                                                             ("credit_notes", "Credit notes", "Total credited"))
             if any(t[kind] for t in totals.values())]
    table = Table(title="Totals per currency", title_justify="left")
    table.add_column("Currency")
    for _, label, total in kinds:
        table.add_column(label, justify="right")
        table.add_column(total, justify="right")
    for currency in sorted(totals):
        row = [currency]
        for kind, _, _ in kinds:
            amounts = totals[currency][kind]
            row += [f"{len(amounts):,}", money(sum(amounts), currency, report.locale)] if amounts else ["", ""]
        table.add_row(*row)
    return table


def show_summary(report: Report, options: Options, rendered: int = 0, redrew: Mapping[str, str] | None = None,
                 nothing: str = "No new invoice: every due cycle is billed already.") -> None:
    """What a billing command made, then what a person should look at, then where the files are.
    rendered: the PDFs drawn; those beyond the documents made are earlier documents' PDFs, drawn again
    (redrew: number -> why, for the earlier documents whose status this command changed)."""
    if report.new_ledger:
        console.print(Text(f"Started a new ledger: {options.ledger_path}. It records what is billed: keep it, "
                           "and its backups in the same folder."))
    if report.issued:
        console.print(documents_table(report, options))
        if len(report.issued) > 1:
            console.print(totals_table(report))
    else:
        console.print(nothing)
    redrawn, redrew = rendered - len(report.issued), redrew or {}
    if redrawn > 0:
        why = ("; ".join(f"{number}, {what}" for number, what in redrew.items()) if len(redrew) == redrawn else
               "their status changed: replaced or credited; or they were missing")
        console.print(Text(f"Made {counted(len(report.issued), 'document', 'documents')}, redrew "
                           f"{counted(redrawn, 'earlier PDF', 'earlier PDFs')} ({why})."))
    for number in report.credited:
        console.print(Text(f"{number} is credited in full: its status is Credited."))
    if report.nothing_to_bill:
        console.print(f"{report.nothing_to_bill} due cycle(s) had nothing to bill (marked 'Nothing to bill').")
    if report.usage_billed_before:
        console.print(f"{report.usage_billed_before} usage row(s) dated on or before their contract's Billed Through "
                      "were not billed: billed before billing_batch (the schedule workbook counts them by cycle).")
    if report.set_aside:
        aside = Table(title="Contracts set aside (not billed)", title_justify="left")
        aside.add_column("Contract")
        aside.add_column("Reason")
        for contract_id, problems in sorted(report.set_aside.items()):
            reason = problems[0].one_line() + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
            aside.add_row(Text(contract_id), Text(reason))
        console.print(aside)
    for message in report.differs.values():
        console.print(Text(message, style="yellow"))
    show_usage_checks(report)
    if report.issued or redrawn > 0:
        console.print(Text(f"PDFs: {options.output / 'invoices'}"))
    console.print(Text(f"Schedules: {report.book}"))
    if report.review:
        console.print(Text(f"Review: {report.review}"))


def show_usage_checks(report: Report) -> None:
    """Partner Center rows revised after billing, and tenant months that do not reconcile: for a look,
    not problems in the input (docs/decisions.md)."""
    for r in report.revised:
        console.print(Text(
            f"Revised after billing: {r.source}, usage {r.usage_id} of contract {r.contract_id}, billed on "
            f"{r.invoice} as {r.billed_quantity} at {r.billed_unit_price}, is now {r.quantity} at {r.unit_price} "
            f"(difference {r.difference:+f}).", style="yellow"))
    for m in report.mismatches:
        console.print(Text(
            f"Does not reconcile: tenant {m.tenant} (contract {m.contract_id}), {m.month}: imported cost "
            f"{m.imported:f} against Partner Center's BillingPreTaxTotal {m.billed_by_partner_center:f}, "
            f"a difference of {m.difference:+f} over the {m.tolerance:f} allowed ({m.rows:,} rows).",
            style="yellow"))
    show_licence_checks(report)


def show_licence_checks(report: Report) -> None:
    """The licence flags raised (review/licence_checks.py), counted on one line: each is listed on the review
    page with a CSV of its rows. The Azure plan rows skipped alone are news, not a warning."""
    flags = report.licence_checks
    if not flags:
        return
    counts = ", ".join(counted(len(f.findings), f.kind.one, f.kind.many) for f in flags)
    warn = any(f.kind.tone != "info" for f in flags)
    console.print(Text(f"Licences to look at: {counts}: a run's review page lists them, each with a CSV of its rows.",
                       style="yellow" if warn else ""), soft_wrap=True)
