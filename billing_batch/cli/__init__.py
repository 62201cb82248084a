"""The command line: `main` parses the options and hands each command to its module (billing, post,
tools); parser holds the options, terminal what the terminal shows, exits the exit codes."""
from __future__ import annotations

import traceback
from pathlib import Path

from rich.text import Text

from billing_batch.cli import terminal
from billing_batch.cli.billing import (
    check_command,
    credit_command,
    generate_command,
    preview_command,
    run_command,
    schedules_command,
)
from billing_batch.cli.exits import EXIT_INTERNAL, EXIT_UNUSABLE
from billing_batch.cli.parser import parser
from billing_batch.cli.post import post_command
from billing_batch.cli.tools import (
    init_command,
    ledger_check_command,
    review_command,
    templates_command,
    validate_einvoice_command,
)
from billing_batch.inputs import workbook
from billing_batch.ledger.store import LedgerBusy, LedgerUnusable
from billing_batch.workspace import Options, Refused


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
        options = Options(input=args.input, output=args.output, as_of=args.as_of, ledger=args.ledger,
                                   jobs=max(1, args.jobs), executor=args.executor, scheduler=args.scheduler,
                                   post_tasks=getattr(args, "post_tasks", ()),
                                   allow_catch_up=getattr(args, "allow_catch_up", False),
                                   templates=getattr(args, "templates", None),
                                   limits=workbook.Limits(max_file_mb=args.max_input_mb, max_rows=args.max_rows))
        if options.executor == "dask" and not options.scheduler:
            terminal.console.print("--executor dask needs the cluster's address: --scheduler tcp://HOST:8786.")
            return EXIT_UNUSABLE
        if not options.input.exists():
            terminal.console.print(f"The input {options.input} does not exist. Put the workbook there, or name it "
                                   "with --input.")
            return EXIT_UNUSABLE
        if options.templates and not options.templates.is_dir():
            terminal.console.print(Text(f"The templates folder {options.templates} does not exist. Name the folder "
                                        "holding your own templates with --templates DIR (make one with billing-batch "
                                        "templates --export DIR)."))
            return EXIT_UNUSABLE
        return COMMANDS[args.command](args, options)
    except (Refused, LedgerBusy, LedgerUnusable) as exc:
        terminal.console.print(Text(refusal(exc)))
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        terminal.console.print("Stopped. What was billed is kept in the ledger; run again to finish.")
        return EXIT_UNUSABLE
    except Exception:  # a bug: keep the details for us, show the user a calm message
        log = Path(getattr(args, "output", ".")) / "billing-batch-error.log"
        try:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(traceback.format_exc())
        except OSError:
            log = None
        terminal.console.print("billing-batch hit an internal error and stopped. The ledger holds only complete "
                               "invoices.")
        if log:
            terminal.console.print(f"Please send {log} to the billing_batch maintainers.")
        return EXIT_INTERNAL


def refusal(exc: Exception) -> str:
    if isinstance(exc, LedgerBusy):
        return (f"Another billing run is using the ledger {exc}. Wait for it to finish, then run again; "
                "nothing was billed by this one.")
    return str(exc)


COMMANDS = {
    "run": run_command,
    "check": check_command,
    "generate": generate_command,
    "preview": preview_command,
    "schedules": schedules_command,
    "credit": credit_command,
    "post": post_command,
}
