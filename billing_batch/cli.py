"""The command line: options, questions, exit codes and what the terminal shows."""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
import traceback
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.prompt import Confirm
from rich.table import Table
from rich.text import Text

from billing_batch import ledger_check, look, partner_center, pipeline, review_runs, starter_workbook, workbook
from billing_batch.billing import Proposal
from billing_batch.errors import Problem
from billing_batch.ledger import LedgerBusy, LedgerUnusable
from billing_batch.credit_notes import below_zero
from billing_batch.model import DocType, Draft, Line, LineKind
from billing_batch.post import command
from billing_batch.post.tasks import parse_tasks

EXIT_OK, EXIT_SET_ASIDE, EXIT_UNUSABLE, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3, 4
SHOW_PDF_PATHS = 100  # more than this and the summary names the folder instead

# Logs and pipes get wide tables; a terminal gets its own width.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def decimal_number(text: str) -> Decimal:
    try:
        number = Decimal(text.replace(",", ""))
    except ArithmeticError:
        number = None
    if number is None or not number.is_finite():
        raise argparse.ArgumentTypeError(f"{text!r} is not a number such as 2 or 120.50")
    return number


def task_list(text: str) -> tuple[str, ...]:
    try:
        return parse_tasks(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="billing-batch", description="Invoice the billing workbook.")
    p.add_argument("--version", action="version", version=f"billing-batch {importlib.metadata.version('billing-batch')}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--input", type=Path, default=Path("inbox"),
                        help="a workbook, or a folder whose *.xlsx are read (default: inbox/)")
    common.add_argument("--output", type=Path, default=Path("output"), help="where outputs go (default: output/)")
    common.add_argument("--ledger", type=Path, help="the ledger file (default: OUTPUT/ledger.sqlite)")
    common.add_argument("--as-of", type=iso_date, default=date.today(), help="bill as of this date (default: today)")
    common.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="PDF render processes (default: all cores)")
    common.add_argument("--executor", choices=("process", "dask"), default="process",
                        help="render PDFs in local processes (default) or on a Dask cluster")
    common.add_argument("--scheduler", metavar="ADDRESS", help="the Dask scheduler for --executor dask")
    common.add_argument("--max-input-mb", type=float, default=workbook.Limits.max_file_mb,
                        help="refuse an input workbook larger than this (default: %(default)s)")
    common.add_argument("--max-rows", type=int, default=workbook.Limits.max_rows,
                        help="refuse input with more rows than this (default: %(default)s)")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of tables")
    contracts = argparse.ArgumentParser(add_help=False)
    contracts.add_argument("--contract", action="append", default=[], metavar="ID", help="a contract (repeatable)")
    contracts.add_argument("--cycle", type=iso_date, metavar="DATE", help="the cycle that contains DATE "
                           "(default: each contract's oldest cycle with no invoice)")

    own_look = argparse.ArgumentParser(add_help=False)
    own_look.add_argument("--templates", type=Path, metavar="DIR",
                          help="your own templates folder (its files replace the default ones one by one; "
                               "default: the Templates Folder setting)")

    post_tasks = argparse.ArgumentParser(add_help=False)
    post_tasks.add_argument("--post-tasks", type=task_list, default=(), metavar="TASKS",
                            help="after billing, run these for the new invoices: send,sync,charge")

    catch_up = argparse.ArgumentParser(add_help=False)
    catch_up.add_argument("--allow-catch-up", action="store_true",
                          help="bill every due cycle, even more than the Catch-Up Limit for one contract")

    commands = p.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common, as_json, post_tasks, catch_up, own_look],
                              help="bill every cycle that is due and not billed yet")
    run.add_argument("--preview", action="store_true", help="show what would be billed; write nothing")
    run.add_argument("--timings-json", type=Path, metavar="PATH", help="write each stage's wall and CPU time to PATH")
    commands.add_parser("check", parents=[common, as_json, catch_up, own_look],
                        help="report every problem in the input; bill nothing")
    generate = commands.add_parser("generate", parents=[common, contracts, post_tasks, own_look],
                                   help="bill chosen contracts by hand")
    generate.add_argument("--contracts-file", type=Path, help="a text file with one contract ID a line")
    generate.add_argument("--replace", action="store_true", help="replace a cycle's invoice (the old one is kept as Replaced)")
    generate.add_argument("--allow-future", action="store_true", help="bill a cycle before its scheduled date")
    generate.add_argument("--adjust", action="store_true",
                          help="bill the contract's pending adjustments now, on an invoice of their own")
    generate.add_argument("--no-preview", action="store_true", help="do not show the preview first")
    generate.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    commands.add_parser("preview", parents=[common, contracts, as_json], help="show what generate would bill")
    schedules = commands.add_parser("schedules", parents=[common], help="show the billing schedules; bill nothing")
    schedules.add_argument("--contract", help="only this contract")
    post = commands.add_parser("post", parents=[common, own_look], help="send, sync or charge invoices already issued")
    post.add_argument("--tasks", type=task_list, required=True, help="send,sync,charge (any of them)")
    post.add_argument("--invoice", action="append", default=[], metavar="NUMBER",
                      help="only this invoice (repeatable; default: every live invoice)")
    post.add_argument("--again", action="store_true", help="repeat tasks that succeeded for the named invoices")
    credit = commands.add_parser("credit", parents=[common, own_look],
                                 help="credit an issued invoice by a credit note: in full, or part of a line")
    credit.add_argument("--invoice", required=True, metavar="NUMBER", help="the invoice to credit")
    credit.add_argument("--reason", required=True, help="why it is credited (printed on the credit note)")
    credit.add_argument("--line", type=int, metavar="N", help="credit part of line N only (as printed, from 1)")
    part = credit.add_mutually_exclusive_group()
    part.add_argument("--quantity", type=decimal_number, metavar="Q", help="with --line: the quantity to credit")
    part.add_argument("--amount", type=decimal_number, metavar="A",
                      help="with --line: the amount to credit, before discount and tax")
    templates = commands.add_parser("templates", help="copy the default templates to start your own look from")
    templates.add_argument("--export", type=Path, metavar="DIR", required=True,
                           help="the folder to copy them to (made if missing; existing files are never overwritten)")
    reviews = commands.add_parser("review", help="open the review page of a run")
    reviews.add_argument("--output", type=Path, default=Path("output"), help="where outputs go (default: output/)")
    reviews.add_argument("--run", metavar="RUN_ID", help="the run to review (default: the latest)")
    reviews.add_argument("--list", action="store_true", help="list the past runs")
    reviews.add_argument("--no-open", action="store_true", help="print the page's path; do not open it")
    check_einvoice = commands.add_parser(
        "validate-einvoice", help="check a Factur-X PDF or an e-invoice XML (CII, UBL, XRechnung) by the official rules")
    check_einvoice.add_argument("file", type=Path, metavar="FILE", help="the PDF or XML file")
    init = commands.add_parser("init", help="write a starter workbook, with examples, to FOLDER/inbox/")
    init.add_argument("folder", type=Path, nargs="?", default=Path("."), metavar="FOLDER",
                      help="where inbox/ is made (default: the current folder)")
    ledger = commands.add_parser("ledger", help="look after the ledger").add_subparsers(dest="ledger_command",
                                                                                       required=True)
    ledger_check_ = ledger.add_parser("check", parents=[as_json],
                                      help="check the ledger and every PDF against it; change nothing")
    ledger_check_.add_argument("--output", type=Path, default=Path("output"),
                               help="the folder of the ledger and the PDFs (default: output/)")
    ledger_check_.add_argument("--ledger", type=Path, help="the ledger file (default: OUTPUT/ledger.sqlite)")
    ledger_check_.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                               help="PDF reading processes (default: all cores)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "review":  # reads past outputs only: no input needed
        return review_command(args)
    if args.command == "init":  # writes the input: none needed
        return init_command(args)
    if args.command == "templates":
        return templates_command(args)
    if args.command == "validate-einvoice":  # one file: no input needed
        return validate_einvoice_command(args)
    try:
        if args.command == "ledger":  # reads the ledger and its PDFs only: no input needed
            return ledger_check_command(args)
        options = pipeline.Options(input=args.input, output=args.output, as_of=args.as_of, ledger=args.ledger,
                                   jobs=max(1, args.jobs), executor=args.executor, scheduler=args.scheduler,
                                   post_tasks=getattr(args, "post_tasks", ()),
                                   allow_catch_up=getattr(args, "allow_catch_up", False),
                                   templates=getattr(args, "templates", None),
                                   limits=workbook.Limits(max_file_mb=args.max_input_mb, max_rows=args.max_rows))
        if options.executor == "dask" and not options.scheduler:
            console.print("--executor dask needs the cluster's address: --scheduler tcp://HOST:8786.")
            return EXIT_UNUSABLE
        if not options.input.exists():
            console.print(f"The input {options.input} does not exist. Put the workbook there, or name it with --input.")
            return EXIT_UNUSABLE
        if options.templates and not options.templates.is_dir():
            console.print(Text(f"The templates folder {options.templates} does not exist. Name the folder holding "
                               "your own templates with --templates DIR (make one with billing-batch templates "
                               "--export DIR)."))
            return EXIT_UNUSABLE
        return COMMANDS[args.command](args, options)
    except (pipeline.Refused, LedgerBusy, LedgerUnusable) as exc:
        console.print(Text(refusal(exc)))
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        console.print("Stopped. What was billed is kept in the ledger; run again to finish.")
        return EXIT_UNUSABLE
    except Exception:  # a bug: keep the details for us, show the user a calm message
        log = Path(getattr(args, "output", ".")) / "billing-batch-error.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
        except OSError:
            log = None
        console.print("billing-batch hit an internal error and stopped. The ledger holds only complete invoices.")
        if log:
            console.print(f"Please send {log} to the billing_batch maintainers.")
        return EXIT_INTERNAL


