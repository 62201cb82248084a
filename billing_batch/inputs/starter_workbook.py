"""`billing-batch init`: a starter input workbook that explains itself.

Every sheet and column the batch reads, a note on each header (what it means, when blank, an
example), drop-down lists for the columns with fixed choices, number formats, and two example rows
per sheet that `check` accepts and `run` bills as they stand. The columns are one table, COLUMNS,
and the settings another, SETTINGS: a column added to the batch is a line added here.

Over 400 lines: those two tables, a few lines per column, are most of it; split, a column's help would sit
apart from its sheet's other columns and from the code that writes them.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from billing_batch.files import write_atomic
from billing_batch.model import (SMTP_SECURITY, AdjustmentInvoices, ChargeType, EInvoice, Frequency, MidTermChanges,
                                 Policy, UsageLines)
from billing_batch.engine.tax import CATEGORIES, ROUNDINGS
from billing_batch.inputs.validate.cells import Status, label_of
from billing_batch.inputs.workbook import SCHEMA

BOOK_NAME = "billing.xlsx"
LAST_ROW = 10_000  # drop-downs cover the data rows 2..LAST_ROW; column formats cover every row

# Number formats
TEXT = "@"  # IDs and postal codes stay as typed: 02109 keeps its zero, 1001 stays an ID
DATE = "yyyy-mm-dd"
RATE = "0.00%"
PRICE = "#,##0.00##"  # two decimals, up to four for prices such as 0.0125 an SMS
WHOLE = "0"
GENERAL = "General"

# Fixed choices, as the batch reads them
FREQUENCIES = tuple(label_of(f) for f in Frequency)
POLICIES = tuple(p.value for p in Policy)
CHARGE_TYPES = tuple(c.value for c in ChargeType)
STATUSES = tuple(s.value for s in Status)
TAX_CATEGORIES = tuple(CATEGORIES)
EINVOICES = tuple(e.value for e in EInvoice)
SECURITY_CHOICES = tuple("None" if s == "NONE" else s for s in SMTP_SECURITY)
# Common ISO 4217 codes for the drop-down; any other code the batch knows may still be typed.
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "NZD", "CHF", "JPY", "SEK", "NOK", "DKK", "PLN", "CZK",
              "HUF", "SGD", "HKD", "INR", "ZAR", "MXN", "BRL")


@dataclass(frozen=True)
class Col:
    """A column of a sheet, or a key of the Settings sheet."""

    name: str
    means: str
    blank: str = ""  # what a blank cell means; "" for a required column
    fmt: str = GENERAL
    choices: tuple[str, ...] = ()
    examples: tuple = (None, None)  # the two example rows (Settings: the one value)
    open_choices: bool = False  # the drop-down suggests; other values may be typed


# Said of the same column on several sheets
USAGE_LINES = tuple(option.value for option in UsageLines)
ON_CONTRACT = "the contract it is billed on; must be on the Contracts sheet"
PRODUCT = "the product's name, printed on the invoice line"
DESCRIPTION = "printed on the invoice line under the product"


def month_start(today: date, months_back: int) -> date:
    months = today.year * 12 + today.month - 1 - months_back
    return date(months // 12, months % 12 + 1, 1)


def columns(today: date) -> dict[str, tuple[Col, ...]]:
    """Sheet -> its columns, with example rows dated from today so that something is due: the Monthly
    contract started two months ago (one or two invoices), the Quarterly one a month ago (one)."""
    start_1, start_2 = month_start(today, 2), month_start(today, 1)
    return {
        "Customers": (
            Col("Customer ID", "the customer's own ID, unique on this sheet", fmt=TEXT,
                examples=("CUST-1001", "CUST-1002")),
            Col("Name", "the customer's name, printed on the invoice",
                examples=("Northwind Analytics Inc.", "Brightwave Media GmbH")),
            Col("Email", "where invoices are sent (send post task)", "the invoice is not emailed",
                examples=("ap@example.com", "rechnungen@example.net")),
            Col("Address", "street lines; line breaks (Alt+Enter) are kept", "no street lines",
                examples=("1200 Market Street", "Torstraße 118")),
            Col("City", "printed under the address", "left out", examples=("San Francisco", "Berlin")),
            Col("Postal Code", "printed under the address", "left out", fmt=TEXT, examples=("94102", "10119")),
            Col("State", "the state, province, region or county, printed where the country's addresses have one "
                "(US, CA, AU, IT, ES, IE, JP ...)", "left out", examples=("CA", None)),
            Col("Country", "printed under the address", "left out", examples=("United States", "Germany")),
            Col("Tax Rate", "the customer's tax rate, applied after the discount", "0% (no tax)", fmt=RATE,
                examples=(Decimal("0.085"), Decimal("0.19"))),
            Col("Language", "the language of the customer's invoices and emails, such as de_DE, fr_BE or nl_NL",
                "the Settings' Locale", examples=(None, "de_DE")),
            Col("IBAN", "the customer's bank account for SEPA Direct Debit (charge post task)",
                "the customer is not charged by direct debit", fmt=TEXT,
                examples=(None, "DE89370400440532013000")),
            Col("BIC", "the customer's bank for SEPA Direct Debit", "IBAN only (SEPA needs no BIC)", fmt=TEXT,
                examples=(None, "COBADEFFXXX")),
            Col("Mandate ID", "the reference of the customer's signed SEPA mandate, at most 35 characters",
                "no mandate: not charged", fmt=TEXT, examples=(None, "MNDT-1002")),
            Col("Mandate Date", "the day the customer signed the SEPA mandate", "no mandate: not charged",
                fmt=DATE, examples=(None, start_2)),
            Col("VAT ID", "the customer's VAT number with its country prefix, printed on invoices; checked",
                "none printed", fmt=TEXT, examples=(None, "DE136695976")),
            Col("Tax Category", "overrides every line of the customer: S standard, Z zero rated, E exempt, "
                "AE reverse charge, K intra-community supply, G export outside the EU, O outside the scope of VAT",
                "each product's category, else S", choices=TAX_CATEGORIES, examples=(None, None)),
            Col("Tax Exemption Reason", "the legend printed for the customer's Tax Category (needed for E and O)",
                "the category's standard legend", examples=(None, None)),
            Col("E-Invoice", "the EN 16931 e-invoice the customer gets: Factur-X (a PDF carrying the XML), "
                "XRechnung (German public bodies) or Peppol (UBL, e.g. Belgian businesses)",
                "the E-Invoice setting, else PDF only", choices=EINVOICES, examples=(None, None)),
            Col("Buyer Reference", "BT-10: the reference the buyer asks invoices to quote; for a German public "
                "body its Leitweg-ID (needed for XRechnung)", "none", fmt=TEXT, examples=(None, None)),
            Col("Electronic Address", "BT-49: where the buyer receives e-invoices, e.g. its Peppol ID (needed for "
                "XRechnung and Peppol)", "none", fmt=TEXT, examples=(None, None)),
            Col("Electronic Address Scheme", "BT-49-1: the EAS code of the Electronic Address, e.g. EM (email), "
                "0208 (Belgian enterprise number), 0204 (Leitweg-ID), 9930 (German VAT ID)", "none", fmt=TEXT,
                examples=(None, None)),
        ),
        "Contracts": (
            Col("Contract ID", "the contract's own ID, unique on this sheet", fmt=TEXT,
                examples=("CTR-1001", "CTR-1002")),
            Col("Customer ID", "who is billed; must be on the Customers sheet", fmt=TEXT,
                examples=("CUST-1001", "CUST-1002")),
            Col("Start Date", "the first day billed; every billing cycle is counted from it", fmt=DATE,
                examples=(start_1, start_2)),
            Col("End Date", "the last day billed (inclusive); cuts the last cycle short", "open-ended",
                fmt=DATE),
            Col("Billing Frequency", "how long one billing cycle is", choices=FREQUENCIES,
                examples=(Frequency.MONTHLY.label, Frequency.QUARTERLY.label)),
            Col("Billing Policy", "Advance bills a cycle when it starts, Arrears after it ends", "Arrears",
                choices=POLICIES, examples=(Policy.ARREARS.value, Policy.ADVANCE.value)),
            Col("Billing Offset (Days)", "days after the cycle start (Advance) or after the cycle end (Arrears) "
                "that the invoice is due to be made; may be negative", "1", fmt=WHOLE, examples=(1, 0)),
            Col("Currency", "the ISO 4217 code the contract is billed in; codes not in the list are accepted too",
                "the Default Currency setting, else USD", choices=CURRENCIES, open_choices=True,
                examples=("USD", "EUR")),
            Col("Payment Terms (Days)", "Due Date = Invoice Date + this many days; 0 is due on receipt", "30",
                fmt=WHOLE, examples=(30, 14)),
            Col("Discount", "taken off the subtotal of every invoice", "0% (no discount)", fmt=RATE,
                examples=(None, Decimal("0.10"))),
            Col("Status", "Inactive contracts are not billed", "Active", choices=STATUSES,
                examples=(Status.ACTIVE.value, Status.ACTIVE.value)),
            Col("CC", "more addresses the invoice email goes to, separated by ; or ,", "the customer's Email only",
                examples=(None, "finance@example.net")),
            Col("Billed Through", "every cycle that ends on or before this date was billed outside "
                "billing_batch, so it is not billed again", "nothing was billed outside billing_batch",
                fmt=DATE),
            Col("Usage Lines", "Summary: one invoice line per group of usage rows; Detail: one line per row",
                "the Usage Lines setting", choices=USAGE_LINES),
            Col("Usage Group By", "the Usage sheet columns a summary line groups by, separated by commas",
                "the Usage Group By setting"),
            Col("Purchase Order", "BT-13: the customer's purchase order number this contract bills, on its "
                "e-invoices", "none", fmt=TEXT),
            Col("Partner Center Customer ID", "the tenant (CustomerId) whose Azure usage (Partner Center's daily "
                "rated usage file) and licences (its new commerce invoice reconciliation file), CSVs beside this "
                "workbook, this contract bills", "no Partner Center usage or licences", fmt=TEXT),
            Col("Usage Markup", "Partner Center usage is billed at its cost (EffectiveUnitPrice x "
                "PCToBCExchangeRate) plus this", "0% (at cost)", fmt=RATE),
            Col("Licence Markup", "licences the Price List does not price are billed at Microsoft's Subtotal plus "
                "this; from -100% to 100% (below zero bills under cost, which the review page flags)",
                "the Licence Markup setting, else 0% (at cost)", fmt=RATE),
        ),
        "Subscriptions": (
            Col("Subscription ID", "the subscription's own ID, unique on this sheet", fmt=TEXT,
                examples=("SUB-1001", "SUB-1002")),
            Col("Contract ID", ON_CONTRACT, fmt=TEXT,
                examples=("CTR-1001", "CTR-1002")),
            Col("Product", PRODUCT,
                examples=("Platform seats", "Managed hosting")),
            Col("Description", DESCRIPTION, "the product alone",
                examples=("Platform Pro seats", "Managed hosting, EU region")),
            Col("Quantity", "how many units; zero or more. Seats changed mid-cycle: give the old row the End Date "
                "of the day before and add a row with the new Quantity from its Start Date (changing the "
                "Quantity here re-bills the cycles already invoiced, as adjustments)", examples=(10, 1)),
            Col("Unit Price", "the price of one unit; per month for Recurring (a Quarterly cycle bills 3 months)",
                fmt=PRICE, examples=(Decimal("29.50"), Decimal("450.00"))),
            Col("Start Date", "the first day charged; inside the contract's period", "the contract's Start Date",
                fmt=DATE, examples=(None, start_2)),
            Col("End Date", "the last day charged (inclusive)", "open-ended", fmt=DATE),
            Col("Charge Type", "Recurring is charged every cycle, prorated for part of one; One-Time once, on "
                "the cycle that holds its Start Date", "Recurring", choices=CHARGE_TYPES,
                examples=(ChargeType.RECURRING.value, ChargeType.RECURRING.value)),
            Col("Partner Center Subscription ID", "Microsoft's SubscriptionId of a licence this row bills by hand: "
                "from the first charge the licence file bills for it, the row stops billing",
                "billed by hand for as long as its dates say", fmt=TEXT),
        ),
        "Usage": (
            Col("Usage ID", "the usage row's own ID; never reuse one: a billed ID is not billed again", fmt=TEXT,
                examples=("USG-1001", "USG-1002")),
            Col("Contract ID", ON_CONTRACT, fmt=TEXT,
                examples=("CTR-1001", "CTR-1001")),
            Col("Date", "the day it was used; inside the contract's period; billed on the first invoice "
                "whose period it falls in, or the next", fmt=DATE,
                examples=(start_1 + timedelta(days=4), start_1 + timedelta(days=11))),
            Col("Product", PRODUCT, examples=("API calls", "SMS messages")),
            Col("Description", DESCRIPTION, "the product alone",
                examples=("API calls over the plan", "Outbound SMS")),
            Col("Quantity", "how many units were used; zero or more", examples=(12000, 350)),
            Col("Unit Price", "the price of one unit", fmt=PRICE, examples=(Decimal("0.002"), Decimal("0.0125"))),
        ),
        "Products": (
            Col("Product", "a product name as on the Subscriptions and Usage sheets (a row named Discount "
                "takes invoice discounts); used only to export invoices to Xero and QuickBooks (sync post task)",
                examples=("Platform seats", "Managed hosting")),
            Col("Account Code", "the sales account in the accounting system", "the product is not exported",
                fmt=TEXT, examples=("200", "210")),
            Col("Tax Type", "the tax rate's name as the accounting system shows it, for both exports",
                "named from the line's tax category and rate", examples=(None, None)),
            Col("Tax Category", "the product's VAT category: S, Z, E, AE, K, G or O", "S",
                choices=TAX_CATEGORIES, examples=(None, None)),
            Col("Tax Rate", "the product's rate for category S, such as a reduced rate", "the customer's Tax Rate",
                fmt=RATE, examples=(None, None)),
            Col("Tax Exemption Reason", "the legend printed for the product's Tax Category (needed for E and O)",
                "the category's standard legend", examples=(None, None)),
        ),
        "Price List": (
            Col("Sku ID", "a Microsoft licence as Partner Center's licence file names it, ProductId:SkuId", fmt=TEXT,
                examples=("CFQ7TTC0LCHC:0001", "CFQ7TTC0LF8Q:0001")),
            Col("Unit Price", "the customer's price of one seat for one month; a charge for part of a cycle is "
                "prorated by its days, as Microsoft prorates", fmt=PRICE,
                examples=(Decimal("24.50"), Decimal("21.50"))),
            Col("Currency", "the price's ISO 4217 code: it prices the contracts billed in it",
                "the Default Currency setting, else USD", choices=CURRENCIES, open_choices=True,
                examples=("USD", "EUR")),
            Col("Contract ID", "the contract whose own price this is (it wins over a row without one); must be on "
                "the Contracts sheet", "the price of every contract in its Currency", fmt=TEXT,
                examples=(None, "CTR-1002")),
        ),
    }


# Settings: Key, and the Value as the starter gives it. Blank settings are listed so they can be found.
SETTINGS = (
    Col("Company Name", "the seller's name, printed on every invoice", "no name printed",
        examples=("Example Software Ltd",)),
    Col("Company Address", "the seller's address, printed as typed; line breaks (Alt+Enter) are kept",
        "Company Street, City, Postal Code, State and Country, as the country writes addresses",
        examples=("1 Example Street\nSpringfield, IL 62701\nUnited States",)),
    Col("Company Email", "printed on invoices; the sender and Reply-To of invoice emails", "none",
        examples=("billing@example.com",)),
    Col("Tax ID Label", "printed before the Tax ID, as typed, such as EIN, Steuernummer, ABN or SIREN",
        "the generic label in the invoice's language (Tax ID, Steuernummer ...)", examples=("EIN",)),
    Col("Tax ID", "the seller's other tax registration, printed on invoices as typed after the Tax ID Label",
        "none", examples=("12-3456789",)),
    Col("VAT ID", "the seller's VAT number with its country prefix, printed on invoices; checked; needed for "
        "reverse charge (AE) and intra-community supplies (K)", "none", fmt=TEXT, examples=(None,)),
    Col("Tax Rounding", "Per Group rounds the tax of each category and rate once (EN 16931); Per Line each line",
        "Per Group", choices=ROUNDINGS, examples=(None,)),
    Col("Bank Details", "how to pay, printed on invoices; line breaks are kept", "none",
        examples=("Example Bank\nAccount 12345678",)),
    Col("Invoice Prefix", "before every invoice number; letters, digits, - and _, at most 20", "INV-",
        examples=("INV-",)),
    Col("Credit Note Prefix", "before every credit note number (a series of its own); letters, digits, - and _, "
        "at most 20, not the Invoice Prefix", "CN-", examples=(None,)),
    Col("Default Currency", "the currency of contracts whose Currency is blank", "USD", choices=CURRENCIES,
        open_choices=True, examples=("USD",)),
    Col("Locale", "the language and number format of invoices, such as en_US, en_GB, de_DE, fr_FR", "en_US",
        examples=("en_US",)),
    Col("Review Change Threshold", "the review page flags an invoice whose total moved more than this against "
        "the contract's previous invoice", "25%", fmt=RATE, examples=(Decimal("0.25"),)),
    Col("Usage Lines", "Summary: one invoice line per group of usage rows (a detail file lists the rows); "
        "Detail: one line per row", "Summary", choices=USAGE_LINES, examples=(None,)),
    Col("Usage Group By", "the Usage sheet columns a summary line groups by, separated by commas; a different "
        "unit price always makes its own line", "Product, Description", examples=(None,)),
    Col("Mid-Term Changes", "Next Invoice: a change to a cycle already invoiced is billed as an Adjustment on "
        "the contract's next invoice; Flag Only: the invoice is listed as differing and nothing is billed",
        "Next Invoice", choices=tuple(o.value for o in MidTermChanges), examples=(None,)),
    Col("Adjustment Invoices", "Monthly: quarterly and longer contracts get their pending adjustments on an "
        "invoice of their own once a month; With Next Invoice: they wait for the next invoice",
        "With Next Invoice", choices=tuple(o.value for o in AdjustmentInvoices), examples=(None,)),
    Col("Usage Tolerance", "a tenant's month of Partner Center usage is flagged on the review page when the cost "
        "imported and Partner Center's BillingPreTaxTotal differ by more than this share of the total (never "
        "less than a cent a row)", "1%", fmt=RATE, examples=(None,)),
    Col("Licence Markup", "licences priced by no Price List row are billed at Microsoft's Subtotal plus this, "
        "for contracts whose Licence Markup is blank; from -100% to 100%", "0% (at cost)", fmt=RATE,
        examples=(None,)),
    Col("Catch-Up Limit", "the most invoices one run may issue for one contract",
        "3", fmt=WHOLE, examples=(3,)),
    Col("Ledger Backups", "how many backups of the ledger to keep", "12", fmt=WHOLE, examples=(12,)),
    Col("Logo", "a PNG, JPEG or SVG file printed on invoices; a path relative to this workbook's folder",
        "no logo", examples=(None,)),
    Col("Templates Folder", "a folder of your own invoice.html, invoice.css or email templates; a path "
        "relative to this workbook's folder", "the templates that ship with billing_batch", examples=(None,)),
    Col("SMTP Host", "the mail server invoices are sent through", "emails are written to output/outbox/",
        examples=(None,)),
    Col("SMTP Port", "the mail server's port", "465 with SSL, else 587", fmt=WHOLE, examples=(None,)),
    Col("SMTP Security", "STARTTLS, SSL or None", "STARTTLS", choices=SECURITY_CHOICES, examples=(None,)),
    Col("SMTP User", "the login name at the mail server; the password is read only from the environment "
        "variable BILLING_BATCH_SMTP_PASSWORD", "no login", examples=(None,)),
    Col("SMTP From", "the address invoice emails come from", "Company Email", examples=(None,)),
    Col("Creditor IBAN", "your account that SEPA Direct Debits are paid into", "no direct debit", fmt=TEXT,
        examples=(None,)),
    Col("Creditor BIC", "your bank's BIC", "IBAN only", fmt=TEXT, examples=(None,)),
    Col("Creditor ID", "your SEPA creditor identifier", "no direct debit", fmt=TEXT, examples=(None,)),
    # E-invoices (EN 16931): each is the business term named.
    Col("E-Invoice", "the e-invoice of customers whose E-Invoice is blank: Factur-X, XRechnung or Peppol",
        "PDF only", choices=EINVOICES, examples=(None,)),
    Col("Company Street", "BT-35: the seller's street and number; a second line (Alt+Enter) is BT-36", "none",
        examples=(None,)),
    Col("Company City", "BT-37: the seller's city (needed for XRechnung)", "none", examples=(None,)),
    Col("Company Postal Code", "BT-38: the seller's postal code (needed for XRechnung)", "none", fmt=TEXT,
        examples=(None,)),
    Col("Company State", "BT-39: the seller's state, province, region or county", "none", examples=(None,)),
    Col("Company Country", "BT-40: the seller's country, as a code (DE) or a name (Germany); needed for e-invoices",
        "none", examples=(None,)),
    Col("Company Registration ID", "BT-30: the seller's legal registration, e.g. the commercial register number",
        "none", fmt=TEXT, examples=(None,)),
    Col("Company Registration Scheme", "BT-30-1: the ISO 6523 ICD code of the registration, e.g. 0208 for a "
        "Belgian enterprise number", "none", fmt=TEXT, examples=(None,)),
    Col("Electronic Address", "BT-34: where the seller receives e-invoices, e.g. its Peppol ID (needed for "
        "XRechnung and Peppol)", "none", fmt=TEXT, examples=(None,)),
    Col("Electronic Address Scheme", "BT-34-1: the EAS code of the Electronic Address, e.g. EM (email), 0208, 9930",
        "none", fmt=TEXT, examples=(None,)),
    Col("Contact Name", "BT-41: the seller's contact for invoices (needed for XRechnung)", "none", examples=(None,)),
    Col("Contact Phone", "BT-42: the contact's phone number (needed for XRechnung)", "none", fmt=TEXT,
        examples=(None,)),
    Col("Contact Email", "BT-43: the contact's email address (needed for XRechnung)", "none", examples=(None,)),
)
SETTINGS_HEADERS = (
    Col("Key", "the name of a setting (hover over a key for what it does)", "the row is skipped"),
    Col("Value", "the setting's value (hover over the key for what a blank one means)",
        "the default the key's note names"),
)


def write(path: Path, today: date) -> Path:
    """Write the starter workbook at path (replacing nothing: the caller checks)."""
    wb = Workbook()
    wb.remove(wb.active)
    settings = wb.create_sheet("Settings")
    header(settings, SETTINGS_HEADERS, {})
    for row, col in enumerate(SETTINGS, start=2):
        key, value = settings.cell(row, 1, col.name), settings.cell(row, 2, col.examples[0])
        key.comment = note(col, required=False)
        value.number_format = col.fmt
        if col.choices:
            drop_down(settings, col, value.coordinate)
    size(settings, [SETTINGS_HEADERS[0].name, *(c.name for c in SETTINGS)], [""])
    settings.column_dimensions["B"].width = 40
    for name, cols in columns(today).items():
        ws = wb.create_sheet(name)
        header(ws, cols, SCHEMA[name][1])
        for i, col in enumerate(cols, start=1):
            letter = get_column_letter(i)
            ws.column_dimensions[letter].number_format = col.fmt  # for the rows a person adds
            for row, example in enumerate(col.examples, start=2):
                ws.cell(row, i, example).number_format = col.fmt
            if col.choices:
                drop_down(ws, col, f"{letter}2:{letter}{LAST_ROW}")
            size(ws, [col.name], col.examples, letter)
    for ws in wb.worksheets:
        for cells in ws.iter_rows(min_row=2):
            for cell in cells:
                if isinstance(cell.value, str) and "\n" in cell.value:
                    cell.alignment = Alignment(wrap_text=True, vertical="top")
    data = io.BytesIO()
    wb.save(data)
    write_atomic(path, data.getvalue())
    return path


def header(ws, cols, required: dict[str, bool]) -> None:
    for i, col in enumerate(cols, start=1):
        cell = ws.cell(1, i, col.name)
        cell.font = Font(bold=True)
        cell.comment = note(col, required.get(col.name, False))
    ws.freeze_panes = "A2"


def note(col: Col, required: bool) -> Comment:
    lines = [f"{col.name}: {col.means}."]
    lines.append("Required." if required else f"When blank: {col.blank}.")
    if col.choices:
        lines.append(f"{'For example' if col.open_choices else 'One of'}: {', '.join(col.choices)}.")
    example = next((e for e in col.examples if e is not None), None)
    if example is not None:
        lines.append(f"Example: {shown(example, col.fmt)}".replace("\n", " / "))
    text = "\n".join(lines)
    return Comment(text, "billing-batch", height=24 + 16 * (len(text) // 45 + len(lines)), width=320)


def shown(value: object, fmt: str) -> str:
    if isinstance(value, date):
        return value.isoformat()
    if fmt == RATE:
        return f"{value * 100:g}%"
    return str(value)


def drop_down(ws, col: Col, cells: str) -> None:
    options = ", ".join(col.choices)
    check = DataValidation(
        type="list", formula1=f'"{",".join(col.choices)}"', allow_blank=True,
        errorStyle="warning" if col.open_choices else "stop", showErrorMessage=True,
        errorTitle=col.name,
        error=(f"{options} are the common ones; another code is accepted if the batch knows it."
               if col.open_choices else f"Choose one of {options}."),
    )
    check.add(cells)
    ws.add_data_validation(check)


def size(ws, names, examples, letter: str = "A") -> None:
    widest = max(len(line) for text in [*names, *map(str, examples)] for line in text.split("\n"))
    ws.column_dimensions[letter].width = min(45, max(10, widest + 3))
