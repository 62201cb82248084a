"""EN 16931 e-invoices: Factur-X PDFs, XRechnung and Peppol UBL, made by a real run from a workbook and
checked by the official rules (XSD, CEN EN 16931 Schematron, XRechnung Schematron), offline."""
from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import pikepdf
import pytest
from lxml import etree

from billing_batch.documents import einvoice
from billing_batch.documents import einvoice_check
from billing_batch.ledger.store import Ledger
from billing_batch.model import DocType, EInvoice, Invoice, InvoiceStatus
from workbooks import HEADERS, contract, customer, settings, subscription, write_book

AS_OF = "2026-02-02"
SELLER_VAT = "DE129273398"
HEADERS_EINV = {
    "Customers": HEADERS["Customers"] + ["VAT ID", "Tax Category", "E-Invoice", "Buyer Reference",
                                         "Electronic Address", "Electronic Address Scheme", "IBAN", "BIC",
                                         "Mandate ID", "Mandate Date"],
    "Contracts": HEADERS["Contracts"] + ["Purchase Order"],
}
SELLER = {"Company Name": "Nordlicht Software GmbH", "Company Address": "Torstraße 1\n10119 Berlin",
          "Company Email": "rechnung@nordlicht.example",
          "Company Street": "Torstraße 1", "Company City": "Berlin", "Company Postal Code": "10119",
          "Company Country": "DE", "VAT ID": SELLER_VAT, "Company Registration ID": "HRB 123456",
          "Electronic Address": "rechnung@nordlicht.example", "Electronic Address Scheme": "EM",
          "Contact Name": "Anna Weber", "Contact Phone": "+49 30 1234567", "Contact Email": "anna@nordlicht.example",
          "Creditor IBAN": "DE89370400440532013000", "Creditor BIC": "COBADEFFXXX", "Creditor ID": "DE98ZZZ09999999999",
          "Default Currency": "EUR", "Locale": "de_DE"}
CUSTOMERS = {
    # a German business, 19 %, a discount, paid by transfer
    "CUST-FX": customer("CUST-FX", Name="Kunde AG", Address="Hauptstraße 5", City="München", **{
        "Postal Code": "80331", "Country": "Germany", "Tax Rate": 0.19, "VAT ID": "DE136695976",
        "E-Invoice": "Factur-X"}),
    # a German public body: its Leitweg-ID as Buyer Reference and electronic address
    "CUST-XR": customer("CUST-XR", Name="Bezirksamt Mitte von Berlin", Address="Karl-Marx-Allee 31", City="Berlin", **{
        "Postal Code": "10178", "Country": "DE", "Tax Rate": 0.19, "E-Invoice": "XRechnung",
        "Buyer Reference": "991-33333TEST-33", "Electronic Address": "991-33333TEST-33",
        "Electronic Address Scheme": "0204"}),
    # a Belgian business under reverse charge, over Peppol, collected by SEPA direct debit
    "CUST-PE": customer("CUST-PE", Name="Belliard Data Services SRL", Address="Rue Belliard 40", City="Bruxelles", **{
        "Postal Code": "1040", "Country": "Belgium", "Tax Rate": 0.21, "VAT ID": "BE0477472701",
        "Tax Category": "AE", "E-Invoice": "Peppol", "Electronic Address": "0477472701",
        "Electronic Address Scheme": "0208", "IBAN": "BE71096123456769", "BIC": "GKCCBEBB", "Mandate ID": "MANDATE-7",
        "Mandate Date": date(2025, 12, 1)}),
}


def einvoice_book(path: Path, seller: dict | None = None, **customer_cells: dict) -> Path:
    rows = [{**row, **customer_cells.get(cid, {})} for cid, row in CUSTOMERS.items()]
    return write_book(path, {
        "Customers": rows,
        "Contracts": [contract("CTR-FX", "CUST-FX", Currency="EUR", Discount=0.1, **{"Purchase Order": "PO-4711"}),
                      contract("CTR-XR", "CUST-XR", Currency="EUR"),
                      contract("CTR-PE", "CUST-PE", Currency="EUR", **{"Purchase Order": "PO-2026-17"})],
        "Subscriptions": [subscription("SUB-1", "CTR-FX", 3, 40), subscription("SUB-2", "CTR-XR", 1, 250),
                          subscription("SUB-3", "CTR-PE", 2, 500)],
        "Settings": settings(**{**SELLER, **(seller or {})}),
    }, headers=HEADERS_EINV)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True)


