"""Benchmark the real command line on a synthetic input, against a bare WeasyPrint loop.

    python -m benchmarks.run --size S|M|L|U|P [--jobs N] [--compare-jobs 1] [--keep DIR] [--json PATH]

1. Makes the input with benchmarks.generate (cached in benchmarks/.cache/, keyed by size, seed
   and generator version).
2. Runs `python -m billing_batch run --as-of 2026-11-02 --jobs N` as a subprocess on an empty
   output folder, and reads the wall time of each stage from the pipeline's Report.timings
   (through the CLI's --timings-json). Meanwhile it samples the memory of the whole process tree (the CLI
   and its render workers) every 0.1 s: the peak of the summed RSS, and of the summed PSS (which
   counts shared pages once, so is the honest total).
3. The render floor: in this process, a bare loop of WeasyPrint
   `HTML(string=html).render(stylesheets=[css], font_config=fc).write_pdf()` over the same
   invoices' HTML (read back from the ledger, made with billing_batch.documents.render.invoice_html),
   the stylesheet and font configuration built once. On M and L a sample of the invoices
   (every k-th, --floor-sample, default 200) stands in for all of them.
4. Runs the CLI a second time on the same output (the unchanged rerun: nothing to bill, every
   PDF exists) and, with --compare-jobs N, a first run with N jobs into a fresh folder.
5. Prints a table and the ratios against the targets, and writes a JSON file
   (default benchmarks/results/SIZE.json; when M and L are both there, the M to L growth too).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import generate

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(__file__).resolve().parent / ".cache"
RESULTS = Path(__file__).resolve().parent / "results"
TEMPLATES = ROOT / "templates"
AS_OF = generate.AS_OF.isoformat()

# The targets.
TARGET_NON_RENDER_SHARE = 0.15
TARGET_JOBS_SPEEDUP = 1.7
TARGET_FLOOR_RATIO = 0.9
TARGET_GROWTH = 11.0
TARGET_PEAK_BYTES = 1.5e9
TARGET_RERUN_RATIO = 0.10
TARGET_ONE_PAGE_CPU = 0.2
# Size U, one contract with 20,000 usage rows, summarised: the whole run, its memory and its PDF.
TARGET_U = {"wall_seconds": 8.0, "peak_memory_gb": 0.4, "pdf_pages": 2}
# Size P, a million Partner Center rows for 500 tenants: reading and validating them (the whole run is reported).
TARGET_P = {"read_validate_seconds": 45.0}
READ_VALIDATE = ("load", "load usage file", "validate")


# ---------------------------------------------------------------- input


def cached_input(size: str, seed: int, cache: Path) -> tuple[Path, dict]:
    folder = cache / f"{size}-{seed}-v{generate.GENERATOR_VERSION}"
    facts_file = folder / "facts.json"
    if facts_file.exists():
        return folder / "input", json.loads(facts_file.read_text())
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    facts = generate.generate(size, tmp / "input", seed)
    (tmp / "facts.json").write_text(json.dumps(facts, indent=2))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder / "input", facts


# ---------------------------------------------------------------- one CLI run


def _children_of() -> dict[int, list[int]]:
    """ppid -> pids, from /proc/*/stat."""
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:100].strip()
    except OSError:
        return "?"


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children_of(), [], [pid]
    while todo:
        kids = tree.get(todo.pop(), [])
        found += kids
        todo += kids
    return found


PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _memory_and_cpu(pid: int, with_pss: bool = True) -> tuple[int, int | None, float] | None:
    """(RSS, PSS, user + system seconds) of one process, from /proc; None once it is gone.
    PSS costs the kernel a walk over the process's pages (about 20 ms for 3 GB): ask for it sparingly."""
    try:
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(stat[11]) + int(stat[12])) / TICK
        pss = rss if with_pss else None
        if not with_pss:
            return rss, pss, cpu
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss = int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
        return rss, pss, cpu
    except (OSError, IndexError, ValueError):
        return None


class TreeSampler(threading.Thread):
    """Samples RSS summed over a process and all its descendants (Linux /proc) every interval,
    and PSS every pss_every-th sample (PSS is the honest total, as it counts shared pages once,
    but reading it costs the kernel time in proportion to the memory mapped), and the CPU time
    each process has used so far. The PSS peak is taken as the larger of the PSS samples and
    the RSS peak scaled by the PSS/RSS ratio seen nearest to it."""

    def __init__(self, pid: int, interval: float, pss_every: int = 10):
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.pss_every = pss_every
        self._ratio = 1.0  # PSS / RSS, last measured
        self.stop = threading.Event()
        self.peak_rss = self.peak_pss = 0
        self.peak_processes = 0
        self.per_process_rss: dict[int, int] = {}
        self.names: dict[int, str] = {}  # pid -> its command line, shortened
        self.cpu_seen: dict[int, float] = {}  # pid -> user + system seconds, last seen
        self.samples = 0

    def run(self) -> None:
        if not Path("/proc/self/stat").exists():
            return  # not Linux: no memory figures
        while not self.stop.is_set():
            rss = pss = alive = 0
            with_pss = self.samples % self.pss_every == 0
            for pid in [self.pid, *_descendants(self.pid)]:
                got = _memory_and_cpu(pid, with_pss)
                if got is None:
                    continue
                alive += 1
                rss += got[0]
                pss += got[1] or 0
                self.per_process_rss[pid] = max(self.per_process_rss.get(pid, 0), got[0])
                if pid not in self.names:
                    self.names[pid] = _command(pid)
                self.cpu_seen[pid] = got[2]
            if with_pss and rss:
                self._ratio = pss / rss
            else:
                pss = int(rss * self._ratio)
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
            self.peak_processes = max(self.peak_processes, alive)
            self.samples += 1
            self.stop.wait(self.interval)


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores, from /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / TICK


@dataclass
class RunResult:
    label: str
    jobs: int
    wall: float
    cpu: float  # user + system seconds of the whole tree
    stages: dict[str, float]
    issued: int
    rendered: int
    exit_code: int
    peak_rss: int
    peak_pss: int
    peak_processes: int
    max_process_rss: int
    processes: list = field(default_factory=list)  # (command line, peak RSS) of each process seen
    extra: dict = field(default_factory=dict)

    @property
    def render(self) -> float:
        return self.stages.get("render", 0.0)

    @property
    def other(self) -> float:
        """Wall time outside the pipeline's stages: interpreter start, imports, the summary."""
        return max(0.0, self.wall - sum(self.stages.values()))


def run_cli(label: str, input_dir: Path, out_dir: Path, jobs: int, interval: float, log: Path) -> RunResult:
    timings_file = out_dir.parent / f".{out_dir.name}-{label.replace(' ', '-')}-timings.json"
    timings_file.unlink(missing_ok=True)
    args = ["run", "--input", str(input_dir), "--output", str(out_dir), "--as-of", AS_OF, "--jobs", str(jobs),
            "--new-ledger"]  # each fresh folder a ledger of its own, on purpose (a rerun finds its ledger)
    cmd = [sys.executable, "-m", "billing_batch", *args, "--timings-json", str(timings_file)]
    pdfs_before = _count_pdfs(out_dir)
    busy_before = busy_seconds()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
        sampler = TreeSampler(proc.pid, interval)
        sampler.start()
        code = proc.wait()
    wall = time.perf_counter() - started
    sampler.stop.set()
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The batch and the children it reaped, or every process seen in its tree: render workers forked
    # from a forkserver are not the batch's children, and the forkserver is never reaped.
    cpu = max((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), sum(sampler.cpu_seen.values()))
    # Other people's work on the machine meanwhile: it slows the wall times down, not the CPU times.
    foreign = max(0.0, busy_seconds() - busy_before - cpu)
    workers_cpu = sum(v for pid, v in sampler.cpu_seen.items() if pid != proc.pid)
    if code not in (0, 1):
        raise SystemExit(f"the batch exited with {code}: see {log}")
    data = json.loads(timings_file.read_text())
    timings_file.unlink()
    stages = data.get("timings", data)
    return RunResult(
        label=label, jobs=jobs, wall=wall, cpu=cpu, stages={k: float(v) for k, v in stages.items()},
        issued=int(data.get("issued", 0)), rendered=_count_pdfs(out_dir) - pdfs_before, exit_code=code,
        peak_rss=sampler.peak_rss, peak_pss=sampler.peak_pss, peak_processes=sampler.peak_processes,
        max_process_rss=max(sampler.per_process_rss.values(), default=0),
        processes=[(sampler.names.get(pid, "?"), rss) for pid, rss in sampler.per_process_rss.items()],
        extra={"imports": data.get("imports"), "samples": sampler.samples, "cpu_timings": data.get("cpu_timings"),
               "workers_cpu": workers_cpu, "worker_processes": len(sampler.cpu_seen) - 1,
               "cpu_by_pid": sampler.cpu_seen, "names": sampler.names,
               "foreign_cpu": foreign, "foreign_load": foreign / wall,
               "loadavg_after": os.getloadavg()[0]},
    )


def _count_pdfs(out_dir: Path) -> int:
    folder = out_dir / "invoices"
    return sum(1 for _ in folder.glob("*.pdf")) if folder.exists() else 0


# ---------------------------------------------------------------- the render floor


def render_floor(ledger_path: Path, sample: int) -> dict:
    """A bare WeasyPrint loop over the HTML of (a sample of) the run's invoices, in this process."""
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    from billing_batch.documents import render
    from billing_batch.documents.look import STYLESHEET
    from billing_batch.ledger.store import Ledger

    with Ledger(ledger_path) as ledger:
        invoices = ledger.invoices()
    total = len(invoices)
    step = max(1, total // sample) if sample else 1
    chosen = invoices[::step][:sample] if sample else invoices
    del invoices  # a heap of 10,000 invoices would slow every garbage collection of the loop
    started = time.perf_counter()
    htmls = [render.invoice_html(inv, TEMPLATES) for inv in chosen]
    html_seconds = time.perf_counter() - started

    font_config = FontConfiguration()
    css = CSS(filename=str(TEMPLATES / STYLESHEET), font_config=font_config)
    base_url = TEMPLATES.as_uri() + "/"
    # One untimed render first: the first one loads the fonts.
    HTML(string=htmls[0], base_url=base_url).render(stylesheets=[css], font_config=font_config).write_pdf()
    per_invoice = []  # (pages, wall, cpu)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for html in htmls:
        w, c = time.perf_counter(), time.process_time()
        document = HTML(string=html, base_url=base_url).render(stylesheets=[css], font_config=font_config)
        document.write_pdf()
        per_invoice.append((len(document.pages), time.perf_counter() - w, time.process_time() - c))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    one_page = [c for pages, _, c in per_invoice if pages == 1]
    return {
        "invoices_in_ledger": total, "sampled": len(chosen), "wall": wall, "cpu": cpu,
        "invoices_per_second": len(chosen) / wall, "cpu_per_invoice": cpu / len(chosen),
        "pages": sum(p for p, _, _ in per_invoice), "html_seconds_per_invoice": html_seconds / len(chosen),
        "one_page_invoices": len(one_page),
        "one_page_cpu_median": statistics.median(one_page) if one_page else None,
        "cpu_per_page": cpu / max(1, sum(p for p, _, _ in per_invoice)),
        "lines_per_invoice": statistics.mean(len(i.draft.lines) for i in chosen),
    }


# ---------------------------------------------------------------- report


def machine() -> dict:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import weasyprint

    return {
        "cores": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1), "cpu": cpu_model,
        "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "weasyprint": weasyprint.__version__,
    }


def pdf_pages(out_dir: Path) -> int:
    """The most pages any PDF of the run has."""
    from pypdf import PdfReader

    return max((len(PdfReader(path).pages) for path in (out_dir / "invoices").glob("*.pdf")), default=0)


def summarise(facts: dict, first: RunResult, rerun: RunResult | None, baseline: RunResult | None,
              floor: dict | None, pages: int | None = None) -> dict:
    n = first.issued
    render_ips = first.rendered / first.render if first.render else None
    ratios: dict[str, dict] = {}

    def ratio(name: str, value: float | None, target: float, at_most: bool, text: str) -> None:
        if value is None:
            return
        ok = value <= target if at_most else value >= target
        ratios[name] = {"value": value, "target": target, "at_most": at_most, "met": ok, "what": text}

    ratio("non_render_share", (first.wall - first.render) / first.wall, TARGET_NON_RENDER_SHARE, True,
          "share of the run's wall time outside the render stage")
    ratio("peak_memory_gb", first.peak_pss / 1e9,
          TARGET_U["peak_memory_gb"] if facts["size"] == "U" else TARGET_PEAK_BYTES / 1e9, True,
          "peak memory of all processes together (summed PSS), GB")
    if facts["size"] == "P":
        ratio("read_validate_seconds", sum(first.stages.get(k, 0.0) for k in READ_VALIDATE),
              TARGET_P["read_validate_seconds"], True, "wall time of reading and validating, s (the peak while "
              "doing so alone: python -m benchmarks.partner_center_read)")
    if facts["size"] == "U":
        ratio("wall_seconds", first.wall, TARGET_U["wall_seconds"], True, "wall time of the first run, s")
        ratio("pdf_pages", pages, TARGET_U["pdf_pages"], True, "pages of the largest PDF")
    if floor and render_ips:
        ratio("render_vs_floor_per_core", render_ips / first.jobs / floor["invoices_per_second"],
              TARGET_FLOOR_RATIO, False, "render-stage invoices/s per job over the bare WeasyPrint loop's")
        if first.extra.get("workers_cpu") and first.jobs > 1:
            ratios["render_cpu_vs_floor"] = {
                "value": floor["cpu_per_invoice"] / (first.extra["workers_cpu"] / first.rendered), "target": None,
                "at_most": False, "met": None,
                "what": "CPU per invoice, bare loop over render workers' (load-independent)"}
        if floor["one_page_cpu_median"] is not None:
            ratio("one_page_cpu_seconds", floor["one_page_cpu_median"], TARGET_ONE_PAGE_CPU, True,
                  "CPU seconds of one render of a one-page invoice (bare loop, median)")
    if baseline and baseline.render and render_ips:
        ratio(f"jobs_{first.jobs}_vs_{baseline.jobs}", render_ips / (baseline.rendered / baseline.render),
              TARGET_JOBS_SPEEDUP, False, f"render throughput with {first.jobs} jobs over {baseline.jobs}")
    cpu_stages = first.extra.get("cpu_timings")
    if cpu_stages and first.extra.get("workers_cpu") and first.jobs > 1:
        # What the run would take alone on the machine: the main process's CPU per stage, the render
        # stage as the workers' CPU spread over the jobs. Only a guide when the machine was shared.
        rest = sum(v for k, v in cpu_stages.items() if k != "render")
        render_alone = first.extra["workers_cpu"] / first.jobs + cpu_stages.get("render", 0.0)
        ratios["non_render_share_if_alone"] = {
            "value": rest / (rest + render_alone), "target": None, "at_most": True, "met": None,
            "what": "share outside rendering, estimated from CPU times (as if alone on the machine)"}
    if rerun:
        ratio("rerun_vs_first", rerun.wall / first.wall, TARGET_RERUN_RATIO, True,
              "wall time of the unchanged rerun over the first run")
    return {
        "size": facts["size"], "input": facts, "as_of": AS_OF, "machine": machine(),
        "command": " ".join(["python -m benchmarks.run", *sys.argv[1:]]),
        "first_run": _as_dict(first), "rerun": _as_dict(rerun), "baseline_run": _as_dict(baseline),
        "render_floor": floor,
        "pdf_pages_max": pages,
        "invoices_per_second": n / first.wall if first.wall else None,
        "render_invoices_per_second": render_ips,
        "ratios": ratios,
    }


def _as_dict(r: RunResult | None) -> dict | None:
    if r is None:
        return None
    return {**{k: v for k, v in r.__dict__.items()}, "other": r.other}


def growth(results_dir: Path) -> dict | None:
    """M to L: how the wall time grew against the work (invoices), from the two result files."""
    try:
        m = json.loads((results_dir / "M.json").read_text())
        big = json.loads((results_dir / "L.json").read_text())
    except (OSError, ValueError):
        return None
    work = big["first_run"]["issued"] / m["first_run"]["issued"]
    wall = big["first_run"]["wall"] / m["first_run"]["wall"]
    stages = {k: big["first_run"]["stages"][k] / v for k, v in m["first_run"]["stages"].items()
              if v and k in big["first_run"]["stages"]}
    return {"work": work, "wall": wall, "target_for_10x": TARGET_GROWTH, "met": wall <= TARGET_GROWTH * work / 10,
            "stages": stages}


def show(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    first, rerun, base = result["first_run"], result["rerun"], result["baseline_run"]
    facts = result["input"]
    console.print(f"[bold]billing-batch benchmark, size {result['size']}[/bold]: {facts['contracts']:,} contracts, "
                  f"{facts['customers']:,} customers, {facts['subscriptions']:,} subscriptions, "
                  f"{facts['usage_rows']:,} usage rows; {first['issued']:,} invoices issued as of {AS_OF}")
    m = result["machine"]
    console.print(f"Machine: {m['cores']} cores, {m['memory_gb']} GB, {m['cpu']}; Python {m['python']}, "
                  f"WeasyPrint {m['weasyprint']}")

    table = Table(title="Wall time per stage, s (in brackets: CPU of the batch's main process)", title_justify="left")
    table.add_column("Stage")
    runs = [r for r in (first, base, rerun) if r]
    for r in runs:
        table.add_column(f"{r['label']} (jobs {r['jobs']})", justify="right")
    names = list(dict.fromkeys(k for r in runs for k in r["stages"]))

    def cell(r, name):
        cpu = (r["extra"].get("cpu_timings") or {}).get(name)
        return _s(r["stages"].get(name)) + (f" ({cpu:,.2f})" if cpu is not None else "")

    for name in names:
        table.add_row(name, *(cell(r, name) for r in runs))
    table.add_row("other (start, imports, summary)", *(_s(r["other"]) for r in runs))
    table.add_row("[bold]total wall[/bold]", *(f"[bold]{_s(r['wall'])}[/bold]" for r in runs))
    table.add_row("CPU of all processes", *(_s(r["cpu"]) for r in runs))
    table.add_row("CPU of the render workers", *(_s(r["extra"].get("workers_cpu")) for r in runs))
    table.add_row("other users' load meanwhile (cores)", *(f"{r['extra'].get('foreign_load', 0):.2f}" for r in runs))
    table.add_row("PDFs rendered", *(f"{r['rendered']:,}" for r in runs))
    table.add_row("peak memory, summed PSS (MB)", *(f"{r['peak_pss'] / 1e6:,.0f}" for r in runs))
    table.add_row("peak memory, summed RSS (MB)", *(f"{r['peak_rss'] / 1e6:,.0f}" for r in runs))
    table.add_row("largest single process RSS (MB)", *(f"{r['max_process_rss'] / 1e6:,.0f}" for r in runs))
    console.print(table)

    floor = result["render_floor"]
    if floor:
        console.print(
            f"Render floor (bare WeasyPrint, 1 process, {floor['sampled']:,} of {floor['invoices_in_ledger']:,} "
            f"invoices, {floor['lines_per_invoice']:.0f} lines and {floor['pages'] / floor['sampled']:.2f} pages "
            f"on average): {floor['invoices_per_second']:.2f} invoices/s, {floor['cpu_per_invoice']:.3f} s CPU per "
            f"invoice, {floor['cpu_per_page']:.3f} s per page; making the HTML adds "
            f"{floor['html_seconds_per_invoice'] * 1000:.1f} ms per invoice")
    console.print(f"Whole run: {result['invoices_per_second']:.2f} invoices/s; render stage: "
                  f"{result['render_invoices_per_second'] or 0:.2f} invoices/s with {first['jobs']} jobs")

    ratios = Table(title="Against the targets", title_justify="left")
    for col in ("Measure", "Value", "Target", "Met"):
        ratios.add_column(col, justify="left" if col == "Measure" else "right")
    for r in result["ratios"].values():
        if r["target"] is None:
            ratios.add_row(r["what"], f"{r['value']:.3f}", "", "")
            continue
        ratios.add_row(r["what"], f"{r['value']:.3f}", ("≤ " if r["at_most"] else "≥ ") + f"{r['target']:g}",
                       "[green]yes[/green]" if r["met"] else "[red]no[/red]")
    g = result.get("growth")
    if g:
        ratios.add_row(f"M to L wall growth for {g['work']:.1f}x the invoices", f"{g['wall']:.2f}",
                       f"≤ {TARGET_GROWTH * g['work'] / 10:.2f}", "[green]yes[/green]" if g["met"] else "[red]no[/red]")
    console.print(ratios)


def _s(v: float | None) -> str:
    return "" if v is None else f"{v:,.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--size", choices=list(generate.SIZES), default="S")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="--jobs of the batch (default: all cores)")
    p.add_argument("--compare-jobs", type=int, metavar="N",
                   help="also time a first run with N jobs (e.g. 1) for the jobs speed-up")
    p.add_argument("--keep", type=Path, metavar="DIR", help="keep the outputs in DIR (default: a temporary folder)")
    p.add_argument("--seed", type=int, default=generate.DEFAULT_SEED)
    p.add_argument("--cache", type=Path, default=CACHE, help="where generated inputs are kept")
    p.add_argument("--floor-sample", type=int, default=200,
                   help="invoices in the bare WeasyPrint loop, every k-th of the run's (0: all; default 200)")
    p.add_argument("--no-floor", action="store_true", help="skip the bare WeasyPrint loop")
    p.add_argument("--no-rerun", action="store_true", help="skip the unchanged rerun")
    p.add_argument("--interval", type=float, default=0.1, help="memory sampling interval in seconds")
    p.add_argument("--json", type=Path, help="where to write the result (default: benchmarks/results/SIZE.json)")
    args = p.parse_args(argv)

    input_dir, facts = cached_input(args.size, args.seed, args.cache)
    work = Path(tempfile.mkdtemp(prefix=f"bench-{args.size}-")) if args.keep is None else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        out = work / "output"
        shutil.rmtree(out, ignore_errors=True)
        log = work / "cli.log"
        log.unlink(missing_ok=True)
        print(f"Size {args.size}: first run, {args.jobs} jobs ...", flush=True)
        first = run_cli("first run", input_dir, out, args.jobs, args.interval, log)
        target = args.json or RESULTS / f"{args.size}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        # Kept at once: the steps below may fail (e.g. the ledger's code changed meanwhile).
        target.with_suffix(".first-run.json").write_text(json.dumps(_as_dict(first), indent=2))
        floor = rerun = baseline = None
        errors = {}
        if not args.no_floor:
            print("Render floor: bare WeasyPrint loop ...", flush=True)
            try:
                floor = render_floor(out / "ledger.sqlite", args.floor_sample)
            except Exception as exc:  # noqa: BLE001 - reported, and the other figures still count
                errors["render_floor"] = f"{type(exc).__name__}: {exc}"
        if not args.no_rerun:
            print("Unchanged rerun ...", flush=True)
            try:
                rerun = run_cli("rerun", input_dir, out, args.jobs, args.interval, log)
            except (Exception, SystemExit) as exc:  # noqa: BLE001
                errors["rerun"] = f"{type(exc).__name__}: {exc}"
        if args.compare_jobs:
            print(f"First run again with {args.compare_jobs} jobs ...", flush=True)
            base_out = work / f"output-jobs{args.compare_jobs}"
            shutil.rmtree(base_out, ignore_errors=True)
            baseline = run_cli("first run", input_dir, base_out, args.compare_jobs, args.interval, log)
            if args.keep is None:
                shutil.rmtree(base_out, ignore_errors=True)
        result = summarise(facts, first, rerun, baseline, floor, pdf_pages(out))
        result["errors"] = errors
        target.with_suffix(".first-run.json").unlink(missing_ok=True)
        if args.json is None and args.size in ("M", "L"):
            target.write_text(json.dumps(result, indent=2))  # growth() reads both sizes' files
            result["growth"] = growth(RESULTS)
        target.write_text(json.dumps(result, indent=2))
        show(result)
        for step, error in errors.items():
            print(f"{step} failed: {error}")
        print(f"Result: {target}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
