"""Invoices and emails in the customer's language: gettext catalogs, compiled by Babel.

The texts are English in the code (`N_` marks them for `pybabel extract`) and in the templates
(`_()` and `{% trans %}`); billing_batch/locale/<lang>/LC_MESSAGES/billing_batch.po translates them.
How to add a string or a language: docs/translations.md. Country names as the six languages write them
are read here too (Babel's territories).
"""
from __future__ import annotations

import gettext
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import jinja2
from babel import Locale, UnknownLocaleError

DOMAIN = "billing_batch"
FOLDER = Path(__file__).parent / "locale"
SOURCE_LANGUAGE = "en"  # the msgids


@lru_cache(maxsize=1)
def _countries() -> dict[str, str]:
    """Country names in the six languages of the invoices, and the codes themselves -> ISO 3166 code."""
    names: dict[str, str] = {}
    for language in ("en", "de", "fr", "nl", "es", "it"):
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha():
                names.setdefault(name.casefold(), code)
                names[code.casefold()] = code
    return names


def country_code(typed: str) -> str:
    """A Country cell as its ISO 3166 code (Germany, Deutschland, de: DE); "" when it names no country."""
    return _countries().get(" ".join(typed.split()).casefold(), "")


def N_(message: str) -> str:
    """Marks a text for translation where it is defined; it is translated where it is shown."""
    return message


def parse(name: str) -> Locale:
    """A Babel locale from a code such as de_DE, de-DE, fr_be or de. Raises ValueError when unknown."""
    try:
        return Locale.parse(name.strip().replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError) as exc:
        raise ValueError(name) from exc


@lru_cache(maxsize=32)
def babel_locale(name: str) -> Locale:
    """The Babel locale to format in: name as parse reads it, en_US when blank or unknown."""
    try:
        return Locale.parse((name or "en_US").replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        return Locale.parse("en_US")


@lru_cache(maxsize=64)
def translations(locale: str) -> gettext.NullTranslations:
    """The catalog for a locale: de_DE falls back on de, and a language without a catalog on the
    English texts themselves."""
    try:
        parsed = parse(locale)
    except ValueError:
        return gettext.NullTranslations()
    names = [str(parsed), parsed.language]
    return gettext.translation(DOMAIN, FOLDER, languages=names, fallback=True)


def gettext_for(locale: str):
    return translations(locale).gettext


def labels(source: Mapping[str, str], locale: str) -> dict[str, str]:
    """A table of English texts (such as invoice_view.LABELS), translated for the locale."""
    translate = gettext_for(locale)
    return {key: translate(text) for key, text in source.items()}


@jinja2.pass_context
def _template_gettext(context: jinja2.runtime.Context, message: str) -> str:
    return gettext_for(context.get("locale", SOURCE_LANGUAGE))(message)


@jinja2.pass_context
def _template_ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    return translations(context.get("locale", SOURCE_LANGUAGE)).ngettext(singular, plural, n)


def install(env: jinja2.Environment) -> jinja2.Environment:
    """Give an environment `_()`, `gettext()` and `{% trans %}`, translating for the `locale`
    value each render is given: one environment (and its parsed templates) serves every language."""
    env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True  # a {% trans %} block's line breaks are not part of its text
    env.install_gettext_callables(_template_gettext, _template_ngettext, newstyle=True)
    return env


def extract(fileobj, keywords, comment_tags, options):
    """The `pybabel extract` method for the package's Python files (babel.cfg): the usual N_() and
    _() calls, and every value of a module-level LABELS table, so that a label added there is
    extracted without marking it."""
    import ast

    from babel.messages.extract import extract_python

    source = fileobj.read()
    fileobj.seek(0)
    yield from extract_python(fileobj, keywords, comment_tags, options)
    for node in ast.parse(source).body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "LABELS" for t in node.targets)):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    yield value.lineno, None, value.value, []
