"""What the terminal and the help show a finance person (#23): the documents made with their customer and
total in the run's locale, counts that count what was made, one line atop every command's help with the
developer options hidden, init's and the missing inbox's messages, the seat change the starter notes
describe, and `schedules` agreeing with the schedule workbook."""
from __future__ import annotations

import argparse
import io
import shlex
from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from babel.numbers import format_currency
from rich.console import Console
from workbooks import contract, customer, settings, subscription, write_book

from billing_batch import cli
from billing_batch.cli import terminal
from billing_batch.cli.parser import parser

AS_OF = "2026-04-02"  # bills January to March of contracts starting 2026-01-01 (Arrears, a day after)


@pytest.fixture
def console(monkeypatch) -> Console:
    recorded = Console(record=True, width=250, file=io.StringIO(), highlight=False)
    monkeypatch.setattr(terminal, "console", recorded)
    return recorded


def said(console: Console) -> str:
    return console.export_text()


def bill(command: str, book: Path, out: Path, *extra: str, as_of: str = AS_OF) -> int:
    return cli.main([command, "--input", str(book), "--output", str(out), "--as-of", as_of, "--jobs", "1", *extra])


def german_book(path: Path, **extra) -> Path:
    """Two customers in euros, Settings' Locale de_DE; unit prices with fewer decimals than a cent has."""
    return write_book(path, {
        "Customers": [customer("CUST-1", Name="Müller GmbH"), customer("CUST-2", Name="Brightwave Media")],
        "Contracts": [contract("CTR-1", "CUST-1", Currency="EUR"), contract("CTR-2", "CUST-2", Currency="EUR")],
        "Subscriptions": [subscription("SUB-1", "CTR-1", 2400, Decimal("11.7")),
                          subscription("SUB-2", "CTR-2", 3, Decimal("0.0125"))],
        "Settings": settings(Locale="de_DE", **{"Default Currency": "EUR"}),
        **extra,
    })


def sheet(path: Path, name: str) -> list[dict]:
    rows = list(openpyxl.load_workbook(path, data_only=True)[name].iter_rows(values_only=True))
    return [dict(zip(rows[0], row)) for row in rows[1:]]


def row_of(text: str, key: str) -> str:
    return next(line for line in text.splitlines() if key in line)


def test_run_ends_with_the_documents_made_in_the_locale_and_the_folder(tmp_path, console):
    book, out = german_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    assert bill("run", book, out) == 0
    text = said(console)
    invoices = sheet(out / "billing_schedules.xlsx", "Invoices")
    assert len(invoices) == 6
    for i in invoices:
        row = row_of(text, i["Invoice Number"])
        assert i["Customer"] in row and "Invoice" in row
        assert format_currency(Decimal(str(i["Total"])), "EUR", locale="de_DE") in row  # 56.160,00 €
    assert "Made 6 invoices as of 2026-04-02" in text
    total = sum(Decimal(str(i["Total"])) for i in invoices)
    assert format_currency(total, "EUR", locale="de_DE") in row_of(text, "EUR")  # the totals per currency
    assert f"PDFs: {out / 'invoices'}" in text
    assert ".pdf" not in text  # the folder, not a list of files
    assert "Credit notes" not in text and "Total credited" not in text  # no column for what was not made


def test_a_long_run_lists_the_first_documents_and_says_where_the_rest_are(tmp_path, console, monkeypatch):
    monkeypatch.setattr(terminal, "SHOW_DOCUMENTS", 4)
    book, out = german_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    assert bill("run", book, out) == 0
    text = said(console)
    numbers = [i["Invoice Number"] for i in sheet(out / "billing_schedules.xlsx", "Invoices")]
    assert all(n in text for n in numbers[:4]) and not any(n in text for n in numbers[4:])
    assert f"and {len(numbers) - 4} more; every document is in billing_schedules.xlsx" in text


def test_the_preview_shows_unit_prices_and_amounts_with_their_currency(tmp_path, console):
    book, out = german_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    assert bill("run", book, out, "--preview") == 0
    text = said(console)
    de = lambda amount: format_currency(amount, "EUR", locale="de_DE")
    seats = row_of(text, "CTR-1 ·") and next(line for line in text.splitlines() if "2.400" in line)
    assert de(Decimal("11.70")) in seats and de(2400 * Decimal("11.7")) in seats
    assert format_currency(Decimal("0.0125"), "EUR", locale="de_DE", decimal_quantization=False) in text  # 0,0125 €
    assert "11.7 " not in text and "2,400" not in text


