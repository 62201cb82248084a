"""The review page at 10,000 invoices: how fast it is built, and sorted and filtered in Chromium.

    python -m benchmarks.review_page

Targets: built in under 5 s; each sort shows, from click to screen, in under 1 s; the filter in under 1 s.
Exits 1 when one is missed. The page and the browser harness are the test suite's (tests/test_review*.py),
which checks what the page shows; this measures how fast.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from test_review import build_big_page  # noqa: E402
from test_review_browser import CHROMIUM, Chromium, sort_and_filter_10000  # noqa: E402

TARGETS = {"build": 5.0, "filter": 1.0, "sort": 1.0}


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        _, _, build = build_big_page(Path(tmp) / "alone")
        seconds = {"build": build}
        if Path(CHROMIUM).exists():
            browser = Chromium()
            try:
                seconds |= {k: v for k, v in sort_and_filter_10000(browser, Path(tmp) / "browser").items()
                            if k != "build"}
            finally:
                browser.close()
        else:
            print(f"{CHROMIUM} is missing: only the build is measured")
    missed = []
    for name, value in seconds.items():
        target = TARGETS.get(name.split()[0])
        print(f"{name:<36} {value:7.3f} s" + (f"   (target < {target:g} s)" if target else ""))
        if target and value >= target:
            missed.append(name)
    if missed:
        print("missed: " + ", ".join(missed))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
