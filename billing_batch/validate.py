"""Turn raw rows into checked records; every problem becomes a value that says where it is."""
from __future__ import annotations

import enum
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from babel import Locale, UnknownLocaleError
from openpyxl.cell.cell import ERROR_CODES

from billing_batch.errors import Problem, problem
from billing_batch.model import (
    ChargeType,
    Contract,
    Customer,
    Frequency,
    Inputs,
    Policy,
    Settings,
    Subscription,
    Usage,
)
from billing_batch.money import KNOWN_CURRENCIES
from billing_batch.workbook import Cell, RawBook, Row, normalise

EARLIEST, LATEST = date(1900, 1, 1), date(2199, 12, 31)
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
SLASHED_DATE = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2,4}")
PLAIN_NUMBER = re.compile(r"[-+]?(\d+|\d{1,3}(,\d{3})+)(\.\d+)?")
PREFIX = re.compile(r"[A-Za-z0-9_-]{0,20}")


class Missing(Exception):
    """A cell could not be read; its problem has been recorded."""


class RowReader:
    """Reads typed values from one row, recording a problem for each bad cell."""

    def __init__(self, row: Row, problems: list[Problem], contract_id: str | None = None,
                 customer_id: str | None = None):
        self.row = row
        self.problems = problems
        self.contract_id = contract_id
        self.customer_id = customer_id
        self.ok = True

    def fail(self, code: str, cell: Cell, message: str, **fix_args: str) -> None:
        self.ok = False
        self.problems.append(problem(
            code, cell.source, message, value=cell.value,
            contract_id=self.contract_id, customer_id=self.customer_id, **fix_args,
        ))

    def _cell(self, column: str, required: bool) -> Cell | None:
        cell = self.row[column]
        value = cell.value
        if isinstance(value, str) and value.strip() in ERROR_CODES:
            self.fail("BB115", cell, f"The {column} cell shows the Excel error {value.strip()}.")
            return None
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                self.fail("BB102", cell, f"The {column} is empty.")
            return None
        return cell

    def text(self, column: str, required: bool = False) -> str:
        cell = self._cell(column, required)
        if cell is None:
            return ""
        value = cell.value
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # an ID typed as a number
        if isinstance(value, datetime):
            value = value.date().isoformat()
        return str(value).strip()

    def date(self, column: str, required: bool = False) -> date | None:
        cell = self._cell(column, required)
        if cell is None:
            return None
        value = cell.value
        if isinstance(value, datetime):
            value = value.date()
        elif isinstance(value, str) and ISO_DATE.fullmatch(value.strip()):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                self.fail("BB103", cell, f"The {column} {value.strip()} is not a real calendar date.")
                return None
        elif isinstance(value, str) and SLASHED_DATE.fullmatch(value.strip()):
            self.fail("BB116", cell, f"The {column} is text that could be read with day and month either way.")
            return None
        if not isinstance(value, date):
            self.fail("BB103", cell, f"The {column} is not a date.")
            return None
        if not EARLIEST <= value <= LATEST:
            self.fail("BB103", cell, f"The {column} {value.isoformat()} is outside the years 1900 to 2199.")
            return None
        return value

    def decimal(self, column: str, required: bool = False, default: Decimal | None = None) -> Decimal | None:
        cell = self._cell(column, required)
        if cell is None:
            return default
        amount = to_decimal(cell.value)
        if amount is None:
            self.fail("BB104", cell, f"The {column} is not a number.")
        return amount

    def amount(self, column: str) -> Decimal:
        """A required quantity or price: zero or more."""
        amount = self.decimal(column, required=True)
        if amount is not None and amount < 0:
            self.fail("BB109", self.row[column], f"The {column} is negative.")
        return amount if amount is not None else Decimal(0)

    def fraction(self, column: str) -> Decimal:
        cell = self._cell(column, False)
        if cell is None:
            return Decimal(0)
        value = cell.value
        percent = isinstance(value, str) and value.strip().endswith("%")
        rate = to_decimal(value.strip()[:-1] if percent else value)
        if rate is None:
            self.fail("BB104", cell, f"The {column} is not a number or a percentage.")
            return Decimal(0)
        if percent:
            rate /= 100
        if not 0 <= rate <= 1:
            self.fail("BB108", cell, f"The {column} {value} is not between 0% and 100%.")
            return Decimal(0)
        return rate

    def whole(self, column: str, default: int) -> int:
        cell = self._cell(column, False)
        if cell is None:
            return default
        number = to_decimal(cell.value)
        if number is None or number != number.to_integral_value():
            self.fail("BB105", cell, f"The {column} is not a whole number.")
            return default
        return int(number)

    def choice(self, column: str, options: type[enum.Enum], default: enum.Enum | None = None):
        labels = {normalise(label_of(o)): o for o in options}
        cell = self._cell(column, default is None)
        if cell is None:
            return default
        option = labels.get(normalise(cell.value))
        if option is None:
            choices = ", ".join(label_of(o) for o in options)
            self.fail("BB106", cell, f"The {column} {cell.value!s} is not one we know.", choices=choices)
        return option or default


