"""What a report runs, decided before anything runs (pure): the plan, its matrix of notebook
runs (endpoint × network × vantage), each run's papermill parameters, and where the run
directory goes."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from kiloscribe_lab.config import ClusterSpec, InvestigationConfig
from kiloscribe_lab.endpoints import split_label
from kiloscribe_lab.names import NetworkName, VantageName
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.report.jobs import Parameter
from kiloscribe_lab.settings import ProbeSettings, settings_to_parameters

RUN_DIR_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-\d+)?$")


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    label: str | None = None
    # The networks to probe it from; None: every network of the plan.
    networks: tuple[str, ...] | None = None

    @property
    def arg(self) -> str:
        return f"{self.label}={self.url}" if self.label else self.url


@dataclass(frozen=True, slots=True)
class ReportPlan:
    title: str
    source: str
    targets: tuple[Target, ...]
    networks: tuple[str, ...] = (NetworkName.DIRECT,)
    api_base: str | None = None
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    config_path: Path | None = None  # where the network profiles are defined
    profiles: Mapping[str, NetworkProfile] = field(default_factory=dict)
    lab_dir: Path | None = None  # the lab the report started (its networks), for rerun commands
    cluster: ClusterSpec | None = None  # the config's [cluster]: where the matrix runs


@dataclass(frozen=True, slots=True)
class MatrixRun:
    """One probe notebook to run: one target on one network, from one vantage."""

    id: str
    target: Target
    network: str
    vantage: str = VantageName.LOCAL


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:48] or "target"


def build_matrix(plan: ReportPlan, vantages: Sequence[str] = (VantageName.LOCAL,)) -> list[MatrixRun]:
    """Every target × network (as the target allows) × vantage. A vantage other than ``local``
    ends the run's id, so a local matrix keeps the ids it always had."""
    runs = []
    for i, target in enumerate(plan.targets, 1):
        name = target.label or target.url.split("://", 1)[-1]
        for network in plan.networks:
            if target.networks is not None and network not in target.networks:
                continue
            base = f"{i:02d}-{slug(name)}-{slug(network)}"
            for vantage in vantages:
                run_id = base if vantage == VantageName.LOCAL else f"{base}-{slug(vantage)}"
                runs.append(MatrixRun(run_id, target, network, vantage))
    return runs


def probe_parameters(run: MatrixRun, plan: ReportPlan, run_dir: Path) -> dict[str, Parameter]:
    """Papermill parameters for one run (the names of probe_endpoint.ipynb's parameters cell):
    names and paths only, never a secret's value. Every probe setting travels in ``settings``,
    derived from ProbeSettings' fields (a new one reaches the notebook by itself)."""
    return {
        "endpoint": run.target.arg,
        "network": run.network,
        "settings": settings_to_parameters(plan.settings),
        "results_path": str(run_dir / "results" / f"{run.id}.jsonl"),
        "config_path": None if plan.config_path is None else str(plan.config_path),
        "vantage": run.vantage,
    }


def report_parameters(run_dir: Path, compare_dir: Path | None) -> dict[str, Parameter]:
    """Papermill parameters for findings_report.ipynb: the run directory, a previous run."""
    return {"run_dir": str(run_dir), "compare_dir": None if compare_dir is None else str(compare_dir)}


def with_deep(plan: ReportPlan, *, deep: bool | None, file_size: int | None) -> ReportPlan:
    """``plan`` with the command line's say on the slow probes: ``--no-deep`` (False) turns them
    off, ``--file-size`` sets their file; None leaves the plan's own."""
    settings = plan.settings
    if deep is not None:
        settings = dataclasses.replace(settings, deep=deep)
    if file_size is not None:
        settings = dataclasses.replace(settings, file_size=file_size)
    return dataclasses.replace(plan, settings=settings)


def plan_from_config(cfg: InvestigationConfig) -> ReportPlan:
    """The report runs the slow probes unless the config says ``deep = false``."""
    return ReportPlan(
        title=f"Socket.IO investigation of {_what(cfg.endpoints, cfg.api_base)}",
        source=f"config:{cfg.source}",
        targets=tuple(Target(*split_label(u)) for u in cfg.endpoints),
        networks=cfg.run_networks,
        api_base=cfg.api_base,
        settings=dataclasses.replace(cfg.settings, deep=cfg.deep is not False),
        config_path=cfg.source,
        profiles=dict(cfg.networks),
        cluster=cfg.cluster,
    )


def _what(endpoints: tuple[str, ...], api_base: str | None) -> str:
    """What a config investigates, for the report's title: its labels, else its hosts."""
    names = []
    for item in endpoints:
        url, label = split_label(item)
        names.append(label or url.split("://", 1)[-1].split("/", 1)[0])
    if not names and api_base:
        names.append(api_base.split("://", 1)[-1].split("/", 1)[0])
    names = list(dict.fromkeys(names))
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return shown or "the configured endpoints"


def next_run_dir(out_root: Path, today: date) -> Path:
    """``YYYY-MM-DD``, or ``YYYY-MM-DD-N`` for the N-th run that day: never overwrite."""
    base = today.isoformat()
    candidate = out_root / base
    n = 1
    while candidate.exists():
        n += 1
        candidate = out_root / f"{base}-{n}"
    return candidate


def run_dirs(out_root: Path) -> list[Path]:
    """Every run directory in ``out_root``, oldest first."""
    if not out_root.exists():
        return []
    return sorted((p for p in out_root.iterdir() if p.is_dir() and RUN_DIR_RE.match(p.name)), key=_run_order)


def previous_run(out_root: Path, current: Path) -> Path | None:
    """The latest earlier run in ``out_root`` that finished with a summary."""
    runs = [p for p in run_dirs(out_root) if p != current and (p / "summary.json").exists()]
    return max(runs, key=_run_order, default=None)


def _run_order(p: Path) -> tuple[str, int]:
    """2026-11-26 < 2026-11-26-2 < 2026-11-26-10 < 2026-11-27."""
    suffix = p.name[11:]
    return p.name[:10], int(suffix) if suffix.isdigit() else 1
