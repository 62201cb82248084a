"""Write OUTPUT/reconciliation/<contract>-<month>-<tenant>.csv: for each tenant month whose imported
Partner Center cost and BillingPreTaxTotal disagree beyond the tolerance (inputs/partner_center.py's
`Mismatch`), the rows that make it up, each row's difference in the last column."""
from __future__ import annotations

from pathlib import Path

from billing_batch.files import csv_bytes, write_atomic
from billing_batch.inputs.partner_center import Mismatch

# Written as they are: the row number, and amounts the validate stage has read as numbers (a row whose
# amount is not a number is reported, never reconciled). Every other column is text from Partner Center's
# file (a MeterName, a ResourceURI), kept inert in a spreadsheet by csv_bytes.
NUMBERS = {"row", "Quantity", "EffectiveUnitPrice", "PCToBCExchangeRate", "BillingPreTaxTotal", "Imported Cost",
           "Difference"}


def write_mismatches(output: Path, mismatches: list[Mismatch]) -> list[Path]:
    written = []
    for m in mismatches:
        path = output / m.file_name
        write_atomic(path, csv_bytes(list(m.detail.columns), m.detail.itertuples(index=False, name=None), NUMBERS))
        written.append(path)
    return written
