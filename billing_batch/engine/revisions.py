"""Partner Center rows revised after billing: the usage rows on live invoices whose quantity or unit price
differ in the usage as read now. Pure: compares the current usage with the usage rows the invoices carry.

Only Partner Center rows are compared: their usage IDs start with the model's PARTNER_CENTER_ID.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from billing_batch.model import PARTNER_CENTER_ID, Invoice, Source, Usage



@dataclass(frozen=True)
class Revision:
    """A billed Partner Center row that came back with another quantity or price."""

    contract_id: str
    usage_id: str
    invoice: str
    billed_quantity: Decimal
    billed_unit_price: Decimal
    quantity: Decimal
    unit_price: Decimal
    source: Source

    @property
    def difference(self) -> Decimal:
        """What billing the row as it is now would add (or take off, when negative), unrounded."""
        return self.quantity * self.unit_price - self.billed_quantity * self.billed_unit_price


def revised(usage: dict[str, tuple[Usage, ...]], invoices: Iterable[Invoice]) -> list[Revision]:
    """The Partner Center rows billed on a live invoice whose quantity or unit price differ now."""
    billed = {}
    for invoice in invoices:
        for line in invoice.draft.lines:
            for row in line.usage_rows:
                if row.usage_id.startswith(PARTNER_CENTER_ID):
                    billed[(invoice.draft.contract_id, row.usage_id)] = (invoice.number, row)
    if not billed:
        return []
    found = []
    for contract_id, rows in usage.items():
        for u in rows:
            hit = billed.get((contract_id, u.usage_id))
            if hit and (hit[1].quantity != u.quantity or hit[1].unit_price != u.unit_price):
                found.append(Revision(contract_id, u.usage_id, hit[0], hit[1].quantity, hit[1].unit_price,
                                      u.quantity, u.unit_price, u.source))
    return found
