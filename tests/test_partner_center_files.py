"""Partner Center usage files that are not as downloaded (issue #21, item 7): another encoding, not text at all,
a line cut or changed. Each is reported through `billing-batch check` as a problem naming the file and line, with
what to do, and stops the run (exit 2); none ends in an internal error (exit 4). Excel's "Unicode text" (UTF-16,
tab-separated) is read and billed as the UTF-8 file it was saved from."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from test_partner_center import billed, run  # noqa: F401 (fixture)

from billing_batch import cli
from billing_batch.ledger.store import Ledger

USAGE = "usage-2026-10.csv"


def check(folder: Path, out: Path, monkeypatch) -> tuple[int, dict, str]:
    text = io.StringIO()
    monkeypatch.setattr("sys.stdout", text)
    code = cli.main(["check", "--input", str(folder), "--output", str(out), "--as-of", "2026-11-02", "--json"])
    monkeypatch.undo()
    return code, json.loads(text.getvalue()), text.getvalue()


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().split(b"\r\n")


def rewrite(path: Path, edit) -> None:
    """The file's rows through the csv module, edited, written back as Partner Center writes them."""
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with path.open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(rows)


def with_cp1252_name(path: Path) -> None:
    def edit(rows):
        rows[5][rows[0].index("CustomerName")] = "Müller GmbH"
    rewrite(path, edit)
    path.write_bytes(path.read_bytes().decode("utf-8").encode("cp1252"))


def cut_last_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:-60])  # the last line's last 58 characters and its line end


def cut_inside_quotes(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:data.rindex(b'"') - 3])  # inside the last line's last quoted value


def extra_value(path: Path) -> None:
    rewrite(path, lambda rows: rows[9].append("surplus"))


def nul_in_a_name(path: Path) -> None:
    def edit(rows):
        rows[11][rows[0].index("MeterName")] = "Hot LRS\0Data Stored"
    rewrite(path, edit)


def unclosed_quote(path: Path) -> None:
    lines = lines_of(path)
    lines[7] = lines[7].replace(b",", b',"', 1)  # a quote opening the second value, never closed
    path.write_bytes(b"\r\n".join(lines))


def zero_filled_tail(path: Path) -> None:  # a download that stopped, its space already taken
    path.write_bytes(path.read_bytes() + b"\0" * 4096)


def huge_line(path: Path) -> None:
    lines = lines_of(path)
    lines[3] = lines[3] + b"x" * 3_000_000
    path.write_bytes(b"\r\n".join(lines))


# (how the file is spoiled, the code, the line reported or None for the whole file, words of the message)
DAMAGE = {
    "windows-1252": (with_cp1252_name, "BB014", 6, "is not saved in UTF-8"),
    "xlsx renamed to csv": (lambda p: p.write_bytes(b"PK\x03\x04\x14\x00\x06\x00" + bytes(range(256)) * 40),
                            "BB014", None, "an Excel workbook or another zip file"),
    "binary": (lambda p: p.write_bytes(bytes(range(256)) * 400), "BB014", None, "it is not text"),
    "last line cut": (cut_last_line, "BB015", 901, "ends in the middle of its last line"),
    "cut inside quotes": (cut_inside_quotes, "BB015", 901, "ends in the middle of its last line"),
    "extra value": (extra_value, "BB015", 10, "has 53 values where the header has 52"),
    "NUL character": (nul_in_a_name, "BB015", 12, "holds NUL characters"),
    "zero-filled tail": (zero_filled_tail, "BB015", 902, "holds NUL characters"),
    "quote never closed": (unclosed_quote, "BB015", 8, "Line 8 of usage-2026-10.csv has 12 values"),
    "huge line": (huge_line, "BB015", 4, "Line 4 of usage-2026-10.csv does not end where a line"),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_a_file_not_as_downloaded_is_reported_with_its_line_and_stops_the_run(billed, monkeypatch, name):
    folder, _, out = billed
    spoil, code, line, words = DAMAGE[name]
    spoil(folder / USAGE)
    exit_code, report, stdout = check(folder, out, monkeypatch)
    assert exit_code == report["exit_code"] == 2
    (found,) = [p for p in report["problems"] if p["code"] in ("BB014", "BB015")]
    assert (found["code"], found["file"], found["row"]) == (code, USAGE, line)
    assert words in found["message"] and found["fatal"]
    assert found["fix"].startswith("Download the file again from Partner Center")
    assert "Traceback" not in stdout


def test_the_windows_1252_value_is_shown_in_its_column(billed, monkeypatch):
    folder, _, out = billed
    with_cp1252_name(folder / USAGE)
    _, report, _ = check(folder, out, monkeypatch)
    (found,) = report["problems"]
    assert (found["column"], found["letter"], found["value"]) == ("CustomerName", "D", "Müller GmbH")


def test_excel_unicode_text_is_read_as_the_file_it_was_saved_from(billed, tmp_path):
    folder, _, out = billed
    assert run(folder, out) == 1  # a tenant on no contract (BB153), as in test_partner_center
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        expected = sorted((i.draft.contract_id, i.draft.total) for i in ledger.invoices())

    path = folder / USAGE  # as Excel saves "Unicode text": UTF-16 with a byte order mark, tab-separated
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    with path.open("w", newline="", encoding="utf-16") as f:
        csv.writer(f, delimiter="\t").writerows(rows)
    assert path.read_bytes()[:2] == b"\xff\xfe"
    again = tmp_path / "again"
    assert cli.main(["run", "--input", str(folder), "--output", str(again), "--as-of", "2026-11-02", "--jobs", "1",
                     "--new-ledger"]) == 1
    with Ledger(again / "ledger.sqlite", read_only=True) as ledger:
        assert sorted((i.draft.contract_id, i.draft.total) for i in ledger.invoices()) == expected


@pytest.mark.parametrize("content, exit_code", [(b"", 1), (None, 0)], ids=["empty", "header only"])
def test_an_empty_file_or_a_header_alone_ends_in_no_internal_error(billed, monkeypatch, content, exit_code):
    folder, _, out = billed
    path = folder / USAGE
    path.write_bytes(lines_of(path)[0] + b"\r\n" if content is None else content)
    code, report, _ = check(folder, out, monkeypatch)
    assert code == exit_code
    if content == b"":  # not a usage file: reported as before (BB150), the contracts set aside
        assert {p["code"] for p in report["problems"]} == {"BB150"}


def test_a_named_workbook_reads_the_usage_files_beside_it(tmp_path):
    """--input FILE: the Partner Center files of its folder are read too, as for --input FOLDER; without
    them the usage it was billed with would look taken back."""
    from billing_batch.inputs import partner_center

    book = tmp_path / "billing.xlsx"
    book.write_bytes(b"")
    usage = tmp_path / "usage.csv"
    usage.write_text("CustomerId\n")
    (tmp_path / "notes.txt").write_text("")
    assert partner_center.input_files(book) == partner_center.input_files(tmp_path) == [usage]
