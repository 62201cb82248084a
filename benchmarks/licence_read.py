"""Reading, validating and billing a Partner Center licence file, beside a usage file of as many rows.

    python -m benchmarks.licence_read [--tenants 2000] [--rows 100000] [--jobs 2] [--no-run] [--json PATH]

The input (cached in benchmarks/.cache/): one workbook of one Annual Arrears contract a tenant from 2025-11-01,
in the tenant's currency (Partner Center Customer ID; Licence Markup 15 % in Settings, Usage Markup 10 %), and
beside it either the licence file (benchmarks/partner_center_licences.generate: a year of Microsoft's invoices,
November 2025 to October 2026) or a usage file of as many rows for the same tenants
(benchmarks/partner_center_files.generate, October 2026). Annual, so that a run as of 2026-11-02 bills every
charge of the year on one invoice a contract: monthly contracts from November would be twelve due cycles each.

Each measure runs in a fresh subprocess, so its peak RSS (ru_maxrss) is its own, as in
benchmarks.partner_center_read: workspace.load (the stages load, load Partner Center files, validate) of the
workbook alone, with the licence file, with the usage file; then the whole `billing-batch run --new-ledger
--jobs N` of the licence input (PDFs included), BILLING_BATCH_DATA in a temporary folder, timed and sampled by
benchmarks.run.run_cli. Prints a table and writes benchmarks/results/licences.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

from benchmarks import generate, partner_center_files, partner_center_licences, run

VERSION = 1  # bump when the input changes, so cached inputs are made again
FIRST_MONTH = date(2025, 11, 1)  # the licence file's first invoice month; the contracts start then too
LICENCE_FILE = "partner_center_licences_2025-11_2026-10.csv"
USAGE_FILE = "partner_center_usage_2026-10.csv"
LICENCE_MARKUP = 0.15
READ_VALIDATE = ("load", "load Partner Center files", "validate")

CHILD = """
import json, resource, sys, time
from datetime import date
from pathlib import Path
from billing_batch import workspace
started = time.perf_counter()
report = workspace.Report()
checked = workspace.load(workspace.Options(Path(sys.argv[1]), Path("/nonexistent"), date(2026, 11, 2)), report)
usage = resource.getrusage(resource.RUSAGE_SELF)
licences = checked.licences if checked else None
print(json.dumps({"stages": report.timings, "wall": time.perf_counter() - started,
                  "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                  "usage_rows": sum(map(len, checked.inputs.usage.values())) if checked else None,
                  "licence_charges": sum(map(len, licences.charges.values())) if licences else 0,
                  "azure_rows": sum(s.rows for s in licences.azure) if licences else 0,
                  "unmapped_rows": sum(s.rows for s in licences.unmapped) if licences else 0,
                  "problems": len(report.problems), "codes": sorted({p.code for p in report.problems})}))
