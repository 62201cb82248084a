"""Microsoft licences from Partner Center billed through the command line (issue #22, "Done when"): files made by
benchmarks.partner_center_licences, billed with markups and a Price List, billed again, repeated, refunded, handed
over from typed Subscriptions rows, and damaged. The ledger is a real SQLite file read back with sqlite3, the
invoices real PDFs read back with pypdf; every expected amount is computed here from the CSV rows
(tests/licence_files.py), not with the batch's code."""
from __future__ import annotations

import csv
import random
import re
import uuid
from collections import Counter
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import licence_files as lf
import pytest
from licence_files import ALPHA, BETA, DELTA, GAMMA, STRANGER
from pypdf import PdfReader

from benchmarks import partner_center_licences as pcl

FIRST = date(2026, 8, 1)
AS_OF = "2026-12-02"  # after every charge of August to October: each contract's last invoice cuts off on 30 November
SETTINGS_MARKUP = D("0.10")
# contract -> (tenant, billing frequency, policy, Licence Markup typed; None: the Settings' 10 %)
CONTRACTS = {"CTR-A": (ALPHA, "Monthly", "Advance", D("0.15")), "CTR-B": (BETA, "Quarterly", "Arrears", None),
             "CTR-G": (GAMMA, "Monthly", "Arrears", D(0)), "CTR-D": (DELTA, "Quarterly", "Advance", D("0.2"))}
PRICED = "CTR-D"  # its own Price List row for one of its SKUs, in its currency
PER_MONTH = D("31.50")
SEED = 119  # by October: every charge type, each billing frequency, refunds, Azure plan rows, the stranger's rows
TENANTS = [ALPHA, BETA, GAMMA, DELTA, STRANGER]
NOVEMBER = date(2026, 11, 1)  # the rows of August to November; October's file has those starting before it


def markup(cid: str) -> D:
    typed = CONTRACTS[cid][3]
    return SETTINGS_MARKUP if typed is None else typed


def tenant_rows(rows: list[dict[str, str]], cid: str) -> list[dict[str, str]]:
    tenant = CONTRACTS[cid][0]
    return [r for r in rows if r["CustomerId"] == tenant.customer_id and not lf.is_azure(r)]


def priced_sku(rows: list[dict[str, str]]) -> str:
    """DELTA's SKU with the most charges and no customer credit (a credit is an amount, not seats)."""
    mine = tenant_rows(rows, PRICED)
    credited = {lf.sku(r) for r in mine if r["ChargeType"] == "customerCredit"}
    return Counter(lf.sku(r) for r in mine if lf.sku(r) not in credited).most_common(1)[0][0]


def expected(rows: list[dict[str, str]], cid: str, sku: str) -> Counter:
    return lf.expected_charges(tenant_rows(rows, cid), markup(cid), {sku: PER_MONTH} if cid == PRICED else None)


def make_inbox(folder: Path, rows: list[dict[str, str]], sku: str) -> Path:
    inbox = folder / "inbox"
    pcl.write(inbox / "licences-2026-10.csv", rows)
    lf.book(inbox, [lf.contract_row(cid, tenant, FIRST, policy, typed, **{"Billing Frequency": every})
                    for cid, (tenant, every, policy, typed) in CONTRACTS.items()],
            prices=[{"Sku ID": sku, "Unit Price": PER_MONTH, "Currency": DELTA.currency, "Contract ID": PRICED}],
            **{"Licence Markup": "10%"})
    return inbox


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """Five tenants (USD and EUR) in one file for August to October; four on contracts, one on none."""
    folder = tmp_path_factory.mktemp("licences")
    rows = [r for r in pcl.rows(SEED, TENANTS, FIRST, 4) if lf.starts(r) < NOVEMBER]
    sku = priced_sku(rows)
    inbox = make_inbox(folder, rows, sku)
    code = lf.run(inbox, folder / "out", AS_OF)
    return folder, rows, sku, code


