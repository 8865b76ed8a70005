"""The findings report's charts: document ``Figure``s (a PNG from matplotlib's Agg canvas, no
display) with their text alternative, and the data each is drawn from.

Pure except for drawing; matplotlib is imported only when a chart is drawn. Each chart is
readable at a glance: the success rates as percentages on a 0–100 % scale, the latencies on a
log axis (a 3 ms direct connect and a 620 ms mobile one on one axis), one panel per network.
"""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiloscribe_lab.diagnosis import path_works
from kiloscribe_lab.names import ProbeName
from kiloscribe_lab.report.document import Figure, Link, Table
from kiloscribe_lab.report.formatting import clip, labels_for, ms_text, pct_text, short_name
from kiloscribe_lab.report.loose import as_float, as_items
from kiloscribe_lab.report.summary import summary_cells

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure as MplFigure

    from kiloscribe_lab.results import ProbeResult

SUCCESS_TITLE = "Connects that worked, per target and network"
LATENCY_TITLE = "Socket.IO handshake latency, per network"
LOW = "firebrick"


def _chart_text(text: str, limit: int) -> str:
    """A label for matplotlib: "$" would start mathtext (which can fail to parse), so escape it."""
    return clip(text, limit).replace("$", r"\$")


def png(fig: MplFigure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


_png = png


def _no_data(name: str, title: str) -> Figure:
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(4.0, 1.0))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{title}: no data", ha="center", va="center", fontsize=10)
    return Figure(name, _png(fig), f"{title}: no data was recorded.")


# --- success rates --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rate:
    successes: int
    attempts: int

    @property
    def rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None

    @property
    def text(self) -> str:
        return f"{pct_text(self.rate)} ({self.successes}/{self.attempts})" if self.attempts else "n/a"


def success_grid(summary: Mapping[str, object]) -> tuple[list[str], list[str], dict[tuple[str, str], Rate]]:
    """(targets, networks, (target, network) -> connects that worked), from a summary."""
    cells = summary_cells(summary)
    grid: dict[tuple[str, str], Rate] = {}
    for key, cell in cells.items():
        attempts = as_float(cell.get("attempts"))
        successes = as_float(cell.get("successes"))
        rate = as_float(cell.get("success_rate"))
        if attempts is not None and successes is not None and 0 <= successes <= attempts:
            grid[key] = Rate(int(successes), int(attempts))
        elif rate is not None and 0 <= rate <= 1:  # an older summary without the counts
            grid[key] = Rate(round(rate * 100), 100)
    targets = list(dict.fromkeys(t for t, _ in cells))
    networks = list(dict.fromkeys(n for _, n in cells))
    return targets, networks, grid


def success_alt(summary: Mapping[str, object]) -> str:
    """The success chart in one sentence: how many cells are at 100 %, and the lowest ones."""
    _, _, grid = success_grid(summary)
    if not grid:
        return f"{SUCCESS_TITLE}: no connect was counted."
    rated = [(k, r) for k, r in grid.items() if r.rate is not None]
    full = sum(1 for _, r in rated if r.rate == 1.0)
    low = sorted((x for x in rated if x[1].rate != 1.0), key=lambda x: (x[1].rate or 0.0, x[0]))
    text = f"{SUCCESS_TITLE}: {full} of {len(rated)} at 100 %"
    if low:
        shown = [f"{t} on {n} {pct_text(r.rate)} ({r.successes} of {r.attempts})" for (t, n), r in low[:4]]
        more = f" and {len(low) - 4} more" if len(low) > 4 else ""
        text += "; below: " + ", ".join(shown) + more
    return text + "."


def success_heatmap(summary: Mapping[str, object]) -> Figure:
    """Connects that worked per target × network, as percentages with their counts."""
    name = "success-rate"
    targets, networks, grid = success_grid(summary)
    if not targets or not networks:
        return _no_data(name, SUCCESS_TITLE)
    from matplotlib.figure import Figure as MplFigure
    from matplotlib.ticker import FuncFormatter

    values = [[grid[(t, n)].rate if (t, n) in grid else None for n in networks] for t in targets]
    masked = [[math.nan if v is None else 100 * v for v in row] for row in values]
    fig = MplFigure(figsize=(2.4 + 1.45 * len(networks), 1.3 + 0.5 * len(targets)))
    ax = fig.add_subplot()
    import matplotlib as mpl

    cmap = mpl.colormaps["RdYlGn"].with_extremes(bad="#e0e0e0")
    image = ax.imshow(masked, cmap=cmap, vmin=0.0, vmax=100.0, aspect="auto")
    ax.set_xticks(range(len(networks)), labels=[_chart_text(n, 24) for n in networks])
    ax.set_yticks(range(len(targets)), labels=[_chart_text(t, 40) for t in targets])
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    for i, t in enumerate(targets):
        for j, n in enumerate(networks):
            rate = grid.get((t, n))
            text = (
                "not tested"
                if rate is None or rate.rate is None
                else f"{pct_text(rate.rate)}\n{rate.successes}/{rate.attempts}"
            )
            dark = rate is not None and rate.rate is not None and not 0.2 <= rate.rate <= 0.85
            ax.text(j, i, text, ha="center", va="center", fontsize=8.5, color="white" if dark else "black")
    bar = fig.colorbar(image, ax=ax, fraction=0.05, pad=0.03, ticks=[0, 25, 50, 75, 100])
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f} %"))
    bar.set_label("connects that worked", fontsize=8)
    ax.set_title(SUCCESS_TITLE, fontsize=10, pad=22)
    return Figure(
        name,
        _png(fig),
        success_alt(summary),
        ("The same numbers are in the ", Link("Targets table", "targets"), "."),
    )


