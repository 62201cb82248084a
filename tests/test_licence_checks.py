"""The licence reconciliation flags (review/licence_checks.py, issue #22 item 7): each made by a licence file
written here (benchmarks.partner_center_licences makes the rows as Microsoft does), billed through the command
line into a folder of its own; then found on the review page and in its CSV, and missing from a clean case.
Expected values are computed here from the rows written, with Decimal, not with the batch's code."""
from __future__ import annotations

import csv
import random
import re
import uuid
from datetime import date, timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal as D
from pathlib import Path

import lxml.html

from benchmarks import partner_center_licences as pcl
from benchmarks.partner_center_files import Tenant
from billing_batch import cli
from billing_batch.inputs.licences import AZURE_PLAN_PRODUCT
from workbooks import HEADERS, contract, customer, settings, write_book

AS_OF = "2026-12-02"  # the December invoice of a monthly Advance contract takes the charges through November
TENANT = Tenant("7d3c8f4e-2a61-4c1b-9f0e-5b2d6a8c4e10", "Contoso Seats", "US", "USD", "1")
STRANGER = Tenant("0b9e1c2d-3f4a-4b5c-8d6e-7f8091a2b3c4", "Fabrikam Unmapped", "US", "USD", "1")
SKU = ("CFQ7TTC0LFLZ", "0001", "Microsoft 365 E3")
START = date(2026, 10, 1)
UNTIL = date(2026, 11, 30)
CONTRACT_HEADERS = {"Contracts": [*HEADERS["Contracts"], "Billed Through", "Partner Center Customer ID",
                                  "Licence Markup"],
                    "Price List": ["Sku ID", "Unit Price", "Currency", "Contract ID"]}


def cents(amount: D) -> D:
    return amount.quantize(D("0.01"), ROUND_HALF_UP)


def licence(seats: int = 10, term_months: int = 12, price: D = D("37.80"), tenant: Tenant = TENANT,
            start: date = START, subscription: str | None = None) -> pcl.Licence:
    product_id, sku_id, name = SKU
    return pcl.Licence(tenant, subscription or str(uuid.uuid4()), product_id, sku_id, name, name, term_months,
                       "Monthly", price, start, seats)


def charges(lic: pcl.Licence, *events: pcl.Event, until: date = UNTIL) -> list[dict[str, str]]:
    return pcl.subscription_rows(lic, events, until, random.Random(1))


def bill(tmp_path: Path, rows: list[dict[str, str]], *, markup=None, prices=(), billed_through=None,
         folder_name: str = "run") -> tuple[int, Path]:
    """Bill the rows for contract CTR-1 (tenant TENANT, Monthly Advance from START) into a folder of its own;
    the exit code and the folder."""
    folder = tmp_path / folder_name
    inbox = folder / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    pcl.write(inbox / "licences-2026-11.csv", rows)
    write_book(inbox / "billing.xlsx", {
        "Customers": [customer("CUST-1")],
        "Contracts": [contract("CTR-1", "CUST-1", START, Currency="USD", **{
            "Partner Center Customer ID": TENANT.customer_id, "Licence Markup": markup,
            "Billed Through": billed_through})],
        "Subscriptions": [],
        "Price List": [{"Sku ID": f"{SKU[0]}:{SKU[1]}", "Unit Price": p, "Currency": "USD"} for p in prices],
        "Settings": settings(),
    }, CONTRACT_HEADERS)
    code = cli.main(["run", "--input", str(inbox), "--output", str(folder / "out"), "--as-of", AS_OF,
                     "--jobs", "1", "--new-ledger"])
    return code, folder / "out"


def page_flags(out: Path) -> dict[str, dict]:
    """The licence section of the latest review page: flag name -> its tone, count, CSV link and findings."""
    page = max((out / "runs").glob("*/review.html"))
    tree = lxml.html.fromstring(page.read_text(encoding="utf-8"))
    found = {}
    for block in tree.xpath("//section[@id='licences']//div[@data-flag]"):
        badge = block.xpath(".//h3/span[contains(@class, 'b')]")[0]
        link = block.xpath(".//a[contains(@class, 'csv')]")[0]
        found[block.get("data-flag")] = {
            "tone": next(c[5:] for c in badge.get("class").split() if c.startswith("tone-")),
            "count": int(block.xpath(".//h3/span[@class='n']")[0].text_content().replace(",", "")),
            "csv": (page.parent / link.get("href")).resolve(),
            "findings": [[td.text_content().strip() for td in tr.xpath("./td")]
                         for tr in block.xpath(".//tbody/tr")],
        }
    if found:
        assert tree.xpath("//nav[@class='jump']/a[@href='#licences']")
    return found


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def day(text: str) -> date:
    m, d, y = (int(p) for p in text.split("/"))
    return date(y, m, d)