def bill(tmp_path: Path, book: Path | None = None, out: Path | None = None) -> Path:
    out = out or tmp_path / "out"
    book = book or einvoice_book(tmp_path / "billing.xlsx")
    result = run_cli("run", "--input", str(book), "--output", str(out), "--as-of", AS_OF, "--jobs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def issued(out: Path) -> dict[str, Invoice]:
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        return {i.draft.customer_id: i for i in ledger.invoices()}


@pytest.fixture(scope="module")
def billed(tmp_path_factory) -> Path:
    return bill(tmp_path_factory.mktemp("einv"))


def rules(result: einvoice_check.Result) -> set[str]:
    return {f.rule for f in result.errors}


# ---------------------------------------------------------------- what the batch makes


def test_every_einvoice_the_run_makes_passes_the_official_rules(billed: Path):
    invoices = issued(billed)
    assert sorted(invoices) == ["CUST-FX", "CUST-PE", "CUST-XR"]
    for cid, kind, syntax, xrechnung in (("CUST-FX", EInvoice.FACTUR_X, einvoice_check.Syntax.CII, False),
                                         ("CUST-XR", EInvoice.XRECHNUNG, einvoice_check.Syntax.UBL, True),
                                         ("CUST-PE", EInvoice.PEPPOL, einvoice_check.Syntax.UBL, False)):
        invoice = invoices[cid]
        assert invoice.buyer.einvoice == kind.value
        result = einvoice_check.check_file(billed / invoice.einvoice_name)
        assert (result.syntax, result.xrechnung) == (syntax, xrechnung)
        assert result.errors == (), (cid, [str(f) for f in result.errors])
    factur_x = einvoice_check.check_file(billed / invoices["CUST-FX"].pdf_name)
    assert factur_x.syntax is einvoice_check.Syntax.CII and factur_x.errors == ()


def test_the_terms_come_from_the_workbook(billed: Path):
    invoices = issued(billed)
    fx = etree.parse(str(billed / invoices["CUST-FX"].einvoice_name))
    ns = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
          "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"}
    assert fx.findtext(".//rsm:ExchangedDocument/ram:TypeCode", namespaces=ns) == "380"
    assert fx.findtext(".//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID", namespaces=ns) == "PO-4711"
    assert fx.findtext(".//ram:SellerTradeParty/ram:PostalTradeAddress/ram:CountryID", namespaces=ns) == "DE"
    assert fx.findtext(".//ram:SpecifiedTradeSettlementPaymentMeans/ram:TypeCode", namespaces=ns) == "58"
    assert fx.findtext(".//ram:PayeePartyCreditorFinancialAccount/ram:IBANID", namespaces=ns) == SELLER["Creditor IBAN"]
    # 3 x 40.00 = 120.00, 10 % off as a document-level allowance = 12.00; VAT round(108.00 x 19 %) = 20.52
    subtotal = D(3) * D(40)
    discount = (subtotal * D("0.1")).quantize(D("0.01"))
    tax = ((subtotal - discount) * D("0.19")).quantize(D("0.01"))
    allowance = fx.find(".//ram:SpecifiedTradeAllowanceCharge", namespaces=ns)
    assert allowance.findtext("ram:ChargeIndicator/*", namespaces=ns) == "false"
    assert D(allowance.findtext("ram:ActualAmount", namespaces=ns)) == discount
    assert allowance.findtext("ram:CategoryTradeTax/ram:CategoryCode", namespaces=ns) == "S"
    assert D(fx.findtext(".//ram:ApplicableTradeTax/ram:CalculatedAmount", namespaces=ns)) == tax
    assert D(fx.findtext(".//ram:GrandTotalAmount", namespaces=ns)) == subtotal - discount + tax

    pe = etree.parse(str(billed / invoices["CUST-PE"].einvoice_name))
    ubl = {"cbc": "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2",
           "cac": "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"}
    assert pe.findtext("cbc:CustomizationID", namespaces=ubl) == einvoice.SPECIFICATION[EInvoice.PEPPOL]
    assert pe.findtext("cbc:ProfileID", namespaces=ubl) == einvoice.PEPPOL_PROCESS
    means = pe.find("cac:PaymentMeans", namespaces=ubl)
    assert means.findtext("cbc:PaymentMeansCode", namespaces=ubl) == "59"
    assert means.findtext("cac:PaymentMandate/cbc:ID", namespaces=ubl) == "MANDATE-7"
    assert means.findtext("cac:PaymentMandate/cac:PayerFinancialAccount/cbc:ID", namespaces=ubl) == "BE71096123456769"
    endpoint = pe.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", namespaces=ubl)
    assert (endpoint.get("schemeID"), endpoint.text) == ("0208", "0477472701")
    assert pe.findtext(".//cac:TaxTotal/cac:TaxSubtotal/cac:TaxCategory/cbc:ID", namespaces=ubl) == "AE"

    xr = etree.parse(str(billed / invoices["CUST-XR"].einvoice_name))
    assert xr.findtext("cbc:BuyerReference", namespaces=ubl) == "991-33333TEST-33"
    assert xr.findtext("cbc:CustomizationID", namespaces=ubl) == einvoice.SPECIFICATION[EInvoice.XRECHNUNG]


