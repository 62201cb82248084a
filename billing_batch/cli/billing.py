"""The billing commands: run, check, preview, generate (with its questions), credit and schedules."""
from __future__ import annotations

import json
import sys
from datetime import date

from rich.prompt import Confirm
from rich.table import Table
from rich.text import Text

from billing_batch import pipeline
from billing_batch.cli import terminal
from billing_batch.cli.exits import EXIT_OK, EXIT_REFUSED, EXIT_SET_ASIDE, EXIT_UNUSABLE
from billing_batch.cli.post import show_post
from billing_batch.cli.terminal import (
    money,
    render_progress,
    show_drafts,
    show_preview,
    show_problems,
    show_summary,
    show_usage_checks,
    totals_by_currency,
    unusable,
)
from billing_batch.engine.plan import Proposal
from billing_batch.engine.revisions import Revision
from billing_batch.inputs import partner_center
from billing_batch.workspace import Options, Report


def run_command(args, options: Options) -> int:
    if args.preview:
        report, drafts = pipeline.preview_run(options)
        return show_preview(report, drafts, args.json)
    progress = render_progress()
    with progress as on_rendered:
        report = pipeline.run(options, on_rendered)
    if args.timings_json:
        args.timings_json.write_text(json.dumps({
            "timings": report.timings, "cpu_timings": report.cpu_timings,
            "issued": len(report.issued),
            "credit_notes": sum(i.is_credit_note for i in report.issued),
            "totals": {currency: {kind: str(sum(amounts)) for kind, amounts in t.items()}
                       for currency, t in totals_by_currency(report.issued).items()}}))
    if unusable(report):
        return EXIT_UNUSABLE
    show_summary(report, options, progress.rendered)
    return max(report.exit_code, show_post(report.post, report.post_earlier))


def check_command(args, options: Options) -> int:
    report = pipeline.check_input(options)
    if args.json:
        print(json.dumps({"problems": [p.as_dict() for p in report.problems],
                          "revised": [revision_dict(r) for r in report.revised],
                          "reconciliation": [mismatch_dict(m) for m in report.mismatches],
                          "licence_flags": [{"flag": f.name, "contract_id": x.contract_id, "tenant": x.tenant,
                                             "subscription_id": x.subscription_id, "note": x.note}
                                            for f in report.licence_checks for x in f.findings],
                          "exit_code": report.exit_code}, indent=2))
        return report.exit_code
    if report.problems:
        show_problems(report.problems)
    else:
        terminal.console.print("No problems found: the input is ready to bill.")
    show_usage_checks(report)
    return report.exit_code


def revision_dict(r: Revision) -> dict:
    return {"contract_id": r.contract_id, "usage_id": r.usage_id, "invoice": r.invoice, "location": str(r.source),
            "billed_quantity": str(r.billed_quantity), "billed_unit_price": str(r.billed_unit_price),
            "quantity": str(r.quantity), "unit_price": str(r.unit_price), "difference": str(r.difference)}


def mismatch_dict(m: partner_center.Mismatch) -> dict:
    return {"contract_id": m.contract_id, "tenant": m.tenant, "month": m.month, "rows": m.rows,
            "billing_pre_tax_total": str(m.billed_by_partner_center), "imported": str(m.imported),
            "difference": str(m.difference), "tolerance": str(m.tolerance), "rows_file": m.file_name}


def preview_command(args, options: Options) -> int:
    if not args.contract:
        terminal.console.print("Name a contract with --contract ID (or use `run --preview` for the whole batch).")
        return EXIT_UNUSABLE
    report, proposals = pipeline.propose(options, args.contract, args.cycle)
    for p in proposals:
        if p.problem and not args.json:
            terminal.console.print(Text(p.problem))
    drafts = [p.draft for p in proposals if p.draft]
    code = show_preview(report, drafts, args.json)
    return EXIT_REFUSED if code == EXIT_OK and any(p.problem for p in proposals) else code


