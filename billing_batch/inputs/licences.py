"""Partner Center's new commerce (NCE) invoice reconciliation file: Microsoft's charges for licences
(seats), one row per charge. Its columns, and what the light stages need of it.

Reading and validating it takes pandas: licence_rows.py, imported only when the input holds a CSV.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from typing import TYPE_CHECKING

from billing_batch.errors import Problem
from billing_batch.model import Source, Usage

if TYPE_CHECKING:
    import pandas as pd

# The published columns, in Partner Center's order; older files name Tier2MpnId ResellerMpnId, and have no
# ProductCategory. Newer files add columns: they are accepted and left unread.
COLUMNS = (
    "PartnerId", "CustomerId", "CustomerName", "CustomerDomainName", "CustomerCountry", "InvoiceNumber", "MpnId",
    "Tier2MpnId", "OrderId", "OrderDate", "ProductId", "SkuId", "AvailabilityId", "SkuName", "ProductName",
    "ChargeType", "UnitPrice", "Quantity", "Subtotal", "TaxTotal", "Total", "Currency", "PriceAdjustmentDescription",
    "PublisherName", "PublisherId", "SubscriptionDescription", "SubscriptionId", "ChargeStartDate", "ChargeEndDate",
    "TermAndBillingCycle", "EffectiveUnitPrice", "UnitType", "AlternateId", "BillableQuantity", "BillingFrequency",
    "PricingCurrency", "PCToBCExchangeRate", "PCToBCExchangeRateDate", "MeterDescription", "ReservationOrderId",
    "CreditReasonCode", "SubscriptionStartDate", "SubscriptionEndDate", "ReferenceId", "ProductQualifiers",
    "PromotionId", "ProductCategory",
)
OPTIONAL = {"ProductCategory": None, "Tier2MpnId": "ResellerMpnId"}  # column -> the name older files give it

# Microsoft's order types, and those files in the field show (docs/decisions.md)
CHARGE_TYPES = ("new", "renew", "addQuantity", "removeQuantity", "cancel", "convert", "customerCredit",
                "cycleCharge", "cancelImmediate")

AZURE_PLAN_PRODUCT = "DZH318Z0BPS6"  # the ProductId of the Azure plan: billed from the daily rated usage file


def is_licence_file(header: Iterable[str]) -> bool:
    """The header is the licence file's: every published column there (older names accepted)."""
    found = set(header)
    return all(c in found or (c in OPTIONAL and (OPTIONAL[c] is None or OPTIONAL[c] in found)) for c in COLUMNS)


def looks_like_licence_file(header: Iterable[str]) -> bool:
    """Enough of the licence file's own columns (not the usage file's) to be one with columns missing."""
    return len({"BillableQuantity", "Subtotal", "TermAndBillingCycle", "SubscriptionStartDate",
                "OrderId"} & set(header)) >= 3


@dataclass(frozen=True)
class Skipped:
    """A tenant's rows not billed from this file: Azure plan rows (billed from the usage file), or a tenant on
    no contract."""

    tenant: str
    name: str
    rows: int
    cost: Decimal
    currency: str
    source: Source


@dataclass
class Licences:
    """What validate made of the licence rows: every charge read (for the seat register and reconciliation),
    by contract; the tenants' rows on no contract, and the Azure plan rows skipped."""

    charges: dict[str, list[Usage]] = field(default_factory=dict)  # contract ID -> its charges as usage rows
    unmapped: list[Skipped] = field(default_factory=list)
    azure: list[Skipped] = field(default_factory=list)
    by_month: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)  # (tenant, month, currency) -> Subtotal


@dataclass
class LicenceFile:
    """The licence rows of every licence file of the input, as read: text columns, with file, row, usage_id."""

    frame: pd.DataFrame | None = None
    files: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    headers: dict[str, list[str]] = field(default_factory=dict)
