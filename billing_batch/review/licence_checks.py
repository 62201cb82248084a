"""The licence reconciliation flags of the review page: Microsoft's licence charges (Partner Center's licence
file) checked against Microsoft's own rules and against what the batch billed. Pure: reads what validate made
of the file (`Checked.licences`) and the usage IDs on live invoices, and returns the flags, each with the rows
of its CSV (documents/licence_reconciliation.py writes them, page.py shows them; docs/review.md).

Every check keys a subscription on its SubscriptionId, never on the product, and walks its charges in time
order: by charge start, then as the file has them, a seat change's refund before its new seats.

Over 400 lines: six checks beside the kinds that name and explain them, so that one file says what each flag
means and how it is found.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from billing_batch.engine.licences import licence_line
from billing_batch.inputs.licences import Skipped
from billing_batch.inputs.partner_center import tenant_contracts
from billing_batch.inputs.validate import Checked
from billing_batch.model import Contract, LicenceCharge, Usage
from billing_batch.review import format as fmt

MAX_DAYS = 7  # Microsoft allows a reduction or a cancel within 7 days of the purchase, renewal or addition
STARTS = ("new", "renew", "convert")  # the charge types whose positive row starts a term (and sets its price)
CYCLES = ("new", "renew", "cyclecharge")  # a row of a whole cycle: the seats as they stand
CHANGES = ("addquantity", "removequantity", "convert")  # a refund of the seats, then a row of the new seats
CANCELS = ("cancel", "cancelimmediate")
CREDIT = "customercredit"  # an amount, not seats: in none of the checks but the reconciliation


@dataclass(frozen=True)
class LicenceKind:
    name: str  # short and stable: the CSV's name (licences-<name>.csv), a CSS class
    label: str  # the badge
    tone: str  # as review/flags.py: "alert" (money may be wrong), "warn" (look closer), "info" (know about it)
    explains: str  # one line for the page
    one: str  # what one finding is, for the terminal's count: "charge below cost"
    many: str
    columns: tuple[str, ...]  # the CSV's header
    numbers: frozenset[str] = frozenset()  # the CSV's columns written as numbers (files.csv_bytes)


_CHARGE = ("Contract ID", "Tenant", "Subscription ID", "SKU", "Charge Type", "Charge Start", "Charge End")
_SOURCE = ("Usage ID", "Source")
LICENCE_KINDS: tuple[LicenceKind, ...] = (
    LicenceKind(
        "below_cost", "Below cost", "alert",
        "A licence charge billed to the customer below Microsoft's cost for it: a Price List price below cost, "
        "or a negative Licence Markup. A refund is below cost when it gives the customer back less than "
        "Microsoft gives back, the mirror of a price below cost.",
        "charge below cost", "charges below cost",
        (*_CHARGE, "Seats", "Currency", "Microsoft Cost", "Customer Exact", "Customer Amount", "Difference",
         "Priced By", *_SOURCE),
        frozenset({"Seats", "Microsoft Cost", "Customer Exact", "Customer Amount", "Difference"})),
    LicenceKind(
        "late_reduction", "Late reduction", "warn",
        f"A seat reduction or a cancellation more than {MAX_DAYS} days after the purchase, renewal or seat "
        f"addition it undoes: Microsoft allows them within {MAX_DAYS} days only.",
        "late reduction", "late reductions",
        (*_CHARGE, "Seats Taken Back", "Currency", "Subtotal", "Undoes", "Undoes Start", "Days After", *_SOURCE),
        frozenset({"Seats Taken Back", "Subtotal", "Days After"})),
    LicenceKind(
        "price_in_term", "Price changed in term", "warn",
        "A UnitPrice other than the one the term started with, inside the term: Microsoft fixes a price for "
        "the term and changes it at renewal only.",
        "price change inside a term", "price changes inside a term",
        (*_CHARGE, "Term Start", "Term End", "Term Price", "Set By", "Unit Price", *_SOURCE),
        frozenset({"Term Price", "Unit Price"})),
    LicenceKind(
        "seats", "Seats do not add up", "warn",
        "A charge whose seats are not the previous seats plus the changes since: a cycle or a renewal billing "
        "another count, or a refund taking back other seats than those held.",
        "seat count that does not add up", "seat counts that do not add up",
        (*_CHARGE, "Previous Seats", "Changes", "Expected Seats", "Found Seats", *_SOURCE),
        frozenset({"Previous Seats", "Expected Seats", "Found Seats"})),
    LicenceKind(
        "azure_plan", "Azure plan skipped", "info",
        "Azure plan rows of the licence file, not billed from it: the daily rated usage file bills Azure.",
        "tenant with Azure plan rows skipped", "tenants with Azure plan rows skipped",
        ("Tenant", "Contract ID", "Customer Name", "Rows", "Cost", "Currency", "Source"),
        frozenset({"Rows", "Cost"})),
    LicenceKind(
        "not_billed", "Microsoft not all billed", "warn",
        "Per tenant and month, Microsoft's Subtotal total against the cost of the charges billed or waiting "
        "for their invoice: the rest is not billed (a tenant on no contract, a contract set aside, days on or "
        "before Billed Through, rows with a problem). The CSV lists every tenant and month.",
        "tenant month not all billed", "tenant months not all billed",
        ("Tenant", "Contract ID", "Month", "Currency", "Microsoft", "Billed At Cost", "Waiting", "Not Billed",
         "Why Not Billed"),
        frozenset({"Microsoft", "Billed At Cost", "Waiting", "Not Billed"})),
)
KINDS = {k.name: k for k in LICENCE_KINDS}
KIND_NAMES = tuple(KINDS)


@dataclass(frozen=True)
class Finding:
    """One thing flagged, as the page lists it."""

    contract_id: str
    tenant: str
    subscription_id: str
    note: str  # one line, amounts in the review's locale


@dataclass(frozen=True)
class LicenceFlag:
    """A kind of flag raised by this run's data: what it found, and the rows of its CSV."""

    kind: LicenceKind
    findings: tuple[Finding, ...]
    rows: tuple[tuple[object, ...], ...]  # kind.columns; for not_billed every tenant month, flagged or not

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def columns(self) -> tuple[str, ...]:
        return self.kind.columns

    @property
    def numbers(self) -> frozenset[str]:
        return self.kind.numbers


