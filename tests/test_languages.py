"""Invoices and emails in the customer's language (Customers: Language), the catalogs behind them, and
Chinese, Japanese and Korean names in the PDF and the review chart."""
from __future__ import annotations

import dataclasses
import email
import gettext
import io
import re
import subprocess
import sys
import warnings
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from email.policy import default
from pathlib import Path

import openpyxl
import pypdf
import pytest
from babel.dates import format_date
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_percent

from billing_batch import cli, i18n
from billing_batch.documents import render
from billing_batch.documents.invoice_view import LABELS, invoice_view
from billing_batch.review import chart as review_chart
from test_render import make_invoice
from workbooks import HEADERS, contract, customer, settings, subscription, usage, write_book

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = ("en", "de", "fr", "nl", "es", "it")
AS_OF = "2026-02-02"  # bills January; due 30 days later, on 4 March
WITH_LANGUAGE = {"Customers": HEADERS["Customers"] + ["Language"]}


def book(path: Path, languages: dict[str, str] | None, **setting) -> Path:
    """Two customers billed the same 1,234.56 EUR for January; Language typed as given (None: no column)."""
    names = {"CUST-1": "Kunde Eins GmbH", "CUST-2": "Client Deux SA"}
    customers = [customer(cid, Name=name, **({"Language": languages[cid]} if languages else {}))
                 for cid, name in names.items()]
    return write_book(path, {
        "Customers": customers,
        "Contracts": [contract("CTR-1", "CUST-1", Currency="EUR"), contract("CTR-2", "CUST-2", Currency="EUR")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 1, 1234.56), subscription("SUB-2", "CTR-2", 1, 1234.56)],
        "Settings": settings(**{"Company Email": "billing@acme.example", **setting}),
    }, WITH_LANGUAGE if languages else None)


def run(tmp_path: Path, languages: dict[str, str] | None, *extra: str) -> Path:
    out = tmp_path / "output"
    tmp_path.mkdir(exist_ok=True)
    inbox = book(tmp_path / "billing.xlsx", languages)
    assert cli.main(["run", "--input", str(inbox), "--output", str(out), "--as-of", AS_OF, "--jobs", "1",
                     "--new-ledger", *extra]) == 0  # (each language its own ledger, on purpose)
    return out