def refusal(exc: Exception) -> str:
    if isinstance(exc, LedgerBusy):
        return (f"Another billing run is using the ledger {exc}. Wait for it to finish, then run again; "
                "nothing was billed by this one.")
    return str(exc)


# Commands


def run_command(args, options: pipeline.Options) -> int:
    if args.preview:
        report, drafts = pipeline.preview_run(options)
        return show_preview(report, drafts, args.json)
    with render_progress() as on_rendered:
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
    show_summary(report, options)
    return max(report.exit_code, show_post(report.post))


def check_command(args, options: pipeline.Options) -> int:
    report = pipeline.check_input(options)
    if args.json:
        print(json.dumps({"problems": [p.as_dict() for p in report.problems],
                          "revised": [revision_dict(r) for r in report.revised],
                          "reconciliation": [mismatch_dict(m) for m in report.mismatches],
                          "exit_code": report.exit_code}, indent=2))
        return report.exit_code
    if report.problems:
        show_problems(report.problems)
    else:
        console.print("No problems found: the input is ready to bill.")
    show_usage_checks(report)
    return report.exit_code


def revision_dict(r: partner_center.Revision) -> dict:
    return {"contract_id": r.contract_id, "usage_id": r.usage_id, "invoice": r.invoice, "location": str(r.source),
            "billed_quantity": str(r.billed_quantity), "billed_unit_price": str(r.billed_unit_price),
            "quantity": str(r.quantity), "unit_price": str(r.unit_price), "difference": str(r.difference)}


