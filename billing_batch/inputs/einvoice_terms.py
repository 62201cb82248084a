"""What each e-invoice format needs from the workbook, checked before billing. Pure.

A customer on an e-invoice format whose data is incomplete is set aside, each missing business term
named with its BT number: the XML would fail the official rules (billing_batch.documents.einvoice_check), and a
buyer's system, or a public body's portal, refuses such an invoice.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel.numbers import get_currency_precision

from billing_batch.errors import Problem, problem
from billing_batch.i18n import country_code
from billing_batch.model import Contract, Customer, EInvoice, Settings, Source

FORMATS = ", ".join(o.value for o in EInvoice)
ALL = frozenset(EInvoice)
NETWORK = frozenset({EInvoice.XRECHNUNG, EInvoice.PEPPOL})  # sent over Peppol: both parties need an address
XRECHNUNG = frozenset({EInvoice.XRECHNUNG})
RULES = Path(__file__).parent.parent / "einvoice_rules" / "cen" / "EN16931-UBL-validation.xslt"


@dataclass(frozen=True)
class Term:
    column: str  # the Settings key or the Customers column
    field: str  # of Settings or Customer
    words: str  # what it is, for finance
    bt: str
    formats: frozenset[EInvoice]


SELLER = (
    Term("Company Name", "company_name", "the seller's name", "BT-27", ALL),
    Term("Company Country", "company_country", "the seller's country", "BT-40", ALL),
    Term("VAT ID", "vat_id", "the seller's VAT ID", "BT-31", ALL),
    Term("Company City", "company_city", "the seller's city", "BT-37", XRECHNUNG),
    Term("Company Postal Code", "company_postal_code", "the seller's postal code", "BT-38", XRECHNUNG),
    Term("Contact Name", "contact_name", "the seller's contact person", "BT-41", XRECHNUNG),
    Term("Contact Phone", "contact_phone", "the seller's contact phone number", "BT-42", XRECHNUNG),
    Term("Contact Email", "contact_email", "the seller's contact email address", "BT-43", XRECHNUNG),
    Term("Electronic Address", "electronic_address", "the seller's electronic address", "BT-34", NETWORK),
    Term("Electronic Address Scheme", "electronic_scheme", "the scheme of the seller's electronic address",
         "BT-34-1", NETWORK),
)
# Paid by credit transfer (no mandate): to the seller's account; collected by direct debit: under its creditor ID.
CREDIT_TRANSFER = Term("Creditor IBAN", "creditor_iban", "the seller's IBAN for payment by transfer", "BT-84", ALL)
DIRECT_DEBIT = Term("Creditor ID", "creditor_id", "the seller's SEPA creditor identifier for direct debit",
                    "BT-90", ALL)
BUYER = (
    Term("Country", "country", "the buyer's country", "BT-55", ALL),
    Term("City", "city", "the buyer's city", "BT-52", XRECHNUNG),
    Term("Postal Code", "postal_code", "the buyer's postal code", "BT-53", XRECHNUNG),
    Term("Buyer Reference", "buyer_reference", "the buyer reference, for a German public body its Leitweg-ID,",
         "BT-10", XRECHNUNG),
    Term("Electronic Address", "electronic_address", "the buyer's electronic address", "BT-49", NETWORK),
    Term("Electronic Address Scheme", "electronic_scheme", "the scheme of the buyer's electronic address",
         "BT-49-1", NETWORK),
)


def format_of(customer: Customer, settings: Settings) -> EInvoice | None:
    return customer.einvoice or settings.einvoice


def _collected(customer: Customer) -> bool:
    return bool(customer.mandate_id and customer.iban)


@lru_cache(maxsize=2)
def _code_list(rule: str) -> frozenset[str]:
    """A code list as the official rules check it (read from the vendored CEN rules, so the two agree)."""
    text = RULES.read_text(encoding="utf-8")
    test = re.search(r'<svrl:failed-assert test="([^"]*)"[^>]*>\s*<xsl:attribute name="id">' + rule + "<", text)
    return frozenset(re.search(r"contains\('( [^']+ )'", test.group(1)).group(1).split())


def EAS() -> frozenset[str]:
    """The electronic address schemes (CEF EAS code list, rule BR-CL-25)."""
    return _code_list("BR-CL-25")


def ICD() -> frozenset[str]:
    """The registration ID schemes (ISO 6523 ICD, rule BR-CL-11)."""
    return _code_list("BR-CL-11")


def seller_gaps(settings: Settings, customers: dict[str, Customer],
                where: Source) -> list[tuple[Problem, list[str]]]:
    """Each seller term the e-invoice customers need and the Settings lack, with the customers it sets aside."""
    gaps = []
    for term in (*SELLER, CREDIT_TRANSFER, DIRECT_DEBIT):
        lacking = [c.customer_id for c in customers.values() if (kind := format_of(c, settings))
                   and kind in term.formats and not getattr(settings, term.field)
                   and (term is not CREDIT_TRANSFER or not _collected(c))
                   and (term is not DIRECT_DEBIT or _collected(c))]
        if lacking:
            shown = ", ".join(lacking[:5]) + (f" and {len(lacking) - 5} more" if len(lacking) > 5 else "")
            gaps.append((problem(
                "BB163", where, f"The e-invoices of {shown} need {term.words} ({term.bt}): the setting "
                f"{term.column} is missing, so they are set aside.", key=term.column), lacking))
    return gaps


def buyer_gaps(settings: Settings, customers: dict[str, Customer], rows: dict, contracts: dict[str, Contract],
               contract_rows: dict) -> list[Problem]:
    """Each missing or unusable term of an e-invoice customer, at its cell; and the contracts in a currency
    EN 16931 cannot carry. rows, contract_rows: each customer's and contract's row."""
    problems = []
    for customer in customers.values():
        kind = format_of(customer, settings)
        row = rows.get(customer.customer_id)
        if kind is None or row is None:
            continue
        for term in BUYER:
            if kind in term.formats and not getattr(customer, term.field):
                problems.append(problem(
                    "BB162", row[term.column].source, f"Customer {customer.customer_id} gets {kind.value} "
                    f"e-invoices, which need {term.words.rstrip(',')} ({term.bt}); the cell is empty.",
                    customer_id=customer.customer_id))
        if customer.country and not country_code(customer.country):
            problems.append(problem(
                "BB165", row["Country"].source, f"The Country {customer.country} is not a country we know; the "
                f"{kind.value} e-invoice needs its ISO code (BT-55).", value=customer.country,
                customer_id=customer.customer_id))
    for contract in contracts.values():
        customer = customers.get(contract.customer_id)
        kind = customer and format_of(customer, settings)
        if kind and get_currency_precision(contract.currency) > 2:
            problems.append(problem(
                "BB164", contract_rows[contract.contract_id]["Currency"].source,
                f"Contract {contract.contract_id} bills in {contract.currency}, which has "
                f"{get_currency_precision(contract.currency)} decimals; EN 16931 e-invoices ({kind.value}) allow "
                "at most two.", value=contract.currency, contract_id=contract.contract_id))
        if kind is EInvoice.PEPPOL and customer and not customer.buyer_reference and not contract.purchase_order:
            row = rows.get(customer.customer_id)
            problems.append(problem(
                "BB162", row["Buyer Reference"].source, f"Customer {customer.customer_id} gets Peppol e-invoices, "
                f"which need the buyer reference (BT-10) or, on contract {contract.contract_id}, the purchase order "
                "(BT-13); both are empty.", contract_id=contract.contract_id))
    return problems
