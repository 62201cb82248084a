"""Profile every stage but rendering: where the rest of the run's time goes.

    python -m benchmarks.profile_stages --size M [--top 30] [--out PROFILE.pstats]

Runs pipeline.run in this process on the cached benchmark input (see benchmarks.run), into a
fresh output folder, with render_pool.render_invoices replaced by a no-op, under cProfile; prints
the stage timings, the peak RSS and the functions with the most cumulative and own time.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks import generate
from benchmarks.run import CACHE, cached_input


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profile_stages", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=list(generate.SIZES), default="M")
    p.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    p.add_argument("--top", type=int, default=30)
    p.add_argument("--out", type=Path, help="also save the profile (for snakeviz, pstats)")
    args = p.parse_args(argv)

    from billing_batch import pipeline
    from billing_batch.documents import render_pool

    input_dir, _ = cached_input(args.size, args.seed, CACHE)
    out = Path(tempfile.mkdtemp(prefix="profile-"))
    render_pool.render_invoices = lambda invoices, out_dir, *a, **k: [Path(out_dir) / i.pdf_name for i in invoices]
    options = pipeline.Options(input=input_dir, output=out, as_of=generate.AS_OF, jobs=1, new_ledger=True)
    profiler = cProfile.Profile()
    try:
        report = profiler.runcall(pipeline.run, options)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"size {args.size}: {len(report.issued):,} invoices; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB (under cProfile)")
    for stage, seconds in report.timings.items():
        print(f"  {stage:<20} {seconds:8.2f} s (under cProfile)")
    stats = pstats.Stats(profiler, stream=sys.stdout)
    if args.out:
        stats.dump_stats(args.out)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
