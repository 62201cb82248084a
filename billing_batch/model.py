"""The plain immutable values that flow through the batch.

Over 400 lines: the one vocabulary every stage shares, a frozen dataclass or enum each and nothing
else; one file keeps the types a reader looks up in one place."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Source:
    """Where a value came from, so every message can point at the cell."""

    file: str
    sheet: str
    row: int | None = None
    column: str | None = None  # header as typed, e.g. "Quantity"
    letter: str | None = None  # Excel column letter, e.g. "F"

    def at(self, column: str, letter: str | None) -> Source:
        return Source(self.file, self.sheet, self.row, column, letter)

    def __str__(self) -> str:
        text = f"{self.file} > {self.sheet}"
        if self.row is not None:
            text += f" > row {self.row}"
        if self.column is not None:
            text += f", column {self.letter} ({self.column})" if self.letter else f", column {self.column}"
        return text


class Frequency(enum.Enum):
    MONTHLY = ("Monthly", 1)
    QUARTERLY = ("Quarterly", 3)
    SEMI_ANNUAL = ("Semi-Annual", 6)
    ANNUAL = ("Annual", 12)
    TRIENNIAL = ("Triennial", 36)

    def __init__(self, label: str, months: int):
        self.label = label
        self.months = months


class Policy(enum.Enum):
    ADVANCE = "Advance"
    ARREARS = "Arrears"


class ChargeType(enum.Enum):
    RECURRING = "Recurring"
    ONE_TIME = "One-Time"


class LineKind(enum.Enum):
    RECURRING = "Recurring"
    ONE_TIME = "One-Time"
    USAGE = "Usage"
    ADJUSTMENT = "Adjustment"  # the difference a change made to a cycle already billed (adjustments.py)
    LICENCE = "Licence"  # a charge of Microsoft's licence file, one line each (engine/licences.py)


class MidTermChanges(enum.Enum):
    NEXT_INVOICE = "Next Invoice"  # bill the difference on the contract's next invoice
    FLAG_ONLY = "Flag Only"  # list the invoice as differing, bill nothing


class AdjustmentInvoices(enum.Enum):
    WITH_NEXT_INVOICE = "With Next Invoice"
    MONTHLY = "Monthly"  # quarterly and longer contracts: an invoice of adjustments of their own once a month


class UsageLines(enum.Enum):
    SUMMARY = "Summary"  # one line per group of usage rows (see Contract.usage_group_by)
    DETAIL = "Detail"  # one line per usage row


# The usage columns a summary line is grouped by when nothing else is set; Unit Price always splits a group.
DEFAULT_GROUP_BY = ("Product", "Description")


class EInvoice(enum.Enum):
    """The structured e-invoice a customer receives beside (Factur-X: inside) the PDF (billing_batch.documents.einvoice)."""

    FACTUR_X = "Factur-X"  # the PDF becomes a PDF/A-3b with the CII embedded (EN 16931 profile)
    XRECHNUNG = "XRechnung"  # XRechnung 3.0, UBL syntax
    PEPPOL = "Peppol"  # Peppol BIS Billing 3.0, UBL


class RunType(enum.Enum):
    AUTOMATIC = "Automatic"
    MANUAL = "Manual"


SMTP_SECURITY = ("STARTTLS", "SSL", "NONE")  # Settings' SMTP Security: how the mail relay is reached


@dataclass(frozen=True, slots=True)
class Settings:
    company_name: str = ""
    company_address: str = ""
    company_email: str = ""
    tax_id: str = ""  # other registrations, printed as typed
    tax_id_label: str = ""  # printed before the Tax ID, as typed (EIN, Steuernummer); blank: the generic label
    vat_id: str = ""  # the seller's VAT identification number, checked
    tax_rounding: str = "Per Group"  # or "Per Line" (billing_batch.engine.tax)
    bank_details: str = ""
    invoice_prefix: str = "INV-"
    credit_note_prefix: str = "CN-"  # credit notes have their own gapless series
    default_currency: str = "USD"
    locale: str = "en_US"
    review_change_threshold: Decimal = Decimal("0.25")  # flag totals that move more than this
    ledger_backups: int = 12  # how many backups of the ledger to keep
    catch_up_limit: int = 3  # a run issuing more invoices than this for one contract sets it aside
    # Sending by email; the password comes only from the environment (BILLING_BATCH_SMTP_PASSWORD).
    smtp_host: str = ""
    smtp_port: int = 0  # 0: 465 for SSL, else 587
    smtp_security: str = "STARTTLS"  # STARTTLS, SSL or None
    smtp_user: str = ""
    smtp_from: str = ""  # blank: Company Email
    # Charging by SEPA Direct Debit.
    creditor_iban: str = ""
    creditor_bic: str = ""
    creditor_id: str = ""  # SEPA creditor identifier
    # The company's own look, resolved against the workbook's folder.
    logo: Path | None = None  # a PNG, JPEG or SVG file
    templates_folder: Path | None = None  # its files replace the default templates one by one
    usage_lines: UsageLines = UsageLines.SUMMARY
    usage_group_by: tuple[str, ...] = DEFAULT_GROUP_BY  # Usage sheet column names
    mid_term_changes: MidTermChanges = MidTermChanges.NEXT_INVOICE
    adjustment_invoices: AdjustmentInvoices = AdjustmentInvoices.WITH_NEXT_INVOICE
    # E-invoices (docs/workbook.md gives each one's EN 16931 business term).
    einvoice: EInvoice | None = None  # the customers' default
    company_street: str = ""  # BT-35, a second line BT-36
    company_city: str = ""  # BT-37
    company_postal_code: str = ""  # BT-38
    company_state: str = ""  # BT-39: the region, province or county
    company_country: str = ""  # BT-40, ISO 3166 code
    registration_id: str = ""  # BT-30, e.g. the commercial register number
    registration_scheme: str = ""  # BT-30-1, an ISO 6523 ICD code such as 0208
    electronic_address: str = ""  # BT-34
    electronic_scheme: str = ""  # BT-34-1, an EAS code such as 9930 or EM
    contact_name: str = ""  # BT-41
    contact_phone: str = ""  # BT-42
    contact_email: str = ""  # BT-43
    # Partner Center usage: the allowed difference from its BillingPreTaxTotal, a fraction of a tenant's month
    usage_tolerance: Decimal = Decimal("0.01")
    licence_markup: Decimal = Decimal(0)  # a contract's Licence Markup when its cell is blank


@dataclass(frozen=True, slots=True)
class Customer:
    customer_id: str
    name: str
    email: str
    address: str  # may hold line breaks
    city: str
    postal_code: str
    country: str
    tax_rate: Decimal  # fraction 0..1
    source: Source
    state: str = ""  # region, province or county (BT-54); printed where the country's postal format has one
    iban: str = ""  # with bic, mandate_id and mandate_date: a SEPA Direct Debit mandate
    bic: str = ""
    mandate_id: str = ""
    mandate_date: date | None = None
    vat_id: str = ""  # checked, in its compact form (BE0477472701)
    tax_category: str = ""  # UNCL5305 code overriding every line of the customer; "" for none
    tax_exemption_reason: str = ""
    language: str = ""  # a Babel locale such as de_DE, or a language such as de; blank: Settings' Locale
    einvoice: EInvoice | None = None  # blank in the workbook: the Settings' E-Invoice
    buyer_reference: str = ""  # BT-10, e.g. a German public body's Leitweg-ID
    electronic_address: str = ""  # BT-49
    electronic_scheme: str = ""  # BT-49-1, an EAS code


@dataclass(frozen=True, slots=True)
class Contract:
    contract_id: str
    customer_id: str
    start: date
    end: date | None  # inclusive
    frequency: Frequency
    policy: Policy
    offset_days: int
    currency: str
    payment_terms_days: int
    discount: Decimal  # fraction 0..1
    active: bool
    source: Source
    cc: str = ""  # more addresses for the invoice email, separated by ; or ,
    billed_through: date | None = None  # cycles ending by then, and usage dated by then, were billed elsewhere
    usage_lines: UsageLines = UsageLines.SUMMARY  # the Settings' unless the contract's row says otherwise
    usage_group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    purchase_order: str = ""  # BT-13, the customer's order this contract bills
    partner_center_customer_id: str = ""  # the tenant (CustomerId) whose Partner Center usage this bills
    usage_markup: Decimal = Decimal(0)  # Partner Center usage is billed at cost x (1 + markup)
    licence_markup: Decimal = Decimal(0)  # licences without a Price List price: Microsoft's Subtotal x (1 + markup)


@dataclass(frozen=True, slots=True)
class Subscription:
    subscription_id: str
    contract_id: str
    product: str
    description: str
    quantity: Decimal
    unit_price: Decimal  # per unit per month for Recurring
    start: date  # blank in the workbook = contract start
    end: date | None  # inclusive
    charge_type: ChargeType
    source: Source
    # Microsoft's SubscriptionId: from the first charge Partner Center's licence file bills for it, the row
    # stops billing (engine/licences.hand_over)
    partner_center_subscription_id: str = ""


@dataclass(frozen=True, slots=True)
class LicenceCharge:
    """One row of Partner Center's licence file (inputs/licences.py), as Microsoft charged it."""

    tenant: str  # CustomerId
    subscription_id: str  # SubscriptionId: what everything is keyed on, never the product
    sku_id: str  # ProductId:SkuId, as a Price List names it
    sku_name: str
    charge_type: str  # Microsoft's ChargeType, as written (inputs/licences.CHARGE_TYPES)
    start: date  # ChargeStartDate..ChargeEndDate: the days this charge pays for
    end: date
    quantity: Decimal  # BillableQuantity: the seats charged
    unit_price: Decimal  # UnitPrice: the price-list price of a seat for a charge cycle, at purchase
    cost: Decimal  # Subtotal: what Microsoft charged, in the billing currency (negative: a refund)
    currency: str
    term: str  # TermAndBillingCycle
    billing_frequency: str  # Monthly, Annual, or blank (upfront)
    term_start: date  # SubscriptionStartDate..SubscriptionEndDate
    term_end: date
    order_date: date | None
    invoice_number: str
    order_id: str = ""
    reference_id: str = ""  # ties the rows of a convert together
    price_per_month: Decimal | None = None  # the customer's price of a seat for a month, from the Price List

    @property
    def refund(self) -> bool:
        return self.cost < 0


