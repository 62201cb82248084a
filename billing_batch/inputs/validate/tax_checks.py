"""Tax across sheets: a Tax Category typed by code or name, a customer billed a product whose
category needs the customer's VAT ID, and a line that would be S at 0%. Only known once customers,
contracts and products are all read."""
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


def zero_standard_problems(contracts, customers, subscriptions, usage, products, seller_vat_id: str,
                           customer_rows: dict) -> list[Problem]:
    """A line that would be S at 0%, once per contract, at the Tax Rate cell it comes from (the product's own
    rate, else the customer's), setting the contract aside: EN 16931 has S above 0% only (BR-S-05), and a
    line without VAT names its reason by its category. A seller without a VAT ID charges no VAT at all:
    its 0% lines are billed as before."""
    if not seller_vat_id:
        return []
    found = []
    for cid, names in sorted(products_billed(contracts, subscriptions, usage).items()):
        customer = customers.get(contracts[cid].customer_id)
        if customer is None:
            continue
        zero = [(name, t) for name in sorted(names)
                if (t := tax.line_tax(name, customer, products)).category == tax.STANDARD and not t.rate]
        if not zero:
            continue
        name, t = zero[0]
        row = customer_rows.get(customer.customer_id)
        if t.rate_on == "product":
            cell, whose = products[name].source.at("Tax Rate", None), "product's"
        else:
            cell, whose = (row["Tax Rate"].source if row else customer.source.at("Tax Rate", None)), "customer's"
        shown = ", ".join(n for n, _ in zero)
        found.append(problem(
            "BB129", cell, f"Contract {cid} would bill {shown} to customer {customer.customer_id} at the "
            f"standard rate (S) of 0%, which a VAT invoice cannot carry (EN 16931): a line that charges no VAT "
            "says why by its tax category.", value=row.value("Tax Rate") if row and whose == "customer's" else None,
            contract_id=cid, whose=whose, categories=tax.other_categories()))
    return found


def tax_category(r: RowReader) -> str:
    """The Tax Category typed as its code or name; "" when blank or unknown (reported)."""
    typed = r.text("Tax Category")
    if not typed:
        return ""
    code = tax.parse_category(typed)
    if code is None:
        r.fail("BB106", "Tax Category", f"The Tax Category {typed} is not one we know.", choices=tax.category_choices())
    return code or ""