def licence_checks(checked: Checked, billed_usage: Collection[tuple[str, str]],
                   locale: str = "en_US") -> list[LicenceFlag]:
    """The flags raised, in LICENCE_KINDS order (none raised: []). billed_usage: (contract, usage ID) of the
    usage rows on live invoices after this run (workspace.State.billed_usage)."""
    licences = checked.licences
    contracts = checked.inputs.contracts
    subscriptions: dict[tuple[str, str], list[Usage]] = defaultdict(list)
    for contract_id, rows in licences.charges.items():
        for row in rows:
            if row.licence is not None:
                subscriptions[(contract_id, row.licence.subscription_id.casefold())].append(row)
    ordered = {key: in_time_order(rows) for key, rows in sorted(subscriptions.items())}
    found = [
        _flag("below_cost", *_below_cost(ordered, contracts, locale)),
        _flag("late_reduction", *_late_reductions(ordered, locale)),
        _flag("price_in_term", *_prices_in_term(ordered, locale)),
        _flag("seats", *_seats(ordered, locale)),
        _flag("azure_plan", *_azure(licences.azure, tenant_contracts(contracts), locale)),
        _flag("not_billed", *_not_billed(checked, billed_usage, locale)),
    ]
    return [f for f in found if f is not None]


def flag_counts(flags: Iterable[LicenceFlag]) -> dict[str, int]:
    """name -> findings: run.json keeps it, and a rerun whose counts changed writes a new review page."""
    return {f.name: len(f.findings) for f in flags}


