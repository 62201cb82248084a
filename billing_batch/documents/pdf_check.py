"""`ledger check`, second half: does every PDF show its invoice as the ledger has it (number, total,
VOID mark)? Reads only. Reading the PDFs' text is the costly part of the check and runs in worker
processes."""
from __future__ import annotations

import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path


from billing_batch.documents.invoice_view import invoice_view
from billing_batch.ledger.check import Finding, Remedies, Result
from billing_batch.model import Invoice

POOL_FROM = 200  # fewer PDFs than this are read in this process: starting workers would cost more


def check_pdfs(checked: Result, output: Path, jobs: int = 1) -> Result:
    """The ledger's check with the findings about the PDFs in output/invoices added."""
    # Where the ledger itself is wrong, a PDF that disagrees with it is to be kept, not remade.
    edited = {f.number for f in checked.findings if f.check != "dates"}
    found = _pdfs(list(checked.invoices), output, set(checked.stale), edited, Remedies(output), jobs)
    return replace(checked, findings=checked.findings + tuple(found))


def _pdfs(invoices: list[Invoice], output: Path, stale: set[str], edited: set[str], fix: Remedies,
          jobs: int) -> list[Finding]:
    found, to_read = [], []
    for invoice in invoices:
        path = output / invoice.pdf_name
        n = invoice.number
        if not path.exists():
            found.append(Finding(n, "pdf", f"{n}: the PDF {path} is missing. {fix.remake}"))
        elif n in stale:
            found.append(Finding(n, "pdf", f"{n}: the PDF {path} was not brought up to date when the invoice "
                                           f"changed (a run stopped early). {fix.remake}"))
        else:
            to_read.append((invoice, path))
    for (invoice, path), problem in zip(to_read, _read_all(to_read, jobs)):
        if problem:
            n = invoice.number
            todo = ("Restore the ledger first (see above), then check again." if n in edited else
                    f"Delete that PDF, then {fix.remake[0].lower()}{fix.remake[1:]}")
            found.append(Finding(n, "pdf", f"{n}: the PDF {path} {problem}. {todo}"))
    return found


def _read_all(work: list[tuple[Invoice, Path]], jobs: int) -> Iterator[str]:
    if jobs <= 1 or len(work) < POOL_FROM:
        yield from map(pdf_problem, work)
        return
    # spawn, as rendering does: a forked copy of a process holding an SQLite connection is unsafe.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(pdf_problem, work, chunksize=max(1, min(100, len(work) // (4 * jobs))))


def pdf_problem(item: tuple[Invoice, Path]) -> str:
    """What is wrong with the invoice's PDF, in words, or "" when it shows the invoice."""
    from pypdf import PdfReader  # only where a PDF is read: pypdf costs start-up time

    invoice, path = item
    try:
        reader = PdfReader(path)
        pages = reader.pages
        # The number heads the first page; the total and the VOID note are on the first or last.
        text = "\n".join(page.extract_text() for page in _first_and_last(pages))
    except Exception as exc:  # pypdf raises many kinds for a file that is not a sound PDF
        return f"cannot be read as a PDF ({type(exc).__name__}: {exc})"
    lines = {_plain(line) for line in text.splitlines()}
    view = invoice_view(invoice)
    total = view["totals"][-1]
    total_line = _plain(f"{total['label']} {total['value']}")
    wrong = []
    if _plain(invoice.number) not in lines:
        wrong.append(f"does not show the number {invoice.number}")
    if not any(line == total_line or line.startswith(total_line + " ") for line in lines):
        wrong.append(f"does not show the total {total['value']}")
    labels = view["labels"]  # in the invoice's language
    replaced = _plain(labels["void_replaced"].split("{")[0])  # "VOID — replaced by"
    shows_void = labels["void"] in lines or any(line.startswith(replaced) for line in lines)
    if view["void"] and _plain(view["void"]) not in lines:
        wrong.append(f"does not show \"{view['void']}\", though the invoice is Replaced")
    elif not view["void"] and shows_void:
        wrong.append("shows VOID, though the invoice is live")
    return f"does not match the invoice: it {'; it '.join(wrong)}" if wrong else ""


def _first_and_last(pages) -> Iterable:
    return [pages[0], pages[-1]] if len(pages) > 1 else list(pages)


def _plain(text: str) -> str:
    """Text with its runs of spaces (no-break and narrow ones too, as currencies print) as one space."""
    return " ".join(text.split())
