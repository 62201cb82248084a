"""Turn raw rows into checked records; every problem becomes a value that says where it is.

Lenient where a person would be (spaces around IDs and choices, ISO text dates, numbers and
percentages typed as text); strict where money is at stake (ambiguous dates, non-numbers,
unknown currencies, duplicate IDs, Excel errors): those are problems, never guesses.
"""
from __future__ import annotations

import enum
import math
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.numbers import get_decimal_symbol, get_group_symbol
from openpyxl.cell.cell import ERROR_CODES

from billing_batch import einvoice_input, i18n, partner_center
from billing_batch.cycles import ONE_DAY, cycle_containing
from billing_batch.errors import Problem, problem, shown
from billing_batch.look import logo_trouble
from billing_batch.model import (
    AdjustmentInvoices,
    ChargeType,
    Contract,
    Customer,
    EInvoice,
    Frequency,
    Inputs,
    MidTermChanges,
    Policy,
    Product,
    Settings,
    Source,
    Subscription,
    Usage,
    UsageLines,
)
from billing_batch.post.charge import iban_problem
from billing_batch.money import KNOWN_CURRENCIES
from billing_batch import tax
from billing_batch.workbook import SCHEMA, RawBook, Row, normalise

EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)
# Excel's error values, including those newer than openpyxl's list (dynamic arrays, data types).
ERROR_VALUES = frozenset(ERROR_CODES) | {
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!", "#PYTHON!", "#GETTING_DATA",
}
# Year first is unambiguous (2025-1-31, 2025/01/31); a time of day after it, as systems export, is ignored.
YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
DAY_OR_MONTH_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})")
PREFIX = re.compile(r"[A-Za-z0-9_-]{0,20}")
# Beyond these a value is a typing mistake, and money arithmetic would outgrow Decimal's 28 digits.
MAX_AMOUNT = Decimal(10) ** 12  # a quantity or a unit price
MAX_LINE = Decimal(10) ** 15  # quantity x unit price
DAYS = {"Billing Offset (Days)": (-365, 365), "Payment Terms (Days)": (0, 365)}
# What people type instead of a code; a hint in the message, never used in its place.
CURRENCY_HINTS = {"US$": "USD", "USD$": "USD", "$US": "USD", "€": "EUR", "EURO": "EUR", "EUROS": "EUR", "£": "GBP"}


class NumberText:
    """How numbers typed as text are read, by the Locale setting: 1,200.50 in en_US, 1.200,50 in de_DE.
    Only that one form is read: 1,200 in de_DE could be 1.2 or 1200, so it is a problem, not a guess."""

    def __init__(self, locale: str = "en_US"):
        try:
            group, point = get_group_symbol(locale), get_decimal_symbol(locale)
        except (ValueError, UnknownLocaleError):  # the setting is reported on its own
            group, point = ",", "."
        spaces = "\u00a0\u202f "  # fr_FR groups with a narrow no-break space; people type any space
        self.groups = spaces if group in spaces or group.isspace() else group + ("’" if group == "'" else "")
        self.point = point
        g, p = f"[{re.escape(self.groups)}]", re.escape(point)
        self.pattern = re.compile(rf"[-+]?([0-9]+|[0-9]{{1,3}}({g}[0-9]{{3}})+)?({p}[0-9]+)?")

    def read(self, text: str) -> Decimal | None:
        text = text.strip()
        if not any(c in "0123456789" for c in text) or not self.pattern.fullmatch(text):
            return None
        for g in self.groups:
            text = text.replace(g, "")
        return Decimal(text.replace(self.point, "."))


EN = NumberText()


@lru_cache(maxsize=8)
def number_text(locale: str) -> NumberText:
    return NumberText(locale)


