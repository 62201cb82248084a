"""The web console (`billing-batch serve`) against the command line, over HTTP as a browser uses it (issue #24).

    python -m benchmarks.console [--runs 3] [--generate-size K] [--preview-size M] [--skip generate|preview]
                                 [--json PATH]

(a) Bulk generation of 1,000 contracts. The input is benchmarks.generate's seeded workbook of size K (1,000
    contracts, 500 customers, 10,000 subscriptions, 10,000 usage rows: M's book of business with a tenth of its
    usage, so that a run takes about a minute on 2 cores; --generate-size M takes M itself). Each run copies it
    into a fresh workspace (and a fresh list of known ledgers) and
    - console: starts `billing-batch serve WORKSPACE --no-browser --port 0` (not timed), then times what a person's
      browser does: POST /generate/preview with every contract (select_all, each contract's oldest cycle not
      billed, as of 2026-11-02), POST /generate/proceed with the preview's fields (following its redirect to
      /generate, as the browser does), then GET /generate/jobs/ID every 0.2 s until the job has finished;
    - CLI: times `billing-batch generate --contracts-file IDS --as-of 2026-11-02 --yes` in a copy of the same
      workspace, with the same contracts in the same order (the preview printed, as in a terminal: the dialog's
      steps, preview then bill), and the same with --no-preview (billing without showing anything first);
    - the CPU time of each process tree (the server or the command, and their render workers), and the CPU the
      rest of the machine used meanwhile (on a shared machine the wall times swing with it; CPU times hardly).
    All render with every core (the console's jobs are the CLI's default). Target: the console within 10 %.
(b) Size M, the preview of the month: GET /month?as_of=2026-11-02 (the whole page read) against
    `billing-batch run --preview --as-of 2026-11-02` (its output read to the end), on the same workspace, with an
    empty ledger. Target: the page within 1.2 times the CLI.

Runs alternate console and CLI; the figures are the medians of --runs runs. The table is printed and the figures
written to benchmarks/results/console.json; docs/performance.md ("The console") holds the latest ones."""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from benchmarks import generate
from benchmarks.run import (
    CACHE,
    RESULTS,
    TreeSampler,
    _descendants,
    _memory_and_cpu,
    busy_seconds,
    cached_input,
    machine,
)

AS_OF = generate.AS_OF.isoformat()
TARGET_GENERATE = 1.10  # console wall time / CLI wall time, 1,000 contracts
TARGET_PREVIEW = 1.20  # GET /month / `run --preview`, size M
POLL = 0.2  # seconds between two looks at the job (the page itself polls every second)
# K: 1,000 contracts with M's customers and subscriptions and a tenth of its usage (one-page invoices, mostly).
generate.SIZES.setdefault("K", generate.Size(1_000, 500, 10_000, 10_000, False))
COMMAND = Path(sys.executable).with_name("billing-batch")


# ---------------------------------------------------------------- CPU of a process tree


class Meter:
    """The CPU time a process and its descendants (render workers included) spend from now on, sampled from /proc
    every 0.1 s (a worker that ends between two samples loses at most its last 0.1 s), and the CPU the rest of the
    machine spent meanwhile: other people's work stretches wall times, not CPU times."""

    def __init__(self, pid: int):
        self.baseline = {p: got[2] for p in [pid, *_descendants(pid)] if (got := _memory_and_cpu(p, False))}
        self.busy = busy_seconds()
        self.sampler = TreeSampler(pid, 0.1, pss_every=10**9)
        self.sampler.start()

    def stop(self) -> dict:
        time.sleep(0.15)  # one more sample
        self.sampler.stop.set()
        self.sampler.join()
        cpu = sum(v - self.baseline.get(p, 0.0) for p, v in self.sampler.cpu_seen.items())
        return {"cpu": cpu, "other_cpu": max(0.0, busy_seconds() - self.busy - cpu)}


# ---------------------------------------------------------------- a console, over HTTP


