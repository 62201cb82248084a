"""The company's own look: a templates folder whose files replace the default ones one by one,
and a logo. `Look` is the one value passed wherever a templates folder used to be; the template
trial (documents/template_trial.py) proves a custom look renders before anything is billed."""
from __future__ import annotations

import base64
import shutil
from dataclasses import dataclass
from pathlib import Path

import jinja2

from billing_batch.inputs.logo import LOGO_TYPES
from billing_batch.model import DocType
from billing_batch.templates import FOLDER as DEFAULT

INVOICE, STYLESHEET = "invoice.html", "invoice.css"
SUBJECT, BODY_TEXT, BODY_HTML = "email_subject.txt", "email_body.txt", "email_body.html"
CREDIT_SUBJECT, CREDIT_TEXT, CREDIT_HTML = "credit_note_subject.txt", "credit_note_body.txt", "credit_note_body.html"
EMAILS = {DocType.INVOICE: (SUBJECT, BODY_TEXT, BODY_HTML),  # each document's (subject, text body, HTML body)
          DocType.CREDIT_NOTE: (CREDIT_SUBJECT, CREDIT_TEXT, CREDIT_HTML)}
CUSTOMISABLE = (INVOICE, STYLESHEET, *EMAILS[DocType.INVOICE], *EMAILS[DocType.CREDIT_NOTE])  # the review page is always ours


@dataclass(frozen=True)
class Look:
    """Where the templates come from: each file from `custom` when it is there, else from `default`.
    Frozen and made of paths, so it is hashable: render.py caches its parsed templates by it."""

    custom: Path | None = None
    default: Path = DEFAULT
    logo: Path | None = None

    @classmethod
    def of(cls, value: Look | Path | str) -> Look:
        """A Look, resolved; a bare folder is a complete set of templates on its own."""
        look = value if isinstance(value, Look) else cls(default=Path(value))
        return cls(*(Path(p).resolve() if p is not None else None for p in (look.custom, look.default, look.logo)))

    @property
    def is_default(self) -> bool:
        return self.custom is None and self.logo is None and self.default == DEFAULT.resolve()

    @property
    def folders(self) -> tuple[Path, ...]:
        return (self.custom, self.default) if self.custom else (self.default,)

    @property
    def where(self) -> str:
        """The folders, for a message."""
        return " or ".join(map(str, self.folders))

    def find(self, name: str) -> Path | None:
        """The file used for `name`: the custom one if there is one, else the default."""
        return next((folder / name for folder in self.folders if (folder / name).is_file()), None)

    def loader(self) -> jinja2.BaseLoader:
        return jinja2.ChoiceLoader([jinja2.FileSystemLoader(folder) for folder in self.folders])

    def email_html(self, doc_type: DocType = DocType.INVOICE) -> Path | None:
        """The HTML body. A custom text body with no custom HTML body sends text only: otherwise
        customers would read the default HTML body, not the text the company wrote."""
        _, text, html = EMAILS[doc_type]
        if self.custom and (self.custom / text).is_file() and not (self.custom / html).is_file():
            return None
        return self.find(html)

    def logo_data_uri(self) -> str | None:
        if self.logo is None:
            return None
        data = base64.b64encode(self.logo.read_bytes()).decode("ascii")
        return f"data:{LOGO_TYPES[self.logo.suffix.lower()]};base64,{data}"


def export(target: Path) -> list[Path]:
    """Copy the default templates one can change into target, to start one's own from.
    Raises FileExistsError, writing nothing, when any of them is there already."""
    target = Path(target)
    there = [target / name for name in CUSTOMISABLE if (target / name).exists()]
    if there:
        raise FileExistsError(", ".join(str(p) for p in there))
    target.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copyfile(DEFAULT / name, target / name)) for name in CUSTOMISABLE]
