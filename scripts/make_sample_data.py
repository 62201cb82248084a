"""Write sample_data/billing.xlsx, the sample input workbook, and beside it a Partner Center daily rated usage
file for two of its contracts (run: python scripts/make_sample_data.py).

All data are literal tables except Usage and the Partner Center file, generated from fixed seeds; the files are
byte-identical on every run.
"""
from __future__ import annotations

import calendar
import random
import re
import zipfile
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import sys

from openpyxl import Workbook, load_workbook
from openpyxl.styles import Alignment, Font, PatternFill

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the benchmarks package writes Partner Center files
from benchmarks import partner_center_files  # noqa: E402
from benchmarks import partner_center_licences as licences  # noqa: E402

OUT = ROOT / "sample_data" / "billing.xlsx"
# Two contracts that start on 1 October bill their tenants' October Azure usage at cost plus a markup.
USAGE_FILE = ROOT / "sample_data" / "partner_center_usage_2026-10.csv"
AZURE = {"CTR-1018": ("USD", 0.12), "CTR-1029": ("EUR", 0.08)}  # contract -> (billing currency, Usage Markup)
# The same two tenants' licence charges (Microsoft 365 seats...) on Microsoft's October invoice: CTR-1018 billed at
# cost plus its Licence Markup, CTR-1029's Exchange Online at the Price List's price, the rest at cost plus 10%.
LICENCE_MARKUP = {"CTR-1018": 0.15, "CTR-1029": 0.10}
PRICE_LIST = [("CFQ7TTC0LH16:0001", 5.50, "EUR", "CTR-1029")]  # Exchange Online (Plan 1), per seat per month
LICENCE_FILE = ROOT / "sample_data" / "partner_center_licences_2026-10.csv"
AS_OF = date(2026, 11, 2)  # the date the README runs the batch "as of"
N = None  # a blank cell: the batch applies the documented default

SETTINGS = [
    ("Company Name", "Lumenfield Software, Inc."),
    ("Company Address", "500 Harbor Boulevard, Suite 210\nSan Mateo, CA 94402\nUnited States"),
    ("Company Email", "billing@example.com"),
    ("Tax ID Label", "EIN"),  # printed before the Tax ID, in every language
    ("Tax ID", "94-3187265"),
    # Registered for VAT in Ireland (fictitious number, valid check letter) for its EU customers.
    ("VAT ID", "IE4830216N"),
    ("Bank Details", "Harborline Bank, N.A.\nAccount 4401-2210-9931 / ABA 123456780\nSWIFT HRBLUS33"),
    ("Invoice Prefix", "INV-"),
    ("Default Currency", "USD"),
    ("Locale", "en_US"),
    # For the customers who take e-invoices (EN 16931): the seller's structured address, contact, electronic
    # address and the account they pay into (docs/workbook.md names each one's business term).
    ("Company Street", "500 Harbor Boulevard, Suite 210"),
    ("Company City", "San Mateo"),
    ("Company Postal Code", "94402"),
    ("Company State", "CA"),
    ("Company Country", "US"),
    ("Electronic Address", "billing@example.com"),
    ("Electronic Address Scheme", "EM"),
    ("Contact Name", "Accounts Receivable"),
    ("Contact Phone", "+1 650 555 0142"),
    ("Contact Email", "billing@example.com"),
    ("Creditor IBAN", "IE29AIBK93115212345678"),
    ("Creditor BIC", "AIBKIE2D"),
    # The README's run is the first, catching up since June (5 monthly cycles): above the default of 3.
    ("Catch-Up Limit", 6),
]

