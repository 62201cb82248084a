"""The command line: options, exit codes and what the terminal shows."""
from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections import defaultdict
from contextlib import nullcontext
from datetime import date
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from billing_batch import pipeline
from billing_batch.errors import Problem
from billing_batch.ledger import LedgerBusy

EXIT_OK, EXIT_SET_ASIDE, EXIT_UNUSABLE, EXIT_INTERNAL = 0, 1, 2, 4
SHOW_PDF_PATHS = 50  # more than this and the summary names the folder instead

console = Console(highlight=False)


def iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in the form YYYY-MM-DD") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="billing-batch", description="Invoice the billing workbook.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--input", type=Path, default=Path("inbox"),
                        help="a workbook, or a folder whose *.xlsx are read (default: inbox/)")
    common.add_argument("--output", type=Path, default=Path("output"), help="where outputs go (default: output/)")
    common.add_argument("--ledger", type=Path, help="the ledger file (default: OUTPUT/ledger.sqlite)")
    common.add_argument("--as-of", type=iso_date, default=date.today(), help="bill as of this date (default: today)")
    common.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="PDF render processes (default: all cores)")
    commands = p.add_subparsers(dest="command", required=True)
    commands.add_parser("run", parents=[common], help="bill every cycle that is due and not billed yet")
    check = commands.add_parser("check", parents=[common], help="report every problem in the input; bill nothing")
    check.add_argument("--json", action="store_true", help="print the problems as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return run_command(args)
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
        console.print("billing-batch hit an internal error and stopped. Nothing half-done was kept in the ledger.")
        if log:
            console.print(f"Please send {log} to the billing_batch maintainers.")
        return EXIT_INTERNAL


def run_command(args: argparse.Namespace) -> int:
    options = pipeline.Options(input=args.input, output=args.output, as_of=args.as_of, ledger=args.ledger,
                               jobs=max(1, args.jobs))
    if not options.input.exists():
        console.print(f"The input {options.input} does not exist. Put the workbook there, or name it with --input.")
        return EXIT_UNUSABLE
    return COMMANDS[args.command](args, options)


def check_command(args: argparse.Namespace, options: pipeline.Options) -> int:
    report = pipeline.Report()
    pipeline.load(options, report)
    if args.json:
        print(json.dumps({"problems": [p.as_dict() for p in report.problems], "exit_code": report.exit_code},
                         indent=2))
    elif report.problems:
        show_problems(report.problems)
    else:
        console.print("No problems found: the input is ready to bill.")
    return report.exit_code


def run_batch(args: argparse.Namespace, options: pipeline.Options) -> int:
    try:
        with render_progress() as on_rendered:
            report = pipeline.run(options, on_rendered)
    except (pipeline.Refused, LedgerBusy) as exc:
        console.print(Text(refusal(exc)))
        return EXIT_UNUSABLE
    show_problems(report.problems)
    if report.exit_code == EXIT_UNUSABLE:
        console.print("Nothing was billed and no file was written. Correct the workbook and run again.")
        return EXIT_UNUSABLE
    show_summary(report, options)
    return report.exit_code


def refusal(exc: Exception) -> str:
    if isinstance(exc, LedgerBusy):
        return (f"Another billing run is using the ledger {exc}. Wait for it to finish, then run again; "
                "nothing was billed by this one.")
    return str(exc)


class render_progress:
    """A progress bar while PDFs are rendered, when the output is a terminal."""

    def __enter__(self):
        if not console.is_terminal:
            self.progress = nullcontext()
            return None
        self.progress = Progress(TextColumn("Rendering invoices"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=console, transient=True)
        task = self.progress.add_task("render", total=None)
        return lambda invoice: self.progress.advance(task)

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)


def show_problems(problems: list[Problem]) -> None:
    if not problems:
        return
    console.print(Text(f"{len(problems)} problem(s) in the input:", style="bold red"))
    for p in problems:
        console.print(Text(str(p)))
    console.print()


def show_summary(report: pipeline.Report, options: pipeline.Options) -> None:
    totals: dict[str, list[Decimal]] = defaultdict(list)
    for invoice in report.issued:
        totals[invoice.draft.currency].append(invoice.draft.total)
    table = Table(title=f"Billing run as of {options.as_of.isoformat()}", title_justify="left")
    table.add_column("Currency")
    table.add_column("Invoices", justify="right")
    table.add_column("Total billed", justify="right")
    for currency in sorted(totals):
        table.add_row(currency, str(len(totals[currency])), f"{sum(totals[currency]):,}")
    if report.issued:
        console.print(table)
    else:
        console.print("No cycle was due that had not been billed already: no new invoice.")
    if report.nothing_to_bill:
        console.print(f"{report.nothing_to_bill} due cycle(s) had nothing to bill (marked 'Nothing to bill').")
    if report.set_aside:
        aside = Table(title="Contracts set aside (not billed)", title_justify="left")
        aside.add_column("Contract")
        aside.add_column("Reason")
        for contract_id, problems in sorted(report.set_aside.items()):
            reason = problems[0].one_line() + (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
            aside.add_row(Text(contract_id), Text(reason))
        console.print(aside)
    if len(report.pdfs) <= SHOW_PDF_PATHS:
        for path in report.pdfs:
            console.print(Text(str(path)))
    else:
        console.print(f"{len(report.pdfs)} PDFs in {options.output / 'invoices'}")
    console.print(Text(f"Schedules: {report.book}"))


COMMANDS = {"run": run_batch, "check": check_command}

if __name__ == "__main__":
    sys.exit(main())
