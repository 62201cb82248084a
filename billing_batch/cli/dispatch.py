"""Run one parsed command: its options, its module (billing, post, tools), and every refusal, fault of the
machine (cli/faults.py) and bug turned into a message and an exit code (cli/exits.py)."""
from __future__ import annotations

import argparse
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
from billing_batch.cli.faults import error_log, fault_message, refusal
from billing_batch.cli.parser import DEFAULT_INPUT
from billing_batch.cli.post import post_command
from billing_batch.cli.serve import serve_command
from billing_batch.cli.tools import (
    init_command,
    ledger_check_command,
    review_command,
    templates_command,
    validate_einvoice_command,
)
from billing_batch.inputs.workbook_parts import Limits
from billing_batch.ledger.store import LedgerBusy, LedgerUnusable
from billing_batch.workspace import Options, Refused


def dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; every refusal, fault and bug ends in a message and an exit code."""
    options = None
    try:
        if args.command in WITHOUT_INPUT:
            return WITHOUT_INPUT[args.command](args)
        options = Options(input=args.input, output=args.output or Options.default_output(args.input),
                                   as_of=args.as_of, ledger=args.ledger, new_ledger=args.new_ledger,
                                   jobs=max(1, args.jobs), executor=args.executor, scheduler=args.scheduler,
                                   post_tasks=getattr(args, "post_tasks", ()),
                                   allow_catch_up=getattr(args, "allow_catch_up", False),
                                   templates=getattr(args, "templates", None),
                                   limits=limits(args))
        if options.executor == "dask" and not options.scheduler:
            terminal.console.print("--executor dask needs the cluster's address: --scheduler tcp://HOST:8786.")
            return EXIT_UNUSABLE
        if not options.input.exists():
            terminal.console.print(Text(missing_input(options.input)))
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
    except Exception as exc:
        fault = fault_message(exc, options.ledger_path if options else getattr(args, "ledger", None))
        if fault:
            terminal.console.print(Text(fault))
            return EXIT_UNUSABLE
        # a bug: keep the details for us, show the user a calm message
        terminal.console.print("billing-batch hit an internal error and stopped. The ledger holds only complete "
                               "invoices.")
        log = error_log(traceback.format_exc(), options.output if options else getattr(args, "output", None))
        terminal.console.print(Text(f"Please send {log} to the billing_batch maintainers." if log else
                                    f"Please tell the billing_batch maintainers: {type(exc).__name__}: {exc}"))
        return EXIT_INTERNAL


def limits(args: argparse.Namespace) -> Limits:
    """The bounds on the input: the defaults, but for those given (--max-input-mb, --max-rows)."""
    given = {"max_file_mb": args.max_input_mb, "max_rows": args.max_rows}
    return Limits(**{name: value for name, value in given.items() if value is not None})


def missing_input(path: Path) -> str:
    """Where the input was looked for, absolute (the folder the command ran in is not always the one meant)."""
    if path == DEFAULT_INPUT:
        return (f"There is no inbox folder here: {path.absolute()} does not exist. Run billing-batch init to start "
                "one with a starter workbook, or cd into the folder that holds inbox/ (or name the workbook with "
                "--input FILE).")
    return f"The input {path.absolute()} does not exist. Put the workbook there, or name it with --input."


WITHOUT_INPUT = {
    "review": review_command,  # reads past outputs only
    "init": init_command,  # writes the input
    "templates": templates_command,
    "validate-einvoice": validate_einvoice_command,  # one file
    "ledger": ledger_check_command,  # reads the ledger and its PDFs only
    "serve": serve_command,  # the web console: each page reads the workspace itself
}
COMMANDS = {
    "run": run_command,
    "check": check_command,
    "generate": generate_command,
    "preview": preview_command,
    "schedules": schedules_command,
    "credit": credit_command,
    "post": post_command,
}