def _flag(name: str, findings: list[Finding], rows: list[tuple]) -> LicenceFlag | None:
    return LicenceFlag(KINDS[name], tuple(findings), tuple(rows)) if findings else None


def in_time_order(rows: Iterable[Usage]) -> list[Usage]:
    """A subscription's charges by charge start; on one day the whole-cycle rows first (Microsoft charges the
    cycle, then the changes made that day), then each change (an order) as the file has it, its refund first."""
    rows = list(rows)
    position = {id(r): (r.source.file, r.source.row or 0, r.usage_id) for r in rows}
    first_of_order: dict[tuple, tuple] = {}
    for r in sorted(rows, key=lambda r: position[id(r)]):
        first_of_order.setdefault(_order(r), position[id(r)])

    def key(r: Usage):
        c = r.licence
        whole_cycle = c.charge_type.casefold() in CYCLES and not c.refund
        return (c.start, not whole_cycle, first_of_order[_order(r)], not c.refund, position[id(r)])

    return sorted(rows, key=key)


def _order(row: Usage) -> tuple:
    c = row.licence
    return c.start, c.order_id.casefold(), c.charge_type.casefold()


def _charge_cells(contract_id: str, c: LicenceCharge) -> tuple:
    return contract_id, c.tenant, c.subscription_id, c.sku_name, c.charge_type, c.start.isoformat(), c.end.isoformat()


def _what(c: LicenceCharge) -> str:
    return f"{c.sku_name} ({c.subscription_id}), {c.charge_type} {fmt.period(c.start, c.end)}"


def _seats_text(locale: str, seats: Decimal) -> str:
    return f"{fmt.number(locale, seats.normalize())} seat{'' if seats == 1 else 's'}"


# ---------------------------------------------------------------- 1. below cost


def customer_exact(row: Usage, contract: Contract) -> Decimal:
    """What the customer is billed for the charge, unrounded: engine/licences.licence_line's exact amount."""
    c = row.licence
    if c.price_per_month is not None:
        return row.quantity * c.price_per_month * row.months * ((c.end - c.start).days + 1) / row.full_days
    return c.cost * (1 + contract.licence_markup)


def below_cost(exact: Decimal, cost: Decimal) -> bool:
    """The customer's price for the seats and days is below Microsoft's. A charge: billed less than it costs. A
    refund: the customer is given back less than Microsoft gives back, the price behind it below cost. (A refund
    giving back more than Microsoft's is the refund of a price above cost: every refund at a positive markup.)"""
    return exact < cost if cost >= 0 else exact > cost


def _below_cost(ordered: dict[tuple[str, str], list[Usage]], contracts: dict[str, Contract],
                locale: str) -> tuple[list[Finding], list[tuple]]:
    findings, rows = [], []
    for (contract_id, _), charged in ordered.items():
        contract = contracts.get(contract_id)
        if contract is None:
            continue
        for row in charged:
            c = row.licence
            if not below_cost(exact := customer_exact(row, contract), c.cost):
                continue
            money = fmt.money(locale, c.currency)
            amount = licence_line(row, contract).amount
            if c.price_per_month is not None:
                how = f"Price List {c.price_per_month} a seat a month"
                why = f"the Price List's {money(c.price_per_month)} a seat a month"
            else:
                how = f"Licence Markup {contract.licence_markup}"
                why = f"a Licence Markup of {fmt.percent(contract.licence_markup, locale)}"
            if c.refund:
                note = f"refunds {money(-amount)} at {why}, where Microsoft refunds {money(-c.cost)}"
            else:
                note = f"billed {money(amount)} at {why}, against Microsoft's {money(c.cost)}"
            findings.append(Finding(contract_id, c.tenant, c.subscription_id, f"{_what(c)}: {note}."))
            rows.append((*_charge_cells(contract_id, c), c.quantity, c.currency, c.cost, exact, amount,
                         exact - c.cost, how, row.usage_id, str(row.source)))
    return findings, rows


# ---------------------------------------------------------------- 2. late reductions


