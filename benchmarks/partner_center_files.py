"""Seeded Partner Center daily rated usage reconciliation files, for the tests, the sample and size P.

    python -m benchmarks.partner_center_files --out usage.csv [--tenants 500] [--rows 1000000] [--seed N]

Every documented column, in Partner Center's order. Each tenant (a CSP customer) has one to three Azure
subscriptions (entitlements), each with resource groups holding resources (virtual machines and their
disks, storage accounts, public IPs, SQL databases, App Service plans, Log Analytics workspaces, key vaults)
that meter every day of the month: the meter IDs, categories, names, units and list prices are Azure's.
EffectiveUnitPrice is the list price less the partner-earned credit; BillingPreTaxTotal is Quantity x
EffectiveUnitPrice x PCToBCExchangeRate truncated to the cent, as Partner Center does. A tenant billed in
EUR or GBP has the matching exchange rate. `revise` makes the later file that repeats rows, some changed.
"""
from __future__ import annotations

import argparse
import csv
import random
import sys
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from billing_batch.inputs.partner_center import COLUMNS  # the documented columns, in their order

CENT = Decimal("0.01")
PARTNER = ("3c0f5a4e-8f1b-4d2e-9a55-0b7d6c1e2f10", "Lumenfield Cloud Services", "6081234")
# (category, sub-category, name, unit, list price USD, consumed service, provider/type, daily quantity range)
METERS = {
    "vm": [
        ("Virtual Machines", "Dv3/DSv3 Series", "D2 v3/D2s v3", "1 Hour", "0.096", "Microsoft.Compute",
         "Microsoft.Compute/virtualMachines", (6, 24)),
        ("Virtual Machines", "Dv3/DSv3 Series", "D4 v3/D4s v3", "1 Hour", "0.192", "Microsoft.Compute",
         "Microsoft.Compute/virtualMachines", (6, 24)),
        ("Virtual Machines", "BS Series", "B2s", "1 Hour", "0.0416", "Microsoft.Compute",
         "Microsoft.Compute/virtualMachines", (24, 24)),
        ("Virtual Machines Licenses", "Windows Server", "2 vCPU VM License", "1 Hour", "0.046", "Microsoft.Compute",
         "Microsoft.Compute/virtualMachines", (6, 24)),
    ],
    "disk": [
        ("Storage", "Premium SSD Managed Disks", "P10 LRS Disk", "1/Month", "19.71", "Microsoft.Compute",
         "Microsoft.Compute/disks", (0.032258, 0.032258)),
        ("Storage", "Standard HDD Managed Disks", "S4 LRS Disk", "1/Month", "1.536", "Microsoft.Compute",
         "Microsoft.Compute/disks", (0.032258, 0.032258)),
    ],
    "storage": [
        ("Storage", "General Block Blob v2", "Hot LRS Data Stored", "1 GB/Month", "0.0184", "Microsoft.Storage",
         "Microsoft.Storage/storageAccounts", (0.5, 400)),
        ("Storage", "Tables", "LRS Data Stored", "1 GB/Month", "0.045", "Microsoft.Storage",
         "Microsoft.Storage/storageAccounts", (0.01, 20)),
        ("Storage", "General Block Blob v2", "Hot Read Operations", "10K", "0.0044", "Microsoft.Storage",
         "Microsoft.Storage/storageAccounts", (1, 900)),
        ("Bandwidth", "Rtn Preference: MGN", "Standard Data Transfer Out", "1 GB", "0.087", "Microsoft.Storage",
         "Microsoft.Storage/storageAccounts", (0.001, 60)),
    ],
    "ip": [
        ("Virtual Network", "IP Addresses", "Standard IPv4 Static Public IP", "1 Hour", "0.005", "Microsoft.Network",
         "Microsoft.Network/publicIPAddresses", (24, 24)),
        ("Bandwidth", "Inter-Region", "Intra Continent Data Transfer Out", "1 GB", "0.02", "Microsoft.Network",
         "Microsoft.Network/publicIPAddresses", (0.01, 80)),
    ],
    "sql": [
        ("SQL Database", "General Purpose - Compute Gen5", "vCore", "1 Hour", "0.2529", "Microsoft.Sql",
         "Microsoft.Sql/servers/databases", (24, 48)),
        ("SQL Database", "General Purpose - Storage", "Data Stored", "1 GB/Month", "0.115", "Microsoft.Sql",
         "Microsoft.Sql/servers/databases", (1, 8)),
    ],
    "app": [
        ("Azure App Service", "Premium v3 Plan", "P1 v3 App", "1 Hour", "0.2", "Microsoft.Web",
         "Microsoft.Web/serverfarms", (24, 24)),
    ],
    "logs": [
        ("Log Analytics", "Log Analytics", "Pay-as-you-go Data Ingestion", "1 GB", "2.76", "Microsoft.OperationalInsights",
         "Microsoft.OperationalInsights/workspaces", (0.05, 12)),
    ],
    "vault": [
        ("Key Vault", "Key Vault", "Operations", "10K", "0.03", "Microsoft.KeyVault", "Microsoft.KeyVault/vaults",
         (0.1, 40)),
    ],
}
KINDS = list(METERS)
REGIONS = [("US East", "eastus"), ("US West 2", "westus2"), ("EU West", "westeurope"), ("EU North", "northeurope"),
           ("UK South", "uksouth")]
