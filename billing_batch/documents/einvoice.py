"""EN 16931 e-invoices from ledger invoices: the business terms as the `factur-x` library's dictionary
(keyed by BT and BG numbers), then CII (Factur-X) or UBL (XRechnung, Peppol) XML. Pure: the XML is a
function of the Invoice alone, so a rerun writes the same bytes (nothing in it holds a timestamp).

What goes where:
- BT-3 is 380 for an invoice and 381 for a credit note, which names the invoice it credits (BG-3).
- Every line of the invoice, Adjustment lines too, is an invoice line (BG-25) with its VAT category and rate,
  its amount its quantity x net price / base quantity rounded once, as its PDF prints it (_price).
- The VAT breakdown (Draft.vat_groups) is BG-23; the discount is one document-level allowance (BG-20)
  per VAT group that carries a share of it, with that group's category and rate.
- Payment means: SEPA direct debit (59: mandate BT-89, debtor IBAN BT-91, creditor ID BT-90) for a
  buyer with a mandate, otherwise credit transfer (58) to the seller's IBAN (BT-84). The due date
  (BT-9) and the payment terms (BT-20) are always given (BR-CO-25 of the rules' 1.3.15).
"""
from __future__ import annotations

import logging
from decimal import Decimal

from lxml import etree

from billing_batch.engine.pricing import exact_amount
from billing_batch.model import DocType, EInvoice, Invoice, Line, Party

# The CustomizationID (BT-24) and ProfileID (BT-23) of each format.
EN16931 = "urn:cen.eu:en16931:2017"
SPECIFICATION = {
    EInvoice.FACTUR_X: EN16931,
    EInvoice.XRECHNUNG: f"{EN16931}#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0",
    EInvoice.PEPPOL: f"{EN16931}#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0",
}
UBL_CBC = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2"
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
PEPPOL_PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
INVOICE, CREDIT_NOTE = "380", "381"
CREDIT_TRANSFER, DIRECT_DEBIT = "58", "59"
UNIT = "C62"  # UN/ECE Recommendation 20: "one", a unit of whatever the line bills
DAY = "DAY"  # ... and a day of one: a prorated line bills unit-days
DISCOUNT_REASON = ("Discount", "95")  # UNCL5189 95: discount
NO_RATE = ("O",)  # outside the scope of VAT: the lines and the breakdown carry no rate (BR-O-05, BR-O-10)
NO_REASON = ("S", "Z")  # standard and zero rated: no exemption reason (BR-S-10, BR-Z-10)
# factur-x logs a warning when it fills in BT-24 itself, and skips its own (online) Schematron check.
logging.getLogger("factur-x").setLevel(logging.ERROR)


def einvoice_of(invoice: Invoice) -> EInvoice | None:
    return EInvoice(invoice.buyer.einvoice) if invoice.buyer.einvoice else None


def _amount(value: Decimal) -> str:
    return format(value, "f")


def _percent(rate: Decimal) -> str:
    return format((rate * 100).normalize(), "f")


def _price(line: Line) -> tuple[Decimal, str, Decimal, Decimal, str]:
    """Quantity (BT-129), its unit (BT-130), net price (BT-146, never negative: BR-27), base quantity
    (BT-149) and a note for the line, such that quantity x price / base quantity, rounded once, is the
    line's amount (BT-131), as on the PDF. A price per month is per unit for the whole cycle (the
    unit price x the cycle's months); a prorated one bills the unit-days (quantity x days) at that
    price per the full cycle's days. A sum (quantity 0: a credit of an amount, a rounding) is one
    unit at its amount; so is a line issued before the ledger kept its factors, unless its quantity
    makes its amount at its price or at a price of four decimals."""
    quantity, unit, price, base = line.quantity, UNIT, line.unit_price, Decimal(1)
    note = ""
    if line.months is not None and line.full_days and line.quantity:
        price = line.unit_price * line.months
        if line.days != line.full_days:
            quantity, unit, base = line.quantity * line.days, DAY, Decimal(line.full_days)
        if line.months != 1 or line.days != line.full_days:
            note = f"{line.quantity} x {line.unit_price} per month x {line.months} month(s)" + (
                f" x {line.days}/{line.full_days} days" if line.days != line.full_days else "")
    elif exact_amount(line) is None:
        exact = line.amount / quantity if quantity else None  # no quantity: a sum
        if exact is not None and exact == exact.quantize(Decimal("0.0001")):
            price = exact
        else:
            quantity, price = Decimal(1), line.amount
        if line.prorated:
            note = f"Prorated: {line.quantity} x {line.unit_price}"
    if price < 0:
        quantity, price = -quantity, -price
    return quantity, unit, price, base, note


