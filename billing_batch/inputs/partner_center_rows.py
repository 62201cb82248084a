"""Partner Center's daily rated usage file, read as usage.

Load stage (`read`): every CSV in the input folder whose header is that file's, read with pandas (the
pyarrow engine; docs/performance.md has the measurement), only the columns the batch uses, every value as
text (money never passes through a float), repeated text as categories. A row's usage ID is a hash of its
identity, so the same row in a later file is the same usage row, billed once (the ledger's usage_rows).
A file that is not text, not UTF-8 (or Excel's UTF-16 "Unicode text") or has a damaged line is reported
with its line (BB014, BB015), never raised.

Validate stage (`usage`): the rows of tenants named by a contract's Partner Center Customer ID become the
same `Usage` values the Usage sheet gives, priced at cost (EffectiveUnitPrice x PCToBCExchangeRate) plus
the contract's Usage Markup, in exact Decimal; the rest is reported (BB150-BB155, docs/errors.md).
`reconcile` checks the rows against Partner Center's own totals (`Mismatch`); documents/usage_reconciliation.py
writes the mismatches' rows, engine/revisions.py finds rows revised after billing.

Over 400 lines: one file format read and validated, its per-category helpers shared, and the line-by-line
look at a file pandas could not read.
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import numpy as np
import pandas as pd

from billing_batch.errors import Problem, problem
from billing_batch.inputs import licences, partner_center
from billing_batch.inputs.partner_center import (
    COLUMNS,
    GROUP_COLUMNS,
    IDENTITY,
    NUMBER,
    READ,
    RECOGNISED,
    REPEATING,
    Imported,
    Mismatch,
    UsageFile,
    cell,
    description,
    sheet_of,
    tenant_contracts,
)
from billing_batch.model import PARTNER_CENTER_ID, Contract, Source, Usage
from billing_batch.money import round_money


def read(paths: Iterable[Path], engine: str | None = None) -> UsageFile:
    """Read every file, in the order given; later files repeat or revise earlier ones: the last row of an
    identity wins. A file with documented columns missing is reported (BB150) and not read; so is one that
    cannot be read as text (BB014) or has a damaged line (BB015), whatever pandas or a decoder raised."""
    read_files = UsageFile()
    frames = []
    for path in paths:
        read_files.files.append(path.name)
        try:
            encoding, delimiter, header = layout(path)
        except Unreadable as exc:
            read_files.problems.append(exc.problem)
            continue
        except OSError as exc:  # Excel on Windows locks a file it has open
            read_files.problems.append(problem("BB014", Source(path.name, ""), f"{path.name} could not be opened "
                                               f"({exc.strerror or exc}); if it is open in Excel, close it."))
            continue
        if licences.looks_like_licence_file(header):  # licence_rows.py reads it
            read_files.files.pop()
            continue
        missing = [c for c in COLUMNS if c not in header]
        if len(COLUMNS) - len(missing) < RECOGNISED:
            typed = ", ".join(h for h in header[:8] if h) or "nothing"
            read_files.problems.append(problem(
                "BB150", Source(path.name, sheet_of(path.name), 1), f"{path.name} is in the input folder, but its "
                f"first row is not the header of Partner Center's daily rated usage file: it holds {typed[:200]}."))
            continue
        if missing:
            read_files.problems += [problem(
                "BB150", Source(path.name, sheet_of(path.name), 1, c), f"The Partner Center usage file "
                f"{path.name} has no {c} column.") for c in missing]
            continue
        try:
            frame = pd.read_csv(path, engine=engine or partner_center.ENGINE, sep=delimiter, usecols=list(READ),
                                dtype=str, keep_default_na=False, encoding=encoding)
            for column in REPEATING:  # before the next file is read: one copy of each repeated text
                frame[column] = frame[column].astype("category")
            # a NUL character in a value read (one per distinct text to look at) is a damaged file
            intact = not any(frame[c].cat.categories.str.contains("\0", regex=False).any() for c in REPEATING)
        except (ValueError, OSError, csv.Error):  # pandas' and pyarrow's errors and UnicodeDecodeError are ValueErrors
            intact = False
        if not intact:  # where, and what, is found line by line
            read_files.problems.append(damage(path, encoding, delimiter, header))
            continue
        read_files.headers[path.name] = header
        frame["file"] = pd.Categorical([path.name] * len(frame))
        frame["row"] = np.arange(2, len(frame) + 2, dtype=np.int32)  # its line, under the header
        frames.append(frame)
    if frames:
        frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        for column in (*REPEATING, "file"):  # categories of different files concatenate as text
            frame[column] = frame[column].astype("category")
        frame["UsageDate"] = _dates(frame["UsageDate"])
        frame["usage_id"] = _usage_ids(frame)
        read_files.frame = frame
    return read_files


# ---------------------------------------------------------------- files that cannot be read (BB014, BB015)
# Partner Center writes UTF-8, comma-separated. Excel's "Unicode text" (UTF-16 with a byte order mark,
# tab-separated) is read too: its encoding is certain, and every value is checked as any other. Any other
# encoding (Windows-1252: the file was saved again by Excel) is reported, not guessed: a wrong guess would
# print wrong letters on invoices (docs/decisions.md).
HEAD = 1 << 16  # the bytes looked at for the encoding and the header (a Partner Center header is under 1 KB)


class Unreadable(Exception):
    def __init__(self, found: Problem):
        self.problem = found


def layout(path: Path) -> tuple[str, str, list[str]]:
    """(encoding, delimiter, header) from the file's first bytes; Unreadable (BB014) when it is not text."""
    with path.open("rb") as f:
        head = f.read(HEAD)
    encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    first = re.split(r"[\r\n]", head.decode(encoding, errors="replace"), maxsplit=1)[0]
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter), [])]
    # NUL bytes, under no usage file's header: a binary file (a NUL in a usage file's line is BB015)
    if encoding != "utf-16" and b"\0" in head and sum(c in header for c in COLUMNS) < RECOGNISED:
        kind = "an Excel workbook or another zip file" if head.startswith(b"PK\x03\x04") else "not text"
        raise Unreadable(problem("BB014", Source(path.name, ""), f"{path.name} is not a CSV file: it is {kind}, "
                                  "only named .csv."))
    return encoding, delimiter, header


