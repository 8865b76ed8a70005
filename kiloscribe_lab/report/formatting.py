"""How targets, numbers and long text read in the report: one spelling for every section and chart."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kiloscribe_lab.report.rundata import labels_of
from kiloscribe_lab.results import ProbeResult


def display_name(target: str, labels: Mapping[str, str]) -> str:
    label = labels.get(target)
    return f"{label} ({target})" if label else target


def short_name(target: str, labels: Mapping[str, str]) -> str:
    return labels.get(target) or target


def ms_text(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def pct_text(rate: float | None) -> str:
    return "n/a" if rate is None else f"{100 * rate:.0f} %"


def clip(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def labels_for(results: Iterable[ProbeResult], labels: Mapping[str, str] | None) -> dict[str, str]:
    return {**(labels or {}), **labels_of(results)}