# Customer ID, Name, Email, Address, City, Postal Code, Country, Tax Rate[, VAT ID, Tax Category, Tax Exemption
# Reason[, Language, E-Invoice, Buyer Reference, Electronic Address, Electronic Address Scheme]]. VAT IDs are
# fictitious, their check digits valid. The seller, a US company, is registered for VAT in Ireland: a business
# elsewhere in the EU accounts for the VAT itself (reverse charge, AE; VAT Directive art. 44 and 196), a British
# one for UK VAT (outside the scope of EU VAT, O); only the Irish one pays Irish VAT. Taxes outside Europe assume
# the seller registered there.
CUSTOMERS = [
    ("CUST-001", "Northwind Analytics Inc.", "ap.northwind@example.com", "1200 Market Street", "San Francisco", "94102", "United States", 0.085),
    # A German business that takes Factur-X (ZUGFeRD): its PDFs carry the EN 16931 XML.
    ("CUST-002", "Brightwave Media GmbH", "rechnungen.brightwave@example.net", "Torstraße 118", "Berlin", "10119", "Germany", 0.19, "DE832612139", "AE", N, N, "Factur-X"),
    # A US business with no sales tax (Oregon has none): outside the scope of EU VAT (O), not S at 0%.
    ("CUST-003", "Harbor & Pine Consulting LLC", "accounts@example.org", "410 SW Oak Street, Floor 3", "Portland", "97204", "United States", N, N, "O",
     "Outside the scope of EU VAT: services to a business in the United States"),
    ("CUST-004", "Quarry Lane Logistics", "finance.quarrylane@example.com", "88 Industrial Parkway", "Columbus", "43215", "United States", 0.075),
    ("CUST-005", "Meridian Health Partners", "payables@example.net", "Suite 1400\n2200 Ross Avenue", "Dallas", "75201", "United States", 0.08),
    ("CUST-006", "Ostara Retail Group", "ap.ostara@example.com", "75 State Street", "Boston", "02109", "United States", 0.065),
    ("CUST-007", "Atelier Cobalt SAS", "compta.cobalt@example.net", "14 rue de la Roquette", "Paris", "75011", "France", 0.20, "FR17185119393", "AE", N),
    ("CUST-008", "Tidewater Marine Supply", "billing.tidewater@example.com", "3300 Shore Drive", "Norfolk", "23503", "United States", 0.053),
    ("CUST-009", "Van Dijk Installatietechniek B.V.", "facturen.vandijk@example.net", "Keizersgracht 221", "Amsterdam", "1016 DV", "Netherlands", 0.21, "NL446875710B01", "AE", N),
    ("CUST-010", "Redfern Architecture Studio", "office.redfern@example.org", "19 Pearl Street", "Denver", "80203", "United States", 0.09),
    ("CUST-011", "Kestrel Fintech Corp.", "ap.kestrel@example.com", "500 Brickell Avenue", "Miami", "33131", "United States", 0.07),
    ("CUST-012", "Ashcombe & Reid Ltd", "accounts.ashcombe@example.org", "Unit 4, Canal Wharf\n12 Wharf Road", "Manchester", "M1 5LB", "United Kingdom", 0.20, N, "O",
     "Outside the scope of EU VAT: the customer accounts for UK VAT (reverse charge)"),
    ("CUST-013", "Solterra Energía S.L.", "facturas.solterra@example.net", "Calle de Alcalá 95", "Madrid", "28009", "Spain", 0.21, "ESB39945118", "AE", N),
    ("CUST-014", "Granite Peak Outfitters", "finance.granitepeak@example.com", "645 Main Street", "Bozeman", "59715", "United States", 0.05),
    ("CUST-015", "Lakeshore Dental Group", "billing.lakeshore@example.com", "233 N Michigan Avenue", "Chicago", "60601", "United States", 0.102),
    ("CUST-016", "Maple Ridge Software Inc.", "ap.mapleridge@example.org", "150 King Street West", "Toronto", "M5H 1J9", "Canada", 0.13),
    ("CUST-017", "Coastal Bean Roasters", "hello.coastalbean@example.com", "2101 Pacific Coast Hwy", "Santa Cruz", "95060", "United States", 0.095),
    ("CUST-018", "Belliard Data Services SRL", "accounts.belliard@example.net", "Rue Belliard 40", "Brussels", "1040", "Belgium", 0.21, "BE0467898504", "AE", N),
    ("CUST-019", "Summit Legal Partners PC", "accounting.summit@example.com", "1001 Fourth Avenue", "Seattle", "98154", "United States", 0.101),
    ("CUST-020", "Orbitline Telecom", "ap.orbitline@example.com", "400 Peachtree Street NE", "Atlanta", "30308", "United States", 0.089),
    ("CUST-021", "Bluebird Learning Co.", "billing.bluebird@example.org", "77 Congress Avenue", "Austin", "78701", "United States", 0.083),
    ("CUST-022", "Ironclad Manufacturing", "payables.ironclad@example.com", "5800 Commerce Drive", "Detroit", "48226", "United States", 0.06),
    ("CUST-023", "Fiore Design Studio S.à r.l.", "amministrazione.fiore@example.net", "Avenue de la Liberté 12", "Luxembourg", "L-1930", "Luxembourg", 0.17, "LU88424530", "AE", N),
    ("CUST-024", "Southbank Capital Advisors", "ops.southbank@example.com", "12 Collins Street", "Melbourne", "3000", "Australia", 0.10),
    # A Belgian business: reverse charge (AE), with the standard legend; Peppol e-invoices to its enterprise number.
    ("CUST-025", "Verhaegen Logistiek NV", "facturen.verhaegen@example.net", "Frankrijklei 88", "Antwerpen", "2000", "Belgium", 0.21, "BE 0815.739.217", "AE", N, N,
     "Peppol", N, "0815739217", "0208"),
    # An Irish business: standard rate, both VAT IDs on the invoice.
    ("CUST-026", "Liffey Robotics Ltd", "accounts.liffey@example.ie", "12 Hanover Quay", "Dublin", "D02 VY79", "Ireland", 0.23, "IE9174305B", N, N),
]

