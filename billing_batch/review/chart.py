"""The review's chart: invoiced totals per currency and month, as inline SVG drawn by matplotlib."""
from __future__ import annotations

import contextlib
import io
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_compact_decimal, format_decimal
from dateutil.relativedelta import relativedelta
from markupsafe import Markup

from billing_batch.review import format as fmt
from billing_batch.model import Invoice
from billing_batch.review.flags import known_invoices, live_by_cycle

CHART_MONTHS = 12


# ---------------------------------------------------------------- the chart


def monthly_totals(history: Iterable[Invoice], issued: Iterable[Invoice], as_of: date,
                   months: int = CHART_MONTHS) -> dict[str, list[tuple[date, Decimal, Decimal]]]:
    """currency -> for each of the last `months` months up to as_of's: (month, billed by
    earlier runs, billed by this run), by Invoice Date: each cycle's live document (Invoice.is_live), a
    credit note as negative. Pure."""
    issued = list(issued)
    first = as_of.replace(day=1) - relativedelta(months=months - 1)
    month_list = [first + relativedelta(months=n) for n in range(months)]
    this_run = {i.number for i in issued}
    sums: dict[str, dict[date, list[Decimal]]] = defaultdict(lambda: {m: [Decimal(0), Decimal(0)] for m in month_list})
    for inv in live_by_cycle(known_invoices(history, issued), issued).values():
        month = inv.invoice_date.replace(day=1)
        if first <= month <= month_list[-1]:
            total = -inv.draft.total if inv.is_credit_note else inv.draft.total  # a cycle billed below zero
            sums[inv.draft.currency][month][1 if inv.number in this_run else 0] += total
    return {cur: [(m, *by_month[m]) for m in month_list] for cur, by_month in sorted(sums.items())}


def charts(series: Mapping[str, list[tuple[date, Decimal, Decimal]]], as_of: date, locale: str) -> list[dict]:
    return [{"currency": cur, "svg": Markup(chart_svg(n, cur, tuple(points), as_of, locale)),
             "rows": [{"month": format_date(m, "LLL y", locale=fmt.babel_locale(locale)), "earlier": fmt.money(locale, cur)(e), "this_run": fmt.money(locale, cur)(t),
                       "highlight": m == as_of.replace(day=1)} for m, e, t in points]}
            for n, (cur, points) in enumerate(series.items())]


EARLIER_COLOUR, RUN_COLOUR, MONTH_COLOUR = "#9fb3c8", "#1d4ed8", "#60a5fa"


def warm_up(history: Iterable[Invoice], issued: Iterable[Invoice], as_of: date, locale: str) -> threading.Thread:
    """Draw the review's charts in a thread while the PDFs render (matplotlib's import and drawing take
    most of a second): the page then takes them from chart_svg's cache. Join it before writing the page."""
    thread = threading.Thread(target=charts, args=(monthly_totals(history, issued, as_of), as_of, locale), daemon=True)
    thread.start()
    return thread


