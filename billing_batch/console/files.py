"""Files in and out of the console: the output folder and the package's static files served only inside
their folder, and an upload checked before it replaces anything in inbox/."""
from __future__ import annotations

import codecs
import mimetypes
import os
import secrets
import shutil
import zipfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from billing_batch.console.words import Text, say
from billing_batch.i18n import N_

MAX_UPLOAD = 50 * 1024 * 1024  # bytes: a workbook or CSV of the largest input the CLI reads is far smaller
SUFFIXES = (".xlsx", ".csv")
PREVIOUS = ".previous"  # inbox/.previous/<name>.<timestamp>: each replaced file, kept (hidden: not read as input)
STATIC = Path(__file__).parent / "static"
CHUNK = 1 << 20
# The program's own HTML in output/ (the review pages) holds its style and script inline and loads nothing: it is
# served under its own policy, which allows inline code but no request of any kind (docs/console.md).
OUTPUT_HTML_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; "
                      "form-action 'none'; base-uri 'none'; frame-ancestors 'none'")
SHOWN_INLINE = {".pdf", ".html", ".htm", ".txt", ".png", ".svg", ".json", ".xml"}  # others are downloaded


def safe_path(root: Path, relative: str) -> Path | None:
    """root/relative when it stays inside root: None for an absolute path, a drive, a `..`, a NUL, a hidden name
    or a path that resolves (through a symlink) outside root."""
    if not relative or "\0" in relative or "\\" in relative:
        return None
    if (PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).drive
            or any(not part or part.startswith(".") for part in relative.split("/"))):  # "", ".", "..", hidden
        return None
    base = root.resolve()
    try:
        target = (base / relative).resolve()
    except (OSError, RuntimeError):  # a symlink loop
        return None
    return target if target.is_relative_to(base) and target != base else None


NO_SUCH_FILE = N_("No such file.")


def _serve(root: Path, relative: str, named: bool = True, locale=lambda: "en_US") -> Response:
    """locale: the page's locale (called only when the file is missing, to say so)."""
    path = safe_path(root, relative)
    if path is None or not path.is_file():
        return Response(say(NO_SUCH_FILE, locale()), status_code=404, media_type="text/plain")
    suffix = path.suffix.lower()
    media = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if not named:  # the package's script and style
        return FileResponse(path, media_type=media)
    extra = {"Content-Security-Policy": OUTPUT_HTML_POLICY} if suffix in (".html", ".htm") else {}
    return FileResponse(path, media_type=media, headers=extra,
                        content_disposition_type="inline" if suffix in SHOWN_INLINE else "attachment",
                        filename=path.name)


async def output_file(request: Request) -> Response:
    """GET /output/{path:path}: a file of the output folder (PDFs, the review pages, the schedule workbook)."""
    console = request.app.state.console
    return _serve(console.output, request.path_params["path"], locale=console.locale)


async def static_file(request: Request) -> Response:
    """GET /static/{path}: the package's own script and style."""
    return _serve(STATIC, request.path_params["path"], named=False)


class UploadRefused(Exception):
    """The upload was not taken; the message says why and what to do (text: as the page says it). inbox/ is as it
    was."""

    def __init__(self, text: Text):
        self.text = text
        super().__init__(text)


@dataclass(frozen=True)
class Saved:
    path: Path  # inbox/<name>
    previous: Path | None  # inbox/.previous/<name>.<timestamp>: the file it replaced, if any


def upload_name(filename: str) -> str:
    """The file name to keep in inbox/: the last part of what the browser sent, checked."""
    name = " ".join(PureWindowsPath(filename or "").name.split())  # C:\fakepath\x.xlsx and a/b.xlsx alike
    if not name or name.startswith((".", "~$")) or any(ord(c) < 32 for c in name) or len(name) > 200:
        raise UploadRefused(Text(N_("The file name %(name)s cannot be used: name the file as in Explorer or Finder, "
                                    "for example billing.xlsx, and upload it again."), name=repr(filename)))
    if Path(name).suffix.lower() not in SUFFIXES:
        raise UploadRefused(Text(N_("%(name)s is not a workbook or a Partner Center file: only .xlsx workbooks and "
                                    ".csv files can be uploaded. Save it as an Excel workbook (.xlsx) and upload "
                                    "that."), name=name))
    return name