class RowReader:
    """Reads typed values from one row, recording a problem for each bad cell."""

    def __init__(self, row: Row, problems: list[Problem], contract_id: str | None = None,
                 customer_id: str | None = None, numbers: NumberText = EN):
        self.row = row
        self.problems = problems
        self.contract_id = contract_id
        self.customer_id = customer_id
        self.numbers = numbers
        self.ok = True

    def fail(self, code: str, column: str, message: str, **fix_args: str) -> None:
        self.ok = False
        cell = self.row[column]
        self.problems.append(problem(
            code, cell.source, message, value=cell.value,
            contract_id=self.contract_id, customer_id=self.customer_id, **fix_args,
        ))

    def _value(self, column: str, required: bool) -> object:
        """The cell's value; None when it is empty or shows an error (reported)."""
        value = self.row.value(column)
        if isinstance(value, str) and value.strip().upper() in ERROR_VALUES:
            self.fail("BB115", column, f"The {column} cell shows the Excel error {value.strip()}.")
            return None
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail("BB102", column, f"The {column} is empty.")
            return None
        return value

    def text(self, column: str, required: bool = False) -> str:
        value = self._value(column, required)
        if value is None:
            return ""
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # an ID typed as a number
        if isinstance(value, datetime):
            value = value.date().isoformat()
        return str(value).strip()

    def date(self, column: str, required: bool = False) -> date | None:
        value = self._value(column, required)
        if value is None:
            return None
        if isinstance(value, datetime):
            value = value.date()
        elif isinstance(value, str):
            text = value.strip()
            if m := YEAR_FIRST.fullmatch(text):
                try:
                    value = date(int(m[1]), int(m[2]), int(m[3]))
                except ValueError:
                    self.fail("BB103", column, f"The {column} {text} is not a real calendar date.")
                    return None
            else:
                m = DAY_OR_MONTH_FIRST.fullmatch(text)
                if m and int(m[1]) <= 12 and int(m[2]) <= 12 and m[1] != m[2]:
                    self.fail("BB116", column, f"The {column} {text} is text that could be read with day and "
                                               "month either way.")
                else:
                    self.fail("BB103", column, f"The {column} {text} is text in a form that is not read as a date.")
                return None
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            self.fail("BB103", column, f"The {column} is a plain number, not a date: the cell is not "
                                       "formatted as a date, or holds a number no date has.")
            return None
        if not isinstance(value, date):
            self.fail("BB103", column, f"The {column} is not a date.")
            return None
        if not EARLIEST <= value <= LATEST:
            self.fail("BB103", column, f"The {column} {value.isoformat()} is outside the years 1900 to 2199.")
            return None
        return value

    def decimal(self, column: str, required: bool = False, default: Decimal | None = None) -> Decimal | None:
        value = self._value(column, required)
        if value is None:
            return default
        amount = to_decimal(value, self.numbers)
        if amount is None:
            self.fail("BB104", column, f"The {column} is not a number.")
        return amount

    def amount(self, column: str) -> Decimal:
        """A required quantity or price: zero or more, and not absurdly large."""
        amount = self.decimal(column, required=True)
        if amount is None:
            return Decimal(0)
        if amount < 0:
            self.fail("BB109", column, f"The {column} is negative.")
        elif amount > MAX_AMOUNT:
            self.fail("BB117", column, f"The {column} is more than {MAX_AMOUNT:,}.",
                      limit=f"{MAX_AMOUNT:,}")
        return amount

    def line(self, quantity: Decimal, unit_price: Decimal) -> None:
        if max(quantity, unit_price) <= MAX_AMOUNT and quantity * unit_price > MAX_LINE:
            self.fail("BB117", "Unit Price", f"The Quantity times the Unit Price is more than "
                                             f"{MAX_LINE:,} on one line.", limit=f"{MAX_LINE:,}")

    def fraction(self, column: str) -> Decimal:
        value = self._value(column, False)
        if value is None:
            return Decimal(0)
        percent = isinstance(value, str) and value.strip().endswith("%")
        rate = to_decimal(value.strip()[:-1] if percent else value, self.numbers)
        if rate is None:
            self.fail("BB104", column, f"The {column} is not a number or a percentage.")
            return Decimal(0)
        if percent:
            rate /= 100
        if 0 <= rate <= 1:
            return rate
        typed = shown(value).strip()
        if not percent and 1 < rate <= 100:
            self.fail("BB108", column, f"The {column} {typed} is more than 1, which is 100%; for {typed} percent "
                                       f"type {typed}% or {rate / 100}.")
        else:
            self.fail("BB108", column, f"The {column} {typed} is not between 0% and 100%.")
        return Decimal(0)

    def whole(self, column: str, default: int) -> int:
        value = self._value(column, False)
        if value is None:
            return default
        number = to_decimal(value, self.numbers)
        if number is None or number != number.to_integral_value():
            self.fail("BB105", column, f"The {column} is not a whole number.")
            return default
        low, high = DAYS[column]
        if not low <= number <= high:
            side = f"below {low}" if number < low else f"above {high}"
            self.fail("BB118", column, f"The {column} {shown(value).strip()} is {side}.",
                      low=str(low), high=str(high))
            return default
        return int(number)

    def choice(self, column: str, options: type[enum.Enum], default: enum.Enum | None = None):
        labels = {choice_key(label_of(o)): o for o in options}
        value = self._value(column, default is None)
        if value is None:
            return default
        option = labels.get(choice_key(value))
        if option is None:
            choices = ", ".join(label_of(o) for o in options)
            self.fail("BB106", column, f"The {column} {shown(value).strip()} is not one we know.", choices=choices)
        return option or default


