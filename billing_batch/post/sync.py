"""sync: the issued invoices and their lines as import files for accounting systems.

Each call writes one Xero sales-invoice import CSV and one QuickBooks Online invoice import CSV
under OUTPUT/exports/, named by the run's time, holding only the invoices not synced yet. Where the
column lists and rules come from: docs/post-tasks.md.

Totals reconcile to the cent: for every invoice, the sum over its rows of quantity x unit price
plus the tax amount column equals the invoice total in the ledger.
- A line whose amount is not exactly quantity x unit price (prorated, several months per cycle,
  a price with more decimals than the accounting system keeps) is exported as quantity 1 at its
  amount, with the quantity and price in the description.
- Rows go VAT group by VAT group (billing_batch.engine.tax). Each group's share of the discount is exported
  as negative lines ("Discount 10%"), one per account code and tax type of the group, its share split
  between them in proportion to their amounts, largest remainder first, so each revenue account is
  reduced by its own share. With a "Discount" row in the Products sheet, each group's share goes to
  that account instead, on one line. (Xero's Discount column is a percentage per line, rounded line
  by line: it cannot always give the invoice's discount exactly.)
- Each group's tax is shared between its rows in proportion to their amounts (after discount) and
  written to the tax amount columns, so the accounting system books the invoice's own tax rather
  than recomputing it line by line.
- A line's Xero tax type and QuickBooks tax code follow from its category and rate (tax_names); a
  product's Tax Type in the Products sheet overrides both.

Exactly once: the invoices of a file are recorded as started (naming the file), the file is
written beside its final name and renamed into place, then they are recorded as done. If the run
stops in between, the next call finds the file whole or absent and settles the record accordingly.

Over 400 lines: the rows and the two files follow the rules above together; split, each rule would
be read in two places.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from pathlib import Path

from babel import Locale

from billing_batch.engine.tax import percent
from billing_batch.files import csv_bytes, write_atomic
from billing_batch.model import DocType, Invoice, Line, LineKind, Product
from billing_batch.money import allocate, minor_unit
from billing_batch.post.records import (
    DONE,
    FAILED,
    STARTED,
    Context,
    Outcome,
    relative,
    triage,
)

# Xero, "Import invoices" sales template (SalesInvoiceTemplate.csv). A leading * marks a required column.
XERO_COLUMNS = [
    "*ContactName", "EmailAddress", "POAddressLine1", "POAddressLine2", "POAddressLine3", "POAddressLine4",
    "POCity", "PORegion", "POPostalCode", "POCountry", "*InvoiceNumber", "Reference", "*InvoiceDate", "*DueDate",
    "Total", "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "Discount", "*AccountCode",
    "*TaxType", "TaxAmount", "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2", "Currency",
    "BrandingTheme",
]
# QuickBooks Online, "Import invoices" sample file: the headers its importer maps without asking.
QBO_COLUMNS = [
    "InvoiceNo", "Customer", "InvoiceDate", "DueDate", "Terms", "Location", "Memo", "Item(Product/Service)",
    "ItemDescription", "ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxCode", "ItemTaxAmount", "Currency",
    "Service Date",
]
# Xero, "Import credit notes" template: the invoice template's columns, with the credit note's number
# and date in place of the invoice's, and no due date or total (docs/post-tasks.md).
XERO_CREDIT_COLUMNS = [
    "*ContactName", "EmailAddress", "POAddressLine1", "POAddressLine2", "POAddressLine3", "POAddressLine4",
    "POCity", "PORegion", "POPostalCode", "POCountry", "*CreditNoteNumber", "Reference", "*CreditNoteDate",
    "InventoryItemCode", "*Description", "*Quantity", "*UnitAmount", "Discount", "*AccountCode", "*TaxType",
    "TaxAmount", "TrackingName1", "TrackingOption1", "TrackingName2", "TrackingOption2", "Currency", "BrandingTheme",
]
# QuickBooks Online, "Import credit notes": the invoice import's headers with the credit note's number
# and date, and no due date or terms.
QBO_CREDIT_COLUMNS = [
    "CreditNoteNo", "Customer", "CreditNoteDate", "Location", "Memo", "Item(Product/Service)", "ItemDescription",
    "ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxCode", "ItemTaxAmount", "Currency", "Service Date",
]
# The amount columns: written as numbers; every other cell is text, kept inert in a spreadsheet (files.csv_bytes).
XERO_NUMBERS = {"Total", "*Quantity", "*UnitAmount", "Discount", "TaxAmount"}
QBO_NUMBERS = {"ItemQuantity", "ItemRate", "ItemAmount", "ItemTaxAmount"}
FILE_NAMES = {DocType.INVOICE: ("xero-sales-invoices", "quickbooks-invoices"),  # each type's files, Xero's first
              DocType.CREDIT_NOTE: ("xero-credit-notes", "quickbooks-credit-notes")}
XERO_MAX_INVOICES = 500  # Xero imports at most 500 invoices per file; more are split into parts
MAX_DECIMALS = 4  # both keep at most 4 decimals of a quantity or unit price
DISCOUNT_PRODUCT = "Discount"  # a Products row of this name takes the whole discount


class SyncProblem(Exception):
    """The invoice cannot be exported until the input is corrected."""


@dataclass(frozen=True)
class Row:
    """One line of an invoice as the accounting systems get it."""

    product: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal  # quantity x unit_amount, exactly
    account_code: str
    tax_type: str  # Xero's tax rate name
    tax: Decimal
    service_date: date | None
    tax_code: str = ""  # QuickBooks' VAT code


# What each category and rate is called by default (a UK organisation's names; docs/post-tasks.md).
# The Products sheet's Tax Type, where given, is used in both files instead.
XERO_TAX_TYPES = {"Z": "Zero Rated Income", "E": "Exempt Income", "AE": "Zero Rated EC Services",
                  "K": "Zero Rated EC Goods Income", "G": "Zero Rated Income", "O": "No VAT"}
QBO_TAX_CODES = {"Z": "0.0% Z", "E": "Exempt", "AE": "0.0% ECS", "K": "0.0% ECG", "G": "0.0% Z", "O": "No VAT"}


def tax_names(category: str, rate: Decimal) -> tuple[str, str]:
    """(Xero tax type, QuickBooks tax code) of a category and rate: 21% S is "21% (VAT on Income)"
    and "21.0% S"."""
    if category in XERO_TAX_TYPES:
        return XERO_TAX_TYPES[category], QBO_TAX_CODES[category]
    return f"{percent(rate)}% (VAT on Income)", f"{rate * 100:.1f}% S"


def run(ctx: Context, invoices: Sequence[Invoice]) -> list[Outcome]:
    outcomes, todo = triage(ctx, "sync", invoices, "synced", files_exist=True)
    built: list[tuple[Invoice, list[Row]]] = []
    for inv in todo:
        try:
            built.append((inv, invoice_rows(ctx, inv)))
        except SyncProblem as exc:
            ctx.records.mark(inv.number, "sync", FAILED, "", str(exc))
            outcomes.append(Outcome(inv.number, "sync", False, "", str(exc)))
    if not built:
        return outcomes

    folder = ctx.out_dir / "exports"
    n, files = 1, _files(folder, ctx.stamp, "", built)
    while any(path.exists() for path, _, _ in files):  # "-2", "-3", ...: never overwrite an earlier export
        n += 1
        files = _files(folder, ctx.stamp, f"-{n}", built)
    named: dict[str, list[str]] = {}
    for path, _, part in files:
        for inv, _ in part:
            named.setdefault(inv.number, []).append(relative(ctx, path))
    refs = {number: "; ".join(paths) for number, paths in named.items()}
    for ref in dict.fromkeys(refs.values()):
        ctx.records.mark_many([n for n, r in refs.items() if r == ref], "sync", STARTED, ref)
    date_format = accounting_date_format(ctx.inputs.settings.locale)
    try:
        for path, write, part in files:
            write_atomic(path, write(ctx, part, date_format))
    except OSError as exc:
        error = f"the export files could not be written to {folder}: {exc}"
        ctx.records.mark_many(refs, "sync", FAILED, "", error)
        for path, _, _ in files:
            path.unlink(missing_ok=True)
        return outcomes + [Outcome(inv.number, "sync", False, "", error) for inv, _ in built]
    for ref in dict.fromkeys(refs.values()):
        ctx.records.mark_many([n for n, r in refs.items() if r == ref], "sync", DONE, ref)
    return outcomes + [Outcome(inv.number, "sync", True, refs[inv.number], "", note=_note(ctx, inv, refs))
                       for inv, _ in built]


def _files(folder: Path, stamp: str, suffix: str, built: list[tuple[Invoice, list[Row]]]) -> list[tuple]:
    """(path, writer, its invoices) of every file of this call: per document type, the Xero file (in
    parts of at most 500) and the QuickBooks file; a type with nothing to export has none."""
    files = []
    for doc_type, (xero, qbo) in FILE_NAMES.items():
        docs = [b for b in built if b[0].doc_type is doc_type]
        if not docs:
            continue
        parts = [docs[i:i + XERO_MAX_INVOICES] for i in range(0, len(docs), XERO_MAX_INVOICES)]
        files += [(folder / f"{xero}-{stamp}{suffix}{_part(k, len(parts))}.csv", xero_csv, part)
                  for k, part in enumerate(parts)]
        files.append((folder / f"{qbo}-{stamp}{suffix}.csv", qbo_csv, docs))
    return files


def _part(n: int, count: int) -> str:
    return f"-part{n + 1}of{count}" if count > 1 else ""


def _note(ctx: Context, inv: Invoice, refs: dict[str, str]) -> str:
    if inv.doc_type is DocType.CREDIT_NOTE:
        if not inv.credits or inv.credits in refs or ((r := ctx.records.get(inv.credits, "sync")) and r.outcome == DONE):
            return ""
        return (f"credits {inv.credits}, which is not exported yet: enter or import {inv.credits} in the "
                f"accounting system before this credit note, then allocate the credit note to it")
    return _replaces_note(ctx, inv)


def _replaces_note(ctx: Context, inv: Invoice) -> str:
    synced = [n for n in ctx.replaces(inv) if (r := ctx.records.get(n, "sync")) and r.outcome == DONE]
    if not synced:
        return ""
    return (f"replaces {', '.join(synced)}, already exported to the accounting system: "
            f"void {', '.join(synced)} there when importing {inv.number}")


# ---------------------------------------------------------------- rows


def invoice_rows(ctx: Context, inv: Invoice) -> list[Row]:
    """The invoice's rows, VAT group by VAT group, reconciled to its totals. SyncProblem if a product
    has no account code."""
    d = inv.draft
    unit = minor_unit(d.currency)
    products = ctx.inputs.products
    missing = [line.product for line in d.lines
               if (product := products.get(line.product)) is None or not product.account_code.strip()]
    if missing:
        unique = list(dict.fromkeys(missing))
        names = ("product " if len(unique) == 1 else "products ") + ", ".join(repr(m) for m in unique)
        raise SyncProblem(
            f"not exported: no Account Code for {names} in the Products sheet; "
            f"add it (Product, Account Code) and run post --tasks sync again.")
    discount_product = products.get(DISCOUNT_PRODUCT) if d.discount else None
    rows = []
    for group in d.vat_groups:
        names = tax_names(group.category, group.rate)
        members = [_line_row(line, products[line.product], unit, names) for line in d.lines
                   if (line.tax_category, line.tax_rate) == (group.category, group.rate)]
        if group.discount:
            members += _discount_rows(inv, members, discount_product, unit, group.discount,
                                      names, "" if len(d.vat_groups) == 1 else f"{group.category} {percent(group.rate)}%")
        # the group's own tax, shared between its rows in proportion to their amounts
        taxes = allocate(group.tax, [r.amount for r in members], unit)
        rows += [replace(r, tax=t) for r, t in zip(members, taxes)]
    computed = sum((r.amount + r.tax for r in rows), Decimal(0))
    if computed != d.total:  # cannot happen unless the ledger's totals do not add up
        raise SyncProblem(f"not exported: its rows add up to {computed} but the invoice total is {d.total}; "
                          "please report this to the billing_batch maintainers.")
    return rows


def _tax_of(product: Product | None, names: tuple[str, str]) -> tuple[str, str]:
    """The product's Tax Type in both files where it gives one, else the category's names."""
    override = product.tax_type.strip() if product is not None else ""
    return (override, override) if override else names


def _line_row(line: Line, product: Product, unit: Decimal, names: tuple[str, str]) -> Row:
    description = line.description.strip() or line.product
    if line.kind is LineKind.ADJUSTMENT:
        description = f"Adjustment to {line.corrects}: {description}" if line.corrects else f"Adjustment: {description}"
    if line.period_start != line.period_end:
        description += f" ({line.period_start.isoformat()} to {line.period_end.isoformat()})"
    else:
        description += f" ({line.period_start.isoformat()})"
    exact = (line.quantity * line.unit_price == line.amount
             and _decimals(line.quantity) <= MAX_DECIMALS and _decimals(line.unit_price) <= MAX_DECIMALS)
    if exact:
        quantity, unit_amount = line.quantity, line.unit_price
    else:
        quantity, unit_amount = Decimal(1), line.amount
        basis = f"{_plain(line.quantity)} x {_plain(line.unit_price)}"
        if line.kind is LineKind.RECURRING:
            basis += " a month"
        description += f": {basis}" + (", prorated" if line.prorated else "")
    tax_type, tax_code = _tax_of(product, names)
    return Row(line.product, description, quantity, unit_amount, quantity * unit_amount,
               product.account_code.strip(), tax_type, Decimal(0), line.period_start, tax_code)


def _discount_rows(inv: Invoice, rows: list[Row], discount_product: Product | None, unit: Decimal,
                   discount: Decimal, names: tuple[str, str], group: str) -> list[Row]:
    """A VAT group's share of the discount as negative rows: on the Discount product's account, or
    shared between the group's accounts and tax types in proportion to their amounts."""
    d = inv.draft
    label = f"Discount {_plain(d.discount_rate * 100)}%" if d.discount_rate else "Discount"
    if group:
        label += f" on VAT {group}"
    if discount_product is not None and discount_product.account_code.strip():
        tax_type, tax_code = _tax_of(discount_product, names)
        return [Row(DISCOUNT_PRODUCT, label, Decimal(1), -discount, -discount,
                    discount_product.account_code.strip(), tax_type, Decimal(0), None, tax_code)]
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.account_code, r.tax_type, r.tax_code), []).append(r)
    shares = allocate(discount, [sum((r.amount for r in g), Decimal(0)) for g in groups.values()], unit)
    out = []
    for ((code, tax_type, tax_code), members), share in zip(groups.items(), shares):
        if share:
            text = label if len(groups) == 1 else f"{label} on account {code}"
            out.append(Row(members[0].product, text, Decimal(1), -share, -share, code, tax_type, Decimal(0), None,
                           tax_code))
    return out


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _money(value: Decimal, unit: Decimal) -> str:
    return format(value.quantize(unit), "f")


