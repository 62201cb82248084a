"""The Subscriptions sheet: the recurring and one-time charges of each contract, inside its period."""
from __future__ import annotations

from collections import defaultdict

from billing_batch.inputs.validate.cells import EN, RowReader
from billing_batch.inputs.validate.rows import inside, known_contract, unique
from billing_batch.model import ChargeType, Subscription


def read_subscriptions(rows, contracts, problems, numbers=EN) -> dict[str, tuple[Subscription, ...]]:
    by_contract = defaultdict(list)
    for row, sub_id in unique(rows, "Subscription ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        contract_id = RowReader(row, []).text("Contract ID")
        r = RowReader(row, problems, contract_id=contract_id or None, numbers=numbers)
        r.text("Subscription ID", required=True)
        contract = known_contract(r, contracts)
        start = r.date("Start Date")
        end = r.date("End Date")
        if contract and start:
            inside(r, "Start Date", start, contract)
        if start and end and end < start:
            r.fail("BB112", "End Date", f"The subscription ends on {end} but starts on {start}.")
        sub = Subscription(
            subscription_id=sub_id,
            contract_id=contract_id,
            product=r.text("Product", required=True),
            description=r.text("Description"),
            quantity=r.amount("Quantity"),
            unit_price=r.amount("Unit Price"),
            start=start or (contract.start if contract else None),
            end=end,
            charge_type=r.choice("Charge Type", ChargeType, ChargeType.RECURRING),
            source=row.source,
            partner_center_subscription_id=r.text("Partner Center Subscription ID"),
        )
        r.line(sub.quantity, sub.unit_price)
        if r.ok:
            by_contract[contract_id].append(sub)
    return {cid: tuple(subs) for cid, subs in by_contract.items()}