def save_upload(inbox: Path, filename: str, source: bytes | BinaryIO, limit: int = MAX_UPLOAD) -> Saved:
    """Put an uploaded workbook or CSV into inbox/ under its name: written first under a name the server chooses,
    checked (its size, and that it is a workbook that opens, or a CSV that is text), and only then put in
    place; a file of the same name is kept as inbox/.previous/<name>.<timestamp>. UploadRefused otherwise,
    with inbox/ unchanged."""
    name = upload_name(filename)
    suffix = Path(name).suffix.lower()
    inbox.mkdir(parents=True, exist_ok=True)
    temporary = inbox / f".upload-{secrets.token_hex(8)}{suffix}"
    try:
        size = _write(temporary, source, limit)
        if size > limit:
            raise UploadRefused(Text(N_("%(name)s is larger than %(limit)s MB, the most the console takes. Is it the "
                                        "right file? A billing workbook is far smaller."),
                                     name=name, limit=limit // (1024 * 1024)))
        if size == 0:
            raise UploadRefused(Text(N_("%(name)s is empty. Upload the file again."), name=name))
        _check(temporary, name, suffix)
        target = inbox / name
        previous = None
        if target.exists():
            previous = inbox / PREVIOUS / f"{name}.{datetime.now():%Y%m%d-%H%M%S-%f}"
            previous.parent.mkdir(exist_ok=True)
            try:
                os.link(target, previous)  # the old file stays where it is until the new one replaces it
            except OSError:
                shutil.copy2(target, previous)
        os.replace(temporary, target)
        return Saved(target, previous)
    finally:
        temporary.unlink(missing_ok=True)


def _write(path: Path, source: bytes | BinaryIO, limit: int) -> int:
    """Write at most limit + 1 bytes; the count written."""
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as out:
        if isinstance(source, (bytes, bytearray)):
            out.write(source[: limit + 1])
            return len(source)
        while size <= limit and (chunk := source.read(CHUNK)):
            out.write(chunk)
            size += len(chunk)
    return size


def _check(path: Path, name: str, suffix: str) -> None:
    if suffix == ".xlsx":
        problem = _workbook_problem(path)
        if problem:
            raise UploadRefused(Text(N_("%(name)s is not a workbook that opens (%(problem)s). Open it in Excel, save "
                                        "it as an Excel Workbook (.xlsx), and upload it again. Nothing in the inbox "
                                        "was changed."), name=name, problem=problem))
    elif not _is_text(path):
        raise UploadRefused(Text(N_("%(name)s is not a text file, so it is not a Partner Center CSV. Download the file "
                                    "from Partner Center again and upload that. Nothing in the inbox was changed."),
                                 name=name))


def _workbook_problem(path: Path) -> str | None:
    if not zipfile.is_zipfile(path):
        return Text(N_("it is not an Excel workbook: its contents are not the zip archive an .xlsx file is"))
    try:
        from python_calamine import CalamineWorkbook

        book = CalamineWorkbook.from_path(str(path))
        if not book.sheet_names:
            return Text(N_("it has no sheet"))
    except Exception as exc:  # noqa: BLE001 - calamine's errors are its own types: any of them means it does not open
        return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return None


def _is_text(path: Path) -> bool:
    """UTF-16 with its mark, or bytes with no NUL (UTF-8, or another encoding the check names)."""
    with path.open("rb") as f:
        head = f.read(1 << 16)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    return b"\0" not in head and controls <= len(head) // 100