def choice_key(value: object) -> str:
    """Case, spaces and hyphens do not matter: 'semi annual' is Semi-Annual, 'one time' is One-Time."""
    return re.sub(r"[\s_-]", "", normalise(value))


def label_of(option: enum.Enum) -> str:
    return getattr(option, "label", option.value)


def to_decimal(value: object, numbers: NumberText = EN) -> Decimal | None:
    """The one conversion from a cell to a number: Decimal(str(value)) for a number cell."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (int, float)):
        return _from_number(value)
    if isinstance(value, str):
        try:
            return numbers.read(value)
        except InvalidOperation:
            return None
    return None


@lru_cache(maxsize=1 << 16, typed=True)  # typed: 12 and 12.0 are different Decimals; shared, they cost memory once
def _from_number(value: int | float) -> Decimal:
    return Decimal(str(value))


class Status(enum.Enum):
    ACTIVE = "Active"
    INACTIVE = "Inactive"


@dataclass
class Checked:
    """The validated input: records that passed, and every problem found."""

    inputs: Inputs
    problems: list[Problem] = field(default_factory=list)
    set_aside: dict[str, list[Problem]] = field(default_factory=dict)  # contract ID -> its problems
    broken_contracts: dict[str, Problem] = field(default_factory=dict)  # rows too broken to schedule
    mismatches: list[partner_center.Mismatch] = field(default_factory=list)  # Partner Center reconciliation

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]


def check(book: RawBook, usage_file: partner_center.UsageFile | None = None) -> Checked:
    """usage_file: the Partner Center files read beside the workbooks, if any."""
    problems: list[Problem] = []
    usage_file = usage_file or partner_center.UsageFile()
    columns = {**usage_columns(book), **usage_file.columns}
    settings = read_settings(book.sheets["Settings"], problems, settings_folder(book), columns)
    numbers = number_text(settings.locale)
    vat_cells: dict[str, Source] = {}
    customer_rows: dict[str, Row] = {}
    customers, customer_ids = read_customers(book.sheets["Customers"], problems, numbers, settings.vat_id, vat_cells,
                                             customer_rows)
    contract_rows: dict[str, Row] = {}
    contracts, broken = read_contracts(book.sheets["Contracts"], settings, customer_ids, problems, numbers, columns,
                                       contract_rows)
    known = {**dict.fromkeys(broken), **contracts}
    subscriptions = read_subscriptions(book.sheets["Subscriptions"], known, problems, numbers)
    usage = read_usage(book.sheets["Usage"], known, problems, numbers, columns)
    imported = partner_center.usage(usage_file, contracts, problems, settings.usage_tolerance)
    for cid, rows in imported.usage.items():
        usage[cid] = tuple(sorted((*usage.get(cid, ()), *rows), key=lambda u: (u.date, u.usage_id)))
    products, troubled = read_products(book.sheets["Products"], problems, settings.vat_id)
    problems += tax_problems(contracts, customers, subscriptions, usage, products, vat_cells)
    seller_gaps = einvoice_input.seller_gaps(settings, customers, settings_source(book))
    problems += einvoice_input.buyer_gaps(settings, customers, customer_rows, contracts, contract_rows)

    set_aside: dict[str, list[Problem]] = defaultdict(list)
    contracts_of = defaultdict(list)
    for contract_id, customer_id in broken.items():
        contracts_of[customer_id].append(contract_id)
    for contract in contracts.values():
        contracts_of[contract.customer_id].append(contract.contract_id)
    for p in problems:
        if p.contract_id:
            set_aside[p.contract_id].append(p)
        elif p.customer_id:
            for contract_id in contracts_of[p.customer_id]:
                set_aside[contract_id].append(p)
    for p, customer_ids_lacking in seller_gaps:  # the seller's terms an e-invoice format needs
        problems.append(p)
        for customer_id in customer_ids_lacking:
            for contract_id in contracts_of[customer_id]:
                set_aside[contract_id].append(p)
    for contract_id, names in products_billed(contracts, subscriptions, usage).items():
        for name in names & troubled.keys():  # a product whose tax is not known
            set_aside[contract_id] += troubled[name]
    for p in usage_file.problems:  # a file that cannot be read: the usage of every tenant's contract is unknown
        for contract in contracts.values():
            if contract.partner_center_customer_id:
                set_aside[contract.contract_id].append(p)
    problems[:0] = usage_file.problems
    broken_contracts = {cid: set_aside[cid][0] for cid in broken if cid not in contracts}
    inputs = Inputs(settings, customers, contracts, subscriptions, usage, products)
    return Checked(inputs, problems, dict(set_aside), broken_contracts, imported.mismatches)


def usage_columns(book: RawBook) -> dict[str, str]:
    """Every column of the Usage sheet, the others as first typed: normalised name -> name."""
    columns: dict[str, str] = {}
    for name in (*SCHEMA["Usage"][1], *book.other_columns.get("Usage", [])):
        columns.setdefault(normalise(name), name)
    return columns


def group_by(text: str, columns: dict[str, str]) -> tuple[tuple[str, ...], list[str]]:
    """The Usage columns a Usage Group By cell names (comma-separated), and the names that are none."""
    names = [" ".join(part.split()) for part in text.split(",") if part.strip()]
    unknown = [name for name in names if normalise(name) not in columns]
    return tuple(dict.fromkeys(columns[normalise(n)] for n in names if normalise(n) in columns)), unknown


def unique(rows: list[Row], column: str, problems: list[Problem], owner=None) -> Iterator[tuple[Row, str]]:
    """Each row with its ID, in order; a repeated ID is a problem on every row that uses it.
    Rows leave the list as they are given, so a million usage rows are not held beside their records."""
    ids = [RowReader(row, []).text(column) for row in rows]
    first: dict[str, Row] = {}
    reported = set()
    for row, row_id in zip(rows, ids):
        original = first.setdefault(row_id, row)
        if row_id and original is not row:
            owner_ids = owner(row) if owner else {}
            problems.append(problem(
                "BB110", row[column].source, f"The {column} {row_id} is used on more than one row.",
                value=row.value(column), first_row=str(original.number), **owner_ids,
            ))
            if owner and row_id not in reported:
                # the first row's record is no more trustworthy than the repeat
                reported.add(row_id)
                problems.append(problem(
                    "BB110", original[column].source, f"The {column} {row_id} is used on more than one row.",
                    value=original.value(column), first_row=str(original.number), **owner(original),
                ))
    del first
    for i, row_id in enumerate(ids):
        row, rows[i] = rows[i], None
        yield row, row_id


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

    def fraction(key: str, attribute: str, hint: str) -> None:
        """A percentage setting, such as 25% or 0.25."""
        nonlocal settings
        row = values.get(normalise(key))
        if row is None or row.value("Value") in (None, ""):
            return
        reader = RowReader(row, [])
        rate = reader.fraction("Value")
        if reader.ok:
            settings = replace(settings, **{attribute: rate})
        else:
            invalid(key, f"The {key} is not a percentage.", hint)

    fraction("Review Change Threshold", "review_change_threshold", "type a percentage such as 25%.")
    fraction("Usage Tolerance", "usage_tolerance", "type a percentage of a tenant's monthly usage, such as 1%.")
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
                    f"use {einvoice_input.FORMATS}, or leave it blank for none.")
        settings = replace(settings, einvoice=kind)
    for key, attribute, codes, example in (
            ("Company Registration Scheme", "registration_scheme", einvoice_input.ICD, "0204 for a German Leitweg-ID "
             "or 0208 for a Belgian enterprise number"),
            ("Electronic Address Scheme", "electronic_scheme", einvoice_input.EAS, "EM for an email address, "
             "0208 for a Belgian enterprise number or 9930 for a German VAT ID")):
        if typed := text(key):
            if typed.upper() not in codes():
                invalid(key, f"The {key} {typed} is not a code of its list.", f"use a code such as {example}.")
            settings = replace(settings, **{attribute: typed.upper()})
    if typed := text("Company Country"):
        code = einvoice_input.country_code(typed)
        if not code:
            invalid("Company Country", f"The Company Country {typed} is not a country we know.",
                    "type its two-letter code, such as DE, or its name, such as Germany.")
        settings = replace(settings, company_country=code)
    return settings


def einvoice_format(typed: str) -> EInvoice | None:
    """ZUGFeRD (2.x, at its EN 16931 profile) is the German name of Factur-X: the same file."""
    known = {choice_key(o.value): o for o in EInvoice} | {choice_key("ZUGFeRD"): EInvoice.FACTUR_X}
    return known.get(choice_key(typed))


def read_customers(rows, problems, numbers=EN, seller_vat_id="", vat_cells=None,
                   rows_out=None) -> tuple[dict[str, Customer], set[str]]:
    """The customers that could be read, and the ID of every customer row, readable or not.
    vat_cells, if given, gets each customer's VAT ID cell, for problems found later; rows_out each one's row."""
    customers, ids = {}, set()
    for row, customer_id in unique(rows, "Customer ID", problems, lambda r: {"customer_id": RowReader(r, []).text("Customer ID")}):
        ids.add(customer_id)
        r = RowReader(row, problems, customer_id=customer_id or None, numbers=numbers)
        r.text("Customer ID", required=True)
        customer = Customer(
            customer_id=customer_id,
            name=r.text("Name", required=True),
            email=r.text("Email"),
            address=r.text("Address"),
            city=r.text("City"),
            postal_code=r.text("Postal Code"),
            country=r.text("Country"),
            tax_rate=r.fraction("Tax Rate"),
            source=row.source,
            # read as typed: the charge post task checks IBAN, BIC and mandate when it collects
            iban=r.text("IBAN"),
            bic=r.text("BIC"),
            mandate_id=r.text("Mandate ID"),
            mandate_date=r.date("Mandate Date"),
            tax_category=tax_category(r),
            tax_exemption_reason=r.text("Tax Exemption Reason"),
            language=language(r),
            buyer_reference=r.text("Buyer Reference"),
            electronic_address=r.text("Electronic Address"),
        )
        if typed := r.text("E-Invoice"):
            kind = einvoice_format(typed)
            if kind is None:
                r.fail("BB160", "E-Invoice", f"The E-Invoice {typed} is not a format we make.")
            customer = replace(customer, einvoice=kind)
        if typed := r.text("Electronic Address Scheme"):
            if typed.upper() not in einvoice_input.EAS():
                r.fail("BB161", "Electronic Address Scheme", f"The Electronic Address Scheme {typed} is not a code "
                                                             "of the EAS list.")
            customer = replace(customer, electronic_scheme=typed.upper())
        if typed := r.text("VAT ID"):
            vat_id, why = tax.vat_id_problem(typed)
            if why:
                r.fail("BB123", "VAT ID", f"The VAT ID {typed} is not valid: {why}.")
            customer = replace(customer, vat_id=vat_id)
        if customer.tax_category in tax.NEEDS_VAT_IDS and not customer.vat_id:
            whose = "the customer's and the seller's VAT IDs" if not seller_vat_id else "the customer's VAT ID"
            r.fail("BB122", "VAT ID", f"Tax category {tax.label(customer.tax_category)} needs {whose}; customer "
                                      f"{customer_id} has none.")
        elif lacking := tax.missing(customer.tax_category, customer.tax_exemption_reason, seller_vat_id):
            code, what = lacking
            column = "Tax Category" if code == "BB122" else "Tax Exemption Reason"
            r.fail(code, column, f"Customer {customer_id}: {what}.")
        if vat_cells is not None:
            vat_cells[customer_id] = row["VAT ID"].source
        if rows_out is not None:
            rows_out.setdefault(customer_id, row)
        if customer.iban and (why := iban_problem(customer.iban)):
            # billing does not need the IBAN: report it without setting the customer aside
            problems.append(problem("BB119", row["IBAN"].source, f"{why}.", value=row.value("IBAN")))
        if r.ok and customer_id not in customers:
            customers[customer_id] = customer
    return customers, ids


def language(r: RowReader) -> str:
    """The customer's Language as a Babel locale name (de-de is de_DE), or "" when blank."""
    typed = r.text("Language")
    if not typed:
        return ""
    try:
        return str(i18n.parse(typed))
    except ValueError:
        r.fail("BB127", "Language", f"The Language {typed} is not a language we know.")
        return ""