def flagged(tmp_path: Path, rows, name: str, **kw) -> tuple[dict, list[dict[str, str]]]:
    """Bill the rows; the flag's block on the page and its CSV (which the page links)."""
    code, out = bill(tmp_path, rows, **kw)
    assert code in (0, 1)
    flags = page_flags(out)
    assert name in flags, f"{name} not on the page: {sorted(flags)}"
    assert flags[name]["csv"] == (out / "reconciliation" / f"licences-{name}.csv").resolve()
    return flags[name], csv_rows(flags[name]["csv"])


def not_flagged(tmp_path: Path, rows, name: str, **kw) -> None:
    code, out = bill(tmp_path, rows, folder_name="clean", **kw)
    assert code in (0, 1)
    assert name not in page_flags(out)
    assert not (out / "reconciliation" / f"licences-{name}.csv").exists()


# ---------------------------------------------------------------- 1. below cost


def test_a_negative_markup_bills_each_charge_below_cost(tmp_path):
    rows = charges(licence())
    flag, listed = flagged(tmp_path, rows, "below_cost", markup=D("-0.1"))
    assert flag["tone"] == "alert" and flag["count"] == len(rows) == 2
    assert [(r["Charge Type"], D(r["Microsoft Cost"])) for r in listed] == \
        [(r["ChargeType"], D(r["Subtotal"])) for r in rows]
    for r in listed:
        cost = D(r["Microsoft Cost"])
        assert D(r["Customer Exact"]) == cost * D("0.9")
        assert D(r["Customer Amount"]) == cents(cost * D("0.9"))
        assert D(r["Difference"]) == D(r["Customer Exact"]) - cost < 0
        assert r["Subscription ID"] == rows[0]["SubscriptionId"] and r["Contract ID"] == "CTR-1"
    assert all(f[0] == "CTR-1" and f[1] == TENANT.customer_id for f in flag["findings"])


