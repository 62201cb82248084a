"""Credit notes on the review page: flagged, counted and totalled apart, linked to their PDF and to
the invoice they credit. The credit notes come from tests/credit_notes.py."""
from __future__ import annotations

import json
from datetime import date
from decimal import Decimal as D
from pathlib import Path
from urllib.parse import unquote

import openpyxl

from billing_batch.review import flags as review_flags
from billing_batch.review import schedule_book
from credit_notes import credit_note
from test_review import AS_OF, THRESHOLD, Links, _write, flags_of, inputs, invoice, recurring


def test_a_credit_note_is_flagged_with_the_invoice_it_credits_and_nothing_an_invoice_gets(tmp_path: Path):
    old = invoice(1, date(2026, 10, 1), total="100", invoice_date=date(2026, 10, 2))
    note = credit_note(tmp_path, old, on=AS_OF)
    assert flags_of([note], [old]) == {"credit_note": "Credits $100.00 of invoice INV-000001 of 2026-10-02 (in full)."}
    two = invoice(2, date(2026, 10, 1), total="100", invoice_date=date(2026, 10, 2),
                  lines=[recurring(amount="60"), recurring(amount="40", product="Support")])
    part = credit_note(tmp_path, two, 2, lines=1, on=AS_OF)
    assert flags_of([part], [two])["credit_note"] == (
        "Credits $60.00 of invoice INV-000002 of 2026-10-02 (part of its $100.00).")


def test_the_next_invoice_is_compared_with_the_invoice_before_not_with_a_credit_note(tmp_path: Path):
    sept = invoice(1, date(2026, 9, 1), total="100", invoice_date=date(2026, 9, 2))
    note = credit_note(tmp_path, sept, on=date(2026, 9, 20))
    octo = invoice(2, date(2026, 10, 1), total="300")
    flags = flags_of([octo], [sept, note])
    assert "previous invoice INV-000001" in flags["changed"]  # not CN-000001
    assert "first" not in flags and "credit_note" not in flags


def test_the_page_counts_and_totals_credit_notes_apart_and_links_both_documents(tmp_path: Path):
    usd = invoice(1, date(2026, 10, 1), total="100", invoice_date=date(2026, 10, 2))
    eur = invoice(2, date(2026, 10, 1), total="80", contract_id="CTR-2", currency="EUR",
                  invoice_date=date(2026, 10, 2))
    new = invoice(3, date(2026, 11, 1), total="250")
    full = credit_note(tmp_path, usd, 1, on=AS_OF)
    eur_note = credit_note(tmp_path, eur, 2, on=AS_OF)
    for inv in (usd, eur, new):
        (tmp_path / inv.pdf_name).write_bytes(b"%PDF-1.7")
    page = _write(tmp_path, [new, full, eur_note], [usd, eur])
    text = page.read_text(encoding="utf-8")

    summary = json.loads((page.parent / "run.json").read_text())
    assert (summary["invoices"], summary["credit_notes"]) == (1, 2)
    assert summary["totals"] == {"USD": "250"}  # billed: the invoices only
    assert summary["credited"] == {"EUR": str(eur.draft.total), "USD": str(usd.draft.total)}
    assert summary["flags"]["credit_note"] == 2
    card = text[text.index('id="credit-notes"'):]
    card = card[:card.index("</table>")]
    assert "Credit notes issued" in card and "€80.00" in card and "$100.00" in card
    billed = text[text.index("Billed in this run"):]
    assert "$250.00" in billed[:billed.index("</table>")] and "$350.00" not in text

    links = Links()
    links.feed(text)
    pdfs = [h for h in links.hrefs if h.endswith(".pdf")]
    assert pdfs == ["../../invoices/INV-000003.pdf", "../../invoices/CN-000001.pdf", "../../invoices/INV-000001.pdf",
                    "../../invoices/CN-000002.pdf", "../../invoices/INV-000002.pdf"]
    assert all((page.parent / unquote(h)).resolve().is_file() for h in pdfs)
    row = text[text.index('<a href="../../invoices/CN-000001.pdf">'):]
    row = row[:row.index("</tr>")]
    assert "credits <a" in row and 'class="r neg">-$100.00<' in row and "Credit note</span>" in row
    assert '<option value="credit_note">Credit note (2)</option>' in text
    assert D(summary["credited"]["USD"]) == D("100")


def test_the_review_sheet_shows_a_credit_note_as_a_credit(tmp_path: Path):
    old = invoice(1, date(2026, 10, 1), total="100", invoice_date=date(2026, 10, 2))
    note = credit_note(tmp_path, old, on=AS_OF)
    rows = review_flags.review_rows([note], [old], inputs(), {}, THRESHOLD)
    path = schedule_book.write(tmp_path, [], [old, note], review_rows=rows)
    ws = openpyxl.load_workbook(path)["Review"]
    (row,) = [dict(zip([c.value for c in ws[1]], [c.value for c in r])) for r in ws.iter_rows(min_row=2)]
    assert (row["Total"], row["Credit note"], row["Flags"]) == (-100, "Yes", 1)
    assert row["Notes"] == "Credits $100.00 of invoice INV-000001 of 2026-10-02 (in full)."


def test_a_credit_note_of_a_cycle_below_zero_names_its_period(tmp_path: Path):
    old = invoice(1, date(2026, 10, 1), total="100")
    note = credit_note(tmp_path, old, on=AS_OF, credits=None, credits_date=None)
    assert flags_of([note], [])["credit_note"] == (
        "Credits $100.00 for 2026-10-01 – 2026-10-31: the cycle totals below zero, no invoice is credited.")