def plain(text: str) -> str:
    """Babel separates with no-break and narrow no-break spaces; pypdf may give them as other spaces."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


def pdf_text(path: Path) -> str:
    return plain("\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages))


def by_customer(out: Path) -> dict[str, str]:
    texts = [pdf_text(p) for p in sorted((out / "invoices").glob("*.pdf"))]
    return {cid: next(t for t in texts if cid in t) for cid in ("CUST-1", "CUST-2")}


# ---------------------------------------------------------------- the invoice and its email


def test_the_same_invoice_in_german_and_in_french(tmp_path):
    texts = by_customer(run(tmp_path, {"CUST-1": "de_DE", "CUST-2": "fr-be"}))
    german, french = texts["CUST-1"], texts["CUST-2"]
    # headings and captions are in capitals (invoice.css)
    for label in ("RECHNUNG INV-", "RECHNUNGSEMPFÄNGER", "Rechnungsdatum 02.02.2026", "Fälligkeitsdatum 04.03.2026",
                  "Leistungszeitraum 01.01.2026 – 31.01.2026", "EINZELPREIS", "Zwischensumme 1.234,56 €",
                  "USt. (0 %) 0,00 €", "Gesamtbetrag 1.234,56 €", "ZAHLUNGSBEDINGUNGEN", "Seite 1 von 1",
                  "bis zum 04.03.2026"):
        assert label in german
    for label in ("FACTURE INV-", "FACTURÉ À", "Date de facture 2 févr. 2026", "Date d'échéance 4 mars 2026",
                  "Période de facturation 1 janv. 2026 – 31 janv. 2026", "PRIX UNITAIRE", "Sous-total 1 234,56 €",
                  "TVA (0 %) 0,00 €", "Total 1 234,56 €", "CONDITIONS DE PAIEMENT", "Page 1 sur 1",
                  "au plus tard le 4 mars 2026"):
        assert label in french
    for english in ("Invoice date", "Due date", "Subtotal", "Page 1 of 1"):
        assert english not in german and english not in french


def test_the_email_of_a_german_customer_is_in_german(tmp_path):
    out = run(tmp_path, {"CUST-1": "de", "CUST-2": ""}, "--post-tasks", "send")  # no SMTP Host: into the outbox
    messages = [email.message_from_bytes(p.read_bytes(), policy=default) for p in sorted((out / "outbox").glob("*.eml"))]
    german = next(m for m in messages if "Kunde Eins" in m["To"])
    assert plain(german["Subject"]) == f"Rechnung {german_number(out)} von Acme Billing Ltd: 1.234,56 € fällig am 4. März 2026"
    text = plain(german.get_body(("plain",)).get_content())
    for words in ("Guten Tag Kunde Eins GmbH,", "anbei erhalten Sie die Rechnung", "1. Januar 2026 – 31. Januar 2026",
                  "Fälliger Betrag: 1.234,56 €", "Fälligkeitsdatum: 4. März 2026", "Mit freundlichen Grüßen"):
        assert words in text
    html = plain(german.get_body(("html",)).get_content())
    assert "<td>Rechnungsnummer</td>" in html and 'lang="de"' in html
    english = next(m for m in messages if "Client Deux" in m["To"])  # blank Language: the Settings' Locale
    assert english["Subject"].startswith("Invoice ") and "Dear Client Deux SA," in english.get_body(("plain",)).get_content()


SELLER_VAT, BUYER_VAT = "NL004495445B01", "BE0477472701"  # valid (tests/test_tax.py checks them)
TYPED = "Reverse charge as agreed in our framework contract"  # a Tax Exemption Reason typed in the workbook


def reverse_charge_run(tmp_path: Path) -> dict[str, str]:
    """The same reverse-charge invoice (1,234.56 + 2 x 50.00, 10% off) to a Belgian business in German, in
    French, and in German with a reason of its own: each PDF's text, by customer."""
    headers = {"Customers": HEADERS["Customers"] + ["VAT ID", "Tax Category", "Tax Exemption Reason", "Language"]}
    cells = {"Country": "Belgium", "Tax Rate": 0.21, "VAT ID": BUYER_VAT, "Tax Category": "AE"}
    customers = [customer("CUST-1", Name="Kunde Eins BV", Language="de_DE", **cells),
                 customer("CUST-2", Name="Client Deux SA", Language="fr_FR", **cells),
                 customer("CUST-3", Name="Kunde Drei BV", Language="de_DE", **{**cells, "Tax Exemption Reason": TYPED})]
    book_path = write_book(tmp_path / "billing.xlsx", {
        "Customers": customers,
        "Contracts": [contract(f"CTR-{n}", f"CUST-{n}", Currency="EUR", Discount=0.1) for n in (1, 2, 3)],
        "Subscriptions": [s for n in (1, 2, 3) for s in (subscription(f"SUB-{n}a", f"CTR-{n}", 1, 1234.56),
                                                           subscription(f"SUB-{n}b", f"CTR-{n}", 2, 50))],
        "Settings": settings(**{"VAT ID": SELLER_VAT, "Tax ID": "KvK 12345678"}),
    }, headers)
    out = tmp_path / "output"
    assert cli.main(["run", "--input", str(book_path), "--output", str(out), "--as-of", AS_OF, "--jobs", "1"]) == 0
    texts = [pdf_text(p) for p in sorted((out / "invoices").glob("*.pdf"))]
    return {cid: next(t for t in texts if cid in t) for cid in ("CUST-1", "CUST-2", "CUST-3")}


