"""Reading and checking the workbook: lenient where a person would be, strict where money is at stake,
and safe against files that are too big or built to hurt. Fast: no CLI, no PDFs."""
from __future__ import annotations

import dataclasses
import time
import zipfile
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import openpyxl.xml
import pytest

from billing_batch.inputs import validate
from billing_batch.inputs import workbook
from billing_batch.errors import shown
from billing_batch.inputs.workbook import Limits
from test_errors import entity_bomb, zip_bomb
from workbooks import HEADERS, contract, customer, settings, simple_book, subscription, usage, write_book


def load(path: Path, limits: Limits = Limits()):
    book, problems = workbook.read(workbook.input_files(path), limits)
    assert not problems, [str(p) for p in problems]
    return validate.check(book)


def one_book(tmp_path: Path, customers=None, contracts=None, subscriptions=None, usage_rows=None, **setting) -> Path:
    sheets = {
        "Customers": customers if customers is not None else [customer("CUST-1")],
        "Contracts": contracts if contracts is not None else [contract("CTR-1", "CUST-1")],
        "Subscriptions": subscriptions if subscriptions is not None else [subscription("SUB-1", "CTR-1")],
        "Settings": settings(**setting),
    }
    if usage_rows is not None:
        sheets["Usage"] = usage_rows
    return write_book(tmp_path / "billing.xlsx", sheets)


def codes(checked) -> list[str]:
    return [p.code for p in checked.problems]


def only(checked, code: str):
    found = [p for p in checked.problems if p.code == code]
    assert len(found) == 1, [str(p) for p in checked.problems]
    return found[0]


# ---------------------------------------------------------------- lenient where a person would be


def test_ids_with_stray_spaces_match_their_references(tmp_path):
    checked = load(one_book(
        tmp_path,
        customers=[customer("CUST-1 ")],
        contracts=[contract(" CTR-1\u00a0", "  CUST-1")],  # a non-breaking space, as pasted from the web
        subscriptions=[subscription("SUB-1", "CTR-1 ")],
        usage_rows=[usage("USG-1", "CTR-1\t")],
    ))
    assert checked.problems == []
    assert list(checked.inputs.customers) == ["CUST-1"]
    assert checked.inputs.contracts["CTR-1"].customer_id == "CUST-1"
    assert [s.subscription_id for s in checked.inputs.subscriptions["CTR-1"]] == ["SUB-1"]
    assert [u.usage_id for u in checked.inputs.usage["CTR-1"]] == ["USG-1"]


def test_ids_typed_as_numbers_match_ids_typed_as_text(tmp_path):
    checked = load(one_book(tmp_path, customers=[customer("CUST-1", **{"Customer ID": 1001})],
                            contracts=[contract("CTR-1", "1001")]))
    assert checked.problems == []
    assert checked.inputs.contracts["CTR-1"].customer_id == "1001"


def test_headers_and_sheet_names_ignore_case_and_spacing(tmp_path):
    odd = {name: [f"  {h.upper()}  ".replace(" ", "  ") for h in headers] for name, headers in HEADERS.items()}
    path = tmp_path / "billing.xlsx"
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    rows = {"Customers": ["CUST-1", "Acme"], "Contracts": ["CTR-1", "CUST-1", date(2026, 1, 1), None, "monthly"],
            "Subscriptions": ["SUB-1", "CTR-1", "Platform", None, 2, 50]}
    for name, title in (("Customers", "customers"), ("Contracts", "CONTRACTS"), ("Subscriptions", " Subscriptions ")):
        ws = wb.create_sheet(title)
        ws.append(odd[name])
        ws.append(rows[name])
    wb.save(path)
    checked = load(path)
    assert checked.problems == []
    assert checked.inputs.subscriptions["CTR-1"][0].quantity == 2


@pytest.mark.parametrize("typed", ["2026-01-05", "2026-1-5", "2026/01/05", " 2026-01-05 ", "2026-01-05 00:00:00",
                                   "2026-01-05T00:00:00"])
def test_iso_text_dates_are_read(tmp_path, typed):
    checked = load(one_book(tmp_path, contracts=[contract(start=typed)]))
    assert checked.problems == []
    assert checked.inputs.contracts["CTR-1"].start == date(2026, 1, 5)


