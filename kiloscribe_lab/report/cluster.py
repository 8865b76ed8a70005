"""The matrix on a running Dask cluster: every cell pinned to the worker of its vantage.

A *vantage* is where probes run: a Dask worker, named by its ``--name`` (``dask worker
SCHEDULER --name eu-west``). Its cells run there, through that machine's own network (its
proxy variables included, see ``networks.EnvProxies``) and with the key read from *its*
environment: a cell carries the key variable's name, never a value.

``distributed`` is imported here only, and only inside functions: a report without a cluster
never imports it (tests/unit/test_architecture.py holds every module to that).

Before anything runs (``Cluster.connect``), each of these is a UsageError (exit 2, one line):
the scheduler does not answer (a ``tcp://`` address gets a plain TCP connect first, so a
refused or unreachable one is said within seconds), a requested vantage is no worker of it,
a vantage's worker runs another kiloscribe-lab version than this command, or the key
variable is not set in a vantage's worker's environment.

A cell (``CellTask``) carries what its notebook needs and nothing of this machine's: the probe
notebook, its parameters, the CA bundles and its network profile (as a config) as text. On the
worker, ``run_cell`` writes them into a scratch directory and executes the notebook through
``matrix.execute``, the local matrix's own worker process, deadlines and kill, enforced there;
it returns the executed notebook and its results as text (``CellResult``), and the report is
built where the command runs. While cells run, the scheduler is watched: a vantage whose
worker left has its cells reported as failed with that reason, and so has a cell past its
deadline; on Ctrl-C a stop event tells the workers to kill what they run.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import math
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import kiloscribe_lab
from kiloscribe_lab.config import ClusterSpec, check_vantage_names
from kiloscribe_lab.errors import ConfigError, UsageError
from kiloscribe_lab.names import NetworkName
from kiloscribe_lab.networks import DIRECT, NetworkProfile
from kiloscribe_lab.report.jobs import (
    EXECUTION_TIMEOUT_S,
    START_TIMEOUT_S,
    Parameter,
    RunStatus,
    WorkerSpec,
    WorkerStatus,
)
from kiloscribe_lab.report.plan import MatrixRun, ReportPlan, probe_parameters, slug
from kiloscribe_lab.report.rundata import RunRecord
from kiloscribe_lab.results import utc_now

if TYPE_CHECKING:
    from distributed import Client, Future

CONNECT_CHECK_S = 3.0  # the plain TCP connect to a tcp:// scheduler
CONNECT_TIMEOUT_S = 10  # distributed's own connect (and handshake) to the scheduler
PREFLIGHT_S = 20.0  # every vantage's worker answers what it runs
POLL_S = 0.1  # how often the client looks at its cells and the scheduler's workers
STOP_POLL_S = 0.5  # how often a worker's cell looks for the client's stop request
RESULT_SLACK_S = 30.0  # past a cell's own deadline on its worker, before the client gives up
MAX_FILE_BYTES = 4 * 1024 * 1024  # a CA bundle or the notebook sent with each cell
MAX_CELL_TEXT = 32 * 1024 * 1024  # what a cell sends back, notebook and results each
CA_FILE = "ca.pem"
NETWORK_CA_FILE = "network-ca.pem"
CONFIG_FILE = "network.toml"
# The parameters that name files: the worker points them into its scratch directory.
PATH_PARAMETERS = ("results_path", "config_path")  # and settings["ca_bundle"]

Progress = Callable[[str], None]


# --- what each vantage's worker is ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerFacts:
    """What a vantage's worker said of itself before the run (never a secret's value)."""

    name: str
    address: str
    host: str
    version: str | None  # its kiloscribe-lab; None: not importable there
    python: str
    nthreads: int = 1
    key_problem: str | None = None  # why the key variable cannot be used there, if it cannot

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "address": self.address,
            "host": self.host,
            "version": self.version,
            "python": self.python,
            "nthreads": self.nthreads,
        }


def choose_vantages(
    workers: Mapping[str, str], requested: Sequence[str] | None, scheduler: str
) -> dict[str, str]:
    """vantage name -> worker address: the requested vantages, or every worker (None). An
    unknown name is a UsageError that says which workers there are."""
    by_name = {name: address for address, name in workers.items()}
    if not by_name:
        raise UsageError(
            f"the Dask scheduler at {scheduler} has no worker: start one per place "
            f"(dask worker {scheduler} --name NAME)"
        )
    names = list(by_name) if requested is None else list(requested)
    try:
        check_vantage_names(names, "vantages")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    unknown = [n for n in names if n not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name))
        return_word = "vantages" if len(unknown) > 1 else "vantage"
        raise UsageError(
            f"unknown {return_word} {', '.join(repr(n) for n in unknown)}: the Dask scheduler at {scheduler} "
            f"has the worker(s) {known}"
        )
    return {n: by_name[n] for n in names}


def check_workers(facts: Sequence[WorkerFacts], version: str = kiloscribe_lab.__version__) -> None:
    """Every vantage's worker runs this kiloscribe-lab and can read the key: else a UsageError
    naming the worker that differs."""
    for f in facts:
        if f.version != version:
            runs = f"kiloscribe-lab {f.version}" if f.version else "no kiloscribe-lab"
            raise UsageError(
                f"worker {f.name} ({f.host}) runs {runs}, this command {version}: install "
                f"kiloscribe-lab=={version} there (its cells would run other probes)"
            )
    for f in facts:
        if f.key_problem:
            raise UsageError(
                f"vantage {f.name}: {f.key_problem} in its worker's environment "
                "(each worker reads the key from its own; it is never sent)"
            )


def _facts_function() -> Callable[..., dict[str, object]]:
    """What runs on each worker before the run. Defined in here, so cloudpickle sends it by
    value: it must run on a worker whatever version of this package is installed there."""

    def facts(api_key_env: str | None, dask_worker: Any = None) -> dict[str, object]:
        import os
        import platform
        import socket

        try:
            import kiloscribe_lab

            version = str(getattr(kiloscribe_lab, "__version__", "")) or None
        except ImportError:
            version = None
        problem = None
        if api_key_env and version is not None:
            try:
                from kiloscribe_lab.credentials import read_key
                from kiloscribe_lab.errors import SecretError
            except ImportError:
                pass  # another version: said first
            else:
                try:
                    read_key(api_key_env, os.environ)
                except SecretError as exc:
                    problem = str(exc)
        return {
            "name": str(dask_worker.name),
            "address": str(dask_worker.address),
            "host": socket.gethostname(),
            "version": version,
            "python": platform.python_version(),
            "key_problem": problem,
        }

    return facts


# --- what a cell carries there and back ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CellTask:
    """One matrix cell as a worker runs it: no secret, no path of the client's."""

    run_id: str
    vantage: str
    notebook: str  # the probe notebook (JSON text)
    parameters: Mapping[str, Parameter]  # without the paths: the worker sets them
    files: Mapping[str, str] = field(default_factory=dict)  # CA_FILE, NETWORK_CA_FILE, CONFIG_FILE
    stop_event: str | None = None  # a distributed.Event the client sets to stop every cell
    # The local matrix's deadlines (a WorkerSpec's), enforced on the worker by matrix.execute.
    start_timeout_s: int = START_TIMEOUT_S
    execution_timeout_s: int = EXECUTION_TIMEOUT_S

    @property
    def wall_s(self) -> float:
        return self.spec(Path(), {}).wall_s

    def spec(self, here: Path, parameters: Mapping[str, Parameter]) -> WorkerSpec:
        """The notebook process this cell is on its worker, in the scratch directory ``here``."""
        return WorkerSpec(
            input=here / "probe.ipynb",
            output=here / "executed.ipynb",
            status=here / "status.json",
            parameters=parameters,
            start_timeout_s=self.start_timeout_s,
            execution_timeout_s=self.execution_timeout_s,
        )