def mismatch_dict(m: partner_center.Mismatch) -> dict:
    return {"contract_id": m.contract_id, "tenant": m.tenant, "month": m.month, "rows": m.rows,
            "billing_pre_tax_total": str(m.billed_by_partner_center), "imported": str(m.imported),
            "difference": str(m.difference), "tolerance": str(m.tolerance), "rows_file": m.file_name}


def show_usage_checks(report: pipeline.Report) -> None:
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


def preview_command(args, options: pipeline.Options) -> int:
    if not args.contract:
        console.print("Name a contract with --contract ID (or use `run --preview` for the whole batch).")
        return EXIT_UNUSABLE
    report, proposals = pipeline.propose(options, args.contract, args.cycle)
    for p in proposals:
        if p.problem and not args.json:
            console.print(Text(p.problem))
    drafts = [p.draft for p in proposals if p.draft]
    code = show_preview(report, drafts, args.json)
    return EXIT_REFUSED if code == EXIT_OK and any(p.problem for p in proposals) else code


def generate_command(args, options: pipeline.Options) -> int:
    contract_ids = list(args.contract)
    if args.contracts_file:
        contract_ids += [line.strip() for line in args.contracts_file.read_text().splitlines() if line.strip()]
    if not contract_ids:
        console.print("Name the contracts to bill with --contract ID or --contracts-file FILE.")
        return EXIT_UNUSABLE
    results: dict[str, str] = {}
    replacing: dict[str, str] = {}  # contract -> the invoice its new one replaces
    refused = False

    def approve(proposals: list[Proposal]) -> list[Proposal]:
        nonlocal refused
        interactive = sys.stdin.isatty()
        if not args.no_preview:
            show_drafts([p.draft for p in proposals if p.draft and not p.draft.is_empty])
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

    with render_progress() as on_rendered:
        report = pipeline.generate(options, contract_ids, args.cycle, approve, on_rendered, args.adjust)
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
    console.print(table)
    show_summary(report, options)
    code = max(report.exit_code, show_post(report.post))
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
        console.print(Text(f"Warning: {p.contract_id}'s cycle {cycle} is a future cycle, "
                           f"scheduled for {p.cycle.scheduled}.", style="yellow"))
        if not (args.allow_future or interactive and Confirm.ask("Bill it now?")):
            return f"Refused: future cycle {cycle} (scheduled {p.cycle.scheduled}); use --allow-future"
    if p.existing is not None:
        console.print(Text(f"{p.contract_id}'s cycle {cycle} is already billed by {p.existing.number}."))
        if not (args.replace or interactive and Confirm.ask(f"Replace {p.existing.number}?")):
            return f"Refused: already billed by {p.existing.number}; use --replace to reissue it"
    return None


