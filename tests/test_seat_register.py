"""The Seat Register sheet (engine/seat_register.py, review/schedule_book.py): Microsoft's licence charges made
by the generator (benchmarks.partner_center_licences) from purchases and the changes that follow, read and
validated as a run reads them, billed by the command line, written into the schedule book and read back with
openpyxl. What each period should hold is computed here from the purchases, their events and the CSV rows."""
from __future__ import annotations

import csv
import random
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D
from itertools import pairwise
from pathlib import Path

import openpyxl
import pytest
from dateutil.relativedelta import relativedelta
from workbooks import HEADERS, contract, customer, settings, write_book

from benchmarks import partner_center_files as pcf
from benchmarks import partner_center_licences as pcl
from billing_batch import cli
from billing_batch.engine import seat_register
from billing_batch.inputs import licence_rows, partner_center, workbook
from billing_batch.inputs.validate import check
from billing_batch.ledger.store import Ledger
from billing_batch.model import LineKind
from billing_batch.review import schedule_book

AS_OF = "2026-12-02"  # bills November 2026
UNTIL = date(2026, 11, 30)  # Microsoft's rows through its November invoice
MARKUP = D("0.15")  # CTR-1's Licence Markup
SETTINGS_MARKUP = D("0.10")  # the Settings' Licence Markup: CTR-2's is blank
LISTED = ("CFQ7TTC0LF8Q", "0001", D("21.50"))  # CTR-2's Price List price of Office 365 E3, EUR
ONE_DAY = timedelta(days=1)
HEADERS_NEW = {
    "Contracts": [*HEADERS["Contracts"], "Partner Center Customer ID", "Licence Markup"],
    "Price List": ["Sku ID", "Unit Price", "Currency", "Contract ID"],
}
CENT = D("0.01")


def product(name: str) -> pcl.Product:
    return next(p for p in pcl.PRODUCTS if p.name == name)


def licence(tenant, sub: str, name: str, term: int, billing: str, start: date, seats: int) -> pcl.Licence:
    p = product(name)
    return pcl.Licence(tenant, sub, p.product_id, p.sku_id, p.name, p.name, term, billing,
                       pcl.unit_price(p.monthly, term, billing), start, seats)


