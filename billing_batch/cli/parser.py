"""The options: the argparse parser of every command, and the types of its arguments."""
from __future__ import annotations

import argparse
import importlib.metadata
import os
from datetime import date
from decimal import Decimal
from pathlib import Path

from billing_batch.inputs import workbook
from billing_batch.post.tasks import parse_tasks


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
    common.add_argument("--output", type=Path, help="where outputs go (default: output/ beside the input folder)")
    common.add_argument("--ledger", type=Path, help="the ledger file (default: OUTPUT/ledger.sqlite)")
    common.add_argument("--new-ledger", action="store_true",
                        help="start a new ledger even though another one has billed these contracts")
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
