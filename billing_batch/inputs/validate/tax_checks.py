"""Tax across sheets: a Tax Category typed by code or name, and a customer billed a product whose
category needs the customer's VAT ID. Only known once customers, contracts and products are all read."""
from __future__ import annotations

from billing_batch.engine import tax
from billing_batch.errors import Problem, problem
from billing_batch.inputs.validate.cells import RowReader


def products_billed(contracts, subscriptions, usage) -> dict[str, set[str]]:
    """Contract ID -> the products its subscriptions and usage bill."""
    return {cid: {s.product for s in subscriptions.get(cid, ())} | {u.product for u in usage.get(cid, ())}
            for cid in contracts}


def tax_problems(contracts, customers, subscriptions, usage, products, vat_cells) -> list[Problem]:
    """A customer without a VAT ID billed a product whose category needs one (AE, K): once per customer."""
    found = {}
    for cid, names in products_billed(contracts, subscriptions, usage).items():
        customer = customers.get(contracts[cid].customer_id)
        if customer is None or customer.customer_id in found:
            continue
        if needing := tax.needing_customer_vat_id(customer, sorted(names), products):
            name, category = needing
            found[customer.customer_id] = problem(
                "BB122", vat_cells[customer.customer_id], f"Product {name}, billed to customer {customer.customer_id} "
                f"on contract {cid}, has the tax category {tax.label(category)}, which needs the customer's VAT ID; "
                f"customer {customer.customer_id} has none.", customer_id=customer.customer_id)
    return list(found.values())


def tax_category(r: RowReader) -> str:
    """The Tax Category typed as its code or name; "" when blank or unknown (reported)."""
    typed = r.text("Tax Category")
    if not typed:
        return ""
    code = tax.parse_category(typed)
    if code is None:
        r.fail("BB106", "Tax Category", f"The Tax Category {typed} is not one we know.", choices=tax.category_choices())
    return code or ""