def generate_command(args, options: Options) -> int:
    contract_ids = list(args.contract)
    if args.contracts_file:
        contract_ids += [line.strip() for line in args.contracts_file.read_text().splitlines() if line.strip()]
    if not contract_ids:
        terminal.console.print("Name the contracts to bill with --contract ID or --contracts-file FILE.")
        return EXIT_UNUSABLE
    results: dict[str, str] = {}
    replacing: dict[str, str] = {}  # contract -> the invoice its new one replaces
    refused = False
    report = Report()  # filled by generate; its Locale, read first, formats the preview

    def approve(proposals: list[Proposal]) -> list[Proposal]:
        nonlocal refused
        interactive = sys.stdin.isatty()
        if not args.no_preview:
            show_drafts([p.draft for p in proposals if p.draft and not p.draft.is_empty], report.locale)
        chosen = []
        for p in proposals:
            verdict = judge(p, args, options.as_of, interactive)
            if verdict is None:
                chosen.append(p)
                if p.existing:
                    replacing[p.contract_id] = p.existing.number
            else:
                results[p.contract_id] = verdict
                refused = refused or not verdict.startswith("Nothing to bill")
        if chosen and interactive and not args.yes and not Confirm.ask(f"Issue {len(chosen)} invoice(s)?"):
            for p in chosen:
                results[p.contract_id] = "Not billed: you answered no"
            return []
        return chosen

    progress = render_progress()
    with progress as on_rendered:
        pipeline.generate(options, contract_ids, args.cycle, approve, on_rendered, args.adjust, report)
    if unusable(report):
        return EXIT_UNUSABLE
    notes: dict[str, str] = {}  # contract -> the credit note crediting the invoice replaced
    for invoice in report.issued:
        contract_id = invoice.draft.contract_id
        if invoice.is_credit_note and invoice.credits:
            notes[contract_id] = invoice.number
            continue
        replaced = f", replacing {replacing[contract_id]}" if contract_id in replacing else ""
        if contract_id in notes:  # it had been sent, synced or charged: corrected, not voided
            replaced += f" (sent already: credited by {notes[contract_id]})"
        results[contract_id] = f"{'Credit note' if invoice.is_credit_note else 'Invoiced'} {invoice.number}{replaced}"
    table = Table(title="Manual generation", title_justify="left")
    table.add_column("Contract")
    table.add_column("Result")
    for contract_id in dict.fromkeys(contract_ids):
        table.add_row(Text(contract_id), Text(results.get(contract_id, "")))
    terminal.console.print(table)
    # the invoices replaced: voided, or credited by a credit note when they had left the building already
    redrew = {number: "marked Credited" if contract_id in notes else "marked VOID"
              for contract_id, number in replacing.items()}
    show_summary(report, options, progress.rendered, redrew, nothing="Nothing was billed.")
    code = max(report.exit_code, show_post(report.post, report.post_earlier))
    return EXIT_REFUSED if refused else code


def judge(p: Proposal, args, as_of: date, interactive: bool) -> str | None:
    """None to bill the proposal, else why not. A question no option answered is a refusal
    unless there is a person at the terminal to answer it."""
    if p.problem:
        return p.problem
    if p.draft.is_empty:
        return "Nothing to bill for this cycle"
    cycle = f"{p.cycle.start} to {p.cycle.end}"
    if p.is_future(as_of):
        terminal.console.print(Text(f"Warning: {p.contract_id}'s cycle {cycle} is a future cycle, "
                                    f"scheduled for {p.cycle.scheduled}.", style="yellow"))
        if not (args.allow_future or interactive and Confirm.ask("Bill it now?")):
            return f"Refused: future cycle {cycle} (scheduled {p.cycle.scheduled}); use --allow-future"
    if p.existing is not None:
        terminal.console.print(Text(f"{p.contract_id}'s cycle {cycle} is already billed by {p.existing.number}."))
        if not (args.replace or interactive and Confirm.ask(f"Replace {p.existing.number}?")):
            return f"Refused: already billed by {p.existing.number}; use --replace to reissue it"
    return None


def credit_command(args, options: Options) -> int:
    if (args.quantity is not None or args.amount is not None) != (args.line is not None):
        terminal.console.print("Name a line and what to credit of it together: --line N with --quantity Q or "
                               "--amount A; without them the whole invoice is credited.")
        return EXIT_UNUSABLE
    progress = render_progress()
    with progress as on_rendered:
        report, refusal = pipeline.credit(options, args.invoice, args.reason, args.line, args.quantity, args.amount,
                                          on_rendered)
    if unusable(report):
        return EXIT_UNUSABLE
    if refusal:
        terminal.console.print(Text(f"Not credited: {refusal}"), soft_wrap=True)
        return EXIT_SET_ASIDE
    note = report.issued[0]
    amount = money(note.draft.total, note.draft.currency, report.locale)
    terminal.console.print(Text(f"Issued credit note {note.number} for {amount}, crediting {note.credits}" +
                                (f": {note.credits} is now Credited in full." if report.credited else
                                 f"; the rest of {note.credits} is still due.")))
    show_summary(report, options, progress.rendered, {number: "marked Credited" for number in report.credited})
    return report.exit_code


def schedules_command(args, options: Options) -> int:
    report, rows = pipeline.schedules(options)
    if unusable(report):
        return EXIT_UNUSABLE
    table = Table(title=f"Billing schedules as of {options.as_of}", title_justify="left")
    for title in ("Schedule ID", "Cycle", "Scheduled", "Status", "Reason", "Invoice", "Message"):
        table.add_column(title)
    for r in rows:
        if args.contract and r.contract_id != args.contract:
            continue
        cycle = f"{r.cycle_start} to {r.cycle_end}" if r.cycle_start else ""
        table.add_row(Text(r.schedule_id), cycle, str(r.scheduled or ""), r.status, r.reason,
                      r.invoice.number if r.invoice else "", Text(r.message))
    terminal.console.print(table)
    return report.exit_code