@dataclass(frozen=True, slots=True)
class Price:
    """A row of the Price List sheet: a licence's price per seat per month, for every contract in its
    currency or for one contract."""

    sku_id: str  # ProductId:SkuId, as the licence file and Partner Center's price list write it
    unit_price: Decimal
    currency: str
    source: Source
    contract_id: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    usage_id: str
    contract_id: str
    date: date
    product: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    source: Source
    extra: tuple[tuple[str, str], ...] = ()  # the Usage sheet's other columns: (header as typed, value as text)
    licence: LicenceCharge | None = None  # a licence charge: billed as a line of its own (engine/licences.py)
    months: int | None = None  # a licence charge priced per month (the Price List): months x days / full_days
    full_days: int | None = None

    def value(self, column: str) -> str:
        """The row's value in a Usage column, as text, for grouping; column as Contract.usage_group_by has it."""
        if column in _USAGE_FIELDS:
            value = getattr(self, _USAGE_FIELDS[column])
            return value.isoformat() if isinstance(value, date) else str(value)
        return next((value for name, value in self.extra if name == column), "")


PARTNER_CENTER_ID = "PC-"  # starts the usage ID made from a Partner Center row (inputs/partner_center.py)
LICENCE_ID = "PL-"  # starts the usage ID of a Partner Center licence charge (inputs/licence_rows.py)
POST_TASKS = ("send", "sync", "charge")  # what is done to an invoice once issued (billing_batch.post), in order
_USAGE_FIELDS = {"Usage ID": "usage_id", "Contract ID": "contract_id", "Date": "date", "Product": "product",
                 "Description": "description", "Quantity": "quantity", "Unit Price": "unit_price"}