@lru_cache(maxsize=32)  # drawn ahead by warm_up, while the PDFs render
def chart_svg(n: int, currency: str, points: tuple[tuple[date, Decimal, Decimal], ...], as_of: date, locale: str) -> str:
    """One currency's bars as inline SVG: the as-of month's bar stands out, and the part of it
    this run billed is drawn darker. Text stays text (svg.fonttype none) so the page's font is used."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    loc = fmt.babel_locale(locale)
    money = fmt.money(locale, currency)
    this_month = as_of.replace(day=1)

    def month_name(m: date, pattern: str = "LLL") -> str:
        return format_date(m, pattern, locale=loc)

    labels = [month_name(m) for m, _, _ in points]  # one line: the years are in the panel's heading
    earlier = [float(e) for _, e, _ in points]
    current = [float(t) for _, _, t in points]
    highlight = [m == this_month for m, _, _ in points]

    with matplotlib.rc_context({
        "svg.fonttype": "none", "svg.hashsalt": f"review-{n}", "font.family": _chart_fonts(),
        "font.size": 9, "axes.edgecolor": "#c4ccd6", "axes.labelcolor": "#334155",
        "xtick.color": "#475569", "ytick.color": "#475569",
    }):
        fig = Figure(figsize=(4.6, 2.2), layout="constrained")
        ax = fig.subplots()
        xs = range(len(points))
        colours = [MONTH_COLOUR if h else EARLIER_COLOUR for h in highlight]
        below = ax.bar(xs, earlier, color=colours, width=0.7, zorder=2)
        above = ax.bar(xs, current, bottom=earlier, color=RUN_COLOUR, width=0.7, zorder=2)
        titles = {}
        for i, (m, e, t) in enumerate(points):
            titles[f"bar-{i}"] = titles[f"run-{i}"] = (
                f"{month_name(m, 'LLLL y')}: {money(e + t)}" + (f" ({money(t)} in this run)" if t else ""))
            below[i].set_gid(f"bar-{i}")
            above[i].set_gid(f"run-{i}")
        ax.set_xticks(list(xs), labels)
        ax.tick_params(axis="x", length=0)
        ax.tick_params(axis="y", length=0)
        for i, label in enumerate(ax.get_xticklabels()):
            if highlight[i]:
                label.set_fontweight("bold")
                label.set_color("#1e3a8a")
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, min_n_ticks=3))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _tick(v, loc)))
        ax.grid(axis="y", color="#e2e8f0", linewidth=0.8, zorder=0)
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        ax.set_ylim(bottom=0, top=max(max(e + t for e, t in zip(earlier, current)), 1) * 1.1)
        ax.set_title(currency, loc="left", fontsize=10, fontweight="bold", color="#0f172a")
        month, before, now = points[highlight.index(True)]
        ax.set_title(f"{month_name(month, 'LLL y')}: {money(before + now)}", loc="right", fontsize=9, fontweight="bold",
                     color="#1e3a8a")
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    return _inline_svg(buf.getvalue(), f"c{n}-", titles)


def _tick(value: float, loc) -> str:
    """2,4 Mio. or 15K as the locale shortens it; where it does not (German thousands), 800.000, not 800000."""
    short = format_compact_decimal(value, locale=loc, fraction_digits=1)
    return short if not short.replace("-", "").isdigit() else format_decimal(value, locale=loc)


# DejaVu Sans has no Chinese, Japanese or Korean: matplotlib (3.6+) takes each glyph it lacks from the
# next family, Noto Sans CJK (fonts-noto-cjk, installed by setup.sh).
CHART_FONTS = ("DejaVu Sans", "Noto Sans CJK JP")


@lru_cache(maxsize=1)
def _chart_fonts() -> list[str]:
    """The CHART_FONTS installed, after making sure matplotlib knows them: its font list is cached on
    disk the first time it runs, so fonts installed later are missing from it until added."""
    from matplotlib import font_manager

    manager = font_manager.fontManager
    known = {font.name for font in manager.ttflist}
    if not set(CHART_FONTS) <= known:
        added = [manager.addfont(path) for path in font_manager.findSystemFonts() if "NotoSansCJK" in Path(path).name]
        known = {font.name for font in manager.ttflist}
        if added:  # keep them in matplotlib's cache: the next process need not look again
            import matplotlib

            cache = Path(matplotlib.get_cachedir()) / f"fontlist-v{font_manager.FontManager.__version__}.json"
            with contextlib.suppress(OSError):
                font_manager.json_dump(manager, cache)
    return [family for family in CHART_FONTS if family in known] + ["sans-serif"]


def _inline_svg(svg: str, prefix: str, titles: Mapping[str, str]) -> str:
    """Make matplotlib's SVG document fit inside HTML: no prolog, no namespace URLs (the HTML
    parser supplies them), ids unique on the page, a tooltip on each bar, and scalable."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg)
    svg = re.sub(r'\s(width|height)="[\d.]+pt"', "", svg, count=2)
    svg = svg.replace("<svg", '<svg role="img" preserveAspectRatio="xMidYMid meet"', 1)
    svg = re.sub(r'id="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', svg)
    svg = re.sub(r'url\(#([^)]+)\)', lambda m: f"url(#{prefix}{m.group(1)})", svg)
    svg = re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', svg)

    def titled(m: re.Match) -> str:
        title = titles.get(m.group(1))
        tag = m.group(0)
        return tag + f"<title>{Markup.escape(title)}</title>" if title else tag

    svg = re.sub(rf'<g id="{prefix}((?:bar|run)-\d+)">', titled, svg)
    if re.search(r"https?:", svg):
        raise ValueError("the chart SVG refers to a URL")
    return svg


# ---------------------------------------------------------------- files


def chart_span(as_of: date, locale: str) -> str:
    first = as_of.replace(day=1) - relativedelta(months=CHART_MONTHS - 1)
    return f"{format_date(first, 'LLL y', locale=fmt.babel_locale(locale))} – {format_date(as_of, 'LLL y', locale=fmt.babel_locale(locale))}"