def test_a_reverse_charge_invoice_in_german_and_in_french(tmp_path):
    texts = reverse_charge_run(tmp_path)
    subtotal = Decimal("1234.56") + 2 * Decimal("50.00")
    discount = (subtotal * Decimal("0.1")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    total = subtotal - discount  # no VAT under the reverse charge
    english = "Reverse charge: VAT to be accounted for by the recipient"
    for cid, locale, words in [
        ("CUST-1", "de_DE", ["USt-IdNr.: " + SELLER_VAT, "USt-IdNr.: " + BUYER_VAT, "Steuernummer: KvK 12345678",
                             "Zwischensumme {subtotal}", "Rabatt ({ten}) {minus_discount}", "USt. {zero}",
                             "Gesamtbetrag {total}", "AUFSCHLÜSSELUNG DER UST.", "AE – Steuerschuldnerschaft des",
                             "{zero_rate} {total} {zero}", "Rechnungsdatum {date}",
                             "AE – Steuerschuldnerschaft des Leistungsempfängers: Die Umsatzsteuer schuldet der "
                             "Leistungsempfänger (Artikel 196, Richtlinie 2006/112/EG)"]),
        ("CUST-2", "fr_FR", ["N° TVA : " + SELLER_VAT, "N° TVA : " + BUYER_VAT, "Identifiant fiscal : KvK 12345678",
                             "Sous-total {subtotal}", "Remise ({ten}) {minus_discount}", "TVA {zero}",
                             "Total {total}", "DÉTAIL DE LA TVA", "AE – Autoliquidation {zero_rate} {total} {zero}",
                             "Date de facture {date}",
                             "AE – Autoliquidation : TVA due par le preneur (article 196 de la directive 2006/112/CE)"]),
    ]:
        def fmt(amount: Decimal) -> str:
            return plain(format_currency(amount, "EUR", locale=locale))

        values = {"subtotal": fmt(subtotal), "minus_discount": fmt(-discount), "total": fmt(total), "zero": fmt(Decimal(0)),
                  "ten": plain(format_percent(Decimal("0.1"), locale=locale)),
                  "zero_rate": plain(format_percent(Decimal(0), locale=locale)),
                  "date": format_date(date.fromisoformat(AS_OF), "medium", locale=locale)}
        for expected in words:
            assert expected.format(**values) in texts[cid], (cid, expected.format(**values))
        assert english not in texts[cid] and "Tax ID" not in texts[cid] and "Subtotal" not in texts[cid]
    # A reason typed in the workbook is printed as typed, whatever the invoice's language.
    assert f"AE – {TYPED}" in texts["CUST-3"] and "Leistungsempfänger (Artikel 196" not in texts["CUST-3"]


def test_the_usage_details_of_a_german_invoice_are_in_german(tmp_path):
    """The usage workbook goes to the customer with the invoice: its sheet, headings and subtotal rows
    in the invoice's language; a group column keeps the name the usage data gives it."""
    book_path = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer("CUST-1", Language="de_DE")],
        "Contracts": [contract("CTR-1", "CUST-1", Currency="EUR")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 1, 100)],
        "Usage": [usage("USG-1", "CTR-1", date(2026, 1, 10), 1000, 0.002), usage("USG-2", "CTR-1", date(2026, 1, 20), 500, 0.002)],
        "Settings": settings(),
    }, WITH_LANGUAGE)
    out = tmp_path / "output"
    assert cli.main(["run", "--input", str(book_path), "--output", str(out), "--as-of", AS_OF, "--jobs", "1"]) == 0
    (details,) = (out / "invoices").glob("*-usage.xlsx")
    wb = openpyxl.load_workbook(details)
    assert wb.sheetnames == ["Verbrauch"]
    rows = list(wb["Verbrauch"].iter_rows(values_only=True))
    assert rows[0] == ("Rechnungsposition", "Verbrauchs-ID", "Datum", "Produkt", "Beschreibung", "Menge",
                       "Einzelpreis", "Betrag", "Rechnungsbetrag")
    assert [r[1] for r in rows[1:]] == ["USG-1", "USG-2", "Zwischensumme"]
    assert wb.properties.title == f"Verbrauch zur Rechnung {details.name.removesuffix('-usage.xlsx')}"


