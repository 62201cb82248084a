"""The Settings sheet: one key per row, read into Settings with the defaults of a blank value.
A bad setting is reported on its own cell and its default used, so the other sheets can still be checked."""
from __future__ import annotations

import re
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from babel import Locale, UnknownLocaleError

from billing_batch.engine import tax
from billing_batch.errors import Problem, problem
from billing_batch.i18n import country_code
from billing_batch.inputs import einvoice_terms
from billing_batch.inputs.logo import logo_trouble
from billing_batch.inputs.validate.cells import (
    CURRENCY_HINTS,
    ERROR_VALUES,
    RowReader,
    choice_key,
    einvoice_format,
    to_decimal,
)
from billing_batch.inputs.validate.usage import group_by
from billing_batch.inputs.workbook import RawBook, Row, normalise
from billing_batch.model import AdjustmentInvoices, MidTermChanges, Settings, Source, UsageLines
from billing_batch.money import KNOWN_CURRENCIES

PREFIX = re.compile(r"[A-Za-z0-9_-]{0,20}")


def settings_source(book: RawBook) -> Source:
    """The Settings sheet, for a problem with a setting that is missing."""
    rows = book.sheets["Settings"]
    return Source(rows[0].sheet.file if rows else (book.files[0].name if book.files else ""), "Settings")


def settings_folder(book: RawBook) -> Path:
    """The folder of the workbook holding the Settings sheet: the logo and templates are found from it."""
    rows = book.sheets["Settings"]
    named = [p for p in book.files if rows and p.name == rows[0].sheet.file]
    return (named or book.files or [Path(".")])[0].parent


