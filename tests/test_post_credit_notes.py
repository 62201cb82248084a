"""Credit notes through the post tasks: emailed with their own templates, exported as credit notes,
never direct-debited. The credit notes come from tests/credit_notes.py."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

import pytest

from billing_batch import pipeline
from billing_batch.documents import look
from billing_batch.documents.template_trial import problems as preflight
from billing_batch.ledger.store import Ledger
from billing_batch.post.records import STARTED, Records
from credit_notes import CREDITED_ON, credit_note, issue_credit_note
from test_post_charge import schema, sepa_files, transactions  # noqa: F401 (fixtures)
from test_post_sync import exported, read
from test_post_send import Mailbox, SmtpServer, mailbox, smtp, with_smtp  # noqa: F401 (fixtures)
from test_post_tasks import Billed, billed, billed_once, billing_book, by_number, parse_eml  # noqa: F401 (fixtures)


def invoice(billed: Billed, number: str):
    return next(i for i in billed.invoices() if i.number == number)


def euro(amount) -> str:
    return f"€{amount:,}"


# ---------------------------------------------------------------- send


def test_a_credit_note_is_emailed_with_its_own_subject_body_and_pdf(billed: Billed, smtp: SmtpServer, mailbox: Mailbox):
    inv = invoice(billed, "INV-000002")
    note = issue_credit_note(billed, "INV-000002")
    outcomes = by_number(billed.post(("send",), inputs=with_smtp(billed, smtp.port), invoices=[note]), "send")
    assert outcomes[note.number].ok
    (_, rcpts, data), = mailbox.messages
    assert rcpts == ["cust-2@example.com", "ap@kunde.example", "cfo@kunde.example"]  # as the invoice's
    msg = parse_eml(data)
    assert msg["Subject"] == f"Credit note CN-000001 for invoice INV-000002 from Acme Billing Ltd: {euro(inv.draft.total)}"
    body = msg.get_body(("plain",)).get_content()
    credited_on = f"{inv.invoice_date:%B} {inv.invoice_date.day}, {inv.invoice_date.year}"
    assert "Please find attached credit note CN-000001 for invoice INV-000002 of " + credited_on in body
    assert f"Total credited: {euro(inv.draft.total)}" in body
    assert "Total due" not in body and "Please pay" not in body  # nothing of the invoice's wording
    html = msg.get_body(("html",)).get_content()
    assert "<strong>CN-000001</strong>" in html and f"INV-000002 ({credited_on})" in html
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "CN-000001.pdf"
    assert attachment.get_content() == (billed.out / "invoices" / "CN-000001.pdf").read_bytes()

    again = by_number(billed.post(("send",), inputs=with_smtp(billed, smtp.port), invoices=[note]), "send")
    assert again[note.number].skipped_reason.startswith("already sent") and len(mailbox.messages) == 1


@pytest.mark.parametrize("locale, subject, body", [
    ("en_GB", "Credit note CN-000001 for invoice INV-000004", "Please find attached credit note"),
    ("de_DE", "Rechnungskorrektur CN-000001 zur Rechnung INV-000004", "anbei erhalten Sie die Rechnungskorrektur"),
    ("fr_FR", "Avoir CN-000001 sur la facture INV-000004", "Veuillez trouver ci-joint l'avoir"),
    ("nl_NL", "Creditnota CN-000001 bij factuur INV-000004", "Bijgaand ontvangt u creditnota"),
    ("es_ES", "Factura rectificativa CN-000001 de la factura INV-000004", "Le adjuntamos la factura rectificativa"),
    ("it_IT", "Nota di credito CN-000001 per la fattura INV-000004", "In allegato trova la nota di credito"),
])
def test_a_credit_note_email_is_in_the_customers_language(billed: Billed, locale, subject, body):
    note = credit_note(billed.out, invoice(billed, "INV-000004"), locale=locale)
    (outcome,) = billed.post(("send",), invoices=[note])
    assert outcome.reference == "outbox/CN-000001.eml"
    msg = parse_eml((billed.out / outcome.reference).read_bytes())
    assert msg["Subject"].startswith(subject)
    assert body in msg.get_body(("plain",)).get_content()


def test_a_templates_folder_may_change_the_credit_note_email_alone(billed: Billed, tmp_path):
    own = tmp_path / "brand"
    own.mkdir()
    (own / look.CREDIT_SUBJECT).write_text("Refund note {{ number }} (was {{ credits }})\n")
    (own / look.CREDIT_TEXT).write_text("Hello {{ customer_name }}\n")
    inv = invoice(billed, "INV-000004")
    note = issue_credit_note(billed, "INV-000004")
    templates = look.Look(custom=own)
    by = by_number(billed.post(("send",), invoices=[inv, note], templates=templates), "send")
    cn = parse_eml((billed.out / by[note.number].reference).read_bytes())
    assert cn["Subject"] == "Refund note CN-000001 (was INV-000004)"
    assert cn.get_body(("html",)) is None  # a text body of its own, no HTML of its own: text only
    assert parse_eml((billed.out / by[inv.number].reference).read_bytes())["Subject"].startswith("Invoice INV-000004")


def test_the_input_check_tries_the_credit_note_templates(billed: Billed, tmp_path):
    own = tmp_path / "brand"
    own.mkdir()
    (own / look.CREDIT_TEXT).write_text("Hello {{ customer_nam }}\n")
    (problem,) = preflight(look.Look(custom=own), billed.inputs.settings, date(2026, 3, 2))
    assert problem.code == "BB009" and look.CREDIT_TEXT in problem.message


# ---------------------------------------------------------------- sync

# Written out by hand from the published templates (docs/post-tasks.md), not imported from the code.
XERO_CREDIT_HEADER = ("*ContactName,EmailAddress,POAddressLine1,POAddressLine2,POAddressLine3,POAddressLine4,POCity,"
                      "PORegion,POPostalCode,POCountry,*CreditNoteNumber,Reference,*CreditNoteDate,InventoryItemCode,"
                      "*Description,*Quantity,*UnitAmount,Discount,*AccountCode,*TaxType,TaxAmount,TrackingName1,"
                      "TrackingOption1,TrackingName2,TrackingOption2,Currency,BrandingTheme").split(",")
QBO_CREDIT_HEADER = ("CreditNoteNo,Customer,CreditNoteDate,Location,Memo,Item(Product/Service),ItemDescription,"
                     "ItemQuantity,ItemRate,ItemAmount,ItemTaxCode,ItemTaxAmount,Currency,Service Date").split(",")
LINE_COLUMNS = ("*Description", "*Quantity", "*UnitAmount", "*AccountCode", "*TaxType", "TaxAmount", "Currency",
                "*ContactName", "EmailAddress", "POAddressLine1", "POCity", "POPostalCode", "POCountry")


def half_up(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def test_credit_notes_are_exported_to_xero_as_credit_notes_column_by_column(billed: Billed):
    invoices = billed.invoices()
    inv2, inv6 = (next(i for i in invoices if i.number == n) for n in ("INV-000002", "INV-000006"))
    full = issue_credit_note(billed, "INV-000002")
    part = issue_credit_note(billed, "INV-000006", line=1, quantity=Decimal(3))  # the Platform line only
    outcomes = by_number(billed.post(("sync",), invoices=[*invoices, full, part]), "sync")

    (sales,) = exported(billed, "xero-sales-invoices")
    (credits,) = exported(billed, "xero-credit-notes")
    assert credits.name == "xero-credit-notes-20260302T093000.csv"
    assert outcomes["CN-000001"].reference == (
        f"exports/{credits.name}; exports/quickbooks-credit-notes-20260302T093000.csv")
    assert outcomes["CN-000001"].note == ""  # INV-000002 goes in the same call
    _, sales_rows = read(sales)
    assert {r["*InvoiceNumber"] for r in sales_rows} == {i.number for i in invoices}  # no credit note among them
    header, rows = read(credits)
    assert header == XERO_CREDIT_HEADER
    assert list(dict.fromkeys(r["*CreditNoteNumber"] for r in rows)) == ["CN-000001", "CN-000002"]

    # the full credit note carries the invoice's lines as they were exported, positive, with the same
    # accounts and tax types, and the credited invoice as its Reference
    cn1 = [r for r in rows if r["*CreditNoteNumber"] == "CN-000001"]
    assert [[r[c] for c in LINE_COLUMNS] for r in cn1] == [
        [r[c] for c in LINE_COLUMNS] for r in sales_rows if r["*InvoiceNumber"] == "INV-000002"]
    assert {(r["Reference"], r["*CreditNoteDate"]) for r in cn1} == {("INV-000002", "03/03/2026")}  # en_US: month first
    assert [r["*UnitAmount"] for r in cn1][:2] == ["333.33", "99.99"]
    for column in ("InventoryItemCode", "Discount", "TrackingName1", "TrackingOption1", "TrackingName2",
                   "TrackingOption2", "BrandingTheme", "PORegion"):
        assert {r[column] for r in rows} == {""}, column

    # the partial one: 3 x 333.33 less 10%, 20% tax, computed here by hand
    subtotal = 3 * Decimal("333.33")
    discount = half_up(subtotal * Decimal("0.1"))
    tax = half_up((subtotal - discount) * Decimal("0.2"))
    cn2 = [r for r in rows if r["*CreditNoteNumber"] == "CN-000002"]
    assert [(r["*Description"], r["*Quantity"], r["*UnitAmount"], r["*AccountCode"], r["*TaxType"]) for r in cn2] == [
        ("Seats (2026-02-01 to 2026-02-28)", "3", "333.33", "4000", "Tax on Sales"),
        ("Discount 10%", "1", f"-{discount}", "4000", "Tax on Sales"),
    ]
    assert {r["Reference"] for r in cn2} == {"INV-000006"}
    computed = defaultdict(Decimal)
    for r in rows:
        computed[r["*CreditNoteNumber"]] += Decimal(r["*Quantity"]) * Decimal(r["*UnitAmount"]) + Decimal(r["TaxAmount"])
    assert computed == {"CN-000001": inv2.draft.total, "CN-000002": subtotal - discount + tax}

    again = by_number(billed.post(("sync",), invoices=[full, part]), "sync")
    assert all(o.skipped_reason.startswith("already synced") for o in again.values())
    assert len(exported(billed, "xero-credit-notes")) == 1


def test_credit_notes_are_exported_to_quickbooks_as_credit_notes(billed: Billed):
    inv2 = invoice(billed, "INV-000002")
    note = issue_credit_note(billed, "INV-000002")
    (outcome,) = billed.post(("sync",), invoices=[note])
    assert outcome.ok and not exported(billed, "xero-sales-invoices") and not exported(billed, "quickbooks-invoices")
    assert outcome.note.startswith("credits INV-000002, which is not exported yet")
    (path,) = exported(billed, "quickbooks-credit-notes")
    header, rows = read(path)
    assert header == QBO_CREDIT_HEADER
    assert [(r["Item(Product/Service)"], r["ItemQuantity"], r["ItemRate"], r["ItemAmount"], r["ItemTaxCode"])
            for r in rows] == [
        ("Platform", "3", "333.33", "999.99", "Tax on Sales"), ("Support", "1", "99.99", "99.99", "Tax on Sales"),
        ("Platform", "1", "-100.00", "-100.00", "Tax on Sales"), ("Support", "1", "-10.00", "-10.00", "Tax on Sales")]
    assert {(r["CreditNoteNo"], r["Customer"], r["CreditNoteDate"], r["Currency"], r["Location"]) for r in rows} == {
        ("CN-000001", "Kunde Zwei GmbH", "03/03/2026", "EUR", "")}
    assert rows[0]["Memo"] == "Credits invoice INV-000002 of 2026-03-02; Contract CTR-2, period 2026-01-01 to 2026-01-31"
    assert sum(Decimal(r["ItemAmount"]) + Decimal(r["ItemTaxAmount"]) for r in rows) == inv2.draft.total


# ---------------------------------------------------------------- charge


def refunds(billed: Billed) -> list[dict[str, str]]:
    rows = []
    for path in sorted((billed.out / "exports").glob("refunds-to-transfer-*.csv")):
        header, found = read(path)
        assert header == ["Credit Note", "Credit Note Date", "Credited Invoice", "Customer ID", "Customer", "Currency",
                          "Amount", "IBAN", "BIC", "Transfer Reference", "Why"]
        rows += found
    return rows


def debited(billed: Billed) -> dict[str, dict]:
    """Every transaction of every SEPA file, by end-to-end ID; each file valid against the XSD."""
    txs = {}
    for path in sepa_files(billed):
        for tx in transactions(path):
            assert tx["end_to_end"] not in txs
            txs[tx["end_to_end"]] = tx
    return txs


def test_a_collected_invoice_s_credit_note_is_listed_to_refund_by_transfer_never_debited(billed: Billed, schema):
    billed.post(("charge",))
    inv2 = invoice(billed, "INV-000002")
    note = issue_credit_note(billed, "INV-000002")
    (outcome,) = billed.post(("charge",), invoices=[note])
    assert len(sepa_files(billed)) == 1  # no direct debit file for a credit note
    for path in sepa_files(billed):
        schema.validate(str(path))
        assert "CN-000001" not in path.read_text(encoding="utf-8")
    (row,) = refunds(billed)
    assert row == {
        "Credit Note": "CN-000001", "Credit Note Date": "2026-03-03", "Credited Invoice": "INV-000002",
        "Customer ID": "CUST-2", "Customer": "Kunde Zwei GmbH", "Currency": "EUR", "Amount": f"{inv2.draft.total}",
        "IBAN": "FR1420041010050500013M02606", "BIC": "PSSTFRPPXXX",  # the account debited
        "Transfer Reference": "Credit note CN-000001 for invoice INV-000002",
        "Why": "INV-000002 was collected by direct debit, exports/sepa-direct-debit-20260302T093000.xml"}
    assert not outcome.ok and f"{inv2.draft.total} EUR to refund by transfer" in outcome.skipped_reason
    assert outcome.reference == "exports/refunds-to-transfer-20260302T093000.csv"
    assert billed.status()["CN-000001"] == {"charge": "skipped"}

    again = billed.post(("charge",), invoices=[note])
    assert len(refunds(billed)) == 1 and again[0].skipped_reason == outcome.skipped_reason  # listed once


def test_a_credit_note_for_an_invoice_not_collected_yet_is_taken_off_its_direct_debit(billed: Billed, schema):
    invoices = billed.invoices()
    inv2, inv3 = (next(i for i in invoices if i.number == n) for n in ("INV-000002", "INV-000003"))
    part = issue_credit_note(billed, "INV-000002", line=1, quantity=Decimal(3))  # the Platform line of INV-000002
    issue_credit_note(billed, "INV-000003")  # all of INV-000003, which is Credited now
    outcomes = by_number(billed.post(("charge",)), "charge")  # every live document: the credit notes too
    (path,) = sepa_files(billed)
    schema.validate(str(path))
    txs = debited(billed)
    assert sorted(txs) == ["INV-000002", "INV-000006", "INV-000007"]  # INV-000003 is credited in full
    net = inv2.draft.total - part.draft.total
    assert Decimal(txs["INV-000002"]["amount"]) == net == Decimal("1187.98") - Decimal("1079.99")
    assert txs["INV-000002"]["remittance"] == "Invoice INV-000002 2026-01-01 to 2026-01-31 less CN-000001"
    assert outcomes["INV-000002"].note.endswith(f"; {inv2.draft.total} EUR less credit note CN-000001")
    assert outcomes["INV-000003"].skipped_reason == (
        "not charged: credited in full by CN-000002, so nothing is left to collect")
    assert "taken off the direct debit of INV-000002 (exports/sepa-" in outcomes["CN-000001"].skipped_reason
    assert "taken off the direct debit of INV-000003 when" in outcomes["CN-000002"].skipped_reason
    assert refunds(billed) == []  # nothing was paid that needs paying back
    with Ledger(billed.ledger_path, read_only=True) as ledger:
        (amount,) = ledger.db.execute("SELECT amount FROM post_sepa WHERE number = 'INV-000002'").fetchone()
    assert Decimal(amount) == net

    # a second credit note for INV-000002, after its collection: refunded, not taken off again
    later = issue_credit_note(billed, "INV-000002", line=2, quantity=Decimal(1))  # the Support line
    (outcome,) = billed.post(("charge",), invoices=[later])
    assert [r["Credit Note"] for r in refunds(billed)] == ["CN-000003"] and len(sepa_files(billed)) == 1
    assert outcome.skipped_reason.startswith(f"not charged: a credit note is never debited; {later.draft.total} EUR")


def test_credit_notes_of_invoices_not_debited_are_listed_to_refund_what_was_paid(billed: Billed):
    usd, no_mandate = invoice(billed, "INV-000001"), invoice(billed, "INV-000004")
    notes = [issue_credit_note(billed, usd.number), issue_credit_note(billed, no_mandate.number)]
    outcomes = by_number(billed.post(("charge",), invoices=notes), "charge")
    assert not sepa_files(billed)
    rows = {r["Credit Note"]: r for r in refunds(billed)}
    assert (rows["CN-000001"]["Currency"], rows["CN-000001"]["Amount"]) == ("USD", f"{usd.draft.total}")
    assert rows["CN-000002"]["IBAN"] == "" and rows["CN-000002"]["Customer ID"] == "CUST-4"  # no mandate, no IBAN
    assert rows["CN-000002"]["Why"] == (
        "INV-000004 is not collected by direct debit: refund only what the customer paid of it")
    assert all("to refund by transfer" in o.skipped_reason for o in outcomes.values())


def test_a_refunds_file_written_before_a_crash_is_not_written_again(billed: Billed):
    note = issue_credit_note(billed, "INV-000004")
    billed.post(("charge",), invoices=[note])
    (path,) = (billed.out / "exports").glob("refunds-to-transfer-*.csv")
    with Ledger(billed.ledger_path) as ledger:  # as if the run stopped between the file and the record
        Records(ledger).mark(note.number, "charge", STARTED, f"exports/{path.name}")
    (outcome,) = billed.post(("charge",), invoices=[note])
    assert outcome.skipped_reason.endswith(f"listed in exports/{path.name}")
    assert len(refunds(billed)) == 1

    path.unlink()  # ... and before the file was in place: listed again
    with Ledger(billed.ledger_path) as ledger:
        Records(ledger).mark(note.number, "charge", STARTED, f"exports/{path.name}")
    (outcome,) = billed.post(("charge",), invoices=[note])
    assert len(refunds(billed)) == 1 and "to refund by transfer" in outcome.skipped_reason


def test_a_replacement_after_collection_is_collected_and_the_old_invoice_refunded_by_its_credit_note(billed: Billed):
    billed.post(("sync", "charge"))  # INV-000002 exported and collected
    book = billed.out.parent / "billing.xlsx"
    billing_book(book)
    report = pipeline.generate(pipeline.Options(input=book, output=billed.out, as_of=CREDITED_ON, jobs=1),
                               ["CTR-2"], date(2026, 1, 1), lambda proposals: proposals)  # generate --replace
    assert report.exit_code == 0
    documents = {i.number: i for i in billed.invoices()}
    (note,) = [i for i in documents.values() if i.credits == "INV-000002"]
    new = documents[documents["INV-000002"].replaced_by]
    everything = billed.post(invoices=[note, new])
    outcomes = by_number(everything, "charge")
    assert outcomes[new.number].ok  # collected in full: the credit note pays the old one back
    # the old invoice stands, corrected by the credit note: nothing says to void it
    assert by_number(everything, "sync")[new.number].note == ""
    body = parse_eml((billed.out / by_number(everything, "send")[new.number].reference).read_bytes())
    assert "void" not in body.get_body(("plain",)).get_content()
    assert Decimal(debited(billed)[new.number]["amount"]) == new.draft.total
    (row,) = refunds(billed)
    assert (row["Credit Note"], row["Credited Invoice"], row["Amount"]) == (note.number, "INV-000002",
                                                                           f"{documents['INV-000002'].draft.total}")


def test_a_credit_note_of_a_cycle_below_zero_credits_no_invoice_and_is_refunded(billed: Billed):
    inv = invoice(billed, "INV-000004")
    note = credit_note(billed.out, inv, credits=None, credits_date=None)  # as generate issues it below zero
    outcomes = {o.task: o for o in billed.post(("send", "sync", "charge"), invoices=[note])}
    msg = parse_eml((billed.out / outcomes["send"].reference).read_bytes())
    assert msg["Subject"] == f"Credit note CN-000001 from Acme Billing Ltd: {euro(inv.draft.total)}"
    body = msg.get_body(("plain",)).get_content()
    assert "Please find attached credit note CN-000001 for the period" in body and "Credited invoice" not in body
    assert outcomes["sync"].ok and outcomes["sync"].note == ""
    _, xero = read(exported(billed, "xero-credit-notes")[0])
    _, qbo = read(exported(billed, "quickbooks-credit-notes")[0])
    assert {r["Reference"] for r in xero} == {""} and qbo[0]["Memo"].startswith("Contract CTR-4")
    (row,) = refunds(billed)
    assert (row["Credited Invoice"], row["Transfer Reference"]) == ("", "CN-000001")
    assert row["Why"] == "it credits no invoice: its cycle totals below zero, and the customer is owed the amount"
