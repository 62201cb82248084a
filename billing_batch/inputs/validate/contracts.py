"""The Contracts sheet: a start date and a frequency are enough to draw the schedule, so a contract
with other faults is kept (and set aside); one without them is broken, known by its ID only."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date
from decimal import Decimal

from billing_batch.engine.cycles import ONE_DAY, cycle_containing
from billing_batch.errors import problem
from billing_batch.inputs.validate.cells import CURRENCY_HINTS, EN, RowReader, Status
from billing_batch.inputs.validate.rows import did_you_mean, inside, merged_away, unique
from billing_batch.inputs.validate.usage import group_by
from billing_batch.model import Contract, Frequency, Policy, Settings, UsageLines
from billing_batch.money import KNOWN_CURRENCIES


def read_contracts(rows, settings, customer_ids, problems, numbers=EN, usage_columns: dict[str, str] | None = None,
                   rows_out: dict | None = None) -> tuple[dict[str, Contract], dict[str, str]]:
    """The contracts that could be read, and the IDs (with customer) of those that could not.
    customer_ids: every ID on the Customers sheet, including customers whose row has problems.
    rows_out, if given, gets each contract's row."""
    contracts, broken = {}, {}
    tenants = defaultdict(list)  # tenant -> the active contracts' rows naming it
    for row, contract_id in unique(rows, "Contract ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        r = RowReader(row, problems, contract_id=contract_id or None, numbers=numbers)
        r.text("Contract ID", required=True)
        customer_id = "" if merged_away(r, "Customer ID", owner_shown=False) else r.text("Customer ID", required=True)
        # A customer whose own row has problems exists: its problems set this contract aside already.
        if customer_id and customer_id not in customer_ids:
            r.fail("BB101", "Customer ID", f"No customer has the ID {customer_id}"
                   + did_you_mean(customer_id, customer_ids))
        start = r.date("Start Date", required=True)
        end = r.date("End Date")
        if start and end and end < start:
            r.fail("BB112", "End Date", f"The contract ends on {end} but starts on {start}.")
        typed = r.text("Currency")
        currency = typed.upper() or settings.default_currency
        if typed and currency not in KNOWN_CURRENCIES:  # a bad default is the Settings sheet's problem
            hint = CURRENCY_HINTS.get(currency.replace(" ", ""))
            r.fail("BB107", "Currency", f"The Currency {typed} is not a currency code"
                   + (f"; did you mean {hint}?" if hint else "."))
        contract = Contract(
            contract_id=contract_id,
            customer_id=customer_id,
            start=start,
            end=end,
            frequency=r.choice("Billing Frequency", Frequency),
            policy=r.choice("Billing Policy", Policy, Policy.ARREARS),
            offset_days=r.whole("Billing Offset (Days)", 1),
            currency=currency,
            payment_terms_days=r.whole("Payment Terms (Days)", 30),
            discount=r.fraction("Discount"),
            active=r.choice("Status", Status, Status.ACTIVE) is Status.ACTIVE,
            source=row.source,
            cc=r.text("CC"),
            billed_through=r.date("Billed Through"),
            usage_lines=r.choice("Usage Lines", UsageLines, settings.usage_lines),
            usage_group_by=contract_group_by(r, settings, usage_columns or {}),
            purchase_order=r.text("Purchase Order"),
            partner_center_customer_id=r.text("Partner Center Customer ID"),
            usage_markup=r.fraction("Usage Markup"),
            # below zero allowed: a price below cost is billed and flagged on the review page
            licence_markup=r.fraction("Licence Markup", Decimal(-1)) if r.text("Licence Markup")
            else settings.licence_markup,
        )
        if contract.billed_through and start and contract.frequency:
            contract = replace(contract, billed_through=billed_through(r, contract))
        if not contract_id:
            continue
        if rows_out is not None:
            rows_out.setdefault(contract_id, row)
        if contract.partner_center_customer_id and contract.active:
            tenants[contract.partner_center_customer_id.lower()].append((row, contract_id))
        # a start date and frequency are enough to draw the schedule, even with other faults
        if start and contract.frequency and contract_id not in contracts and contract_id not in broken:
            contracts[contract_id] = contract
        else:
            broken[contract_id] = customer_id
    for tenant, rows_of in tenants.items():
        if len(rows_of) > 1:
            ids = ", ".join(cid for _, cid in rows_of)
            for row, cid in rows_of:
                problems.append(problem(
                    "BB151", row["Partner Center Customer ID"].source, f"The tenant {tenant} is the Partner Center "
                    f"Customer ID of more than one active contract ({ids}).",
                    value=row.value("Partner Center Customer ID"), contract_id=cid))
    return contracts, broken


def billed_through(r: RowReader, contract: Contract) -> date | None:
    """The Billed Through if it ends a cycle inside the contract period; else None, reported.
    A day inside a cycle is refused: billing that cycle whole, or not at all, would be a guess."""
    day = contract.billed_through
    cycle = cycle_containing(contract, day)
    if cycle is None:
        inside(r, "Billed Through", day, contract)
        return None
    if cycle.end != day:
        before = cycle.start - ONE_DAY
        ends = f"{before} or {cycle.end}" if before >= contract.start else str(cycle.end)
        r.fail("BB120", "Billed Through", f"The Billed Through {day} falls inside the cycle {cycle.start} to "
                                          f"{cycle.end} of contract {contract.contract_id}.", ends=ends)
        return None
    return day


def contract_group_by(r: RowReader, settings: Settings, columns: dict[str, str]) -> tuple[str, ...]:
    typed = r.text("Usage Group By")
    names, unknown = group_by(typed, columns)
    if unknown:
        r.fail("BB126", "Usage Group By", f"The Usage Group By names {', '.join(unknown)}, which is not a column "
               "of the Usage sheet.", columns=", ".join(columns.values()))
    return names or settings.usage_group_by
