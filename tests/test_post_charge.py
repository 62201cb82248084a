"""charge: the SEPA Direct Debit file (pain.008), validated against its XSD.

The file on disk is validated here with xmlschema against the pain.008.001.08 XSD that sepaxml
ships, on top of sepaxml's own validation when it builds the file. (Not with lxml: with lxml
installed, openpyxl parses workbooks through lxml instead of defusedxml, which changes how
hostile workbooks are refused; see test_validate.py.)"""
from __future__ import annotations

import dataclasses
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
import sepaxml
from defusedxml import ElementTree as etree

from billing_batch.inputs.bank_ids import bic_problem, creditor_id_problem, iban_problem, mandate_id_problem
from billing_batch.post.charge import PAIN, Payment, build_file
from billing_batch.post.records import Context, Records
from billing_batch.ledger.store import Ledger
from test_post_tasks import NOW, Billed, billed, billed_once, by_number  # noqa: F401 (fixtures)

NS = {"p": f"urn:iso:std:iso:20022:tech:xsd:{PAIN}"}
XSD = Path(sepaxml.__file__).parent / "schemas" / f"{PAIN}.xsd"


@pytest.fixture(scope="module")
def schema():
    import xmlschema  # imported late, as sepaxml does: it patches ElementTree on import

    return xmlschema.XMLSchema(str(XSD))


def sepa_files(billed: Billed) -> list[Path]:
    return sorted((billed.out / "exports").glob("sepa-direct-debit-*.xml"))


def transactions(path: Path) -> list[dict]:
    doc = etree.parse(str(path))
    out = []
    for info in doc.iterfind(".//p:PmtInf", NS):
        for tx in info.iterfind("p:DrctDbtTxInf", NS):
            out.append({
                "sequence": info.findtext("p:PmtTpInf/p:SeqTp", namespaces=NS),
                "collection": info.findtext("p:ReqdColltnDt", namespaces=NS),
                "end_to_end": tx.findtext("p:PmtId/p:EndToEndId", namespaces=NS),
                "amount": tx.findtext("p:InstdAmt", namespaces=NS),
                "currency": tx.find("p:InstdAmt", NS).get("Ccy"),
                "mandate": tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:MndtId", namespaces=NS),
                "signed": tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:DtOfSgntr", namespaces=NS),
                "bic": tx.findtext("p:DbtrAgt/p:FinInstnId/p:BICFI", namespaces=NS),
                "debtor": tx.findtext("p:Dbtr/p:Nm", namespaces=NS),
                "iban": tx.findtext("p:DbtrAcct/p:Id/p:IBAN", namespaces=NS),
                "remittance": tx.findtext("p:RmtInf/p:Ustrd", namespaces=NS),
            })
    return out