def read_products(rows, problems, seller_vat_id="") -> tuple[dict[str, Product], dict[str, list[Problem]]]:
    """Account codes and tax by product name, and the problems of each product whose tax cannot be
    known: those set aside the contracts that bill the product (check). Account codes serve the sync
    post task only, so a problem with them sets nothing aside."""
    products, repeated, troubled, taxed = {}, set(), defaultdict(list), set()
    start = len(problems)
    for row, name in unique(rows, "Product", problems, owner=lambda r: {}):  # report both rows, use neither
        before = len(problems)
        r = RowReader(row, problems)
        r.text("Product", required=True)
        product = Product(name, r.text("Account Code"), r.text("Tax Type"), row.source,
                          tax_category=tax_category(r), tax_exemption_reason=r.text("Tax Exemption Reason"))
        if r.text("Tax Rate"):
            product = replace(product, tax_rate=r.fraction("Tax Rate"))
        if r.ok and product.tax_rate is not None and (
                product.tax_category not in ("", tax.STANDARD) and product.tax_rate
                or product.tax_category == tax.STANDARD and not product.tax_rate):
            r.fail("BB125", "Tax Rate", f"Product {name} has the tax category {product.tax_category} and a Tax Rate "
                                        f"of {format(product.tax_rate * 100, 'f').rstrip('0').rstrip('.')}%.")
        if lacking := tax.missing(product.tax_category, product.tax_exemption_reason, seller_vat_id):
            code, what = lacking
            r.fail(code, "Tax Category" if code == "BB122" else "Tax Exemption Reason", f"Product {name}: {what}.")
        if name in products:
            repeated.add(name)
        if r.ok:
            products[name] = product
        if any(RowReader(row, []).text(column) for column in ("Tax Category", "Tax Rate", "Tax Exemption Reason")):
            taxed.add(name)
            if not r.ok:
                troubled[name] += problems[before:]
    for p in problems[start:]:  # a repeated product's tax is not known either, when its rows give one
        if p.code == "BB110" and str(p.value).strip() in taxed & repeated:
            troubled[str(p.value).strip()].append(p)
    return {name: p for name, p in products.items() if name not in repeated}, dict(troubled)


