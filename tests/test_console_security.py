"""The console is safe by default (issue #24, docs/console.md): only the person holding the printed address's
token gets a page; no other web page (another port of 127.0.0.1 included) and no rebinding DNS name can make it
act; files are served only from the output folder and the package's static files; uploads are checked before
they replace anything; one job runs at a time. And `billing-batch serve` itself: the address printed once it
listens, Ctrl-C stops it with exit 0, a non-loopback --host refused."""
from __future__ import annotations

import hashlib
import http.client
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from console_fixtures import ORIGIN, PORT, TOKEN, client, console, post, wait_for, workspace  # noqa: F401
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from billing_batch.console import files, security
from billing_batch.console.files import UploadRefused, safe_path, save_upload
from billing_batch.console.jobs import Busy
from billing_batch.console.security import cookie_name
from billing_batch.workspace import Refused

VENV_BIN = Path(sys.executable).parent
CHANGED: list[str] = []  # what the test route was made to do


async def change(request):
    """A route that changes something: the refusals below must keep requests from reaching it."""
    CHANGED.append(request.method)
    return PlainTextResponse("changed")


async def bug(request):
    raise RuntimeError("a bug in a page")


def with_test_routes(test_client):
    test_client.app.router.routes.append(Route("/test/change", change, methods=["POST"]))
    test_client.app.router.routes.append(Route("/test/bug", bug, methods=["GET"]))
    CHANGED.clear()
    return test_client


@pytest.fixture
def signed_in(console):
    return with_test_routes(console)


@pytest.fixture
def stranger(tmp_path):
    """A client with no token and no cookie."""
    with client(workspace(tmp_path / "ws"), signed_in=False) as test_client:
        yield with_test_routes(test_client)


def assert_headers(response):
    headers = response.headers
    assert "default-src 'self'" in headers["content-security-policy"] or "default-src 'none'" in \
        headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"


def refused_page(response, status: int) -> str:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "Traceback" not in response.text
    assert_headers(response)
    return response.text


# --- the token and the cookie -------------------------------------------------------------------------------

def test_the_token_is_exchanged_for_a_strict_httponly_cookie_and_dropped_from_the_address(stranger):
    response = stranger.get(f"/month?token={TOKEN}&as_of=2026-10-31")
    assert response.status_code == 303
    assert response.headers["location"] == "/month?as_of=2026-10-31"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{cookie_name(PORT)}={TOKEN};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
    assert_headers(response)
    # the browser now holds the cookie: the page answers without the token
    assert stranger.get("/test/none").status_code == 404  # past the guard: the page is simply not there
    assert stranger.get(f"/?token={TOKEN}").headers["location"] == "/"


def test_without_token_or_cookie_there_is_a_403_page_and_nothing_else(stranger, tmp_path):
    output = stranger.app.state.console.output
    output.mkdir()
    (output / "report.csv").write_text("secret figures")
    for url in ("/", "/month", "/output/report.csv", "/static/htmx.min.js", "/jobs/1", "/test/bug", "/nowhere"):
        text = refused_page(stranger.get(url), 403)
        assert "secret figures" not in text and "htmx" not in text
        assert str(stranger.app.state.console.workspace) not in text and "<nav" not in text
    refused_page(post(stranger, "/test/change"), 403)
    assert CHANGED == []


def test_a_wrong_token_is_refused_and_compared_in_constant_time(stranger, monkeypatch):
    compared = []
    real = security.secrets.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(security.secrets, "compare_digest", spy)
    for wrong in ("x", TOKEN[:-1], TOKEN + "x", "é" * 5, ""):
        text = refused_page(stranger.get("/", params={"token": wrong}), 403)
        assert "token" in text
        assert "set-cookie" not in stranger.get("/", params={"token": wrong}).headers
    assert (b"x", TOKEN.encode()) in compared
    stranger.cookies.set(cookie_name(PORT), "not-the-token")
    refused_page(stranger.get("/month"), 403)


def test_the_token_is_not_taken_on_a_post(stranger):
    refused_page(stranger.post(f"/test/change?token={TOKEN}", headers={"Origin": ORIGIN}), 403)
    assert CHANGED == []


def test_another_consoles_cookie_is_not_this_ones(tmp_path):
    with client(workspace(tmp_path / "ws"), signed_in=False, port=PORT + 1) as other:
        other.cookies.set(cookie_name(PORT), TOKEN)  # this token, but for the console on another port
        refused_page(other.get("/jobs/1"), 403)