@pytest.mark.parametrize("typed, expected", [
    ("1,200.50", Decimal("1200.50")), (" 12 ", Decimal(12)), ("0.5", Decimal("0.5")), (".5", Decimal("0.5")),
    ("1,000,000", Decimal(1000000)), ("+3", Decimal(3)),
])
def test_numbers_typed_as_text_are_read_in_an_en_locale(tmp_path, typed, expected):
    checked = load(one_book(tmp_path, subscriptions=[subscription(quantity=typed)]))
    assert checked.problems == []
    assert checked.inputs.subscriptions["CTR-1"][0].quantity == expected


def test_numbers_typed_as_text_follow_the_locale_setting(tmp_path):
    checked = load(one_book(tmp_path, subscriptions=[subscription("SUB-1", quantity="1.200,50"),
                                                     subscription("SUB-2", quantity="1,200.50")], Locale="de_DE"))
    assert checked.inputs.subscriptions["CTR-1"][0].quantity == Decimal("1200.50")
    assert only(checked, "BB104").source.row == 3  # 1,200.50 is not how de_DE writes a number: not guessed


@pytest.mark.parametrize("typed, rate", [("20%", Decimal("0.2")), (" 20 % ", Decimal("0.2")), (0.2, Decimal("0.2")),
                                         ("0.2", Decimal("0.2")), ("7.5%", Decimal("0.075")), (1, Decimal(1)),
                                         (None, Decimal(0))])
def test_rates_as_fraction_or_percentage(tmp_path, typed, rate):
    checked = load(one_book(tmp_path, customers=[customer(**{"Tax Rate": typed})],
                            contracts=[contract(Discount=typed)]))
    assert checked.problems == []
    assert checked.inputs.customers["CUST-1"].tax_rate == rate
    assert checked.inputs.contracts["CTR-1"].discount == rate


@pytest.mark.parametrize("typed, option", [("monthly ", "Monthly"), ("semi annual", "Semi-Annual"),
                                           ("SEMI-ANNUAL", "Semi-Annual"), ("Quarterly", "Quarterly")])
def test_choices_ignore_case_spaces_and_hyphens(tmp_path, typed, option):
    checked = load(one_book(tmp_path, contracts=[contract(**{"Billing Frequency": typed})]))
    assert checked.problems == []
    assert checked.inputs.contracts["CTR-1"].frequency.label == option


def test_currency_in_lower_case_and_blank_currency_use_the_code(tmp_path):
    checked = load(one_book(tmp_path, customers=[customer("CUST-1")],
                            contracts=[contract("CTR-1", Currency=" eur "), contract("CTR-2")],
                            **{"Default Currency": "gbp"}))
    assert checked.problems == []
    assert [c.currency for c in checked.inputs.contracts.values()] == ["EUR", "GBP"]


def test_locale_setting_with_a_hyphen(tmp_path):
    checked = load(one_book(tmp_path, Locale="en-GB"))
    assert checked.problems == [] and checked.inputs.settings.locale == "en_GB"


def test_rows_with_only_notes_in_other_columns_are_skipped(tmp_path):
    path = one_book(tmp_path)
    wb = openpyxl.load_workbook(path)
    wb["Subscriptions"]["K5"] = "Total"  # beside the table, in a column the batch does not read
    wb["Subscriptions"]["B6"] = "   "
    wb.save(path)
    assert load(path).problems == []


def test_a_workbook_saved_under_another_extension_is_read(tmp_path):
    path = one_book(tmp_path).rename(tmp_path / "billing.xlsx.bak")
    assert load(path).problems == []


def test_a_folder_reads_every_workbook_but_not_lock_or_hidden_files(tmp_path):
    simple_book(tmp_path / "B.XLSX")
    (tmp_path / "~$B.xlsx").write_bytes(b"lock")
    (tmp_path / "._B.xlsx").write_bytes(b"macOS")
    (tmp_path / "notes.txt").write_text("hi")
    assert [p.name for p in workbook.input_files(tmp_path)] == ["B.XLSX"]
    assert load(tmp_path).problems == []