def test_a_price_list_price_below_cost_is_flagged_and_one_above_is_not(tmp_path):
    lic = licence()  # 37.80 a seat a month from Microsoft
    rows = charges(lic, pcl.Event("add", date(2026, 11, 10), 12))
    below = lic.unit_price - D(5)
    flag, listed = flagged(tmp_path, rows, "below_cost", prices=[below])
    # the refund of the seat change gives the customer back less than Microsoft gives back: the same price
    assert flag["count"] == len(rows) == 4
    for r, row in zip(listed, rows, strict=True):
        a, b = day(row["ChargeStartDate"]), day(row["ChargeEndDate"])
        s = date(a.year, a.month, 1)  # the charge cycles start on the 1st
        e = (s + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        sign = -1 if D(row["Subtotal"]) < 0 else 1
        exact = sign * D(row["BillableQuantity"]) * below * ((b - a).days + 1) / ((e - s).days + 1)
        assert D(r["Customer Exact"]) == exact and D(r["Microsoft Cost"]) == D(row["Subtotal"])
        assert D(r["Customer Amount"]) == cents(exact)
    not_flagged(tmp_path, rows, "below_cost", prices=[lic.unit_price + D(1)])


def test_a_positive_markup_is_not_below_cost_even_on_a_refund(tmp_path):
    # the refund gives the customer back more than Microsoft does: the refund of a price above cost
    rows = charges(licence(), pcl.Event("add", date(2026, 10, 5), 14), pcl.Event("remove", date(2026, 10, 8), 12))
    assert any(D(r["Subtotal"]) < 0 for r in rows)
    not_flagged(tmp_path, rows, "below_cost", markup=D("0.15"))


# ---------------------------------------------------------------- 2. late reductions


def test_a_cancel_more_than_7_days_after_the_purchase_is_flagged(tmp_path):
    cancel = START + timedelta(days=9)
    rows = charges(licence(), pcl.Event("cancel", cancel))
    flag, listed = flagged(tmp_path, rows, "late_reduction")
    assert flag["tone"] == "warn" and flag["count"] == 1
    refund = next(r for r in rows if r["ChargeType"] == "cancel")
    (r,) = listed
    assert (r["Charge Type"], r["Charge Start"], r["Undoes"], r["Undoes Start"]) == \
        ("cancel", cancel.isoformat(), "new", START.isoformat())
    assert int(r["Days After"]) == (cancel - START).days
    assert D(r["Seats Taken Back"]) == D(refund["BillableQuantity"]) and D(r["Subtotal"]) == D(refund["Subtotal"])
    assert f"{(cancel - START).days} days after the new of {START.isoformat()}" in flag["findings"][0][2]


def test_a_reduction_undoes_the_seats_bought_last(tmp_path):
    added, removed = START + timedelta(days=3), START + timedelta(days=15)
    # 10 seats bought, 2 added on day 3, 5 taken back on day 15: the 2 added and 3 of the purchase's
    rows = charges(licence(), pcl.Event("add", added, 12), pcl.Event("remove", removed, 7))
    _, listed = flagged(tmp_path, rows, "late_reduction")
    (r,) = listed
    assert (r["Charge Type"], D(r["Seats Taken Back"]), r["Undoes"], int(r["Days After"])) == \
        ("removeQuantity", D(5), "new", (removed - START).days)
    refund = next(x for x in rows if x["ChargeType"] == "removeQuantity" and D(x["Subtotal"]) < 0)
    assert D(r["Subtotal"]) == D(refund["Subtotal"])
    # a cancel 2 days after an addition takes back the purchase's seats too: late, counted from the purchase
    added, cancelled = START + timedelta(days=20), START + timedelta(days=22)
    rows = charges(licence(), pcl.Event("add", added, 12), pcl.Event("cancel", cancelled))
    _, listed = flagged(tmp_path, rows, "late_reduction", folder_name="cancel")
    (r,) = listed
    assert (r["Charge Type"], D(r["Seats Taken Back"]), r["Undoes"], int(r["Days After"])) == \
        ("cancel", D(12), "new", (cancelled - START).days)


def test_reductions_within_7_days_are_not_flagged(tmp_path):
    added = START + timedelta(days=20)
    rows = [*charges(licence(), pcl.Event("add", added, 12), pcl.Event("remove", added + timedelta(days=7), 10)),
            *charges(licence(), pcl.Event("cancel", START + timedelta(days=7)))]  # exactly 7 days: allowed
    not_flagged(tmp_path, rows, "late_reduction")


# ---------------------------------------------------------------- 3. price changed inside a term


def test_a_unit_price_change_inside_the_term_is_flagged(tmp_path):
    lic = licence()
    new_price = lic.unit_price + D("1.89")
    rows = charges(lic, pcl.Event("price", date(2026, 10, 20), amount=new_price))
    flag, listed = flagged(tmp_path, rows, "price_in_term")
    changed = [r for r in rows if D(r["UnitPrice"]) != lic.unit_price]
    assert flag["count"] == 1 and len(listed) == len(changed) == 1
    (r,) = listed
    assert (D(r["Term Price"]), r["Set By"], D(r["Unit Price"]), r["Charge Type"], r["Charge Start"]) == \
        (lic.unit_price, "new", new_price, "cycleCharge", "2026-11-01")


def test_a_new_price_at_renewal_is_not_flagged(tmp_path):
    lic = licence(term_months=1, price=D("43.20"))  # a monthly term: it renews every month
    rows = charges(lic, pcl.Event("renew_price", date(2026, 10, 20), amount=D("45.36")))
    assert {(r["ChargeType"], D(r["UnitPrice"])) for r in rows} == {("new", D("43.20")), ("renew", D("45.36"))}
    not_flagged(tmp_path, rows, "price_in_term")


# ---------------------------------------------------------------- 4. seats that do not add up


def test_a_cycle_charge_for_seats_no_change_explains_is_flagged(tmp_path):
    added = START + timedelta(days=4)
    rows = charges(licence(), pcl.Event("add", added, 12), pcl.Event("drift", START + timedelta(days=10), seats=13))
    flag, listed = flagged(tmp_path, rows, "seats")
    (r,) = listed
    assert (r["Charge Type"], D(r["Previous Seats"]), D(r["Expected Seats"]), D(r["Found Seats"])) == \
        ("cycleCharge", D(10), D(12), D(13))
    assert r["Changes"] == f"addQuantity +2 on {added.isoformat()}"
    assert flag["count"] == 1


def test_a_refund_of_other_seats_than_those_held_is_flagged(tmp_path):
    rows = charges(licence(), pcl.Event("add", date(2026, 11, 10), 12))
    refund = next(r for r in rows if r["ChargeType"] == "addQuantity" and D(r["Subtotal"]) < 0)
    per_seat = D(refund["Subtotal"]) / D(refund["BillableQuantity"])
    refund.update(BillableQuantity="9", Quantity="9", Subtotal=str(per_seat * 9))  # 10 seats held
    _, listed = flagged(tmp_path, rows, "seats")
    (r,) = listed
    assert (r["Charge Type"], D(r["Expected Seats"]), D(r["Found Seats"])) == ("addQuantity", D(10), D(9))


def test_seat_changes_as_microsoft_writes_them_add_up(tmp_path):
    rows = [*charges(licence(), pcl.Event("add", date(2026, 10, 5), 14), pcl.Event("remove", date(2026, 10, 9), 11),
                     pcl.Event("add", date(2026, 11, 1), 15)),
            *charges(licence(term_months=1, price=D("43.20")), pcl.Event("convert", date(2026, 10, 12)))]
    not_flagged(tmp_path, rows, "seats")


# ---------------------------------------------------------------- 5. Azure plan rows


def azure_rows(base: dict[str, str], amounts: list[str]) -> list[dict[str, str]]:
    return [{**base, "ProductId": AZURE_PLAN_PRODUCT, "SkuName": "Azure plan", "ProductName": "Azure plan",
             "SubscriptionId": str(uuid.uuid4()), "ChargeType": "new", "Subtotal": amount, "Total": amount,
             "UnitPrice": amount, "EffectiveUnitPrice": amount, "BillableQuantity": "1", "Quantity": "1",
             "MeterDescription": "Virtual Machines - D2 v3"} for amount in amounts]


def test_azure_plan_rows_are_reported_as_skipped(tmp_path):
    rows = charges(licence())
    amounts = ["123.45", "0.57"]
    flag, listed = flagged(tmp_path, [*rows, *azure_rows(rows[0], amounts)], "azure_plan")
    assert flag["tone"] == "info" and flag["count"] == 1
    (r,) = listed
    assert (r["Tenant"], r["Contract ID"], int(r["Rows"]), D(r["Cost"]), r["Currency"]) == \
        (TENANT.customer_id, "CTR-1", len(amounts), sum(map(D, amounts)), "USD")
    assert "2 Azure plan row(s) costing $124.02" in flag["findings"][0][2]
    not_flagged(tmp_path, rows, "azure_plan")


# ---------------------------------------------------------------- 6. Microsoft against billed at cost


def by_month(rows: list[dict[str, str]]) -> dict[tuple[str, str], D]:
    totals: dict[tuple[str, str], D] = {}
    for r in rows:
        key = (r["CustomerId"], day(r["ChargeStartDate"]).isoformat()[:7])
        totals[key] = totals.get(key, D(0)) + D(r["Subtotal"])
    return totals


def test_what_microsoft_charged_and_the_batch_did_not_bill_is_flagged(tmp_path):
    # October's charges are on or before Billed Through; December's wait for January's invoice; the stranger's
    # tenant is on no contract
    rows = [*charges(licence(start=date(2026, 9, 1)), until=date(2026, 12, 1)),
            *charges(licence(tenant=STRANGER, seats=3))]
    flag, listed = flagged(tmp_path, rows, "not_billed", billed_through=date(2026, 10, 31))
    microsoft = by_month(rows)
    assert {(r["Tenant"], r["Month"]) for r in listed} == set(microsoft)
    billed_months = {(TENANT.customer_id, "2026-11")}
    waiting_months = {(TENANT.customer_id, "2026-12")}
    for r in listed:
        key = (r["Tenant"], r["Month"])
        assert D(r["Microsoft"]) == microsoft[key]
        assert D(r["Billed At Cost"]) == (microsoft[key] if key in billed_months else 0)
        assert D(r["Waiting"]) == (microsoft[key] if key in waiting_months else 0)
        assert D(r["Not Billed"]) == D(r["Microsoft"]) - D(r["Billed At Cost"]) - D(r["Waiting"])
    why = {(r["Tenant"], r["Month"]): r["Why Not Billed"] for r in listed if D(r["Not Billed"])}
    assert why == {(TENANT.customer_id, "2026-09"): "on or before contract CTR-1's Billed Through 2026-10-31",
                   (TENANT.customer_id, "2026-10"): "on or before contract CTR-1's Billed Through 2026-10-31",
                   (STRANGER.customer_id, "2026-10"): "on no contract",
                   (STRANGER.customer_id, "2026-11"): "on no contract"}
    assert flag["count"] == len(why)


def test_everything_billed_or_waiting_is_not_flagged_and_an_old_csv_goes(tmp_path):
    rows = charges(licence(), until=date(2026, 12, 1))
    code, out = bill(tmp_path, [*rows, *charges(licence(tenant=STRANGER))])
    assert code == 1 and "not_billed" in page_flags(out)  # the stranger's tenant: on no contract
    stale = out / "reconciliation" / "licences-not_billed.csv"
    assert stale.exists()
    code, out = bill(tmp_path, rows)  # the same folder, the stranger's rows gone
    assert code == 0 and not stale.exists()
    assert "not_billed" not in page_flags(out)


# ---------------------------------------------------------------- the terminal


def test_the_terminal_counts_the_flags_on_one_line(tmp_path, capsys):
    rows = charges(licence(), pcl.Event("cancel", START + timedelta(days=12)))
    bill(tmp_path, [*rows, *azure_rows(rows[0], ["10"])], markup=D("-0.05"))
    line = next(t for t in capsys.readouterr().out.splitlines() if t.startswith("Licences to look at"))
    assert re.search(r"\d charges? below cost, 1 late reduction, 1 tenant with Azure plan rows skipped", line)
