"""Partner Center's daily rated usage file: its columns, the files of the input folder that hold it, and
what reading it gives (UsageFile; the validated rows, Imported; a month that does not reconcile, Mismatch).

Reading and validating it takes pandas, which costs start-up time: that is partner_center_rows.py,
imported only when the input folder holds a CSV file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from xlsxwriter.utility import xl_col_to_name

from billing_batch.errors import Problem
from billing_batch.model import Contract, Source, Usage

if TYPE_CHECKING:
    import pandas as pd

# The documented columns, in Partner Center's order; newer files add columns after them.
COLUMNS = (
    "PartnerId", "PartnerName", "CustomerId", "CustomerName", "CustomerDomainName", "CustomerCountry", "MpnId",
    "Tier2MpnId", "InvoiceNumber", "ProductId", "SkuId", "AvailabilityId", "SkuName", "ProductName",
    "PublisherName", "PublisherId", "SubscriptionDescription", "SubscriptionId", "ChargeStartDate",
    "ChargeEndDate", "UsageDate", "MeterType", "MeterCategory", "MeterId", "MeterSubCategory", "MeterName",
    "MeterRegion", "Unit", "ResourceLocation", "ConsumedService", "ResourceGroup", "ResourceURI", "ChargeType",
    "UnitPrice", "Quantity", "UnitType", "BillingPreTaxTotal", "BillingCurrency", "PricingPreTaxTotal",
    "PricingCurrency", "ServiceInfo1", "ServiceInfo2", "Tags", "AdditionalInfo", "EffectiveUnitPrice",
    "PCToBCExchangeRate", "PCToBCExchangeRateDate", "EntitlementId", "EntitlementDescription",
    "PartnerEarnedCreditPercentage", "CreditPercentage", "CreditType",
)

# A CSV sharing fewer documented columns than this is not taken for a Partner Center file with columns missing.
RECOGNISED = 10

# Usage Group By names -> the file's column.
GROUP_COLUMNS = {
    "Meter Category": "MeterCategory", "Meter Sub-Category": "MeterSubCategory", "Meter Name": "MeterName",
    "Meter Region": "MeterRegion", "Resource Group": "ResourceGroup", "Resource Location": "ResourceLocation",
    "Entitlement ID": "EntitlementId", "Tags": "Tags",
}

IDENTITY = ("CustomerId", "EntitlementId", "MeterId", "ResourceURI", "UsageDate", "ChargeType")

MONEY = ("Quantity", "EffectiveUnitPrice", "PCToBCExchangeRate", "BillingPreTaxTotal")

# Only these are converted; the other documented columns are checked to be there and left unread.
READ = tuple(dict.fromkeys((*IDENTITY, "CustomerName", "BillingCurrency", *GROUP_COLUMNS.values(), *MONEY)))

REPEATING = [c for c in READ if c not in ("Quantity", "BillingPreTaxTotal")]  # read as categories

NUMBER = re.compile(r"-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")

ENGINE = "pyarrow"  # measured against "c" on size P: docs/performance.md


@dataclass
class UsageFile:
    """The rows of every Partner Center file in the input, as read: one frame of text columns (repeated
    texts as categories), with file, row (its line in the file) and usage_id; file-level problems."""

    frame: pd.DataFrame | None = None
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)  # file -> its header, for column letters


    @property
    def columns(self) -> dict[str, str]:
        """The Usage Group By names this input offers, normalised -> as named."""
        return {" ".join(n.split()).casefold(): n for n in GROUP_COLUMNS} if self.files else {}


def input_files(path: Path) -> list[Path]:
    """The CSV files of the input folder (the named workbook's folder too: without the usage file it was
    billed with, its usage would look taken back), oldest first (by modification time, then name): a file
    downloaded later repeats or revises the rows of those before it."""
    folder = path if path.is_dir() else path.parent
    found = [p for p in folder.iterdir() if p.suffix.lower() == ".csv" and p.is_file()
             and not p.name.startswith(("~$", "."))] if folder.is_dir() else []
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name))


def sheet_of(name: str) -> str:
    """Excel shows a CSV as one sheet named after the file: cells are pointed at as it shows them."""
    return Path(name).stem[:31]


def cell(file: str, row: int | None, column: str, header: list[str] | tuple[str, ...] = COLUMNS) -> Source:
    letter = xl_col_to_name(header.index(column)) if column in header else None
    return Source(file, sheet_of(file), row, column, letter)


@dataclass(frozen=True)
class Mismatch:
    """A tenant's month whose imported cost and Partner Center's BillingPreTaxTotal disagree."""

    contract_id: str
    tenant: str
    month: str  # 2026-10
    rows: int
    billed_by_partner_center: Decimal
    imported: Decimal
    tolerance: Decimal
    detail: pd.DataFrame  # the rows that make it up


    @property
    def difference(self) -> Decimal:
        return self.imported - self.billed_by_partner_center


    @property
    def file_name(self) -> str:
        return f"reconciliation/{self.contract_id}-{self.month}-{self.tenant[:8]}.csv"


@dataclass
class Imported:
    """What validate made of the Partner Center rows."""

    usage: dict[str, list[Usage]] = field(default_factory=dict)  # contract ID -> rows
    mismatches: list[Mismatch] = field(default_factory=list)


def tenant_contracts(contracts: dict[str, Contract]) -> dict[str, Contract]:
    """Tenant (lower case) -> the contract billing it: the active one, else an inactive one (which bills
    nothing). Two active contracts on one tenant are reported by validate (BB151)."""
    found: dict[str, Contract] = {}
    for c in sorted(contracts.values(), key=lambda c: not c.active):
        if c.partner_center_customer_id:
            found.setdefault(c.partner_center_customer_id.strip().lower(), c)
    return found


def description(category: str, sub_category: str, name: str) -> str:
    """MeterName, with the MeterSubCategory before it when it says more (Dv3/DSv3 Series - D2 v3/D2s v3) than
    the name and the MeterCategory (the Product) already do."""
    if not sub_category or sub_category.casefold() == category.casefold() \
            or sub_category.casefold() in name.casefold():
        return name
    return f"{sub_category} - {name}"
