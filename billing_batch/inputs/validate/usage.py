"""The Usage sheet: its rows, and its columns, which Usage Group By names in Settings and per contract.
Columns beyond the schema are kept as text for grouping only, so they set nothing aside."""
from __future__ import annotations

from collections import defaultdict

from billing_batch.inputs.validate.cells import EN, RowReader
from billing_batch.inputs.validate.rows import inside, known_contract, unique
from billing_batch.inputs.workbook import SCHEMA, RawBook, normalise
from billing_batch.model import Usage

# BB109's advice for negative usage: usage is typed as measured; usage billed in error is given back by a credit note.
REFUND = "to give back usage already billed, credit its invoice with billing-batch credit"


def usage_columns(book: RawBook) -> dict[str, str]:
    """Every column of the Usage sheet, the others as first typed: normalised name -> name."""
    columns: dict[str, str] = {}
    for name in (*SCHEMA["Usage"][1], *book.other_columns.get("Usage", [])):
        columns.setdefault(normalise(name), name)
    return columns


def group_by(text: str, columns: dict[str, str]) -> tuple[tuple[str, ...], list[str]]:
    """The Usage columns a Usage Group By cell names (comma-separated), and the names that are none."""
    names = [" ".join(part.split()) for part in text.split(",") if part.strip()]
    unknown = [name for name in names if normalise(name) not in columns]
    return tuple(dict.fromkeys(columns[normalise(n)] for n in names if normalise(n) in columns)), unknown


def read_usage(rows, contracts, problems, numbers=EN, columns: dict[str, str] | None = None) -> dict[str, tuple[Usage, ...]]:
    by_contract = defaultdict(list)
    columns = columns or {}
    standard = set(SCHEMA["Usage"][1])
    for row, usage_id in unique(rows, "Usage ID", problems, lambda r: {"contract_id": RowReader(r, []).text("Contract ID")}):
        contract_id = RowReader(row, []).text("Contract ID")
        r = RowReader(row, problems, contract_id=contract_id or None, numbers=numbers)
        r.text("Usage ID", required=True)
        contract = known_contract(r, contracts)
        day = r.date("Date", required=True)
        if contract and day:
            inside(r, "Date", day, contract)
        usage = Usage(
            usage_id=usage_id,
            contract_id=contract_id,
            date=day,
            product=r.text("Product", required=True),
            description=r.text("Description"),
            quantity=r.amount("Quantity", REFUND),
            unit_price=r.amount("Unit Price", REFUND),
            source=row.source,
            # kept as text, only for grouping: a bad value in a column the batch does not read sets nothing aside
            extra=tuple((columns.get(normalise(name), name), RowReader(row, []).text(name))
                        for name in row.sheet.columns if name not in standard),
        )
        r.line(usage.quantity, usage.unit_price)
        if r.ok:
            by_contract[contract_id].append(usage)
    return {cid: tuple(sorted(rows, key=lambda u: (u.date, u.usage_id))) for cid, rows in by_contract.items()}