def test_the_sepa_file_is_valid_and_collects_the_eur_invoices_of_customers_with_a_mandate(
        billed: Billed, schema):
    outcomes = by_number(billed.post(("charge",)), "charge")
    (path,) = sepa_files(billed)
    assert path.name == "sepa-direct-debit-20260302T093000.xml"
    schema.validate(str(path))  # raises unless valid against the pain.008.001.08 XSD
    tampered = path.read_text(encoding="utf-8").replace("<MndtId>MANDATE-0002</MndtId>", "<MndtId></MndtId>", 1)
    assert not schema.is_valid(tampered)  # the check would notice a bad file
    doc = etree.parse(str(path))
    assert doc.getroot().tag == f"{{{NS['p']}}}Document"

    txs = {t["end_to_end"]: t for t in transactions(path)}
    assert sorted(txs) == ["INV-000002", "INV-000003", "INV-000006", "INV-000007"]
    assert txs["INV-000002"] == {
        "sequence": "FRST", "collection": "2026-03-16",  # the due date: 14 days' terms
        "end_to_end": "INV-000002", "amount": "1187.98", "currency": "EUR",
        "mandate": "MANDATE-0002", "signed": "2025-06-01", "bic": "PSSTFRPPXXX", "debtor": "Kunde Zwei GmbH",
        "iban": "FR1420041010050500013M02606", "remittance": "Invoice INV-000002 2026-01-01 to 2026-01-31",
    }
    assert txs["INV-000006"]["sequence"] == "RCUR"  # the same mandate's second collection
    assert (txs["INV-000003"]["iban"], txs["INV-000003"]["bic"], txs["INV-000003"]["amount"]) == (
        "NL91ABNA0417164300", None, "500.00")  # IBAN-only: no BIC given
    assert txs["INV-000003"]["collection"] == "2026-04-01"
    header = doc.find(".//p:GrpHdr", NS)
    assert header.findtext("p:NbOfTxs", namespaces=NS) == "4"
    assert Decimal(header.findtext("p:CtrlSum", namespaces=NS)) == Decimal("1187.98") * 2 + Decimal("500.00") * 2
    creditor = doc.find(".//p:PmtInf", NS)
    assert creditor.findtext("p:CdtrAcct/p:Id/p:IBAN", namespaces=NS) == "DE89370400440532013000"
    assert creditor.findtext("p:CdtrSchmeId/p:Id/p:PrvtId/p:Othr/p:Id", namespaces=NS) == "DE98ZZZ09999999999"
    assert creditor.findtext("p:Cdtr/p:Nm", namespaces=NS) == "Acme Billing Ltd"

    assert outcomes["INV-000002"].ok and outcomes["INV-000002"].reference == f"exports/{path.name}"
    assert outcomes["INV-000002"].note == "FRST collection of 1187.98 EUR on 2026-03-16"
    # the others are listed as not charged, with the reason
    assert outcomes["INV-000001"].skipped_reason == (
        "not charged: the invoice is in USD; SEPA Direct Debit collects EUR only")
    assert outcomes["INV-000004"].skipped_reason == (
        "not charged: customer CUST-4 has no SEPA mandate (IBAN, Mandate ID, Mandate Date blank in the Customers sheet)")
    assert billed.status()["INV-000004"] == {"charge": "skipped"}


def test_a_rerun_charges_nothing_twice_and_the_next_collection_is_recurring(billed: Billed):
    invoices = billed.invoices()
    billed.post(("charge",), invoices=[i for i in invoices if i.draft.cycle_start.month == 1])
    (first,) = sepa_files(billed)
    assert {t["end_to_end"]: t["sequence"] for t in transactions(first)} == {"INV-000002": "FRST", "INV-000003": "FRST"}

    rerun = billed.post(("charge",), invoices=invoices[:4])
    assert sepa_files(billed) == [first]
    assert {o.number: o.status for o in rerun} == {"INV-000001": "not done", "INV-000002": "already done",
                                                   "INV-000003": "already done", "INV-000004": "not done"}

    billed.post(("charge",), now=datetime(2026, 3, 5, 8, tzinfo=timezone.utc))
    second = sepa_files(billed)[-1]
    assert {t["end_to_end"]: t["sequence"] for t in transactions(second)} == {"INV-000006": "RCUR", "INV-000007": "RCUR"}


def test_a_due_date_already_past_is_collected_tomorrow(billed: Billed):
    outcomes = by_number(billed.post(("charge",), now=datetime(2026, 3, 20, 12, tzinfo=timezone.utc)), "charge")
    txs = {t["end_to_end"]: t for t in transactions(sepa_files(billed)[0])}
    assert txs["INV-000002"]["collection"] == "2026-03-21"  # due 2026-03-16
    assert txs["INV-000003"]["collection"] == "2026-04-01"  # still ahead: the due date
    assert "the due date 2026-03-16 has passed: collection on 2026-03-21" in outcomes["INV-000002"].note


