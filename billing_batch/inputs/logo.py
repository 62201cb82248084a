"""The logo named in Settings, checked when the input is: a wrong file is a Settings problem before
anything is billed, not a failure while the invoices render, nor a logo silently missing from them."""
from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


def logo_trouble(path: Path) -> str | None:
    """Why this file cannot be the logo, or None when it is a PNG, JPEG or SVG file."""
    if path.suffix.lower() not in LOGO_TYPES:
        return f"The logo {path.name} is not a PNG, JPEG or SVG file."
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return f"There is no logo file {path}."
    except OSError as exc:
        return f"The logo file {path} cannot be read ({exc.strerror or exc})."
    kind = path.suffix.lower()
    if kind == ".svg":
        return svg_trouble(path, data)
    looks_right = data.startswith(b"\x89PNG\r\n\x1a\n") if kind == ".png" else data.startswith(b"\xff\xd8\xff")
    return None if looks_right else f"The logo {path.name} is not a {kind[1:].upper()} image inside."


def svg_trouble(path: Path, data: bytes) -> str | None:
    """An SVG the invoices would draw: parsed as WeasyPrint parses it, since one it cannot parse is
    dropped from every PDF without a word. A DOCTYPE is refused outright, as the workbook's is
    (inputs/workbook.py): it is never needed, and its entities are how a drawing loads other files
    or blows up in memory; whether it draws then depends on the XML parser's version."""
    if b"<svg" not in data:
        return f"The logo {path.name} is not a SVG image inside."
    if b"<!DOCTYPE" in data:
        line = data[:data.index(b"<!DOCTYPE")].count(b"\n") + 1
        return (f"The logo {path.name} has a DOCTYPE on line {line}, which can leave the logo out of every invoice "
                "without a word. Delete the DOCTYPE (from <!DOCTYPE to its closing >) in a text editor and save, "
                "or use a PNG logo.")
    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as exc:
        return (f"The logo {path.name} is not a well-formed SVG file (line {exc.position[0]}): the invoices "
                "would show no logo. Save it again from your drawing program as plain SVG, or use a PNG logo.")
    if root.tag.rpartition("}")[2] != "svg":
        return f"The logo {path.name} is not a SVG image inside."
    return None