GROUPS = ["rg-prod-web", "rg-prod-data", "rg-staging", "rg-shared-services", "rg-analytics", "rg-dev"]
ENVIRONMENTS = ["prod", "staging", "dev"]
# (country, billing currency, PCToBCExchangeRate from USD)
COUNTRIES = [("US", "USD", "1"), ("US", "USD", "1"), ("DE", "EUR", "0.9187"), ("NL", "EUR", "0.9187"),
             ("GB", "GBP", "0.7893")]
NAMES = ["Northwind", "Brightwave", "Harbor Pine", "Quarry Lane", "Meridian", "Ostara", "Cobalt", "Tidewater",
         "Redfern", "Kestrel", "Ashcombe", "Solterra", "Granite Peak", "Lakeshore", "Maple Ridge", "Coastal"]
TRADES = ["Analytics", "Media", "Consulting", "Logistics", "Health", "Retail", "Design", "Marine", "Energy", "Data"]


@dataclass(frozen=True)
class Tenant:
    customer_id: str
    name: str
    country: str
    currency: str
    rate: str  # PCToBCExchangeRate


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def tenants(rng: random.Random, count: int, currencies: tuple[str, ...] | None = None) -> list[Tenant]:
    """count tenants, in countries chosen at random; currencies: billing in these, in turn."""
    made = []
    for k in range(count):
        country, currency, rate = rng.choice(COUNTRIES) if not currencies else next(
            p for p in COUNTRIES if p[1] == currencies[k % len(currencies)])
        name = f"{rng.choice(NAMES)} {rng.choice(TRADES)} {k + 1}"
        made.append(Tenant(_guid(rng), name, country, currency, rate))
    return made


def _resources(rng: random.Random, tenant: Tenant) -> list[tuple]:
    """(entitlement, entitlement description, group, kind, name, region) for each of the tenant's resources."""
    found = []
    for e in range(rng.randint(1, 3)):
        entitlement = _guid(rng)
        description = ["Production", "Development", "Azure subscription 1"][e]
        for group in rng.sample(GROUPS, rng.randint(1, 3)):
            region = rng.choice(REGIONS)
            for kind in rng.sample(KINDS, rng.randint(2, 5)):
                for n in range(1, rng.randint(1, 3) + 1):
                    found.append((entitlement, description, group, kind, f"{kind}-{group[3:]}-{n:02d}", region))
    return found


def _meter_ids(rng: random.Random) -> dict[tuple, str]:
    return {meter: _guid(rng) for kind in KINDS for meter in METERS[kind]}