# --- the Host header (DNS rebinding) ------------------------------------------------------------------------

@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{PORT}", f"127.0.0.1:{PORT + 1}", "127.0.0.1",
                                  f"192.168.1.10:{PORT}", f"localhost.evil.example:{PORT}", ""])
def test_a_host_other_than_the_consoles_own_is_refused(signed_in, host):
    text = refused_page(signed_in.get("/jobs/1", headers={"Host": host}), 400)
    assert f"http://127.0.0.1:{PORT}/" in text
    refused_page(post(signed_in, "/test/change", headers={"Host": host}), 400)
    assert CHANGED == []


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"LOCALHOST:{PORT}", f"[::1]:{PORT}"])
def test_the_consoles_own_hosts_are_served(signed_in, host):
    assert signed_in.get("/jobs/1", headers={"Host": host}).status_code == 404  # the guard let it through
    origin = f"http://{host.lower()}"
    assert post(signed_in, "/test/change", headers={"Host": host, "Origin": origin}).status_code == 200


def test_behind_a_proxy_the_host_is_the_proxys_and_the_origin_must_match_it(tmp_path):
    with client(workspace(tmp_path / "ws"), proxied=True) as proxied:
        with_test_routes(proxied)
        proxy = {"Host": "billing.example.com"}
        assert proxied.get("/jobs/1", headers=proxy).status_code == 404  # served
        for origin in ("https://billing.example.com", "http://billing.example.com"):
            assert post(proxied, "/test/change", headers={**proxy, "Origin": origin}).status_code == 200
        refused_page(post(proxied, "/test/change", headers={**proxy, "Origin": "https://evil.example"}), 403)
        assert CHANGED == ["POST", "POST"]
        # the token is still needed: the proxy authenticates, the console still asks for its own token
        proxied.cookies.clear()
        refused_page(proxied.get("/jobs/1", headers=proxy), 403)


# --- requests that change something -------------------------------------------------------------------------

def test_a_post_without_the_csrf_token_is_refused(signed_in):
    refused_page(signed_in.post("/test/change", data={"x": "1"}), 403)
    refused_page(signed_in.post("/test/change", data={"csrf": "wrong"}), 403)
    refused_page(signed_in.post("/test/change", headers={"X-CSRF-Token": "wrong"}), 403)
    refused_page(signed_in.post("/test/change", files={"csrf": ("c.txt", signed_in.app.state.console.csrf)}), 403)
    assert CHANGED == []


def test_a_post_with_the_csrf_token_in_a_form_a_multipart_form_or_the_header_is_served(signed_in):
    csrf = signed_in.app.state.console.csrf
    assert post(signed_in, "/test/change", {"x": "1"}).text == "changed"
    assert signed_in.post("/test/change", data={"csrf": csrf},
                          files={"upload": ("b.xlsx", b"PK..")}).text == "changed"
    assert signed_in.post("/test/change", headers={"X-CSRF-Token": csrf}).text == "changed"
    assert CHANGED == ["POST"] * 3


@pytest.mark.parametrize("headers", [
    {"Origin": f"http://127.0.0.1:{PORT + 1}"},  # another port of 127.0.0.1: the same site, another origin
    {"Origin": f"http://localhost:{PORT + 1}"},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
    {"Origin": ORIGIN, "Sec-Fetch-Site": "same-site"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "none"},
    {},  # neither Origin nor Sec-Fetch-Site
])
def test_a_post_with_the_csrf_token_but_not_from_the_consoles_own_page_is_refused(signed_in, headers):
    del signed_in.headers["Origin"]
    text = refused_page(post(signed_in, "/test/change", headers=headers), 403)
    assert "nothing was done" in text
    assert CHANGED == []


