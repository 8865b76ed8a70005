"""`kiloscribe-lab report` end to end: a real lab, papermill kernels, nbconvert, files on disk."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiloscribe_lab import report
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import SCENARIOS
from kiloscribe_lab.names import FindingId
from kiloscribe_lab.settings import ProbeSettings
from tests.integration.servers import canned_server, http_answer
from tests.integration.tty import run_on_tty

pytestmark = pytest.mark.timeout(300)

SENTINEL = "sentinel-key-4f1c9e2a7b"
HOSTILE = "<script>alert('owned')</script>"
SECTIONS = (
    "Summary",
    "Targets",
    "Root Cause Analysis",
    "Recommendations",
    "Changes since the previous run",
    "Charts",
    "Tested Endpoints",
    "Infrastructure Details",
    "Appendix: Test Details",
)


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[str]:
    """An HTTP server whose every answer carries markup where text belongs."""
    body = f"{HOSTILE} | ![x](http://evil.invalid/x.png) `tick`".encode()
    answer = http_answer("400 Bad Request", body, f"Server: {HOSTILE}", "Content-Type: text/html")
    with canned_server(answer) as url:
        yield url


@dataclass
class Run:
    outcome: report.ReportOutcome
    out_root: Path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, hostile_server: str) -> Run:
    """The incident report, with the key set to a sentinel, one notebook made to fail, and a
    hostile endpoint in the matrix."""
    out_root = tmp_path_factory.mktemp("reports")
    lab_dir = tmp_path_factory.mktemp("report-lab")
    env_key = {**os.environ, fleet.API_KEY_ENV: SENTINEL}
    info = fleet.up(lab_dir, "incident", environ=env_key)
    try:
        plan = report.ReportPlan(
            title="test",
            source="lab:incident",
            targets=(
                report.Target(info.edge, "edge"),
                report.Target(info.lb, "lb"),
                *(report.Target(info.backend_url(b), b) for b in ("inscribe-1", "inscribe-2", "inscribe-3")),
                report.Target(hostile_server, "hostile"),
            ),
            api_base=info.api,
            settings=ProbeSettings(api_key_env=fleet.API_KEY_ENV, timeout_s=3.0, ca_bundle=info.ca_bundle),
        )
        runs = [
            *report.build_matrix(plan),
            # A notebook that fails: its endpoint is not a URL, the probe cell raises.
            report.MatrixRun("99-broken-direct", report.Target("not a url", "broken"), "direct"),
        ]
        outcome = report.run_report(plan, env_key, out_root=out_root, jobs=2, runs_override=runs)
    finally:
        fleet.down(lab_dir)
    return Run(outcome, out_root)


def test_every_file_is_written(first_run: Run) -> None:
    run_dir = first_run.outcome.run_dir
    assert run_dir.parent == first_run.out_root and run_dir.name.count("-") == 2  # YYYY-MM-DD
    for name in (
        "findings.html",
        "findings.md",
        "findings_report.ipynb",
        "run.json",
        "summary.json",
        "findings.jsonl",
    ):
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "run.json").read_text())
    for entry in meta["matrix"]:
        assert (run_dir / entry["notebook"]).is_file(), entry["id"]
        if entry["status"] == "ok":
            assert (run_dir / entry["results"]).stat().st_size > 0, entry["id"]
    assert (first_run.out_root / "index.html").is_file()
    assert set(meta["timings"]) >= {"matrix_s", "kernel_start_s_sum", "probe_cells_s_sum", "render_s"}


def test_report_matches_incident_ground_truth(first_run: Run) -> None:
    run_dir = first_run.outcome.run_dir
    ids = {json.loads(line)["id"] for line in (run_dir / "findings.jsonl").read_text().splitlines()}
    assert set(SCENARIOS["incident"].expected_findings) <= ids
    page = (run_dir / "findings.html").read_text()
    markdown = (run_dir / "findings.md").read_text()
    for section in SECTIONS:
        assert section in page and section in markdown, section
    for finding in SCENARIOS["incident"].expected_findings:
        assert finding in page, finding
    assert "inscribe-2" in page


def test_failed_notebook_is_named_and_the_rest_renders(first_run: Run) -> None:
    records = {r.id: r for r in first_run.outcome.records}
    broken = records["99-broken-direct"]
    assert broken.status == "failed" and broken.error and "malformed URL" in broken.error
    assert all(r.status == "ok" for i, r in records.items() if i != "99-broken-direct")
    page = (first_run.outcome.run_dir / "findings.html").read_text()
    assert "99-broken-direct" in page and "malformed URL" in page


def test_html_is_self_contained_and_hides_inputs(first_run: Run) -> None:
    page = (first_run.outcome.run_dir / "findings.html").read_text()
    assert "<script src=" not in page and "https://cdn" not in page  # readable offline
    assert "<script" not in page  # nothing to execute at all
    assert "data:image/png;base64," in page  # charts are embedded
    assert "from kiloscribe_lab" not in page  # inputs hidden


def test_server_text_is_escaped(first_run: Run) -> None:
    for name in ("findings.html", "findings.md"):
        text = (first_run.outcome.run_dir / name).read_text()
        assert HOSTILE not in text, name
        assert "![x](http://evil.invalid" not in text, name


def test_the_key_value_is_in_no_file(first_run: Run) -> None:
    hits = [p for p in first_run.out_root.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()]
    assert hits == []
    params = json.loads((first_run.outcome.run_dir / "run.json").read_text())
    assert params["api_key_env"] == fleet.API_KEY_ENV


def test_second_run_compares_and_does_not_overwrite(first_run: Run) -> None:
    """Run as at a terminal: the progress on stderr (a pty), what it found on stdout (a pipe)."""
    proc = run_on_tty(
        [
            sys.executable,
            "-m",
            "kiloscribe_lab.cli",
            "report",
            "--scenario",
            "healthy",
            "--out",
            str(first_run.out_root),
            "--jobs",
            "2",
        ],
        {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "NO_COLOR"}},
        tty_stdout=False,
        tty_stderr=True,
        columns=100,
        timeout_s=240,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The terminal's line: n/N with an ETA, rewritten in place, never past N, never wrapped.
    frames = [f for f in proc.stderr.split("\r") if f.strip()]
    counts = [re.match(r"notebooks (\d+)/(\d+) ", f) for f in frames]
    steps = [(int(m[1]), int(m[2])) for m in counts if m]
    assert steps and steps[-1][0] == steps[-1][1] and all(n <= total for n, total in steps), frames
    assert any("left" in f for f in frames) and all(len(f) < 100 for f in frames)
    assert proc.stderr.endswith("\r") and not proc.stderr.split("\r")[-2].strip()  # erased at the end
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Overall: ") and "report: [" not in proc.stdout  # progress went to the tty
    assert [line.split()[0] for line in lines[-3:]] == ["HTML", "Markdown", "index"]
    assert "time:" not in proc.stdout and "lab_up_s" not in proc.stdout  # internals only with -v
    runs = sorted(p.name for p in first_run.out_root.iterdir() if p.is_dir())
    assert len(runs) == 2 and runs[1] == runs[0] + "-2"
    second = first_run.out_root / runs[1]
    meta = json.loads((second / "run.json").read_text())
    assert meta["compare_dir"] == str(first_run.outcome.run_dir)
    page = (second / "findings.html").read_text()
    assert FindingId.BACKEND_DOWN in page  # listed as resolved since the previous run
    assert "resolved" in page.lower()
    index = (first_run.out_root / "index.html").read_text()
    assert runs[0] in index and runs[1] in index


def test_invalid_config_is_rejected_before_anything_runs(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[investigation]\nendpoints = ["not a url"]\n')
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kiloscribe_lab.cli",
            "report",
            "--config",
            str(config),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "malformed URL" in proc.stderr
    assert not (tmp_path / "out").exists()


# --- a notebook that never ends: killed with its kernel, on a deadline or on Ctrl-C ------------


def _sleeper(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A notebook whose only cell sleeps for 10 minutes, and an environment that marks every
    process started in it (workers and kernels inherit it) with tmp_path."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(600)"))
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebooks = tmp_path / "nbs"
    notebooks.mkdir()
    path = notebooks / report.PROBE_NOTEBOOK
    nbformat.write(nb, path)
    return path, {**os.environ, "KILOSCRIBE_TEST_MARK": str(tmp_path)}


def _ours(tmp_path: Path) -> dict[int, str]:
    """Live (not zombie) processes marked with tmp_path (see _sleeper): workers and kernels."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if f"KILOSCRIBE_TEST_MARK={tmp_path}".encode() in environ and state not in ("Z", "X"):
            found[int(entry.name)] = cmdline
    return found


