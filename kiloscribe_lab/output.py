"""Human output for the terminal: ``probe``'s table grouped by target, findings and verdicts;
``sdk-check``'s table per runtime."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from kiloscribe_lab.names import Severity
from kiloscribe_lab.results import Finding, ProbeResult

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
    lines.extend(_findings_lines(report.findings))
    lines.append("")
    lines.append("Verdicts")
    for v in report.verdicts:
        name = f"{v.label} ({v.target})" if v.label else v.target
        lines.append(f"  {v.verdict.value:<9} {name}  {v.sentence}")
    lines.append("")
    lines.append(f"Overall: {report.status}. {report.sentence}")
    return "\n".join(lines)


def _findings_lines(findings: Sequence[Finding]) -> list[str]:
    lines = ["Findings"]
    if not findings:
        lines.append("  none")
    for f in findings:
        lines.append(f"  [{MARK[f.severity]}] {f.id}: {f.title}")
        lines.append(f"      {f.summary}")
        lines.append(f"      -> {f.recommendation}")
    return lines


_GLOBAL = {
    "none": "no global WebSocket",
    "flag": "global WebSocket from --experimental-websocket",
    "ws-shim": "global WebSocket from the ws shim",
    "native": "native global WebSocket",
}


def _runtime_line(r: ProbeResult) -> str:
    d = r.detail
    how = "as run" if d.get("mode") == "plain" else "with a WebSocket global"
    ws = _GLOBAL.get(str(d.get("websocket_global")), str(d.get("websocket_global")))
    return f"{d.get('runtime')}: node {d.get('node_version')} {how} ({d.get('node_path')}; {ws})"


def render_sdk_check(results: Sequence[ProbeResult], findings: Sequence[Finding]) -> str:
    """``sdk-check``'s human output: one table per runtime, the SDK's log lines, the findings."""
    lines: list[str] = []
    if results:
        first = results[0]
        label = first.detail.get("label")
        name = f"{label}  {first.target}" if label else first.target
        lines.append(
            f"sdk-check {name}  ({first.detail.get('sdk_package')} {first.detail.get('sdk_version')})"
        )
    by_runtime: dict[str, list[ProbeResult]] = {}
    for r in results:
        by_runtime.setdefault(str(r.detail.get("runtime")), []).append(r)
    for rows in by_runtime.values():
        lines.append("")
        lines.append(_runtime_line(rows[0]))
        lines.append(f"  {'step':<18} {'outcome':<15} {'total ms':>8}  SDK message / note")
        for r in rows:
            step = r.variant.partition(":")[2]
            note = (r.error or "").replace("\n", " ")
            if len(note) > 80:
                note = note[:79] + "…"
            lines.append(f"  {step:<18} {r.outcome.value:<15} {_ms(r.timings.total):>8}  {note}")
    logged = [(r.variant, line) for r in results for line in r.detail.get("sdk_log") or []]
    if logged:
        lines.append("")
        lines.append("SDK log lines")
        lines.extend(f"  {variant:<34} {line}" for variant, line in logged)
    lines.append("")
    lines.extend(_findings_lines(findings))
    return "\n".join(lines)


def progress_printer() -> Callable[[int, int], None]:
    """A one-line progress indicator on stderr (only used when stderr is a terminal)."""

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\rprobing {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show
