"""The report's "Vantage points": what each place the probes ran from saw. Pure except drawing.

A vantage is where a cell ran: ``local`` (the machine that ran the report) or a Dask worker.
Per vantage × target (× network, when there are several): the Socket.IO connects that worked,
their p50 and p95 connect (handshake) times, and the faults that hold there, that is whose
evidence was observed there; per vantage × backend: the connects each backend took
(connect_stats, through the balancer). With two vantages or more, a chart of the success rates.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kiloscribe_lab.names import ProbeName, Severity, VantageName
from kiloscribe_lab.report.document import Block, Figure, Heading, Inline, Para, Section, Span, Table, Text
from kiloscribe_lab.report.formatting import clip, labels_for, ms_text, pct_text, short_name
from kiloscribe_lab.report.loose import as_float, as_items
from kiloscribe_lab.report.rundata import RunData
from kiloscribe_lab.report.summary import connect_samples
from kiloscribe_lab.results import Finding, ProbeResult

VANTAGES = "Vantage points"
CHART_TITLE = "Connects that worked, per vantage and target"
# Discovery and the SDK replay run once, where the report runs: no matrix cell of a vantage.
_BESIDE = {ProbeName.DISCOVERY, ProbeName.SDK_REPLAY}


@dataclass(frozen=True, slots=True)
class VantageCell:
    """One target on one network, seen from one vantage."""

    vantage: str
    target: str  # the URL
    network: str
    attempts: int
    successes: int
    latencies_ms: tuple[float, ...]
    findings: tuple[Finding, ...]  # the faults whose evidence was observed here

    @property
    def rate(self) -> float | None:
        return self.successes / self.attempts if self.attempts else None

    @property
    def p50_ms(self) -> float | None:
        return statistics.median(self.latencies_ms) if self.latencies_ms else None

    @property
    def p95_ms(self) -> float | None:
        return nearest_rank(self.latencies_ms, 0.95)


def nearest_rank(values: Sequence[float], q: float) -> float | None:
    """The q-quantile by nearest rank: a value that was measured (of 4 samples, p95 is the largest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def vantage_cells(results: Iterable[ProbeResult], findings: Sequence[Finding]) -> list[VantageCell]:
    """Every vantage × target × network the matrix ran, in first-seen order."""
    groups: dict[tuple[str, str, str], list[ProbeResult]] = {}
    for r in results:
        if r.probe not in _BESIDE:
            groups.setdefault((r.vantage, r.target, r.network), []).append(r)
    faults = [f for f in findings if f.severity is not Severity.INFO]
    cells = []
    for (vantage, target, network), rs in groups.items():
        _, attempts, successes, latencies = connect_samples(rs)
        refs = {r.ref for r in rs}
        cells.append(
            VantageCell(
                vantage,
                target,
                network,
                attempts,
                successes,
                tuple(latencies),
                tuple(f for f in faults if refs.intersection(f.evidence)),
            )
        )
    return cells


def backend_rates(results: Iterable[ProbeResult]) -> dict[tuple[str, str], tuple[int, int]]:
    """(vantage, backend) -> (connects that worked, connects) that the backend answered, from
    connect_stats' attempts through the balancer (the backend as its response names it)."""
    out: dict[tuple[str, str], tuple[int, int]] = {}
    for r in results:
        if r.probe != ProbeName.CONNECT_STATS:
            continue
        by_backend = r.detail.get("by_backend")
        if not isinstance(by_backend, Mapping):
            continue
        for backend, counts in by_backend.items():
            if not isinstance(counts, Mapping):
                continue
            ok = int(as_float(counts.get("ok")) or 0)
            failed = int(as_float(counts.get("failed")) or 0)
            had_ok, had_all = out.get((r.vantage, str(backend)), (0, 0))
            out[(r.vantage, str(backend))] = (had_ok + ok, had_all + ok + failed)
    return out


def _vantage_words(run: RunData | None, vantages: Sequence[str]) -> str:
    """Each vantage and the machine it is: the cluster's workers as run.json recorded them."""
    workers = {}
    cluster = run.cluster if run is not None else None
    for w in as_items(cluster.get("workers") if cluster is not None else None):
        if isinstance(w, Mapping) and w.get("name"):
            workers[str(w["name"])] = w
    words = []
    for v in vantages:
        w = workers.get(v)
        if v == VantageName.LOCAL:
            words.append(f"{v} (the machine that ran the report)")
        elif w is not None:
            words.append(f"{v} (Dask worker on {w.get('host') or '?'}, {w.get('address') or '?'})")
        else:
            words.append(v)
    return ", ".join(words)


def section(
    run: RunData | None,
    results: Sequence[ProbeResult],
    findings: Sequence[Finding],
    *,
    labels: Mapping[str, str] | None = None,
    anchor: str,
    link: Callable[[Finding], Inline],
) -> Section:
    """The section: where the probes ran, a row per vantage × target, the backends per vantage,
    and (two vantages or more) the chart. ``link`` makes a finding's link (the report's)."""
    names = labels_for(results, labels)
    cells = vantage_cells(results, findings)
    vantages = list(dict.fromkeys(c.vantage for c in cells))
    blocks: list[Block] = [Heading(2, VANTAGES, anchor)]
    if not cells:
        blocks.append(Para("No probe ran: there is no vantage to show."))
        return Section("vantages", tuple(blocks))
    if vantages == [VantageName.LOCAL]:
        blocks.append(
            Para(
                "Every cell ran from one vantage, local: the machine that ran the report. To compare "
                "places (a region, an office behind its proxy), start a Dask worker there and run the "
                "report with --cluster: each cell then runs from every vantage.",
                cls="note",
            )
        )
    else:
        blocks.append(Para(f"Each cell ran from {len(vantages)} vantages: {_vantage_words(run, vantages)}."))
    several_networks = len({c.network for c in cells}) > 1
    header = ["Vantage", "Target", *(["Network"] if several_networks else []), "Connects that worked"]
    header += ["p50 ms", "p95 ms", "Faults seen there"]
    rows: list[Sequence[Text]] = []
    for c in cells:
        faults: list[Inline] = []
        for f in c.findings:
            faults += ["; "] if faults else []
            faults.append(link(f))
        rows.append(
            (
                Span(c.vantage, "nowrap"),
                short_name(c.target, names),
                *([c.network] if several_networks else []),
                f"{pct_text(c.rate)} ({c.successes}/{c.attempts})" if c.attempts else "no connect",
                ms_text(c.p50_ms),
                ms_text(c.p95_ms),
                tuple(faults) or "none",
            )
        )
    blocks.append(Table(header, rows))
    backends = backend_rates(results)
    if backends:
        blocks.append(Heading(3, "Backends, per vantage"))
        blocks.append(
            Para(
                "The connects through the balancer (connect_stats), by the backend that answered them.",
                cls="note",
            )
        )
        blocks.append(
            Table(
                ["Vantage", "Backend", "Connects that worked"],
                [
                    (v, b, f"{pct_text(ok / n if n else None)} ({ok}/{n})")
                    for (v, b), (ok, n) in sorted(backends.items())
                ],
            )
        )
    if len(vantages) > 1:
        blocks.append(chart(cells, names))
    return Section("vantages", tuple(blocks))


def chart_alt(cells: Sequence[VantageCell], names: Mapping[str, str]) -> str:
    """The chart in one sentence: how many cells are at 100 %, and the lowest."""
    rated = [c for c in cells if c.rate is not None]
    if not rated:
        return f"{CHART_TITLE}: no connect was counted."
    full = sum(1 for c in rated if c.rate == 1.0)
    low = sorted((c for c in rated if c.rate != 1.0), key=lambda c: (c.rate or 0.0, c.vantage))
    text = f"{CHART_TITLE}: {full} of {len(rated)} at 100 %"
    if low:
        shown = [
            f"{short_name(c.target, names)} from {c.vantage} {pct_text(c.rate)} "
            f"({c.successes} of {c.attempts})"
            for c in low[:4]
        ]
        text += "; below: " + ", ".join(shown) + (f" and {len(low) - 4} more" if len(low) > 4 else "")
    return text + "."


def chart(cells: Sequence[VantageCell], names: Mapping[str, str]) -> Figure:
    """Targets × vantages: the share of connects that worked, with the counts and the p50."""
    from matplotlib.figure import Figure as MplFigure

    from kiloscribe_lab.report.charts import _chart_text as chart_text
    from kiloscribe_lab.report.charts import _png as png

    vantages = list(dict.fromkeys(c.vantage for c in cells))
    rows = list(dict.fromkeys((c.target, c.network) for c in cells))
    several = len({n for _, n in rows}) > 1
    by_key = {(c.target, c.network, c.vantage): c for c in cells}
    values = [
        [
            math.nan if (c := by_key.get((t, n, v))) is None or c.rate is None else 100 * c.rate
            for v in vantages
        ]
        for t, n in rows
    ]
    fig = MplFigure(figsize=(2.6 + 1.5 * len(vantages), 1.3 + 0.5 * len(rows)))
    ax = fig.add_subplot()
    import matplotlib as mpl

    cmap = mpl.colormaps["RdYlGn"].with_extremes(bad="#e0e0e0")
    ax.imshow(values, cmap=cmap, vmin=0.0, vmax=100.0, aspect="auto")
    ax.set_xticks(range(len(vantages)), labels=[chart_text(v, 24) for v in vantages])
    labels = [short_name(t, names) + (f" · {n}" if several else "") for t, n in rows]
    ax.set_yticks(range(len(rows)), labels=[chart_text(clip(x, 40), 40) for x in labels])
    ax.tick_params(length=0)
    ax.xaxis.tick_top()
    for i, (t, n) in enumerate(rows):
        for j, v in enumerate(vantages):
            c = by_key.get((t, n, v))
            if c is None or c.rate is None:
                text, dark = "not tested", False
            else:
                text = f"{pct_text(c.rate)} {c.successes}/{c.attempts}\np50 {ms_text(c.p50_ms)} ms"
                dark = not 0.2 <= c.rate <= 0.85
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    ax.set_title(CHART_TITLE, fontsize=10, pad=22)
    return Figure(
        "vantage-success",
        png(fig),
        chart_alt(cells, names),
        "Each cell: connects that worked from that vantage, and their p50 handshake time.",
    )