"""


def make_input(folder: Path, seed: int, tenant_count: int, row_count: int) -> dict:
    """folder/book (the workbook alone), folder/licences (with the licence file), folder/usage (with the usage
    file); the workbook is the same file in all three (hard links)."""
    for name in ("book", "licences", "usage"):
        (folder / name).mkdir(parents=True, exist_ok=True)
    licence_csv = folder / "licences" / LICENCE_FILE
    tenants = partner_center_licences.generate(licence_csv, seed, tenant_count, row_count, FIRST_MONTH)
    # the same tenants (same seed and count), so the usage file maps onto the same contracts
    same = partner_center_files.generate(folder / "usage" / USAGE_FILE, seed, tenant_count, row_count)
    assert [t.customer_id for t in same] == [t.customer_id for t in tenants]
    rng = random.Random(f"{seed}/licence-book")
    customer_rows = generate.customers(rng, tenant_count)
    contract_rows = [(f"CTR-{k:06d}", customer_rows[k - 1][0], FIRST_MONTH, None, "Annual", "Arrears", None,
                      tenant.currency, 30, None, "Active", tenant.customer_id, 0.1)
                     for k, tenant in enumerate(tenants, 1)]
    book = generate.write_book(folder / "book" / "billing.xlsx", {
        "Settings": [*generate.SETTINGS, ("Licence Markup", LICENCE_MARKUP)], "Customers": customer_rows,
        "Contracts": contract_rows, "Subscriptions": []})
    for name in ("licences", "usage"):
        os.link(book, folder / name / "billing.xlsx")
    with licence_csv.open(encoding="utf-8") as f:
        licence_rows = sum(1 for _ in f) - 1
    return {"seed": seed, "tenants": tenant_count, "contracts": len(contract_rows), "licence_rows": licence_rows,
            "licence_file_mb": round(licence_csv.stat().st_size / 2**20, 1), "usage_rows": row_count,
            "usage_file_mb": round((folder / "usage" / USAGE_FILE).stat().st_size / 2**20, 1),
            "first_month": FIRST_MONTH.isoformat(), "version": VERSION}


def cached(seed: int, tenant_count: int, row_count: int, cache: Path) -> tuple[Path, dict]:
    folder = cache / f"licences-{seed}-{tenant_count}-{row_count}-v{VERSION}"
    facts_file = folder / "facts.json"
    if facts_file.exists():
        return folder, json.loads(facts_file.read_text())
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    facts = make_input(tmp, seed, tenant_count, row_count)
    (tmp / "facts.json").write_text(json.dumps(facts, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder, facts


def load_alone(input_dir: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(input_dir)], capture_output=True, text=True,
                          check=True, cwd=run.ROOT)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["read_validate"] = sum(result["stages"].get(s, 0.0) for s in READ_VALIDATE)
    return result


def whole_run(input_dir: Path, jobs: int) -> dict:
    """`billing-batch run --new-ledger` on an empty output folder, its known-ledgers file in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="licence-run-") as tmp:
        before = os.environ.get("BILLING_BATCH_DATA")
        os.environ["BILLING_BATCH_DATA"] = str(Path(tmp) / "data")  # run_cli's subprocess inherits it
        try:
            result = run.run_cli("first run", input_dir, Path(tmp) / "output", jobs, 0.1, Path(tmp) / "run.log")
        finally:
            if before is None:
                os.environ.pop("BILLING_BATCH_DATA", None)
            else:
                os.environ["BILLING_BATCH_DATA"] = before
        if result.exit_code != 0:
            print((Path(tmp) / "run.log").read_text()[-3000:])
    return {"jobs": jobs, "wall": result.wall, "cpu": result.cpu, "stages": result.stages, "issued": result.issued,
            "pdfs": result.rendered, "exit_code": result.exit_code, "peak_pss_mb": result.peak_pss / 2**20,
            "peak_rss_mb": result.peak_rss / 2**20, "foreign_load": result.extra["foreign_load"]}


def show(loads: dict[str, dict], billed: dict | None) -> None:
    print(f"{'input':>10} | {'read+validate':>13} | {'load':>6} | {'read CSV':>8} | {'validate':>8} | {'CPU':>6} | "
          f"{'peak RSS':>9} | rows billed as usage")
    for name, r in loads.items():
        s = r["stages"]
        print(f"{name:>10} | {r['read_validate']:>11.1f} s | {s.get('load', 0):>4.1f} s | "
              f"{s.get('load Partner Center files', 0):>6.1f} s | {s.get('validate', 0):>6.1f} s | {r['cpu']:>4.1f} s | "
              f"{r['peak_mb']:>6,.0f} MB | {r['usage_rows'] or 0:,} ({r['licence_charges']:,} licence charges, "
              f"{r['azure_rows']:,} Azure plan rows skipped, {r['problems']} problems {r['codes']})")
    if billed:
        print(f"whole run, licence input, {billed['jobs']} jobs: {billed['wall']:.1f} s wall, {billed['cpu']:.1f} s CPU, "
              f"{billed['issued']:,} issued, {billed['pdfs']:,} PDFs, peak PSS {billed['peak_pss_mb']:,.0f} MB, "
              f"exit {billed['exit_code']}, other load {billed['foreign_load']:.2f} cores")
        print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in billed["stages"].items() if v >= 0.05))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.licence_read", description=__doc__.split("\n\n")[0])
    p.add_argument("--tenants", type=int, default=2000)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--no-run", action="store_true", help="measure reading and validating only, not the whole run")
    p.add_argument("--cache", type=Path, default=run.CACHE)
    p.add_argument("--json", type=Path, default=run.RESULTS / "licences.json")
    args = p.parse_args(argv)
    folder, facts = cached(args.seed, args.tenants, args.rows, args.cache)
    load_before = os.getloadavg()[0]
    print(f"load average before: {load_before:.1f} on {os.cpu_count()} cores; {facts['licence_rows']:,} licence rows "
          f"({facts['licence_file_mb']} MB), {facts['usage_rows']:,} usage rows ({facts['usage_file_mb']} MB), "
          f"{facts['tenants']:,} tenants")
    loads = {name: load_alone(folder / name) for name in ("book", "licences", "usage")}
    billed = None if args.no_run else whole_run(folder / "licences", args.jobs)
    show(loads, billed)
    result = {"input": facts, "machine": run.machine(), "command": "python -m benchmarks.licence_read "
              + " ".join(argv if argv is not None else sys.argv[1:]), "load_average_before": load_before,
              "load_average_after": os.getloadavg()[0], "read_validate": loads, "run": billed}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
