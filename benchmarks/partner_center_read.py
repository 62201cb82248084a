"""Reading and validating a Partner Center usage file, per pandas CSV engine: time and peak memory.

    python -m benchmarks.partner_center_read [--size P] [--engines pyarrow,c]

Each engine runs in a fresh subprocess (so its peak RSS, from ru_maxrss, is its own) that does what
`billing-batch check` does up to billing: workspace.load (the workbook, the Partner Center file, validation)
with billing_batch.inputs.partner_center.ENGINE set to the engine. Prints the stages' wall times and the peak.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from benchmarks import generate
from benchmarks.run import CACHE, cached_input

CHILD = """
import json, resource, sys, time
from pathlib import Path
from billing_batch import workspace
from billing_batch.inputs import partner_center
partner_center.ENGINE = sys.argv[2]
started = time.perf_counter()
report = workspace.Report()
checked = workspace.load(workspace.Options(Path(sys.argv[1]), Path("/nonexistent"), __import__("datetime").date(2026, 11, 2)),
                         report)
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"stages": report.timings, "wall": time.perf_counter() - started,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "usage_rows": sum(map(len, checked.inputs.usage.values())), "problems": len(report.problems)}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.partner_center_read", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", default="P", choices=[s for s, spec in generate.SIZES.items() if spec.partner_center])
    p.add_argument("--engines", default="pyarrow,c")
    p.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    args = p.parse_args(argv)
    input_dir, _ = cached_input(args.size, args.seed, CACHE)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for engine in args.engines.split(","):
        done = subprocess.run([sys.executable, "-c", CHILD, str(input_dir), engine], capture_output=True, text=True,
                              check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in result["stages"].items())
        print(f"{engine:>8}: {result['wall']:.1f} s ({stages}), {result['cpu']:.1f} s CPU; peak {result['peak_mb']:,.0f} MB; "
              f"{result['usage_rows']:,} usage rows, {result['problems']} problems; "
              f"load average after {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