def test_without_a_creditor_nothing_is_charged_and_the_next_call_retries(billed: Billed):
    inputs = dataclasses.replace(billed.inputs, settings=dataclasses.replace(billed.inputs.settings, creditor_id=""))
    outcomes = by_number(billed.post(("charge",), inputs=inputs), "charge")
    assert outcomes["INV-000002"].error == (
        "no SEPA creditor: fill in Creditor ID in the Settings sheet, then run post --tasks charge again.")
    assert sepa_files(billed) == []
    billed.post(("charge",))
    assert len(transactions(sepa_files(billed)[0])) == 4


def test_a_bad_mandate_fails_that_invoice_only(billed: Billed, schema):
    customers = dict(billed.inputs.customers)
    customers["CUST-3"] = dataclasses.replace(customers["CUST-3"], iban="NL91ABNA0417164301")  # a wrong check digit
    outcomes = by_number(billed.post(("charge",), inputs=dataclasses.replace(billed.inputs, customers=customers)), "charge")
    assert outcomes["INV-000003"].error.startswith("not charged: customer CUST-3: 'NL91ABNA0417164301' is not a valid IBAN")
    (path,) = sepa_files(billed)
    schema.validate(str(path))
    assert sorted(t["end_to_end"] for t in transactions(path)) == ["INV-000002", "INV-000006"]


def test_a_payment_the_schema_refuses_is_left_out_and_the_others_are_collected(billed: Billed):
    customers = dict(billed.inputs.customers)
    customers["CUST-3"] = dataclasses.replace(customers["CUST-3"], name="")  # Nm may not be empty
    outcomes = by_number(billed.post(("charge",), inputs=dataclasses.replace(billed.inputs, customers=customers)), "charge")
    assert outcomes["INV-000003"].error.startswith("left out of the SEPA file: the schema refuses it")
    assert sorted(t["end_to_end"] for t in transactions(sepa_files(billed)[0])) == ["INV-000002", "INV-000006"]


def test_sepaxml_really_validates(billed: Billed):
    """build_file relies on sepaxml's validate=True: make sure it refuses an invalid document."""
    (invoice,) = [i for i in billed.invoices() if i.number == "INV-000002"]
    customer = dataclasses.replace(billed.inputs.customers["CUST-2"], mandate_id="x" * 36)  # longer than Max35Text
    with Ledger(billed.ledger_path) as ledger:
        ctx = Context(ledger, Records(ledger), billed.inputs, billed.out, billed.out, NOW, False, {})
        good = Payment(invoice, billed.inputs.customers["CUST-2"], "FR1420041010050500013M02606", "", 118798,
                       date(2026, 3, 16), "")
        xml, _ = build_file(ctx, [good])
        assert b"<InstdAmt Ccy=\"EUR\">1187.98</InstdAmt>" in xml
        with pytest.raises(sepaxml.validation.ValidationError):
            build_file(ctx, [dataclasses.replace(good, customer=customer)])


def test_input_checks():
    assert iban_problem("DE89 3704 0044 0532 0130 00") is None
    assert iban_problem("de89370400440532013000") is None
    assert "not a valid IBAN" in iban_problem("DE89370400440532013001")
    assert "not a valid IBAN" in iban_problem("12345")
    assert iban_problem("  ") == "the IBAN is blank"
    assert bic_problem("COBADEFFXXX") is None and bic_problem("PSSTFRPP") is None
    assert "not a valid BIC" in bic_problem("COBA")
    assert mandate_id_problem("MANDATE-0002") is None
    assert "longer than 35" in mandate_id_problem("M" * 36)
    assert "characters SEPA does not allow" in mandate_id_problem("Mandat_1")
    assert creditor_id_problem("DE98ZZZ09999999999") is None
    assert creditor_id_problem("de98 zzz 09999999999") is None
    assert creditor_id_problem("AT61ZZZ01234567890") is None  # well-known valid examples
    assert creditor_id_problem("IT66ZZZA1B2C3D4E5F6G7H8") is None
    assert "check digits" in creditor_id_problem("DE97ZZZ09999999999")
    assert "not a SEPA Creditor Identifier" in creditor_id_problem("12345")