@dataclass(frozen=True, slots=True)
class CellResult:
    """What a worker sends back: where and when the cell ran, how it ended, and its files."""

    run_id: str
    worker: str
    address: str
    host: str
    status: Mapping[str, object]  # a WorkerStatus as JSON
    started_at: str
    finished_at: str
    notebook: str | None = None
    results: str | None = None


def _toml(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def cell_config(plan: ReportPlan, run: MatrixRun, profile: NetworkProfile, network_ca: bool) -> str:
    """The config a cell's notebook reads: its target, and its network profile as the plan has
    it (a CA bundle as a file beside it). Pure."""
    lines = [
        "# One cell of a kiloscribe-lab report: its network profile, sent by the report.",
        "[investigation]",
        f"endpoints = [{_toml(run.target.url)}]",
        f"networks = [{_toml(run.network)}]",
        f"inscription = {'true' if plan.settings.inscription else 'false'}",
    ]
    if plan.settings.origin is not None:
        lines.append(f"origin = {_toml(plan.settings.origin)}")
    if profile != DIRECT or network_ca:
        lines += [
            "",
            f"[networks.{_toml(run.network)}]",
            "transports = [" + ", ".join(_toml(str(t)) for t in profile.transports) + "]",
        ]
        if profile.proxy is not None:
            lines.append(f"proxy = {_toml(profile.proxy)}")
        if profile.headers:
            pairs = ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in profile.headers.items())
            lines.append(f"headers = {{ {pairs} }}")
        if network_ca:
            lines.append(f"ca_bundle = {_toml(NETWORK_CA_FILE)}")  # beside the config, on the worker
        if profile.resolve:
            pairs = ", ".join(f"{_toml(k)} = {_toml(v)}" for k, v in profile.resolve.items())
            lines.append(f"resolve = {{ {pairs} }}")
    return "\n".join(lines) + "\n"