@pytest.mark.parametrize("locale", ["de_DE", "fr_FR"])
def test_a_line_s_vat_rate_stays_on_one_line(locale):
    """"S 8,5 %" is longer than "S 8.5%": the lines' VAT column holds it without breaking it."""
    lines = tuple(dataclasses.replace(line, tax_category="S", tax_rate=Decimal("0.085")) for line in make_invoice().draft.lines)
    invoice = make_invoice(locale=locale, currency="EUR", lines=lines)
    rate = plain(f"S {format_percent(Decimal('0.085'), locale=locale, decimal_quantization=False)}")
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(render.render_pdf(invoice, render.Look()))).pages)
    printed = [re.sub(r"[ \u00a0\u202f]+", " ", line) for line in text.splitlines()]  # line breaks kept
    assert sum(rate in line for line in printed) == len(lines), printed


def german_number(out: Path) -> str:
    return next(p.stem for p in (out / "invoices").glob("*.pdf") if "CUST-1" in pdf_text(p))


def test_a_workbook_without_the_language_column_bills_as_before(tmp_path):
    before = by_customer(run(tmp_path / "without", None))
    explicit = by_customer(run(tmp_path / "english", {"CUST-1": "en_US", "CUST-2": "en_US"}))
    assert before == explicit
    for label in ("INVOICE INV-", "BILL TO", "Invoice date Feb 2, 2026", "Due date Mar 4, 2026", "Subtotal €1,234.56",
                  "Total €1,234.56", "Page 1 of 1"):
        assert label in before["CUST-1"]


def test_an_unknown_language_is_reported_with_its_cell(tmp_path, capsys):
    inbox = book(tmp_path / "billing.xlsx", {"CUST-1": "de_XX", "CUST-2": "nl_NL"})
    assert cli.main(["check", "--input", str(inbox), "--output", str(tmp_path / "out"), "--as-of", AS_OF]) == 1
    shown = capsys.readouterr().out
    assert "BB127" in shown and "row 2, column I (Language)" in shown and "de_XX" in shown
    assert "row 3" not in shown  # nl_NL is a language we know


def test_an_issued_invoice_keeps_its_language(tmp_path):
    """The ledger keeps each invoice's locale: a later change of Language does not change a PDF made again."""
    out = run(tmp_path, {"CUST-1": "de_DE", "CUST-2": "fr_FR"})
    pdf = out / "invoices" / f"{german_number(out)}.pdf"
    pdf.unlink()
    inbox = book(tmp_path / "billing.xlsx", {"CUST-1": "it_IT", "CUST-2": "fr_FR"})
    assert cli.main(["run", "--input", str(inbox), "--output", str(out), "--as-of", AS_OF, "--jobs", "1"]) == 0
    assert "Rechnungsdatum" in pdf_text(pdf)


def test_a_language_without_a_catalog_formats_in_its_locale_with_english_words():
    view = invoice_view(make_invoice(currency="EUR", locale="pt_PT"))
    assert view["labels"]["invoice"] == "Invoice"
    assert view["totals"][-1]["value"] == format_currency(Decimal("1242.54"), "EUR", locale="pt_PT") != "€1,242.54"


# ---------------------------------------------------------------- the catalogs