def products_billed(contracts, subscriptions, usage) -> dict[str, set[str]]:
    """Contract ID -> the products its subscriptions and usage bill."""
    return {cid: {s.product for s in subscriptions.get(cid, ())} | {u.product for u in usage.get(cid, ())}
            for cid in contracts}


def tax_problems(contracts, customers, subscriptions, usage, products, vat_cells) -> list[Problem]:
    """A customer without a VAT ID billed a product whose category needs one (AE, K): once per customer."""
    found = {}
    for cid, names in products_billed(contracts, subscriptions, usage).items():
        customer = customers.get(contracts[cid].customer_id)
        if customer is None or customer.customer_id in found:
            continue
        if needing := tax.needing_customer_vat_id(customer, sorted(names), products):
            name, category = needing
            found[customer.customer_id] = problem(
                "BB122", vat_cells[customer.customer_id], f"Product {name}, billed to customer {customer.customer_id} "
                f"on contract {cid}, has the tax category {tax.label(category)}, which needs the customer's VAT ID; "
                f"customer {customer.customer_id} has none.", customer_id=customer.customer_id)
    return list(found.values())


def tax_category(r: RowReader) -> str:
    """The Tax Category typed as its code or name; "" when blank or unknown (reported)."""
    typed = r.text("Tax Category")
    if not typed:
        return ""
    code = tax.parse_category(typed)
    if code is None:
        r.fail("BB106", "Tax Category", f"The Tax Category {typed} is not one we know.", choices=tax.category_choices())
    return code or ""