# The State column: printed where the country's addresses have one ("San Francisco, CA 94102"; "Toronto ON M5H 1J9").
STATES = {"CUST-001": "CA", "CUST-003": "OR", "CUST-004": "OH", "CUST-005": "TX", "CUST-006": "MA", "CUST-008": "VA",
          "CUST-010": "CO", "CUST-011": "FL", "CUST-014": "MT", "CUST-015": "IL", "CUST-016": "ON", "CUST-017": "CA",
          "CUST-019": "WA", "CUST-020": "GA", "CUST-021": "TX", "CUST-022": "MI", "CUST-024": "VIC"}

# Contract ID, Customer ID, Start, End, Frequency, Policy, Offset, Currency, Terms, Discount, Status[, Purchase Order]
# (and for the contracts in AZURE, their Partner Center Customer ID and Usage Markup: partner_center_contracts)
CONTRACTS = [
    ("CTR-1001", "CUST-001", "2026-06-01", N, "Monthly", "Arrears", N, "USD", 30, N, "Active"),
    ("CTR-1002", "CUST-002", "2026-07-01", N, "Monthly", "Advance", 0, "EUR", 14, N, "Active"),
    ("CTR-1003", "CUST-003", "2026-01-31", N, "Quarterly", "Arrears", 5, "USD", 45, N, "Active"),
    ("CTR-1004", "CUST-004", "2026-08-31", N, "Monthly", "Arrears", -3, "USD", 30, N, "Active"),
    ("CTR-1005", "CUST-005", "2025-11-15", N, "Annual", "Advance", -15, "USD", 60, N, "Active"),
    ("CTR-1006", "CUST-006", "2024-04-01", N, "Triennial", "Advance", 0, "USD", 45, N, "Active"),
    ("CTR-1007", "CUST-007", "2026-03-01", N, "Semi-Annual", "Arrears", 10, "EUR", 30, N, "Active"),
    ("CTR-1008", "CUST-008", "2026-06-16", "2026-09-30", "Monthly", N, N, N, N, N, N),
    ("CTR-1009", "CUST-009", "2026-07-01", N, "Quarterly", "Advance", N, "EUR", 30, N, "Active"),
    ("CTR-1010", "CUST-010", "2026-05-01", N, "Monthly", "Arrears", N, "USD", 30, N, "Inactive"),
    ("CTR-1011", "CUST-011", "2026-09-01", N, "Monthly", "Arrears", N, "USD", 15, 0.10, "Active"),
    ("CTR-1012", "CUST-001", "2026-10-01", N, "Annual", "Advance", 0, "USD", 30, N, "Active"),
    ("CTR-1013", "CUST-012", "2026-06-10", N, "Monthly", "Advance", 5, "GBP", 30, N, "Active"),
    ("CTR-1014", "CUST-013", "2026-08-01", N, "Monthly", "Arrears", N, "EUR", 30, N, "Active"),
    ("CTR-1015", "CUST-014", "2026-07-20", N, "Quarterly", "Arrears", 0, "USD", 30, N, "Active"),
    ("CTR-1016", "CUST-015", "2026-06-01", N, "Semi-Annual", "Advance", N, "USD", 30, N, "Active"),
    ("CTR-1017", "CUST-016", "2026-09-15", N, "Monthly", "Advance", -3, "USD", 30, N, "Active"),
    ("CTR-1018", "CUST-017", "2026-10-01", N, "Monthly", N, N, "USD", 15, N, "Active"),
    ("CTR-1019", "CUST-018", "2026-06-01", N, "Monthly", "Arrears", 10, "EUR", 30, N, "Active"),
    ("CTR-1020", "CUST-019", "2026-07-31", N, "Monthly", "Arrears", N, "USD", 30, N, "Active"),
    ("CTR-1021", "CUST-020", "2026-08-15", N, "Monthly", "Advance", -15, "USD", 45, N, "Active"),
    ("CTR-1022", "CUST-002", "2026-10-01", N, "Monthly", "Arrears", 0, "EUR", 14, N, "Active"),
    ("CTR-1023", "CUST-021", "2026-06-01", N, "Monthly", "Arrears", N, "USD", 30, N, "Active"),
    ("CTR-1024", "CUST-022", "2025-09-01", N, "Annual", "Arrears", 5, "USD", 60, N, "Active"),
    ("CTR-1025", "CUST-023", "2026-10-12", N, "Monthly", "Advance", N, "EUR", 30, N, "Active"),
    ("CTR-1026", "CUST-024", "2026-07-01", N, "Monthly", "Arrears", N, "USD", 30, N, "Active"),
    ("CTR-1027", "CUST-008", "2026-10-01", N, "Quarterly", "Advance", 0, "USD", 30, N, "Active"),
    ("CTR-1028", "CUST-025", "2026-09-01", N, "Monthly", "Arrears", N, "EUR", 30, 0.05, "Active", "PO-VH-2026-118"),
    ("CTR-1029", "CUST-026", "2026-10-01", N, "Monthly", "Arrears", N, "EUR", 30, N, "Active"),
]

