"""Verdicts: one word per target (healthy, degraded, down) with its sentence, and one status
for the whole investigation."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kiloscribe_lab.diagnosis.evidence import Evidence, Health, credential_of, partly_worked, path_works
from kiloscribe_lab.names import Credential, Outcome, OverallStatus, Severity, Verdict
from kiloscribe_lab.results import Finding, ProbeResult


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    target: str
    verdict: Verdict
    sentence: str
    label: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": "verdict",
            "target": self.target,
            "label": self.label,
            "verdict": self.verdict.value,
            "sentence": self.sentence,
        }


def verdicts(results: Iterable[ProbeResult]) -> list[TargetVerdict]:
    ev = Evidence.of(results)
    out = []
    for t in ev.targets:
        h = ev.health(t)
        valid = [r for r in h.results if credential_of(r) is Credential.VALID]
        if valid and all(r.outcome is Outcome.AUTH_REJECTED for r in valid):
            out.append(
                TargetVerdict(t, Verdict.DOWN, "Down for its clients: the configured API key is refused.")
            )
        elif h.health is Health.WORKS:
            out.append(TargetVerdict(t, Verdict.HEALTHY, "Socket.IO connects over every tried transport."))
        elif h.health in {Health.PARTIAL, Health.BLOCKED}:
            failing = sorted(
                {r.outcome.value for r in h.results if not path_works(r) and not partly_worked(r)}
                | {"session_unknown" for r in h.results if r.outcome is Outcome.SESSION_UNKNOWN}
            )
            out.append(
                TargetVerdict(
                    t,
                    Verdict.DEGRADED,
                    f"{h.worked} Socket.IO checks worked, {h.failed} failed ({', '.join(failing)}).",
                )
            )
        elif h.health is Health.UNKNOWN:
            out.append(TargetVerdict(t, Verdict.DEGRADED, "No Socket.IO evidence was gathered."))
        else:
            why = {
                Health.DOWN: "every request failed with 502/503/504, a refusal or a reset",
                Health.STALLED: "it accepts connections and never answers",
                Health.OTHER: "no Socket.IO handshake completed",
            }[h.health]
            out.append(TargetVerdict(t, Verdict.DOWN, f"Down: {why}."))
    return [TargetVerdict(v.target, v.verdict, v.sentence, ev.labels.get(v.target)) for v in out]


def overall(
    findings: Sequence[Finding], target_verdicts: Sequence[TargetVerdict]
) -> tuple[OverallStatus, str]:
    """One status for the investigation, with its sentence."""
    critical = [f for f in findings if f.severity is Severity.CRITICAL]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    down = [v for v in target_verdicts if v.verdict is Verdict.DOWN]
    if target_verdicts and len(down) == len(target_verdicts):
        causes = "; ".join(f.title for f in critical)
        return OverallStatus.DOWN, "Every target is down" + (f": {causes}." if causes else ".")
    if critical:
        return OverallStatus.CRITICAL, f"{len(critical)} critical finding(s): " + "; ".join(
            f.title for f in critical
        ) + "."
    if warnings or down or any(v.verdict is Verdict.DEGRADED for v in target_verdicts):
        if warnings:
            return OverallStatus.DEGRADED, "The service works for some clients: " + "; ".join(
                f.title for f in warnings
            ) + "."
        return OverallStatus.DEGRADED, "Some targets are degraded or down: see the verdicts."
    return OverallStatus.HEALTHY, "Socket.IO works on every target; nothing needs fixing."
