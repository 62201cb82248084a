"""Does the render pool pay off? --jobs 2 against --jobs 1, and against two bare WeasyPrint loops side by side.

    python -m benchmarks.render_pool [--jobs 2] [--repeat 2] [--json PATH]

1. End to end, size O (120 one-page invoices): the real command line with --jobs 2 and with
   --jobs 1, each on an empty output folder (benchmarks.run.run_cli), best of --repeat runs.
2. Render throughput, size S (103 invoices of 2.3 pages on average): the render stage's invoices
   per second with --jobs 2 and with --jobs 1, best of --repeat runs; and the CPU each spends per
   invoice (the workers' with 2 jobs, the batch's own with 1): load on the machine stretches wall
   times but hardly CPU times, so this is the figure that shows a worker's overhead.
3. The floor: the HTML of S's invoices (from the ledger of step 2) rendered by bare WeasyPrint
   loops (stylesheet and fonts built once, untimed), first one loop alone, then --jobs loops at
   once in as many processes, started together: the best a pool of that many workers could do.
Each figure is printed beside the load average and the CPU other processes used meanwhile. On a
shared machine only the CPU-time ratios mean much; rerun on a quiet one for the wall-time targets.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import CACHE, RESULTS, TEMPLATES, RunResult, busy_seconds, cached_input, run_cli
from benchmarks import generate

# The targets for --jobs 2 against --jobs 1.
TARGET_END_TO_END = 1.6  # size O, whole run
TARGET_RENDER = 1.8  # size S, render stage
TARGET_PER_JOB_VS_FLOOR = 0.9  # render stage per job, against one of the bare loops run side by side


def best_run(label: str, size: str, jobs: int, repeat: int, work: Path) -> tuple[RunResult, list[dict]]:
    """The fastest of `repeat` first runs (each into an empty folder), and every run's figures."""
    input_dir, _ = cached_input(size, generate.DEFAULT_SEED, CACHE)
    runs, seen = [], []
    for n in range(repeat):
        out = work / f"{size}-jobs{jobs}-{n}"
        shutil.rmtree(out, ignore_errors=True)
        load = os.getloadavg()[0]
        result = run_cli(label, input_dir, out, jobs, 0.1, work / "cli.log")
        result.extra["loadavg_before"] = load
        result.extra["render_cpu"] = _render_cpu(result)
        runs.append(result)
        seen.append(_figures(result))
    return min(runs, key=lambda r: r.wall), seen


def _render_cpu(r: RunResult) -> dict:
    """The CPU the render stage took: in the batch's own process, in the forkserver (once, its
    imports and fonts) and in the workers forked from it."""
    own = (r.extra.get("cpu_timings") or {}).get("render", 0.0)
    forked = sorted((pid, cpu) for pid, cpu in r.extra["cpu_by_pid"].items() if "forkserver" in r.extra["names"][pid])
    server = forked[0][1] if forked else 0.0  # started first, so the lowest pid
    workers = sum(cpu for _, cpu in forked[1:])
    return {"batch": own, "forkserver": server, "workers": workers}


def _figures(r: RunResult) -> dict:
    cpu = r.extra["render_cpu"]
    per_invoice = (cpu["batch"] + cpu["workers"]) / r.rendered if r.rendered else None
    return {"jobs": r.jobs, "wall": r.wall, "render_wall": r.render, "rendered": r.rendered,
            "render_per_second": r.rendered / r.render if r.render else None,
            "render_cpu_per_invoice": per_invoice, "render_cpu": cpu, "cpu": r.cpu,
            "loadavg_before": r.extra["loadavg_before"], "foreign_load": r.extra["foreign_load"]}


