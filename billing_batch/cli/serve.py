"""`billing-batch serve [FOLDER]`: the web console (billing_batch/console, docs/console.md) on 127.0.0.1.

The socket is bound and listening before the address is printed or the browser opened, so that the first request
never finds the port closed; the console (Starlette, uvicorn) is imported only here, when the command runs."""
from __future__ import annotations

import ipaddress
import os
import secrets
import signal
import socket
import sys
import webbrowser
from pathlib import Path

from billing_batch.cli import terminal
from billing_batch.cli.exits import EXIT_OK, EXIT_UNUSABLE

LOOPBACK_NAMES = {"127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "::1": "::1", "[::1]": "::1"}


def serve_command(args) -> int:
    folder: Path = args.folder
    if not folder.is_dir():
        terminal.console.print(f"The folder {folder.absolute()} does not exist. Name the folder that holds inbox/ "
                               "(or the one to start it in), or cd into it and run billing-batch serve.")
        return EXIT_UNUSABLE
    host = bind_address(args.host, args.behind_proxy)
    if host is None:
        terminal.console.print(
            f"--host {args.host} would let other machines reach the console. It serves 127.0.0.1 only, unless an "
            "authenticating proxy stands in front of it: then add --behind-proxy (docs/console.md). Nothing was "
            "started.")
        return EXIT_UNUSABLE
    try:
        listening = listen(host, args.port)
    except OSError as exc:
        terminal.console.print(f"The console cannot listen on {args.host} port {args.port}: {exc.strerror}. Leave "
                               "--port out to take a free port, or choose another one.")
        return EXIT_UNUSABLE
    port = listening.getsockname()[1]
    token = secrets.token_urlsafe(32)

    import uvicorn  # the console's own dependencies: loaded for this command only

    from billing_batch.console.app import make_app

    app = make_app(folder, token, port, proxied=args.behind_proxy)
    shown = "[::1]" if host == "::1" else "127.0.0.1"
    url = f"http://{shown}:{port}/?token={token}"
    print(url, flush=True)  # the one line a script or a person reads: the console is listening now
    print(f"The billing-batch console for {folder.resolve()} is running. Ctrl-C stops it.", file=sys.stderr,
          flush=True)
    if not args.no_browser and can_open_browser():
        webbrowser.open(url)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           timeout_graceful_shutdown=3, server_header=False))
    previous = signal.signal(signal.SIGTERM, _interrupt)  # uvicorn stops on it, then raises it again: exit 0
    try:
        server.run(sockets=[listening])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        listening.close()
    running = app.state.console.jobs.current()
    if running is not None:
        print(f"Stopped while {running.title.lower()} was at {running.stage}. What was billed is kept in the ledger; "
              "run again to finish.", file=sys.stderr)
    else:
        print("The console stopped.", file=sys.stderr)
    return EXIT_OK


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def bind_address(host: str, behind_proxy: bool) -> str | None:
    """The address to bind: loopback always; any other only behind an authenticating proxy."""
    name = host.strip().lower()
    if name in LOOPBACK_NAMES:
        return LOOPBACK_NAMES[name]
    if not behind_proxy:
        return None
    return name.strip("[]")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port (0: a free port) and already listening."""
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:  # a host name, behind a proxy
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


def can_open_browser() -> bool:
    """Whether webbrowser would open a window: on Linux without a display it would start a text browser in
    this very terminal, so the address is left for the person to open."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
                                                 or os.environ.get("BROWSER")):
        return False
    return True