def test_the_factur_x_pdf_carries_the_xml_the_batch_wrote(billed: Path):
    invoice = issued(billed)["CUST-FX"]
    pdf = (billed / invoice.pdf_name).read_bytes()
    assert einvoice_check.extract_xml(pdf) == (billed / invoice.einvoice_name).read_bytes()
    assert einvoice_check.container_problems(pdf) == []
    with pikepdf.open(billed / invoice.pdf_name) as doc, doc.open_metadata() as xmp:
        assert xmp["pdfaid:part"] == "3" and xmp["pdfaid:conformance"] == "B"
    # a plain PDF (another customer's) is no Factur-X: the container check says why
    plain = (billed / issued(billed)["CUST-XR"].pdf_name).read_bytes()
    assert any("factur-x.xml" in p for p in einvoice_check.container_problems(plain))


def test_a_rerun_and_a_deleted_file_give_byte_identical_xml(billed: Path, tmp_path: Path):
    invoices = issued(billed)
    before = {cid: (billed / i.einvoice_name).read_bytes() for cid, i in invoices.items()}
    (billed / invoices["CUST-PE"].einvoice_name).unlink()
    assert run_cli("run", "--input", str(einvoice_book(tmp_path / "billing.xlsx")), "--output", str(billed),
                   "--as-of", AS_OF, "--jobs", "1").returncode == 0
    assert {cid: (billed / i.einvoice_name).read_bytes() for cid, i in invoices.items()} == before
    # and from the ledger alone, in this process, the same bytes
    assert {cid: einvoice.einvoice_xml(i) for cid, i in invoices.items()} == before


def test_a_credit_note_is_type_381_naming_the_invoice_it_credits(billed: Path):
    for cid in CUSTOMERS:
        invoice = issued(billed)[cid]
        note = replace(invoice, number="CN-000001", doc_type=DocType.CREDIT_NOTE, credits=invoice.number,
                       credits_date=invoice.invoice_date, status=InvoiceStatus.ISSUED)
        xml = einvoice.einvoice_xml(note)
        result = einvoice_check.check_xml(xml)
        assert result.errors == (), (cid, [str(f) for f in result.errors])
        root = etree.fromstring(xml)
        assert root.findtext(".//{*}TypeCode") == "381" or root.findtext("{*}CreditNoteTypeCode") == "381"
        assert invoice.number in [e.text for e in root.iter("{*}ID", "{*}IssuerAssignedID")]


# ---------------------------------------------------------------- broken on purpose: the named rule fails


def _total(root: etree._Element, name: str) -> etree._Element:
    return next(root.iter(f"{{*}}{name}"))


def test_a_wrong_vat_total_fails_br_co_15(billed: Path):
    xml = etree.parse(str(billed / issued(billed)["CUST-FX"].einvoice_name)).getroot()
    node = _total(xml, "TaxTotalAmount")
    node.text = str(D(node.text) + 1)
    assert "BR-CO-15" in rules(einvoice_check.check_xml(etree.tostring(xml)))


def test_reverse_charge_without_the_buyers_vat_id_fails_br_ae_02(billed: Path):
    invoice = issued(billed)["CUST-PE"]
    broken = replace(invoice, buyer=replace(invoice.buyer, vat_id=""))
    assert "BR-AE-02" in rules(einvoice_check.check_xml(einvoice.einvoice_xml(broken)))


def test_an_xrechnung_without_buyer_reference_fails_br_de_15(billed: Path):
    invoice = issued(billed)["CUST-XR"]
    broken = replace(invoice, buyer=replace(invoice.buyer, buyer_reference=""))
    assert "BR-DE-15" in rules(einvoice_check.check_xml(einvoice.einvoice_xml(broken)))


# ---------------------------------------------------------------- billing-batch validate-einvoice


def test_validate_einvoice_passes_what_the_batch_made(billed: Path):
    invoices = issued(billed)
    for path, kind in ((billed / invoices["CUST-FX"].pdf_name, "Factur-X (CII)"),
                       (billed / invoices["CUST-XR"].einvoice_name, "XRechnung UBL"),
                       (billed / invoices["CUST-PE"].einvoice_name, "UBL")):
        result = run_cli("validate-einvoice", str(path))
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"{kind}, passes the rules" in " ".join(result.stdout.split())  # a long path wraps the line


