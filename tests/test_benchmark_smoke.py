"""The benchmark works end to end (not a timing gate), and rendering on a Dask cluster."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the benchmarks package lives beside billing_batch

from billing_batch.documents import render, render_pool  # noqa: E402
from billing_batch.documents.look import Look  # noqa: E402
from test_render import TEMPLATES, make_invoice  # noqa: E402

STAGES = ("load", "validate", "render", "write workbook")


def test_generator_is_seeded_and_matches_its_counts(tmp_path):
    from benchmarks import generate

    a = generate.generate("XS", tmp_path / "a", quiet=True)
    b = generate.generate("XS", tmp_path / "b", quiet=True)
    assert (tmp_path / "a" / "billing.xlsx").read_bytes() == (tmp_path / "b" / "billing.xlsx").read_bytes()
    assert {k: a[k] for k in ("contracts", "customers", "subscriptions", "usage_rows")} == {
        "contracts": 12, "customers": 6, "subscriptions": 120, "usage_rows": 1200}
    assert a["invoices"] == b["invoices"] >= a["contracts"] * 0.8


def test_split_usage_goes_to_a_second_workbook(tmp_path):
    from benchmarks import generate

    facts = generate.generate("XS", tmp_path, split_usage=True, quiet=True)
    assert facts["files"] == ["billing.xlsx", "usage.xlsx"]
    import openpyxl

    assert openpyxl.load_workbook(tmp_path / "usage.xlsx", read_only=True).sheetnames == ["Usage"]
    assert "Usage" not in openpyxl.load_workbook(tmp_path / "billing.xlsx", read_only=True).sheetnames


def test_benchmark_runs_end_to_end_on_xs(tmp_path):
    result_file = tmp_path / "result.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--size", "XS", "--jobs", "2", "--floor-sample", "4",
         "--cache", str(tmp_path / "cache"), "--json", str(result_file)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(result_file.read_text())
    first = result["first_run"]
    for stage in STAGES:
        assert stage in first["stages"], stage
    assert any(s.startswith("cycles") or "billing" in s for s in first["stages"])
    assert first["issued"] == result["input"]["invoices"] == first["rendered"] > 0
    assert first["peak_pss"] > 0 and first["wall"] > first["stages"]["render"] > 0
    assert result["rerun"]["rendered"] == 0 and result["rerun"]["issued"] == 0
    assert result["render_floor"]["sampled"] == 4
    for name in ("non_render_share", "peak_memory_gb", "render_vs_floor_per_core", "rerun_vs_first"):
        assert name in result["ratios"], name
    assert "Against the targets" in proc.stdout


# ---------------------------------------------------------------- chunking and Dask


def invoices(count: int):
    return [dataclasses.replace(make_invoice(), number=f"INV-{900000 + i}") for i in range(count)]


def test_process_pool_renders_chunks_and_reports_each_invoice(tmp_path):
    batch = invoices(5)
    done = []
    paths = render_pool.render_invoices(batch, tmp_path, TEMPLATES, jobs=2, on_done=done.append)
    assert sorted(i.number for i in done) == sorted(i.number for i in batch)
    for invoice, path in zip(batch, paths):
        assert invoice.number in PdfReader(path).pages[0].extract_text()


def test_chunk_size_keeps_many_chunks_per_worker():
    assert render_pool.chunk_size(10, 2) == 1
    assert render_pool.chunk_size(10_000, 2) == render_pool.CHUNK_MAX
    assert render_pool.chunk_size(100, 2) == 3


def test_unknown_executor_is_refused(tmp_path):
    with pytest.raises(ValueError):
        render_pool.render_invoices(invoices(1), tmp_path, TEMPLATES, executor="threads")


distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed (billing-batch[dask])")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0",
                                  silence_logs=40) as cluster:
        yield cluster


def test_dask_executor_renders_on_the_cluster_and_the_driver_writes(tmp_path, cluster):
    batch = invoices(3)
    done = []
    paths = render_pool.render_invoices(batch, tmp_path, TEMPLATES, on_done=done.append, executor="dask",
                                   scheduler=cluster.scheduler_address)
    assert paths == [tmp_path / "invoices" / f"{i.number}.pdf" for i in batch]
    assert sorted(i.number for i in done) == [i.number for i in batch]
    for invoice, path in zip(batch, paths):
        assert invoice.number in PdfReader(path).pages[0].extract_text()
    assert sorted(p.name for p in (tmp_path / "invoices").iterdir()) == [p.name for p in paths]  # no temp files


def test_dask_executor_templates_travel_with_the_tasks(tmp_path, cluster):
    # A templates folder that only the driver has: the workers get its files, not its path.
    templates = tmp_path / "my-templates"
    templates.mkdir()
    (templates / render.STYLESHEET).write_text("p { color: red }")
    (templates / render.TEMPLATE).write_text("<p>Custom {{ number }}</p>")
    out = tmp_path / "out"
    (path,) = render_pool.render_invoices(invoices(1), out, templates, executor="dask",
                                     scheduler=cluster.scheduler_address)
    assert "Custom INV-900000" in PdfReader(path).pages[0].extract_text()


def test_dask_executor_takes_the_custom_templates_the_defaults_and_the_logo(tmp_path, cluster):
    # Only invoice.html is the company's own: invoice.css comes from the defaults, the logo from
    # elsewhere on the driver; the workers get all three.
    custom = tmp_path / "brand"
    custom.mkdir()
    (custom / render.TEMPLATE).write_text('<img src="{{ logo }}"><h1>Brand {{ number }}</h1>')
    logo = tmp_path / "art" / "logo.png"
    logo.parent.mkdir()
    Image.new("RGB", (40, 20), "navy").save(logo)
    chosen = Look.of(Look(custom, TEMPLATES, logo))
    (path,) = render_pool.render_invoices(invoices(1), tmp_path / "out", chosen, executor="dask",
                                     scheduler=cluster.scheduler_address)
    page = PdfReader(path).pages[0]
    assert "BRAND INV-900000" in page.extract_text()  # upper case: the default stylesheet's h1
    assert len(page.images) == 1


def test_dask_executor_reports_a_render_error(tmp_path, cluster):
    templates = tmp_path / "bad"
    templates.mkdir()
    (templates / render.STYLESHEET).write_text("")
    (templates / render.TEMPLATE).write_text('<img src="http://example.com/x.png">')
    with pytest.raises(render.RenderError):
        render_pool.render_invoices(invoices(1), tmp_path / "out", templates, executor="dask",
                               scheduler=cluster.scheduler_address)


def test_dask_executor_needs_a_scheduler(tmp_path):
    with pytest.raises(render.RenderError, match="--scheduler"):
        render_pool.render_invoices(invoices(1), tmp_path, TEMPLATES, executor="dask")
