"""Rendering a batch of invoices to files: in this process, in worker processes forked warm from a
forkserver (render_warm), or on a Dask cluster. One invoice's PDF: render.
"""
from __future__ import annotations

import ctypes
import gc
import itertools
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path

from billing_batch.documents import render
from billing_batch.documents.look import Look
from billing_batch.documents.render import (
    RenderError,
    Templates,
    render_to_file,
    write_einvoice,
    render_pdf,
    warm,
)
from billing_batch.files import write_atomic
from billing_batch.model import Invoice

# ---------------------------------------------------------------- batches: in-process, processes or Dask
#
# What a batch costs besides WeasyPrint, and what is done about it:
# * Workers are forked from a forkserver: a process started afresh (so it holds none of the batch's
#   threads, ledger connection or heap) that imports WeasyPrint, parses the default look and loads
#   its fonts once (billing_batch.documents.render_warm). start_workers starts it while the input is read; a
#   worker forked from it starts in milliseconds, warm, instead of spending 0.6-0.7 s of CPU on the
#   imports and fonts of a spawned interpreter. Forking there is safe: it has one thread (fontconfig,
#   Pango and cairo start none) and it never renders an invoice itself.
# * A run of one invoice renders in the calling process, and so does a run of fewer than
#   IN_PROCESS_BELOW invoices when this process has WeasyPrint warm for the look already (the preflight
#   of a custom look did it): there, workers would gain less than they cost. Otherwise workers pay from
#   two invoices: forking two takes milliseconds, loading WeasyPrint here 0.7-1.2 s of CPU
#   (measured: docs/performance.md).
# * Each task carries a chunk of a few invoices, so the pickling and the queue round trips are paid
#   per chunk; chunks stay small enough (at most CHUNK_MAX) that the last ones balance across workers.
# * Workers are replaced after about INVOICES_PER_WORKER invoices, which bounds their memory; a
#   worker forked from the forkserver starts warm, so a replacement costs next to nothing.
# * At most IN_FLIGHT_PER_WORKER chunks per worker are submitted at a time: waiting is O(workers)
#   per completion, not O(invoices) (concurrent.futures.wait over 10,000 futures, once per
#   completion, is quadratic), and the parent holds no queue of 10,000 pickled invoices.

CHUNK_MAX = 8
IN_FLIGHT_PER_WORKER = 3
INVOICES_PER_WORKER = 1500  # then the pool is replaced (max_tasks_per_child can deadlock on 3.11: cpython#115634)
IN_PROCESS_BELOW = 6  # invoices, when this process is warm for the look (docs/performance.md)
EXECUTORS = ("process", "dask")
DEFAULT_LOOK = Look.of(Look())
WARM_MODULE = "billing_batch.documents.render_warm"