R, O = "Recurring", "One-Time"
# Contract ID, Product, Description, Quantity, Unit Price, Start, End, Charge Type (IDs numbered in order)
SUBSCRIPTIONS = [
    ("CTR-1001", "Platform Pro", "Platform Pro seats", 25, 39.90, N, N, R),
    ("CTR-1001", "Analytics Add-on", "Advanced analytics module", 1, 249.00, N, N, N),
    ("CTR-1001", "Onboarding Package", "Guided onboarding (one-time)", 1, 1500.00, "2026-06-01", N, O),
    ("CTR-1002", "Platform Team", "Platform Team seats", 12, 29.50, N, N, R),
    ("CTR-1002", "SSO Add-on", "Single sign-on (SAML)", 1, 99.00, "2026-08-18", N, R),
    ("CTR-1003", "Managed Hosting", "Dedicated managed hosting", 1, 1850.00, N, N, R),
    ("CTR-1003", "Priority Support", "24/7 priority support", 1, 420.00, N, "2026-06-15", R),
    ("CTR-1004", "Platform Pro", "Platform Pro seats", 8, 39.90, N, N, R),
    ("CTR-1004", "Implementation Services", "Data migration and setup (one-time)", 1, 2400.00, "2026-08-31", N, O),
    ("CTR-1005", "Platform Enterprise", "Platform Enterprise seats", 150, 32.75, N, N, R),
    ("CTR-1005", "Priority Support", "24/7 priority support", 1, 650.00, N, N, R),
    ("CTR-1006", "Platform Enterprise", "Platform Enterprise seats (3-year term)", 40, 28.00, N, N, R),
    ("CTR-1006", "Data Archive License", "Long-term data archive", 1, 310.00, N, N, R),
    ("CTR-1007", "Platform Team", "Platform Team seats", 6, 29.50, N, N, R),
    ("CTR-1007", "Analytics Add-on", "Advanced analytics module", 1, 249.00, "2026-05-10", N, R),
    ("CTR-1008", "Platform Team", "Platform Team seats", 10, 29.50, N, N, R),
    ("CTR-1008", "SMS Notifications", "Outbound SMS credits per month", 20000, 0.0125, N, N, R),
    ("CTR-1009", "Managed Hosting", "Managed hosting (EU region)", 1, 1975.00, N, N, R),
    ("CTR-1009", "Platform Pro", "Platform Pro seats", 15, 39.90, N, "2026-09-14", R),
    ("CTR-1009", "Platform Pro", "Platform Pro seats (reduced)", 10, 39.90, "2026-09-15", N, R),
    ("CTR-1010", "Platform Team", "Platform Team seats", 5, 29.50, N, N, R),
    ("CTR-1011", "Platform Pro", "Platform Pro seats", 40, 39.90, N, N, R),
    ("CTR-1011", "Analytics Add-on", "Advanced analytics module", 1, 249.00, N, N, R),
    ("CTR-1011", "Onboarding Package", "Guided onboarding (one-time)", 1, 2750.00, "2026-09-01", N, O),
    ("CTR-1012", "Data Warehouse Connector", "Snowflake / BigQuery connector", 1, 189.00, N, N, R),
    ("CTR-1013", "Platform Team", "Platform Team seats", 18, 24.95, N, N, R),
    ("CTR-1013", "Priority Support", "Business-hours priority support", 1, 350.00, "2026-08-01", N, R),
    ("CTR-1014", "Platform Pro", "Platform Pro seats", 20, 36.50, N, N, R),
    ("CTR-1014", "Implementation Services", "Implementation and training (one-time)", 1, 3200.00, "2026-08-01", N, O),
    ("CTR-1015", "Managed Hosting", "Dedicated managed hosting", 1, 1850.00, N, N, R),
    ("CTR-1015", "Platform Team", "Platform Team seats", 7, 29.50, N, N, R),
    ("CTR-1016", "Platform Pro", "Platform Pro seats", 30, 39.90, N, N, R),
    ("CTR-1016", "SSO Add-on", "Single sign-on (SAML)", 1, 99.00, N, N, R),
    ("CTR-1017", "Platform Team", "Platform Team seats", 4, 29.50, N, N, R),
    ("CTR-1017", "Onboarding Package", "Quick-start onboarding (one-time)", 1, 750.00, "2026-09-15", N, O),
    ("CTR-1018", "Platform Pro", "Platform Pro seats", 12, 39.90, N, N, R),
    ("CTR-1018", "Platform Pro", "Platform Pro seats (added mid-month)", 3, 39.90, "2026-10-14", N, R),
    ("CTR-1019", "Platform Team", "Platform Team seats", 9, 29.50, N, N, R),
    ("CTR-1019", "Analytics Add-on", "Advanced analytics module", 1, 229.00, N, "2026-08-20", R),
    ("CTR-1020", "Platform Pro", "Platform Pro seats", 16, 39.90, N, N, R),
    ("CTR-1020", "Priority Support", "24/7 priority support", 1, 420.00, N, N, R),
    ("CTR-1021", "Platform Enterprise", "Platform Enterprise seats", 60, 32.75, N, N, R),
    ("CTR-1021", "Implementation Services", "Telecom billing integration (one-time)", 1, 5000.00, "2026-08-15", N, O),
    ("CTR-1022", "Analytics Add-on", "Advanced analytics module", 1, 229.00, N, N, R),
    ("CTR-1022", "Data Warehouse Connector", "Snowflake / BigQuery connector", 1, 175.00, N, N, R),
    ("CTR-1023", "Platform Team", "Platform Team seats", 3, 29.50, N, N, R),
    ("CTR-1023", "SMS Notifications", "Outbound SMS credits per month", 8000, 0.0125, "2026-07-20", N, R),
    ("CTR-1024", "Platform Pro", "Platform Pro seats", 22, 37.00, N, N, R),
    ("CTR-1024", "Priority Support", "24/7 priority support", 1, 420.00, "2026-03-01", N, R),
    ("CTR-1025", "Platform Team", "Platform Team seats", 5, 29.50, N, N, R),
    ("CTR-1025", "Onboarding Package", "Quick-start onboarding (one-time)", 1, 750.00, "2026-10-12", N, O),
    ("CTR-1026", "Platform Pro", "Platform Pro seats", 10, 39.90, N, N, R),
    ("CTR-1026", "Managed Hosting", "Managed hosting (APAC region)", 1, 1250.00, N, N, R),
    ("CTR-1027", "Platform Team", "Platform Team seats", 10, 29.50, N, N, R),
    ("CTR-1028", "Platform Pro", "Platform Pro seats", 14, 36.50, N, N, R),
    ("CTR-1028", "Managed Hosting", "Managed hosting (EU region)", 1, 1975.00, N, N, R),
    ("CTR-1029", "Platform Team", "Platform Team seats", 8, 29.50, N, N, R),
]