def scenario() -> tuple[list, dict[str, tuple[str, pcl.Licence, list[pcl.Event]]]]:
    """Two tenants (USD, EUR); subscription -> (contract, its purchase, its events)."""
    usd, eur = pcf.tenants(random.Random(5), 2, ("USD", "EUR"))
    E = pcl.Event
    subs = {
        # a yearly term billed monthly: seats added, then reduced inside 7 days; a customer credit
        "sub-a": ("CTR-1", licence(usd, "sub-a", "Microsoft 365 Business Premium", 12, "Monthly", date(2026, 8, 10), 5),
                  [E("add", date(2026, 9, 20), 7), E("remove", date(2026, 9, 22), 6),
                   E("credit", date(2026, 10, 5), amount=D(10))]),
        # the same SKU again, on a monthly term: seats added on the day of purchase, cancelled after a renewal
        "sub-b": ("CTR-1", licence(usd, "sub-b", "Microsoft 365 Business Premium", 1, "Monthly", date(2026, 9, 1), 3),
                  [E("add", date(2026, 9, 1), 5), E("cancel", date(2026, 10, 3))]),
        # a monthly term converted to a yearly one, seats added later
        "sub-c": ("CTR-1", licence(usd, "sub-c", "Microsoft 365 E3", 1, "Monthly", date(2026, 8, 1), 2),
                  [E("convert", date(2026, 9, 15)), E("add", date(2026, 10, 20), 4)]),
        # converted on the day its monthly term renews: the renewal and the conversion, one row
        "sub-f": ("CTR-1", licence(usd, "sub-f", "Exchange Online (Plan 1)", 1, "Monthly", date(2026, 8, 1), 8),
                  [E("convert", date(2026, 10, 1))]),
        # a yearly term billed once a year, priced from the Price List: seats added part way through the cycle
        "sub-d": ("CTR-2", licence(eur, "sub-d", "Office 365 E3", 12, "Annual", date(2026, 8, 1), 10),
                  [E("add", date(2026, 8, 20), 12)]),
        # a monthly term that renews every month, at cost plus the Settings' markup
        "sub-e": ("CTR-2", licence(eur, "sub-e", "Exchange Online (Plan 1)", 1, "Monthly", date(2026, 10, 15), 4),
                  []),
    }
    return [usd, eur], subs


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict:
    """The input folder billed once by `run`; the register made from it, written to a book and read back."""
    tmp = tmp_path_factory.mktemp("seats")
    folder, out = tmp / "inbox", tmp / "out"
    folder.mkdir()
    (usd, eur), subs = scenario()
    rng = random.Random(11)
    rows = [r for sub in subs for r in pcl.subscription_rows(subs[sub][1], subs[sub][2], UNTIL, rng)]
    pcl.write(folder / "licences-2026-11.csv", rows)
    write_book(folder / "billing.xlsx", {
        "Customers": [customer("CUST-1"), customer("CUST-2")],
        "Contracts": [
            contract("CTR-1", "CUST-1", date(2026, 8, 1), Currency="USD",
                     **{"Partner Center Customer ID": usd.customer_id, "Licence Markup": float(MARKUP)}),
            contract("CTR-2", "CUST-2", date(2026, 8, 1), Currency="EUR",
                     **{"Partner Center Customer ID": eur.customer_id}),
        ],
        "Subscriptions": [],
        "Price List": [{"Sku ID": f"{LISTED[0]}:{LISTED[1]}", "Unit Price": float(LISTED[2]), "Currency": "EUR",
                        "Contract ID": "CTR-2"}],
        "Settings": settings(**{"Licence Markup": float(SETTINGS_MARKUP), "Catch-Up Limit": 12}),
    }, HEADERS_NEW)
    code = cli.main(["run", "--input", str(folder), "--output", str(out), "--as-of", AS_OF, "--jobs", "1"])
    assert code == 0
    checked = loaded(folder)
    register = seat_register.register(checked.licences.charges, checked.inputs)
    with Ledger(out / "ledger.sqlite", read_only=True) as ledger:
        invoices = ledger.invoices()
    book_dir = tmp / "book"
    book_dir.mkdir()
    path = schedule_book.write(book_dir, [], invoices, review_rows=[], register=register)
    return {"subs": subs, "csv": csv_rows(folder / "licences-2026-11.csv"), "register": register,
            "invoices": invoices, "path": path, "sheet": sheet(path), "checked": checked}


def loaded(folder: Path):
    """The input as `run` reads and validates it."""
    book, problems = workbook.read(workbook.input_files(folder))
    assert problems == []
    checked = check(book, None, licence_rows.read(partner_center.input_files(folder)))
    assert checked.problems == [] and not checked.set_aside
    return checked


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sheet(path: Path) -> list[dict]:
    ws = openpyxl.load_workbook(path)["Seat Register"]
    header = [c.value for c in ws[1]]
    return [dict(zip(header, (c.value for c in row))) for row in ws.iter_rows(min_row=2)]


def us(text: str) -> date:
    month, day, year = (int(p) for p in text.split("/"))
    return date(year, month, day)