# ---------------------------------------------------------------- strict where money is at stake


@pytest.mark.parametrize("typed, code", [("03/04/2026", "BB116"), ("3.4.26", "BB116"), ("31/01/2026", "BB103"),
                                         ("2026-02-30", "BB103"), ("next monday", "BB103"), (45000, "BB103"),
                                         (True, "BB103"), ("1899-12-31", "BB103")])
def test_dates_are_never_guessed(tmp_path, typed, code):
    checked = load(one_book(tmp_path, contracts=[contract(start=typed)]))
    assert codes(checked) == [code]
    assert "CTR-1" in checked.set_aside and "CTR-1" not in checked.inputs.contracts


@pytest.mark.parametrize("typed", ["ten", "1,2", "12abc", "$12", "1.200,50", "1 200", "1e3", "", True])
def test_a_quantity_that_is_not_a_number(tmp_path, typed):
    checked = load(one_book(tmp_path, subscriptions=[subscription(quantity=typed)]))
    assert codes(checked) == ["BB102" if typed == "" else "BB104"]
    assert list(checked.set_aside) == ["CTR-1"]


@pytest.mark.parametrize("error", ["#REF!", "#N/A", "#DIV/0!", "#VALUE!", "#NAME?", "#SPILL!", "#CALC!"])
def test_excel_error_values_are_problems_in_any_column(tmp_path, error):
    checked = load(one_book(tmp_path, customers=[customer(Name=error)], subscriptions=[subscription(price=error)]))
    assert codes(checked) == ["BB115", "BB115"]
    assert all(error in p.message for p in checked.problems)


def test_a_rate_above_one_suggests_the_percentage(tmp_path):
    checked = load(one_book(tmp_path, customers=[customer(**{"Tax Rate": 20})], contracts=[contract(Discount="150%")]))
    tax, discount = checked.problems
    assert (tax.code, discount.code) == ("BB108", "BB108")
    assert "type 20% or 0.2" in tax.message
    assert discount.message == "The Discount 150% is not between 0% and 100%."


def test_unknown_currency_is_never_guessed(tmp_path):
    checked = load(one_book(tmp_path, contracts=[contract("CTR-1", Currency="US$"), contract("CTR-2", Currency="XYZ")]))
    usd, xyz = checked.problems
    assert (usd.code, xyz.code) == ("BB107", "BB107")
    assert "did you mean USD?" in usd.message and "did you mean" not in xyz.message
    assert set(checked.set_aside) == {"CTR-1", "CTR-2"}


def test_a_duplicated_customer_sets_aside_each_of_its_contracts(tmp_path):
    checked = load(one_book(tmp_path, customers=[customer("CUST-1"), customer("CUST-2"), customer("CUST-1 ")],
                            contracts=[contract("CTR-1", "CUST-1"), contract("CTR-2", "CUST-2"),
                                       contract("CTR-3", "CUST-1")]))
    assert codes(checked) == ["BB110", "BB110"]  # on both rows that use the ID
    assert [p.source.row for p in checked.problems] == [4, 2]
    assert set(checked.set_aside) == {"CTR-1", "CTR-3"}


def test_a_repeated_id_is_reported_once_for_the_first_row(tmp_path):
    checked = load(one_book(tmp_path, subscriptions=[subscription("SUB-1"), subscription("SUB-1"),
                                                     subscription("SUB-1")]))
    assert sorted(p.source.row for p in checked.problems) == [2, 3, 4]


def test_a_customer_with_a_bad_row_is_not_also_called_unknown(tmp_path):
    checked = load(one_book(tmp_path, customers=[customer(**{"Tax Rate": "lots"})]))
    assert codes(checked) == ["BB104"]
    assert list(checked.set_aside) == ["CTR-1"]


def test_amounts_are_bounded_so_money_arithmetic_cannot_overflow(tmp_path):
    checked = load(one_book(tmp_path, subscriptions=[
        subscription("SUB-1", quantity=10**13), subscription("SUB-2", quantity=10**9, price=10**7),
        subscription("SUB-3", quantity=10**12, price=1001), subscription("SUB-4", quantity=10**12, price=1000)]))
    assert [(p.code, p.source.row, p.source.column) for p in checked.problems] == [
        ("BB117", 2, "Quantity"), ("BB117", 3, "Unit Price"), ("BB117", 4, "Unit Price")]


