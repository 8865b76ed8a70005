"""The report's "Connection lifetime": what the slow probes (``--deep``) saw, per target x
network x transport: how long a held session lived and how it ended, its heartbeats' lateness
and PONG round trip, and the largest message that passed. Pure except for drawing the chart
(matplotlib is imported only then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from kiloscribe_lab.names import ProbeName, SessionEnd
from kiloscribe_lab.report.charts import png
from kiloscribe_lab.report.document import Figure, Table
from kiloscribe_lab.report.formatting import labels_for, ms_text, short_name
from kiloscribe_lab.report.loose import as_float, as_items
from kiloscribe_lab.settings import largest_file_bytes

if TYPE_CHECKING:
    from kiloscribe_lab.results import ProbeResult

LIFETIME_TITLE = "How long held sessions lived, against the server's heartbeat"
CUT = "firebrick"
HELD = "seagreen"
_ENDS = {
    SessionEnd.HELD: "held until we closed it",
    SessionEnd.CLOSE_FRAME: "CLOSE frame",
    SessionEnd.CLOSE_PACKET: "the server's CLOSE packet",
    SessionEnd.CONNECTION_CLOSED: "closed without a CLOSE frame (1006)",
    SessionEnd.RESET: "reset",
    SessionEnd.POLL_FAILED: "long-poll failed",
    SessionEnd.POST_FAILED: "POST failed",
    SessionEnd.NO_ANSWER: "no answer",
}


@dataclass(frozen=True, slots=True)
class Lifetime:
    """One target x network x transport: its hold and its payload search (either may be missing)."""

    target: str  # the label, else the URL
    network: str
    transport: str
    lived_s: float | None = None
    planned_s: float | None = None
    interval_s: float | None = None
    ended: str = ""
    cut: bool = False  # ended on its own before we closed it
    pings: int = 0
    worst_late_ms: float | None = None
    rtt_ms: float | None = None
    largest_passed: int | None = None
    failed_at: int | None = None
    cap: int | None = None


def _end_text(end: Mapping[str, object]) -> str:
    how = str(end.get("how") or "")
    text = _ENDS.get(SessionEnd(how), how) if how in set(SessionEnd) else how
    status, code = end.get("status"), end.get("code")
    if status is not None:
        text += f" ({status})"
    elif code is not None:
        text += f" ({code})"
    idle = as_float(end.get("idle_s"))
    if how != SessionEnd.HELD and idle is not None:
        text += f", {idle:.1f} s idle"
    return text


def lifetimes(results: Sequence[ProbeResult], *, labels: Mapping[str, str] | None = None) -> list[Lifetime]:
    """One row per target x network x transport the slow probes tried, in the results' order."""
    names = labels_for(results, labels)
    rows: dict[tuple[str, str, str], Lifetime] = {}
    for r in results:
        if r.probe not in (ProbeName.HOLD, ProbeName.PAYLOAD):
            continue
        key = (short_name(r.target, names), r.network, r.variant)
        row = rows.get(key) or Lifetime(*key)
        d = r.detail
        if r.probe == ProbeName.HOLD:
            raw_end = d.get("end")
            end: Mapping[str, object] = raw_end if isinstance(raw_end, dict) else {}
            pings = [p for p in as_items(d.get("pings")) if isinstance(p, dict)]
            lates = [v for p in pings if (v := as_float(p.get("late_ms"))) is not None]
            rtts = [v for x in as_items(d.get("pong_rtt_ms")) if (v := as_float(x)) is not None]
            interval = as_float(d.get("pingInterval"))
            row = dataclasses.replace(
                row,
                lived_s=as_float(d.get("lived_s")),
                planned_s=as_float(d.get("planned_s")),
                interval_s=None if interval is None else interval / 1000,
                ended=_end_text(end) if end else (r.error or str(r.outcome)),
                cut=bool(end) and end.get("how") != SessionEnd.HELD,
                pings=len(lates),
                worst_late_ms=max(lates) if lates else None,
                rtt_ms=max(rtts) if rtts else None,
            )
        else:
            passed, failed, cap = (d.get(k) for k in ("largest_passed", "smallest_failed", "cap"))
            row = dataclasses.replace(
                row,
                largest_passed=passed if isinstance(passed, int) else None,
                failed_at=failed if isinstance(failed, int) else None,
                cap=cap if isinstance(cap, int) else None,
            )
        rows[key] = row
    return list(rows.values())