def test_a_post_from_the_same_origin_by_sec_fetch_site_alone_is_served(signed_in):
    del signed_in.headers["Origin"]
    assert post(signed_in, "/test/change", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200


def test_no_get_changes_anything(signed_in):
    """Every route that acts takes POST only: the same address opened with GET (a link, an image on another page)
    is 405 and does nothing. Every page's route that has no GET is checked."""
    response = signed_in.get("/test/change")
    refused_page(response, 405)
    assert CHANGED == []
    acting = [r for r in signed_in.app.routes if isinstance(r, Route) and "GET" not in (r.methods or ())]
    for route in acting:
        url = route.path_format.replace("{", "").replace("}", "")
        assert signed_in.get(url).status_code == 405, url
    assert all(r.methods == {"GET", "HEAD"} for r in signed_in.app.routes
               if isinstance(r, Route) and r.path.startswith(("/jobs", "/static", "/output")))


def test_every_response_carries_the_security_headers(signed_in, stranger):
    output = signed_in.app.state.console.output
    output.mkdir()
    (output / "a.csv").write_text("x")
    responses = [signed_in.get("/static/console.css"), signed_in.get("/output/a.csv"), signed_in.get("/nowhere"),
                 signed_in.get("/test/change"), post(signed_in, "/test/change"), signed_in.get(f"/?token={TOKEN}"),
                 stranger.get("/"), signed_in.get("/", headers={"Host": "evil.example"})]
    for response in responses:
        assert_headers(response)
    assert "cross-origin-resource-policy" in responses[0].headers


def test_a_body_over_the_limit_is_413_and_reaches_no_page(signed_in, monkeypatch):
    monkeypatch.setattr(security, "MAX_BODY", 1000)
    csrf = signed_in.app.state.console.csrf
    text = refused_page(signed_in.post("/test/change", data={"csrf": csrf, "x": "a" * 2000}), 413)
    assert "MB" in text

    def chunks():  # no Content-Length: the body is counted as it comes
        for _ in range(5):
            yield b"a" * 400

    refused_page(signed_in.post("/test/change", content=chunks(), headers={"X-CSRF-Token": csrf}), 413)
    assert CHANGED == []
    assert post(signed_in, "/test/change", {"x": "a" * 100}).status_code == 200


def test_a_pages_bug_is_a_page_saying_so_and_the_details_go_to_the_error_log(tmp_path):
    with client(workspace(tmp_path / "ws"), reraise=False) as test_client:
        with_test_routes(test_client)
        text = refused_page(test_client.get("/test/bug"), 500)
        log = test_client.app.state.console.output / "billing-batch-error.log"
        assert f"logged to {log}" in text and "RuntimeError" not in text
        assert "a bug in a page" in log.read_text()


# --- files served -------------------------------------------------------------------------------------------

@pytest.fixture
def served(signed_in, tmp_path):
    output = signed_in.app.state.console.output
    (output / "invoices").mkdir(parents=True)
    (output / "invoices" / "INV-1.pdf").write_bytes(b"%PDF-1.7 an invoice")
    (output / "review.html").write_text("<html><script>1</script></html>")
    secret = tmp_path / "secret.txt"
    secret.write_text("the neighbour's secret")
    (output / "link.txt").symlink_to(secret)
    (output / "linked").symlink_to(tmp_path)
    return signed_in


def test_the_output_folders_files_are_served(served):
    pdf = served.get("/output/invoices/INV-1.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"].startswith("inline")
    page = served.get("/output/review.html")
    # the program's own review page keeps its inline script, and may load nothing at all
    assert page.status_code == 200 and page.headers["content-security-policy"] == files.OUTPUT_HTML_POLICY
    assert served.get("/static/htmx.min.js").status_code == 200


@pytest.mark.parametrize("path", [
    "/output/..%2fsecret.txt", "/output/%2e%2e/secret.txt", "/output/%2e%2e%2fsecret.txt",
    "/output/invoices/..%2f..%2fsecret.txt", "/output/invoices/%2E%2E/%2E%2E/secret.txt",
    "/output/..%5csecret.txt", "/output//etc/passwd", "/output/%2fetc%2fpasswd", "/output/link.txt",
    "/output/linked/secret.txt", "/output/", "/output/invoices", "/output/.%2e/secret.txt",
    "/static/..%2fapp.py", "/static/%2e%2e/security.py", "/static//etc/passwd", "/static/..%2f..%2fcli%2fserve.py",
])
def test_no_path_leaves_the_output_folder_or_the_static_files(served, path):
    response = served.get(path)
    assert response.status_code == 404, path
    assert "secret" not in response.text and "import" not in response.text and "root:" not in response.text
    assert_headers(response)


def test_safe_path_refuses_what_leaves_its_root(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "b.pdf").write_text("x")
    (root / "out").symlink_to(tmp_path)
    assert safe_path(root, "a/b.pdf") == (root / "a" / "b.pdf").resolve()
    for bad in ("../x", "a/../../x", "/etc/passwd", "C:/x", "c:x", "a\\..\\..\\x", "out/x", "out", "", ".", "a/.",
                "a/\0", ".hidden", "a/.git/config"):
        assert safe_path(root, bad) is None, bad


# --- uploads ------------------------------------------------------------------------------------------------

def inbox_state(inbox: Path) -> dict[str, str]:
    return {str(p.relative_to(inbox)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(inbox.rglob("*"))}


@pytest.fixture
def inbox(tmp_path) -> Path:
    return workspace(tmp_path / "ws") / "inbox"


@pytest.mark.parametrize("name, data, words", [
    ("billing.pdf", b"%PDF-1.7", "only .xlsx workbooks and .csv"),
    ("billing.xlsm", b"PK\x03\x04", "only .xlsx workbooks and .csv"),
    ("billing", b"PK\x03\x04", "only .xlsx workbooks and .csv"),
    ("billing.xlsx", b"this is not a workbook", "not a workbook that opens"),
    ("billing.xlsx", b"PK\x03\x04 a broken zip", "not a workbook that opens"),
    ("partner_center_usage_2026-10.csv", b"\x00\x01\x02binary\x00" * 100, "not a text file"),
    ("billing.xlsx", b"", "empty"),
    (".hidden.xlsx", b"PK", "cannot be used"),
    ("~$billing.xlsx", b"PK", "cannot be used"),
])
def test_an_upload_that_is_not_a_workbook_or_csv_is_refused_and_the_inbox_unchanged(inbox, name, data, words):
    before = inbox_state(inbox)
    with pytest.raises(UploadRefused, match=words):
        save_upload(inbox, name, data)
    assert inbox_state(inbox) == before


def test_an_upload_over_the_limit_is_refused_and_the_inbox_unchanged(inbox):
    before = inbox_state(inbox)
    big = (inbox / "billing.xlsx").read_bytes()
    with pytest.raises(UploadRefused, match="larger than"):
        save_upload(inbox, "billing.xlsx", big, limit=len(big) - 1)
    with open(inbox / "billing.xlsx", "rb") as stream, pytest.raises(UploadRefused, match="larger than"):
        save_upload(inbox, "other.xlsx", stream, limit=1000)
    assert inbox_state(inbox) == before
    assert files.MAX_UPLOAD == 50 * 1024 * 1024 and security.MAX_BODY > files.MAX_UPLOAD


def test_an_upload_replaces_the_workbook_and_keeps_the_previous_one(inbox):
    old = (inbox / "billing.xlsx").read_bytes()
    new = (Path(__file__).parent.parent / "sample_data" / "billing.xlsx").read_bytes()
    with open(inbox / "billing.xlsx", "rb") as stream:
        saved = save_upload(inbox, "C:\\fakepath\\billing.xlsx", stream)
    assert saved.path == inbox / "billing.xlsx" and saved.path.read_bytes() == new
    assert saved.previous.parent == inbox / ".previous" and saved.previous.read_bytes() == old
    assert saved.previous.name.startswith("billing.xlsx.")
    csv = save_upload(inbox, "../../partner_center_usage_2026-11.csv", b"Customer,Quantity\nA,1\n")
    assert csv.path == inbox / "partner_center_usage_2026-11.csv" and csv.previous is None  # its own name only
    assert not [p for p in inbox.iterdir() if p.name.startswith(".upload-")]


# --- one job at a time --------------------------------------------------------------------------------------

def test_one_job_at_a_time(console):
    jobs = console.app.state.console.jobs
    release = threading.Event()

    def long(job):
        job.stage = "rendering PDFs"
        job.progress(3, 10)
        release.wait(30)

    first = jobs.start("run", long)
    with pytest.raises(Busy, match="still running.*nothing was started") as busy:
        jobs.start("generate", lambda job: None)
    assert busy.value.job is first and jobs.current() is first
    fragment = console.get(f"/jobs/{first.id}").text
    assert 'hx-trigger="every 1s"' in fragment and "PDFs rendered 3 of 10" in fragment
    release.set()
    wait_for(first)
    assert first.outcome == "ok" and jobs.current() is None
    done = console.get(f"/jobs/{first.id}").text
    assert "hx-trigger" not in done and "Done" in done
    second = wait_for(jobs.start("generate", lambda job: None))
    assert jobs.last("run") is first and jobs.last("generate") is second and jobs.get(second.id) is second


def test_a_jobs_refusal_and_bug_are_its_outcome_in_the_clis_words(console):
    jobs = console.app.state.console.jobs

    def refused(job):
        raise Refused("The output folder holds no ledger.")

    def broken(job):
        raise KeyError("a bug")

    assert wait_for(jobs.start("run", refused)).message == "The output folder holds no ledger."
    assert jobs.last("run").outcome == "refused"
    failed = wait_for(jobs.start("run", broken))
    log = console.app.state.console.output / "billing-batch-error.log"
    assert failed.outcome == "failed" and f"logged to {log}" in failed.message
    assert "KeyError" in log.read_text()
    page = console.get(f"/jobs/{failed.id}").text
    assert "Failed" in page and "Traceback" not in page


# --- the state every page works on --------------------------------------------------------------------------

def test_the_options_are_the_clis_for_the_workspace(console):
    state = console.app.state.console
    options = state.options()
    assert options.input == state.inbox and options.output == state.output
    assert options.ledger_path == state.output / "ledger.sqlite" and options.jobs == max(1, os.cpu_count() or 1)
    assert state.options(allow_catch_up=True).allow_catch_up


def test_the_pages_speak_the_settings_locale(console):
    import openpyxl

    from billing_batch.console.views import ENV

    state = console.app.state.console
    assert state.locale() == "en_US"
    book = openpyxl.load_workbook(state.inbox / "billing.xlsx")
    sheet = book["Settings"]
    row = next(r for r in sheet.iter_rows() if r[0].value == "Locale")
    row[1].value = "de-DE"
    book.save(state.inbox / "billing.xlsx")
    assert state.locale() == "de_DE"
    shown = ENV.from_string("{{ 1234.5|money('EUR') }} {{ d|day }}").render(locale=state.locale(), d=__import__(
        "datetime").date(2026, 10, 1))
    assert shown == "1.234,50\xa0€ 01.10.2026"


# --- billing-batch serve ------------------------------------------------------------------------------------

def start_serve(folder: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DISPLAY", None)
    return subprocess.Popen([str(VENV_BIN / "billing-batch"), "serve", str(folder), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def test_serve_prints_the_address_once_listening_and_stops_on_ctrl_c(tmp_path):
    folder = workspace(tmp_path / "ws")
    process = start_serve(folder, "--no-browser", "--port", "0")
    try:
        line = process.stdout.readline().strip()  # printed only once the socket listens: no retry below
        url = urlsplit(line)
        assert url.scheme == "http" and url.hostname == "127.0.0.1" and url.query.startswith("token=")
        connection = http.client.HTTPConnection("127.0.0.1", url.port, timeout=10)
        connection.request("GET", f"/?{url.query}")
        answer = connection.getresponse()
        assert answer.status == 303 and answer.getheader("Location") == "/"
        cookie = answer.getheader("Set-Cookie").split(";")[0]
        answer.read()
        connection.request("GET", "/static/console.css", headers={"Cookie": cookie})
        answer = connection.getresponse()
        assert answer.status == 200 and answer.getheader("Content-Security-Policy")
        answer.read()
        connection.request("GET", "/static/console.css")  # no cookie
        assert connection.getresponse().status == 403
        connection.close()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
        assert process.returncode == 0, err
        assert "Traceback" not in err and "stopped" in err
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::"])
def test_serve_refuses_a_host_other_than_loopback_without_behind_proxy(tmp_path, host):
    process = start_serve(workspace(tmp_path / "ws"), "--no-browser", "--host", host)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 2
    assert "--behind-proxy" in out and "Nothing was started" in out and "http://" not in out


def test_serve_refuses_a_folder_that_does_not_exist(tmp_path):
    process = start_serve(tmp_path / "missing", "--no-browser")
    out, _ = process.communicate(timeout=30)
    assert process.returncode == 2 and "does not exist" in out


def test_the_version_does_not_load_the_console():
    code = ("import sys\nfrom billing_batch.cli import main\ntry:\n    main(['--version'])\n"
            "except SystemExit:\n    pass\n"
            "assert not {'starlette', 'uvicorn', 'billing_batch.console'} & set(sys.modules), sys.modules.keys()\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