def rows(seed: int, tenant_list: list[Tenant], count: int, month: date = date(2026, 10, 1)):
    """About count rows (each resource meters every day of the month), tenant after tenant."""
    rng = random.Random(f"{seed}/partner-center")
    meter_ids = _meter_ids(random.Random(f"{seed}/meters"))
    days = ((month.replace(day=28) + timedelta(days=4)).replace(day=1) - month).days
    end = month + timedelta(days=days - 1)
    per_tenant = max(1, count // max(1, len(tenant_list)))
    invoice = f"G{rng.randint(10**8, 10**9 - 1)}"
    made = 0
    for t, tenant in enumerate(tenant_list):
        want = count - made if t == len(tenant_list) - 1 else per_tenant
        resources = _resources(rng, tenant)
        meters = [(r, m) for r in resources for m in METERS[r[3]]]
        # every meter of every resource, every day, until the tenant has its share of rows
        day_count = min(days, max(1, -(-want // len(meters))))
        for r, meter in meters:
            for d in range(day_count):
                if want <= 0:
                    break
                want -= 1
                made += 1
                yield _row(rng, tenant, r, meter, meter_ids[meter], month + timedelta(days=d), month, end, invoice)
        # short of rows (few resources): repeat the days with more resources, named on
        extra = 0
        while want > 0:
            extra += 1
            for r, meter in meters:
                if want <= 0:
                    break
                r2 = (*r[:4], f"{r[4]}-x{extra}", r[5])
                for d in range(days):
                    if want <= 0:
                        break
                    want -= 1
                    made += 1
                    yield _row(rng, tenant, r2, meter, meter_ids[meter], month + timedelta(days=d), month, end,
                               invoice)


def _row(rng, tenant: Tenant, resource, meter, meter_id: str, day: date, start: date, end: date, invoice: str):
    entitlement, entitlement_description, group, kind, name, (region, location) = resource
    category, sub_category, meter_name, unit, list_price, service, rtype, (qlo, qhi) = meter
    quantity = Decimal(str(round(rng.uniform(qlo, qhi), 6))) if qlo != qhi else Decimal(str(qlo))
    price = Decimal(list_price)
    credit = Decimal("0.15") if rtype.startswith(("Microsoft.Compute", "Microsoft.Sql", "Microsoft.Web")) else 0
    effective = (price * (1 - Decimal(credit))).normalize()
    rate = Decimal(tenant.rate)
    billing = (quantity * effective * rate).quantize(CENT, ROUND_DOWN)
    pricing = (quantity * effective).quantize(CENT, ROUND_DOWN)
    uri = f"/subscriptions/{entitlement}/resourceGroups/{group}/providers/{rtype}/{name}"
    env = group.split("-")[1] if group.split("-")[1] in ENVIRONMENTS else "prod"
    tags = f'{{"env":"{env}","costcenter":"cc-{100 + GROUPS.index(group)}"}}'
    iso = lambda d: f"{d.isoformat()}T00:00:00"  # noqa: E731
    return (
        PARTNER[0], PARTNER[1], tenant.customer_id, tenant.name,
        f"{tenant.name.split()[0].lower()}{tenant.name.split()[-1]}.onmicrosoft.com", tenant.country, PARTNER[2], "",
        invoice, "DZH318Z0BQ3Q", "0001", "DZH318Z0BQ3M", "Azure plan", "Azure plan", "Microsoft",
        "", "Azure plan", tenant.customer_id[:8] + "-azure-plan", iso(start), iso(end), iso(day), "",
        category, meter_id, sub_category, meter_name, region, unit, location, service, group, uri, "new",
        str(price), format(quantity, "f"), "1", format(billing, "f"), tenant.currency, format(pricing, "f"), "USD",
        "", "", tags, "", format(effective, "f"), tenant.rate, iso(start), entitlement, entitlement_description,
        str(int(credit * 100)), str(int(credit * 100)), "Partner Earned Credit Applied" if credit else "Credit Not Applied",
    )


def write(path: Path, rows_made) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows_made)
    return path


def revise(path: Path, out: Path, seed: int, share: float = 0.05, changed: int = 3) -> list[int]:
    """A later file repeating share of path's rows (every k-th), of which `changed` come back with another
    Quantity (and its totals): the revised rows. Returns the repeated rows' numbers (as in path) changed."""
    rng = random.Random(f"{seed}/revise")
    with path.open(newline="", encoding="utf-8") as f:
        original = list(csv.reader(f))
    header, body = original[0], original[1:]
    step = max(1, round(1 / share))
    picked = list(range(0, len(body), step))
    revised_at = set(rng.sample(picked, min(changed, len(picked))))
    q, e, r = (header.index(c) for c in ("Quantity", "EffectiveUnitPrice", "PCToBCExchangeRate"))
    b, p = header.index("BillingPreTaxTotal"), header.index("PricingPreTaxTotal")
    repeated = []
    for i in picked:
        row = list(body[i])
        if i in revised_at:
            quantity = (Decimal(row[q]) * Decimal("1.5") + 1).normalize()
            row[q] = format(quantity, "f")
            row[b] = format((quantity * Decimal(row[e]) * Decimal(row[r])).quantize(CENT, ROUND_DOWN), "f")
            row[p] = format((quantity * Decimal(row[e])).quantize(CENT, ROUND_DOWN), "f")
        repeated.append(row)
    write(out, repeated)
    return sorted(i + 2 for i in revised_at)


def generate(path: Path, seed: int, tenant_count: int, row_count: int, month: date = date(2026, 10, 1),
             currencies: tuple[str, ...] | None = None) -> list[Tenant]:
    tenant_list = tenants(random.Random(f"{seed}/tenants"), tenant_count, currencies)
    write(path, rows(seed, tenant_list, row_count, month))
    return tenant_list


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.partner_center_files", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--tenants", type=int, default=500)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=20261102)
    args = p.parse_args(argv)
    made = generate(args.out, args.seed, args.tenants, args.rows)
    print(f"{args.out}: {args.rows:,} rows for {len(made)} tenants")
    return 0


if __name__ == "__main__":
    sys.exit(main())
