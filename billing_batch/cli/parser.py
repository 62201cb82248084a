"""The options: the argparse parser of every command, and the types of its arguments."""
from __future__ import annotations

import argparse
import importlib.metadata
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

from billing_batch.model import POST_TASKS

DEFAULT_INPUT = Path("inbox")


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
    """"send,sync" -> ("send", "sync"); "all" -> every task, in their order."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    if names == ["all"]:
        return POST_TASKS
    unknown = [n for n in names if n not in POST_TASKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown task {', '.join(map(repr, unknown)) or repr(text)}: use a "
                                         f"comma-separated list of {', '.join(POST_TASKS)} (or all)")
    return tuple(dict.fromkeys(names))


def workbook_options(renders: bool) -> argparse.ArgumentParser:
    """The options of every command that reads the workbook. Developer options are accepted everywhere
    (scripts pass them to any command) but stay out of the help finance reads (docs/performance.md);
    --jobs is shown only where PDFs are made."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--input", type=Path, default=DEFAULT_INPUT,
                        help="a workbook, or a folder whose *.xlsx are read (default: inbox/)")
    common.add_argument("--output", type=Path, help="where outputs go (default: output/ beside the input folder)")
    common.add_argument("--ledger", type=Path, help="the ledger file (default: OUTPUT/ledger.sqlite)")
    common.add_argument("--new-ledger", action="store_true",
                        help="start a new ledger even though another one has billed these contracts")
    common.add_argument("--as-of", type=iso_date, default=date.today(), help="bill as of this date (default: today)")
    common.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="PDF render processes (default: all cores)" if renders else argparse.SUPPRESS)
    common.add_argument("--executor", choices=("process", "dask"), default="process", help=argparse.SUPPRESS)
    common.add_argument("--scheduler", metavar="ADDRESS", help=argparse.SUPPRESS)
    common.add_argument("--max-input-mb", type=float, help=argparse.SUPPRESS)  # default: Limits'
    common.add_argument("--max-rows", type=int, help=argparse.SUPPRESS)
    return common


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="billing-batch", description="Invoice the billing workbook.")
    p.add_argument("--version", action="version", version=f"billing-batch {importlib.metadata.version('billing-batch')}")
    common, rendering = workbook_options(renders=False), workbook_options(renders=True)
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

    subparsers = p.add_subparsers(dest="command", required=True)

    def command(name: str, about: str, parents=(), parent=subparsers) -> argparse.ArgumentParser:
        """A command, whose one line shows in the list of commands and atop its own --help."""
        return parent.add_parser(name, parents=list(parents), help=about, description=f"{about[0].upper()}{about[1:]}.")

    run = command("run", "bill every cycle that is due and not billed yet",
                  [rendering, as_json, post_tasks, catch_up, own_look])
    run.add_argument("--preview", action="store_true", help="show what would be billed; write nothing")
    run.add_argument("--timings-json", type=Path, metavar="PATH", help=argparse.SUPPRESS)  # each stage's wall and CPU time
    command("check", "report every problem in the input; bill nothing", [common, as_json, catch_up, own_look])
    generate = command("generate", "bill chosen contracts by hand", [rendering, contracts, post_tasks, own_look])
    generate.add_argument("--contracts-file", type=Path, help="a text file with one contract ID a line")
    generate.add_argument("--replace", action="store_true", help="replace a cycle's invoice (the old one is kept as Replaced)")
    generate.add_argument("--allow-future", action="store_true", help="bill a cycle before its scheduled date")
    generate.add_argument("--adjust", action="store_true",
                          help="bill the contract's pending adjustments now, on an invoice of their own")
    generate.add_argument("--no-preview", action="store_true", help="do not show the preview first")
    generate.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    command("preview", "show what generate would bill", [common, contracts, as_json])
    schedules = command("schedules", "show the billing schedules; bill nothing", [common])
    schedules.add_argument("--contract", help="only this contract")
    post = command("post", "send, sync or charge invoices already issued", [common, own_look])
    post.add_argument("--tasks", type=task_list, required=True, help="send,sync,charge (any of them)")
    post.add_argument("--invoice", action="append", default=[], metavar="NUMBER",
                      help="only this invoice (repeatable; default: every live invoice)")
    post.add_argument("--again", action="store_true", help="repeat tasks that succeeded for the named invoices")
    credit = command("credit", "credit an issued invoice by a credit note: in full, or part of a line",
                     [rendering, own_look])
    credit.add_argument("--invoice", required=True, metavar="NUMBER", help="the invoice to credit")
    credit.add_argument("--reason", required=True, help="why it is credited (printed on the credit note)")
    credit.add_argument("--line", type=int, metavar="N", help="credit part of line N only (as printed, from 1)")
    part = credit.add_mutually_exclusive_group()
    part.add_argument("--quantity", type=decimal_number, metavar="Q", help="with --line: the quantity to credit")
    part.add_argument("--amount", type=decimal_number, metavar="A",
                      help="with --line: the amount to credit, before discount and tax")
    templates = command("templates", "copy the default templates to start your own look from")
    templates.add_argument("--export", type=Path, metavar="DIR", required=True,
                           help="the folder to copy them to (made if missing; existing files are never overwritten)")
    reviews = command("review", "open the review page of a run")
    reviews.add_argument("--output", type=Path, default=Path("output"), help="where outputs go (default: output/)")
    reviews.add_argument("--run", metavar="RUN_ID", help="the run to review (default: the latest)")
    reviews.add_argument("--list", action="store_true", help="list the past runs")
    reviews.add_argument("--no-open", action="store_true", help="print the page's path; do not open it")
    check_einvoice = command(
        "validate-einvoice", "check a Factur-X PDF or an e-invoice XML (CII, UBL, XRechnung) by the official rules")
    check_einvoice.add_argument("file", type=Path, metavar="FILE", help="the PDF or XML file")
    init = command("init", "write a starter workbook, with examples, to FOLDER/inbox/")
    init.add_argument("folder", type=Path, nargs="?", default=Path("."), metavar="FOLDER",
                      help="where inbox/ is made (default: the current folder)")
    serve = command("serve", "open the web console: the inbox, this month's run, review and generate, in the browser")
    serve.add_argument("folder", type=Path, nargs="?", default=Path("."), metavar="FOLDER",
                       help="the folder holding inbox/ and output/ (default: the current folder)")
    serve.add_argument("--port", type=int, default=0, help="the port to listen on (default: a free port)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="the address to listen on: 127.0.0.1 (the default), localhost or ::1; any other "
                            "only with --behind-proxy")
    serve.add_argument("--behind-proxy", action="store_true",
                       help="an authenticating proxy stands in front: allow another --host, and take the "
                            "proxy's address in the Host header (docs/console.md)")
    serve.add_argument("--no-browser", action="store_true", help="print the address; do not open the browser")
    ledger = command("ledger", "look after the ledger").add_subparsers(dest="ledger_command", required=True)
    ledger_check_ = command("check", "check the ledger and every PDF against it; change nothing", [as_json], ledger)
    ledger_check_.add_argument("--output", type=Path, default=Path("output"),
                               help="the folder of the ledger and the PDFs (default: output/)")
    ledger_check_.add_argument("--ledger", type=Path, help="the ledger file (default: OUTPUT/ledger.sqlite)")
    ledger_check_.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                               help="PDF reading processes (default: all cores)")
    return p