# ---------------------------------------------------------------- German and French customers
# Invoices in the customer's language (Customers: Language): German and French businesses, with VAT IDs
# (fictitious, check digits valid), under reverse charge. Billed last, after every row
# above, so the other invoices keep their numbers; not metered, so the Usage sheet stays as it is.
LANGUAGE_CUSTOMERS = [  # as CUSTOMERS, then Language
    ("CUST-DE-1", "Falkenried Maschinenbau GmbH", "buchhaltung.falkenried@example.de", "Hammer Landstraße 27",
     "Hamburg", "20537", "Germany", 0.19, "DE 816 342 758", "AE", N, "de_DE"),
    ("CUST-FR-1", "Éditions Vauclair SARL", "comptabilite.vauclair@example.fr", "8 quai Saint-Vincent",
     "Lyon", "69001", "France", 0.20, "FR 17 482739158", "AE", N, "fr_FR"),
]
LANGUAGE_CONTRACTS = [
    ("CTR-DE-1", "CUST-DE-1", "2026-10-01", N, "Monthly", "Arrears", N, "EUR", 14, N, "Active"),
    ("CTR-FR-1", "CUST-FR-1", "2026-10-01", N, "Monthly", "Arrears", N, "EUR", 30, 0.10, "Active"),
]
LANGUAGE_SUBSCRIPTIONS = [  # with their IDs, as the Subscriptions sheet has them
    ("SUB-DE-1", "CTR-DE-1", "Platform Pro", "Platform Pro seats", 40, 36.50, N, N, R),
    ("SUB-DE-2", "CTR-DE-1", "Priority Support", "24/7 priority support", 1, 420.00, N, N, R),
    ("SUB-FR-1", "CTR-FR-1", "Platform Team", "Platform Team seats", 45, 29.50, N, N, R),
    ("SUB-FR-2", "CTR-FR-1", "SSO Add-on", "Single sign-on (SAML)", 1, 99.00, "2026-10-15", N, R),
]
# ---------------------------------------------------------------- end of the German and French customers