def catalog(lang: str):
    with open(i18n.FOLDER / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", "rb") as f:
        return read_po(f)


def source_msgids(tmp_path: Path) -> set[str]:
    pot = tmp_path / "fresh.pot"
    subprocess.run([str(Path(sys.executable).with_name("pybabel")), "-q", "extract", "-F", "babel.cfg", "-o", str(pot),
                    "."], cwd=REPO, check=True)
    with open(pot, "rb") as f:
        return {m.id for m in read_po(f) if m.id}


def placeholders(text: str) -> set[str]:
    return set(re.findall(r"\{\w+\}|%\(\w+\)s", text))


def test_the_catalogs_hold_every_text_of_the_code_and_templates(tmp_path):
    marked = source_msgids(tmp_path)
    assert set(LABELS.values()) <= marked and "Kind regards," in marked  # the extraction finds both kinds
    for lang in LANGUAGES:
        assert {m.id for m in catalog(lang) if m.id} == marked, f"{lang}: run scripts/translations.sh"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_catalog_is_complete(lang):
    for message in catalog(lang):
        if not message.id:
            continue
        assert not message.fuzzy, f"{lang}: {message.id!r} is fuzzy: check it, then remove the fuzzy flag"
        if message.pluralizable:  # every form the language has, each with the English plural's placeholders
            forms = message.string
            assert len(forms) == catalog(lang).num_plurals and all(forms), f"{lang}: {message.id!r} lacks a form"
            assert all(placeholders(f) == placeholders(message.id[1]) for f in forms), f"{lang}: {message.id!r}"
            continue
        assert message.string, f"{lang}: {message.id!r} has no translation"
        assert placeholders(message.string) == placeholders(message.id), f"{lang}: {message.id!r}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_compiled_catalogs_are_up_to_date(lang, tmp_path):
    from babel.messages.mofile import write_mo

    with open(tmp_path / "fresh.mo", "wb") as f:
        write_mo(f, catalog(lang))
    committed = i18n.FOLDER / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.mo"
    fresh, shipped = (gettext.GNUTranslations(open(p, "rb")) for p in (tmp_path / "fresh.mo", committed))
    assert shipped._catalog == fresh._catalog, "run scripts/translations.sh and commit the .mo files"


def test_a_region_falls_back_on_its_language():
    assert i18n.gettext_for("de_AT")("Invoice") == "Rechnung"
    assert i18n.gettext_for("fr_CA")("Invoice") == "Facture"
    assert i18n.gettext_for("ja_JP")("Invoice") == "Invoice"


def test_a_custom_template_can_use_the_translations(tmp_path):
    (tmp_path / "email_subject.txt").write_text('{{ _("Invoice") }} {{ number }} ({% trans %}Total due{% endtrans %})')
    from billing_batch.documents.look import Look
    from billing_batch.documents import emails as send

    invoice = make_invoice(currency="EUR", locale="nl_NL")
    subject, _, _ = send.render_email(Look(custom=tmp_path), send.email_view(invoice, []))
    assert subject == "Factuur INV-000042 (Te betalen)"


# ---------------------------------------------------------------- Chinese, Japanese and Korean


def test_a_japanese_customer_name_is_drawn_with_a_cjk_font():
    name = "株式会社テスト"
    invoice = make_invoice()
    invoice = dataclasses.replace(invoice, buyer=dataclasses.replace(invoice.buyer, name=name))
    reader = pypdf.PdfReader(io.BytesIO(render.render_pdf(invoice, render.Look())))
    fonts = {str(font.get_object()["/BaseFont"]) for page in reader.pages
             for font in page["/Resources"]["/Font"].values()}
    assert any("Noto-Sans-CJK" in font for font in fonts), fonts
    assert name in reader.pages[0].extract_text()


@pytest.mark.parametrize("locale, glyph", [("ja_JP", "月"), ("zh_CN", "月"), ("ko_KR", "월")])
def test_the_review_chart_has_every_glyph(locale, glyph):
    months = [date(2026, m, 1) for m in range(1, 13)]
    points = [(m, Decimal(100 * m.month), Decimal(50 if m.month == 12 else 0)) for m in months]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        svg = review_chart.chart_svg(0, "JPY", tuple(points), date(2026, 12, 2), locale)
    assert glyph in svg