class _Lots:
    """The seats a subscription holds, by when they were bought: [start, what, seats], oldest first."""

    def __init__(self) -> None:
        self.lots: list[list] = []

    def held(self) -> Decimal:
        return sum((lot[2] for lot in self.lots), Decimal(0))

    def start(self, c: LicenceCharge) -> None:
        """A purchase or a new term: every seat starts here."""
        self.lots = [[c.start, c.charge_type, c.quantity]]

    def add(self, c: LicenceCharge, seats: Decimal) -> None:
        self.lots.append([c.start, c.charge_type, seats])

    def fit(self, c: LicenceCharge) -> None:
        """The seats as a row of them says: seats no change explains date from the term's start."""
        held = self.held()
        if c.quantity > held:
            self.lots.insert(0, [c.term_start, "term's start", c.quantity - held])
        elif c.quantity < held:
            self.take(held - c.quantity)

    def take(self, seats: Decimal) -> list | None:
        """Take the seats bought last first; the oldest lot they came from (None: none held)."""
        oldest = None
        while seats > 0 and self.lots:
            oldest = self.lots[-1]
            taken = min(seats, oldest[2])
            seats -= taken
            if taken == oldest[2]:
                self.lots.pop()
            else:
                oldest = [*oldest[:2], taken]
                self.lots[-1][2] -= taken
        return oldest


def _late_reductions(ordered: dict[tuple[str, str], list[Usage]],
                     locale: str) -> tuple[list[Finding], list[tuple]]:
    """A reduction takes back the seats bought last first: it undoes the latest purchase, renewal or addition,
    and the ones before it when it takes back more seats than that one added. Late: the oldest of those more
    than MAX_DAYS days before it. Seats whose purchase the file does not show date from the term's start."""
    findings, rows = [], []
    for (contract_id, _), charged in ordered.items():
        lots = _Lots()
        reductions: list[tuple[Usage, Decimal, list | None]] = []  # (the refund row, seats taken back, from)
        pending: Usage | None = None  # a seat change's refund, until its row of the new seats
        for row in [*charged, None]:
            c = row.licence if row is not None else None
            if pending is not None and (c is None or c.refund or _order(row) != _order(pending)):
                reductions.append((pending, pending.licence.quantity, lots.take(pending.licence.quantity)))
                pending = None  # a change with no row of new seats: every seat taken back
            kind = c.charge_type.casefold() if c else CREDIT
            if kind == CREDIT:
                continue
            if not c.refund and kind in STARTS:
                lots.start(c)
            elif not c.refund and kind == "cyclecharge":
                lots.fit(c)
            elif kind in ("addquantity", "removequantity"):
                if c.refund:
                    lots.fit(c)
                    pending = row
                    continue
                before = pending.licence.quantity if pending is not None else lots.held()
                if c.quantity > before:
                    lots.add(c, c.quantity - before)
                elif c.quantity < before:
                    reductions.append((pending or row, before - c.quantity, lots.take(before - c.quantity)))
                pending = None
            elif kind in CANCELS and c.refund:
                lots.fit(c)
                reductions.append((row, c.quantity, lots.take(c.quantity)))
        for row, seats, oldest in reductions:
            c = row.licence
            if oldest is None or (days := (c.start - oldest[0]).days) <= MAX_DAYS:
                continue
            since, what = oldest[0], oldest[1]
            findings.append(Finding(contract_id, c.tenant, c.subscription_id, (
                f"{_what(c)}: {_seats_text(locale, seats)} taken back {days} days after the {what} of "
                f"{since.isoformat()}, beyond Microsoft's {MAX_DAYS}.")))
            rows.append((*_charge_cells(contract_id, c), seats, c.currency, c.cost, what, since.isoformat(), days,
                         row.usage_id, str(row.source)))
    return findings, rows


# ---------------------------------------------------------------- 3. price changed inside a term


