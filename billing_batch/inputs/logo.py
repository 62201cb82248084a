"""The logo named in Settings, checked when the input is: a wrong file is a Settings problem before
anything is billed, not a failure while the invoices render."""
from __future__ import annotations

from pathlib import Path

LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".svg": "image/svg+xml"}


def logo_trouble(path: Path) -> str | None:
    """Why this file cannot be the logo, or None when it is a PNG, JPEG or SVG file."""
    if path.suffix.lower() not in LOGO_TYPES:
        return f"The logo {path.name} is not a PNG, JPEG or SVG file."
    try:
        head = path.read_bytes()[:4096]
    except FileNotFoundError:
        return f"There is no logo file {path}."
    except OSError as exc:
        return f"The logo file {path} cannot be read ({exc.strerror or exc})."
    kind = path.suffix.lower()
    looks_right = (head.startswith(b"\x89PNG\r\n\x1a\n") if kind == ".png" else
                   head.startswith(b"\xff\xd8\xff") if kind in (".jpg", ".jpeg") else b"<svg" in head)
    return None if looks_right else f"The logo {path.name} is not a {kind[1:].upper()} image inside."