class Console:
    """`billing-batch serve` on a workspace, and an HTTP client signed in as the browser is (the session cookie,
    the page's CSRF token, the console's own Origin)."""

    def __init__(self, workspace: Path, env: dict):
        self.process = subprocess.Popen([str(COMMAND), "serve", str(workspace), "--no-browser", "--port", "0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
        url = self.process.stdout.readline().strip()
        match = re.fullmatch(r"(http://127\.0\.0\.1:(\d+))/\?token=(\S+)", url)
        if not match:
            self.stop()
            raise RuntimeError(f"billing-batch serve printed {url!r}")
        self.origin, port, token = match.group(1), match.group(2), match.group(3)
        self.headers = {"Cookie": f"bb_session_{port}={token}", "Origin": self.origin}
        home = self.get("/")[1]
        self.headers["X-CSRF-Token"] = html.unescape(re.search(r'name="csrf" value="([^"]+)"', home).group(1))

    def request(self, path: str, form: dict | list | None = None) -> tuple[int, str]:
        """(status, body) of a GET, or of a form POST (redirects followed, as the browser does)."""
        data = urllib.parse.urlencode(form, doseq=True).encode() if form is not None else None
        request = urllib.request.Request(self.origin + path, data=data, headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=3600) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def get(self, path: str) -> tuple[int, str]:
        return self.request(path)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def proceed_fields(page: str) -> dict:
    """The preview's proceed form, as the browser sends it back (hidden inputs and the contracts' textarea)."""
    form = page[page.index('id="proceed-form"'):]
    fields = {name: html.unescape(value) for name, value in
              re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">', form)}
    fields.pop("csrf", None)
    fields["contracts"] = html.unescape(re.search(r'<textarea name="contracts" hidden>(.*?)</textarea>', form,
                                                  re.DOTALL).group(1))
    return fields


# ---------------------------------------------------------------- (a) bulk generation


def workspace(input_dir: Path, where: Path) -> tuple[Path, dict]:
    """A fresh workspace holding the input in inbox/, and an environment with its own list of known ledgers."""
    shutil.rmtree(where, ignore_errors=True)
    shutil.copytree(input_dir, where / "workspace" / "inbox")
    env = {**os.environ, "BILLING_BATCH_DATA": str(where / "known-ledgers")}
    env.pop("DISPLAY", None)
    return where / "workspace", env


def documents(folder: Path) -> int:
    return sum(1 for _ in (folder / "output" / "invoices").glob("*.pdf"))


def generate_in_console(input_dir: Path, where: Path) -> tuple[dict, list[str]]:
    folder, env = workspace(input_dir, where)
    console = Console(folder, env)
    try:
        meter = Meter(console.process.pid)
        started = time.perf_counter()
        status, page = console.request("/generate/preview", {"select_all": "1", "cycle_mode": "oldest",
                                                             "cycle_day": "", "as_of": AS_OF})
        previewed = time.perf_counter()
        if status != 200 or 'id="proceed-form"' not in page:
            raise RuntimeError(f"the preview answered {status}: {page[:500]}")
        preview_bytes = len(page.encode())
        fields = proceed_fields(page)
        ids = fields["contracts"].split()
        status, page = console.request("/generate/proceed", fields)  # 303 -> GET /generate, as the browser
        proceeded = time.perf_counter()
        job = re.search(r'hx-get="(/generate/jobs/[^"]+)"', page)
        if status != 200 or job is None:
            raise RuntimeError(f"proceed answered {status} and no running job: {page[:500]}")
        polls = 0
        while True:
            polls += 1
            status, fragment = console.get(job.group(1))
            if 'hx-get="' not in fragment:  # finished: the fragment polls no more
                break
            time.sleep(POLL)
        finished = time.perf_counter()
        used = meter.stop()
        outcome = re.search(r'class="outcome[^"]*"><strong>([^<]+)</strong>(?::\s*([^<]+))?', fragment)
    finally:
        console.stop()
    return {"wall": finished - started, "preview": previewed - started, "proceed_request": proceeded - previewed,
            "job": finished - previewed, "polls": polls, "preview_bytes": preview_bytes,
            "outcome": " ".join(g for g in (outcome.groups() if outcome else ()) if g).strip(),
            "documents": documents(folder), **used}, ids


def generate_in_cli(input_dir: Path, where: Path, ids: list[str], preview: bool = True) -> dict:
    folder, env = workspace(input_dir, where)
    contracts = where / "contracts.txt"
    contracts.write_text("\n".join(ids) + "\n")
    with open(where / "cli-output.txt", "w") as out:
        started = time.perf_counter()
        process = subprocess.Popen([str(COMMAND), "generate", "--contracts-file", str(contracts), "--as-of", AS_OF,
                                    "--yes", *(() if preview else ("--no-preview",))], cwd=folder, env=env,
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        meter = Meter(process.pid)
        code = process.wait()
        finished = time.perf_counter()
    return {"wall": finished - started, "exit_code": code, "documents": documents(folder), **meter.stop()}


def bench_generate(size: str, runs: int, work: Path) -> dict:
    input_dir, facts = cached_input(size, generate.DEFAULT_SEED, CACHE)
    console_runs, cli_runs, bare_runs = [], [], []
    for n in range(1, runs + 1):
        result, ids = generate_in_console(input_dir, work / f"generate-console-{n}")
        console_runs.append(result)
        print(f"  generate {n}/{runs}: console {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, others' CPU "
              f"{result['other_cpu']:.1f} s ({result['documents']} PDFs)", flush=True)
        result = generate_in_cli(input_dir, work / f"generate-cli-{n}", ids)
        cli_runs.append(result)
        print(f"  generate {n}/{runs}: CLI     {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, others' CPU "
              f"{result['other_cpu']:.1f} s ({result['documents']} PDFs, exit {result['exit_code']})", flush=True)
        result = generate_in_cli(input_dir, work / f"generate-bare-{n}", ids, preview=False)
        bare_runs.append(result)
        print(f"  generate {n}/{runs}: CLI --no-preview {result['wall']:.1f} s, CPU {result['cpu']:.1f} s, others' "
              f"CPU {result['other_cpu']:.1f} s ({result['documents']} PDFs)", flush=True)
    console = statistics.median(r["wall"] for r in console_runs)
    cli = statistics.median(r["wall"] for r in cli_runs)
    pairs = [a["wall"] / b["wall"] for a, b in zip(console_runs, cli_runs)]
    bare = statistics.median(r["wall"] for r in bare_runs)
    return {"size": size, "input": facts, "contracts": len(ids), "console_runs": console_runs,
            "cli_runs": cli_runs, "console_wall": console, "cli_wall": cli, "ratio": console / cli,
            "paired_ratio": statistics.median(pairs),
            "console_cpu": statistics.median(r["cpu"] for r in console_runs),
            "cli_cpu": statistics.median(r["cpu"] for r in cli_runs),
            "no_preview_runs": bare_runs, "no_preview_wall": bare, "ratio_no_preview": console / bare,
            "paired_ratio_no_preview": statistics.median(a["wall"] / b["wall"]
                                                         for a, b in zip(console_runs, bare_runs)),
            "no_preview_cpu": statistics.median(r["cpu"] for r in bare_runs),
            "console_preview": statistics.median(r["preview"] for r in console_runs),
            "console_job": statistics.median(r["job"] for r in console_runs),
            "documents": {"console": [r["documents"] for r in console_runs],
                          "cli": [r["documents"] for r in cli_runs]},
            "target": TARGET_GENERATE, "met": console / cli <= TARGET_GENERATE}


# ---------------------------------------------------------------- (b) the month's preview


def bench_preview(size: str, runs: int, work: Path) -> dict:
    input_dir, facts = cached_input(size, generate.DEFAULT_SEED, CACHE)
    folder, env = workspace(input_dir, work / "preview")
    console = Console(folder, env)
    page_runs, cli_runs = [], []
    try:
        for n in range(1, runs + 1):
            meter = Meter(console.process.pid)
            started = time.perf_counter()
            status, page = console.get(f"/month?as_of={AS_OF}")
            wall = time.perf_counter() - started
            used = meter.stop()
            if status != 200 or "Approve and bill" not in page:
                raise RuntimeError(f"/month answered {status}: {page[:500]}")
            invoices = re.search(r"Invoices\s*<span[^>]*>\((\d[\d,]*)\)", page)
            page_runs.append({"wall": wall, "bytes": len(page.encode()), **used,
                              "invoices": invoices.group(1) if invoices else None})
            with open(work / "preview-cli-output.txt", "wb") as out:
                started = time.perf_counter()
                process = subprocess.Popen([str(COMMAND), "run", "--preview", "--as-of", AS_OF], cwd=folder,
                                           env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
                meter = Meter(process.pid)
                code = process.wait()
                wall_cli = time.perf_counter() - started
            cli_runs.append({"wall": wall_cli, "bytes": (work / "preview-cli-output.txt").stat().st_size,
                             "exit_code": code, **meter.stop()})
            print(f"  preview {n}/{runs}: page {wall:.2f} s, CLI {wall_cli:.2f} s", flush=True)
    finally:
        console.stop()
    page_wall = statistics.median(r["wall"] for r in page_runs)
    cli = statistics.median(r["wall"] for r in cli_runs)
    return {"size": size, "input": facts, "page_runs": page_runs, "cli_runs": cli_runs, "page_wall": page_wall,
            "cli_wall": cli, "page_cpu": statistics.median(r["cpu"] for r in page_runs),
            "cli_cpu": statistics.median(r["cpu"] for r in cli_runs), "ratio": page_wall / cli,
            "target": TARGET_PREVIEW, "met": page_wall / cli <= TARGET_PREVIEW}


# ---------------------------------------------------------------- report


def row(what: str, console: float | None = None, cli: float | None = None, target: float | None = None,
        ratio: float | None = None, digits: int = 1) -> None:
    """One line of the table: the two figures, their ratio, and the target it is held to."""
    ratio = ratio if ratio is not None else (console / cli if console is not None and cli else None)
    cells = [f"{what:<56}"] + [f"{v:>9.{digits}f}" if v is not None else " " * 9 for v in (console, cli)]
    cells.append(f"{ratio:>7.3f}" if ratio is not None else " " * 7)
    if target is not None and ratio is not None:
        cells.append(f"{target:>7.2f}  {'yes' if ratio <= target else 'NO'}")
    print(" ".join(cells))


def show(result: dict) -> None:
    print()
    print(f"{'what':<56} {'console':>9} {'CLI':>9} {'ratio':>7} {'target':>7}  met")
    if "generate" in result:
        g = result["generate"]
        row(f"(a) generate {g['contracts']:,} contracts, size {g['size']}: wall (s)", g["console_wall"],
            g["cli_wall"], g["target"])
        row("    CPU of the process trees (s)", g["console_cpu"], g["cli_cpu"])
        row("    the median of the run pairs' ratios", ratio=g["paired_ratio"])
        row("    against the CLI with --no-preview: wall (s)", g["console_wall"], g["no_preview_wall"], g["target"])
        row("    CPU of the process trees (s)", g["console_cpu"], g["no_preview_cpu"])
        row("    the median of the run pairs' ratios", ratio=g["paired_ratio_no_preview"])
        row("    the console's preview request (s)", g["console_preview"])
        row("    the console's proceed, to the job seen finished (s)", g["console_job"])
    if "preview" in result:
        p = result["preview"]
        row(f"(b) preview, size {p['size']}: GET /month, run --preview (s)", p["page_wall"], p["cli_wall"],
            p["target"], digits=2)
        row("    CPU of the process trees (s)", p["page_cpu"], p["cli_cpu"], digits=2)
    print(f"medians of {result['runs']} runs; {result['machine']['cores']} cores; {result['command']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.console", description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--generate-size", default="K", choices=sorted(generate.SIZES))
    p.add_argument("--preview-size", default="M", choices=sorted(generate.SIZES))
    p.add_argument("--skip", choices=("generate", "preview"))
    p.add_argument("--keep", type=Path, help="keep the workspaces in this folder")
    p.add_argument("--json", type=Path, default=RESULTS / "console.json")
    args = p.parse_args(argv)
    command = "python -m benchmarks.console" + (f" {' '.join(argv if argv is not None else sys.argv[1:])}"
                                                 if (argv if argv is not None else sys.argv[1:]) else "")
    result = {"command": command, "as_of": AS_OF, "runs": args.runs, "machine": machine(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-console-"))
    try:
        if args.skip != "generate":
            result["generate"] = bench_generate(args.generate_size, args.runs, work)
        if args.skip != "preview":
            result["preview"] = bench_preview(args.preview_size, args.runs, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    show(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