def _prices_in_term(ordered: dict[tuple[str, str], list[Usage]],
                    locale: str) -> tuple[list[Finding], list[tuple]]:
    findings, rows = [], []
    for (contract_id, _), charged in ordered.items():
        terms: dict[tuple[date, date], list[Usage]] = defaultdict(list)
        for row in charged:
            if row.licence.charge_type.casefold() != CREDIT:  # a credit's UnitPrice is its amount
                terms[(row.licence.term_start, row.licence.term_end)].append(row)
        for (start, end), in_term in terms.items():
            opening = next((r for r in in_term if r.licence.charge_type.casefold() in STARTS
                            and not r.licence.refund), None)
            set_by = opening.licence.charge_type if opening else "first row of the term in the file"
            opening = opening or in_term[0]
            price = opening.licence.unit_price
            changed = [r for r in in_term if r.licence.unit_price != price]
            if not changed:
                continue
            c = changed[0].licence
            money = fmt.money(locale, c.currency)
            others = sorted({r.licence.unit_price for r in changed})
            more = f" (and {len(changed) - 1} more row(s) of the term)" if len(changed) > 1 else ""
            findings.append(Finding(contract_id, c.tenant, c.subscription_id, (
                f"{c.sku_name} ({c.subscription_id}), term {fmt.period(start, end)}: UnitPrice "
                f"{', '.join(money(p) for p in others)} from the {c.charge_type} of {c.start.isoformat()}{more}, "
                f"the term started at {money(price)} ({set_by} of {opening.licence.start.isoformat()}).")))
            rows += [(*_charge_cells(contract_id, r.licence), start.isoformat(), end.isoformat(), price, set_by,
                      r.licence.unit_price, r.usage_id, str(r.source)) for r in changed]
    return findings, rows


# ---------------------------------------------------------------- 4. seats that do not add up


def _seats(ordered: dict[tuple[str, str], list[Usage]], locale: str) -> tuple[list[Finding], list[tuple]]:
    """new sets the seats; a cycle or renewal row bills the seats held; a change or convert refunds the seats
    held, then its positive row sets the new seats; a cancel refunds the seats held, then none are."""
    findings, rows = [], []
    for (contract_id, _), charged in ordered.items():
        held: Decimal | None = None  # unknown until the first row (the file may start after the purchase)
        previous: Decimal | None = None  # the seats of the last whole cycle
        changes: list[str] = []
        for row in charged:
            c = row.licence
            kind = c.charge_type.casefold()
            # a cycle or renewal bills the seats held, a refund takes them back: both are counted against them
            counted = kind in CYCLES and kind != "new" and not c.refund or kind in (*CHANGES, *CANCELS) and c.refund
            if counted and held is not None and c.quantity != held:
                before = previous if previous is not None else held
                listed = "; ".join(changes) or "none"
                findings.append(Finding(contract_id, c.tenant, c.subscription_id, (
                    f"{_what(c)}: {_seats_text(locale, c.quantity)}, but {_seats_text(locale, held)} are held "
                    f"({_seats_text(locale, before)} before, changes: {listed}).")))
                rows.append((*_charge_cells(contract_id, c), before, listed, held, c.quantity, row.usage_id,
                             str(row.source)))
            if kind in CYCLES and not c.refund:
                held = previous = c.quantity
                changes = []
            elif kind in CHANGES:
                if not c.refund and held is not None:
                    changes.append(f"{c.charge_type} {c.quantity - held:+} on {c.start.isoformat()}")
                held = c.quantity  # a refund: what Microsoft took back, the new seats counted from it
            elif kind in CANCELS and c.refund:
                changes.append(f"{c.charge_type} -{c.quantity} on {c.start.isoformat()}")
                held = Decimal(0)
    return findings, rows


# ---------------------------------------------------------------- 5. Azure plan rows skipped


