"""The Customers sheet: who is billed, their tax, language and e-invoice terms.
Bank details are read as typed: billing does not need them, so a bad IBAN is reported but sets nothing aside."""
from __future__ import annotations

from dataclasses import replace

from billing_batch import i18n
from billing_batch.engine import tax
from billing_batch.errors import problem
from billing_batch.inputs import einvoice_terms
from billing_batch.inputs.bank_ids import iban_problem
from billing_batch.inputs.validate.cells import EN, RowReader, einvoice_format
from billing_batch.inputs.validate.rows import unique
from billing_batch.inputs.validate.tax_checks import tax_category
from billing_batch.model import Customer


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
            state=r.text("State"),
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
            if typed.upper() not in einvoice_terms.EAS():
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
