"""Every sheet is the user's sheet or reported, and cells are read as Excel shows them (issue #21, items 3, 5, 11):
hidden sheets, two sheets or two workbooks for one table, formulas saved without their result, merged ID cells,
invisible characters in names, and the advice for negative usage. Each test goes through the CLI with a real
workbook written by openpyxl."""
from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import openpyxl
import pytest
from test_errors import _rewrite
from workbooks import (
    HEADERS,
    contract,
    customer,
    settings,
    simple_book,
    subscription,
    usage,
    write_book,
)

from billing_batch import cli
from billing_batch.inputs import workbook_parts

AS_OF = "2026-02-02"


def preview(source: Path, tmp_path: Path, capsys) -> tuple[int, dict]:
    """`run --preview --json`: what would be billed, and every problem; writes nothing."""
    code = cli.main(["run", "--preview", "--json", "--input", str(source), "--output", str(tmp_path / "out"),
                     "--as-of", AS_OF])
    return code, json.loads(capsys.readouterr().out)


def check(source: Path, tmp_path: Path, capsys) -> tuple[int, dict]:
    code = cli.main(["check", "--json", "--input", str(source), "--output", str(tmp_path / "out"), "--as-of", AS_OF])
    return code, json.loads(capsys.readouterr().out)


def codes(report: dict) -> list[str]:
    return [p["code"] for p in report["problems"]]


def totals(report: dict) -> dict[str, str]:
    return {d["contract_id"]: d["total"] for d in report["invoices"]}


def add_sheet(path: Path, title: str, rows: list[dict], state: str = "visible", headers=None) -> Path:
    wb = openpyxl.load_workbook(path)
    ws = wb.create_sheet(title)
    columns = headers or HEADERS[title.strip().title()]
    ws.append(columns)
    for row in rows:
        ws.append([row.get(h) for h in columns])
    ws.sheet_state = state
    wb.save(path)
    return path


def force_openpyxl(path: Path) -> Path:
    """An Excel error cell on a sheet the batch does not read: calamine shows errors as blanks, so the whole
    workbook is read by openpyxl."""
    wb = openpyxl.load_workbook(path)
    wb.create_sheet("Notes")["A1"] = "#N/A"
    wb.save(path)
    return path


# ---------------------------------------------------------------- hidden sheets (BB010)


