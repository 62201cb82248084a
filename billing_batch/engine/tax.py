"""VAT as EN 16931 has it: each line's category and rate, an invoice's VAT breakdown, and the
rules a workbook must meet for them. Pure.

Categories are UNCL5305's codes, as EN 16931 uses them. A line's category is the customer's Tax
Category when one is set (it overrides every line), else its product's, else S. The rate of an S
line is its product's Tax Rate, else the customer's Tax Rate; every other category has rate 0.

The contract's discount is a document-level allowance: it is split between the VAT groups in
proportion to their net amounts, in whole minor units, the leftover units going to the largest
remainders (ties: the group listed first), so the shares add up to the discount exactly.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from stdnum import get_cc_module
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum, InvalidLength, ValidationError

from billing_batch.i18n import N_
from billing_batch.model import Customer, Line, Product, VatGroup
from billing_batch.money import allocate, minor_unit, round_money

STANDARD = "S"
# Names and legends are English here (N_: translated where an invoice prints them, documents/invoice_view.py); the
# workbook's categories are typed in English, as their codes or these names.
CATEGORIES = {  # code: name, in the order the VAT breakdown lists them
    "S": N_("Standard rate"),
    "Z": N_("Zero rated"),
    "E": N_("Exempt from VAT"),
    "AE": N_("Reverse charge"),
    "K": N_("Intra-community supply"),
    "G": N_("Export outside the EU"),
    "O": N_("Outside the scope of VAT"),
}
# The legend printed when no Tax Exemption Reason is given, citing Directive 2006/112/EC (each catalog
# words it as that country's law asks: "Steuerschuldnerschaft des Leistungsempfängers", "Autoliquidation").
# E and O have none: which article exempts a supply, or why it is outside VAT, differs from case to
# case, so it must be stated.
DEFAULT_REASONS = {
    "Z": N_("Zero-rated supply: VAT at 0%"),
    "AE": N_("Reverse charge: VAT to be accounted for by the recipient (Article 196, Directive 2006/112/EC)"),
    "K": N_("Intra-community supply of goods, exempt from VAT (Article 138, Directive 2006/112/EC)"),
    "G": N_("Export outside the EU, exempt from VAT (Article 146, Directive 2006/112/EC)"),
}
# What each category other than S means, in a phrase: proposed when a line would be S at 0% (BB129).
MEANINGS = {
    "Z": "taxed at 0% by law",
    "E": "exempt by law, the article named in the Tax Exemption Reason",
    "AE": "the customer, a business registered for VAT in another EU country, accounts for the VAT",
    "K": "goods sent to a business registered for VAT in another EU country",
    "G": "goods shipped to a customer outside the EU",
    "O": "not subject to EU VAT, such as a service to a business outside the EU",
}
REASON_SEPARATOR = "; "  # between the reasons of one group's lines
MUST_STATE_REASON = ("E", "O")
NEEDS_VAT_IDS = ("AE", "K")  # both parties' VAT IDs must be on the invoice
PER_GROUP, PER_LINE = "Per Group", "Per Line"
ROUNDINGS = (PER_GROUP, PER_LINE)


def category_choices() -> str:
    return ", ".join(label(code) for code in CATEGORIES)


def _key(text: str) -> str:
    return re.sub(r"[\s_-]", "", text).casefold()


_BY_KEY = {**{_key(name): code for code, name in CATEGORIES.items()}, **{_key(code): code for code in CATEGORIES}}


def parse_category(text: str) -> str | None:
    """The code for a category typed as its code (AE) or name (reverse charge); None if unknown."""
    return _BY_KEY.get(_key(text))


def vat_id_problem(text: str) -> tuple[str, str]:
    """(the VAT ID in compact form, "" or why it is not valid). EU numbers are checked with their
    country's format and check digits (python-stdnum, no network); a number of another country
    that python-stdnum knows is checked by that country's rules; any other is taken as typed."""
    compact = re.sub(r"[\s.\-/]", "", text).upper()
    country = compact[:2].lower()
    if country == "el" or country in eu_vat.MEMBER_STATES:
        module = eu_vat
    elif not country.isalpha():
        return compact, "it does not start with the two letters of its country, such as BE or DE"
    else:
        module = get_cc_module(country, "vat")
        if module is None:
            return compact, ""
    try:
        return module.validate(compact), ""
    except InvalidChecksum:
        return compact, "its check digits do not match, so it holds a typing mistake"
    except InvalidLength:
        return compact, f"it has too many or too few characters for a {compact[:2]} VAT ID"
    except ValidationError:
        return compact, f"it does not have the form of a {compact[:2]} VAT ID"


@dataclass(frozen=True, slots=True)
class LineTax:
    category: str
    rate: Decimal
    reason: str  # the legend for a category other than S: as given, else the default
    stated_on: str  # "customer" or "product": the row that set the category; "" for S by default
    rate_on: str = ""  # S: "product" or "customer", the row whose Tax Rate it is


