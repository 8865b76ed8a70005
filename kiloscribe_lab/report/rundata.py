"""A run directory: ``run.json`` (what the pipeline writes there, and reads back) and every
ProbeResult in ``results/*.jsonl``.

Reading never raises for what the files hold: a missing or broken file is a LoadFailure in
the returned RunData, and the report says so.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kiloscribe_lab.errors import KiloscribeLabError, RecordError
from kiloscribe_lab.files import RESULTS_LIMIT, read_text
from kiloscribe_lab.names import NetworkName, VantageName
from kiloscribe_lab.report.jobs import RunStatus
from kiloscribe_lab.report.loose import as_float, as_items, as_str
from kiloscribe_lab.results import ProbeResult, is_derived


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    url: str
    label: str | None = None

    def to_json(self) -> dict[str, object]:
        return {"label": self.label, "url": self.url}

    @classmethod
    def from_json(cls, item: object) -> EndpointInfo | None:
        if isinstance(item, str):
            return cls(item)
        if isinstance(item, Mapping) and item.get("url"):
            return cls(str(item["url"]), as_str(item.get("label")) or None)
        return None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One notebook run of the matrix, as run.json records it: one endpoint on one network,
    from one vantage, and where and when it ran."""

    id: str
    endpoint: str
    network: str
    status: RunStatus
    label: str | None = None
    error: str | None = None
    seconds: float | None = None
    kernel_start_s: float | None = None
    cells_s: float | None = None
    results: str | None = None  # relative to the run directory
    notebook: str | None = None
    vantage: str = VantageName.LOCAL
    worker: str | None = None  # the Dask worker that ran it, as it names itself; None: this machine
    worker_address: str | None = None
    host: str | None = None  # the machine that ran it
    started_at: str | None = None  # on that machine's clock
    finished_at: str | None = None
    round_trip_s: float | None = None  # handed over to the result back here (a cluster's cells)

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.OK

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "label": self.label,
            "endpoint": self.endpoint,
            "network": self.network,
            "status": self.status.value,
            "error": self.error,
            "seconds": self.seconds,
            "kernel_start_s": self.kernel_start_s,
            "cells_s": self.cells_s,
            "results": self.results,
            "notebook": self.notebook,
            "vantage": self.vantage,
            "worker": self.worker,
            "worker_address": self.worker_address,
            "host": self.host,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "round_trip_s": self.round_trip_s,
        }

    @classmethod
    def from_json(cls, item: object, index: int) -> RunRecord | None:
        """None for an entry that is not an object; an unknown status reads as failed."""
        if not isinstance(item, Mapping):
            return None
        status = str(item.get("status") or RunStatus.FAILED)
        return cls(
            id=str(item.get("id") or f"run-{index + 1}"),
            endpoint=str(item.get("endpoint") or ""),
            network=str(item.get("network") or NetworkName.DIRECT),
            status=RunStatus(status) if status in set(RunStatus) else RunStatus.FAILED,
            label=as_str(item.get("label")) or None,
            error=as_str(item.get("error")),
            seconds=as_float(item.get("seconds")),
            kernel_start_s=as_float(item.get("kernel_start_s")),
            cells_s=as_float(item.get("cells_s")),
            results=as_str(item.get("results")),
            notebook=as_str(item.get("notebook")),
            vantage=as_str(item.get("vantage")) or VantageName.LOCAL,
            worker=as_str(item.get("worker")),
            worker_address=as_str(item.get("worker_address")),
            host=as_str(item.get("host")),
            started_at=as_str(item.get("started_at")),
            finished_at=as_str(item.get("finished_at")),
            round_trip_s=as_float(item.get("round_trip_s")),
        )


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A file of the run that could not be read, or not entirely."""

    path: str
    error: str


@dataclass(frozen=True)
class RunData:
    """A run directory: the pipeline's metadata (run.json) and every ProbeResult.

    The pipeline writes run.json from one of these (``to_json``: everything but the results
    and the failures, which are files and what reading them found) and ``load_run`` reads it back.
    """

    run_dir: Path
    title: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    source: str | None = None
    api_key_env: str | None = None
    networks: tuple[str, ...] = ()
    vantages: tuple[str, ...] = (VantageName.LOCAL,)
    # The Dask cluster the matrix ran on: its scheduler and each vantage's worker (name,
    # address, host, version); None when it ran here.
    cluster: Mapping[str, object] | None = None
    endpoints: tuple[EndpointInfo, ...] = ()
    matrix: tuple[RunRecord, ...] = ()
    timings: Mapping[str, float] = field(default_factory=dict)
    compare_dir: str | None = None
    inscription: bool = True
    notes: tuple[str, ...] = ()
    # What a rerun command needs besides the targets (paths, never a secret).
    ca_bundle: str | None = None
    config_path: str | None = None
    lab_dir: str | None = None
    results: tuple[ProbeResult, ...] = ()
    failures: tuple[LoadFailure, ...] = ()

    @property
    def labels(self) -> dict[str, str]:
        """URL -> label, from run.json and from the results (which name their target)."""
        out: dict[str, str] = {}
        by_url = {norm_url(e.url): e.label for e in self.endpoints if e.label}
        by_url.update({norm_url(m.endpoint): m.label for m in self.matrix if m.label})
        for r in self.results:
            label = r.detail.get("label")
            if label:
                out[r.target] = str(label)
            elif norm_url(r.target) in by_url:
                out.setdefault(r.target, str(by_url[norm_url(r.target)]))
        for e in self.endpoints:
            if e.label:
                out.setdefault(e.url, e.label)
        return out

    @property
    def failed_runs(self) -> list[RunRecord]:
        return [m for m in self.matrix if not m.ok]

    @property
    def meta(self) -> dict[str, object]:
        """What a summary carries about its run, to say what it is compared with."""
        return {
            "title": self.title,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "source": self.source,
            "run_dir": str(self.run_dir),
        }

    def to_json(self) -> dict[str, object]:
        """run.json."""
        return {
            "title": self.title,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "source": self.source,
            "api_key_env": self.api_key_env,
            "networks": list(self.networks),
            "vantages": list(self.vantages),
            "cluster": None if self.cluster is None else dict(self.cluster),
            "endpoints": [e.to_json() for e in self.endpoints],
            "matrix": [m.to_json() for m in self.matrix],
            "timings": dict(self.timings),
            "compare_dir": self.compare_dir,
            "inscription": self.inscription,
            "notes": list(self.notes),
            "ca_bundle": self.ca_bundle,
            "config_path": self.config_path,
            "lab_dir": self.lab_dir,
        }

    def write(self) -> None:
        (self.run_dir / "run.json").write_text(json.dumps(self.to_json(), indent=2))


def norm_url(url: str) -> str:
    """A URL as a key: ws(s) spelled as http(s), no trailing slash, lower-case scheme and host."""
    scheme, sep, rest = url.strip().partition("://")
    if not sep:
        return url.strip().rstrip("/")
    scheme = {"wss": "https", "ws": "http"}.get(scheme.lower(), scheme.lower())
    host, slash, path = rest.partition("/")
    return f"{scheme}://{host.lower()}{slash}{path}".rstrip("/")


def read_results_file(path: Path, name: str | None = None) -> tuple[list[ProbeResult], LoadFailure | None]:
    """Every ProbeResult of one JSON Lines file; bad lines are skipped and reported, never raised.

    Findings and other record kinds a probe notebook may write are not evidence and are skipped.
    """
    shown = name or path.name
    try:
        text = read_text(path, "results file", RESULTS_LIMIT)
    except KiloscribeLabError as exc:
        return [], LoadFailure(shown, f"cannot read: {exc}")
    results: list[ProbeResult] = []
    bad: list[str] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            bad.append(f"line {lineno}: not JSON ({exc.msg})")
            continue
        if not isinstance(data, dict):
            bad.append(f"line {lineno}: not a JSON object")
            continue
        kind = data.get("kind")
        if kind == "finding" or is_derived(kind):
            continue
        if kind != "probe":
            bad.append(f"line {lineno}: unknown record kind {kind!r}")
            continue
        try:
            results.append(ProbeResult.from_json(data))
        except RecordError as exc:
            bad.append(f"line {lineno}: {exc}")
    if not bad:
        return results, None
    more = f" (and {len(bad) - 1} more bad line(s))" if len(bad) > 1 else ""
    kept = f"; {len(results)} result(s) kept" if results else ""
    return results, LoadFailure(shown, f"not valid JSON Lines: {bad[0]}{more}{kept}")


def read_run(run_dir: Path) -> RunData:
    """run_dir/run.json alone (no results): a missing or broken file is a LoadFailure."""
    run_dir = Path(run_dir)
    failures: list[LoadFailure] = []
    meta: Mapping[str, object] = {}
    try:
        loaded = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        if isinstance(loaded, Mapping):
            meta = loaded
        else:
            failures.append(LoadFailure("run.json", "not a JSON object"))
    except FileNotFoundError:
        failures.append(LoadFailure("run.json", "missing"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        failures.append(LoadFailure("run.json", f"cannot read: {exc}"))

    timings = meta.get("timings")
    return RunData(
        run_dir=run_dir,
        title=str(meta.get("title") or run_dir.name),
        started_at=as_str(meta.get("started_at")),
        finished_at=as_str(meta.get("finished_at")),
        source=as_str(meta.get("source")),
        api_key_env=as_str(meta.get("api_key_env")) or None,
        networks=tuple(str(n) for n in as_items(meta.get("networks"))),
        vantages=tuple(str(v) for v in as_items(meta.get("vantages"))) or (VantageName.LOCAL,),
        cluster=cluster if isinstance(cluster := meta.get("cluster"), Mapping) else None,
        endpoints=tuple(e for item in as_items(meta.get("endpoints")) if (e := EndpointInfo.from_json(item))),
        matrix=tuple(
            m for i, item in enumerate(as_items(meta.get("matrix"))) if (m := RunRecord.from_json(item, i))
        ),
        timings={str(k): v for k, value in timings.items() if (v := as_float(value)) is not None}
        if isinstance(timings, Mapping)
        else {},
        compare_dir=as_str(meta.get("compare_dir")) or None,
        inscription=meta.get("inscription") is not False,
        notes=tuple(str(n) for n in as_items(meta.get("notes"))),
        ca_bundle=as_str(meta.get("ca_bundle")) or None,
        config_path=as_str(meta.get("config_path")) or None,
        lab_dir=as_str(meta.get("lab_dir")) or None,
        failures=tuple(failures),
    )


def load_run(run_dir: Path) -> RunData:
    """Read run_dir/run.json and every run_dir/results/*.jsonl. Never raises for their content:
    a missing or broken file is a LoadFailure in the returned RunData."""
    run = read_run(run_dir)
    run_dir = run.run_dir
    failures = list(run.failures)
    # Matrix order first (the order the endpoints were configured in), then any other file.
    results_dir = run_dir / "results"
    files: list[Path] = []
    for m in run.matrix:
        if not m.results:
            continue
        path = run_dir / m.results
        if not path.resolve().is_relative_to(run_dir.resolve()):
            failures.append(LoadFailure(m.results, f"outside the run directory (run {m.id}): not read"))
        elif path.is_file():
            files.append(path)
        elif m.ok:
            failures.append(LoadFailure(m.results, f"missing (run {m.id} finished ok)"))
    if results_dir.is_dir():
        known = {p.resolve() for p in files}
        files += [p for p in sorted(results_dir.glob("*.jsonl")) if p.resolve() not in known]
    results: list[ProbeResult] = []
    for path in dict.fromkeys(files):
        try:
            name = str(path.relative_to(run_dir))
        except ValueError:
            name = str(path)
        found, failure = read_results_file(path, name)
        results += found
        if failure is not None:
            failures.append(failure)
    return dataclasses.replace(run, results=tuple(results), failures=tuple(failures))


def labels_of(results: Iterable[ProbeResult]) -> dict[str, str]:
    """URL -> label, as the results name their targets."""
    return {r.target: str(r.detail["label"]) for r in results if r.detail.get("label")}


def targets_of(results: Iterable[ProbeResult]) -> list[str]:
    """Every target of ``results``, in the order they first appear."""
    return list(dict.fromkeys(r.target for r in results))