@dataclass(frozen=True, slots=True)
class BilledUsage:
    """One usage row as billed on an invoice line, kept in the ledger for the usage detail file."""

    usage_id: str
    date: date
    product: str
    description: str
    quantity: Decimal
    unit_price: Decimal
    groups: tuple[tuple[str, str], ...] = ()  # the columns its line was grouped by, with its values

    @property
    def amount(self) -> Decimal:
        """Exact, never rounded: the line rounds the sum of its rows once."""
        return self.quantity * self.unit_price


@dataclass(frozen=True, slots=True)
class Cycle:
    """One billing cycle of a contract; all dates inclusive."""

    contract_id: str
    index: int  # k: the cycle starts k x interval months after the anchor
    start: date
    end: date  # cut short by the contract End Date on the last cycle
    full_end: date  # end of the uncut cycle, the proration denominator
    scheduled: date  # when it is due to be invoiced
    usage_cutoff: date  # usage dated on or before this goes on its invoice
    # The closing cycle of an Advance contract with an End Date: the day after the End Date, billing
    # only the usage of the last cycle, which no Advance invoice takes (see cycles.closing_cycle).
    closing: bool = False

    @property
    def schedule_id(self) -> str:
        return f"{self.contract_id}/{self.start.isoformat()}"


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge of a cycle in full, as the data bills it: a subscription's recurring or one-time
    charge, or a usage row. What an Adjustment line brings the charge to (adjustments.py)."""

    key: str  # "Recurring SUB-1", "One-Time SUB-2", "Usage U-7": one per subscription or usage row and cycle
    product: str
    description: str
    period_start: date
    period_end: date
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # a usage row's exact amount, never rounded; a subscription's line amount
    removed: bool = False  # the charge is gone from the data: nothing is billed for it now


@dataclass(frozen=True, slots=True)
class Adjusted:
    """What an Adjustment line corrects: one charge of one cycle, and the charge as billed after it."""

    contract_id: str
    cycle_start: date
    charge: Charge


@dataclass(frozen=True, slots=True)
class Line:
    kind: LineKind
    product: str
    description: str
    period_start: date
    period_end: date
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal  # rounded to the currency's minor unit
    prorated: bool = False
    subscription_id: str | None = None
    usage_id: str | None = None
    tax_category: str = "S"  # UNCL5305 code (billing_batch.engine.tax), set by pricing.make_draft
    tax_rate: Decimal = Decimal(0)
    usage_rows: tuple[BilledUsage, ...] = ()  # every usage row on the line (one for Detail)
    credits_line: int | None = None  # a credit note's line: the line (1, 2, ...) of the invoice it credits
    corrects: str | None = None  # an Adjustment: the number of the invoice it corrects (None: a cycle found empty)
    adjusted: Adjusted | None = None  # an Adjustment: what it corrects
    # A price per month (a recurring charge, an Adjustment of one) bills quantity x unit price x months x
    # days / full_days, rounded once (days: the line's period); both None for a price per unit, and for
    # a line issued before the ledger kept them (engine.pricing.exact_amount).
    months: int | None = None  # the cycle's months
    full_days: int | None = None  # the days of the full, uncut cycle

    @property
    def days(self) -> int:
        return (self.period_end - self.period_start).days + 1


@dataclass(frozen=True, slots=True)
class VatGroup:
    """One line of an invoice's VAT breakdown: the lines of one category and rate, less their share
    of the discount (billing_batch.engine.tax)."""

    category: str
    rate: Decimal
    taxable: Decimal  # the lines' amounts less the group's share of the discount
    tax: Decimal
    exemption_reason: str = ""  # the legend printed for a category other than S
    discount: Decimal = Decimal(0)  # the group's share of the invoice's discount


@dataclass(frozen=True, slots=True)
class Party:
    """A name and address block as printed on the invoice, frozen at issue time."""

    name: str
    address_lines: tuple[str, ...] = ()
    email: str = ""
    tax_id: str = ""
    bank_details: str = ""
    vat_id: str = ""
    # What an e-invoice says of the party, frozen at issue time like the rest (the ledger keeps the party
    # as JSON, so these need no migration; a party issued before them has them blank).
    street: str = ""  # may hold a line break: the second address line
    city: str = ""
    postal_code: str = ""
    country: str = ""  # ISO 3166 code
    state: str = ""  # region, province or county: BT-39 (seller), BT-54 (buyer)
    tax_id_label: str = ""  # seller: printed before tax_id as typed; blank: the generic label
    registration_id: str = ""
    registration_scheme: str = ""
    electronic_address: str = ""
    electronic_scheme: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""
    iban: str = ""  # the seller's for a credit transfer; the buyer's (debtor's) for a direct debit
    bic: str = ""
    mandate_id: str = ""  # buyer: the SEPA mandate the invoice is collected under
    creditor_id: str = ""  # seller: SEPA creditor identifier
    buyer_reference: str = ""  # buyer: BT-10
    purchase_order: str = ""  # buyer: BT-13, the contract's
    einvoice: str = ""  # buyer: the EInvoice value it receives; "" for none


@dataclass(frozen=True, slots=True)
class Draft:
    """What a cycle would bill: priced, not yet numbered."""

    contract_id: str
    customer_id: str
    customer_name: str
    cycle_start: date
    cycle_end: date
    scheduled: date
    currency: str
    lines: tuple[Line, ...]
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal
    discount_rate: Decimal = Decimal(0)
    tax_rate: Decimal = Decimal(0)  # the customer's rate: the default for category S
    vat_groups: tuple[VatGroup, ...] = ()  # the VAT breakdown; tax is the sum of their taxes
    tax_rounding: str = "Per Group"
    change_log: bool = False  # adjustments only, on an invoice of their own: not the invoice of a cycle

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def schedule_id(self) -> str:
        return f"{self.contract_id}/{self.cycle_start.isoformat()}"


class InvoiceStatus(enum.Enum):
    ISSUED = "Issued"
    REPLACED = "Replaced"
    CREDITED = "Credited"  # an issued invoice corrected in full by a credit note


class DocType(enum.Enum):
    INVOICE = "Invoice"
    CREDIT_NOTE = "Credit Note"


@dataclass(frozen=True, slots=True)
class Invoice:
    """An issued invoice as stored in the ledger; its PDF is a function of this alone."""

    number: str
    draft: Draft
    invoice_date: date
    due_date: date
    run_type: RunType
    seller: Party
    buyer: Party
    locale: str
    status: InvoiceStatus = InvoiceStatus.ISSUED
    replaced_by: str | None = None
    doc_type: DocType = DocType.INVOICE
    credits: str | None = None  # a credit note: the number of the invoice it credits (None: none)
    credits_date: date | None = None  # ... and that invoice's date
    reason: str = ""  # a credit note's reason, as given
    # Read from the ledger, not stored with the invoice: the credit notes crediting it and the
    # invoice it replaces, so its PDF can name them.
    credited_by: tuple[str, ...] = ()
    replaces: str | None = None

    @property
    def is_credit_note(self) -> bool:
        return self.doc_type is DocType.CREDIT_NOTE

    @property
    def is_live(self) -> bool:
        """It is what its cycle bills now: issued, not a credit note correcting an invoice, and not an
        invoice of adjustments only (which is no cycle's)."""
        return self.status is InvoiceStatus.ISSUED and self.credits is None and not self.draft.change_log

    @property
    def pdf_name(self) -> str:
        return f"invoices/{self.number}.pdf"

    @property
    def usage_name(self) -> str | None:
        """The usage detail workbook, for an invoice with usage rows."""
        has_usage = any(line.usage_rows for line in self.draft.lines if line.kind is LineKind.USAGE)
        return f"invoices/{self.number}-usage.xlsx" if has_usage else None

    @property
    def einvoice_name(self) -> str | None:
        """The e-invoice XML, for a buyer who takes e-invoices (on Factur-X, the CII its PDF carries)."""
        return f"einvoices/{self.number}.xml" if self.buyer.einvoice else None

    @property
    def email_xml(self) -> str | None:
        """The e-invoice XML the email attaches: XRechnung's and Peppol's (a Factur-X's is inside its PDF)."""
        return self.einvoice_name if self.buyer.einvoice and self.buyer.einvoice != EInvoice.FACTUR_X.value else None


@dataclass(frozen=True, slots=True)
class Product:
    """Accounting codes for a product, from the optional Products sheet."""

    product: str
    account_code: str
    tax_type: str  # overrides the tax type the sync task derives from the line's category and rate
    source: Source
    tax_category: str = ""  # UNCL5305 code; "" for S at the customer's rate
    tax_rate: Decimal | None = None  # for category S; None: the customer's Tax Rate
    tax_exemption_reason: str = ""


@dataclass(frozen=True, slots=True)
class Inputs:
    """Everything read from the input workbooks that passed validation."""

    settings: Settings
    customers: dict[str, Customer] = field(default_factory=dict)
    contracts: dict[str, Contract] = field(default_factory=dict)
    subscriptions: dict[str, tuple[Subscription, ...]] = field(default_factory=dict)  # by contract
    usage: dict[str, tuple[Usage, ...]] = field(default_factory=dict)  # by contract, date order
    products: dict[str, Product] = field(default_factory=dict)  # by product name
    price_list: tuple[Price, ...] = ()  # the Price List sheet: the customers' prices of licences