def test_a_replace_counts_one_document_made_and_the_void_copy_redrawn(tmp_path, console):
    book, out = german_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    assert bill("run", book, out) == 0
    first = sheet(out / "billing_schedules.xlsx", "Invoices")[0]["Invoice Number"]
    console.file = io.StringIO()
    console.export_text(clear=True)
    assert bill("generate", book, out, "--contract", "CTR-1", "--cycle", "2026-01-01", "--replace") == 0
    text = said(console)
    new = sheet(out / "billing_schedules.xlsx", "Invoices")[-1]["Invoice Number"]
    assert f"Made 1 invoice as of {AS_OF}" in text and "Müller GmbH" in row_of(text, f"│ {new}")
    assert f"Made 1 document, redrew 1 earlier PDF ({first}, marked VOID)." in text
    assert "Totals per currency" not in text  # one document: its row says it all
    # the preview before it, in the run's locale too
    assert format_currency(Decimal("11.70"), "EUR", locale="de_DE") in text


def test_a_credit_note_shows_its_currency_and_no_total_billed(tmp_path, console):
    book, out = german_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    assert bill("run", book, out) == 0
    invoice = sheet(out / "billing_schedules.xlsx", "Invoices")[0]
    console.export_text(clear=True)
    assert bill("credit", book, out, "--invoice", invoice["Invoice Number"], "--reason", "Billed twice") == 0
    text = said(console)
    credited = format_currency(Decimal(str(invoice["Total"])), "EUR", locale="de_DE")
    assert f"for {credited}, crediting {invoice['Invoice Number']}" in text
    note = sheet(out / "billing_schedules.xlsx", "Invoices")[-1]["Invoice Number"]
    row = row_of(text, f"│ {note}")
    assert "Credit note" in row and format_currency(-Decimal(str(invoice["Total"])), "EUR", locale="de_DE") in row
    assert "Made 1 credit note as of" in text
    assert f"Made 1 document, redrew 1 earlier PDF ({invoice['Invoice Number']}, marked Credited)." in text
    assert "Total billed" not in text and "Invoices" not in text


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its words ("ledger check" too)."""
    found = {}
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found |= {f"{name} {inner}": parser for inner, parser in subcommands(sub).items()}
    return found


DEVELOPER = ("--executor", "--scheduler", "--max-input-mb", "--max-rows", "--timings-json")


def test_every_command_has_a_description_and_hides_the_developer_options(capsys):
    commands = subcommands(parser())
    assert {"run", "check", "generate", "credit", "init", "ledger check"} <= set(commands)
    for words, sub in commands.items():
        with pytest.raises(SystemExit):
            cli.main([*words.split(), "--help"])
        helped = capsys.readouterr().out
        assert sub.description and sub.description in " ".join(helped.split()), words
        for option in DEVELOPER:
            assert option not in helped, (words, option)
    with pytest.raises(SystemExit):
        cli.main(["check", "--help"])
    assert "--jobs" not in capsys.readouterr().out  # check renders nothing
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "--jobs" in capsys.readouterr().out


def test_the_hidden_options_still_work(tmp_path, console):
    book, out = german_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    assert bill("check", book, out, "--max-rows", "1") == 2  # more rows than allowed
    assert bill("run", book, out, "--executor", "dask") == 2
    assert "--scheduler tcp://HOST:8786" in said(console)
    timings = tmp_path / "timings.json"
    assert bill("run", book, out, "--timings-json", str(timings)) == 0
    assert '"issued": 6' in timings.read_text()


def test_init_quotes_a_folder_with_spaces_and_every_note_says_what_blank_means(tmp_path, console):
    folder = tmp_path / "Finance books 2026"
    assert cli.main(["init", str(folder)]) == 0
    assert f"cd {shlex.quote(str(folder))}" in said(console)
    wb = openpyxl.load_workbook(folder / "inbox" / "billing.xlsx")
    for ws in wb.worksheets:
        for cells in ws.iter_rows():
            for cell in cells:
                assert not cell.comment or "When blank: ." not in cell.comment.text, (ws.title, cell.coordinate)
    value = wb["Settings"]["B1"].comment.text
    assert "When blank: the default the key's note names." in value


def test_a_missing_inbox_is_named_with_what_to_do(tmp_path, console, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--input", "inbox", "--output", str(tmp_path / "out"), "--as-of", AS_OF]) == 2
    text = " ".join(said(console).split())
    assert str(tmp_path / "inbox") in text and "billing-batch init" in text and "cd into the folder" in text
    console.export_text(clear=True)
    assert cli.main(["run", "--input", "books/march.xlsx", "--output", str(tmp_path / "out"), "--as-of", AS_OF]) == 2
    assert str(tmp_path / "books" / "march.xlsx") in " ".join(said(console).split())


def seat_book(path: Path, changed: str) -> Path:
    """A monthly contract of 10 seats from January; from 18 April 15 seats, recorded as the starter's
    notes say (changed="new row") or by typing over the Quantity (changed="quantity")."""
    rows = {"before": [subscription("SUB-1", "CTR-1", 10, 30)],
            "new row": [subscription("SUB-1", "CTR-1", 10, 30, **{"End Date": date(2026, 4, 17)}),
                        subscription("SUB-2", "CTR-1", 15, 30, **{"Start Date": date(2026, 4, 18)})],
            "quantity": [subscription("SUB-1", "CTR-1", 15, 30)]}[changed]
    return write_book(path, {"Customers": [customer()], "Contracts": [contract()], "Subscriptions": rows,
                             "Settings": settings()})


@pytest.mark.parametrize("changed", ["new row", "quantity"])
def test_a_seat_change_mid_cycle_as_the_notes_say_rebills_nothing_before_it(tmp_path, console, changed):
    book, out = tmp_path / "billing.xlsx", tmp_path / "out"
    assert bill("run", seat_book(book, "before"), out) == 0
    earlier = [i["Invoice Number"] for i in sheet(out / "billing_schedules.xlsx", "Invoices")]
    assert bill("run", seat_book(book, changed), out, as_of="2026-05-02") == 0
    april = sheet(out / "billing_schedules.xlsx", "Invoices")[-1]["Invoice Number"]
    lines = [line for line in sheet(out / "billing_schedules.xlsx", "Invoice Lines") if line["Invoice Number"] == april]
    corrected = {line["Corrects"] for line in lines if line["Kind"] == "Adjustment"}
    assert corrected == (set() if changed == "new row" else set(earlier))
    if changed == "new row":  # April: 10 seats to the 17th, 15 from the 18th
        assert sorted(line["Quantity"] for line in lines) == [10, 15]
    notes = openpyxl.load_workbook(_starter(tmp_path))
    quantity = next(c for c in notes["Subscriptions"][1] if c.value == "Quantity").comment.text
    assert "Start Date" in quantity and "End Date" in quantity and "adjustments" in quantity


def _starter(tmp_path: Path) -> Path:
    folder = tmp_path / "starter"
    if not (folder / "inbox" / "billing.xlsx").exists():
        assert cli.main(["init", str(folder)]) == 0
    return folder / "inbox" / "billing.xlsx"


def catch_up_book(path: Path) -> Path:
    """CTR-OLD started in 2025 and was never billed here: over the Catch-Up Limit; CTR-1 is billed."""
    return write_book(path, {
        "Customers": [customer()],
        "Contracts": [contract("CTR-OLD", start=date(2025, 1, 1)), contract("CTR-1")],
        "Subscriptions": [subscription("SUB-OLD", "CTR-OLD"), subscription("SUB-1", "CTR-1")],
        "Settings": settings(),
    })


def schedules_table(text: str) -> dict[str, tuple[str, str, str]]:
    """Schedule ID -> (status, reason, message) from the `schedules` table."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 7 and "/" in cells[0]:
            rows[cells[0]] = (cells[3], cells[4], cells[6])
    return rows


def test_schedules_and_the_schedule_workbook_agree_on_a_contract_held_by_the_catch_up_guard(tmp_path, monkeypatch):
    book, out = catch_up_book(tmp_path / "billing.xlsx"), tmp_path / "out"
    monkeypatch.setattr(terminal, "console", Console(record=True, width=250, file=io.StringIO()))
    assert bill("run", book, out) == 1  # CTR-OLD set aside
    in_book = {r["Schedule ID"]: (r["Status"], r["Status Reason"], r["Message"] or "")
               for r in sheet(out / "billing_schedules.xlsx", "Billing Schedules")}
    wide = Console(record=True, width=2000, file=io.StringIO())
    monkeypatch.setattr(terminal, "console", wide)
    assert bill("schedules", book, out) == 1  # the held contract is a problem here too
    shown = schedules_table(wide.export_text())
    assert shown == in_book
    held = [status for sid, status in shown.items() if sid.startswith("CTR-OLD/") and status[1] == "Error"]
    assert len(held) > 3 and all("Catch-Up Limit" in message for _, _, message in held)
    assert any(reason == "Invoiced" for _, reason, _ in shown.values())