def test_each_contract_is_billed_each_charge_at_cost_plus_markup_or_its_price_list_price(first_run):
    folder, rows, sku, code = first_run
    out = folder / "out"
    assert code == 1  # the stranger's charges: reported, the rest billed
    mine = [r for cid in CONTRACTS for r in tenant_rows(rows, cid)]
    # the file is what the test means it to be: refunds, both currencies, upfront and annual terms, Azure plan rows
    assert any(D(r["Subtotal"]) < 0 for r in mine) and any(lf.is_azure(r) for r in rows)
    assert {r["ChargeType"] for r in mine} >= {"new", "cycleCharge", "renew", "addQuantity", "removeQuantity",
                                               "cancel", "convert", "customerCredit"}
    assert {r["BillingFrequency"] for r in mine} == {"Monthly", "Annual", ""}
    assert all(lf.starts(r) <= date(2026, 11, 30) for r in mine)
    lines = lf.licence_lines(out)
    for cid in CONTRACTS:
        want = expected(rows, cid, sku)
        got = lf.billed_charges([b for b in lines if b.contract_id == cid])
        assert got == want, cid  # each charge once, its seats, period and amount
        assert lf.totals(lines)[cid] == sum(k[-1] * n for k, n in want.items())
    # the Price List priced its SKU, not at cost: the test would not tell otherwise
    listed = [r for r in tenant_rows(rows, PRICED) if lf.sku(r) == sku]
    assert listed and any(lf.price_listed(r, PER_MONTH) != lf.cost_plus(r, markup(PRICED)) for r in listed)
    # nothing else was billed: no line for the Azure plan, none for the stranger, no other kind of line
    assert {b.kind for b in lf.ledger_lines(out)} == {"Licence"}
    assert "Azure plan" not in {b.product for b in lines}
    assert sum(len(tenant_rows(rows, cid)) for cid in CONTRACTS) == len(lines) == len(set(lf.ledger_usage_ids(out)))


def test_a_tenant_on_no_contract_is_reported_with_its_rows_and_cost(first_run):
    folder, rows, _, code = first_run
    assert code == 1
    report = lf.check_json(folder / "inbox", folder / "out", AS_OF)
    lost = [r for r in rows if r["CustomerId"] == STRANGER.customer_id and not lf.is_azure(r)]
    cost = sum((D(r["Subtotal"]) for r in lost), D(0))
    (found,) = [p for p in report["problems"] if p["code"] == "BB172"]
    assert found["value"] == STRANGER.customer_id and not found["fatal"]
    assert f"has {len(lost):,} licence charge(s) costing {lf.cents(cost):,} {STRANGER.currency}" in found["message"]
    assert found["file"] == "licences-2026-10.csv"
    assert found["row"] == 2 + next(i for i, r in enumerate(rows) if r in lost)  # its first charge
    assert report["exit_code"] == 1 and not [p for p in report["problems"] if p["code"] != "BB172"]


def test_billing_again_a_copy_of_the_file_or_a_later_file_repeating_rows_bills_nothing_twice(first_run, tmp_path):
    source, _, sku, _ = first_run
    folder = lf.copy_folder(source, tmp_path / "again")
    inbox, out = folder / "inbox", folder / "out"
    before = lf.ledger_lines(out)
    assert lf.run(inbox, out, AS_OF) == 1
    assert lf.ledger_lines(out) == before  # a second run on the same day: nothing more
    # November's file repeats October's rows; the October file is also there twice under another name
    rows = pcl.rows(SEED, TENANTS, FIRST, 4)
    first = lf.read_rows(inbox / "licences-2026-10.csv")
    later = [r for r in rows if lf.starts(r) >= date(2026, 10, 1)]
    assert first == [r for r in rows if lf.starts(r) < NOVEMBER]
    assert len(later) > len([r for r in rows if lf.starts(r) >= NOVEMBER]) > 0
    pcl.write(inbox / "licences-2026-10 (1).csv", first)
    pcl.write(inbox / "licences-2026-11.csv", later)
    assert lf.run(inbox, out, "2027-02-02") == 1  # the quarterly contracts' next invoices too
    lines = lf.licence_lines(out)
    assert lines[:len(before)] == before  # what was billed stays billed
    for cid in CONTRACTS:
        assert lf.billed_charges([b for b in lines if b.contract_id == cid]) == expected(rows, cid, sku), cid
    assert len(lines) == sum(len(tenant_rows(rows, cid)) for cid in CONTRACTS)
    assert lf.run(inbox, out, "2027-02-02") == 1
    assert lf.licence_lines(out) == lines