def damage(path: Path, encoding: str, delimiter: str, header: list[str]) -> Problem:
    """The first line pandas could not read, found with the csv module: a byte that is not UTF-8 (BB014), a
    line with too few or too many values, a NUL character, a quote never closed (BB015)."""
    if encoding == "utf-8-sig" and (found := _not_utf8(path, delimiter, header)):
        return found
    start = 1  # the line the record being read starts on
    try:
        with path.open(newline="", encoding=encoding) as f:
            reader = csv.reader(f, delimiter=delimiter)
            for record in reader:
                if record and (len(record) != len(header) or any("\0" in v for v in record)):
                    return _damaged(path, start, record, len(header), next(reader, None) is None)
                start = reader.line_num + 1
    except (csv.Error, UnicodeDecodeError):  # a value longer than any (an unclosed quote), a cut character
        return _damaged(path, start, None, len(header), False)
    return problem("BB014", Source(path.name, ""), f"{path.name} could not be read as a CSV file.")


def _damaged(path: Path, line: int, record: list[str] | None, width: int, last: bool) -> Problem:
    where = f"line {line:,} of {path.name}"
    if record is None:
        why = (f"{where} does not end where a line of a Partner Center file ends: a quote opening a value is never closed, "
               "or the line is cut or far too long")
    elif any("\0" in v for v in record):
        why = f"{where} holds NUL characters (zero bytes), which no text file holds: the file was damaged"
    elif len(record) < width and last:
        why = (f"the file ends in the middle of its last line, {where} ({len(record)} of {width} values): the "
               "download or copy stopped before the end")
    else:
        why = (f"{where} has {len(record)} values where the header has {width}: the line was cut, joined to "
               "another or given a comma, after the file was downloaded")
    return problem("BB015", Source(path.name, sheet_of(path.name), line), why[0].upper() + why[1:] + ".")


def _not_utf8(path: Path, delimiter: str, header: list[str]) -> Problem | None:
    """BB014 at the first line that is not UTF-8, showing its value as Windows-1252 would read it."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            raw = raw.removeprefix(codecs.BOM_UTF8) if number == 1 else raw
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                # the value the byte is in: the values before it, counted as the csv module reads them
                before = next(csv.reader([raw[:exc.start].decode("cp1252", "replace")], delimiter=delimiter), [""])
                value = next(csv.reader([raw.decode("cp1252", "replace").rstrip("\r\n")], delimiter=delimiter), [])
                at = max(len(before) - 1, 0)
                where = cell(path.name, number, header[at], header) if at < len(header) else Source(
                    path.name, sheet_of(path.name), number)
                return problem("BB014", where, f"{path.name} is not saved in UTF-8, as Partner Center writes it: "
                               f"line {number:,} holds a character written in another encoding; "
                               "the file was probably saved again by Excel or another program.",
                               value=value[at] if at < len(value) else None)
    return None


def per_value(column: pd.Series, convert) -> np.ndarray:
    """convert(text) of each row of a category column, computed once per distinct text (an object array)."""
    values = np.empty(len(column.cat.categories), dtype=object)
    values[:] = [convert(text) for text in column.cat.categories]
    return values[column.cat.codes.to_numpy()]


def _texts(column: pd.Series) -> list[str]:
    """The column as Python text; a category's texts shared, one object per distinct value."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return per_value(column, str).tolist()
    return column.tolist()


