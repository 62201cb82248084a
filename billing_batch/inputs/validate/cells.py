"""Reading one typed cell, the same way on every sheet: a problem for each bad cell, never a guess,
so every sheet's check is lenient and strict in the same places."""
from __future__ import annotations

import enum
import math
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import UnknownLocaleError
from babel.numbers import get_decimal_symbol, get_group_symbol

from billing_batch.errors import Problem, problem, shown
from billing_batch.inputs.workbook import Row, normalise
from billing_batch.model import EInvoice

EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)
# Excel's error values: openpyxl's list (openpyxl.cell.cell.ERROR_CODES, not imported: openpyxl costs a third
# of a second of start-up) and those newer than it (dynamic arrays, data types).
ERROR_VALUES = frozenset({"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"}) | {
    "#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!", "#PYTHON!", "#GETTING_DATA",
}
# Year first is unambiguous (2025-1-31, 2025/01/31); a time of day after it, as systems export, is ignored.
YEAR_FIRST = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?")
DAY_OR_MONTH_FIRST = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{2}|\d{4})")
# Beyond these a value is a typing mistake, and money arithmetic would outgrow Decimal's 28 digits.
MAX_AMOUNT = Decimal(10) ** 12  # a quantity or a unit price
MAX_LINE = Decimal(10) ** 15  # quantity x unit price
DAYS = {"Billing Offset (Days)": (-365, 365), "Payment Terms (Days)": (0, 365)}
# BB109's advice for a negative quantity or price of a subscription: a reduction is the contract's Discount.
REDUCE = "give a reduction with the Discount column"
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

    def amount(self, column: str, instead: str = REDUCE) -> Decimal:
        """A required quantity or price: zero or more, and not absurdly large. instead: what to do rather than
        type a negative one (BB109)."""
        amount = self.decimal(column, required=True)
        if amount is None:
            return Decimal(0)
        if amount < 0:
            self.fail("BB109", column, f"The {column} is negative.", instead=instead)
        elif amount > MAX_AMOUNT:
            self.fail("BB117", column, f"The {column} is more than {MAX_AMOUNT:,}.",
                      limit=f"{MAX_AMOUNT:,}")
        return amount

    def line(self, quantity: Decimal, unit_price: Decimal) -> None:
        if max(quantity, unit_price) <= MAX_AMOUNT and quantity * unit_price > MAX_LINE:
            self.fail("BB117", "Unit Price", f"The Quantity times the Unit Price is more than "
                                             f"{MAX_LINE:,} on one line.", limit=f"{MAX_LINE:,}")

    def fraction(self, column: str, low: Decimal = Decimal(0)) -> Decimal:
        """A share from low to 1 (100%), typed as 0.25 or 25%."""
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
        if low <= rate <= 1:
            return rate
        typed = shown(value).strip()
        if not percent and 1 < rate <= 100:
            self.fail("BB108", column, f"The {column} {typed} is more than 1, which is 100%; for {typed} percent "
                                       f"type {typed}% or {rate / 100}.")
        else:
            self.fail("BB108", column, f"The {column} {typed} is not between {low:.0%} and 100%.")
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


def einvoice_format(typed: str) -> EInvoice | None:
    """ZUGFeRD (2.x, at its EN 16931 profile) is the German name of Factur-X: the same file."""
    known = {choice_key(o.value): o for o in EInvoice} | {choice_key("ZUGFeRD"): EInvoice.FACTUR_X}
    return known.get(choice_key(typed))
