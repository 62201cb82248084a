"""Rows across sheets: IDs are unique and exact, and a row that names a contract must fit it.
Shared by every sheet's check, so a repeated ID or an unknown contract reads the same everywhere."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date

from billing_batch.errors import Problem, problem, shown
from billing_batch.inputs.validate.cells import RowReader
from billing_batch.inputs.workbook import Row
from billing_batch.model import Contract


def unique(rows: list[Row], column: str, problems: list[Problem], owner=None) -> Iterator[tuple[Row, str]]:
    """Each row with its ID, in order; a repeated ID is a problem on every row that uses it.
    Rows leave the list as they are given, so a million usage rows are not held beside their records."""
    ids = [RowReader(row, []).text(column) for row in rows]
    first: dict[str, Row] = {}
    reported = set()
    for row, row_id in zip(rows, ids):
        original = first.setdefault(row_id, row)
        if row_id and original is not row:
            owner_ids = owner(row) if owner else {}
            problems.append(problem(
                "BB110", row[column].source, f"The {column} {row_id} is used on more than one row.",
                value=row.value(column), first_row=str(original.number), **owner_ids,
            ))
            if owner and row_id not in reported:
                # the first row's record is no more trustworthy than the repeat
                reported.add(row_id)
                problems.append(problem(
                    "BB110", original[column].source, f"The {column} {row_id} is used on more than one row.",
                    value=original.value(column), first_row=str(original.number), **owner(original),
                ))
    del first
    for i, row_id in enumerate(ids):
        row, rows[i] = rows[i], None
        yield row, row_id


def did_you_mean(typed: str, known) -> str:
    """IDs are exact, but a near miss in case is worth naming."""
    near = next((k for k in known if k.casefold() == typed.casefold()), None)
    return f"; did you mean {near}?" if near else "."


def merged_away(r: RowReader, column: str, owner_shown: bool) -> bool:
    """Whether the row's cell in column is blank because it lies in merged cells below their top (reported):
    Excel shows the top cell's ID on every row of the range, but only the top cell holds it. owner_shown: the
    row is the shown contract's (a subscription, usage), which is set aside rather than billed without it."""
    merge = r.row.sheet.merged_blank(column, r.row.number) if r.row.value(column) is None else None
    if merge is None:
        return False
    _, _, cells, value = merge
    ids = (shown(value) or "").strip()
    if owner_shown:
        r.contract_id = ids or None
    r.fail("BB128", column, f"The {column} of row {r.row.number} is one of the merged cells {cells}"
           + (f", which show {ids}; only the top cell holds it, so this row has none." if ids else
              ", so it is empty.")
           + (f" Contract {ids} is set aside rather than billed without this row." if owner_shown and ids else ""))
    return True


def known_contract(r: RowReader, contracts: dict[str, Contract | None]) -> Contract | None:
    """The row's contract; None for one that is unknown (reported) or unreadable."""
    if merged_away(r, "Contract ID", owner_shown=True):
        return None
    contract_id = r.text("Contract ID", required=True)
    if contract_id and contract_id not in contracts:
        r.contract_id = None  # nothing to set aside: report it alone
        r.fail("BB111", "Contract ID", f"No contract has the ID {contract_id}"
               + did_you_mean(contract_id, contracts))
        return None
    return contracts.get(contract_id)


def inside(r: RowReader, column: str, day: date, contract: Contract) -> None:
    if day < contract.start or (contract.end is not None and day > contract.end):
        period = f"{contract.start} to {contract.end or 'open-ended'}"
        r.fail("BB113", column, f"The {column} {day} is outside contract {contract.contract_id}.",
               period=period)