def _dates(column: pd.Series) -> pd.Series:
    """UsageDate as ISO text (a category): from ISO (2026-10-01T00:00:00) or Partner Center's US form
    (10/1/2026 12:00:00 AM); "" where neither (reported in validate). Parsed once per distinct text."""
    days = pd.Series(column.cat.categories.astype(str))
    iso = pd.to_datetime(days, format="ISO8601", errors="coerce")
    us = pd.to_datetime(days.str.split(" ").str[0], format="%m/%d/%Y", errors="coerce")
    parsed = iso.fillna(us)
    texts = [d.date().isoformat() if not pd.isna(d) else "" for d in parsed]
    return pd.Series(per_value(column, dict(zip(days, texts)).get), index=column.index).astype("category")


def _usage_ids(frame: pd.DataFrame) -> list[str]:
    """A short hash of the row's identity: IDs and URIs compared without case, as Azure does."""
    parts = [per_value(frame[c], str.lower).tolist() for c in IDENTITY]
    blake = hashlib.blake2b
    return [PARTNER_CENTER_ID + blake("\x1f".join(t).encode(), digest_size=8).hexdigest() for t in zip(*parts)]


def decimal_of(text: str) -> Decimal | None:
    stripped = text.strip()
    if not NUMBER.fullmatch(stripped):
        return None
    try:
        return Decimal(stripped)
    except InvalidOperation:
        return None


