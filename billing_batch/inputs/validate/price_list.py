"""The Price List sheet: the customers' prices of Microsoft licences, per seat per month, by SKU (engine/licences.py).
A row naming a contract is that contract's own price; the others price the SKU for every contract in their
currency. The same SKU twice for one contract (or for all) in one currency is a problem: which price is meant
is not known: the contracts billing that SKU are set aside."""
from __future__ import annotations

from collections import defaultdict

from billing_batch.errors import Problem, problem
from billing_batch.inputs.validate.cells import EN, CURRENCY_HINTS, RowReader
from billing_batch.inputs.validate.rows import known_contract
from billing_batch.model import Contract, Price
from billing_batch.money import KNOWN_CURRENCIES


def read_price_list(rows, contracts: dict[str, Contract | None], default_currency: str, problems: list[Problem],
                    numbers=EN) -> tuple[tuple[Price, ...], dict[tuple[str, str, str], Problem]]:
    """The prices, and the problem of each (SKU, currency, contract ID or "") priced twice."""
    prices: dict[tuple[str, str, str], list[Price]] = defaultdict(list)
    for row in rows:
        r = RowReader(row, problems, numbers=numbers)
        sku = r.text("Sku ID", required=True)
        contract_id = ""
        if r.text("Contract ID"):
            contract = known_contract(r, contracts)
            contract_id = contract.contract_id if contract else ""
        typed = r.text("Currency")
        currency = typed.upper() or default_currency
        if typed and currency not in KNOWN_CURRENCIES:
            hint = CURRENCY_HINTS.get(currency.replace(" ", ""))
            r.fail("BB107", "Currency", f"The Currency {typed} is not a currency code"
                   + (f"; did you mean {hint}?" if hint else "."))
        price = Price(sku, r.amount("Unit Price"), currency, row.source, contract_id)
        if r.ok:
            prices[(sku.casefold(), currency, contract_id)].append(price)
    kept, ambiguous = [], {}
    for key, same in prices.items():
        if len(same) == 1:
            kept += same
            continue
        _, currency, contract_id = key
        whose = f"contract {contract_id}" if contract_id else "every contract"
        for price in same:
            ambiguous[key] = problem(
                "BB174", price.source, f"The Sku ID {price.sku_id} has {len(same)} prices in {currency} for {whose} "
                f"(rows {', '.join(str(p.source.row) for p in same)}): the contracts billing it are set aside.",
                value=price.sku_id)
            problems.append(ambiguous[key])
    return tuple(kept), ambiguous
