"""The findings report's charts, as PNGs a notebook displays and nbconvert embeds (matplotlib's
Agg canvas, no display). Pure; matplotlib is imported only when a chart is drawn."""

from __future__ import annotations

import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiloscribe_lab.diagnosis import path_works
from kiloscribe_lab.names import ProbeName
from kiloscribe_lab.report.formatting import clip, labels_for, pct_text, short_name
from kiloscribe_lab.report.loose import as_float, as_items
from kiloscribe_lab.report.summary import summary_cells

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from kiloscribe_lab.results import ProbeResult


@dataclass(frozen=True)
class PngImage:
    """A PNG that Jupyter displays (and nbconvert embeds or extracts) as image/png."""

    data: bytes
    alt: str = ""

    def _repr_png_(self) -> tuple[bytes, dict[str, str]]:
        return self.data, {"alt": self.alt or "chart"}

    def __repr__(self) -> str:
        return f"<PNG chart: {self.alt or 'chart'}, {len(self.data)} bytes>"


def _chart_text(text: str, limit: int) -> str:
    """A label for matplotlib: "$" would start mathtext (which can fail to parse), so escape it."""
    return clip(text, limit).replace("$", r"\$")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _no_data(title: str) -> PngImage:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 1.2))
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.text(0.5, 0.5, f"{title}: no data", ha="center", va="center", fontsize=10)
    return PngImage(_png(fig), f"{title}: no data")


def success_heatmap(summary: Mapping[str, object]) -> PngImage:
    """Success rate of the Socket.IO connects per target x network, from a summary."""
    title = "Socket.IO connect success rate"
    cells = summary_cells(summary)
    targets = list(dict.fromkeys(t for t, _ in cells))
    networks = list(dict.fromkeys(n for _, n in cells))
    if not targets or not networks:
        return _no_data(title)
    from matplotlib.figure import Figure

    values = [[as_float(cells.get((t, n), {}).get("success_rate")) for n in networks] for t in targets]
    grid = [[math.nan if v is None else v for v in row] for row in values]
    fig = Figure(figsize=(2.2 + 1.4 * len(networks), 1.2 + 0.45 * len(targets)))
    ax = fig.add_subplot()
    image = ax.imshow(grid, cmap="RdYlGn", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(networks)), labels=[_chart_text(n, 24) for n in networks])
    ax.set_yticks(range(len(targets)), labels=[_chart_text(t, 40) for t in targets])
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, pct_text(v), ha="center", va="center", fontsize=9)
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.05)
    return PngImage(_png(fig), title)


def _transport(r: ProbeResult) -> str:
    if r.probe == ProbeName.CONNECT_STATS:
        return str(r.detail.get("transport") or r.variant or "?")
    return r.variant.split(":", 1)[0] or "?"


def latency_chart(results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None) -> PngImage:
    """Socket.IO handshake latency per backend (target label) and transport: the median as a bar,
    every connect as a dot. Refusals in the server's words count: the handshake completed."""
    title = "Socket.IO handshake latency"
    names = labels_for(results, labels)
    samples: dict[tuple[str, str], list[float]] = {}
    connects = [r for r in results if r.probe in {ProbeName.SOCKETIO_CONNECT, ProbeName.CONNECT_STATS}]
    networks = {r.network for r in connects}
    targets = list(dict.fromkeys(short_name(r.target, names) for r in connects))
    for r in results:
        if r.probe == ProbeName.SOCKETIO_CONNECT and path_works(r) and r.timings.handshake is not None:
            values = [r.timings.handshake]
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
        series = _transport(r) + (f" · {r.network}" if len(networks) > 1 else "")
        samples.setdefault((short_name(r.target, names), series), []).extend(values)
    samples = {k: v for k, v in samples.items() if v}
    if not samples:
        return _no_data(title)
    from matplotlib.figure import Figure

    series_names = sorted({s for _, s in samples})
    width = 0.8 / len(series_names)
    fig = Figure(figsize=(max(4.0, 1.2 + 1.1 * len(targets) * max(1, len(series_names) / 2)), 3.2))
    ax = fig.add_subplot()
    for k, series in enumerate(series_names):
        xs, medians = [], []
        for i, t in enumerate(targets):
            got = samples.get((t, series))
            if not got:
                continue
            x = i - 0.4 + width * (k + 0.5)
            xs.append(x)
            medians.append(statistics.median(got))
            ax.scatter([x] * len(got), got, s=10, color="black", zorder=3)
        ax.bar(xs, medians, width=width * 0.9, label=_chart_text(series, 40))
    for i, t in enumerate(targets):
        if not any(samples.get((t, series)) for series in series_names):
            ax.text(
                i, 0, "no handshake", rotation=90, ha="center", va="bottom", fontsize=8, color="firebrick"
            )
    ax.set_xticks(range(len(targets)), labels=[_chart_text(t, 24) for t in targets])
    ax.set_ylabel("handshake ms")
    ax.set_title(title + " (bar: median; dots: each connect)", fontsize=10)
    ax.legend(fontsize=8)
    return PngImage(_png(fig), title)
