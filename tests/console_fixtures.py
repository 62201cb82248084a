"""The console's test fixture: a workspace in tmp_path whose inbox/ holds a copy of sample_data's files, and a
TestClient signed in (the session cookie set) and sending the Host and Origin of the console's own pages.

    from console_fixtures import console, post  # noqa: F401  (the fixture, and a POST with the CSRF field)

    def test_home(console):
        assert console.get("/").status_code == 200
        post(console, "/month/approve", {"as_of": "2026-10-31"})

console.app.state.console is the state.Console (workspace, inbox, output, options(), jobs); wait_for(job) waits
for a job to finish."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from billing_batch.console.app import make_app
from billing_batch.console.jobs import Job
from billing_batch.console.security import cookie_name

SAMPLE = Path(__file__).resolve().parent.parent / "sample_data"
PORT = 8765
TOKEN = "test-token-0123456789"
ORIGIN = f"http://127.0.0.1:{PORT}"


def workspace(folder: Path) -> Path:
    """folder/inbox/ holding a copy of sample_data's workbook and Partner Center files."""
    (folder / "inbox").mkdir(parents=True)
    for path in SAMPLE.iterdir():
        if path.is_file():
            shutil.copy2(path, folder / "inbox" / path.name)
    return folder


def client(folder: Path, *, reraise: bool = True, signed_in: bool = True, proxied: bool = False,
           port: int = PORT) -> TestClient:
    """A TestClient of a console on folder; reraise: a page's bug raises in the test (False: the page it shows)."""
    app = make_app(folder, TOKEN, port, proxied=proxied)
    app.state.reraise = reraise
    test_client = TestClient(app, base_url=f"http://127.0.0.1:{port}", raise_server_exceptions=reraise,
                             follow_redirects=False)
    if signed_in:
        test_client.cookies.set(cookie_name(port), TOKEN)
        test_client.headers["Origin"] = f"http://127.0.0.1:{port}"
    return test_client


@pytest.fixture
def console(tmp_path: Path, monkeypatch) -> TestClient:
    monkeypatch.setenv("BILLING_BATCH_DATA", str(tmp_path / "known-ledgers"))
    with client(workspace(tmp_path / "workspace")) as test_client:
        yield test_client


def post(test_client: TestClient, url: str, data: dict | None = None, **kw):
    """A form POST as the console's own page sends it: with the CSRF field."""
    csrf = test_client.app.state.console.csrf
    return test_client.post(url, data={**(data or {}), "csrf": csrf}, **kw)


def wait_for(job: Job, seconds: float = 120) -> Job:
    """The job once finished (fails the test after seconds)."""
    deadline = time.monotonic() + seconds
    while not job.finished:
        if time.monotonic() > deadline:
            pytest.fail(f"the job {job.kind} did not finish in {seconds} s (stage {job.stage})")
        time.sleep(0.05)
    return job