def day_of(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def seats_on(purchase: pcl.Licence, events: list[pcl.Event], day: date) -> int | None:
    """The seats the subscription had on day, from its purchase and events (None: not bought yet)."""
    if day < purchase.start:
        return None
    seats = purchase.seats
    for ev in sorted(events, key=lambda e: e.day):
        if ev.day > day:
            break
        if ev.kind in ("add", "remove"):
            seats = ev.seats
        elif ev.kind == "cancel":
            seats = 0
    return seats


def days(first: date, last: date):
    while first <= last:
        yield first
        first += ONE_DAY


# ------------------------------------------------------------------ the periods


def test_the_sheet_comes_last_with_the_books_look(made):
    wb = openpyxl.load_workbook(made["path"])
    assert wb.sheetnames == ["Billing Schedules", "Invoices", "Invoice Lines", "Review", "Seat Register"]
    ws = wb["Seat Register"]
    assert [c.value for c in ws[1]] == [title for title, _, _ in schedule_book.REGISTER_COLUMNS]
    assert all(c.font.bold for c in ws[1])
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref == f"A1:{ws.cell(1, ws.max_column).column_letter}" \
        f"{ws.max_row}"
    assert ws.page_setup.orientation == "landscape" and ws.sheet_properties.pageSetUpPr.fitToPage
    assert (ws.page_setup.fitToWidth or 1, ws.page_setup.fitToHeight) == (1, 0)  # xlsxwriter leaves out the 1
    assert ws.print_title_rows == "$1:$1" and ws.print_options.gridLines
    header = [c.value for c in ws[1]]
    price, cost = header.index("Price per Seat per Month") + 1, header.index("Microsoft Cost per Seat per Month") + 1
    for row in range(2, ws.max_row + 1):
        currency = ws.cell(row, header.index("Currency") + 1).value
        for col in (price, cost):
            cell = ws.cell(row, col)
            if cell.value is not None:
                assert {"USD": "$", "EUR": "€"}[currency] in cell.number_format
        assert ws.cell(row, header.index("From") + 1).is_date


def test_sorted_by_contract_subscription_and_from(made):
    keys = [(r["Contract ID"], r["Subscription ID"].casefold(), day_of(r["From"])) for r in made["sheet"]]
    assert keys == sorted(keys)
    assert {r["Subscription ID"]: r["Contract ID"] for r in made["sheet"]} == {
        sub: cid for sub, (cid, _, _) in made["subs"].items()}


def test_every_day_has_the_seats_microsoft_charged(made):
    """One row covers each day from the purchase through Microsoft's last charge, at the seats the purchase and
    its changes give that day; periods do not overlap."""
    by_sub = defaultdict(list)
    for r in made["sheet"]:
        by_sub[r["Subscription ID"]].append(r)
    for sub, (_, purchase, events) in made["subs"].items():
        rows = by_sub[sub]
        last = max(us(c["ChargeEndDate"]) for c in made["csv"] if c["SubscriptionId"] == sub)
        for day in days(purchase.start, min(last, UNTIL)):
            covering = [r for r in rows if day_of(r["From"]) <= day <= day_of(r["To"])]
            assert len(covering) == 1, (sub, day, covering)
            assert covering[0]["Seats"] == seats_on(purchase, events, day), (sub, day)
        for earlier, later in pairwise(rows):
            assert day_of(earlier["To"]) + ONE_DAY == day_of(later["From"]), sub  # no gap, no overlap


def test_each_change_is_a_row_with_its_date_and_charge_type(made):
    rows = made["sheet"]
    for sub, (_, purchase, events) in made["subs"].items():
        mine = {day_of(r["From"]): r for r in rows if r["Subscription ID"] == sub}
        seats = [e for e in events if e.kind in ("add", "remove", "cancel")]
        for ev in seats:
            row = mine[ev.day]
            before = seats_on(purchase, events, ev.day - ONE_DAY)
            after = seats_on(purchase, events, ev.day)
            assert day_of(row["Changed On"]) == ev.day
            if ev.kind == "cancel":
                assert (row["Seats"], row["Change"], row["Charge Type"]) == (0, "cancelled", "cancel")
            elif before is None:  # on the day of purchase: the purchase and the change, one row
                assert row["Change"] == f"new, {after - purchase.seats:+d}"
            else:
                assert row["Change"] == f"{after - before:+d}"
                assert row["Charge Type"] == {"add": "addQuantity", "remove": "removeQuantity"}[ev.kind]
        first = mine[purchase.start]
        assert first["Change"].startswith("new")
        assert not any(e.kind == "credit" and e.day in mine for e in events)  # a credit changes no seats


def test_renewals_and_conversions_start_a_term_as_microsoft_wrote_it(made):
    """Each renew or convert charge opens a row with the term of that charge (its TermAndBillingCycle and
    SubscriptionStartDate..EndDate), and every row's term is that of the charge that opened it; of two on
    one day (a conversion on the day of a renewal), the later in the file."""
    opened = {}
    for c in made["csv"]:
        if not c["Subtotal"].startswith("-") and c["ChargeType"] in ("new", "renew", "convert"):
            opened[(c["SubscriptionId"], us(c["ChargeStartDate"]))] = c
    rows = {(r["Subscription ID"], day_of(r["From"])): r for r in made["sheet"]}
    for key, c in opened.items():
        row = rows[key]
        assert (row["Term"], row["Billing Frequency"] or "", day_of(row["Term Start"]), day_of(row["Term End"])) == (
            c["TermAndBillingCycle"], c["BillingFrequency"], us(c["SubscriptionStartDate"]),
            us(c["SubscriptionEndDate"]))
        word = {"new": "new", "renew": "renewed", "convert": "converted"}[c["ChargeType"]]
        assert word in row["Change"].split(", ")
    assert any(c["ChargeType"] == "renew" for c in opened.values())
    assert any(c["ChargeType"] == "convert" for c in opened.values())
    converted = rows[("sub-f", date(2026, 10, 1))]
    assert (converted["Change"], converted["Charge Type"]) == ("renewed, converted", "convert")
    for r in made["sheet"]:  # each row within its term
        assert day_of(r["Term Start"]) <= day_of(r["From"]) <= day_of(r["To"]) <= day_of(r["Term End"])


def test_how_many_seats_in_a_month_is_a_filter_on_from_and_to(made):
    """Finance's question: the rows with From <= the month's last day and To >= its first give the seats the
    subscription had on the days of that month (those Microsoft's charges cover: a cancelled subscription's
    register ends with the term it was cancelled in)."""
    for month in (date(2026, 8, 1), date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)):
        last = month + relativedelta(months=1) - ONE_DAY
        for sub, (_, purchase, events) in made["subs"].items():
            covered = max(us(c["ChargeEndDate"]) for c in made["csv"] if c["SubscriptionId"] == sub)
            found = {r["Seats"] for r in made["sheet"] if r["Subscription ID"] == sub
                     and day_of(r["From"]) <= last and day_of(r["To"]) >= month}
            held = {seats_on(purchase, events, d) for d in days(month, min(last, covered))} - {None}
            assert found == held, (sub, month)