def _read_file(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise UsageError(
                f"{what} {path} is larger than {MAX_FILE_BYTES // 1024} KiB: not sent to the workers"
            )
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{what} {path} cannot be read to send to the workers: {exc}") from exc


def cell_task(
    plan: ReportPlan,
    run: MatrixRun,
    notebook_text: str,
    profile: NetworkProfile,
    stop_event: str | None = None,
) -> CellTask:
    """``run`` as its worker runs it: the files its parameters name travel as text."""
    parameters = {k: v for k, v in probe_parameters(run, plan, Path()).items() if k not in PATH_PARAMETERS}
    settings = parameters.get("settings")
    if isinstance(settings, Mapping):  # the CA bundle travels as a file; the worker names its copy
        parameters["settings"] = {k: v for k, v in settings.items() if k != "ca_bundle"}
    files: dict[str, str] = {}
    if plan.settings.ca_bundle is not None:
        files[CA_FILE] = _read_file(plan.settings.ca_bundle, "CA bundle")
    if profile.ca_bundle is not None:
        files[NETWORK_CA_FILE] = _read_file(profile.ca_bundle, f"network {run.network}: CA bundle")
    files[CONFIG_FILE] = cell_config(plan, run, profile, profile.ca_bundle is not None)
    return CellTask(run.id, run.vantage, notebook_text, parameters, files, stop_event)


def network_profiles(plan: ReportPlan, networks: Sequence[str]) -> dict[str, NetworkProfile]:
    """Each network's profile, to send with its cells: the config's, the lab's, or direct. A
    network that has none here is a UsageError (a worker could not know it either)."""
    profiles = dict(plan.profiles)
    if plan.lab_dir is not None and any(n not in profiles for n in networks):
        from kiloscribe_lab.lab.state import lab_network_profiles

        profiles = {**lab_network_profiles(plan.lab_dir), **profiles}
    out = {}
    for n in networks:
        if n in profiles:
            out[n] = profiles[n]
        elif n == NetworkName.DIRECT:
            out[n] = DIRECT
        else:
            raise UsageError(f"network {n!r}: no profile to send to the workers (define it in the config)")
    return out


def _bounded_text(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_CELL_TEXT:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def run_cell(task: CellTask) -> CellResult:
    """On the vantage's worker: the cell's notebook in a scratch directory, through the local
    matrix's own worker process (its deadlines and kill, enforced here)."""
    from distributed import Event, get_worker

    from kiloscribe_lab.report.matrix import Workers, execute

    me = get_worker()
    started_at = utc_now()
    with tempfile.TemporaryDirectory(prefix=f"kiloscribe-{slug(task.run_id)}-") as scratch:
        here = Path(scratch)
        for name, text in task.files.items():
            (here / Path(name).name).write_text(text, encoding="utf-8")
        (here / "probe.ipynb").write_text(task.notebook, encoding="utf-8")
        settings = task.parameters.get("settings")
        parameters: dict[str, Parameter] = {
            **task.parameters,
            "settings": {
                **(settings if isinstance(settings, Mapping) else {}),
                "ca_bundle": str(here / CA_FILE) if CA_FILE in task.files else None,
            },
            "vantage": str(me.name),  # the worker's own word for where the probes run
            "results_path": str(here / "results.jsonl"),
            "config_path": str(here / CONFIG_FILE) if CONFIG_FILE in task.files else None,
        }
        spec = task.spec(here, parameters)
        live = Workers()
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            running = pool.submit(execute, spec, dict(os.environ), None, live)
            stop = Event(task.stop_event) if task.stop_event else None
            while True:
                try:
                    status = running.result(timeout=STOP_POLL_S)
                    break
                except concurrent.futures.TimeoutError:
                    if stop is not None and stop.is_set():
                        live.kill_all()  # the notebook's process and kernel; execute returns
        return CellResult(
            run_id=task.run_id,
            worker=str(me.name),
            address=str(me.address),
            host=socket.gethostname(),
            status=status.to_json(),
            started_at=started_at,
            finished_at=utc_now(),
            notebook=_bounded_text(spec.output),
            results=_bounded_text(here / "results.jsonl"),
        )


# --- the client ---------------------------------------------------------------------------------


def _reachable(address: str) -> None:
    """A tcp:// (or tls://) scheduler takes a TCP connection within seconds: else a UsageError
    now, rather than distributed's retries until its own timeout."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        scheme, rest = "tcp", address
    if scheme not in {"tcp", "tls"}:
        return
    host, _, port = rest.split("/", 1)[0].rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise UsageError(f"the Dask scheduler address {address} has no host:port")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_CHECK_S).close()
    except OSError as exc:
        why = exc.strerror or str(exc) or type(exc).__name__
        raise UsageError(f"cannot reach the Dask scheduler at {address}: {why}") from None


class Cluster:
    """A connected Dask client and the vantages it runs cells on (``connect``), for one report."""

    def __init__(self, client: Client, scheduler: str, workers: Mapping[str, WorkerFacts]) -> None:
        self.client = client
        self.scheduler = scheduler
        self.workers = dict(workers)  # vantage name -> its worker

    @property
    def vantages(self) -> tuple[str, ...]:
        return tuple(self.workers)

    def to_json(self) -> dict[str, object]:
        """What run.json records of the cluster."""
        return {"scheduler": self.scheduler, "workers": [w.to_json() for w in self.workers.values()]}

    @classmethod
    def connect(cls, spec: ClusterSpec, *, api_key_env: str | None) -> Cluster:
        """Connect and check everything a run needs of the cluster; UsageError for each fault."""
        _reachable(spec.scheduler)
        try:
            from distributed import Client
        except ImportError:
            raise UsageError(
                "--cluster needs Dask's distributed: pip install 'kiloscribe-lab[cluster]'"
            ) from None
        try:
            client = Client(
                spec.scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False, name="kiloscribe-lab"
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise UsageError(f"cannot connect to the Dask scheduler at {spec.scheduler}: {exc}") from None
        try:
            workers = client.scheduler_info()["workers"]
            chosen = choose_vantages(
                {str(a): str(w.get("name", a)) for a, w in workers.items()}, spec.vantages, spec.scheduler
            )
            facts = _ask_workers(client, chosen, api_key_env)
            threads = {str(w.get("name", a)): int(w.get("nthreads") or 1) for a, w in workers.items()}
            facts = {n: _with_threads(f, threads.get(n, 1)) for n, f in facts.items()}
            check_workers(list(facts.values()))
        except BaseException:
            client.close()
            raise
        return cls(client, spec.scheduler, facts)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # closing a client whose scheduler went away
            self.client.close(timeout=5)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def run_matrix(
        self,
        plan: ReportPlan,
        runs: Sequence[MatrixRun],
        run_dir: Path,
        *,
        probe_notebook: Path,
        progress: Progress | None = None,
    ) -> list[RunRecord]:
        """Every cell on its vantage's worker; a record for each, in ``runs`` order."""
        from distributed import Event

        (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
        (run_dir / "results").mkdir(parents=True, exist_ok=True)
        notebook_text = _read_file(probe_notebook, "probe notebook")
        profiles = network_profiles(plan, list(dict.fromkeys(r.network for r in runs)))
        token = uuid.uuid4().hex[:12]
        stop_name = f"kiloscribe-lab-stop-{token}"
        stop = Event(stop_name, client=self.client)
        tasks = [cell_task(plan, run, notebook_text, profiles[run.network], stop_name) for run in runs]
        per_vantage = {v: sum(1 for r in runs if r.vantage == v) for v in self.workers}
        # A cell waits behind the vantage's others (nthreads at a time), then has its own deadline.
        wall = max(t.wall_s for t in tasks) + RESULT_SLACK_S if tasks else RESULT_SLACK_S
        deadline_s = {
            v: math.ceil(n / max(1, self.workers[v].nthreads)) * wall + START_TIMEOUT_S
            for v, n in per_vantage.items()
        }
        records: dict[str, RunRecord] = {}
        pending: dict[Future[CellResult], tuple[MatrixRun, float]] = {}
        try:
            for run, task in zip(runs, tasks, strict=True):
                if run.vantage not in self.workers:
                    records[run.id] = _failed(run, f"vantage {run.vantage} is not one of this run's")
                    continue
                future = self.client.submit(
                    run_cell,
                    task,
                    key=f"kiloscribe-lab-{token}-{run.id}",
                    workers=[run.vantage],
                    allow_other_workers=False,
                    pure=False,
                    retries=0,
                )
                pending[future] = (run, time.monotonic())
            while pending:
                self._settle(pending, records, run_dir, deadline_s, progress)
                if pending:
                    time.sleep(POLL_S)
        except BaseException:
            # Ctrl-C (or an error): the workers' cells kill their notebooks; nothing else starts.
            with contextlib.suppress(Exception):
                stop.set()
                self.client.cancel(list(pending))
            raise
        return [records[run.id] for run in runs]

    def _settle(
        self,
        pending: dict[Future[CellResult], tuple[MatrixRun, float]],
        records: dict[str, RunRecord],
        run_dir: Path,
        deadline_s: Mapping[str, float],
        progress: Progress | None,
    ) -> None:
        """Record every cell that finished, failed, lost its worker or ran out of time."""
        alive: set[str] | None = None
        for future, (run, submitted) in list(pending.items()):
            record: RunRecord | None = None
            waited = round(time.monotonic() - submitted, 3)
            if future.status == "finished":
                record = _record(run, future.result(), run_dir, waited)
            elif future.status in {"error", "cancelled", "lost"}:
                why = future.exception() if future.status == "error" else None
                said = f"failed on its worker: {type(why).__name__}: {why}" if why else f"was {future.status}"
                record = _failed(run, f"the cell {said}", waited)
            else:
                if alive is None:
                    workers = self.client.scheduler_info()["workers"].values()
                    alive = {str(w.get("name")) for w in workers}
                if run.vantage not in alive:
                    record = _failed(
                        run,
                        f"worker {run.vantage} left the cluster while this cell ran (its process "
                        "died or was stopped): no result",
                        waited,
                    )
                elif waited > deadline_s[run.vantage]:
                    record = _failed(
                        run,
                        f"no result from worker {run.vantage} within {deadline_s[run.vantage]:.0f} s",
                        waited,
                    )
                    record = _with_status(record, RunStatus.TIMEOUT)
                if record is not None:
                    future.cancel()
            if record is not None:
                del pending[future]
                records[run.id] = record
                if progress is not None:
                    progress(f"{run.id}: {record.status}")


def _with_threads(f: WorkerFacts, nthreads: int) -> WorkerFacts:
    return WorkerFacts(f.name, f.address, f.host, f.version, f.python, nthreads, f.key_problem)


def _ask_workers(
    client: Client, chosen: Mapping[str, str], api_key_env: str | None
) -> dict[str, WorkerFacts]:
    """Each chosen worker's facts, within PREFLIGHT_S (a worker that does not answer is named)."""
    answers: dict[str, Any] = {}
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            answers.update(client.run(_facts_function(), api_key_env, workers=list(chosen.values())))
        except Exception as exc:  # handed to the caller below
            failure.append(exc)

    asker = threading.Thread(target=ask, name="kiloscribe-lab preflight", daemon=True)
    asker.start()
    asker.join(PREFLIGHT_S)
    if asker.is_alive():
        raise UsageError(f"the vantages' workers did not answer within {PREFLIGHT_S:.0f} s")
    if failure:
        raise UsageError(f"a vantage's worker could not say what it runs: {failure[0]}")
    out: dict[str, WorkerFacts] = {}
    for name, address in chosen.items():
        data = answers.get(address)
        if not isinstance(data, Mapping):
            raise UsageError(f"worker {name} ({address}) did not answer before the run")
        out[name] = WorkerFacts(
            name=str(data.get("name") or name),
            address=address,
            host=str(data.get("host") or "?"),
            version=None if data.get("version") is None else str(data["version"]),
            python=str(data.get("python") or "?"),
            key_problem=None if data.get("key_problem") is None else str(data["key_problem"]),
        )
    return out


def _failed(run: MatrixRun, error: str, waited: float | None = None) -> RunRecord:
    return RunRecord(
        id=run.id,
        label=run.target.label,
        endpoint=run.target.url,
        network=run.network,
        status=RunStatus.FAILED,
        error=error,
        vantage=run.vantage,
        round_trip_s=waited,
    )


def _with_status(record: RunRecord, status: RunStatus) -> RunRecord:
    from dataclasses import replace

    return replace(record, status=status)


def _record(run: MatrixRun, result: CellResult, run_dir: Path, waited: float) -> RunRecord:
    """A finished cell's record; its notebook and results written into the run directory."""
    try:
        status = WorkerStatus.from_json(dict(result.status))
    except ValueError as exc:
        status = WorkerStatus(RunStatus.FAILED, error=f"the worker's status is not readable: {exc}")
    error = status.error
    if result.worker != run.vantage:  # allow_other_workers=False: never, unless Dask changed
        status, error = WorkerStatus(RunStatus.FAILED), f"ran on worker {result.worker}, not on {run.vantage}"
    notebook = results = None
    if result.notebook is not None:
        (run_dir / "notebooks" / f"{run.id}.ipynb").write_text(result.notebook, encoding="utf-8")
        notebook = f"notebooks/{run.id}.ipynb"
    if result.results is not None:
        (run_dir / "results" / f"{run.id}.jsonl").write_text(result.results, encoding="utf-8")
        results = f"results/{run.id}.jsonl"
    return RunRecord(
        id=run.id,
        label=run.target.label,
        endpoint=run.target.url,
        network=run.network,
        status=status.status,
        error=error,
        seconds=status.seconds,
        kernel_start_s=status.kernel_start_s,
        cells_s=status.cells_s,
        results=results,
        notebook=notebook,
        vantage=run.vantage,
        worker=result.worker,
        worker_address=result.address,
        host=result.host,
        started_at=result.started_at,
        finished_at=result.finished_at,
        round_trip_s=waited,
    )
