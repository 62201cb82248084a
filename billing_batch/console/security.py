"""The console's guard: an ASGI middleware in front of every page, so that only the person who started
`billing-batch serve` (holding its token) uses it, and no other web page or local program can make it act.

- The token: `/?token=...` (the printed address) is compared in constant time and exchanged for an HttpOnly,
  SameSite=Strict cookie, then redirected to the same address without the token. A request with neither a right
  token nor the cookie gets a 403 page and nothing else.
- The Host header must be 127.0.0.1:PORT, localhost:PORT or [::1]:PORT: a site whose name is made to point at
  127.0.0.1 (DNS rebinding) is refused. Behind an authenticating proxy (--behind-proxy) the Host is the proxy's.
- A request that changes something (POST) carries the CSRF token (form field `csrf` or header X-CSRF-Token) and
  comes from the console's own pages: its Origin is the console's, or Sec-Fetch-Site says same-origin. SameSite
  alone does not separate another port of 127.0.0.1, which is the same site. GET and HEAD change nothing (the
  pages' rule: every route that acts is a POST route).
- Every response carries the headers below; a request body over MAX_BODY gets 413.
Refusals are pages in plain words (views.refusal), never a stack trace; a page's bug becomes a page saying what
happened, its details in the error log as the CLI's (jobs.outcome_of)."""
from __future__ import annotations

import secrets
from urllib.parse import urlencode

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from billing_batch.console.files import MAX_UPLOAD
from billing_batch.console.views import refusal

MAX_FIELDS = 200_000  # a form's fields: a Generate form ticks a box per contract (Starlette's default: 1,000)
MAX_BODY = MAX_UPLOAD + 256 * 1024  # an upload of MAX_UPLOAD and its form around it; save_upload checks the file
SAFE_METHODS = ("GET", "HEAD")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",  # no page of another port may load ours as an image or script
}
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def cookie_name(port: int) -> str:
    """bb_session_PORT: browsers keep cookies per host, not per port, so two consoles (two workspaces) at once
    would otherwise sign each other out."""
    return f"bb_session_{port}"


def same(given: str | None, secret: str) -> bool:
    """given == secret, in constant time (bytes: compare_digest refuses non-ASCII text)."""
    return given is not None and secrets.compare_digest(given.encode("utf-8", "replace"), secret.encode())


class Guard:
    """The middleware; console is the app's state.Console (token, csrf, port, proxied)."""

    def __init__(self, app: ASGIApp, console) -> None:
        self.app, self.console = app, console

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            return await self.app(scope, receive, send)
        if scope["type"] != "http":  # no websockets
            return await send({"type": "websocket.close", "code": 1008})
        send = with_headers(send)
        request = Request(scope)
        answer = self.refuse(request)
        if answer is not None:
            return await answer(scope, receive, send)
        if request.method not in SAFE_METHODS:
            body = await read_body(receive, MAX_BODY)
            if body is None:
                return await too_large()(scope, receive, send)
            answer = await self.refuse_change(scope, body)
            if answer is not None:
                return await answer(scope, receive, send)
            receive = replay(body, receive)
        await self.app(scope, receive, send)

    def refuse(self, request: Request) -> Response | None:
        """The refusal of any request, or None; the token exchange's redirect."""
        console = self.console
        host = request.headers.get("host", "").lower()
        if not console.proxied and host not in {f"{name}:{console.port}" for name in ("127.0.0.1", "localhost",
                                                                                       "[::1]")}:
            return refusal(400, "Wrong address",
                           f"This console answers only at http://127.0.0.1:{console.port}/, the address billing-batch "
                           f"serve printed; this request was for {host or 'no address'}. Open the printed address.")
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            return too_large()
        token = request.query_params.get("token")
        if token is not None:
            if not same(token, console.token):
                return refusal(403, "Wrong token", "This address's token is not the one of this console: it may be "
                               "from an earlier start. Open the address that billing-batch serve printed this time.")
            if request.method not in SAFE_METHODS:
                return refusal(403, "Not allowed", "The token is accepted on an address opened in the browser only.")
            rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
            response.set_cookie(cookie_name(console.port), console.token, httponly=True, samesite="strict", path="/",
                                secure=request.url.scheme == "https")
            return response
        if not same(request.cookies.get(cookie_name(console.port)), console.token):
            return refusal(403, "Open the console's own address",
                           "This page needs the address billing-batch serve printed when it started (it ends in "
                           "?token=...). Open that address in this browser; it signs the browser in until the "
                           "console stops.")
        return None

    async def refuse_change(self, scope: Scope, body: bytes) -> Response | None:
        """A POST (or any method but GET and HEAD): from the console's own page, with the CSRF token."""
        request = Request(scope, replay(body, None))
        headers = request.headers
        host = headers.get("host", "").lower()
        own = {f"http://{host}"} | ({f"https://{host}"} if self.console.proxied else set())
        fetch_site, origin = headers.get("sec-fetch-site"), headers.get("origin")
        if origin == "null" and fetch_site == "same-origin":
            origin = None  # a form POST under Referrer-Policy: no-referrer: the browser hides the origin, not the site
        if (fetch_site is not None and fetch_site != "same-origin") or (origin is not None and origin not in own) \
                or (fetch_site is None and origin is None):
            return refusal(403, "Not from this console",
                           "This request did not come from one of the console's own pages (another web page, or "
                           "another program, sent it), so nothing was done. Use the console's pages to do this.")
        given = headers.get("x-csrf-token")
        if given is None and headers.get("content-type", "").split(";")[0].strip().lower() in FORMS:
            try:  # a Generate form may tick thousands of contracts: Starlette's default allows 1,000 fields
                form = await request.form(max_fields=MAX_FIELDS)
            except (HTTPException, MultiPartException) as exc:
                return refusal(400, "The form could not be read", f"{getattr(exc, 'detail', exc)}: nothing was done.")
            given = form.get("csrf") if isinstance(form.get("csrf"), str) else None
            await form.close()
        if not same(given, self.console.csrf):
            return refusal(403, "The page was out of date",
                           "The form did not carry this console's check (the page may be from an earlier start of "
                           "the console), so nothing was done. Reload the page and try again.")
        return None


def too_large() -> Response:
    return refusal(413, "Too large", f"The upload is larger than {MAX_UPLOAD // (1024 * 1024)} MB, the most the "
                   "console takes, so nothing was done. Is it the right file? A billing workbook is far smaller.")


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole request body, or None past limit bytes (the rest is not read)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay(body: bytes, then: Receive | None) -> Receive:
    """A receive that gives the body already read, then hands over to the real one (which tells of a
    disconnect: a streaming response listens for it)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then() if then is not None else {"type": "http.disconnect"}

    return receive


def with_headers(send: Send) -> Send:
    """send, adding HEADERS to the response (a response's own Content-Security-Policy kept: output/'s pages)."""
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in HEADERS.items():
                if name == "Content-Security-Policy" and name in headers:
                    continue
                headers[name] = value
        await send(message)

    return sending
