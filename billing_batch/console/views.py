"""The console's pages as HTML: Jinja2 templates (templates/, every page extending base.html) rendered in the
workbook's language, amounts formatted as on the invoice.

    from billing_batch.console.views import render
    return render(request, "home.html", problems=report.problems)

Every template gets: request, console, csrf (the token), locale, nav (the menu), running (the job that runs, or
None); the globals csrf_input() (a form's hidden CSRF field), _(), gettext() and ngettext() (Settings' Locale, the
invoices' catalogs), and say(text) for a text made in Python (words.py: an N_() word or a Text message, said in
the locale; any other str shown as it is); the filters money(amount, currency), day(date) and number(value)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse

from billing_batch import i18n
from billing_batch.console import words
from billing_batch.i18n import N_

TEMPLATES = Path(__file__).parent / "templates"
NAV = (("/", N_("Home")), ("/month", N_("This month")), ("/review", N_("Review")), ("/generate", N_("Generate")),
       ("/schedules", N_("Schedules")), ("/ledger", N_("Ledger check")))


@lru_cache(maxsize=32)
def _locale(name: str) -> Locale:
    try:
        return i18n.parse(name or "en_US")
    except ValueError:
        return Locale.parse("en_US")


@jinja2.pass_context
def money(context: jinja2.runtime.Context, amount: Decimal | int | None, currency: str) -> str:
    """An amount as the invoice prints it (babel's format_currency in the Settings' Locale)."""
    if amount is None or amount == "":
        return ""
    return format_currency(amount, currency, locale=_locale(context.get("locale", "en_US")))


@jinja2.pass_context
def day(context: jinja2.runtime.Context, value: date | None) -> str:
    """A date as the invoice prints it (babel's medium format: Oct 1, 2026; 01.10.2026)."""
    if value is None or value == "":
        return ""
    return format_date(value, format="medium", locale=_locale(context.get("locale", "en_US")))


@jinja2.pass_context
def number(context: jinja2.runtime.Context, value: Decimal | int | None) -> str:
    """A count or quantity as the locale writes it, every digit kept."""
    if value is None or value == "":
        return ""
    return format_decimal(value, locale=_locale(context.get("locale", "en_US")), decimal_quantization=False)


@jinja2.pass_context
def say(context: jinja2.runtime.Context, text) -> str:
    """A text made in Python (a job's message, a refusal, a word of the model) in the page's locale (words.say)."""
    return words.say(text, context.get("locale", words.SOURCE))


@jinja2.pass_context
def csrf_input(context: jinja2.runtime.Context) -> Markup:
    """The hidden field every form that POSTs carries (security.py checks it)."""
    return Markup('<input type="hidden" name="csrf" value="{}">').format(escape(context.get("csrf", "")))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    i18n.install(env)  # _(), gettext(), ngettext() and {% trans %}, in the render's `locale`
    env.filters.update(money=money, day=day, number=number)
    env.globals.update(csrf_input=csrf_input, say=say, nav=NAV)
    return env


ENV = _environment()


def render(request: Request, template: str, status: int = 200, **context) -> HTMLResponse:
    """A page (or an htmx fragment) of the console. context["locale"], when given, overrides the inbox's."""
    console = request.app.state.console
    values = {"request": request, "console": console, "csrf": console.csrf, "running": console.jobs.current(),
              "path": request.url.path, **context}
    values.setdefault("locale", console.locale())
    values.setdefault("lang", _locale(values["locale"]).language)
    return HTMLResponse(ENV.get_template(template).render(values), status_code=status)


def refusal(status: int, title: str, message: str, locale: str = "en_US") -> HTMLResponse:
    """A page that refuses a request (security.py, a missing page, a bug): plain words, no menu, nothing the
    request was not allowed to see. In English unless a locale is given: the guard refuses before it knows the
    request may read the inbox (whose Settings give the locale); a page refused once it knows is in its locale."""
    page = ENV.get_template("refused.html").render(title=title, message=message, status=status, locale=locale,
                                                  lang=_locale(locale).language)
    return HTMLResponse(page, status_code=status)