# ------------------------------------------------------------------ prices


def cycle(start: date, anchor: date, months: int) -> tuple[date, date]:
    k = 0
    while anchor + relativedelta(months=(k + 1) * months) <= start:
        k += 1
    return anchor + relativedelta(months=k * months), anchor + relativedelta(months=(k + 1) * months) - ONE_DAY


def test_prices_per_seat_per_month_from_microsofts_subtotal(made):
    """Microsoft's cost of a seat for a month: a whole cycle's Subtotal per seat over the cycle's months (the
    period's first whole-cycle charge at its seats), else its opening charge scaled to the whole cycle. The
    customer's: the Price List's price, else that x (1 + Licence Markup), rounded to the cent."""
    markups = {"CTR-1": MARKUP, "CTR-2": SETTINGS_MARKUP}
    months_of = {"Monthly": 1, "Annual": 12}
    for r in made["sheet"]:
        if r["Seats"] == 0:
            assert r["Price per Seat per Month"] is None and r["Microsoft Cost per Seat per Month"] is None
            continue
        sub, start, end = r["Subscription ID"], day_of(r["From"]), day_of(r["To"])
        charges = [c for c in made["csv"] if c["SubscriptionId"] == sub and not c["Subtotal"].startswith("-")
                   and c["ChargeType"] != "customerCredit" and start <= us(c["ChargeStartDate"]) <= end
                   and D(c["BillableQuantity"]) == r["Seats"]]
        months = months_of.get(r["Billing Frequency"] or "", 12)
        whole = [c for c in charges if cycle(us(c["ChargeStartDate"]), us(c["SubscriptionStartDate"]), months)
                 == (us(c["ChargeStartDate"]), us(c["ChargeEndDate"]))]
        c = (whole or charges)[0]
        s, e = cycle(us(c["ChargeStartDate"]), us(c["SubscriptionStartDate"]), months)
        share = D((e - s).days + 1) / D((us(c["ChargeEndDate"]) - us(c["ChargeStartDate"])).days + 1)
        cost = D(c["Subtotal"]) / D(c["BillableQuantity"]) * share / months
        assert D(str(r["Microsoft Cost per Seat per Month"])) == cost.quantize(CENT, ROUND_HALF_UP), r
        if (c["ProductId"], c["SkuId"]) == LISTED[:2]:
            assert D(str(r["Price per Seat per Month"])) == LISTED[2]
        else:
            price = cost * (1 + markups[r["Contract ID"]])
            assert D(str(r["Price per Seat per Month"])) == price.quantize(CENT, ROUND_HALF_UP), r
        assert r["Currency"] == {"CTR-1": "USD", "CTR-2": "EUR"}[r["Contract ID"]]