def _party(party: Party, with_legal: bool) -> dict:
    street = [part.strip() for part in party.street.splitlines() if part.strip()]
    data = {
        "name": party.name,
        "country_code": party.country,
        "city": party.city,
        "postcode": party.postal_code,
        "country_subdivision": party.state,  # BT-39 (seller), BT-54 (buyer)
        "addr_l1": street[0] if street else "",
        "addr_l2": " ".join(street[1:2]),
        "addr_l3": ", ".join(street[2:]),
        "vat_identifier": party.vat_id,
        "einvoicing_addr": party.electronic_address,
        "einvoicing_addr_schemeid": party.electronic_scheme,
    }
    if with_legal and party.registration_id:
        data["legal_identifier"] = party.registration_id
        data["legal_identifier_schemeid"] = party.registration_scheme
    contact = {"name": party.contact_name, "phone": party.contact_phone, "email": party.contact_email}
    if any(contact.values()):
        data["contacts"] = [{k: v for k, v in contact.items() if v}]
    return {k: v for k, v in data.items() if v}


def _line(n: int, line: Line) -> dict:
    quantity, unit, price, base, note = _price(line)
    data = {
        "BT-126": str(n),
        "BT-129": format(quantity, "f"),
        "BT-130": unit,
        "BT-131": _amount(line.amount),
        "BT-134": line.period_start,
        "BT-135": line.period_end,
        "BT-146": format(price, "f"),
        "BT-151": line.tax_category,
        "BT-153": line.product,
    }
    if base != 1:
        data["BT-149"] = format(base, "f")
    if line.tax_category not in NO_RATE:
        data["BT-152"] = _percent(line.tax_rate)
    if line.description and line.description != line.product:
        data["BT-154"] = line.description
    if note:
        data["BT-127-00"] = [{"BT-127": note}]
    return data