def did_you_mean(typed: str, known) -> str:
    """IDs are exact, but a near miss in case is worth naming."""
    near = next((k for k in known if k.casefold() == typed.casefold()), None)
    return f"; did you mean {near}?" if near else "."


def read_contracts(rows, settings, customer_ids, problems, numbers=EN, usage_columns: dict[str, str] | None = None,
                   rows_out: dict | None = None) -> tuple[dict[str, Contract], dict[str, str]]:
    """The contracts that could be read, and the IDs (with customer) of those that could not.
    customer_ids: every ID on the Customers sheet, including customers whose row has problems.
    rows_out, if given, gets each contract's row."""
    contracts, broken = {}, {}
    tenants = defaultdict(list)  # tenant -> the active contracts' rows naming it
    for row, contract_id in unique(rows, "Contract ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        r = RowReader(row, problems, contract_id=contract_id or None, numbers=numbers)
        r.text("Contract ID", required=True)
        customer_id = r.text("Customer ID", required=True)
        # A customer whose own row has problems exists: its problems set this contract aside already.
        if customer_id and customer_id not in customer_ids:
            r.fail("BB101", "Customer ID", f"No customer has the ID {customer_id}"
                   + did_you_mean(customer_id, customer_ids))
        start = r.date("Start Date", required=True)
        end = r.date("End Date")
        if start and end and end < start:
            r.fail("BB112", "End Date", f"The contract ends on {end} but starts on {start}.")
        typed = r.text("Currency")
        currency = typed.upper() or settings.default_currency
        if typed and currency not in KNOWN_CURRENCIES:  # a bad default is the Settings sheet's problem
            hint = CURRENCY_HINTS.get(currency.replace(" ", ""))
            r.fail("BB107", "Currency", f"The Currency {typed} is not a currency code"
                   + (f"; did you mean {hint}?" if hint else "."))
        contract = Contract(
            contract_id=contract_id,
            customer_id=customer_id,
            start=start,
            end=end,
            frequency=r.choice("Billing Frequency", Frequency),
            policy=r.choice("Billing Policy", Policy, Policy.ARREARS),
            offset_days=r.whole("Billing Offset (Days)", 1),
            currency=currency,
            payment_terms_days=r.whole("Payment Terms (Days)", 30),
            discount=r.fraction("Discount"),
            active=r.choice("Status", Status, Status.ACTIVE) is Status.ACTIVE,
            source=row.source,
            cc=r.text("CC"),
            billed_through=r.date("Billed Through"),
            usage_lines=r.choice("Usage Lines", UsageLines, settings.usage_lines),
            usage_group_by=contract_group_by(r, settings, usage_columns or {}),
            purchase_order=r.text("Purchase Order"),
            partner_center_customer_id=r.text("Partner Center Customer ID"),
            usage_markup=r.fraction("Usage Markup"),
        )
        if contract.billed_through and start and contract.frequency:
            contract = replace(contract, billed_through=billed_through(r, contract))
        if not contract_id:
            continue
        if rows_out is not None:
            rows_out.setdefault(contract_id, row)
        if contract.partner_center_customer_id and contract.active:
            tenants[contract.partner_center_customer_id.lower()].append((row, contract_id))
        # a start date and frequency are enough to draw the schedule, even with other faults
        if start and contract.frequency and contract_id not in contracts and contract_id not in broken:
            contracts[contract_id] = contract
        else:
            broken[contract_id] = customer_id
    for tenant, rows_of in tenants.items():
        if len(rows_of) > 1:
            ids = ", ".join(cid for _, cid in rows_of)
            for row, cid in rows_of:
                problems.append(problem(
                    "BB151", row["Partner Center Customer ID"].source, f"The tenant {tenant} is the Partner Center "
                    f"Customer ID of more than one active contract ({ids}).",
                    value=row.value("Partner Center Customer ID"), contract_id=cid))
    return contracts, broken


def billed_through(r: RowReader, contract: Contract) -> date | None:
    """The Billed Through if it ends a cycle inside the contract period; else None, reported.
    A day inside a cycle is refused: billing that cycle whole, or not at all, would be a guess."""
    day = contract.billed_through
    cycle = cycle_containing(contract, day)
    if cycle is None:
        inside(r, "Billed Through", day, contract)
        return None
    if cycle.end != day:
        before = cycle.start - ONE_DAY
        ends = f"{before} or {cycle.end}" if before >= contract.start else str(cycle.end)
        r.fail("BB120", "Billed Through", f"The Billed Through {day} falls inside the cycle {cycle.start} to "
                                          f"{cycle.end} of contract {contract.contract_id}.", ends=ends)
        return None
    return day


def contract_group_by(r: RowReader, settings: Settings, columns: dict[str, str]) -> tuple[str, ...]:
    typed = r.text("Usage Group By")
    names, unknown = group_by(typed, columns)
    if unknown:
        r.fail("BB126", "Usage Group By", f"The Usage Group By names {', '.join(unknown)}, which is not a column "
               "of the Usage sheet.", columns=", ".join(columns.values()))
    return names or settings.usage_group_by


def read_subscriptions(rows, contracts, problems, numbers=EN) -> dict[str, tuple[Subscription, ...]]:
    by_contract = defaultdict(list)
    for row, sub_id in unique(rows, "Subscription ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        contract_id = RowReader(row, []).text("Contract ID")
        r = RowReader(row, problems, contract_id=contract_id or None, numbers=numbers)
        r.text("Subscription ID", required=True)
        contract = known_contract(r, contracts)
        start = r.date("Start Date")
        end = r.date("End Date")
        if contract and start:
            inside(r, "Start Date", start, contract)
        if start and end and end < start:
            r.fail("BB112", "End Date", f"The subscription ends on {end} but starts on {start}.")
        sub = Subscription(
            subscription_id=sub_id,
            contract_id=contract_id,
            product=r.text("Product", required=True),
            description=r.text("Description"),
            quantity=r.amount("Quantity"),
            unit_price=r.amount("Unit Price"),
            start=start or (contract.start if contract else None),
            end=end,
            charge_type=r.choice("Charge Type", ChargeType, ChargeType.RECURRING),
            source=row.source,
        )
        r.line(sub.quantity, sub.unit_price)
        if r.ok:
            by_contract[contract_id].append(sub)
    return {cid: tuple(subs) for cid, subs in by_contract.items()}


def read_usage(rows, contracts, problems, numbers=EN, columns: dict[str, str] | None = None) -> dict[str, tuple[Usage, ...]]:
    by_contract = defaultdict(list)
    columns = columns or {}
    standard = set(SCHEMA["Usage"][1])
    for row, usage_id in unique(rows, "Usage ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        contract_id = RowReader(row, []).text("Contract ID")
        r = RowReader(row, problems, contract_id=contract_id or None, numbers=numbers)
        r.text("Usage ID", required=True)
        contract = known_contract(r, contracts)
        day = r.date("Date", required=True)
        if contract and day:
            inside(r, "Date", day, contract)
        usage = Usage(
            usage_id=usage_id,
            contract_id=contract_id,
            date=day,
            product=r.text("Product", required=True),
            description=r.text("Description"),
            quantity=r.amount("Quantity"),
            unit_price=r.amount("Unit Price"),
            source=row.source,
            # kept as text, only for grouping: a bad value in a column the batch does not read sets nothing aside
            extra=tuple((columns.get(normalise(name), name), RowReader(row, []).text(name))
                        for name in row.sheet.columns if name not in standard),
        )
        r.line(usage.quantity, usage.unit_price)
        if r.ok:
            by_contract[contract_id].append(usage)
    return {cid: tuple(sorted(rows, key=lambda u: (u.date, u.usage_id))) for cid, rows in by_contract.items()}


def known_contract(r: RowReader, contracts: dict[str, Contract | None]) -> Contract | None:
    """The row's contract; None for one that is unknown (reported) or unreadable."""
    contract_id = r.text("Contract ID", required=True)
    if contract_id and contract_id not in contracts:
        r.contract_id = None  # nothing to set aside: report it alone
        r.fail("BB111", "Contract ID", f"No contract has the ID {contract_id}"
               + did_you_mean(contract_id, contracts))
        return None
    return contracts.get(contract_id)


def inside(r: RowReader, column: str, day: date, contract: Contract) -> None:
    if day < contract.start or (contract.end is not None and day > contract.end):
        period = f"{contract.start} to {contract.end or 'open-ended'}"
        r.fail("BB113", column, f"The {column} {day} is outside contract {contract.contract_id}.",
               period=period)
