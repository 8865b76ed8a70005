"""Human output of ``sdk-check``: one table per runtime, the SDK's log lines, the findings."""

from __future__ import annotations

from collections.abc import Sequence

from kiloscribe_lab.output import MARK
from kiloscribe_lab.results import Finding, ProbeResult

_GLOBAL = {
    "none": "no global WebSocket",
    "flag": "global WebSocket from --experimental-websocket",
    "ws-shim": "global WebSocket from the ws shim",
    "native": "native global WebSocket",
}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _runtime_line(r: ProbeResult) -> str:
    d = r.detail
    how = "as run" if d.get("mode") == "plain" else "with a WebSocket global"
    ws = _GLOBAL.get(str(d.get("websocket_global")), str(d.get("websocket_global")))
    return f"{d.get('runtime')}: node {d.get('node_version')} {how} ({d.get('node_path')}; {ws})"


def render_text(results: Sequence[ProbeResult], findings: Sequence[Finding]) -> str:
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
    lines.append("Findings")
    if not findings:
        lines.append("  none")
    for f in findings:
        lines.append(f"  [{MARK[f.severity]}] {f.id}: {f.title}")
        lines.append(f"      {f.summary}")
        lines.append(f"      -> {f.recommendation}")
    return "\n".join(lines)
