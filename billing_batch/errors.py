"""The error catalogue: every problem the batch can find in its input, as a value.

Codes are stable: a code is never renumbered or given another meaning, so finance and
scripts can rely on them. BB0xx stop the run, BB1xx set a contract aside, BB2xx are settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from billing_batch.model import Source

# code: (title, stops the whole run, how to fix it: one sentence)
CATALOGUE: dict[str, tuple[str, bool, str]] = {
    "BB001": ("not a workbook", True, "Save the file as an Excel workbook (.xlsx) and run again."),
    "BB002": ("required sheet missing", True,
              "Rename the sheet that holds this table to {sheet}, or add it (the name is not case-sensitive)."),
    "BB003": ("required column missing", True, "Add a column headed {column} to the first row of the sheet."),
    "BB004": ("no input workbook", True, "Put the billing workbook (.xlsx) in the input folder, or name it with --input."),
    "BB005": ("workbook too large", True, "Split the workbook, or raise the limit with {option} if the size is expected."),
    "BB006": ("workbook is password-protected", True, "Remove the password in Excel (File > Info > Protect Workbook) and save again."),
    "BB007": ("workbook unpacks too large", True,
              "Do not open this copy; ask the sender to save the workbook again from Excel and send it again."),
    "BB008": ("unsafe content in workbook", True,
              "Do not open this copy; ask the sender to save the workbook again from Excel and send it again."),
    "BB009": ("template or logo cannot be used", True,
              "Correct the template file, or delete it from your templates folder to use the default one."),
    "BB010": ("hidden sheet", True,
              "Unhide the sheet in Excel (right-click any sheet tab, Unhide) and check its rows, or delete it; "
              "then run again."),
    "BB011": ("two sheets for one table", True,
              "Keep one sheet named {sheet}: move the rows of the other into it, then rename or delete the other."),
    "BB012": ("two workbooks hold the same table", True,
              "Keep one billing workbook in the input folder: move the other (a copy, an old month) out of it."),
    "BB013": ("formula without its value", True,
              "Open the workbook in Excel and save it, so that every formula's result is stored with it; or "
              "replace the formulas by their values (Copy, then Paste Special, Values)."),
    "BB014": ("Partner Center file cannot be read", True,
              "Download the file again from Partner Center and keep it as downloaded (CSV, UTF-8), or move it out "
              "of the input folder."),
    "BB015": ("Partner Center file line damaged", True,
              "Download the file again from Partner Center (this copy was cut or changed after it was downloaded), "
              "or move it out of the input folder."),
    "BB101": ("unknown customer", False, "Add the customer to the Customers sheet, or correct the Customer ID."),
    "BB102": ("value missing", False,
              "Fill in the {column}; if the cell is part of a merged range, unmerge it and fill in every cell."),
    "BB103": ("not a date", False, "Type the date as an Excel date, or as text in the form 2025-01-31."),
    "BB104": ("not a number", False, "Type a plain number, such as 1200.50."),
    "BB105": ("not a whole number", False, "Type a whole number of days, such as 30."),
    "BB106": ("unknown choice", False, "Use one of: {choices}."),
    "BB107": ("unknown currency", False, "Use a three-letter ISO 4217 code, such as USD, EUR or GBP."),
    "BB108": ("rate out of range", False, "Type a fraction between 0 and 1, or a percentage such as 20%."),
    "BB109": ("negative amount", False, "Type zero or a positive number; {instead}."),
    "BB110": ("duplicate ID", False, "Give every row its own ID; the first use is on row {first_row}."),
    "BB111": ("unknown contract", False, "Add the contract to the Contracts sheet, or correct the Contract ID."),
    "BB112": ("ends before it starts", False, "Make the End Date on or after the Start Date, or leave it blank."),
    "BB113": ("outside the contract period", False, "Move the date inside the contract period ({period})."),
    # BB114 is retired: never reuse it.
    "BB115": ("Excel error in cell", False, "Correct the formula in Excel so the cell shows a value, or type the value."),
    "BB116": ("ambiguous date", False, "Type the date as an Excel date, or as text in the form 2025-01-31, so day and month cannot be swapped."),
    "BB117": ("number too large", False, "Check the number for a typing mistake; at most {limit} is accepted."),
    "BB118": ("days out of range", False, "Type a whole number of days from {low} to {high}."),
    "BB119": ("invalid IBAN", False, "Copy the IBAN again from the customer's signed mandate; until then their "
                                     "invoices are billed but not charged."),
    "BB120": ("Billed Through inside a cycle", False,
              "Type the last day of the last cycle billed in full before billing_batch ({ends}), or leave it blank."),
    "BB121": ("catch-up over the limit", False,
              "Set Billed Through on the contract to the last day billed before billing_batch, or run again with "
              "--allow-catch-up to bill every one of them."),
    "BB122": ("VAT ID missing", False,
              "Type the missing VAT ID (the customer's on the Customers sheet, the seller's as the VAT ID setting), "
              "or correct the Tax Category."),
    "BB123": ("invalid VAT ID", False, "Copy the VAT ID again from the customer's documents, with its country prefix."),
    "BB124": ("exemption reason missing", False,
              "Type the legal ground in the Tax Exemption Reason column of that row, such as the article that exempts it."),
    "BB125": ("tax rate does not fit the category", False,
              "Leave the Tax Rate blank for a category other than S, or give S a rate above 0%."),
    "BB126": ("unknown usage column", False, "Use column names of the Usage sheet, separated by commas: {columns}."),
    "BB127": ("unknown language", False,
              "Type a language and region such as de_DE, fr_BE or nl_NL, or a language such as de; "
              "leave it blank for the Settings' Locale."),
    "BB128": ("merged ID cells", False, "Unmerge the cells and type the {column} in every row."),
    "BB129": ("standard rate of 0%", False,
              "Type the {whose} Tax Rate, or give the {whose} row the Tax Category that says why no VAT is "
              "charged: {categories}."),
    "BB160": ("unknown e-invoice format", False, "Use Factur-X, XRechnung or Peppol, or leave it blank for the "
                                                 "Settings' E-Invoice."),
    "BB161": ("unknown electronic address scheme", False,
              "Use a code of the EAS list, such as EM for an email address, 0208 for a Belgian enterprise number, "
              "0204 for a German Leitweg-ID or 9930 for a German VAT ID."),
    "BB162": ("e-invoice data missing", False,
              "Fill in the {column}, or clear the customer's E-Invoice to send it PDF invoices only."),
    "BB163": ("seller's e-invoice data missing", False,
              "Add the setting {key} to the Settings sheet (a row with that Key and its Value)."),
    "BB164": ("currency with three decimals", False,
              "Bill this customer in a currency with at most two decimals, or clear its E-Invoice to send PDF "
              "invoices only."),
    "BB165": ("country not known", False,
              "Type the country's two-letter code, such as DE, or its name, such as Germany or Deutschland."),
    "BB150": ("usage file column missing", False,
              "Download the daily rated usage file again from Partner Center and save it unchanged, or move this "
              "CSV file out of the input folder."),
    "BB151": ("tenant on two contracts", False,
              "Keep the Partner Center Customer ID on the one active contract that bills this tenant's usage."),
    "BB152": ("unreadable usage value", False,
              "Download the daily rated usage file again from Partner Center: this cell is not as Partner Center "
              "writes it."),
    "BB153": ("tenant on no contract", False,
              "Type the tenant's CustomerId as the Partner Center Customer ID of the contract that bills it, or "
              "leave it be if this usage is not billed."),
    "BB154": ("usage in another currency", False,
              "Make the Currency of contract {contract} the tenant's billing currency, or bill the tenant on a "
              "contract in that currency."),
    "BB155": ("usage row repeated in one file", False,
              "Download the daily rated usage file again from Partner Center; if the row is still repeated, ask "
              "Microsoft which of the two stands."),
    "BB170": ("licence file column missing", False,
              "Download the invoice reconciliation file (new commerce) again from Partner Center and save it unchanged, "
              "or move this CSV file out of the input folder."),
    "BB171": ("unreadable licence value", False,
              "Download the invoice reconciliation file again from Partner Center: this cell is not as Partner Center "
              "writes it."),
    "BB172": ("licences of a tenant on no contract", False,
              "Type the tenant's CustomerId as the Partner Center Customer ID of the contract that bills it, or "
              "leave it be if these licences are not billed."),
    "BB173": ("licences in another currency", False,
              "Make the Currency of contract {contract} the tenant's billing currency, or bill the tenant on a "
              "contract in that currency."),
    "BB174": ("licence priced twice", False,
              "Keep one row for this Sku ID, currency and contract in the Price List sheet."),
    "BB175": ("licence billed by hand and from the file", False,
              "Set Mid-Term Changes to Next Invoice in Settings, so that the days the row billed are taken back on "
              "the next invoice, or credit them with billing-batch credit; then run again."),
    "BB201": ("invalid setting", True, "Correct the value in the Settings sheet: {hint}"),
}


@dataclass(frozen=True)
class Problem:
    """A problem found in the input, with where it is and what to do about it."""

    code: str
    source: Source
    value: str | None  # the cell as typed, if any
    message: str  # what is wrong, in plain words
    fix: str  # what to do about it
    contract_id: str | None = None  # the contract this sets aside
    customer_id: str | None = None  # sets aside every contract of this customer

    @property
    def title(self) -> str:
        return CATALOGUE[self.code][0]

    @property
    def fatal(self) -> bool:
        return CATALOGUE[self.code][1]

    @property
    def location(self) -> str:
        # a whole-file problem has no sheet: show the file alone, not "billing.xlsx > "
        return str(self.source) if self.source.sheet else self.source.file

    def one_line(self) -> str:
        return f"{self.code} {self.title}: {self.message} {self.fix}"

    def __str__(self) -> str:
        lines = [f"{self.code} {self.title}", f"  {self.location}"]
        if self.value is not None:
            lines.append(f"  value: {self.value!r}")
        lines.append(f"  {self.message} {self.fix}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, str | int | bool | None]:
        return {
            "code": self.code,
            "title": self.title,
            "location": self.location,
            "file": self.source.file,
            "sheet": self.source.sheet,
            "row": self.source.row,
            "column": self.source.column,
            "letter": self.source.letter,
            "value": self.value,
            "message": self.message,
            "fix": self.fix,
            "contract_id": self.contract_id,
            "customer_id": self.customer_id,
            "fatal": self.fatal,
        }


def shown(value: object) -> str | None:
    """A cell's value as the person typed it: 20 not 20.0, 2025-01-31 not 2025-01-31 00:00:00."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, datetime) and value.time() == time():
        return value.date().isoformat()
    return str(value)


def problem(
    code: str,
    source: Source,
    message: str,
    value: object = None,
    contract_id: str | None = None,
    customer_id: str | None = None,
    **fix_args: str,
) -> Problem:
    fix = CATALOGUE[code][2].format(column=source.column or "", sheet=source.sheet, **fix_args)
    return Problem(
        code=code,
        source=source,
        value=shown(value),
        message=message,
        fix=fix,
        contract_id=contract_id,
        customer_id=customer_id,
    )