# A German public body on XRechnung, addressed by its Leitweg-ID (Buyer Reference and Electronic Address,
# scheme 0204). Billed after every row above, so the other invoices keep their numbers.
EINVOICE_CUSTOMERS = [  # as CUSTOMERS, then Language, E-Invoice, Buyer Reference, Electronic Address and its scheme
    ("CUST-DE-2", "Stadt Lindenau, Amt für Informationstechnik", "e-rechnung.lindenau@example.de", "Rathausplatz 1",
     "Lindenau", "04178", "Germany", 0.19, N, N, N, "de_DE", "XRechnung", "04011000-1234512345-06",
     "04011000-1234512345-06", "0204"),
]
EINVOICE_CONTRACTS = [("CTR-XR-1", "CUST-DE-2", "2026-10-01", N, "Monthly", "Arrears", N, "EUR", 30, N, "Active")]
EINVOICE_SUBSCRIPTIONS = [
    ("SUB-XR-1", "CTR-XR-1", "Platform Pro", "Platform Pro seats (public sector)", 20, 34.90, N, N, R),
]

# Metered contracts: contract -> (kinds of usage it reports, support rate per hour in its currency)
METERED = {"CTR-1001": ("api storage support", 145.00), "CTR-1002": ("api storage", 135.00),
           "CTR-1008": ("support", 145.00), "CTR-1013": ("api support", 115.00), "CTR-1014": ("api storage", 135.00),
           "CTR-1019": ("api support", 135.00), "CTR-1021": ("api storage support", 145.00), "CTR-1026": ("api", 145.00)}
TOPICS = ["SSO configuration", "Data import assistance", "Report design session",
          "Incident follow-up", "Admin training", "API integration review"]
# Reported late: dated inside a cycle that an earlier run has already invoiced.
LATE_USAGE = [
    ("CTR-1001", "2026-07-29", "Support Hours", "Support hours - late-reported: Admin training", 1.5, 145.00),
    ("CTR-1019", "2026-08-12", "API Calls", "API calls - late-reported gateway batch", 48250, 0.0008),
    ("CTR-1008", "2026-07-03", "Support Hours", "Support hours - late-reported: Incident follow-up", 2.25, 145.00),
]


def usage_rows() -> list[tuple]:
    """Weekly API-call batches, a month-end storage snapshot and a few support sessions."""
    rng = random.Random(20261102)
    starts = {c[0]: date.fromisoformat(c[2]) for c in CONTRACTS}
    ends = {c[0]: c[3] and date.fromisoformat(c[3]) for c in CONTRACTS}
    rows = []
    for ctr, (kinds, support_rate) in METERED.items():
        for month in range(6, 11):
            last = calendar.monthrange(2026, month)[1]
            entries = []
            if "api" in kinds:
                entries += [(day, "API Calls", "API calls (REST, metered)", rng.randrange(20_000, 250_000), 0.0008)
                            for day in (4, 11, 18, 25)]
            if "storage" in kinds:
                gb = round(rng.uniform(80, 900), 1)
                entries.append((last, "Storage", "Object storage, GB-month", gb, 0.12))
            if "support" in kinds:
                for day in sorted(rng.sample(range(1, 29), rng.randint(1, 3))):
                    hours = rng.choice([0.5, 1, 1.5, 2, 2.5, 3, 4])
                    entries.append((day, "Support Hours", f"Support hours - {rng.choice(TOPICS)}", hours, support_rate))
            for day, *rest in entries:
                when = date(2026, month, day)
                if when >= starts[ctr] and (not ends[ctr] or when <= ends[ctr]):
                    rows.append((ctr, when, *rest))
    rows.sort(key=lambda r: (r[1], r[0]))
    rows += [(c, date.fromisoformat(d), *rest) for c, d, *rest in LATE_USAGE]
    return [(f"USG-{i:05d}", *r) for i, r in enumerate(rows, 1)]


DATE, PCT, MONEY, PRICE, INT = "yyyy-mm-dd", "0.0%", "#,##0.00", "#,##0.00##", "0"
SHEETS = {  # sheet -> [(header, number format or None)]
    "Customers": [("Customer ID", N), ("Name", N), ("Email", N), ("Address", N), ("City", N),
                  ("Postal Code", N), ("Country", N), ("Tax Rate", PCT), ("VAT ID", N), ("Tax Category", N),
                  ("Tax Exemption Reason", N), ("Language", N), ("E-Invoice", N), ("Buyer Reference", N),
                  ("Electronic Address", N), ("Electronic Address Scheme", N), ("State", N)],
    "Contracts": [("Contract ID", N), ("Customer ID", N), ("Start Date", DATE), ("End Date", DATE),
                  ("Billing Frequency", N), ("Billing Policy", N), ("Billing Offset (Days)", INT),
                  ("Currency", N), ("Payment Terms (Days)", INT), ("Discount", PCT), ("Status", N),
                  ("Purchase Order", N), ("Partner Center Customer ID", N), ("Usage Markup", PCT),
                  ("Licence Markup", PCT)],
    "Subscriptions": [("Subscription ID", N), ("Contract ID", N), ("Product", N), ("Description", N),
                      ("Quantity", N), ("Unit Price", PRICE), ("Start Date", DATE), ("End Date", DATE),
                      ("Charge Type", N)],
    "Usage": [("Usage ID", N), ("Contract ID", N), ("Date", DATE), ("Product", N), ("Description", N),
              ("Quantity", N), ("Unit Price", PRICE)],
    "Price List": [("Sku ID", N), ("Unit Price", PRICE), ("Currency", N), ("Contract ID", N)],
    "Settings": [("Key", N), ("Value", N)],
}