@pytest.mark.parametrize("column, typed, code", [("Payment Terms (Days)", -5, "BB118"),
                                                 ("Payment Terms (Days)", 10**20, "BB118"),
                                                 ("Billing Offset (Days)", -400, "BB118"),
                                                 ("Billing Offset (Days)", "2.5", "BB105")])
def test_days_are_whole_and_in_range(tmp_path, column, typed, code):
    checked = load(one_book(tmp_path, contracts=[contract(**{column: typed})]))
    assert codes(checked) == [code]


def test_settings_with_excel_errors_or_given_twice_stop_the_run(tmp_path):
    path = one_book(tmp_path, **{"Company Name": "#REF!"})
    wb = openpyxl.load_workbook(path)
    wb["Settings"].append(["invoice prefix", "B-"])
    wb.save(path)
    checked = load(path)
    assert codes(checked) == ["BB201", "BB201"]
    assert checked.fatal == checked.problems


# ---------------------------------------------------------------- messages


def test_every_message_names_the_cell_and_keeps_the_value_as_typed(tmp_path):
    checked = load(one_book(tmp_path, subscriptions=[subscription(quantity=" ten ")]))
    problem = only(checked, "BB104")
    assert str(problem).splitlines() == [
        "BB104 not a number",
        "  billing.xlsx > Subscriptions > row 2, column E (Quantity)",
        "  value: ' ten '",
        "  The Quantity is not a number. Type a plain number, such as 1200.50.",
    ]
    assert problem.as_dict()["location"] == "billing.xlsx > Subscriptions > row 2, column E (Quantity)"


def test_values_are_shown_as_a_person_typed_them():
    assert shown(20.0) == "20"
    assert shown(0.2) == "0.2"
    assert shown(datetime(2026, 1, 31)) == "2026-01-31"
    assert shown(datetime(2026, 1, 31, 9, 30)) == "2026-01-31 09:30:00"
    assert shown(None) is None


def test_reading_prints_no_warnings(tmp_path, recwarn):
    path = one_book(tmp_path)
    wb = openpyxl.load_workbook(path)
    wb["Contracts"]["D2"] = 10**10  # a serial number no date can have, in a date-formatted cell
    wb["Contracts"]["D2"].number_format = "yyyy-mm-dd"
    wb.save(path)
    assert codes(load(path)) == ["BB103"]
    assert len(recwarn) == 0


# ---------------------------------------------------------------- size bounds and hostile files


def refused(path: Path, limits: Limits = Limits()) -> list:
    started = time.perf_counter()
    _, problems = workbook.read(workbook.input_files(path), limits)
    assert time.perf_counter() - started < 5
    return [p.code for p in problems]


def test_file_size_row_count_and_unpacked_size_are_bounded(tmp_path):
    path = simple_book(tmp_path / "billing.xlsx", Usage=[usage(f"USG-{i}") for i in range(20)])
    assert refused(path) == []
    assert refused(path, Limits(max_file_mb=0.001)) == ["BB005"]
    # 2 customers, 2 contracts, 2 subscriptions, 20 usage rows and 5 settings
    assert refused(path, Limits(max_rows=30)) == ["BB005"]
    assert refused(path, Limits(max_rows=31)) == []
    assert refused(path, Limits(max_unzipped_mb=0.01)) == ["BB007"]


def test_the_row_bound_counts_over_all_workbooks_and_stops_reading(tmp_path):
    for name in ("a", "b", "c"):
        simple_book(tmp_path / f"{name}.xlsx")  # 11 rows of data each, settings included
    _, problems = workbook.read(workbook.input_files(tmp_path), Limits(max_rows=20))
    assert [(p.code, p.source.file) for p in problems] == [("BB005", "b.xlsx")]


def test_a_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    path = zip_bomb(simple_book(tmp_path / "billing.xlsx"), megabytes=200)
    assert path.stat().st_size < 1024 * 1024
    assert refused(path) == ["BB007"]