def _kernels(tmp_path: Path) -> set[int]:
    return {pid for pid, cmd in _ours(tmp_path).items() if "ipykernel" in cmd}


def _gone(tmp_path: Path, within_s: float = 3.0) -> dict[int, str]:
    """What is still alive after ``within_s`` (a SIGKILLed process takes a moment to go)."""
    deadline = time.monotonic() + within_s
    while (left := _ours(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.mark.timeout(120)
def test_a_notebook_past_its_wall_deadline_is_killed_with_its_kernel(tmp_path: Path) -> None:
    notebook, env = _sleeper(tmp_path)
    wall_s = 25.0
    spec = report.WorkerSpec(
        input=notebook,
        output=tmp_path / "out.ipynb",
        status=tmp_path / "sleeper.status.json",
        start_timeout_s=60,
        execution_timeout_s=600,
    )
    outcome: list[report.WorkerStatus] = []
    began = time.monotonic()
    worker = threading.Thread(target=lambda: outcome.append(report.execute(spec, env, wall_s)))
    worker.start()
    seen: set[int] = set()
    while worker.is_alive():
        seen |= _kernels(tmp_path)
        time.sleep(0.2)
    worker.join()
    elapsed = time.monotonic() - began

    assert seen, "the kernel never started: the test proves nothing"
    [status] = outcome
    assert status.status == "timeout" and "killed" in str(status.error)
    assert wall_s <= elapsed < wall_s + 10
    assert not _gone(tmp_path, within_s=0.5)  # killed by us, not by ipykernel's 1 s parent poll
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith("sleeper.")]  # spec, pids, stderr


@pytest.mark.timeout(120)
def test_ctrl_c_during_the_matrix_kills_the_live_notebook_and_runs_no_queued_one(tmp_path: Path) -> None:
    notebook, env = _sleeper(tmp_path)
    plan = report.ReportPlan("t", "test", tuple(report.Target(f"http://127.0.0.1:9/{i}") for i in range(3)))
    runs = report.build_matrix(plan)
    run_dir = tmp_path / "run"

    def interrupt_once_a_kernel_runs() -> None:
        deadline = time.monotonic() + 90
        while not _kernels(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)  # a real signal: it wakes the main thread's wait

    threading.Thread(target=interrupt_once_a_kernel_runs, daemon=True).start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        report.run_matrix(plan, runs, run_dir, env, jobs=1, probe_notebook=notebook)
    assert time.monotonic() - began < 60  # the sleeper's first kernel start, then at once
    assert not _gone(tmp_path)
    # Only the first run ever started a worker: the queued ones were cancelled.
    started = sorted(p.name for p in (run_dir / "notebooks").iterdir())
    assert all(name.startswith(runs[0].id) for name in started), started


# --- a report that cannot be rendered: one line, exit 4, the evidence kept ---------------------


def test_a_report_that_cannot_be_rendered_exits_4_in_one_line_and_keeps_the_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The real pipeline on a config (one endpoint nothing listens on); nbconvert is handed a
    broken copy of the executed findings notebook, as a crash mid-write would leave it."""
    from kiloscribe_lab import cli
    from kiloscribe_lab.errors import EXIT_REPORT
    from kiloscribe_lab.report import pipeline

    def render_broken(run_dir: Path, notebook: Path) -> list[Path]:
        broken = run_dir / "broken.ipynb"
        broken.write_text(notebook.read_text()[: len(notebook.read_text()) // 2])
        return report.render(run_dir, broken)

    monkeypatch.setattr(pipeline, "render", render_broken)
    config = tmp_path / "report.toml"
    config.write_text('[investigation]\nendpoints = ["http://127.0.0.1:9"]\ntimeout = 1.0\n')
    out_root = tmp_path / "out"
    code = cli.main(["report", "--config", str(config), "--out", str(out_root), "--jobs", "1"])
    out, err = capsys.readouterr()

    assert code == EXIT_REPORT
    assert len(err.strip().splitlines()) == 1, err
    assert (
        err.startswith("kiloscribe-lab: cannot render broken.ipynb: NotJSONError") and "Traceback" not in err
    )
    [run_dir] = [p for p in out_root.iterdir() if p.is_dir()]
    assert str(run_dir) in err
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["finished_at"] and "render_s" in meta["timings"]
    assert any("cannot render" in note for note in meta["notes"])
    # Not a terminal: a line per finished notebook on stdout, so stderr keeps its one line.
    progress = [line for line in out.splitlines() if line.startswith("report: [")]
    assert [line.split("]")[0] for line in progress] == ["report: [1/2", "report: [2/2"], out
    assert "findings report" in progress[-1]
    [entry] = meta["matrix"]
    assert entry["status"] == "ok"  # the probes ran (and found nothing listening)
    assert (run_dir / entry["results"]).stat().st_size > 0
    assert (run_dir / entry["notebook"]).is_file()
    for name in ("findings_report.ipynb", "summary.json", "findings.jsonl"):
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "findings.html").exists()
    assert run_dir.name in (out_root / "index.html").read_text()