def write_sheet(ws, columns, rows) -> None:
    ws.append([h for h, _ in columns])
    for row in rows:
        ws.append([date.fromisoformat(v) if fmt == DATE and isinstance(v, str) else v
                   for v, (_, fmt) in zip(row, columns)])
    widths = [len(h) for h, _ in columns]
    for r in ws.iter_rows(min_row=2):
        for i, cell in enumerate(r):
            fmt = columns[i][1]
            if fmt:
                cell.number_format = fmt
            if isinstance(cell.value, str) and "\n" in cell.value:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
            text = cell.value.isoformat()[:10] if fmt == DATE and cell.value else str(cell.value or "")
            widths[i] = max(widths[i], *(len(line) for line in text.split("\n")))
    for cell in ws[1]:
        cell.font = Font(bold=True)
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
    for i, w in enumerate(widths):
        ws.column_dimensions[ws.cell(1, i + 1).column_letter].width = min(w + 3, 60)
    ws.freeze_panes = "A2"
    ws.auto_filter.ref = ws.dimensions


def partner_center_contracts() -> list[tuple]:
    """The Contracts rows, those billing Azure usage with their tenant and markup; writes the usage file."""
    tenants = partner_center_files.generate(USAGE_FILE, 20261102, len(AZURE), 300, date(2026, 10, 1),
                                            tuple(currency for currency, _ in AZURE.values()))
    by_contract = dict(zip(AZURE, tenants))
    rows = []
    for c in CONTRACTS:
        if c[0] in AZURE:  # after its Purchase Order, blank or not
            c = (*c[:11], c[11] if len(c) > 11 else N, by_contract[c[0]].customer_id, AZURE[c[0]][1],
                 LICENCE_MARKUP[c[0]])
        rows.append(c)
    return rows


def licence_history() -> list[dict[str, str]]:
    """Every NCE invoice reconciliation row of the usage file's two tenants (the AZURE contracts') from August to
    October 2026: licences bought from August 2026, all within Microsoft's rules:
    seats added and some taken back 3 days later, a Copilot cancelled 4 days after its purchase, a monthly term
    renewing at a new price, two Business Basic subscriptions for one tenant, the Azure plans' rows."""
    currencies = tuple(currency for currency, _ in AZURE.values())
    # the usage file's tenants (partner_center_contracts: seed 20261102), without writing that file again
    a, b = partner_center_files.tenants(random.Random("20261102/tenants"), len(AZURE), currencies)
    rng = random.Random("20261102/licences")
    products = {p.name: p for p in licences.PRODUCTS}

    def bought(tenant, name: str, term_months: int, billing: str, start: date, seats: int) -> licences.Licence:
        p = products[name]
        return licences.Licence(tenant, licences.guid(rng), p.product_id, p.sku_id, p.name, p.name,
                                term_months, billing, licences.unit_price(p.monthly, term_months, billing), start,
                                seats)

    Event = licences.Event
    plans = [
        (bought(a, "Microsoft 365 Business Standard", 12, "Monthly", date(2026, 8, 14), 12),
         [Event("add", date(2026, 10, 6), 15), Event("remove", date(2026, 10, 9), 14)]),
        (bought(a, "Microsoft 365 Business Basic", 1, "Monthly", date(2026, 8, 3), 5),
         [Event("renew_price", date(2026, 9, 20), amount=Decimal("7.56"))]),  # from the October renewal
        (bought(a, "Microsoft 365 Business Basic", 12, "Monthly", date(2026, 9, 10), 3), []),
        (bought(b, "Microsoft 365 E3", 12, "Annual", date(2026, 8, 21), 20), []),
        (bought(b, "Microsoft 365 Copilot", 12, "Monthly", date(2026, 10, 2), 10),
         [Event("cancel", date(2026, 10, 6))]),
        (bought(b, "Exchange Online (Plan 1)", 1, "Monthly", date(2026, 9, 1), 8), []),
    ]
    until = date(2026, 10, 31)
    rows = [r for licence, events in plans for r in licences.subscription_rows(licence, events, until, rng)]
    rows += [r for t in (a, b) for r in licences.azure_rows(rng, t, date(2026, 8, 1), until)]
    return licences.in_charge_order(rows)


def partner_center_licences(out: Path = LICENCE_FILE) -> Path:
    """Write the licence file: the rows of Microsoft's October 2026 invoice (the contracts start on 1 October)."""
    october = licences.invoice_number(date(2026, 10, 1))
    return licences.write(out, [r for r in licence_history() if r["InvoiceNumber"] == october])


