"""Human output for the terminal: the probe table grouped by target, findings, verdicts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from kiloscribe_lab.names import Severity
from kiloscribe_lab.results import ProbeResult

if TYPE_CHECKING:
    from kiloscribe_lab.probes.command import ProbeReport

MARK = {Severity.CRITICAL: "CRITICAL", Severity.WARNING: "WARNING", Severity.INFO: "info"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _row(r: ProbeResult) -> str:
    name = r.probe + (f" {r.variant}" if r.variant else "")
    status = "" if r.status is None else str(r.status)
    note = (r.error or "").replace("\n", " ")
    if len(note) > 70:
        note = note[:69] + "…"
    return (
        f"  {name:<34} {r.outcome.value:<16} {status:>4} {_ms(r.timings.handshake):>7} "
        f"{_ms(r.timings.total):>7}  {note}"
    )


def render_text(report: ProbeReport) -> str:
    lines: list[str] = []
    by_target: dict[str, list[ProbeResult]] = {}
    for r in report.results:
        by_target.setdefault(r.target, []).append(r)
    header = f"  {'probe':<34} {'outcome':<16} {'HTTP':>4} {'hs ms':>7} {'total':>7}  note"
    for target, rows in by_target.items():
        label = rows[0].detail.get("label")
        name = f"{label}  {target}" if label else target
        lines.append(f"{name}  (network {rows[0].network})")
        lines.append(header)
        lines.extend(_row(r) for r in rows)
        lines.append("")
    lines.append("Findings")
    if not report.findings:
        lines.append("  none")
    for f in report.findings:
        lines.append(f"  [{MARK[f.severity]}] {f.id}: {f.title}")
        lines.append(f"      {f.summary}")
        lines.append(f"      -> {f.recommendation}")
    lines.append("")
    lines.append("Verdicts")
    for v in report.verdicts:
        name = f"{v.label} ({v.target})" if v.label else v.target
        lines.append(f"  {v.verdict.value:<9} {name}  {v.sentence}")
    lines.append("")
    lines.append(f"Overall: {report.status}. {report.sentence}")
    return "\n".join(lines)


def progress_printer() -> Callable[[int, int], None]:
    """A one-line progress indicator on stderr (only used when stderr is a terminal)."""

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\rprobing {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show