def _decimals(column: pd.Series) -> np.ndarray:
    """Exact Decimals (one per distinct text), None where the text is not a number."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return per_value(column, decimal_of)
    cache: dict[str, Decimal | None] = {}
    values = np.empty(len(column), dtype=object)
    values[:] = [cache[t] if t in cache else cache.setdefault(t, decimal_of(t)) for t in column.tolist()]
    return values


def usage(read_files: UsageFile, contracts: dict[str, Contract], problems: list[Problem],
          tolerance: Decimal) -> Imported:
    """The Usage rows of each contract, and the problems: a tenant on no contract (BB153, reported alone),
    a cell that is not a number or date (BB152), a currency other than the contract's (BB154), one
    identity twice in one file (BB155); each reported once per tenant and column, with its first row."""
    imported = Imported()
    frame = read_files.frame
    if frame is None or frame.empty:
        return imported
    # A later file repeats or revises an earlier one: its row stands. Twice in one file is a fault.
    twice = frame[frame.duplicated(["file", "usage_id"], keep=False)]
    earlier = frame.duplicated("usage_id", keep="last").to_numpy()
    if earlier.any():
        frame = frame[~earlier].reset_index(drop=True)
    by_tenant = tenant_contracts(contracts)
    contract_of = per_value(frame["CustomerId"], lambda t: (c := by_tenant.get(t.strip().lower())) and c.contract_id)
    mapped = ~pd.isna(contract_of)

    price, rate = _decimals(frame["EffectiveUnitPrice"]), _decimals(frame["PCToBCExchangeRate"])
    quantity, billed = _decimals(frame["Quantity"]), _decimals(frame["BillingPreTaxTotal"])
    bad = {"Quantity": pd.isna(quantity), "EffectiveUnitPrice": pd.isna(price), "PCToBCExchangeRate": pd.isna(rate),
           "BillingPreTaxTotal": pd.isna(billed)}
    cost = _costs(frame, bad)
    if (~mapped).any():
        _unmapped(frame, ~mapped, quantity, cost, bad, problems, read_files.headers)

    currency = per_value(frame["BillingCurrency"], lambda t: t.strip().upper())
    want = np.array([contracts[c].currency if c else None for c in contract_of.tolist()], dtype=object)
    faults = [("BB152", column, where) for column, where in bad.items()]
    faults += [("BB152", "UsageDate", (frame["UsageDate"] == "").to_numpy()),
               ("BB155", "CustomerId", frame["usage_id"].isin(twice["usage_id"]).to_numpy()),
               ("BB154", "BillingCurrency", currency != want)]
    broken = np.zeros(len(frame), dtype=bool)
    for code, column, where in faults:
        where = where & mapped
        if not where.any():
            continue
        broken |= where
        at = np.flatnonzero(where)
        hits = pd.DataFrame({"contract": contract_of[at], "file": _texts(frame["file"].iloc[at]),
                             "row": frame["row"].to_numpy()[at], "value": _texts(frame[column].iloc[at]),
                             "usage_id": frame["usage_id"].to_numpy()[at]})
        for contract_id, rows in hits.groupby("contract", sort=True):
            first = rows.iloc[0].to_dict()
            if code == "BB155":  # point at the first copy, and say where the other is
                copies = twice[twice["usage_id"] == first["usage_id"]]
                first.update(row=copies["row"].iloc[0], file=str(copies["file"].iloc[0]),
                             value=", ".join(str(n) for n in copies["row"].iloc[1:]))
            problems.append(_fault(code, column, first, len(rows), contracts[contract_id], read_files.headers))

    keep = np.flatnonzero(mapped & ~broken)
    frame = frame.iloc[keep]
    contract_of, quantity, cost, billed = contract_of[keep], quantity[keep], cost[keep], billed[keep]
    imported.usage = _rows(frame, contract_of, quantity, cost, contracts)
    imported.mismatches = reconcile(frame, contract_of, quantity * cost, billed, tolerance, contracts)
    return imported


def _costs(frame: pd.DataFrame, bad: dict[str, np.ndarray]) -> np.ndarray:
    """Cost per unit, EffectiveUnitPrice x PCToBCExchangeRate: once per distinct pair, shared by its rows;
    zero where either is not a number (those rows are reported, not billed)."""
    prices, rates = frame["EffectiveUnitPrice"].cat, frame["PCToBCExchangeRate"].cat
    pairs, inverse = np.unique(prices.codes.to_numpy().astype(np.int64) * len(rates.categories)
                               + rates.codes.to_numpy(), return_inverse=True)
    values = np.empty(len(pairs), dtype=object)
    for k, pair in enumerate(pairs.tolist()):
        price, rate = decimal_of(prices.categories[pair // len(rates.categories)]), decimal_of(
            rates.categories[pair % len(rates.categories)])
        values[k] = price * rate if price is not None and rate is not None else Decimal(0)
    cost = values[inverse.ravel()]
    cost[bad["Quantity"]] = Decimal(0)
    return cost


def _unmapped(frame: pd.DataFrame, where: np.ndarray, quantity: np.ndarray, cost: np.ndarray,
              bad: dict[str, np.ndarray], problems: list[Problem], headers: dict[str, list[str]]) -> None:
    """Tenants in the file on no contract: reported with their rows and cost, never dropped silently."""
    at = np.flatnonzero(where)
    amount = np.where(bad["Quantity"][at], Decimal(0), quantity[at]) * cost[at]
    lost = pd.DataFrame({"tenant": _texts(frame["CustomerId"].iloc[at]), "name": _texts(frame["CustomerName"].iloc[at]),
                         "file": _texts(frame["file"].iloc[at]), "row": frame["row"].to_numpy()[at],
                         "amount": amount, "currency": _texts(frame["BillingCurrency"].iloc[at])})
    for (who, currency), rows in lost.groupby(["tenant", "currency"], sort=True):
        total = sum(rows["amount"].tolist(), Decimal(0))
        first = rows.iloc[0]
        name = f" ({first['name']})" if first["name"] else ""
        problems.append(problem(
            "BB153", cell(first["file"], int(first["row"]), "CustomerId", headers.get(first["file"], COLUMNS)),
            f"Tenant {who or '(blank)'}{name} has {len(rows):,} usage row(s) costing "
            f"{round_money(total, currency):,} {currency} in the Partner Center file, but no contract's Partner "
            "Center Customer ID names it: they are not billed.", value=who))


def _fault(code: str, column: str, first: dict, count: int, contract: Contract,
           headers: dict[str, list[str]]) -> Problem:
    more = f" ({count - 1:,} more row(s) of this tenant alike)" if count > 1 else ""
    where = cell(first["file"], int(first["row"]), column, headers.get(first["file"], COLUMNS))
    tenant = contract.partner_center_customer_id
    if code == "BB154":
        message = (f"The BillingCurrency is {first['value'] or '(blank)'}, but contract {contract.contract_id}, which "
                   f"bills tenant {tenant}, is in {contract.currency}{more}.")
    elif code == "BB155":
        message = (f"The usage of tenant {tenant} on this row (same subscription, meter, resource, day and charge "
                   f"type) is in the file again on row {first['value']}{more}.")
    elif column == "UsageDate":
        message = f"The UsageDate {first['value'] or '(blank)'} is not a date{more}."
    else:
        message = f"The {column} {first['value'] or '(blank)'} is not a number{more}."
    value = tenant if code == "BB155" else first["value"]
    return problem(code, where, message, value=value, contract_id=contract.contract_id, contract=contract.contract_id)


def _rows(frame: pd.DataFrame, contract_of: np.ndarray, quantity: np.ndarray, cost: np.ndarray,
          contracts: dict[str, Contract]) -> dict[str, list[Usage]]:
    """The Usage values, made column by column: dates, texts, prices and group values shared between
    the rows that have them; one Source per row."""
    markup = {cid: 1 + c.usage_markup for cid, c in contracts.items()}
    prices: dict[tuple[str, int], Decimal] = {}
    days = per_value(frame["UsageDate"], date.fromisoformat).tolist()
    describe = _shared(frame, ["MeterCategory", "MeterSubCategory", "MeterName"], lambda *t: description(*t))
    extras = _shared(frame, list(GROUP_COLUMNS.values()), lambda *t: tuple(zip(GROUP_COLUMNS, t)))
    sheets = {f: sheet_of(f) for f in frame["file"].cat.categories}
    by_contract = defaultdict(list)
    for cid, file, row, usage_id, day, product, text, q, unit_cost, extra in zip(
            contract_of.tolist(), _texts(frame["file"]), frame["row"].tolist(), frame["usage_id"].tolist(), days,
            _texts(frame["MeterCategory"]), describe, quantity.tolist(), cost.tolist(), extras):
        key = (cid, id(unit_cost))  # costs are shared per distinct price and rate (_costs)
        unit_price = prices.get(key)
        if unit_price is None:
            unit_price = prices[key] = unit_cost * markup[cid]
        by_contract[cid].append(Usage(usage_id, cid, day, product, text, q, unit_price,
                                      Source(file, sheets[file], row), extra))
    return dict(by_contract)


def _shared(frame: pd.DataFrame, columns: list[str], make) -> list:
    """make(*texts) of each row's values in these category columns, made once per distinct combination."""
    keys = frame.groupby(columns, observed=True, sort=False).ngroup().to_numpy()
    distinct, first = np.unique(keys, return_index=True)
    texts = [frame[c].to_numpy()[first].tolist() for c in columns]
    made = np.empty(len(distinct), dtype=object)
    made[:] = [make(*(str(t) for t in values)) for values in zip(*texts)]
    return made[np.searchsorted(distinct, keys)].tolist()