def build() -> None:
    subs = ([(f"SUB-{i:04d}", *s) for i, s in enumerate(SUBSCRIPTIONS, 1)] + LANGUAGE_SUBSCRIPTIONS
            + EINVOICE_SUBSCRIPTIONS)
    width = len(SHEETS["Customers"]) - 1  # every column but State, the last
    customers = [(*c, *(N,) * (width - len(c)), STATES.get(c[0])) for c in
                 CUSTOMERS + LANGUAGE_CUSTOMERS + EINVOICE_CUSTOMERS]
    data = {"Customers": customers,
            "Contracts": partner_center_contracts() + LANGUAGE_CONTRACTS + EINVOICE_CONTRACTS, "Subscriptions": subs,
            "Usage": usage_rows(), "Price List": PRICE_LIST, "Settings": SETTINGS}
    partner_center_licences()
    wb = Workbook()
    wb.remove(wb.active)
    for name, columns in SHEETS.items():
        write_sheet(wb.create_sheet(name), columns, data[name])
    OUT.parent.mkdir(parents=True, exist_ok=True)
    wb.save(OUT)
    pin_timestamps(OUT)


def pin_timestamps(path: Path) -> None:
    """openpyxl stamps the save time into docProps and the zip entries; pin both so reruns are byte-identical."""
    with zipfile.ZipFile(path) as z:
        parts = [(i.filename, z.read(i)) for i in z.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts:
            if name == "docProps/core.xml":
                data = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2026-01-01T00:00:00Z", data)
            z.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)


def shift(start: date, months: int) -> date:
    """The anchor day of start's month + months, clamped to that month's end."""
    y, m = divmod(start.month - 1 + months, 12)
    return date(start.year + y, m + 1, min(start.day, calendar.monthrange(start.year + y, m + 1)[1]))


def expected_invoices(row: dict) -> int:
    """Cycles of one contract scheduled on or before AS_OF (a rough cross-check only)."""
    if (row["Status"] or "Active") != "Active":
        return 0
    months = {"Monthly": 1, "Quarterly": 3, "Semi-Annual": 6, "Annual": 12, "Triennial": 36}[row["Billing Frequency"]]
    start, end = row["Start Date"].date(), row["End Date"] and row["End Date"].date()
    offset = timedelta(days=1 if row["Billing Offset (Days)"] is None else row["Billing Offset (Days)"])
    count, k = 0, 0
    while (cs := shift(start, k * months)) and not (end and cs > end):
        ce = min(shift(start, (k + 1) * months) - timedelta(days=1), end or date.max)
        due = (cs if row["Billing Policy"] == "Advance" else ce + timedelta(days=1)) + offset
        if due > AS_OF:
            break
        count, k = count + 1, k + 1
    return count


def summarize() -> None:
    wb = load_workbook(OUT)
    sheets = {ws.title: [dict(zip([c.value for c in ws[1]], [c.value for c in r])) for r in ws.iter_rows(min_row=2)]
              for ws in wb.worksheets}
    print(f"Wrote {OUT}")
    for name, rows in sheets.items():
        print(f"  {name:<14} {len(rows):>4} rows")
    contracts = {c["Contract ID"]: c for c in sheets["Contracts"]}
    for label, sheet, col, blank in [
            ("frequencies", "Contracts", "Billing Frequency", ""), ("policies", "Contracts", "Billing Policy", "Arrears"),
            ("offsets", "Contracts", "Billing Offset (Days)", "1"), ("currencies", "Contracts", "Currency", "USD"),
            ("statuses", "Contracts", "Status", "Active"), ("charge types", "Subscriptions", "Charge Type", "Recurring"),
            ("usage rows", "Usage", "Contract ID", "")]:
        counts = Counter(r[col] if r[col] is not None else f"(blank={blank})" for r in sheets[sheet])
        print(f"  {label + ':':<14}", dict(counts))
    dates = [u["Date"].date() for u in sheets["Usage"]]
    print(f"  {'usage dates:':<14} {min(dates)} .. {max(dates)}")
    customers = {c["Customer ID"] for c in sheets["Customers"]}
    assert all(c["Customer ID"] in customers for c in contracts.values())
    assert all(s["Contract ID"] in contracts for s in sheets["Subscriptions"])
    for u in sheets["Usage"]:
        c = contracts[u["Contract ID"]]
        assert c["Start Date"] <= u["Date"] and (c["End Date"] is None or u["Date"] <= c["End Date"]), u
    per = {cid: expected_invoices(c) for cid, c in contracts.items()}
    print(f"  invoices expected as of {AS_OF}: {sum(per.values())}  {per}")


if __name__ == "__main__":
    build()
    summarize()
