"""Partner Center's licence file (inputs/licences.py), read as licence charges.

Load stage (`read`): every CSV of the input whose header is this file's, read with pandas as text (money never
passes through a float); a file that cannot be read is reported with its line (BB014, BB015), never raised.
Each row's usage ID is a hash of its identity (invoice, subscription, charge type, charge period, order,
reference, quantity and amounts) and of how many rows before it in its file share that identity, so reading
a file again, or a later file repeating its rows, gives the same IDs: the ledger bills each once.

Validate stage (`charges`): rows of Azure plans are skipped (the daily rated usage file bills Azure); the
rows of tenants named by a contract's Partner Center Customer ID become licence usage rows of that contract,
priced by engine/licences.py; the rest is reported (BB170-BB174, docs/errors.md).
"""
from __future__ import annotations

import csv
import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from billing_batch.engine import licences as pricing
from billing_batch.errors import Problem, problem
from billing_batch.inputs import licences
from billing_batch.inputs.partner_center import cell, sheet_of, tenant_contracts
from billing_batch.inputs.partner_center_rows import Unreadable, damage, decimal_of, layout, per_value
from billing_batch.inputs.licences import LicenceFile, Licences, Skipped
from billing_batch.model import LICENCE_ID, Contract, LicenceCharge, Price, Source, Usage
from billing_batch.money import round_money

READ = ("CustomerId", "CustomerName", "InvoiceNumber", "OrderId", "OrderDate", "ProductId", "SkuId", "SkuName",
        "ProductName", "ChargeType", "UnitPrice", "Subtotal", "Currency", "SubscriptionDescription",
        "SubscriptionId", "ChargeStartDate", "ChargeEndDate", "TermAndBillingCycle", "EffectiveUnitPrice",
        "BillableQuantity", "BillingFrequency", "SubscriptionStartDate", "SubscriptionEndDate", "ReferenceId")
IDENTITY = ("InvoiceNumber", "SubscriptionId", "ChargeType", "ChargeStartDate", "ChargeEndDate", "OrderId",
            "ReferenceId", "BillableQuantity", "EffectiveUnitPrice", "Subtotal")
DATES = ("ChargeStartDate", "ChargeEndDate", "SubscriptionStartDate", "SubscriptionEndDate", "OrderDate")
NUMBERS = ("UnitPrice", "Subtotal", "BillableQuantity")
REQUIRED_DATES = DATES[:4]


def read(paths: Iterable[Path]) -> LicenceFile:
    """Read every licence file among paths, in the order given; the others are the usage reader's."""
    read_files = LicenceFile()
    frames = []
    for path in paths:
        try:
            encoding, delimiter, header = layout(path)
        except (Unreadable, OSError):  # reported by the usage reader, which looks at every CSV
            continue
        if not licences.looks_like_licence_file(header):
            continue
        read_files.files.append(path.name)
        if not licences.is_licence_file(header):
            missing = [c for c in licences.COLUMNS if c not in header and c not in licences.OPTIONAL]
            read_files.problems += [problem(
                "BB170", Source(path.name, sheet_of(path.name), 1, c), f"The Partner Center licence file "
                f"{path.name} has no {c} column.") for c in missing]
            continue
        try:
            frame = pd.read_csv(path, engine="pyarrow", sep=delimiter, usecols=list(READ), dtype=str,
                                keep_default_na=False, encoding=encoding)
            intact = not any(frame[c].str.contains("\0", regex=False).any() for c in READ)
        except (ValueError, OSError, csv.Error):
            intact = False
        if not intact:
            read_files.problems.append(damage(path, encoding, delimiter, header))
            continue
        read_files.headers[path.name] = header
        frame["file"] = path.name
        frame["row"] = np.arange(2, len(frame) + 2, dtype=np.int32)
        frames.append(frame)
    if frames:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for column in (*READ, "file"):
            frame[column] = frame[column].astype("category")
        frame["usage_id"] = _ids(frame)
        read_files.frame = frame
    return read_files


def _ids(frame: pd.DataFrame) -> list[str]:
    """The row's identity with how many rows before it in its file share it: IDs compared without case."""
    parts = [per_value(frame[c], lambda t: t.strip().lower()).tolist() for c in IDENTITY]
    keys = ["\x1f".join(t) for t in zip(*parts)]
    nth = pd.DataFrame({"file": frame["file"].astype(str), "key": keys}).groupby(["file", "key"]).cumcount()
    blake = hashlib.blake2b
    return [LICENCE_ID + blake(f"{k}\x1f{n}".encode(), digest_size=8).hexdigest() for k, n in zip(keys, nth.tolist())]


def _date(text: str) -> date | None:
    """ISO (2026-10-01, 2026-10-01T00:00:00) or Partner Center's US form (10/1/2026, 10/1/2026 12:00:00 AM)."""
    day = text.strip().split("T")[0].split(" ")[0]
    try:
        if "/" in day:
            month, dd, year = (int(p) for p in day.split("/"))
            return date(year, month, dd)
        return date.fromisoformat(day)
    except ValueError:
        return None