# ------------------------------------------------------------------ billed on


def test_billed_on_names_the_invoice_carrying_the_charge_that_set_the_seats(made):
    """The run billed every charge; the row's Billed On is the invoice whose licence line is that charge (its
    subscription, first day, seats and ChargeType), linked to its PDF."""
    carried = {}
    for i in made["invoices"]:
        for line in i.draft.lines:
            if line.kind is LineKind.LICENCE:
                charge_type = line.description.split(" · ")[0]
                carried[(line.subscription_id, line.period_start, abs(line.quantity), charge_type,
                         line.quantity < 0)] = i.number
    ws = openpyxl.load_workbook(made["path"])["Seat Register"]
    header = [c.value for c in ws[1]]
    at = header.index("Billed On") + 1
    for n, r in enumerate(made["sheet"], start=2):
        refund = r["Seats"] == 0  # a cancel's row is opened by its refund
        quantity = D(r["Seats"])
        if refund:
            quantity = next(D(c["BillableQuantity"]) for c in made["csv"] if c["SubscriptionId"] == r["Subscription ID"]
                            and c["ChargeType"] == "cancel")
        number = carried[(r["Subscription ID"], day_of(r["Changed On"]), quantity, r["Charge Type"], refund)]
        assert r["Billed On"] == f'=HYPERLINK("invoices/{number}.pdf","{number}")'
        assert ws.cell(n, at).value == r["Billed On"]


def test_not_billed_yet_leaves_billed_on_blank(made, tmp_path: Path):
    path = schedule_book.write(tmp_path, [], [], register=made["register"])
    assert all(r["Billed On"] is None for r in sheet(path))
    assert openpyxl.load_workbook(path).sheetnames[-1] == "Seat Register"


# ------------------------------------------------------------------ the book's digest


def test_the_digest_holds_the_register(made):
    """An unchanged rerun is still found unchanged; a register that differs is a book that differs."""
    invoices, register = made["invoices"], made["register"]
    same = schedule_book.digest([], invoices, [], register=list(register))
    assert same == schedule_book.digest([], invoices, [], register=register)
    assert same != schedule_book.digest([], invoices, [])
    moved = [replace(register[0], seats=register[0].seats + 1), *register[1:]]
    assert same != schedule_book.digest([], invoices, [], register=moved)


def test_without_licences_no_sheet(tmp_path: Path):
    path = schedule_book.write(tmp_path, [], [], review_rows=[], register=[])
    assert openpyxl.load_workbook(path).sheetnames == ["Billing Schedules", "Invoices", "Invoice Lines", "Review"]
    assert schedule_book.digest([], [], []) == schedule_book.digest([], [], [], register=())