def test_openpyxl_parses_through_defusedxml():
    assert openpyxl.xml.DEFUSEDXML is True


@pytest.mark.parametrize("part", ["xl/worksheets/sheet1.xml", "xl/workbook.xml", "xl/styles.xml",
                                  "[Content_Types].xml"])
@pytest.mark.parametrize("padding", [0, 8000])
def test_an_entity_bomb_anywhere_is_refused_calmly_and_fast(tmp_path, part, padding):
    path = entity_bomb(simple_book(tmp_path / "billing.xlsx"), part, padding)
    assert refused(path) == ["BB008"]


def test_a_sheet_claiming_rows_past_excels_last_row_is_refused_fast(tmp_path):
    path = simple_book(tmp_path / "billing.xlsx")

    def far_row(xml: bytes) -> bytes:
        return xml.replace(b'<row r="3"', b'<row r="2000000"').replace(b'r="A3"', b'r="A2000000"')

    from test_errors import _rewrite
    _rewrite(path, {"xl/worksheets/sheet1.xml": far_row})
    assert refused(path) == ["BB001"]


def test_a_stray_cell_in_the_last_column_does_not_slow_reading(tmp_path):
    path = simple_book(tmp_path / "billing.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Customers"]["XFD1048576"] = "x"  # the sheet now claims 16,384 columns by a million rows
    wb.save(path)
    started = time.perf_counter()
    checked = load(path)
    assert time.perf_counter() - started < 5
    assert checked.problems == [] and len(checked.inputs.customers) == 2


def test_a_damaged_zip_is_not_a_workbook(tmp_path):
    path = simple_book(tmp_path / "billing.xlsx")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        sheet = z.getinfo("xl/worksheets/sheet1.xml")
    middle = sheet.header_offset + 30 + len(sheet.filename) + sheet.compress_size // 2
    data[middle:middle + 16] = b"\xff" * 16  # corrupt the compressed sheet
    path.write_bytes(bytes(data))
    assert refused(path) == ["BB001"]


def test_a_zip_bomb_that_understates_its_size_is_cut_short(tmp_path):
    """The size checks trust the zip's headers; Python's zipfile never unpacks more than they state
    (and then fails its CRC check), so a lying header cannot smuggle a bomb past them."""
    path = zip_bomb(simple_book(tmp_path / "billing.xlsx"), megabytes=200)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        bomb = z.getinfo("xl/media/image1.bin")
    small = (1000).to_bytes(4, "little")
    data[bomb.header_offset + 22:bomb.header_offset + 26] = small  # local header: uncompressed size
    name = bomb.filename.encode()
    central = next(i for i in range(len(data)) if data.startswith(b"PK\x01\x02", i)
                   and data[i + 46:i + 46 + len(name)] == name)
    data[central + 24:central + 28] = small  # central directory: uncompressed size
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as z:
        assert z.getinfo("xl/media/image1.bin").file_size == 1000
    assert refused(path) == ["BB001"]


def test_columns_and_settings_for_the_post_tasks_are_read_as_typed(tmp_path):
    path = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer(IBAN=" DE89 3704 0044 0532 0130 00 ", BIC="COBADEFFXXX",
                               **{"Mandate ID": "M-1", "Mandate Date": "2025-01-01"})],
        "Contracts": [contract(CC="ap@example.com; cfo@example.com")],
        "Subscriptions": [subscription()],
        "Products": [{"Product": "Platform ", "Account Code": 4000, "Tax Type": "Tax Exempt"},
                     {"Product": "Platform", "Account Code": 4001}, {"Product": "Support", "Account Code": 4100}],
        "Settings": settings(**{"SMTP Host": "mail.example.com", "SMTP Port": "587", "Creditor ID": "DE98ZZZ09999999999"}),
    }, headers={
        "Customers": HEADERS["Customers"] + ["IBAN", "BIC", "Mandate ID", "Mandate Date"],
        "Contracts": HEADERS["Contracts"] + ["CC"],
        "Products": ["Product", "Account Code", "Tax Type"],
    })
    checked = load(path)
    assert codes(checked) == ["BB110", "BB110"]  # Platform twice on the Products sheet: nothing set aside
    assert checked.set_aside == {}
    c = checked.inputs.customers["CUST-1"]
    assert (c.iban, c.bic, c.mandate_id, c.mandate_date) == ("DE89 3704 0044 0532 0130 00", "COBADEFFXXX", "M-1",
                                                             date(2025, 1, 1))
    assert checked.inputs.contracts["CTR-1"].cc == "ap@example.com; cfo@example.com"
    assert list(checked.inputs.products) == ["Support"]  # which Platform row is right? neither is used
    assert checked.inputs.products["Support"].account_code == "4100"
    s = checked.inputs.settings
    assert (s.smtp_host, s.smtp_port, s.creditor_id) == ("mail.example.com", 587, "DE98ZZZ09999999999")


