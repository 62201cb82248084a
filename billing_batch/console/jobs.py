"""The one long command at a time (billing, generating, crediting), run in a thread while the pages poll it.

A second start while one runs raises Busy, as the ledger lock refuses a second command. A job's exception
becomes its outcome, in the CLI's words: a refusal (Refused, the ledger busy or unusable) is "refused", a fault
of the machine (cli/faults.py) and a bug are "failed", a bug's details going to the error log as the CLI's do."""
from __future__ import annotations

import itertools
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from billing_batch.console.words import Text
from billing_batch.i18n import N_
from billing_batch.workspace import Report

KEEP = 50  # finished jobs remembered (their pages and links), the oldest forgotten first
TITLES = {"run": N_("The month's run"), "generate": N_("Generating invoices"), "credit": N_("A credit note"),
          "post": N_("Sending, syncing or charging")}
# what a job's stage says: a run's and a generation's in this order, never back (Staged); invoice.DOING adds its own
STARTING, FINISHED = N_("starting"), N_("finished")
READING, BILLING, RENDERING, POSTING, WRITING, REVIEW = (N_("reading the inbox"), N_("billing"), N_("rendering PDFs"),
                                                         N_("post tasks"), N_("writing the workbook"), N_("review"))
ORDER = (STARTING, READING, BILLING, RENDERING, POSTING, WRITING, REVIEW)
OUTCOMES = {"ok": N_("Done"), "problems": N_("Done, with problems"), "refused": N_("Refused"), "failed": N_("Failed")}


class Busy(Exception):
    """Another job runs; its message says which and since when. Nothing was started."""

    def __init__(self, job: Job):
        self.job = job
        self.text = Text(N_("%(title)s started at %(time)s is still running (%(stage)s). Wait for it to finish, "
                            "then try again; nothing was started."),
                         title=job.title, time=f"{job.started:%H:%M:%S}", stage=Text(job.stage))
        super().__init__(self.text)


@dataclass
class Job:
    id: str
    kind: str  # "run", "generate", "credit", "post": what the pages call it
    started: datetime = field(default_factory=datetime.now)
    stage: str = STARTING
    done: int = 0  # PDFs rendered (or any unit of work counted) ...
    total: int = 0  # ... out of this many; 0 while unknown
    finished: bool = False
    outcome: str = ""  # "ok" | "problems" | "refused" | "failed", set when finished
    message: str = ""  # what the outcome means, in words
    result: object = None  # what work returned (a Report, a (Report, ...) tuple)
    links: list[tuple[str, str]] = field(default_factory=list)  # (label, href) shown when finished
    ended: datetime | None = None

    @property
    def title(self) -> str:
        if self.kind in TITLES:
            return Text(TITLES[self.kind])
        return Text(N_("The %(kind)s job"), kind=self.kind)

    @property
    def verdict(self) -> str:
        """The outcome in a word or three (Done, Refused...), said by the page; "" while it runs."""
        return OUTCOMES.get(self.outcome, self.outcome)

    def progress(self, done: int, total: int) -> None:
        """pipeline's on_rendered: (PDFs rendered, PDFs to render)."""
        self.done, self.total = done, total

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.done / self.total)) if self.total else (100 if self.finished else 0)

    @property
    def seconds(self) -> float:
        return ((self.ended or datetime.now()) - self.started).total_seconds()


class Jobs:
    def __init__(self, output: Path | None = None):
        self.output = output  # where a bug's error log goes (the CLI's: OUTPUT/billing-batch-error.log)
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}
        self._running: Job | None = None
        self._ids = itertools.count(1)

    def start(self, kind: str, work: Callable[[Job], object]) -> Job:
        """Run work(job) in a thread; the job's stage, done and total are work's to update. Raises Busy while
        another job runs."""
        with self._lock:
            if self._running is not None and not self._running.finished:
                raise Busy(self._running)
            job = Job(id=f"{next(self._ids)}-{datetime.now():%H%M%S}", kind=kind)
            self._running = job
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEEP]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(job, work), name=f"console-job-{job.id}", daemon=True).start()
        return job

    def current(self) -> Job | None:
        """The job that runs now, if any."""
        with self._lock:
            return self._running if self._running is not None and not self._running.finished else None

    def get(self, id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(id)

    def last(self, kind: str) -> Job | None:
        """The latest job of this kind, running or finished."""
        with self._lock:
            return next((j for j in reversed(self._jobs.values()) if j.kind == kind), None)

    def _run(self, job: Job, work: Callable[[Job], object]) -> None:
        try:
            job.result = work(job)
            if not job.outcome:
                code = getattr(job.result, "exit_code", 0)
                job.outcome = "ok" if not code else "problems"
            if not job.message:
                job.message = Text(N_("Done.")) if job.outcome == "ok" else ""
        except BaseException as exc:  # noqa: BLE001 - whatever happens, the page says so and the next job may start
            job.outcome, job.message = outcome_of(exc, self.output)
        finally:
            job.ended = datetime.now()
            job.stage = FINISHED
            job.finished = True


class Staged(Report):
    """A Report whose stages (stages: Report.stage's name -> the job's stage) move the job, so the page says what
    the run or generation is doing."""

    def __init__(self, job: Job, stages: Mapping[str, str]):
        super().__init__()
        self.job, self.stages = job, stages

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        advance(self.job, self.stages.get(name))
        with super().stage(name):
            yield


def advance(job: Job, stage: str | None) -> None:
    """The job to the stage, never back to one it left (a run prices again after it renders)."""
    if stage in ORDER and (job.stage not in ORDER or ORDER.index(stage) > ORDER.index(job.stage)):
        job.stage = stage


def outcome_of(exc: BaseException, output: Path | None) -> tuple[str, str]:
    """(outcome, message) for an exception, in the CLI's words (cli/faults.py)."""
    from billing_batch.cli.faults import error_log, fault_message, refusal
    from billing_batch.ledger.store import LedgerBusy, LedgerUnusable
    from billing_batch.workspace import Refused

    if isinstance(exc, (Refused, LedgerBusy, LedgerUnusable)):
        return "refused", refusal(exc)
    fault = fault_message(exc, output / "ledger.sqlite" if output else None)
    if fault:
        return "failed", fault
    log = error_log("".join(traceback.format_exception(exc)), output)
    if log:
        return "failed", Text(N_("billing-batch hit an internal error and stopped: an internal error, logged to "
                                 "%(log)s. Please send that file to the billing_batch maintainers. The ledger holds "
                                 "only complete invoices."), log=str(log))
    return "failed", Text(N_("billing-batch hit an internal error and stopped (%(error)s). Please tell the "
                             "billing_batch maintainers. The ledger holds only complete invoices."),
                          error=f"{type(exc).__name__}: {exc}")