def test_a_hidden_copy_of_a_sheet_is_reported_not_billed(tmp_path, capsys):
    """The issue's case: a hidden `subscriptions ` (trailing space) holding rows, billed silently before."""
    path = simple_book(tmp_path / "billing.xlsx")
    add_sheet(path, "subscriptions ", [subscription("SUB-8", "CTR-1", 2, 50), subscription("SUB-9", "CTR-2", 1, 1000)],
              state="hidden")
    code, report = preview(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB010"]
    problem = report["problems"][0]
    assert problem["sheet"] == "subscriptions " and "'subscriptions '" in problem["message"]
    assert report["invoices"] == []


def test_without_the_hidden_sheet_the_same_book_bills_its_own_rows(tmp_path, capsys):
    """The baseline for the test above: the visible sheet alone bills 100 and 1,200."""
    code, report = preview(simple_book(tmp_path / "billing.xlsx"), tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "100.00", "CTR-2": "1200.00"}


def test_a_very_hidden_sheet_is_reported_by_the_openpyxl_reader_too(tmp_path, capsys):
    path = force_openpyxl(simple_book(tmp_path / "billing.xlsx"))
    add_sheet(path, "Usage", [usage("USG-1", "CTR-1", quantity=1000)], state="veryHidden")
    code, report = check(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB010"]
    assert "very hidden" in report["problems"][0]["message"] and "Alt+F11" in report["problems"][0]["message"]


def test_a_hidden_sheet_with_another_name_is_ignored(tmp_path, capsys):
    path = add_sheet(simple_book(tmp_path / "billing.xlsx"), "Old subscriptions",
                     [subscription("SUB-8", "CTR-1", 2, 50)], state="hidden", headers=HEADERS["Subscriptions"])
    code, report = preview(path, tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "100.00", "CTR-2": "1200.00"}


# ---------------------------------------------------------------- two sheets, two workbooks (BB011, BB012)


def test_two_sheets_for_one_table_are_reported_once_naming_both(tmp_path, capsys):
    path = add_sheet(simple_book(tmp_path / "billing.xlsx"), "subscriptions ", [subscription("SUB-8", "CTR-1")])
    code, report = check(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB011"]
    assert "'Subscriptions' and 'subscriptions '" in report["problems"][0]["message"]


def test_a_lone_sheet_named_in_another_case_with_spaces_is_read(tmp_path, capsys):
    path = simple_book(tmp_path / "billing.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Subscriptions"].title = "subscriptions "
    wb.save(path)
    code, report = preview(path, tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "100.00", "CTR-2": "1200.00"}


def test_a_copy_of_the_workbook_beside_it_is_one_problem_naming_both_files(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    simple_book(inbox / "billing.xlsx")
    shutil.copy(inbox / "billing.xlsx", inbox / "billing - Copy.xlsx")
    code, report = check(inbox, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB012"]  # not a duplicate ID on every row
    message = report["problems"][0]["message"]
    assert "billing - Copy.xlsx and billing.xlsx" in message
    assert "Customers, Contracts, Subscriptions and Settings sheets" in message


def test_usage_in_a_workbook_of_its_own_is_still_joined(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    simple_book(inbox / "billing.xlsx")
    # a usage workbook made from a copy of the billing workbook, its other sheets emptied to their headings
    write_book(inbox / "usage.xlsx", {"Usage": [usage("USG-1", "CTR-1", quantity=10, price=2)], "Customers": []})
    code, report = preview(inbox, tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "120.00", "CTR-2": "1200.00"}


# ---------------------------------------------------------------- formulas without their result (BB013)


def formula_book(path: Path, cells: dict[str, str], **sheets) -> Path:
    """openpyxl writes a formula as typed, without its result, as programs that do not calculate do."""
    simple_book(path, **sheets)
    wb = openpyxl.load_workbook(path)
    for ref, value in cells.items():
        sheet, cell = ref.split("!")
        wb[sheet][cell] = value
    wb.save(path)
    return path


def test_a_unit_price_formula_without_its_result_is_reported_not_read_as_empty(tmp_path, capsys):
    path = formula_book(tmp_path / "billing.xlsx", {"Subscriptions!F3": "=10*2"})
    code, report = check(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB013"]  # not "BB102 The Unit Price is empty"
    p = report["problems"][0]
    assert (p["sheet"], p["row"], p["letter"], p["column"], p["value"]) == ("Subscriptions", 3, "F", "Unit Price",
                                                                           "=10*2")


def test_a_contract_id_formula_without_its_result_is_reported(tmp_path, capsys):
    path = formula_book(tmp_path / "billing.xlsx", {"Subscriptions!B3": '="CTR-"&2'})
    code, report = check(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB013"]
    assert report["problems"][0]["value"] == '="CTR-"&2' and report["problems"][0]["letter"] == "B"


def test_the_same_formulas_with_their_results_are_read_as_excel_shows_them(tmp_path, capsys):
    """Excel stores each result in <v>; a text formula whose result is the empty text stores an empty <v>."""
    path = formula_book(tmp_path / "billing.xlsx", {"Subscriptions!F3": "=10*2", "Subscriptions!D3": '=""'})
    _rewrite(path, {"xl/worksheets/sheet3.xml": lambda xml: xml.replace(
        b"<f>10*2</f><v></v>", b"<f>10*2</f><v>20</v>").replace(b'<c r="D3"', b'<c r="D3" t="str"')})
    code, report = preview(path, tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "100.00", "CTR-2": "24.00"}  # 20 plus 20% tax


def test_a_formula_without_its_result_in_a_column_not_read_is_ignored(tmp_path, capsys):
    path = formula_book(tmp_path / "billing.xlsx", {"Subscriptions!J1": "Total", "Subscriptions!J2": "=E2*F2"})
    code, report = preview(path, tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "100.00", "CTR-2": "1200.00"}


@pytest.mark.parametrize("chunk", [1 << 20, 61], ids=["one block", "blocks cutting every cell"])
def test_many_formulas_are_counted_past_the_first_twenty_whatever_the_blocks(tmp_path, capsys, monkeypatch, chunk):
    """The sheet is scanned as a stream: a cell cut between two blocks must be counted once, not missed."""
    monkeypatch.setattr(workbook_parts, "CHUNK", chunk)
    subs = [subscription(f"SUB-{i}", "CTR-1", 1, 5) for i in range(3, 103)]
    path = formula_book(tmp_path / "billing.xlsx", {f"Subscriptions!F{i}": f"={i}/2" for i in range(4, 104)},
                        Subscriptions=[subscription("SUB-1", "CTR-1"), subscription("SUB-2", "CTR-2"), *subs])
    code, report = check(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB013"] * 21
    assert [p["row"] for p in report["problems"][:20]] == list(range(4, 24))
    assert report["problems"][20]["message"] == "80 more cells of the Subscriptions sheet hold formulas saved " \
                                                "without their result."


# ---------------------------------------------------------------- merged ID cells (BB128)


def merged_book(path: Path, sheet: str, rows: list[dict], cells: str, **sheets) -> Path:
    simple_book(path, **sheets)
    wb = openpyxl.load_workbook(path)
    for row in rows:
        wb[sheet].append([row.get(h) for h in HEADERS[sheet]])
    wb[sheet].merge_cells(cells)
    wb.save(path)
    return path


@pytest.mark.parametrize("reader", ["calamine", "openpyxl"])
def test_merged_contract_ids_set_the_contract_aside(tmp_path, capsys, reader):
    """Before, rows 4 and 5 read as having no Contract ID (BB102, nothing set aside): CTR-2 was billed 1,200
    without the 300 of its two other subscriptions."""
    path = merged_book(tmp_path / "billing.xlsx", "Subscriptions",
                       [subscription("SUB-3", None, 1, 100), subscription("SUB-4", None, 2, 100)], "B3:B5")
    if reader == "openpyxl":
        force_openpyxl(path)
    code, report = preview(path, tmp_path, capsys)
    assert code == 1 and totals(report) == {"CTR-1": "100.00"}
    assert [(p["code"], p["row"], p["contract_id"]) for p in report["problems"]] == [("BB128", 4, "CTR-2"),
                                                                                      ("BB128", 5, "CTR-2")]
    assert "merged cells B3:B5, which show CTR-2" in report["problems"][0]["message"]


def test_merged_usage_contract_ids_set_the_contract_aside(tmp_path, capsys):
    path = merged_book(tmp_path / "billing.xlsx", "Usage", [usage("USG-2", None, quantity=5)], "B2:B3",
                       Usage=[usage("USG-1", "CTR-1", quantity=10, price=2)])
    code, report = preview(path, tmp_path, capsys)
    assert code == 1 and totals(report) == {"CTR-2": "1200.00"}
    assert [(p["code"], p["row"], p["contract_id"]) for p in report["problems"]] == [("BB128", 3, "CTR-1")]


def test_merged_customer_ids_set_the_contracts_below_aside(tmp_path, capsys):
    path = merged_book(tmp_path / "billing.xlsx", "Contracts", [contract("CTR-3", None)], "B3:B4",
                       Subscriptions=[subscription("SUB-1", "CTR-1", 2, 50), subscription("SUB-2", "CTR-2", 1, 1000),
                                      subscription("SUB-3", "CTR-3", 1, 10)])
    code, report = preview(path, tmp_path, capsys)
    assert code == 1 and totals(report) == {"CTR-1": "100.00", "CTR-2": "1200.00"}
    assert [(p["code"], p["row"], p["contract_id"]) for p in report["problems"]] == [("BB128", 4, "CTR-3")]


# ---------------------------------------------------------------- invisible characters (BB003)


def test_invisible_characters_in_headers_and_sheet_names_do_not_count(tmp_path, capsys):
    path = simple_book(tmp_path / "billing.xlsx")
    wb = openpyxl.load_workbook(path)
    ws = wb["Subscriptions"]
    ws.title = "\ufeffSubscriptions"  # a byte order mark pasted from a text file
    ws["E1"], ws["F1"] = "Qu\u200bantity", "Unit\u00a0Price"  # a zero-width space; a no-break space
    wb.save(path)
    code, report = preview(path, tmp_path, capsys)
    assert code == 0 and totals(report) == {"CTR-1": "100.00", "CTR-2": "1200.00"}


def test_a_heading_that_differs_by_a_blank_looking_character_does_not_look_like_the_missing_one(tmp_path, capsys):
    path = simple_book(tmp_path / "billing.xlsx")
    wb = openpyxl.load_workbook(path)
    wb["Subscriptions"]["E1"] = "Quantity\u3164"  # the Hangul filler prints as nothing and is a letter, not Cf
    wb.save(path)
    code, report = check(path, tmp_path, capsys)
    assert code == 2 and codes(report) == ["BB003"]
    message = report["problems"][0]["message"]
    assert "Quantity<U+3164>" in message and "Quantity," not in message


# ---------------------------------------------------------------- negative usage (BB109)


def test_negative_usage_is_advised_a_credit_note_not_a_discount(tmp_path, capsys):
    path = write_book(tmp_path / "billing.xlsx", {
        "Customers": [customer("CUST-1")], "Contracts": [contract("CTR-1", "CUST-1", date(2026, 1, 1))],
        "Subscriptions": [subscription("SUB-1", "CTR-1")], "Usage": [usage("USG-1", "CTR-1", quantity=-4)],
        "Settings": settings()})
    code, report = check(path, tmp_path, capsys)
    assert code == 1 and codes(report) == ["BB109"]
    fix = report["problems"][0]["fix"]
    assert "billing-batch credit" in fix and "Discount" not in fix