def chunk_size(count: int, workers: int) -> int:
    """About 16 chunks per worker, 1 to CHUNK_MAX invoices each."""
    return max(1, min(CHUNK_MAX, count // (workers * 16)))


def _chunks(items: Sequence, size: int) -> list[Sequence]:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _render_chunk_to_files(pairs: Sequence[tuple[Invoice, Path]], look: Look) -> int:
    for invoice, target in pairs:
        render_to_file(invoice, target, look)
    return len(pairs)


def _pool_context() -> multiprocessing.context.BaseContext:
    """forkserver, preloading render_warm; spawn where there is no forkserver (not on Linux or macOS)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover - Windows
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([WARM_MODULE])  # only read when the forkserver starts
    return context


def start_workers(jobs: int, executor: str = "process") -> None:
    """Start what the render workers are forked from, now, so that it is warm by the time the invoices
    are ready: call it before reading the input, which it does not need. Does nothing for one job."""
    if jobs > 1 and executor == "process" and _pool_context().get_start_method() == "forkserver":
        multiprocessing.forkserver.ensure_running()


def _die_with_parent() -> None:
    """A worker must not outlive a run that was killed: it would hold the run's files and pipes. A
    worker's parent is the forkserver, whose parent is the batch (the thread that started it)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the parent died before we asked
            os._exit(1)


def _init_worker(look: Look) -> None:
    _die_with_parent()
    warm(look)
    gc.freeze()  # as in the forkserver: a custom look's resources live as long as the worker


def _render_in_process(invoices: Sequence[Invoice], targets: Sequence[Path], look: Look,
                       on_done: Callable[[Invoice], None] | None) -> None:
    # The caller's heap (the validated input: a million usage rows on a large run) would be walked
    # by every full garbage collection that WeasyPrint's allocations trigger: set it aside.
    # Measured: 0.089 -> 0.075 s CPU per invoice beside a million-object heap.
    gc.freeze()
    try:
        for invoice, target in zip(invoices, targets):
            render_to_file(invoice, target, look)
            if on_done:
                on_done(invoice)
    finally:
        gc.unfreeze()


def render_invoices(
    invoices: Sequence[Invoice],
    out_dir: Path,
    look: Templates,
    jobs: int = 1,
    on_done: Callable[[Invoice], None] | None = None,
    executor: str = "process",
    scheduler: object = None,
) -> list[Path]:
    """Render each invoice to out_dir / invoice.pdf_name (e.g. out_dir/invoices/INV-000001.pdf), atomically
    (write to a temp file in the same folder, then os.replace). Returns the paths in input order.
    on_done is called in the calling process once per finished invoice, after its PDF is in place
    (for a progress bar, and for recording progress).

    executor="process": jobs > 1 uses a ProcessPoolExecutor of min(jobs, chunks) workers forked from a
    warm forkserver (start_workers); jobs == 1, one invoice, or fewer than IN_PROCESS_BELOW invoices when this
    process has rendered with the look already, render in-process.
    executor="dask": the invoices go to the Dask cluster whose scheduler is at `scheduler` (an address
    such as "tcp://10.0.0.5:8786", or a distributed.Client); see _render_dask."""
    if executor not in EXECUTORS:
        raise ValueError(f"unknown executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    look = Look.of(look)
    targets = [Path(out_dir) / invoice.pdf_name for invoice in invoices]
    folders = {t.parent for t in targets} | {(Path(out_dir) / i.einvoice_name).parent for i in invoices
                                             if i.einvoice_name}
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    if not invoices:
        return targets
    if executor == "dask":
        _render_dask(invoices, targets, look, on_done, scheduler)
        return targets

    workers = min(jobs, len(invoices))
    # render._WARM is read through its module, which owns it (render_pdf and warm add to it)
    if workers <= 1 or (len(invoices) < IN_PROCESS_BELOW and look in render._WARM):
        _render_in_process(invoices, targets, look, on_done)
        return targets

    chunks = _chunks(list(zip(invoices, targets)), chunk_size(len(invoices), workers))
    workers = min(workers, len(chunks))
    context = _pool_context()
    per_pool = max(1, workers * INVOICES_PER_WORKER // len(chunks[0]))
    for start in range(0, len(chunks), per_pool):
        # A fresh pool now and then: a worker's memory grows with what it has rendered
        # (about 60 kB an invoice, inside WeasyPrint), to 380 MB after 5,000 invoices.
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                 initargs=(look,)) as pool:
            try:
                submit = partial(pool.submit, _render_chunk_to_files, look=look)
                for chunk in _bounded(submit, chunks[start:start + per_pool], workers * IN_FLIGHT_PER_WORKER):
                    if on_done:
                        for invoice, _ in chunk:
                            on_done(invoice)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    return targets


def _bounded(submit: Callable[[Sequence], Future], chunks: Sequence[Sequence], limit: int) -> Iterator[Sequence]:
    """Submit the chunks with at most `limit` in flight; yield each chunk once its task has succeeded
    (re-raising the first task error), in completion order."""
    pending: dict[Future, Sequence] = {}
    queue = iter(chunks)
    for chunk in itertools.islice(queue, limit):
        pending[submit(chunk)] = chunk
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            chunk = pending.pop(future)
            future.result()  # re-raises the worker's error
            for nxt in itertools.islice(queue, 1):
                pending[submit(nxt)] = nxt
            yield chunk


# ---------------------------------------------------------------- Dask
#
# Workers return the PDF bytes and this process (the driver) writes them: the output folder
# need not be shared with the cluster, and files appear, atomically, only where the ledger is.
# A PDF is 15-40 kB, so 10,000 invoices move about 250 MB over the network, a few seconds on
# any LAN: small beside the render time. The look (templates folders and logo) travels with the
# tasks (its files are read once here and scattered to the workers once; a worker unpacks them
# into a private temporary folder), so workers need the billing_batch package (pip install
# "billing-batch[dask]") of the same version, and nothing else of this machine.


def _render_dask(invoices: Sequence[Invoice], targets: Sequence[Path], look: Look,
                 on_done: Callable[[Invoice], None] | None, scheduler: object) -> None:
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RenderError('--executor dask needs Dask: pip install "billing-batch[dask]"') from exc
    own_client = not isinstance(scheduler, Client)
    if own_client and not scheduler:
        raise RenderError("--executor dask needs --scheduler ADDRESS (such as tcp://10.0.0.5:8786)")
    client = Client(scheduler, set_as_default=False) if own_client else scheduler
    try:
        workers = max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))
        bundle = client.scatter(_template_bundle(look), broadcast=True)
        pairs = list(zip(invoices, targets))
        chunks = _chunks(pairs, chunk_size(len(pairs), workers))

        def submit(chunk: Sequence[tuple[Invoice, Path]]) -> Future:
            return client.submit(_dask_render_chunk, [inv for inv, _ in chunk], bundle, pure=False)

        for chunk, pdfs in _bounded_dask(client, submit, chunks, workers * IN_FLIGHT_PER_WORKER):
            for (invoice, target), pdf in zip(chunk, pdfs):
                write_einvoice(invoice, target)  # a few milliseconds: made here, like the file writes
                write_atomic(target, pdf)
                if on_done:
                    on_done(invoice)
    finally:
        if own_client:
            client.close()


def _bounded_dask(client, submit, chunks: Sequence[Sequence], limit: int) -> Iterator[tuple[Sequence, list[bytes]]]:
    """As _bounded, for Dask futures: yield (chunk, its PDFs) in completion order."""
    from distributed import as_completed

    queue = iter(chunks)
    pending = {}
    for chunk in itertools.islice(queue, limit):
        pending[submit(chunk)] = chunk
    completed = as_completed(list(pending), loop=client.loop)
    for future in completed:
        chunk = pending.pop(future)
        pdfs = future.result()  # re-raises the worker's error
        for nxt in itertools.islice(queue, 1):
            new = submit(nxt)
            pending[new] = nxt
            completed.add(new)
        yield chunk, pdfs


Bundle = tuple[tuple[str, str, bytes], ...]  # (custom, default or logo; file name; its bytes)


def _template_bundle(look: Look) -> Bundle:
    """The look's files (the folders' files, not subfolders, and the logo) as one value."""
    parts = [(role, p.name, p.read_bytes()) for role, folder in (("custom", look.custom), ("default", look.default))
             if folder for p in sorted(folder.iterdir()) if p.is_file()]
    return tuple(parts + ([("logo", look.logo.name, look.logo.read_bytes())] if look.logo else []))


_BUNDLES: dict[int, Look] = {}


def _unpack_bundle(bundle: Bundle) -> Look:
    """On a worker: the bundle's files in a private temporary folder, unpacked once per content."""
    key = hash(bundle)
    look = _BUNDLES.get(key)
    if look is None:
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="billing-batch-templates-"))
        for role, name, data in bundle:
            (folder / role).mkdir(exist_ok=True)
            (folder / role / name).write_bytes(data)
        roles = {role: folder / role / name for role, name, _ in bundle}
        look = Look.of(Look(folder / "custom" if "custom" in roles else None, folder / "default", roles.get("logo")))
        _BUNDLES[key] = look
    return look


def _dask_render_chunk(invoices: Sequence[Invoice], bundle: Bundle) -> list[bytes]:
    look = _unpack_bundle(bundle)
    return [render_pdf(invoice, look) for invoice in invoices]
