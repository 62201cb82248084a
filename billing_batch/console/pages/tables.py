"""Schedules and Ledger check, read-only: the schedule rows as `billing-batch schedules` shows them (the billing
schedule workbook's, as of a date), and `billing-batch ledger check`'s findings (the ledger against itself,
then every PDF against the ledger)."""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from billing_batch import pipeline
from billing_batch.console.jobs import outcome_of
from billing_batch.console.pages import home
from billing_batch.console.pages.month import read_as_of
from billing_batch.console.views import render
from billing_batch.console.words import Text
from billing_batch.i18n import N_
from billing_batch.ledger.check import NoLedger


def schedules(request: Request) -> Response:
    """GET /schedules[?as_of=YYYY-MM-DD&contract=ID]."""
    console = request.app.state.console
    as_of, wrong = read_as_of(request.query_params.get("as_of"))
    contract = request.query_params.get("contract", "").strip()
    options = console.options(as_of)
    report, rows, trouble = None, [], None
    try:
        report, rows = pipeline.schedules(options)
    except home.REFUSALS as exc:
        trouble = outcome_of(exc, console.output)[1]
    shown = [r for r in rows if not contract or r.contract_id == contract]
    extra = {"locale": report.locale} if report else {}
    return render(request, "schedules.html", as_of=as_of, wrong_date=wrong, contract=contract, rows=shown,
                  total=len(rows), report=report, trouble=trouble, anchor=home.anchor, catalogue=home.CATALOGUE,
                  **extra)


def ledger(request: Request) -> Response:
    """GET /ledger: `ledger check` on the workspace's ledger and PDFs; it reads only."""
    console = request.app.state.console
    options = console.options()
    result, trouble = None, None
    try:
        result = pipeline.check_ledger(options.ledger_path, options.output, options.jobs)
    except NoLedger:
        trouble = Text(N_("There is no ledger at %(ledger)s: nothing has been billed in this workspace yet. Run the "
                          "month first (This month, Approve)."), ledger=str(options.ledger_path))
    except home.REFUSALS as exc:
        trouble = outcome_of(exc, console.output)[1]
    return render(request, "ledger.html", result=result, trouble=trouble, ledger=options.ledger_path)


routes = [Route("/schedules", schedules, methods=["GET"]), Route("/ledger", ledger, methods=["GET"])]