def business_terms(invoice: Invoice) -> dict:
    """The invoice's EN 16931 business terms, as factur-x's generate_xml takes them."""
    draft, seller, buyer = invoice.draft, invoice.seller, invoice.buyer
    days = (invoice.due_date - invoice.invoice_date).days
    data = {
        "BT-1": invoice.number,
        "BT-2": invoice.invoice_date,
        "BT-3": CREDIT_NOTE if invoice.doc_type is DocType.CREDIT_NOTE else INVOICE,
        "BT-5": draft.currency,
        "BT-9": invoice.due_date,
        "BT-12": draft.contract_id,
        "BT-20": f"Net {days} days" if days > 0 else "Due on receipt",
        "BT-24": EN16931,
        "BT-73": draft.cycle_start,
        "BT-74": draft.cycle_end,
        "BT-83": invoice.number,
        "BG-4": _party(seller, with_legal=True),
        "BG-7": _party(buyer, with_legal=False),
        "BG-25": [_line(n, line) for n, line in enumerate(draft.lines, start=1)],
        "BG-23": [],
        "BT-106": _amount(draft.subtotal),
        "BT-109": _amount(draft.subtotal - draft.discount),
        "BT-110": _amount(draft.tax),
        "BT-112": _amount(draft.total),
        "BT-115": _amount(draft.total),
    }
    for key, value in (("BT-10", buyer.buyer_reference), ("BT-13", buyer.purchase_order)):
        if value:
            data[key] = value
    if invoice.doc_type is DocType.CREDIT_NOTE and invoice.credits:
        data["BG-3"] = [{"BT-25": invoice.credits, **({"BT-26": invoice.credits_date} if invoice.credits_date else {})}]
    if invoice.reason:  # a credit note's reason, as its PDF prints it
        data["BG-1"] = [{"BT-22": invoice.reason}]
    for group in draft.vat_groups:
        entry = {"BT-116": _amount(group.taxable), "BT-117": _amount(group.tax), "BT-118": group.category}
        if group.category not in NO_RATE:
            entry["BT-119"] = _percent(group.rate)
        if group.category not in NO_REASON and group.exemption_reason:
            entry["BT-120"] = group.exemption_reason
        data["BG-23"].append(entry)
    allowances = [{"amount": _amount(g.discount), "reason": DISCOUNT_REASON[0], "reason_code": DISCOUNT_REASON[1],
                   "vat_category_code": g.category, **({} if g.category in NO_RATE else {"vat_rate": _percent(g.rate)})}
                  for g in draft.vat_groups if g.discount]
    if allowances:
        data["BG-20"] = allowances
        data["BT-107"] = _amount(draft.discount)
    if any(g.category == "K" for g in draft.vat_groups):  # an intra-community supply names where it goes (BR-IC-12)
        data["BG-13"] = {"country_code": buyer.country}
    if buyer.mandate_id:
        data.update({"BT-81": DIRECT_DEBIT, "BT-89": buyer.mandate_id, "BT-91": buyer.iban})
        if seller.creditor_id:
            data["BT-90"] = seller.creditor_id
    else:
        data.update({"BT-81": CREDIT_TRANSFER, "BT-84": seller.iban})
        if seller.bic:
            data["BT-86"] = seller.bic
    return data


def einvoice_xml(invoice: Invoice, kind: EInvoice | None = None) -> bytes:
    """The invoice as the XML its buyer's e-invoice format takes: CII for Factur-X, UBL for the others."""
    kind = kind or einvoice_of(invoice)
    if kind is None:
        raise ValueError(f"invoice {invoice.number} is for a customer without an e-invoice format")
    from facturx import generate_xml  # lxml and the library load only where e-invoices are made

    data = business_terms(invoice)
    if kind is EInvoice.PEPPOL:
        data["BT-23"] = PEPPOL_PROCESS
    flavor = "factur-x" if kind is EInvoice.FACTUR_X else "ubl-2.1"
    xml = generate_xml(data, flavor=flavor, level="en16931", check_xsd=False, check_schematron=False)
    return _finished(xml, SPECIFICATION[kind])


def _finished(xml: bytes, specification: str) -> bytes:
    """factur-x writes BT-24 for plain EN 16931 only: set the format's own (a CIUS, such as XRechnung).
    And it marks an element left empty (CII's delivery, for services) xsi:nil, which the CII schema
    refuses: an empty element is what the schema wants."""
    root = etree.fromstring(xml)
    for node in root.iter():
        node.attrib.pop(XSI_NIL, None)
    node = root.find(f"{{{UBL_CBC}}}CustomizationID")
    if node is None:
        node = root.find(".//{*}GuidelineSpecifiedDocumentContextParameter/{*}ID")
    node.text = specification
    etree.cleanup_namespaces(root)
    return etree.tostring(root, pretty_print=True, xml_declaration=True, encoding="UTF-8")


def factur_x_pdf(pdf: bytes, xml: bytes) -> bytes:
    """A PDF/A-3b (WeasyPrint's pdf_variant="pdf/a-3b") made a Factur-X at the EN 16931 profile: the CII
    embedded as factur-x.xml with AFRelationship Alternative, and the Factur-X XMP metadata."""
    from facturx import generate_from_binary

    return generate_from_binary(pdf, xml, flavor="factur-x", level="en16931", check_xsd=False,
                                check_schematron=False, afrelationship="alternative")
