"""Write OUTPUT/reconciliation/<contract>-<month>-<tenant>.csv: for each tenant month whose imported
Partner Center cost and BillingPreTaxTotal disagree beyond the tolerance (inputs/partner_center.py's
`Mismatch`), the rows that make it up, each row's difference in the last column."""
from __future__ import annotations

from pathlib import Path

from billing_batch.inputs.partner_center import Mismatch


def write_mismatches(output: Path, mismatches: list[Mismatch]) -> list[Path]:
    written = []
    for m in mismatches:
        path = output / m.file_name
        path.parent.mkdir(parents=True, exist_ok=True)
        m.detail.to_csv(path, index=False)
        written.append(path)
    return written