def test_a_refund_is_a_negative_line_and_an_invoice_below_zero_a_credit_note(tmp_path):
    """Two subscriptions bought on 1 October and billed; the November file takes seats back and cancels one."""
    rng = random.Random(3)
    bought = date(2026, 10, 1)
    e3 = pcl.Licence(GAMMA, str(uuid.UUID(int=rng.getrandbits(128))), "CFQ7TTC0LFLZ", "0001", "Microsoft 365 E3",
                     "Microsoft 365 E3", 12, "Monthly", D("37.80"), bought, 20)
    basic = pcl.Licence(GAMMA, str(uuid.UUID(int=rng.getrandbits(128))), "CFQ7TTC0LH18", "0001",
                        "Microsoft 365 Business Basic", "Microsoft 365 Business Basic", 1, "Monthly", D("7.20"),
                        bought, 8)
    until = date(2026, 10, 31)
    rows = (pcl.subscription_rows(e3, [pcl.Event("remove", date(2026, 10, 3), 5)], until, rng)
            + pcl.subscription_rows(basic, [pcl.Event("cancel", date(2026, 10, 4))], until, rng))
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    lf.book(inbox, [lf.contract_row("CTR-G", GAMMA, bought, "Arrears", D("0.12"))])
    purchases = [r for r in rows if r["ChargeType"] == "new"]
    pcl.write(inbox / "licences-2026-10.csv", purchases)
    assert lf.run(inbox, out, "2026-11-02") == 0
    pcl.write(inbox / "licences-2026-10-full.csv", rows)
    assert lf.run(inbox, out, "2026-12-02") == 0
    lines = lf.licence_lines(out)
    assert lf.billed_charges(lines) == lf.expected_charges(rows, D("0.12"))
    refunds = [b for b in lines if b.amount < 0]
    assert {b.description.split(" · ")[0] for b in refunds} == {"removeQuantity", "cancel"}
    assert all(b.quantity < 0 for b in refunds)  # the seats taken back
    (later,) = {b.number for b in lines} - {b.number for b in lines if b.description.startswith("new")}
    assert {b.doc_type for b in lines if b.number == later} == {"Credit Note"}
    note = [b for b in lines if b.number == later]
    refunded = [r for r in rows if r["ChargeType"] != "new"]
    assert sum(b.amount for b in note) == sum(lf.cost_plus(r, D("0.12")) for r in refunded) < 0


SUB = "SUB-H1"  # the Subscriptions row typed by hand


def hand_over(tmp_path: Path, **setting) -> tuple[Path, Path, list[dict[str, str]]]:
    """A contract billed by hand for September and October (10 seats at 40 a month); then the licence file."""
    rng = random.Random(11)
    start = date(2026, 9, 1)
    licence = pcl.Licence(ALPHA, str(uuid.UUID(int=rng.getrandbits(128))), "CFQ7TTC0LFLZ", "0001",
                          "Microsoft 365 E3", "Microsoft 365 E3", 12, "Monthly", D("37.80"), start, 10)
    rows = pcl.subscription_rows(licence, [pcl.Event("add", date(2026, 10, 12), 12)], date(2026, 11, 30), rng)
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    typed = {"Subscription ID": SUB, "Contract ID": "CTR-H", "Product": "Microsoft 365 E3", "Description": "Seats",
             "Quantity": 10, "Unit Price": 40, "Start Date": start,
             "Partner Center Subscription ID": licence.subscription_id.upper()}  # matched without case
    lf.book(inbox, [lf.contract_row("CTR-H", ALPHA, start, "Advance", D("0.15"))], [typed], **setting)
    assert lf.run(inbox, out, "2026-10-02") == 0
    assert sum(b.amount for b in lf.ledger_lines(out)) == 800  # two cycles by hand
    pcl.write(inbox / "licences-2026-10.csv", [r for r in rows if lf.starts(r) <= date(2026, 10, 31)])
    return inbox, out, rows


def pdf_text(path: Path) -> str:
    return " ".join(" ".join(page.extract_text().split()) for page in PdfReader(path).pages)


def test_a_subscription_typed_by_hand_hands_over_to_the_file_and_is_never_billed_twice(tmp_path):
    inbox, out, rows = hand_over(tmp_path)
    assert lf.run(inbox, out, "2026-11-02") == 0
    pcl.write(inbox / "licences-2026-11.csv", rows)  # November's file repeats October's rows
    assert lf.run(inbox, out, "2026-12-02") == 0
    lines = lf.ledger_lines(out)
    adjustments = [b for b in lines if b.kind == "Adjustment"]
    assert sum(b.amount for b in adjustments) == -800 and {b.period_start for b in adjustments} == {
        date(2026, 9, 1), date(2026, 10, 1)}  # the typed days taken back
    assert lf.billed_charges([b for b in lines if b.kind == "Licence"]) == lf.expected_charges(rows, D("0.15"))
    assert sum(b.amount for b in lines) == sum(lf.cost_plus(r, D("0.15")) for r in rows)  # never both
    texts = {p.name: pdf_text(p) for p in (out / "invoices").rglob("*.pdf")}
    said = {name: len(re.findall(rf"in place of {SUB}\b", text)) for name, text in texts.items()}
    assert sum(said.values()) == 1, said
    (name,) = [n for n, k in said.items() if k]
    first = min(lines, key=lambda b: (b.period_start, b.number) if b.kind == "Licence" else (date.max, ""))
    assert first.number in name  # on the invoice of the file's first charge