def label_of(option: enum.Enum) -> str:
    return getattr(option, "label", option.value)


def to_decimal(value: object) -> Decimal | None:
    """The one conversion from a cell to a number: Decimal(str(value))."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (int, float)):
        return Decimal(str(value))
    if isinstance(value, str) and PLAIN_NUMBER.fullmatch(value.strip()):
        try:
            return Decimal(value.strip().replace(",", ""))
        except InvalidOperation:
            return None
    return None


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

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]


def check(book: RawBook) -> Checked:
    problems: list[Problem] = []
    settings = read_settings(book.sheets["Settings"], problems)
    customers = read_customers(book.sheets["Customers"], problems)
    contracts, broken = read_contracts(book.sheets["Contracts"], settings, customers, problems)
    known = {**dict.fromkeys(broken), **contracts}
    subscriptions = read_subscriptions(book.sheets["Subscriptions"], known, problems)
    usage = read_usage(book.sheets["Usage"], known, problems)

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
    broken_contracts = {cid: set_aside[cid][0] for cid in broken if cid not in contracts}
    inputs = Inputs(settings, customers, contracts, subscriptions, usage)
    return Checked(inputs, problems, dict(set_aside), broken_contracts)


def unique(rows: list[Row], column: str, problems: list[Problem], owner=None) -> list[tuple[Row, str]]:
    """The rows with their ID; a repeated ID is a problem on every row that uses it."""
    first: dict[str, Row] = {}
    for row in rows:
        first.setdefault(RowReader(row, []).text(column), row)
    ids = []
    for row in rows:
        row_id = RowReader(row, []).text(column)
        original = first[row_id]
        if row_id and original is not row:
            owner_ids = owner(row) if owner else {}
            problems.append(problem(
                "BB110", row[column].source, f"The {column} {row_id} is used on more than one row.",
                value=row[column].value, first_row=str(original.source.row), **owner_ids,
            ))
            if owner:
                # the first row's record is no more trustworthy than the repeat
                problems.append(problem(
                    "BB110", original[column].source, f"The {column} {row_id} is used on more than one row.",
                    value=original[column].value, first_row=str(original.source.row), **owner(original),
                ))
        ids.append((row, row_id))
    return ids


def read_settings(rows: list[Row], problems: list[Problem]) -> Settings:
    values: dict[str, Cell] = {}
    for row in rows:
        key = normalise(row["Key"].value)
        if key:
            values[key] = row["Value"]

    def text(key: str, default: str = "") -> str:
        cell = values.get(normalise(key))
        return str(cell.value).strip() if cell and cell.value is not None and str(cell.value).strip() else default

    def invalid(key: str, message: str, hint: str) -> None:
        problems.append(problem("BB201", values[normalise(key)].source, message,
                                value=values[normalise(key)].value, hint=hint))

    settings = Settings(
        company_name=text("Company Name"),
        company_address=text("Company Address"),
        company_email=text("Company Email"),
        tax_id=text("Tax ID"),
        bank_details=text("Bank Details"),
        invoice_prefix=text("Invoice Prefix", "INV-"),
        default_currency=text("Default Currency", "USD").upper(),
        locale=text("Locale", "en_US"),
    )
    threshold = values.get(normalise("Review Change Threshold"))
    if threshold is not None and threshold.value not in (None, ""):
        reader = RowReader(Row(threshold.source, {"Value": threshold}), [])
        rate = reader.fraction("Value")
        if reader.ok:
            settings = replace(settings, review_change_threshold=rate)
        else:
            invalid("Review Change Threshold", "The Review Change Threshold is not a percentage.",
                    "type a percentage such as 25%.")
    if not PREFIX.fullmatch(settings.invoice_prefix):
        invalid("Invoice Prefix", "The Invoice Prefix may hold only letters, digits, - and _.",
                "use at most 20 letters, digits, - or _, such as INV-.")
    if settings.default_currency not in KNOWN_CURRENCIES:
        invalid("Default Currency", "The Default Currency is not an ISO 4217 code.",
                "use a three-letter code such as USD or EUR.")
    try:
        Locale.parse(settings.locale)
    except (ValueError, UnknownLocaleError):
        invalid("Locale", "The Locale is not one we know.", "use a code such as en_US, en_GB, de_DE or fr_FR.")
    return settings


def read_customers(rows: list[Row], problems: list[Problem]) -> dict[str, Customer]:
    customers = {}
    for row, customer_id in unique(rows, "Customer ID", problems, lambda r: {"customer_id": RowReader(r, []).text("Customer ID")}):
        r = RowReader(row, problems, customer_id=customer_id or None)
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
        )
        if r.ok and customer_id not in customers:
            customers[customer_id] = customer
    return customers


def read_contracts(rows, settings, customers, problems) -> tuple[dict[str, Contract], dict[str, str]]:
    """The contracts that could be read, and the IDs (with customer) of those that could not."""
    contracts, broken = {}, {}
    for row, contract_id in unique(rows, "Contract ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        r = RowReader(row, problems, contract_id=contract_id or None)
        r.text("Contract ID", required=True)
        customer_id = r.text("Customer ID", required=True)
        if customer_id and customer_id not in customers:
            r.fail("BB101", row["Customer ID"], f"No customer has the ID {customer_id}.")
        start = r.date("Start Date", required=True)
        end = r.date("End Date")
        if start and end and end < start:
            r.fail("BB112", row["End Date"], f"The contract ends on {end} but starts on {start}.")
        currency = r.text("Currency").upper() or settings.default_currency
        if currency not in KNOWN_CURRENCIES:
            r.fail("BB107", row["Currency"], f"The Currency {currency} is not an ISO 4217 code.")
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
        )
        if contract.payment_terms_days < 0:
            r.fail("BB105", row["Payment Terms (Days)"], "The Payment Terms (Days) is negative.")
        if not contract_id:
            continue
        # a start date and frequency are enough to draw the schedule, even with other faults
        if start and contract.frequency and contract_id not in contracts and contract_id not in broken:
            contracts[contract_id] = contract
        else:
            broken[contract_id] = customer_id
    return contracts, broken


def read_subscriptions(rows, contracts, problems) -> dict[str, tuple[Subscription, ...]]:
    by_contract = defaultdict(list)
    for row, sub_id in unique(rows, "Subscription ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        contract_id = RowReader(row, []).text("Contract ID")
        r = RowReader(row, problems, contract_id=contract_id or None)
        r.text("Subscription ID", required=True)
        contract = known_contract(r, contracts)
        start = r.date("Start Date")
        end = r.date("End Date")
        if contract and start:
            inside(r, "Start Date", start, contract)
        if start and end and end < start:
            r.fail("BB112", row["End Date"], f"The subscription ends on {end} but starts on {start}.")
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
        if r.ok:
            by_contract[contract_id].append(sub)
    return {cid: tuple(subs) for cid, subs in by_contract.items()}


def read_usage(rows, contracts, problems) -> dict[str, tuple[Usage, ...]]:
    by_contract = defaultdict(list)
    for row, usage_id in unique(rows, "Usage ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        contract_id = RowReader(row, []).text("Contract ID")
        r = RowReader(row, problems, contract_id=contract_id or None)
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
        )
        if r.ok:
            by_contract[contract_id].append(usage)
    return {cid: tuple(sorted(rows, key=lambda u: (u.date, u.usage_id))) for cid, rows in by_contract.items()}


def known_contract(r: RowReader, contracts: dict[str, Contract | None]) -> Contract | None:
    """The row's contract; None for one that is unknown (reported) or unreadable."""
    contract_id = r.text("Contract ID", required=True)
    if contract_id and contract_id not in contracts:
        r.contract_id = None  # nothing to set aside: report it alone
        r.fail("BB111", r.row["Contract ID"], f"No contract has the ID {contract_id}.")
        return None
    return contracts.get(contract_id)


def inside(r: RowReader, column: str, day: date, contract: Contract) -> None:
    if day < contract.start or (contract.end is not None and day > contract.end):
        period = f"{contract.start} to {contract.end or 'open-ended'}"
        r.fail("BB113", r.row[column], f"The {column} {day} is outside contract {contract.contract_id}.",
               period=period)