def credit_command(args, options: pipeline.Options) -> int:
    if (args.quantity is not None or args.amount is not None) != (args.line is not None):
        console.print("Name a line and what to credit of it together: --line N with --quantity Q or --amount A; "
                      "without them the whole invoice is credited.")
        return EXIT_UNUSABLE
    with render_progress() as on_rendered:
        report, refusal = pipeline.credit(options, args.invoice, args.reason, args.line, args.quantity, args.amount,
                                          on_rendered)
    if unusable(report):
        return EXIT_UNUSABLE
    if refusal:
        console.print(Text(f"Not credited: {refusal}"), soft_wrap=True)
        return EXIT_SET_ASIDE
    note = report.issued[0]
    console.print(Text(f"Issued credit note {note.number} for {note.draft.total:,} {note.draft.currency}, crediting "
                       f"{note.credits}" + (f": {note.credits} is now Credited in full." if report.credited else
                                            f"; the rest of {note.credits} is still due.")))
    show_summary(report, options)
    return report.exit_code


def schedules_command(args, options: pipeline.Options) -> int:
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
    console.print(table)
    return report.exit_code


def post_command(args, options: pipeline.Options) -> int:
    result = command.post(options, args.tasks, args.invoice, args.again)
    if unusable(result.report):
        return EXIT_UNUSABLE
    if result.unknown:
        console.print(Text(f"The ledger has no live invoice {', '.join(result.unknown)}: nothing was done."))
        return EXIT_REFUSED
    show_post(result.outcomes)
    book = pipeline.refresh_book(options)
    if book:
        console.print(Text(f"Schedules: {book}"))
    return result.exit_code


def show_post(outcomes) -> int:
    """Print what the post tasks did; 1 when one failed or is in doubt."""
    if not outcomes:
        return EXIT_OK
    console.print(command.outcome_table(outcomes))
    for line in command.attention_lines(outcomes):
        console.print(line)
    return EXIT_SET_ASIDE if any(o.status in ("failed", "in doubt") for o in outcomes) else EXIT_OK


def validate_einvoice_command(args) -> int:
    """Each failed rule with its ID and text; exit 1 if any fails (errors, not warnings), 2 if unreadable."""
    from billing_batch import einvoice_check

    try:
        result = einvoice_check.check_file(args.file)
    except einvoice_check.Unreadable as exc:
        console.print(Text(f"{args.file} cannot be checked: {exc}."))
        return EXIT_UNUSABLE
    for failure in result.failures:
        console.print(Text(f"{failure.flag:<7} {failure.rule}: {failure.text}"))
    if result.errors:
        console.print(Text(f"{args.file}: {result.kind}, {len(result.errors)} rule(s) failed."))
        return EXIT_SET_ASIDE
    warned = f" ({len(result.failures)} warning(s))" if result.failures else ""
    console.print(Text(f"{args.file}: {result.kind}, passes the rules{warned}."))
    return EXIT_OK


