"""`kiloscribe-lab report` end to end: a real lab, papermill kernels, nbconvert, files on disk.

Runs A and B of the incident report are the session's (``incident_reports``, see reports.py):
A in process, with a sentinel key, a hostile endpoint and a broken notebook; B the CLI at a
terminal, compared with A."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kiloscribe_lab import report
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import SCENARIOS
from tests.integration.reports import B_COLUMNS, BROKEN_RUN, HOSTILE, SENTINEL, IncidentReports

pytestmark = pytest.mark.timeout(300)

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


def test_every_file_is_written(incident_reports: IncidentReports) -> None:
    run_dir = incident_reports.a.run_dir
    assert run_dir.parent == incident_reports.out_root and run_dir.name.count("-") == 2  # YYYY-MM-DD
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
    assert (incident_reports.out_root / "index.html").is_file()
    assert set(meta["timings"]) >= {"matrix_s", "kernel_start_s_sum", "probe_cells_s_sum", "render_s"}


def test_report_matches_incident_ground_truth(incident_reports: IncidentReports) -> None:
    run_dir = incident_reports.a.run_dir
    ids = {json.loads(line)["id"] for line in (run_dir / "findings.jsonl").read_text().splitlines()}
    assert set(SCENARIOS["incident"].expected_findings) <= ids
    page = (run_dir / "findings.html").read_text()
    markdown = (run_dir / "findings.md").read_text()
    for section in SECTIONS:
        assert section in page and section in markdown, section
    for finding in SCENARIOS["incident"].expected_findings:
        assert finding in page, finding
    assert "inscribe-2" in page


def test_failed_notebook_is_named_and_the_rest_renders(incident_reports: IncidentReports) -> None:
    records = {r.id: r for r in incident_reports.a.records}
    broken = records[BROKEN_RUN]
    assert broken.status == "failed" and broken.error and "malformed URL" in broken.error
    assert all(r.status == "ok" for i, r in records.items() if i != BROKEN_RUN)
    page = (incident_reports.a.run_dir / "findings.html").read_text()
    assert BROKEN_RUN in page and "malformed URL" in page


def test_html_is_self_contained_and_hides_inputs(incident_reports: IncidentReports) -> None:
    page = (incident_reports.a.run_dir / "findings.html").read_text()
    assert "<script src=" not in page and "https://cdn" not in page  # readable offline
    assert "<script" not in page  # nothing to execute at all
    assert "data:image/png;base64," in page  # charts are embedded
    assert "from kiloscribe_lab" not in page  # inputs hidden


def test_server_text_is_escaped(incident_reports: IncidentReports) -> None:
    for name in ("findings.html", "findings.md"):
        text = (incident_reports.a.run_dir / name).read_text()
        assert HOSTILE not in text, name
        assert "![x](http://evil.invalid" not in text, name


def test_the_key_value_is_in_no_file(incident_reports: IncidentReports) -> None:
    hits = [
        p for p in incident_reports.out_root.rglob("*") if p.is_file() and SENTINEL.encode() in p.read_bytes()
    ]
    assert hits == []
    params = json.loads((incident_reports.a.run_dir / "run.json").read_text())
    assert params["api_key_env"] == fleet.API_KEY_ENV


def findings_of(run_dir: Path) -> set[str]:
    return {json.loads(line)["id"] for line in (run_dir / "findings.jsonl").read_text().splitlines()}


def test_second_run_compares_and_does_not_overwrite(incident_reports: IncidentReports) -> None:
    """Run B, as at a terminal: the progress on stderr (a pty), what it found on stdout (a pipe)."""
    proc = incident_reports.b
    assert proc.returncode == 0, proc.stderr[-2000:]
    # The terminal's line: n/N with an ETA, rewritten in place, never past N, never wrapped.
    frames = [f for f in proc.stderr.split("\r") if f.strip()]
    counts = [re.match(r"notebooks (\d+)/(\d+) ", f) for f in frames]
    steps = [(int(m[1]), int(m[2])) for m in counts if m]
    assert steps and steps[-1][0] == steps[-1][1] and all(n <= total for n, total in steps), frames
    assert any("left" in f for f in frames) and all(len(f) < B_COLUMNS for f in frames)
    assert proc.stderr.endswith("\r") and not proc.stderr.split("\r")[-2].strip()  # erased at the end
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Overall: ") and "report: [" not in proc.stdout  # progress went to the tty
    assert [line.split()[0] for line in lines[-3:]] == ["HTML", "Markdown", "index"]
    assert "time:" not in proc.stdout and "lab_up_s" not in proc.stdout  # internals only with -v
    runs = sorted(p.name for p in incident_reports.out_root.iterdir() if p.is_dir())
    assert len(runs) == 2 and runs[1] == runs[0] + "-2"
    second = incident_reports.out_root / runs[1]
    assert second == incident_reports.b_dir
    meta = json.loads((second / "run.json").read_text())
    assert meta["compare_dir"] == str(incident_reports.a.run_dir)
    index = (incident_reports.out_root / "index.html").read_text()
    assert runs[0] in index and runs[1] in index


def test_findings_gone_since_the_previous_run_are_listed_as_resolved(
    incident_reports: IncidentReports,
) -> None:
    """B probes the lab without A's hostile endpoint and broken notebook: what A found only
    there, B's page lists as resolved since the previous run (backend-down resolved once the
    lab is healthy is tests/unit/report/test_summary.py's, on two recorded labs' summaries)."""
    a, b = findings_of(incident_reports.a.run_dir), findings_of(incident_reports.b_dir)
    gone = a - b
    assert gone, (sorted(a), sorted(b))  # else nothing here could be listed as resolved
    page = (incident_reports.b_dir / "findings.html").read_text()
    assert "Resolved findings" in page and "resolved" in page.lower()
    resolved = page.split("Resolved findings", 1)[1].split("</ul>", 1)[0]  # its list, ids in <code>
    assert {f for f in a | b if f"<code>{f}</code>" in resolved} == gone, resolved


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
    wall_s = 12.0  # a kernel starts in 2-5 s: the deadline falls while it runs the cell
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