def _price(value: Decimal, unit: Decimal) -> str:
    """A unit price: with the currency's decimals, or more when it has more (at most 4)."""
    return _plain(value) if _decimals(value) > _decimals(unit) else _money(value, unit)


# ---------------------------------------------------------------- files


def accounting_date_format(locale: str) -> str:
    """Both importers read dates in the organisation's regional format: month first in the US,
    day first elsewhere. The workbook's Locale stands for the organisation's region."""
    try:
        territory = Locale.parse(locale.replace("-", "_")).territory
    except (ValueError, TypeError):
        territory = None
    return "%m/%d/%Y" if territory == "US" else "%d/%m/%Y"


def _address(ctx: Context, inv: Invoice) -> dict[str, str]:
    customer = ctx.customer(inv)
    if customer is None:  # no longer in the workbook: the address printed on the invoice
        lines = list(inv.buyer.address_lines)
        return {"lines": lines[:4] if len(lines) <= 4 else lines[:3] + [", ".join(lines[3:])],
                "city": "", "postal": "", "country": ""}
    lines = [part.strip() for part in customer.address.splitlines() if part.strip()]
    if len(lines) > 4:
        lines = lines[:3] + [", ".join(lines[3:])]
    return {"lines": lines, "city": customer.city, "postal": customer.postal_code, "country": customer.country}