def templates_command(args) -> int:
    try:
        written = look.export(args.export)
    except FileExistsError as exc:
        console.print(Text(f"Nothing was copied: these files exist already: {exc}. Export to an empty "
                           "folder, or move those files away first."))
        return EXIT_UNUSABLE
    except OSError as exc:
        console.print(Text(f"Nothing was copied: {args.export} cannot be written ({exc.strerror or exc})."))
        return EXIT_UNUSABLE
    for path in written:
        console.print(Text(str(path)))
    console.print(Text(f"Edit these files, delete the ones you keep as they are, and set Templates Folder in "
                       f"Settings (or --templates {args.export}) to use them."))
    return EXIT_OK


def review_command(args) -> int:
    if args.list:
        table = Table(title=f"Runs in {args.output / 'runs'}", title_justify="left")
        for title in ("Run", "As of", "Invoices", "Flagged", "Set aside", "Errors"):
            table.add_column(title)
        for past in review_runs.past_runs(args.output):
            table.add_row(past.run_id, *(str(past.summary.get(key, "")) for key in
                                         ("as_of", "invoices", "flagged", "set_aside", "errors")))
        console.print(table)
        return EXIT_OK
    try:
        page = review_runs.find_review(args.output, args.run)
    except LookupError as exc:
        console.print(Text(str(exc)))
        return EXIT_UNUSABLE
    console.print(Text(str(page)))
    if not args.no_open:
        review_runs.open_page(page)
    return EXIT_OK


def init_command(args) -> int:
    inbox = args.folder / "inbox"
    path = inbox / starter_workbook.BOOK_NAME
    # Any workbook already there would be billed together with the examples: refuse, not only over billing.xlsx.
    existing = workbook.input_files(inbox) if inbox.is_dir() else [path] if path.exists() else []
    if existing:
        console.print(Text(f"{inbox} already holds {', '.join(p.name for p in existing)}: nothing was written. "
                           "Move the workbook away to start afresh, or name another folder: billing-batch init FOLDER."))
        return EXIT_UNUSABLE
    try:
        starter_workbook.write(path, date.today())
    except OSError as exc:
        console.print(Text(f"Could not write {path}: {exc.strerror or exc}. Nothing was written."))
        return EXIT_UNUSABLE
    console.print(Text(f"Wrote {path}: every sheet and column the batch reads, two example rows in each, "
                       "and the settings."))
    steps = [] if args.folder.resolve() == Path.cwd().resolve() else [f"cd {args.folder}"]
    steps += [
        f"Open inbox/{path.name}: put in your company on the Settings sheet and replace the example rows with "
        "your own (each header's note says what the column means).",
        "billing-batch check          lists every problem in the workbook; bills nothing",
        "billing-batch run --preview  shows what would be billed; writes nothing",
        "billing-batch run            bills what is due: PDFs and billing_schedules.xlsx in output/",
    ]
    console.print("Next:")
    for number, step in enumerate(steps, start=1):
        console.print(Text(f"  {number}. {step}"))
    console.print("The examples bill as they stand: replace them before the first real run, because invoice "
                  "numbers once issued are kept in output/ledger.sqlite.")
    return EXIT_OK


def ledger_check_command(args) -> int:
    path = args.ledger or args.output / pipeline.LEDGER_NAME
    try:
        result = ledger_check.check_ledger(path, args.output, max(1, args.jobs))
    except ledger_check.NoLedger:
        console.print(Text(f"There is no ledger at {path}. Name the output folder that holds it with --output DIR, "
                           "or the file itself with --ledger PATH."))
        return EXIT_UNUSABLE
    if args.json:
        print(json.dumps([{"number": f.number, "check": f.check, "message": f.message} for f in result.findings],
                         indent=2))
    else:
        for finding in result.findings:
            console.print(Text(finding.message), soft_wrap=True)
        found = (f"{len(result.findings)} problem(s) found." if result.findings else "no problem found.")
        console.print(Text(f"Checked {result.checked} invoices: {found}",
                           style="bold red" if result.findings else "bold"))
    return EXIT_SET_ASIDE if result.findings else EXIT_OK


COMMANDS = {
    "run": run_command,
    "check": check_command,
    "generate": generate_command,
    "preview": preview_command,
    "schedules": schedules_command,
    "credit": credit_command,
    "post": post_command,
}


# What the terminal shows


