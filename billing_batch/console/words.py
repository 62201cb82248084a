"""The console's texts made in Python, said in the Settings' Locale when a page shows them.

A fixed word (a job's title or stage, an outcome, a link's label, a value of the model) is an `N_()` text: the
page shows it with `_(word)` or `say(word)`. A message with values is a Text: a str holding the English text (what
the tests, the logs and the comparisons see), which remembers its msgid and values, so that the page says it in
its language with `say(message)`:

    job.message = Text(N_("Not credited: %(refusal)s"), refusal=refusal)
    job.message = ngettext("%(n)s contract set aside.", "%(n)s contracts set aside.", n, n=n)
    job.message = Text.join([first, second], " ")

`ngettext` here only marks the two forms for `pybabel extract` (as `N_` marks one) and makes the Text; the
catalog's plural forms choose at display. A value that is itself a Text (or a word wrapped as Text(word)) is said
too; any other str (a file name, an invoice number, a message of the CLI's) is shown as it is; a whole number and a
date are written as the locale writes them (a date in English as 2026-10-31, as the CLI words it).
docs/translations.md says how to add a text."""
from __future__ import annotations

import gettext as _gettext
from datetime import date
from typing import Self

from babel.dates import format_date
from babel.numbers import format_decimal

from billing_batch import i18n
from billing_batch.i18n import N_

SOURCE = "en_US"

# Values of the model and of the schedule rows that the pages show (model.py and engine/schedules.py keep them in
# English: they are data). The page translates them where it shows them: _(value) or say(value).
VALUES = {
    # model.Frequency labels
    "Monthly": N_("Monthly"), "Quarterly": N_("Quarterly"), "Semi-Annual": N_("Semi-Annual"),
    "Annual": N_("Annual"), "Triennial": N_("Triennial"),
    # the line groups of a preview (cli/terminal.line_group: model.LineKind values, recurring split in two)
    "Full cycle": N_("Full cycle"), "Prorated": N_("Prorated"), "One-Time": N_("One-Time"), "Usage": N_("Usage"),
    "Adjustment": N_("Adjustment"), "Licence": N_("Licence"),
    # model.InvoiceStatus and model.RunType values
    "Issued": N_("Issued"), "Replaced": N_("Replaced"), "Credited": N_("Credited"),
    "Automatic": N_("Automatic"), "Manual": N_("Manual"),
    # a schedule row's status and reason (engine/schedules.py)
    "Active": N_("Active"), "Inactive": N_("Inactive"),
    "Pending": N_("Pending"), "Error": N_("Error"), "Invoiced": N_("Invoiced"), "Billed": N_("Billed"),
    "Nothing to bill": N_("Nothing to bill"), "Billed before billing_batch": N_("Billed before billing_batch"),
}


def _where(locale: str):
    try:
        return i18n.parse(locale or SOURCE)
    except ValueError:
        return i18n.parse(SOURCE)


def _value(value, translations: _gettext.NullTranslations, locale: str):
    """A value as the locale writes it: a Text said, a whole number with the locale's separators, a date as the
    locale writes it (in English as 2026-10-31, as the CLI's messages give it)."""
    if isinstance(value, Text):
        return value.said(translations, locale)
    if isinstance(value, int) and not isinstance(value, bool):
        return format_decimal(value, locale=_where(locale))
    if isinstance(value, date):
        where = _where(locale)
        return value.isoformat() if where.language == "en" else format_date(value, "medium", locale=where)
    return value


def _values(values: dict, translations: _gettext.NullTranslations, locale: str) -> dict:
    return {key: _value(value, translations, locale) for key, value in values.items()}


class Text(str):
    """An English text (the str itself) that the pages say in their language (say())."""

    msgid: str
    plural: str | None
    n: int | None
    values: dict
    parts: tuple | None
    sep: str

    def __new__(cls, msgid: str, plural: str | None = None, n: int | None = None, /, **values) -> Self:
        english = plural if plural is not None and n != 1 else msgid
        self = super().__new__(cls, english % _values(values, _gettext.NullTranslations(), SOURCE) if values
                               else english)
        self.msgid, self.plural, self.n, self.values, self.parts, self.sep = msgid, plural, n, values, None, ""
        return self

    @classmethod
    def join(cls, parts, sep: str = "") -> Self:
        """The parts (Texts, words or plain strs) one after the other, each said in its turn."""
        parts = tuple(part for part in parts if part)
        self = super().__new__(cls, sep.join(parts))
        self.msgid, self.plural, self.n, self.values, self.parts, self.sep = str(self), None, None, {}, parts, sep
        return self

    def said(self, translations: _gettext.NullTranslations, locale: str) -> str:
        if self.parts is not None:
            return self.sep.join(say(part, locale, translations) for part in self.parts)
        if self.plural is not None:
            template = translations.ngettext(self.msgid, self.plural, self.n)
        else:
            template = translations.gettext(self.msgid)
        return template % _values(self.values, translations, locale) if self.values else template


def ngettext(singular: str, plural: str, n: int, /, **values) -> Text:
    """Marks a text with plural forms for extraction, as N_ marks one: the English form for n, said in the page's
    language (its catalog's plural forms) when shown."""
    return Text(singular, plural, n, **values)


def say(text, locale: str, translations: _gettext.NullTranslations | None = None):
    """A text of the Python code in the locale's words: a Text with its values; a word (an N_() text) translated; a
    str that is no msgid as it is. None and other values are shown as they are."""
    if not isinstance(text, str):
        return "" if text is None else text
    translations = translations or i18n.translations(locale)
    if isinstance(text, Text):
        return text.said(translations, locale)
    return translations.gettext(text) if text else text