def xero_csv(ctx: Context, built: list[tuple[Invoice, list[Row]]], date_format: str) -> bytes:
    """Xero's sales invoice import, or its credit note import when the documents are credit notes
    (one type per file): the same columns but for the number, the date and the Reference, which
    names the credited invoice, and the amounts as the credit note has them (positive: credited)."""
    credit = any(inv.doc_type is DocType.CREDIT_NOTE for inv, _ in built)
    columns = XERO_CREDIT_COLUMNS if credit else XERO_COLUMNS
    table = []
    for inv, rows in built:
        d = inv.draft
        unit = minor_unit(d.currency)
        customer = ctx.customer(inv)
        address = _address(ctx, inv)
        lines = address["lines"] + [""] * (4 - len(address["lines"]))
        email = customer.email if customer is not None else inv.buyer.email
        for r in rows:
            record = {
                "*ContactName": d.customer_name,
                "EmailAddress": email.replace(";", ",").split(",")[0].strip(),
                "POAddressLine1": lines[0], "POAddressLine2": lines[1],
                "POAddressLine3": lines[2], "POAddressLine4": lines[3],
                "POCity": address["city"], "PORegion": "", "POPostalCode": address["postal"],
                "POCountry": address["country"],
                "*InvoiceNumber": inv.number,
                "Reference": f"{d.contract_id} {d.cycle_start.isoformat()} to {d.cycle_end.isoformat()}",
                "*InvoiceDate": inv.invoice_date.strftime(date_format),
                "*DueDate": inv.due_date.strftime(date_format),
                "*Description": r.description,
                "*Quantity": _plain(r.quantity),
                "*UnitAmount": _price(r.unit_amount, unit),
                "*AccountCode": r.account_code,
                "*TaxType": r.tax_type,
                "TaxAmount": _money(r.tax, unit),
                "Currency": d.currency,
            }
            if credit:
                record.update({"*CreditNoteNumber": inv.number, "*CreditNoteDate": record["*InvoiceDate"],
                               "Reference": inv.credits or ""})
            table.append([record.get(column, "") for column in columns])
    return csv_bytes(columns, table, XERO_NUMBERS)


