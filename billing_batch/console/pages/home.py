"""Home: the inbox's workbooks and Partner Center CSVs, an upload form, and `check`'s problems as a table, each
problem with its file, sheet, row, column letter and value, what is wrong and what to do, and its code as the
terminal names it with its anchor in docs/errors.md."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

from babel.numbers import format_decimal
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from billing_batch import pipeline
from billing_batch.console import files
from billing_batch.console.jobs import Busy, outcome_of
from billing_batch.console.views import render
from billing_batch.console.words import Text, ngettext
from billing_batch.errors import Problem
from billing_batch.i18n import N_, parse
from billing_batch.ledger.store import LedgerBusy, LedgerUnusable
from billing_batch.workspace import Refused

CATALOGUE = "docs/errors.md"
# What a page says in place of what it shows, in the CLI's words (jobs.outcome_of): a refusal (old outputs without
# their ledger, the ledger held by a command or unusable) or a fault of the machine. A bug goes on to app.Mishaps.
REFUSALS = (Refused, LedgerBusy, LedgerUnusable, OSError)
NOTHING_SENT = N_("Choose a workbook (.xlsx) or a Partner Center file (.csv) to upload, then Upload.")


@dataclass(frozen=True)
class InboxFile:
    name: str
    size: int  # bytes
    modified: datetime


def inbox_files(inbox: Path) -> list[InboxFile]:
    """The files the batch reads from inbox/: its workbooks and CSVs (not Excel's ~$ lock files, not hidden ones)."""
    found = []
    for path in sorted(inbox.iterdir()) if inbox.is_dir() else ():
        if path.suffix.lower() in files.SUFFIXES and path.is_file() and not path.name.startswith(("~$", ".")):
            stat = path.stat()
            found.append(InboxFile(path.name, stat.st_size, datetime.fromtimestamp(stat.st_mtime)))
    return found


def anchor(problem: Problem) -> str:
    """The problem's heading in docs/errors.md as a link names it: "### BB104 not a number" is #bb104-not-a-number
    (lower case, punctuation dropped, spaces as hyphens, as GitHub and most Markdown renderers make them)."""
    heading = f"{problem.code} {problem.title}".lower()
    return re.sub(r"\s", "-", re.sub(r"[^\w\- ]", "", heading))


def size_text(size: int, locale: str = "en_US") -> str:
    """1.5 MB, 12.0 KB, 200 bytes: the number as the locale writes it, the word said by the page (say)."""
    try:
        where = parse(locale)
    except ValueError:
        where = parse("en_US")
    for unit, scale in (("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{format_decimal(round(size / scale, 1), format='0.0', locale=where)} {unit}"
    return ngettext("%(n)s byte", "%(n)s bytes", size, n=size)


def home(request: Request) -> Response:
    """GET / (a plain function: Starlette runs it in a thread, so the check does not hold up other requests)."""
    return page(request, saved=request.query_params.get("saved"), kept=request.query_params.get("kept"))


def page(request: Request, status: int = 200, **context) -> Response:
    """The Home page: the inbox, and the check of what it holds now."""
    console = request.app.state.console
    problems, trouble, report = [], None, None
    if not console.inbox.is_dir():
        trouble = Text(N_("There is no inbox folder in %(workspace)s: upload the billing workbook below to start "
                          "one, or start the console in the folder that holds inbox/."),
                       workspace=str(console.workspace))
    else:
        try:
            report = pipeline.check_input(console.options())
            problems = report.problems
        except REFUSALS as exc:
            trouble = outcome_of(exc, console.output)[1]
    return render(request, "home.html", status, files=inbox_files(console.inbox), size_text=size_text,
                  problems=problems, anchor=anchor, catalogue=CATALOGUE, trouble=trouble, report=report,
                  **context)


async def upload(request: Request) -> Response:
    """POST /upload (multipart, field `file`): the file into inbox/ through files.save_upload, which checks it
    before it replaces anything and keeps a replaced file in inbox/.previous/."""
    console = request.app.state.console
    if (running := console.jobs.current()) is not None:  # it reads the inbox: nothing is changed under it
        return await run_in_threadpool(page, request, 409, refused=Busy(running).text)
    async with request.form(max_files=1) as form:
        sent = form.get("file")
        if not isinstance(sent, UploadFile) or not sent.filename:
            return await run_in_threadpool(page, request, 400, refused=NOTHING_SENT)
        try:
            saved = await run_in_threadpool(files.save_upload, console.inbox, sent.filename, sent.file)
        except files.UploadRefused as exc:
            return await run_in_threadpool(page, request, 400, refused=exc.text)
    told = {"saved": saved.path.name} | ({"kept": saved.previous.name} if saved.previous else {})
    return RedirectResponse(f"/?{urlencode(told)}", status_code=303)  # a reload does not upload it again


routes = [Route("/", home, methods=["GET"]), Route("/upload", upload, methods=["POST"])]