# --- latency --------------------------------------------------------------------------------


def _transport(r: ProbeResult) -> str:
    if r.probe == ProbeName.CONNECT_STATS:
        return str(r.detail.get("transport") or r.variant or "?")
    return r.variant.split(":", 1)[0] or "?"


def latency_samples(
    results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None
) -> dict[tuple[str, str, str], list[float]]:
    """(network, target, transport) -> every handshake's ms, in first-seen order; a target
    probed with no handshake completing has an empty list. Refusals in the server's words
    count: the handshake completed."""
    names = labels_for(results, labels)
    out: dict[tuple[str, str, str], list[float]] = {}
    for r in results:
        if r.probe == ProbeName.SOCKETIO_CONNECT:
            values = [r.timings.handshake] if path_works(r) and r.timings.handshake is not None else []
        elif r.probe == ProbeName.CONNECT_STATS:
            values = [
                ms
                for a in as_items(r.detail.get("runs"))
                if isinstance(a, Mapping)
                and a.get("outcome") == "ok"
                and (ms := as_float(a.get("ms"))) is not None
            ]
        else:
            continue
        out.setdefault((r.network, short_name(r.target, names), _transport(r)), []).extend(
            v for v in values if v > 0
        )
    return out


def latency_table(results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None) -> Table:
    """The latency chart's numbers: its text alternative."""
    rows = []
    for (network, target, transport), got in latency_samples(results, labels=labels).items():
        rows.append(
            (
                network,
                target,
                transport,
                str(len(got)),
                ms_text(statistics.median(got)) if got else "—",
                f"{ms_text(min(got))}–{ms_text(max(got))}" if got else "no handshake",
            )
        )
    return Table(["Network", "Target", "Transport", "Handshakes", "p50 ms", "Range ms"], rows)


def latency_alt(samples: Mapping[tuple[str, str, str], Sequence[float]]) -> str:
    medians = {k: statistics.median(v) for k, v in samples.items() if v}
    if not medians:
        return f"{LATENCY_TITLE}: no handshake completed."
    fast = min(medians, key=lambda k: medians[k])
    slow = max(medians, key=lambda k: medians[k])
    text = (
        f"{LATENCY_TITLE} (log scale): median from {ms_text(medians[fast])} ms "
        f"({fast[1]} {fast[2]}, {fast[0]}) to {ms_text(medians[slow])} ms ({slow[1]} {slow[2]}, {slow[0]})"
    )
    none = sorted({f"{t} on {n}" for (n, t, _), v in samples.items() if not v})
    if none:
        text += (
            "; no handshake: " + ", ".join(none[:4]) + (f" and {len(none) - 4} more" if len(none) > 4 else "")
        )
    return text + "."


def _ms_label(v: float, _: object = None) -> str:
    return f"{v / 1000:g} s" if v >= 1000 else f"{v:g} ms"


def _panel(ax: Axes, rows: list[tuple[str, list[float]]], lo: float, hi: float, network: str) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_yticks(range(len(rows)), labels=[_chart_text(name, 36) for name, _ in rows], fontsize=8.5)
    ax.xaxis.set_major_locator(LogLocator(base=10))
    ax.xaxis.set_major_formatter(FuncFormatter(_ms_label))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.grid(axis="x", which="major", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(_chart_text(network, 40), fontsize=9.5, loc="left", fontweight="bold")
    for i, (_, got) in enumerate(rows):
        if not got:
            ax.text(lo * 1.15, i, "no handshake", va="center", fontsize=8, color=LOW)
            continue
        # A small, deterministic vertical spread: repeated values stay visible.
        ys = [i + ((k % 5) - 2) * 0.06 for k in range(len(got))]
        ax.scatter(got, ys, s=12, color="#4c72b0", alpha=0.7, linewidths=0, zorder=3)
        median = statistics.median(got)
        ax.plot([median, median], [i - 0.32, i + 0.32], color="black", linewidth=2.2, zorder=4)
        ax.text(
            1.01, i, f"p50 {ms_text(median)} ms · n={len(got)}", transform=ax.get_yaxis_transform(),
            va="center", fontsize=8,
        )  # fmt: skip


def latency_chart(results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None) -> Figure:
    """Every handshake as a dot and the median as a bar, per target · transport, one panel per
    network, on one log axis."""
    name = "handshake-latency"
    samples = latency_samples(results, labels=labels)
    values = [v for got in samples.values() for v in got]
    if not values:
        return _no_data(name, LATENCY_TITLE)
    from matplotlib.figure import Figure as MplFigure

    networks = list(dict.fromkeys(n for n, _, _ in samples))
    panels = {n: [(f"{t} · {tr}", got) for (nn, t, tr), got in samples.items() if nn == n] for n in networks}
    lo = 10 ** math.floor(math.log10(min(values)) - 0.05)
    hi = 10 ** math.ceil(math.log10(max(values)) + 0.05)
    heights = [len(rows) + 1.2 for rows in panels.values()]
    fig = MplFigure(figsize=(7.2, 0.7 + 0.27 * sum(heights)))
    axes = fig.subplots(len(networks), 1, squeeze=False, gridspec_kw={"height_ratios": heights})
    for ax, network in zip((a for row in axes for a in row), networks, strict=True):
        _panel(ax, panels[network], lo, hi, network)
    axes[-1][0].set_xlabel(
        "handshake time (log scale): dots are single connects, the bar is the median", fontsize=8.5
    )
    fig.suptitle(LATENCY_TITLE, fontsize=10, x=0.02, ha="left")
    fig.tight_layout()
    return Figure(
        name,
        _png(fig),
        latency_alt(samples),
        "Each dot is one connect; the bar is the median (p50). The numbers are in the table below.",
    )
