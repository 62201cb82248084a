"""The commands that bill nothing and read no workbook: validate-einvoice, templates, review, init and
ledger check."""
from __future__ import annotations

import json
import shlex
from datetime import date
from pathlib import Path

from rich.table import Table
from rich.text import Text

from billing_batch import pipeline
from billing_batch.cli import terminal
from billing_batch.cli.exits import EXIT_OK, EXIT_SET_ASIDE, EXIT_UNUSABLE
from billing_batch.documents import look
from billing_batch.inputs import workbook
from billing_batch.ledger.check import NoLedger
from billing_batch.review import runs as review_runs
from billing_batch.workspace import LEDGER_NAME


def validate_einvoice_command(args) -> int:
    """Each failed rule with its ID and text; exit 1 if any fails (errors, not warnings), 2 if unreadable."""
    from billing_batch.documents import (
        einvoice_check,  # loaded for this command only, not at every start-up
    )

    try:
        result = einvoice_check.check_file(args.file)
    except einvoice_check.Unreadable as exc:
        terminal.console.print(Text(f"{args.file} cannot be checked: {exc}."))
        return EXIT_UNUSABLE
    for failure in result.failures:
        terminal.console.print(Text(f"{failure.flag:<7} {failure.rule}: {failure.text}"))
    if result.errors:
        terminal.console.print(Text(f"{args.file}: {result.kind}, {len(result.errors)} rule(s) failed."))
        return EXIT_SET_ASIDE
    warned = f" ({len(result.failures)} warning(s))" if result.failures else ""
    terminal.console.print(Text(f"{args.file}: {result.kind}, passes the rules{warned}."))
    return EXIT_OK


def templates_command(args) -> int:
    try:
        written = look.export(args.export)
    except FileExistsError as exc:
        terminal.console.print(Text(f"Nothing was copied: these files exist already: {exc}. Export to an empty "
                                    "folder, or move those files away first."))
        return EXIT_UNUSABLE
    except OSError as exc:
        terminal.console.print(Text(f"Nothing was copied: {args.export} cannot be written ({exc.strerror or exc})."))
        return EXIT_UNUSABLE
    for path in written:
        terminal.console.print(Text(str(path)))
    terminal.console.print(Text(f"Edit these files, delete the ones you keep as they are, and set Templates Folder in "
                                f"Settings (or --templates {args.export}) to use them."))
    return EXIT_OK


def review_command(args) -> int:
    if args.list:
        runs = review_runs.past_runs(args.output)
        default = review_runs.latest(runs)
        table = Table(title=f"Runs in {args.output / 'runs'}", title_justify="left",
                      caption="* opened by `billing-batch review`; any other with --run RUN_ID", caption_justify="left")
        for title in ("Run", "Command", "As of", "Invoices", "Credit notes", "Flagged", "Set aside", "Errors"):
            table.add_column(title)
        for past in runs:
            table.add_row(past.run_id + (" *" if past is default else ""), past.command,
                          *(str(past.summary.get(key, "")) for key in
                            ("as_of", "invoices", "credit_notes", "flagged", "set_aside", "errors")))
        terminal.console.print(table)
        return EXIT_OK
    try:
        page = review_runs.find_review(args.output, args.run)
    except LookupError as exc:
        terminal.console.print(Text(str(exc)))
        return EXIT_UNUSABLE
    if args.run is None:
        shown = review_runs.latest(review_runs.past_runs(args.output))
        what = "The latest billing run" if shown.bills else "The latest run (none has billed)"
        terminal.console.print(Text(f"{what}, {shown.run_id}. Every run, credits included: billing-batch review --list."))
    terminal.console.print(Text(str(page)))
    if not args.no_open:
        review_runs.open_page(page)
    return EXIT_OK


def init_command(args) -> int:
    from billing_batch.inputs import starter_workbook  # openpyxl: only for the command that writes one

    inbox = args.folder / "inbox"
    path = inbox / starter_workbook.BOOK_NAME
    # Any workbook already there would be billed together with the examples: refuse, not only over billing.xlsx.
    existing = workbook.input_files(inbox) if inbox.is_dir() else [path] if path.exists() else []
    if existing:
        terminal.console.print(Text(f"{inbox} already holds {', '.join(p.name for p in existing)}: nothing was "
                                    "written. Move the workbook away to start afresh, or name another folder: "
                                    "billing-batch init FOLDER."))
        return EXIT_UNUSABLE
    try:
        starter_workbook.write(path, date.today())
    except OSError as exc:
        terminal.console.print(Text(f"Could not write {path}: {exc.strerror or exc}. Nothing was written."))
        return EXIT_UNUSABLE
    terminal.console.print(Text(f"Wrote {path}: every sheet and column the batch reads, two example rows in each, "
                                "and the settings."))
    steps = [] if args.folder.resolve() == Path.cwd().resolve() else [f"cd {shlex.quote(str(args.folder))}"]
    steps += [
        f"Open inbox/{path.name}: put in your company on the Settings sheet and replace the example rows with "
        "your own (each header's note says what the column means).",
        "billing-batch check          lists every problem in the workbook; bills nothing",
        "billing-batch run --preview  shows what would be billed; writes nothing",
        "billing-batch run            bills what is due: PDFs and billing_schedules.xlsx in output/",
    ]
    terminal.console.print("Next:")
    for number, step in enumerate(steps, start=1):
        terminal.console.print(Text(f"  {number}. {step}"))
    terminal.console.print("The examples bill as they stand: replace them before the first real run, because invoice "
                           "numbers once issued are kept in output/ledger.sqlite.")
    return EXIT_OK


def ledger_check_command(args) -> int:
    path = args.ledger or args.output / LEDGER_NAME
    try:
        result = pipeline.check_ledger(path, args.output, max(1, args.jobs))
    except NoLedger:
        terminal.console.print(Text(f"There is no ledger at {path}. Name the output folder that holds it with "
                                    "--output DIR, or the file itself with --ledger PATH."))
        return EXIT_UNUSABLE
    if args.json:
        print(json.dumps([{"number": f.number, "check": f.check, "message": f.message} for f in result.findings],
                         indent=2))
    else:
        for finding in result.findings:
            terminal.console.print(Text(finding.message), soft_wrap=True)
        found = (f"{len(result.findings)} problem(s) found." if result.findings else "no problem found.")
        terminal.console.print(Text(f"Checked {result.checked} invoices: {found}",
                                    style="bold red" if result.findings else "bold"))
    return EXIT_SET_ASIDE if result.findings else EXIT_OK