def line_tax(product_name: str, customer: Customer, products: Mapping[str, Product]) -> LineTax:
    product = products.get(product_name)
    if customer.tax_category:
        category, reason, on = customer.tax_category, customer.tax_exemption_reason, "customer"
    elif product is not None and product.tax_category:
        category, reason, on = product.tax_category, product.tax_exemption_reason, "product"
    else:
        category, reason, on = STANDARD, "", ""
    if category != STANDARD:
        return LineTax(category, Decimal(0), reason or DEFAULT_REASONS.get(category, ""), on)
    own_rate = product is not None and product.tax_rate is not None and product.tax_category in ("", STANDARD)
    if own_rate:
        return LineTax(STANDARD, product.tax_rate, "", on, "product")
    return LineTax(STANDARD, customer.tax_rate, "", on, "customer")


@dataclass(frozen=True)
class Rules:
    """What the tax of a draft depends on besides its customer: the Products sheet and the Settings'
    Tax Rounding."""

    products: Mapping[str, Product] = field(default_factory=dict)
    rounding: str = PER_GROUP


def with_tax(lines: Iterable[Line], customer: Customer, rules: Rules) -> tuple[list[Line], dict]:
    """The lines, each with its category and rate, and the legend of each (category, rate) group
    other than S: its lines' reasons, each once, joined with "; "."""
    out, reasons = [], {}
    for line in lines:
        t = line_tax(line.product, customer, rules.products)
        out.append(replace(line, tax_category=t.category, tax_rate=t.rate))
        if t.reason:
            reasons.setdefault((t.category, t.rate), {})[t.reason] = None
    return out, {key: REASON_SEPARATOR.join(found) for key, found in reasons.items()}


def _order(key: tuple[str, Decimal]) -> tuple:
    category, rate = key
    return list(CATEGORIES).index(category) if category in CATEGORIES else len(CATEGORIES), -rate, category


def vat_groups(lines: Sequence[Line], discount: Decimal, currency: str, rounding: str = PER_GROUP,
               reasons: Mapping[tuple[str, Decimal], str] | None = None) -> tuple[VatGroup, ...]:
    """The VAT breakdown of lines that carry their category and rate, less a document-level
    discount split between the groups (see the module's docstring). Per Group, a group's tax is
    round(taxable x rate), as EN 16931 has it; Per Line it is the sum of round(amount x rate) over
    its lines, less round(its discount x rate), the discount taxed as a negative line would be.
    reasons: the legend of each (category, rate) group other than S."""
    members: dict[tuple[str, Decimal], list[Line]] = {}
    for line in lines:
        members.setdefault((line.tax_category, line.tax_rate), []).append(line)
    keys = sorted(members, key=_order)
    nets = [sum((line.amount for line in members[k]), Decimal(0)) for k in keys]
    shares = allocate(discount, nets, minor_unit(currency))
    groups = []
    for (category, rate), net, share in zip(keys, nets, shares):
        taxable = net - share
        if rounding == PER_LINE:
            tax = (sum((round_money(line.amount * rate, currency) for line in members[(category, rate)]), Decimal(0))
                   - round_money(share * rate, currency))
        else:
            tax = round_money(taxable * rate, currency)
        reason = (reasons or {}).get((category, rate), "") if category != STANDARD else ""
        groups.append(VatGroup(category, rate, taxable, tax, reason, share))
    return tuple(groups)


def percent(rate: Decimal) -> str:
    """A rate as a plain percentage: 0.21 is 21, 0.055 is 5.5."""
    return format((rate * 100).normalize(), "f")


def label(category: str) -> str:
    return f"{category} ({_lower(CATEGORIES[category])})"


def _lower(name: str) -> str:
    return name[0].lower() + name[1:]


def other_categories() -> str:
    """The categories a line without VAT may have, each with what it means (BB129's fix)."""
    return "; ".join(f"{code} {_lower(CATEGORIES[code])} ({meaning})" for code, meaning in MEANINGS.items())


def missing(category: str, reason: str, seller_vat_id: str) -> tuple[str, str] | None:
    """(code, what is missing) when a category stated on a row lacks what it needs on that row's side:
    the seller's VAT ID for AE and K (the customer's is checked where the customer is known), a
    stated reason for E and O."""
    if category in NEEDS_VAT_IDS and not seller_vat_id:
        return "BB122", f"tax category {label(category)} needs the seller's VAT ID, and the Settings sheet has no VAT ID"
    if category in MUST_STATE_REASON and not reason:
        return "BB124", (f"tax category {label(category)} needs the reason the supply is "
                         f"{_lower(CATEGORIES[category])} printed on the invoice, and none is given")
    return None


def needing_customer_vat_id(customer: Customer, product_names: Iterable[str],
                            products: Mapping[str, Product]) -> tuple[str, str] | None:
    """(product, category) of the first of these products whose lines to the customer need the
    customer's VAT ID, which the customer lacks; None when none does."""
    if customer.vat_id:
        return None
    for name in product_names:
        t = line_tax(name, customer, products)
        if t.category in NEEDS_VAT_IDS:
            return name, t.category
    return None