def bare_loop(htmls: list[str], start: multiprocessing.synchronize.Barrier) -> dict:
    """WeasyPrint alone over the HTML, the stylesheet and fonts built once: (wall, CPU) of the loop."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    from billing_batch.documents.look import STYLESHEET

    font_config = FontConfiguration()
    css = CSS(filename=str(TEMPLATES / STYLESHEET), font_config=font_config)
    base_url = TEMPLATES.as_uri() + "/"
    HTML(string=htmls[0], base_url=base_url).write_pdf(stylesheets=[css], font_config=font_config)  # loads the fonts
    start.wait()  # every loop has its fonts: go
    wall, cpu = time.perf_counter(), time.process_time()
    for html in htmls:
        HTML(string=html, base_url=base_url).write_pdf(stylesheets=[css], font_config=font_config)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"wall": wall, "cpu": cpu, "per_second": len(htmls) / wall, "cpu_per_invoice": cpu / len(htmls)}


def floor(ledger_path: Path, loops: int) -> dict:
    """One bare loop alone, then `loops` of them at once, each in its own spawned process."""
    from billing_batch.documents import render
    from billing_batch.ledger.store import Ledger

    with Ledger(ledger_path) as ledger:
        htmls = [render.invoice_html(invoice, TEMPLATES) for invoice in ledger.invoices()]
    context = multiprocessing.get_context("spawn")

    def measure(count: int) -> dict:
        load, busy = os.getloadavg()[0], busy_seconds()
        with context.Manager() as manager, context.Pool(count) as pool:
            start = manager.Barrier(count + 1)
            pending = [pool.apply_async(bare_loop, (htmls, start)) for _ in range(count)]
            start.wait()
            started = time.perf_counter()
            results = [p.get() for p in pending]
            wall = time.perf_counter() - started
        own = sum(r["cpu"] for r in results)
        return {"loops": results, "per_second_each": sum(r["per_second"] for r in results) / count,
                "cpu_per_invoice": own / (count * len(htmls)), "loadavg_before": load,
                "foreign_load": max(0.0, busy_seconds() - busy - own) / wall}

    alone = measure(1)
    print(f"  alone: {json.dumps(alone)}", flush=True)
    side_by_side = measure(loops)
    print(f"  side by side: {json.dumps(side_by_side)}", flush=True)
    return {"invoices": len(htmls), "alone": alone, "side_by_side": side_by_side, "loops": loops}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.render_pool", description=__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=2, help="the pool's jobs, against 1 (default 2)")
    p.add_argument("--repeat", type=int, default=2, help="first runs of each kind; the fastest counts (default 2)")
    p.add_argument("--json", type=Path, default=RESULTS / "render_pool.json")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    try:
        result: dict = {"command": " ".join(["python -m benchmarks.render_pool", *sys.argv[1:]]), "jobs": args.jobs}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for size in ("O", "S"):
            for jobs in (args.jobs, 1):
                print(f"Size {size}, --jobs {jobs}, {args.repeat} first runs ...", flush=True)
                best, runs = best_run("first run", size, jobs, args.repeat, work)
                result[f"{size}_jobs{jobs}"] = {"best": _figures(best), "runs": runs}
                print(f"  {json.dumps(_figures(best))}", flush=True)
                args.json.write_text(json.dumps(result, indent=2))  # so far: a long run may be cut short
        print(f"Bare WeasyPrint loops over S's invoices: one alone, then {args.jobs} side by side ...", flush=True)
        result["floor"] = floor(work / "S-jobs1-0" / "ledger.sqlite", args.jobs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result["ratios"] = ratios(result, args.jobs)
    args.json.write_text(json.dumps(result, indent=2))
    show(result, args.jobs)
    print(f"Result: {args.json}")
    return 0


def ratios(result: dict, jobs: int) -> dict:
    o2, o1 = result[f"O_jobs{jobs}"]["best"], result["O_jobs1"]["best"]
    s2, s1 = result[f"S_jobs{jobs}"]["best"], result["S_jobs1"]["best"]
    fl = result["floor"]
    return {
        "end_to_end_O": {"value": o1["wall"] / o2["wall"], "target": TARGET_END_TO_END,
                         "what": f"size O (120 one-page invoices), whole run: --jobs 1 wall over --jobs {jobs}"},
        "render_S": {"value": s2["render_per_second"] / s1["render_per_second"], "target": TARGET_RENDER,
                     "what": f"size S, render-stage throughput: --jobs {jobs} over --jobs 1"},
        "per_job_vs_floor": {"value": s2["render_per_second"] / jobs / fl["side_by_side"]["per_second_each"],
                             "target": TARGET_PER_JOB_VS_FLOOR,
                             "what": f"size S, render stage per job over one of {jobs} bare loops side by side"},
        "floor_scaling": {"value": fl["side_by_side"]["per_second_each"] * jobs / fl["alone"]["per_second_each"],
                          "target": None, "what": f"{jobs} bare loops side by side over one alone (the machine's scaling)"},
        "cpu_per_invoice_S": {"value": s2["render_cpu_per_invoice"] / s1["render_cpu_per_invoice"], "target": None,
                              "what": f"size S, render CPU per invoice: --jobs {jobs} (workers + batch) over --jobs 1 (load-independent)"},
        "cpu_per_invoice_O": {"value": o2["render_cpu_per_invoice"] / o1["render_cpu_per_invoice"], "target": None,
                              "what": f"size O, render CPU per invoice: --jobs {jobs} over --jobs 1 (load-independent)"},
        "cpu_vs_floor_S": {"value": s2["render_cpu_per_invoice"] / fl["side_by_side"]["cpu_per_invoice"],
                           "target": None, "what": f"size S, render CPU per invoice with --jobs {jobs} over the bare loops'"},
    }


def show(result: dict, jobs: int) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)
    table = Table(title="Runs (the fastest of each kind)", title_justify="left")
    for col in ("run", "wall s", "render s", "invoices/s rendering", "render CPU s per invoice",
                "forkserver CPU s", "load avg before", "others' load (cores)"):
        table.add_column(col, justify="left" if col == "run" else "right")
    for size in ("O", "S"):
        for j in (jobs, 1):
            r = result[f"{size}_jobs{j}"]["best"]
            table.add_row(f"{size}, --jobs {j}", f"{r['wall']:.2f}", f"{r['render_wall']:.2f}",
                          f"{r['render_per_second']:.2f}", f"{r['render_cpu_per_invoice']:.4f}",
                          f"{r['render_cpu']['forkserver']:.2f}", f"{r['loadavg_before']:.2f}",
                          f"{r['foreign_load']:.2f}")
    fl = result["floor"]
    for name, label in (("alone", "bare loop alone"), ("side_by_side", f"{jobs} bare loops side by side (each)")):
        f = fl[name]
        table.add_row(f"S, {label}", "", f"{f['loops'][0]['wall']:.2f}", f"{f['per_second_each']:.2f}",
                      f"{f['cpu_per_invoice']:.4f}", "", f"{f['loadavg_before']:.2f}", f"{f['foreign_load']:.2f}")
    console.print(table)
    targets = Table(title="Against the targets", title_justify="left")
    for col in ("measure", "value", "target", "met"):
        targets.add_column(col, justify="left" if col == "measure" else "right")
    for r in result["ratios"].values():
        met = "" if r["target"] is None else "[green]yes[/green]" if r["value"] >= r["target"] else "[red]no[/red]"
        targets.add_row(r["what"], f"{r['value']:.3f}", "" if r["target"] is None else f"≥ {r['target']:g}", met)
    console.print(targets)


if __name__ == "__main__":
    sys.exit(main())
