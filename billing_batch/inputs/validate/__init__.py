"""Turn raw rows into checked records; every problem becomes a value that says where it is.

Lenient where a person would be (spaces around IDs and choices, ISO text dates, numbers and
percentages typed as text); strict where money is at stake (ambiguous dates, non-numbers,
unknown currencies, duplicate IDs, Excel errors): those are problems, never guesses.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from billing_batch.errors import Problem
from billing_batch.inputs import einvoice_terms
from billing_batch.engine.licences import hand_over
from billing_batch.inputs import licences, partner_center
from billing_batch.inputs.validate.cells import number_text
from billing_batch.inputs.validate.contracts import read_contracts
from billing_batch.inputs.validate.customers import read_customers
from billing_batch.inputs.validate.price_list import read_price_list
from billing_batch.inputs.validate.products import read_products
from billing_batch.inputs.validate.settings import read_settings, settings_folder, settings_source
from billing_batch.inputs.validate.subscriptions import read_subscriptions
from billing_batch.inputs.validate.tax_checks import products_billed, tax_problems, zero_standard_problems
from billing_batch.inputs.validate.usage import read_usage, usage_columns
from billing_batch.inputs.workbook import RawBook, Row
from billing_batch.model import Inputs, Source


@dataclass
class Checked:
    """The validated input: records that passed, and every problem found."""

    inputs: Inputs
    problems: list[Problem] = field(default_factory=list)
    set_aside: dict[str, list[Problem]] = field(default_factory=dict)  # contract ID -> its problems
    broken_contracts: dict[str, Problem] = field(default_factory=dict)  # rows too broken to schedule
    mismatches: list[partner_center.Mismatch] = field(default_factory=list)  # Partner Center reconciliation
    licences: licences.Licences = field(default_factory=licences.Licences)  # Partner Center's licence charges

    @property
    def fatal(self) -> list[Problem]:
        return [p for p in self.problems if p.fatal]


def check(book: RawBook, usage_file: partner_center.UsageFile | None = None,
          licence_file: licences.LicenceFile | None = None) -> Checked:
    """usage_file, licence_file: the Partner Center files read beside the workbooks, if any."""
    problems: list[Problem] = []
    usage_file = usage_file or partner_center.UsageFile()
    columns = {**usage_columns(book), **usage_file.columns}
    settings = read_settings(book.sheets["Settings"], problems, settings_folder(book), columns)
    numbers = number_text(settings.locale)
    vat_cells: dict[str, Source] = {}
    customer_rows: dict[str, Row] = {}
    customers, customer_ids = read_customers(book.sheets["Customers"], problems, numbers, settings.vat_id, vat_cells,
                                             customer_rows)
    contract_rows: dict[str, Row] = {}
    contracts, broken = read_contracts(book.sheets["Contracts"], settings, customer_ids, problems, numbers, columns,
                                       contract_rows)
    known = {**dict.fromkeys(broken), **contracts}
    subscriptions = read_subscriptions(book.sheets["Subscriptions"], known, problems, numbers)
    usage = read_usage(book.sheets["Usage"], known, problems, numbers, columns)
    imported = partner_center.Imported()
    if usage_file.frame is not None:
        from billing_batch.inputs import partner_center_rows  # pandas: only when a CSV was read

        imported = partner_center_rows.usage(usage_file, contracts, problems, settings.usage_tolerance)
    price_list, ambiguous = read_price_list(book.sheets["Price List"], known, settings.default_currency, problems,
                                            numbers)
    charged = licences.Licences()
    if licence_file is not None and licence_file.frame is not None:
        from billing_batch.inputs import licence_rows  # pandas: only when a CSV was read

        charged = licence_rows.charges(licence_file, contracts, price_list, problems)
        subscriptions, notes = hand_over(subscriptions, charged.charges)
        charged.charges = licence_rows.with_hand_over(charged.charges, notes)
    for cid, rows in (*imported.usage.items(), *charged.charges.items()):
        usage[cid] = tuple(sorted((*usage.get(cid, ()), *rows), key=lambda u: (u.date, u.usage_id)))
    products, troubled = read_products(book.sheets["Products"], problems, settings.vat_id)
    problems += tax_problems(contracts, customers, subscriptions, usage, products, vat_cells)
    problems += zero_standard_problems(contracts, customers, subscriptions, usage, products, settings.vat_id,
                                       customer_rows)
    seller_gaps = einvoice_terms.seller_gaps(settings, customers, settings_source(book))
    problems += einvoice_terms.buyer_gaps(settings, customers, customer_rows, contracts, contract_rows)

    set_aside: dict[str, list[Problem]] = defaultdict(list)
    contracts_of = defaultdict(list)
    for contract_id, customer_id in broken.items():
        contracts_of[customer_id].append(contract_id)
    for contract in contracts.values():
        contracts_of[contract.customer_id].append(contract.contract_id)
    for p in problems:
        if p.contract_id:
            set_aside[p.contract_id].append(p)
        elif p.customer_id:
            for contract_id in contracts_of[p.customer_id]:
                set_aside[contract_id].append(p)
    for p, customer_ids_lacking in seller_gaps:  # the seller's terms an e-invoice format needs
        problems.append(p)
        for customer_id in customer_ids_lacking:
            for contract_id in contracts_of[customer_id]:
                set_aside[contract_id].append(p)
    for contract_id, names in products_billed(contracts, subscriptions, usage).items():
        for name in names & troubled.keys():  # a product whose tax is not known
            set_aside[contract_id] += troubled[name]
    file_problems = [*usage_file.problems, *(licence_file.problems if licence_file else ())]
    for p in file_problems:  # a file that cannot be read: the usage of every tenant's contract is unknown
        for contract in contracts.values():
            if contract.partner_center_customer_id:
                set_aside[contract.contract_id].append(p)
    for (sku, currency, contract_id), p in ambiguous.items():  # a licence whose price is not known
        for cid, rows in charged.charges.items():
            if (contract_id in ("", cid) and contracts[cid].currency == currency
                    and any(u.licence.sku_id.casefold() == sku for u in rows)):
                set_aside[cid].append(p)
    problems[:0] = file_problems
    broken_contracts = {cid: set_aside[cid][0] for cid in broken if cid not in contracts}
    inputs = Inputs(settings, customers, contracts, subscriptions, usage, products, price_list)
    return Checked(inputs, problems, dict(set_aside), broken_contracts, imported.mismatches, charged)