def read_settings(rows: list[Row], problems: list[Problem], folder: Path = Path("."),
                  usage_columns: dict[str, str] | None = None) -> Settings:
    values: dict[str, Row] = {}
    for row in rows:
        key = normalise(row.value("Key"))
        if not key:
            continue
        name = " ".join(str(row.value("Key")).split())
        if key in values:
            problems.append(problem(
                "BB201", row["Key"].source, f"The setting {name} is given twice, here and on row "
                f"{values[key].number}.", value=row.value("Key"), hint="keep only one of the rows."))
        values[key] = row
        value = row.value("Value")
        if isinstance(value, str) and value.strip().upper() in ERROR_VALUES:
            problems.append(problem(
                "BB201", row["Value"].source, f"The {name} cell shows the Excel error {value.strip()}.", value=value,
                hint="type the value, or correct the formula so that the cell shows one."))

    def text(key: str, default: str = "") -> str:
        row = values.get(normalise(key))
        if row is None or row.value("Value") is None or not str(row.value("Value")).strip():
            return default
        return RowReader(row, []).text("Value")

    def invalid(key: str, message: str, hint: str) -> None:
        cell = values[normalise(key)]["Value"]
        problems.append(problem("BB201", cell.source, message, value=cell.value, hint=hint))

    settings = Settings(
        company_name=text("Company Name"),
        company_address=text("Company Address"),
        company_email=text("Company Email"),
        tax_id=text("Tax ID"),
        tax_id_label=text("Tax ID Label"),
        bank_details=text("Bank Details"),
        tax_rounding=text("Tax Rounding", tax.PER_GROUP),
        invoice_prefix=text("Invoice Prefix", "INV-"),
        credit_note_prefix=text("Credit Note Prefix", "CN-"),
        default_currency=text("Default Currency", "USD").upper(),
        locale=text("Locale", "en_US").replace("-", "_"),  # en-US as well as en_US
        smtp_host=text("SMTP Host"),
        smtp_security=text("SMTP Security", "STARTTLS"),
        smtp_user=text("SMTP User"),
        smtp_from=text("SMTP From"),
        creditor_iban=text("Creditor IBAN"),
        creditor_bic=text("Creditor BIC"),
        creditor_id=text("Creditor ID"),
        company_street=text("Company Street"),
        company_city=text("Company City"),
        company_postal_code=text("Company Postal Code"),
        company_state=text("Company State"),
        registration_id=text("Company Registration ID"),
        electronic_address=text("Electronic Address"),
        contact_name=text("Contact Name"),
        contact_phone=text("Contact Phone"),
        contact_email=text("Contact Email"),
    )
    def whole(key: str, low: int, high: int | None, message: str, hint: str) -> int | None:
        """A whole-number setting from low to high; None when blank or reported."""
        if not text(key):
            return None
        number = to_decimal(values[normalise(key)].value("Value"))
        if number is None or number != number.to_integral_value() or number < low or high and number > high:
            invalid(key, message, hint)
            return None
        return int(number)

    if (port := whole("SMTP Port", 1, 65535, "The SMTP Port is not a port number.",
                      "use a whole number such as 587, or leave it blank.")) is not None:
        settings = replace(settings, smtp_port=port)
    if (limit := whole("Catch-Up Limit", 1, None, "The Catch-Up Limit is not a whole number of invoices of at least 1.",
                       "type the most invoices one run may issue for one contract, such as 3, or leave it blank.")):
        settings = replace(settings, catch_up_limit=limit)
    if (keep := whole("Ledger Backups", 1, 1000, "Ledger Backups is not a number of backups to keep.",
                      "use a whole number from 1 to 1000, such as 12, or leave it blank for 12.")):
        settings = replace(settings, ledger_backups=keep)

    def fraction(key: str, attribute: str, hint: str, low: Decimal = Decimal(0)) -> None:
        """A percentage setting, such as 25% or 0.25."""
        nonlocal settings
        row = values.get(normalise(key))
        if row is None or row.value("Value") in (None, ""):
            return
        reader = RowReader(row, [])
        rate = reader.fraction("Value", low)
        if reader.ok:
            settings = replace(settings, **{attribute: rate})
        else:
            invalid(key, f"The {key} is not a percentage.", hint)

    fraction("Review Change Threshold", "review_change_threshold", "type a percentage such as 25%.")
    fraction("Usage Tolerance", "usage_tolerance", "type a percentage of a tenant's monthly usage, such as 1%.")
    fraction("Licence Markup", "licence_markup", "type the share added to Microsoft's cost of a licence, such as 15%.",
             Decimal(-1))
    if text("VAT ID"):
        vat_id, why = tax.vat_id_problem(text("VAT ID"))
        if why:
            invalid("VAT ID", f"The VAT ID {text('VAT ID')} is not valid: {why}.",
                    "copy your VAT ID again from your VAT registration, with its country prefix, such as BE0477472701.")
        else:
            settings = replace(settings, vat_id=vat_id)
    rounding = {choice_key(r): r for r in tax.ROUNDINGS}.get(choice_key(settings.tax_rounding))
    if rounding is None:
        invalid("Tax Rounding", f"The Tax Rounding {settings.tax_rounding} is not one we know.",
                f"use {' or '.join(tax.ROUNDINGS)}, or leave it blank for {tax.PER_GROUP}.")
    settings = replace(settings, tax_rounding=rounding or tax.PER_GROUP)
    settings = _usage_settings(settings, text, invalid, usage_columns or {})
    settings = _adjustment_settings(settings, text, invalid)
    settings = _einvoice_settings(settings, text, invalid)
    if not PREFIX.fullmatch(settings.invoice_prefix):
        invalid("Invoice Prefix", "The Invoice Prefix may hold only letters, digits, - and _.",
                "use at most 20 letters, digits, - or _, such as INV-.")
    if not PREFIX.fullmatch(settings.credit_note_prefix):
        invalid("Credit Note Prefix", "The Credit Note Prefix may hold only letters, digits, - and _.",
                "use at most 20 letters, digits, - or _, such as CN-.")
    elif settings.credit_note_prefix.casefold() == settings.invoice_prefix.casefold():
        # the two series would print the same numbers: INV-000001 the invoice and the credit note
        invalid("Credit Note Prefix", "The Credit Note Prefix is the Invoice Prefix, so a credit note and an "
                "invoice would have the same number.", "use a prefix of its own, such as CN-.")
    if settings.default_currency not in KNOWN_CURRENCIES:
        hint = CURRENCY_HINTS.get(settings.default_currency.replace(" ", ""))
        invalid("Default Currency", f"The Default Currency {settings.default_currency} is not a currency code"
                + (f"; did you mean {hint}?" if hint else "."), "use a three-letter code such as USD or EUR.")
    try:
        Locale.parse(settings.locale)
    except (ValueError, TypeError, UnknownLocaleError):
        invalid("Locale", f"The Locale {settings.locale} is not one we know.",
                "use a code such as en_US, en_GB, de_DE or fr_FR.")
    if text("Logo"):
        logo = (folder / text("Logo")).resolve()
        trouble = logo_trouble(logo)
        if trouble:
            invalid("Logo", trouble, "name a PNG, JPEG or SVG file, relative to the workbook's folder or in full.")
        else:
            settings = replace(settings, logo=logo)
    if text("Templates Folder"):
        templates = (folder / text("Templates Folder")).resolve()
        if templates.is_dir():
            settings = replace(settings, templates_folder=templates)
        else:
            invalid("Templates Folder", f"There is no folder {templates}.",
                    "name the folder holding your own templates, relative to the workbook's folder or in full.")
    return settings