def test_an_smtp_port_that_is_not_a_port_stops_the_run(tmp_path):
    checked = load(one_book(tmp_path, **{"SMTP Port": "five"}))
    assert codes(checked) == ["BB201"]


# ---------------------------------------------------------------- the two readers

SAMPLE = Path(__file__).parent.parent / "sample_data" / "billing.xlsx"


def read_with(path: Path, monkeypatch, reader: str):
    """Read with calamine (the default) or with openpyxl (as for a sheet calamine must not read)."""
    real = workbook.check_parts

    def check_parts(path: Path, limits: workbook.Limits):
        scan = real(path, limits)
        return dataclasses.replace(scan, calamine_unsafe=scan.calamine_unsafe or reader == "openpyxl")

    monkeypatch.setattr(workbook, "check_parts", check_parts)
    opened = []
    for kind in (workbook._CalamineFile, workbook._OpenpyxlFile):
        monkeypatch.setattr(workbook, kind.__name__, lambda p, kind=kind: opened.append(kind) or kind(p))
    checked = load(path)
    monkeypatch.undo()
    assert {k.__name__ for k in opened} == {"_CalamineFile" if reader == "calamine" else "_OpenpyxlFile"}
    return checked


def test_calamine_and_openpyxl_read_the_sample_alike(monkeypatch):
    fast, slow = (read_with(SAMPLE, monkeypatch, reader) for reader in ("calamine", "openpyxl"))
    assert fast.inputs == slow.inputs and sum(map(len, fast.inputs.usage.values())) > 100
    assert [p.as_dict() for p in fast.problems] == [p.as_dict() for p in slow.problems]


def test_typed_values_read_alike_by_both_readers(tmp_path, monkeypatch):
    path = one_book(tmp_path, subscriptions=[subscription("SUB-1", "CTR-1", quantity=12.0, price="1,200.50"),
                                             subscription(1234, "CTR-1", quantity=0.1, price=3)])
    fast, slow = (read_with(path, monkeypatch, reader) for reader in ("calamine", "openpyxl"))
    assert fast.inputs == slow.inputs
    assert [s.subscription_id for s in fast.inputs.subscriptions["CTR-1"]] == ["SUB-1", "1234"]
    assert [str(s.quantity) for s in fast.inputs.subscriptions["CTR-1"]] == ["12", "0.1"]


@pytest.mark.parametrize("edit", [
    pytest.param(lambda xml: xml.replace(b'<c r="B2"', b"<c"), id="cell without its position"),
    pytest.param(lambda xml: xml.replace(b'<row r="2"', b"<row"), id="row without its position"),
    pytest.param(lambda xml: xml.replace(b"</sheetData>", b'<row r="9"><c r="AA9"><v>1</v></c></row></sheetData>'),
                 id="cell past column Z"),
])
def test_sheets_calamine_could_not_bound_are_read_by_openpyxl(tmp_path, monkeypatch, edit):
    """calamine would lay such a sheet out as one grid whose size the file does not bound."""
    from test_errors import _rewrite
    path = simple_book(tmp_path / "billing.xlsx")
    _rewrite(path, {"xl/worksheets/sheet1.xml": edit})
    checked = read_with(path, monkeypatch, "openpyxl")
    assert not checked.problems and sorted(checked.inputs.customers) == ["CUST-1", "CUST-2"]