class render_progress:
    """Rendering progress: a bar with an ETA at a terminal, a line every tenth otherwise.
    The bar starts with the first PDF, so it never covers a question asked before."""

    def __enter__(self):
        self.bar = None
        return self.advance

    def advance(self, done: int, total: int) -> None:
        if not console.is_terminal:
            if total >= 100 and done % max(1, total // 10) == 0 or done == total:
                console.print(f"Rendered {done} of {total} invoices")
            return
        if self.bar is None:
            self.bar = Progress(TextColumn("Rendering invoices"), BarColumn(), MofNCompleteColumn(),
                                TimeRemainingColumn(), console=console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task("render", total=total)
        self.bar.update(self.task, completed=done)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


def unusable(report: pipeline.Report) -> bool:
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


def show_preview(report: pipeline.Report, drafts: list[Draft], as_json: bool) -> int:
    if as_json:
        print(json.dumps({"invoices": [draft_json(d) for d in drafts if not d.is_empty],
                          "problems": [p.as_dict() for p in report.problems]}, indent=2))
        return report.exit_code
    if unusable(report):
        return EXIT_UNUSABLE
    show_drafts([d for d in drafts if not d.is_empty])
    if not drafts:
        console.print("Nothing would be billed.")
    return report.exit_code


def show_drafts(drafts: list[Draft]) -> None:
    for d in drafts:
        table = Table(title=f"{d.contract_id} · {d.customer_name} · cycle {d.cycle_start} to {d.cycle_end} · "
                            f"scheduled {d.scheduled} · {d.currency}", title_justify="left")
        for title, justify in (("Group", "left"), ("Product", "left"), ("Description", "left"),
                               ("Period", "left"), ("Quantity", "right"), ("Unit price", "right"),
                               ("Amount", "right")):
            table.add_column(title, justify=justify)
        order = ("Full cycle", "Prorated", "One-Time", "Usage")
        for line in sorted(d.lines, key=lambda line: order.index(line_group(line))):
            period = str(line.period_start) if line.period_start == line.period_end else \
                f"{line.period_start} to {line.period_end}"
            table.add_row(line_group(line), Text(line.product), Text(line.description), period,
                          f"{line.quantity:,}", f"{line.unit_price:,}", f"{line.amount:,}")
        table.add_section()
        for label, amount in (("Subtotal", d.subtotal), ("Discount", -d.discount), ("Tax", d.tax),
                              ("Total", d.total)):
            table.add_row("", "", "", "", "", label, f"{amount:,}")
        console.print(table)


def totals_by_currency(issued: list) -> dict[str, dict[str, list[Decimal]]]:
    """currency -> "invoices" or "credit_notes" -> their totals (a credit note's is what it credits)."""
    totals: dict[str, dict[str, list[Decimal]]] = defaultdict(lambda: {"invoices": [], "credit_notes": []})
    for invoice in issued:
        totals[invoice.draft.currency]["credit_notes" if invoice.is_credit_note else "invoices"].append(
            invoice.draft.total)
    return totals


def show_summary(report: pipeline.Report, options: pipeline.Options) -> None:
    totals = totals_by_currency(report.issued)
    table = Table(title=f"Invoices made as of {options.as_of.isoformat()}", title_justify="left")
    table.add_column("Currency")
    table.add_column("Invoices", justify="right")
    table.add_column("Total billed", justify="right")
    credit_notes = any(t["credit_notes"] for t in totals.values())
    if credit_notes:
        table.add_column("Credit notes", justify="right")
        table.add_column("Total credited", justify="right")
    for currency in sorted(totals):
        t = totals[currency]
        row = [currency, str(len(t["invoices"])), f"{sum(t['invoices']):,}"]
        table.add_row(*row, *([str(len(t["credit_notes"])), f"{sum(t['credit_notes']):,}"] if credit_notes else []))
    if report.issued:
        console.print(table)
    else:
        console.print("No new invoice: every due cycle is billed already.")
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
    if len(report.pdfs) <= SHOW_PDF_PATHS:
        for path in report.pdfs:
            console.print(Text(str(path)))
    else:
        console.print(f"{len(report.pdfs)} PDFs in {options.output / 'invoices'}")
    console.print(Text(f"Schedules: {report.book}"))
    if report.review:
        console.print(Text(f"Review: {report.review}"))


if __name__ == "__main__":
    sys.exit(main())