def _azure(skipped: Sequence[Skipped], by_tenant: dict[str, Contract],
           locale: str) -> tuple[list[Finding], list[tuple]]:
    findings, rows = [], []
    for s in skipped:
        contract_id = contract.contract_id if (contract := by_tenant.get(s.tenant.strip().lower())) else ""
        findings.append(Finding(contract_id, s.tenant, "", (
            f"{s.name or s.tenant}: {fmt.number(locale, s.rows)} Azure plan row(s) costing "
            f"{fmt.money(locale, s.currency)(s.cost)}, billed through the usage file.")))
        rows.append((s.tenant, contract_id, s.name, s.rows, s.cost, s.currency, str(s.source)))
    return findings, rows


# ---------------------------------------------------------------- 6. Microsoft against billed at cost


def _not_billed(checked: Checked, billed_usage: Collection[tuple[str, str]],
                locale: str) -> tuple[list[Finding], list[tuple]]:
    """Per tenant, month of ChargeStartDate and currency: Microsoft's Subtotal total; the cost of the charges
    on live invoices; of those waiting for the contract's next invoice; and the rest, with why."""
    licences, inputs = checked.licences, checked.inputs
    billed_usage = billed_usage if isinstance(billed_usage, (set, frozenset)) else set(billed_usage)
    in_usage = {(cid, u.usage_id) for cid, rows in inputs.usage.items() for u in rows}
    by_tenant = tenant_contracts(inputs.contracts)
    months: dict[tuple[str, str, str], dict] = defaultdict(
        lambda: {"billed": Decimal(0), "waiting": Decimal(0), "why": {}, "contract": ""})
    for key in licences.by_month:
        months[key]  # every month Microsoft charged, billed or not
    for contract_id, charged in licences.charges.items():
        contract = inputs.contracts.get(contract_id)
        for row in charged:
            c = row.licence
            month = months[(c.tenant.lower(), c.start.isoformat()[:7], c.currency)]
            month["contract"] = contract_id
            if (contract_id, row.usage_id) in billed_usage:
                month["billed"] += c.cost
            elif why := _why_not(contract_id, contract, row, checked, in_usage):
                month["why"][why] = None
            else:
                month["waiting"] += c.cost
    findings, rows = [], []
    names = {s.tenant.lower(): s.name for s in licences.unmapped}
    for (tenant, month_text, currency), month in sorted(months.items()):
        microsoft = licences.by_month.get((tenant, month_text, currency), Decimal(0))
        rest = microsoft - month["billed"] - month["waiting"]
        contract = by_tenant.get(tenant)
        why = list(month["why"])
        if contract is None:
            why.append("on no contract")
        elif rest and not why:
            why.append("rows with a problem (see the input's problems)")
        contract_id = month["contract"] or (contract.contract_id if contract else "")
        rows.append((tenant, contract_id, month_text, currency, microsoft, month["billed"], month["waiting"],
                     rest, "; ".join(why) if rest else ""))
        if rest:
            money = fmt.money(locale, currency)
            customer = inputs.customers.get(contract.customer_id) if contract else None
            findings.append(Finding(contract_id, tenant, "", (
                f"{customer.name if customer else names.get(tenant) or tenant}, {month_text}: Microsoft charged "
                f"{money(microsoft)}, "
                f"{money(month['billed'])} is billed at cost and {money(month['waiting'])} waits for its invoice; "
                f"{money(rest)} is not billed: {'; '.join(why)}.")))
    return findings, rows


def _why_not(contract_id: str, contract: Contract | None, row: Usage, checked: Checked,
             in_usage: set[tuple[str, str]]) -> str:
    """Why a charge not on a live invoice will not be billed; "" when the contract's next invoice carries it."""
    if contract is None or (contract_id, row.usage_id) not in in_usage:
        return "rows with a problem (see the input's problems)"
    if contract_id in checked.set_aside:
        return f"contract {contract_id} set aside"
    if not contract.active:
        return f"contract {contract_id} not active"
    if contract.billed_through and row.date <= contract.billed_through:
        return f"on or before contract {contract_id}'s Billed Through {contract.billed_through.isoformat()}"
    return ""