def qbo_csv(ctx: Context, built: list[tuple[Invoice, list[Row]]], date_format: str) -> bytes:
    """QuickBooks Online's invoice import, or its credit note import (see xero_csv)."""
    credit = any(inv.doc_type is DocType.CREDIT_NOTE for inv, _ in built)
    columns = QBO_CREDIT_COLUMNS if credit else QBO_COLUMNS
    table = []
    for inv, rows in built:
        d = inv.draft
        unit = minor_unit(d.currency)
        for r in rows:
            record = {
                "InvoiceNo": inv.number,
                "Customer": d.customer_name,
                "InvoiceDate": inv.invoice_date.strftime(date_format),
                "DueDate": inv.due_date.strftime(date_format),
                "Memo": f"Contract {d.contract_id}, period {d.cycle_start.isoformat()} to {d.cycle_end.isoformat()}",
                "Item(Product/Service)": r.product,
                "ItemDescription": r.description,
                "ItemQuantity": _plain(r.quantity),
                "ItemRate": _price(r.unit_amount, unit),
                "ItemAmount": _money(r.amount, unit),
                "ItemTaxCode": r.tax_code,
                "ItemTaxAmount": _money(r.tax, unit),
                "Currency": d.currency,
                "Service Date": r.service_date.strftime(date_format) if r.service_date else "",
            }
            if credit:
                credits = f"Credits invoice {inv.credits}" + (
                    f" of {inv.credits_date.isoformat()}" if inv.credits_date else "") + "; " if inv.credits else ""
                record.update({"CreditNoteNo": inv.number, "CreditNoteDate": record["InvoiceDate"],
                               "Memo": credits + record["Memo"]})
            table.append([record.get(column, "") for column in columns])
    return csv_bytes(columns, table, QBO_NUMBERS)
