"""The Products sheet: account codes and tax by product name. A product whose tax cannot be known
sets aside only the contracts that bill it; account codes serve the sync post task alone."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from billing_batch.engine import tax
from billing_batch.errors import Problem
from billing_batch.inputs.validate.cells import RowReader
from billing_batch.inputs.validate.rows import unique
from billing_batch.inputs.validate.tax_checks import tax_category
from billing_batch.model import Product


def read_products(rows, problems, seller_vat_id="") -> tuple[dict[str, Product], dict[str, list[Problem]]]:
    """Account codes and tax by product name, and the problems of each product whose tax cannot be
    known: those set aside the contracts that bill the product (check). Account codes serve the sync
    post task only, so a problem with them sets nothing aside."""
    products, repeated, troubled, taxed = {}, set(), defaultdict(list), set()
    start = len(problems)
    for row, name in unique(rows, "Product", problems, owner=lambda r: {}):  # report both rows, use neither
        before = len(problems)
        r = RowReader(row, problems)
        r.text("Product", required=True)
        product = Product(name, r.text("Account Code"), r.text("Tax Type"), row.source,
                          tax_category=tax_category(r), tax_exemption_reason=r.text("Tax Exemption Reason"))
        if r.text("Tax Rate"):
            product = replace(product, tax_rate=r.fraction("Tax Rate"))
        if r.ok and product.tax_rate is not None and (
                product.tax_category not in ("", tax.STANDARD) and product.tax_rate
                or product.tax_category == tax.STANDARD and not product.tax_rate):
            r.fail("BB125", "Tax Rate", f"Product {name} has the tax category {product.tax_category} and a Tax Rate "
                                        f"of {format(product.tax_rate * 100, 'f').rstrip('0').rstrip('.')}%.")
        if lacking := tax.missing(product.tax_category, product.tax_exemption_reason, seller_vat_id):
            code, what = lacking
            r.fail(code, "Tax Category" if code == "BB122" else "Tax Exemption Reason", f"Product {name}: {what}.")
        if name in products:
            repeated.add(name)
        if r.ok:
            products[name] = product
        if any(RowReader(row, []).text(column) for column in ("Tax Category", "Tax Rate", "Tax Exemption Reason")):
            taxed.add(name)
            if not r.ok:
                troubled[name] += problems[before:]
    for p in problems[start:]:  # a repeated product's tax is not known either, when its rows give one
        if p.code == "BB110" and str(p.value).strip() in taxed & repeated:
            troubled[str(p.value).strip()].append(p)
    return {name: p for name, p in products.items() if name not in repeated}, dict(troubled)