def test_validate_einvoice_names_each_failed_rule_and_exits_1(billed: Path, tmp_path: Path):
    xml = etree.parse(str(billed / issued(billed)["CUST-FX"].einvoice_name)).getroot()
    node = _total(xml, "TaxTotalAmount")
    node.text = str(D(node.text) + 1)
    broken = tmp_path / "broken.xml"
    broken.write_bytes(etree.tostring(xml))
    result = run_cli("validate-einvoice", str(broken))
    assert result.returncode == 1
    assert "BR-CO-15: Invoice total amount with VAT (BT-112)" in " ".join(result.stdout.split())


def test_validate_einvoice_exits_2_on_what_is_no_einvoice(billed: Path, tmp_path: Path):
    (tmp_path / "notes.xml").write_text("not xml at all")
    (tmp_path / "other.xml").write_text("<order/>")
    plain_pdf = billed / issued(billed)["CUST-XR"].pdf_name  # a PDF without Factur-X XML
    for path in (tmp_path / "notes.xml", tmp_path / "other.xml", plain_pdf, tmp_path / "missing.xml"):
        result = run_cli("validate-einvoice", str(path))
        assert result.returncode == 2, (path, result.stdout + result.stderr)
        assert "cannot be checked" in result.stdout and "Traceback" not in result.stdout + result.stderr


def test_the_email_attaches_the_xml_of_xrechnung_and_peppol_not_of_factur_x(tmp_path: Path):
    import email
    from email import policy

    out = tmp_path / "out"
    result = run_cli("run", "--input", str(einvoice_book(tmp_path / "billing.xlsx")), "--output", str(out),
                     "--as-of", AS_OF, "--jobs", "1", "--post-tasks", "send")
    assert result.returncode == 0, result.stdout + result.stderr
    for cid, invoice in issued(out).items():
        msg = email.message_from_bytes((out / "outbox" / f"{invoice.number}.eml").read_bytes(), policy=policy.SMTP)
        attached = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}
        xml = f"{invoice.number}.xml"
        if cid == "CUST-FX":  # the PDF carries it
            assert xml not in attached and f"{invoice.number}.pdf" in attached
        else:
            assert attached[xml] == (out / invoice.einvoice_name).read_bytes()


@pytest.mark.parametrize("part", [(), ("--line", "1", "--amount", "5.00")], ids=["whole", "an amount off a line"])
def test_a_credit_note_made_by_the_credit_command_is_a_381_that_passes(tmp_path: Path, part):
    book = einvoice_book(tmp_path / "billing.xlsx")
    out = bill(tmp_path, book)
    for cid, invoice in issued(out).items():
        result = run_cli("credit", "--input", str(book), "--output", str(out), "--as-of", AS_OF,
                         "--invoice", invoice.number, "--reason", "Service outage in January", *part)
        assert result.returncode == 0, result.stdout + result.stderr
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        notes = [i for i in ledger.invoices() if i.doc_type is DocType.CREDIT_NOTE]
    assert len(notes) == len(CUSTOMERS)
    for note in notes:
        xml = (out / note.einvoice_name).read_bytes()
        result = einvoice_check.check_xml(xml)
        assert result.errors == (), (note.number, [str(f) for f in result.errors])
        root = etree.fromstring(xml)
        assert "381" in (root.findtext(".//{*}TypeCode"), root.findtext("{*}CreditNoteTypeCode"))
        assert note.credits in [e.text for e in root.iter("{*}ID", "{*}IssuerAssignedID")]
        assert "Service outage in January" in [e.text for e in root.iter("{*}Note", "{*}Content")]


# ---------------------------------------------------------------- incomplete data: set aside before billing


def test_a_customer_missing_terms_is_set_aside_with_each_named(tmp_path: Path):
    book = einvoice_book(tmp_path / "billing.xlsx", **{"CUST-XR": {"Buyer Reference": None, "City": None}})
    out = tmp_path / "out"
    result = run_cli("run", "--input", str(book), "--output", str(out), "--as-of", AS_OF, "--jobs", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    text = " ".join(result.stdout.split())
    assert "column L (Buyer Reference)" in text and "(BT-10)" in text
    assert "column E (City)" in text and "the buyer's city (BT-52)" in text
    assert sorted(issued(out)) == ["CUST-FX", "CUST-PE"]  # the others are billed


def test_a_seller_term_missing_sets_aside_only_the_formats_that_need_it(tmp_path: Path):
    book = einvoice_book(tmp_path / "billing.xlsx", seller={"Contact Phone": None})
    result = run_cli("check", "--input", str(book), "--output", str(tmp_path / "out"), "--as-of", AS_OF)
    assert result.returncode == 1
    text = " ".join(result.stdout.split())
    assert "The e-invoices of CUST-XR need the seller's contact phone number (BT-42)" in text
    assert "CUST-FX" not in text and "CUST-PE" not in text  # Factur-X and Peppol do not need it