def test_with_mid_term_changes_flag_only_the_contract_is_set_aside_not_billed_twice(tmp_path):
    inbox, out, _ = hand_over(tmp_path, **{"Mid-Term Changes": "Flag Only"})
    before = lf.ledger_lines(out)
    assert lf.run(inbox, out, "2026-11-02") == 1
    assert lf.ledger_lines(out) == before  # nothing more: not the file's lines over the typed ones
    report = lf.check_json(inbox, out, "2026-11-02")
    found = [p for p in report["problems"] if p["code"] == "BB175"]  # one per invoice billing the same days
    assert found and all(p["contract_id"] == "CTR-H" and SUB in p["message"] for p in found)
    assert {p["code"] for p in report["problems"]} == {"BB175"} and report["exit_code"] == 1


def small_file(folder: Path) -> tuple[Path, list[dict[str, str]]]:
    rows = [r for r in pcl.rows(SEED, [ALPHA], FIRST, 3) if not lf.is_azure(r)]
    assert len(rows) > 3
    inbox = folder / "inbox"
    lf.book(inbox, [lf.contract_row("CTR-A", ALPHA, FIRST, "Advance", D("0.15"))])
    return pcl.write(inbox / "licences-2026-10.csv", rows), rows


def nothing_billed(out: Path) -> bool:
    return not (out / "ledger.sqlite").exists() or not lf.ledger_lines(out)


def test_a_file_cut_in_the_middle_of_a_line_is_bb015_with_its_line(tmp_path):
    path, rows = small_file(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:data.rstrip(b"\r\n").rfind(b"\n") + 40])  # the last line cut after 40 characters
    report = lf.check_json(path.parent, tmp_path / "out", AS_OF)
    (found,) = [p for p in report["problems"] if p["code"] == "BB015"]
    assert found["file"] == path.name and found["row"] == len(rows) + 1
    assert report["exit_code"] not in (0, 4)
    assert lf.run(path.parent, tmp_path / "out", AS_OF) not in (0, 4)
    assert nothing_billed(tmp_path / "out")


def test_a_windows_1252_byte_is_bb014_with_its_line(tmp_path):
    path, _ = small_file(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[3] = lines[3].replace(ALPHA.name.encode(), "Alpha Müller".encode("cp1252"))
    path.write_bytes(b"\n".join(lines))
    report = lf.check_json(path.parent, tmp_path / "out", AS_OF)
    (found,) = [p for p in report["problems"] if p["code"] == "BB014"]
    assert found["file"] == path.name and found["row"] == 4 and found["value"] == "Alpha Müller"
    assert report["exit_code"] not in (0, 4)


def test_a_missing_column_is_bb170_naming_it(tmp_path):
    path, rows = small_file(tmp_path)
    kept = [c for c in lf.read_rows(path)[0] if c != "InvoiceNumber"]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=kept, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    report = lf.check_json(path.parent, tmp_path / "out", AS_OF)
    (found,) = [p for p in report["problems"] if p["code"] == "BB170"]
    assert found["file"] == path.name and found["row"] == 1 and found["column"] == "InvoiceNumber"
    assert report["exit_code"] not in (0, 4)
    assert lf.run(path.parent, tmp_path / "out", AS_OF) not in (0, 4)
    assert nothing_billed(tmp_path / "out")  # the contract is set aside: its charges are not known


def test_a_customer_credit_on_a_price_listed_sku_is_the_credit_not_the_price_of_a_seat(tmp_path):
    """A customerCredit row is an amount Microsoft gave back (BillableQuantity 1), not a seat: the Price List, a
    price per seat per month, cannot price it, so it is passed on as cost-plus lines are (Subtotal x (1 + markup))."""
    rng = random.Random(5)
    bought = date(2026, 10, 1)
    e3 = pcl.Licence(GAMMA, str(uuid.UUID(int=rng.getrandbits(128))), "CFQ7TTC0LFLZ", "0001", "Microsoft 365 E3",
                     "Microsoft 365 E3", 12, "Monthly", D("37.80"), bought, 10)
    rows = pcl.subscription_rows(e3, [pcl.Event("credit", date(2026, 10, 5), amount=D(10))], date(2026, 10, 31), rng)
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    lf.book(inbox, [lf.contract_row("CTR-G", GAMMA, bought, "Arrears", D("0.12"))],
            prices=[{"Sku ID": "CFQ7TTC0LFLZ:0001", "Unit Price": 40, "Currency": "USD"}])
    pcl.write(inbox / "licences-2026-10.csv", rows)
    assert lf.run(inbox, out, "2026-11-02") == 0
    (credit,) = [r for r in rows if r["ChargeType"] == "customerCredit"]
    (purchase,) = [r for r in rows if r["ChargeType"] == "new"]
    found = {b.description.split(" · ")[0]: b.amount for b in lf.licence_lines(out)}
    assert found["new"] == lf.price_listed(purchase, D(40)) == 400  # the seats at the Price List's price
    assert found["customerCredit"] == lf.cost_plus(credit, D("0.12")) == D("-11.20")