def charges(read_files: LicenceFile, contracts: dict[str, Contract], prices: tuple[Price, ...],
            problems: list[Problem]) -> Licences:
    """The licence charges of each contract, as its usage rows; problems for the rest: a tenant on no contract
    (BB172), a cell that is not a number or date (BB171), a currency other than the contract's (BB173)."""
    found = Licences()
    frame = read_files.frame
    if frame is None or frame.empty:
        return found
    later = frame.duplicated("usage_id", keep="last").to_numpy()  # a later file repeats an earlier one
    if later.any():
        frame = frame[~later].reset_index(drop=True)
    values = {c: per_value(frame[c], _date) for c in DATES}
    values |= {c: per_value(frame[c], decimal_of) for c in NUMBERS}
    texts = {c: per_value(frame[c], str.strip) for c in READ if c not in DATES and c not in NUMBERS}
    by_tenant = tenant_contracts(contracts)
    azure = (texts["ProductId"] == licences.AZURE_PLAN_PRODUCT) | np.array(
        [n.casefold().startswith("azure plan") for n in texts["ProductName"].tolist()])
    files, rows, ids = frame["file"].astype(str).tolist(), frame["row"].tolist(), frame["usage_id"].tolist()
    skipped: dict[tuple[str, str, bool], list[int]] = defaultdict(list)
    faults: dict[tuple[str, str], list[int]] = defaultdict(list)  # (contract, column) -> rows
    by_contract: dict[str, list[Usage]] = defaultdict(list)
    price: dict[tuple[str, str, str], Decimal | None] = {}  # (contract, SKU, charge type) -> price per month
    where = {f: cell(f, None, "SubscriptionId", read_files.headers.get(f, licences.COLUMNS)) for f in set(files)}
    for i in range(len(frame)):
        tenant = texts["CustomerId"][i]
        cost, currency = values["Subtotal"][i], texts["Currency"][i].upper()
        month = values["ChargeStartDate"][i]
        if cost is not None and month is not None and not azure[i]:
            key = (tenant.lower(), month.isoformat()[:7], currency)
            found.by_month[key] = found.by_month.get(key, Decimal(0)) + cost
        contract = by_tenant.get(tenant.lower())
        if azure[i] or contract is None:
            skipped[(tenant, currency, bool(azure[i]))].append(i)
            continue
        bad = [c for c in (*REQUIRED_DATES, *NUMBERS) if values[c][i] is None]
        if bad:
            faults[(contract.contract_id, bad[0])].append(i)
            continue
        if currency != contract.currency:
            faults[(contract.contract_id, "Currency")].append(i)
            continue
        sku_id, charge_type = f"{texts['ProductId'][i]}:{texts['SkuId'][i]}", texts["ChargeType"][i]
        key = (contract.contract_id, sku_id, charge_type)
        if key not in price:
            price[key] = pricing.price_of(sku_id, charge_type, contract, prices)
        charge = LicenceCharge(
            tenant=tenant, subscription_id=texts["SubscriptionId"][i], sku_id=sku_id,
            sku_name=texts["SkuName"][i] or texts["ProductName"][i], charge_type=charge_type,
            start=values["ChargeStartDate"][i], end=values["ChargeEndDate"][i],
            quantity=abs(values["BillableQuantity"][i]), unit_price=values["UnitPrice"][i], cost=cost,
            currency=currency, term=texts["TermAndBillingCycle"][i], billing_frequency=texts["BillingFrequency"][i],
            term_start=values["SubscriptionStartDate"][i], term_end=values["SubscriptionEndDate"][i],
            order_date=values["OrderDate"][i], invoice_number=texts["InvoiceNumber"][i],
            order_id=texts["OrderId"][i], reference_id=texts["ReferenceId"][i], price_per_month=price[key])
        w = where[files[i]]
        source = Source(w.file, w.sheet, rows[i], w.column, w.letter)
        by_contract[contract.contract_id].append(pricing.charge_usage(charge, ids[i], contract, source))
    for (tenant, currency, is_azure), at in sorted(skipped.items()):
        total = sum((values["Subtotal"][i] or Decimal(0) for i in at), Decimal(0))
        first = at[0]
        where = cell(files[first], rows[first], "CustomerId", read_files.headers.get(files[first], licences.COLUMNS))
        kept = Skipped(tenant, texts["CustomerName"][first], len(at), total, currency, where)
        (found.azure if is_azure else found.unmapped).append(kept)
        if not is_azure:
            name = f" ({kept.name})" if kept.name else ""
            problems.append(problem(
                "BB172", where, f"Tenant {tenant or '(blank)'}{name} has {len(at):,} licence charge(s) costing "
                f"{round_money(total, currency or 'USD'):,} {currency} in the Partner Center licence file, but no "
                "contract's Partner Center Customer ID names it: they are not billed.", value=tenant))
    for (contract_id, column), at in sorted(faults.items()):
        first = at[0]
        contract = contracts[contract_id]
        where = cell(files[first], rows[first], column, read_files.headers.get(files[first], licences.COLUMNS))
        more = f" ({len(at) - 1:,} more row(s) of this tenant alike)" if len(at) > 1 else ""
        typed = str(frame[column].iloc[first]) if column in frame else ""
        if column == "Currency":
            problems.append(problem(
                "BB173", where, f"The licence charge is in {typed or '(blank)'}, but contract {contract_id}, which "
                f"bills tenant {contract.partner_center_customer_id}, is in {contract.currency}{more}.",
                value=typed, contract_id=contract_id, contract=contract_id))
        else:
            kind = "date" if column in DATES else "number"
            problems.append(problem("BB171", where, f"The {column} {typed or '(blank)'} is not a {kind}{more}.",
                                    value=typed, contract_id=contract_id))
    found.charges = {cid: sorted(rows_of, key=lambda u: (u.date, u.usage_id)) for cid, rows_of in by_contract.items()}
    return found


def with_hand_over(charges_of: dict[str, list[Usage]], notes: dict[str, str]) -> dict[str, list[Usage]]:
    """The charges, the first of each subscription a Subscriptions row named marked with that row's ID: its
    line says once that the row stopped billing (engine/licences.hand_over)."""
    if not notes:
        return charges_of
    return {cid: [replace(u, extra=(*u.extra, ("Replaces", notes[u.usage_id]))) if u.usage_id in notes else u
                  for u in rows] for cid, rows in charges_of.items()}