def _bytes(n: int | None) -> str:
    # Exact: a limit of 65,536 B and a failure at 66,560 B would both round to 64 KiB.
    return "—" if n is None else f"{n:,} B"


def _message(row: Lifetime) -> str:
    if row.largest_passed is None and row.failed_at is None:
        return "—" if row.cap is None else "none passed"
    if row.failed_at is None:
        return f"{_bytes(row.largest_passed)} (the cap: all passed)"
    return f"{_bytes(row.largest_passed)}; {_bytes(row.failed_at)} failed"


def _file(row: Lifetime) -> str:
    if row.largest_passed is None:
        return "—"
    return f"up to {largest_file_bytes(row.largest_passed) // 1024} KiB"


def lifetime_table(rows: Sequence[Lifetime]) -> Table:
    return Table(
        [
            "Target",
            "Network",
            "Transport",
            "Lived",
            "Ended",
            "Heartbeat",
            "Worst PING lateness",
            "PONG round trip",
            "Largest message passed",
            "Files that fit",
        ],
        [
            (
                row.target,
                row.network,
                row.transport,
                "—" if row.lived_s is None else f"{row.lived_s:.1f} s",
                row.ended or "—",
                "—" if row.interval_s is None else f"every {row.interval_s:g} s, {row.pings} seen",
                ms_text(row.worst_late_ms),
                ms_text(row.rtt_ms),
                _message(row),
                _file(row),
            )
            for row in rows
        ],
    )


def lifetime_alt(rows: Sequence[Lifetime]) -> str:
    held = [r for r in rows if r.lived_s is not None]
    cut = [r for r in held if r.cut]
    parts = [f"{len(held)} sessions held, {len(cut)} ended before we closed them"]
    parts += [
        f"{r.target} {r.network} {r.transport}: {r.lived_s:.1f} s, {r.ended}"
        for r in cut
        if r.lived_s is not None
    ]
    return "; ".join(parts) + "."


def lifetime_chart(rows: Sequence[Lifetime]) -> Figure | None:
    """A bar per held session, how long it lived, with the server's heartbeat marked: a red bar
    that stops short of its mark is a session cut before its first heartbeat. None when no
    session was held (the chart would say nothing the table does not)."""
    held = [r for r in rows if r.lived_s is not None]
    if not held:
        return None
    from matplotlib.figure import Figure as MplFigure

    fig = MplFigure(figsize=(7.2, 0.9 + 0.28 * len(held)))
    ax = fig.add_subplot()
    names = [f"{r.target} · {r.network} · {r.transport}" for r in held]
    ys = list(range(len(held)))[::-1]
    ax.barh(ys, [r.lived_s or 0.0 for r in held], color=[CUT if r.cut else HELD for r in held], height=0.6)
    for y, r in zip(ys, held, strict=True):
        if r.interval_s is not None:
            ax.plot([r.interval_s, r.interval_s], [y - 0.4, y + 0.4], color="black", linewidth=1.2)
    ax.set_yticks(ys, [n[:48] for n in names], fontsize=8)
    ax.set_xlabel(
        "seconds the session lived (red: it ended on its own; black tick: pingInterval)", fontsize=8.5
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.set_xlim(0, max(max(r.lived_s or 0.0, r.interval_s or 0.0, r.planned_s or 0.0) for r in held) * 1.05)
    fig.suptitle(LIFETIME_TITLE, fontsize=10, x=0.02, ha="left")
    fig.tight_layout()
    return Figure("connection-lifetime", png(fig), lifetime_alt(held), "The numbers are in the table above.")