def _adjustment_settings(settings: Settings, text, invalid) -> Settings:
    """Mid-Term Changes (Next Invoice or Flag Only) and Adjustment Invoices (With Next Invoice or Monthly)."""
    for key, field, choices in (("Mid-Term Changes", "mid_term_changes", MidTermChanges),
                                ("Adjustment Invoices", "adjustment_invoices", AdjustmentInvoices)):
        if typed := text(key):
            chosen = {choice_key(o.value): o for o in choices}.get(choice_key(typed))
            if chosen is None:
                names = [o.value for o in choices]
                invalid(key, f"The {key} {typed} is not one we know.",
                        f"use {' or '.join(names)}, or leave it blank for {names[0]}.")
            else:
                settings = replace(settings, **{field: chosen})
    return settings


def _usage_settings(settings: Settings, text, invalid, columns: dict[str, str]) -> Settings:
    """Usage Lines (Summary or Detail) and Usage Group By, the defaults of every contract."""
    if typed := text("Usage Lines"):
        lines = {choice_key(o.value): o for o in UsageLines}.get(choice_key(typed))
        if lines is None:
            invalid("Usage Lines", f"The Usage Lines {typed} is not one we know.", "use Summary or Detail.")
        else:
            settings = replace(settings, usage_lines=lines)
    if typed := text("Usage Group By"):
        names, unknown = group_by(typed, columns)
        if unknown:
            invalid("Usage Group By", f"The Usage Group By names {', '.join(unknown)}, which is not a column of "
                    "the Usage sheet.", f"use Usage sheet columns separated by commas, from: {', '.join(columns.values())}.")
        elif names:
            settings = replace(settings, usage_group_by=names)
    return settings


def _einvoice_settings(settings: Settings, text, invalid) -> Settings:
    """E-Invoice, the schemes of the registration ID and the electronic address, and the Company Country."""
    if typed := text("E-Invoice"):
        kind = einvoice_format(typed)
        if kind is None:
            invalid("E-Invoice", f"The E-Invoice {typed} is not a format we make.",
                    f"use {einvoice_terms.FORMATS}, or leave it blank for none.")
        settings = replace(settings, einvoice=kind)
    for key, attribute, codes, example in (
            ("Company Registration Scheme", "registration_scheme", einvoice_terms.ICD, "0204 for a German Leitweg-ID "
             "or 0208 for a Belgian enterprise number"),
            ("Electronic Address Scheme", "electronic_scheme", einvoice_terms.EAS, "EM for an email address, "
             "0208 for a Belgian enterprise number or 9930 for a German VAT ID")):
        if typed := text(key):
            if typed.upper() not in codes():
                invalid(key, f"The {key} {typed} is not a code of its list.", f"use a code such as {example}.")
            settings = replace(settings, **{attribute: typed.upper()})
    if typed := text("Company Country"):
        code = country_code(typed)
        if not code:
            invalid("Company Country", f"The Company Country {typed} is not a country we know.",
                    "type its two-letter code, such as DE, or its name, such as Germany.")
        settings = replace(settings, company_country=code)
    return settings
