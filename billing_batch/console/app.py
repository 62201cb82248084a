"""The console's application: make_app gathers the pages' routes, the job status route, /static and /output,
behind security.Guard. `billing-batch serve` (cli/serve.py) runs it with uvicorn."""
from __future__ import annotations

import secrets
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing_batch.console import files
from billing_batch.console.jobs import Jobs, outcome_of
from billing_batch.console.pages import generate, home, invoice, month, review, tables
from billing_batch.console.security import Guard, with_headers
from billing_batch.console.state import Console
from billing_batch.console.views import refusal, render
from billing_batch.i18n import N_


async def job_status(request: Request) -> Response:
    """GET /jobs/{id}: the job's status fragment (templates/job.html), which polls itself while the job runs."""
    job = request.app.state.console.jobs.get(request.path_params["id"])
    if job is None:
        return refusal(404, N_("No such job"), N_("The console does not know this job: it was started before the "
                                                  "console last started. The ledger and the output folder hold what it "
                                                  "did."), request.app.state.console.locale())
    return render(request, "job.html", job=job)


async def job_banner(request: Request) -> Response:
    """GET /jobs/{id}/banner: the banner every page shows while the job runs (templates/banner.html); empty once
    it has finished, so the banner goes."""
    job = request.app.state.console.jobs.get(request.path_params["id"])
    if job is None or job.finished:
        return Response("", media_type="text/html")
    return render(request, "banner.html", running=job)


def make_app(workspace: Path, token: str, port: int, *, proxied: bool = False) -> Starlette:
    """The console for the workspace (the folder of inbox/ and output/), answering to the token at
    127.0.0.1:port (behind an authenticating proxy when proxied)."""
    workspace = Path(workspace).resolve()
    console = Console(workspace=workspace, token=token, csrf=secrets.token_urlsafe(32), port=port,
                      jobs=Jobs(workspace / "output"), proxied=proxied)
    routes = [route for page in (home, month, review, generate, invoice, tables) for route in page.routes]
    routes += [Route("/jobs/{id}", job_status, methods=["GET"]),
               Route("/jobs/{id}/banner", job_banner, methods=["GET"]),
               Route("/static/{path:path}", files.static_file, methods=["GET"]),
               Route("/output/{path:path}", files.output_file, methods=["GET"])]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_refusal},
                    middleware=[Middleware(Guard, console=console), Middleware(Mishaps, console=console)])
    app.state.console = console
    app.state.reraise = False  # the tests' fixture sets True to see a page's bug as its exception
    return app


async def http_refusal(request: Request, exc: HTTPException) -> Response:
    """404, 405 and the like as pages in plain words."""
    words = {404: (N_("No such page"), N_("The console has no page at this address. Use the menu.")),
             405: (N_("Not allowed"), N_("This address only takes a form sent from the console's pages: opening it "
                                         "changes nothing. Use the menu."))}
    title, message = words.get(exc.status_code, (N_("Refused"), str(exc.detail)))
    response = refusal(exc.status_code, title, message, request.app.state.console.locale())
    if exc.headers:
        response.headers.update(exc.headers)
    return response


class Mishaps:
    """A page's exception as a page saying what happened, in the CLI's words (jobs.outcome_of: a refusal, a fault
    of the machine, or a bug logged to the error log): never a stack trace."""

    def __init__(self, app: ASGIApp, console: Console) -> None:
        self.app, self.console = app, console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            outcome, message = outcome_of(exc, self.console.output)
            if started or getattr(scope.get("app"), "state", None) and scope["app"].state.reraise:
                raise
            status = 409 if outcome == "refused" else 500
            title = N_("Refused") if outcome == "refused" else N_("Something went wrong")
            try:
                locale = self.console.locale()
            except Exception:  # noqa: BLE001 - whatever went wrong, the page says so, in English if need be
                locale = "en_US"
            await refusal(status, title, message, locale)(scope, receive, with_headers(send))