def reconcile(frame: pd.DataFrame, contract_of: np.ndarray, amount: np.ndarray, billed: np.ndarray,
              tolerance: Decimal, contracts: dict[str, Contract]) -> list[Mismatch]:
    """Per tenant and month, the cost imported (quantity x cost per unit, exact) against the sum of
    BillingPreTaxTotal. Partner Center truncates each row's total to the cent, so the allowed difference is
    the Usage Tolerance (a fraction) of the month's total, and never less than a cent a row."""
    facts = pd.DataFrame({"contract": contract_of, "month": per_value(frame["UsageDate"], lambda d: d[:7]),
                          "imported": amount, "billed": billed})
    sums = facts.groupby(["contract", "month"], sort=True).agg(
        rows=("imported", "size"), imported=("imported", "sum"), billed=("billed", "sum"))
    found = []
    for (contract_id, month), s in sums.iterrows():
        imported, billed_total = Decimal(s["imported"]), Decimal(s["billed"])
        allowed = max(abs(billed_total) * tolerance, Decimal("0.01") * int(s["rows"]))
        if abs(imported - billed_total) > allowed:
            rows = ((facts["contract"] == contract_id) & (facts["month"] == month)).to_numpy()
            detail = frame.loc[rows, ["file", "row", "CustomerId", "EntitlementId", "UsageDate", "MeterCategory",
                                      "MeterName", "ResourceURI", "Quantity", "EffectiveUnitPrice",
                                      "PCToBCExchangeRate", "BillingPreTaxTotal"]].astype(str)
            detail["Imported Cost"] = [str(a) for a in amount[rows]]
            detail["Difference"] = [str(a - b) for a, b in zip(amount[rows], billed[rows])]
            tenant = contracts[contract_id].partner_center_customer_id
            found.append(Mismatch(contract_id, tenant, month, int(s["rows"]), billed_total, imported, allowed, detail))
    return found
