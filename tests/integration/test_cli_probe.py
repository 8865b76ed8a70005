"""`kiloscribe-lab probe` as a process: exit codes, stdout contracts, errors without tracebacks."""

from __future__ import annotations

import concurrent.futures
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.names import Credential, FindingId, Outcome, ProbeName
from kiloscribe_lab.results import Finding, ProbeResult, read_jsonl
from tests.integration.clients import jobs_started
from tests.integration.conftest import LabGetter, lab_targets
from tests.integration.tty import TtyRun, run_on_tty

pytestmark = pytest.mark.timeout(60)
CLI = [sys.executable, "-m", "kiloscribe_lab.cli"]
SGR = re.compile(r"\x1b\[[0-9;]*m")


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env if env is not None else dict(os.environ),
    )


def test_incident_json_lines_then_exit_1(labs: LabGetter, lab_key: str) -> None:
    lab = labs("incident")
    env = {**os.environ, fleet.API_KEY_ENV: lab_key}
    proc = run(
        [
            "probe",
            *lab_targets(lab),
            "--ca-bundle",
            str(lab.ca_bundle),
            "--api-key-env",
            fleet.API_KEY_ENV,
            "--timeout",
            "3",
            "--json",
        ],
        env,
    )
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    kinds = [r["kind"] for r in records]
    # every ProbeResult, then every Finding, then the verdicts and one summary: nothing else
    assert kinds == sorted(kinds, key=["probe", "finding", "verdict", "summary"].index)
    assert kinds.count("summary") == 1 and "probe" in kinds and "finding" in kinds
    ids = {r["id"] for r in records if r["kind"] == "finding"}
    assert {"backend-down", FindingId.STICKY_SESSIONS_MISSING, FindingId.ROOT_REDIRECT} <= ids
    assert lab_key not in proc.stdout and lab_key not in proc.stderr
    # the output reads back: the records, with the derived verdict/summary lines skipped
    read_back = list(read_jsonl(proc.stdout))
    assert len(read_back) == kinds.count("probe") + kinds.count("finding")
    assert {f.id for f in read_back if isinstance(f, Finding)} == ids


def test_healthy_human_output_exit_0(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    env = {**os.environ, fleet.API_KEY_ENV: lab_key}
    proc = run(
        ["probe", f"lb={lab.lb}", "--ca-bundle", str(lab.ca_bundle), "--api-key-env", fleet.API_KEY_ENV], env
    )
    assert proc.returncode == 0, proc.stderr
    assert "lb  https://127.0.0.1:" in proc.stdout
    assert "Findings" in proc.stdout and "Overall: healthy" in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Overall: healthy.")  # the verdict first, then findings, then detail
    assert lines.index("Verdicts") < lines.index("Findings") < lines.index("Probes")
    assert not [line for line in lines if line.startswith("Not checked")]  # a key: nothing skipped
    assert all(len(line) <= 80 for line in lines)  # not a terminal: 80 columns
    assert "\x1b" not in proc.stdout


def test_without_a_key_the_output_says_what_did_not_run(labs: LabGetter) -> None:
    lab = labs("healthy")
    env = {k: v for k, v in os.environ.items() if k != fleet.API_KEY_ENV}
    proc = run(["probe", f"lb={lab.lb}", "--ca-bundle", str(lab.ca_bundle), "--no-inscription"], env)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("Overall: ")
    notes = [i for i, line in enumerate(lines) if line.startswith("Not checked: ")]
    assert len(notes) == 1 and notes[0] < lines.index("Verdicts"), proc.stdout
    said = " ".join(" ".join(lines[: lines.index("Verdicts")]).split())
    assert "no --api-key-env" in said and f"{ProbeName.SOCKETIO_CONNECT} with the valid key" in said
    assert f":{Credential.VALID}" not in proc.stdout  # and indeed no valid-key row ran


def _refused_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listening: refuses, and no one else can take it
    return s, s.getsockname()[1]


def _plain_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NO_COLOR", "COLUMNS", "TERM"}}
    return {**env, "TERM": "xterm-256color", **extra}


TTY_CASES = {
    "auto": ([], {}, True),
    "no-color": ([], {"NO_COLOR": "1"}, False),
    "never": (["--color", "never"], {}, False),
}
PIPE_CASES = {"plain": [], "asked": ["--color", "always"]}


@pytest.fixture(scope="module")
def refused_port_runs() -> dict[str, TtyRun | subprocess.CompletedProcess[str]]:
    """``probe`` of a refused port at a 64-column terminal (TTY_CASES) and on a pipe (PIPE_CASES),
    all at once: each waits on its own probes, not on the others."""

    def on_tty(args: list[str], extra_env: dict[str, str]) -> TtyRun:
        held, port = _refused_port()
        with held:
            return run_on_tty(
                [*CLI, "probe", f"http://127.0.0.1:{port}", "--timeout", "2", *args],
                _plain_env(**extra_env),
                tty_stdout=True,
                tty_stderr=False,
                columns=64,
            )

    held, port = _refused_port()
    with held, concurrent.futures.ThreadPoolExecutor(len(TTY_CASES) + len(PIPE_CASES)) as pool:
        runs: dict[str, concurrent.futures.Future[TtyRun | subprocess.CompletedProcess[str]]] = {
            **{case: pool.submit(on_tty, args, env) for case, (args, env, _) in TTY_CASES.items()},
            **{
                case: pool.submit(
                    run, ["probe", f"http://127.0.0.1:{port}", "--timeout", "2", *args], _plain_env()
                )
                for case, args in PIPE_CASES.items()
            },
        }
        return {case: future.result() for case, future in runs.items()}


@pytest.mark.parametrize("case", list(TTY_CASES))
def test_on_a_terminal_colour_unless_told_not_to_and_wrapped_to_its_width(
    case: str, refused_port_runs: dict[str, TtyRun | subprocess.CompletedProcess[str]]
) -> None:
    coloured = TTY_CASES[case][2]
    result = refused_port_runs[case]
    assert result.returncode in {0, 1}, result
    assert ("\x1b[" in result.stdout) is coloured
    visible = SGR.sub("", result.stdout)
    assert visible.startswith("Overall: ")
    assert not {ch for ch in visible if ord(ch) < 0x20 and ch != "\n"}  # only our colours
    for line in visible.splitlines():
        assert len(line) <= 64 or len(line.split()) == 1 or "://" in line, line


def test_a_pipe_gets_colour_only_when_asked(
    refused_port_runs: dict[str, TtyRun | subprocess.CompletedProcess[str]],
) -> None:
    plain, asked = refused_port_runs["plain"], refused_port_runs["asked"]
    assert "\x1b" not in plain.stdout and "\x1b[" in asked.stdout
    assert SGR.sub("", asked.stdout).splitlines()[0] == plain.stdout.splitlines()[0]


BAD_INPUT = [
    (["probe", "https://"], "malformed URL"),
    (["probe", "ftp://example.invalid"], "scheme must be"),
    (["probe", "https://127.0.0.1:99999"], "malformed URL"),
    (["probe", "https://127.0.0.1:1", "--ca-bundle", "/nonexistent/ca.pem"], "does not exist"),
    (["probe", "https://127.0.0.1:1", "--api-key-env", "KILOSCRIBE_UNSET_VAR"], "unset"),
    (["probe", "https://127.0.0.1:1", "--timeout", "-1"], "--timeout"),
    (["probe", "https://127.0.0.1:1", "--attempts", "zero"], "--attempts"),
    (["probe", "https://127.0.0.1:1", "--network", "nowhere"], "unknown network"),
    (["probe", "https://127.0.0.1:1", "--bogus"], "unrecognized arguments"),
    (["probe"], "at least one URL"),
]


@pytest.fixture(scope="module")
def bad_input_runs() -> dict[tuple[str, ...], subprocess.CompletedProcess[str]]:
    """Every BAD_INPUT command line, run at once: each is an interpreter start and nothing else."""
    env = {k: v for k, v in os.environ.items() if k != "KILOSCRIBE_UNSET_VAR"}
    with concurrent.futures.ThreadPoolExecutor(len(BAD_INPUT)) as pool:
        runs = {tuple(args): pool.submit(run, args, env) for args, _ in BAD_INPUT}
        return {args: future.result() for args, future in runs.items()}


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, bad_input_runs: dict[tuple[str, ...], subprocess.CompletedProcess[str]]
) -> None:
    proc = bad_input_runs[tuple(args)]
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_refused_port_is_a_finding_not_a_crash(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # bound, never listening: refuses, and no one else can take it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        proc = run(["probe", f"http://127.0.0.1:{port}", "--json", "--timeout", "2"])
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    probes = [r for r in records if r["kind"] == "probe"]
    assert probes and all(r["outcome"] == "refused" for r in probes)
    assert proc.returncode in {0, 1}
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("inscription", [True, False])
def test_no_inscription_sends_no_start_inscription(labs: LabGetter, lab_key: str, inscription: bool) -> None:
    lab = labs("healthy")
    env = {**os.environ, fleet.API_KEY_ENV: lab_key}
    before = jobs_started(lab)
    args = ["probe", f"lb={lab.lb}", "--ca-bundle", str(lab.ca_bundle), "--api-key-env", fleet.API_KEY_ENV]
    proc = run([*args, "--json", *([] if inscription else ["--no-inscription"])], env)
    assert proc.returncode == 0, proc.stderr
    flows = [
        r for r in read_jsonl(proc.stdout) if isinstance(r, ProbeResult) and r.probe == ProbeName.SDK_FLOW
    ]
    assert flows and all(r.outcome is Outcome.OK for r in flows)
    steps = {s["step"]: s for s in flows[0].detail["steps"]}
    if inscription:
        assert steps["start-inscription"]["ack_success"] is True
        assert jobs_started(lab) > before
    else:
        assert steps["start-inscription"] == {"step": "start-inscription", "skipped": "--no-inscription"}
        assert jobs_started(lab) == before


def test_origin_adds_the_cors_probes_and_the_labs_echo_allows_it(labs: LabGetter, lab_key: str) -> None:
    """The lab's backends allow any origin (python-socketio's "*" echoes it, FACTS.md §3.5): a
    browser page there is allowed, and saying so adds no finding."""
    lab = labs("healthy")
    env = {**os.environ, fleet.API_KEY_ENV: lab_key}
    args = ["probe", f"lb={lab.lb}", "--ca-bundle", str(lab.ca_bundle), "--api-key-env", fleet.API_KEY_ENV]
    proc = run([*args, "--origin", "https://App.Example.com/", "--json"], env)
    assert proc.returncode == 0, proc.stderr
    records = list(read_jsonl(proc.stdout))
    cors = [r for r in records if isinstance(r, ProbeResult) and r.probe == ProbeName.CORS]
    assert {r.variant for r in cors} == {"polling", "preflight", "websocket"}
    assert all(r.outcome is Outcome.OK and r.detail["origin"] == "https://app.example.com" for r in cors)
    assert FindingId.CORS_ORIGIN_REJECTED not in {f.id for f in records if isinstance(f, Finding)}
    bad = run([*args, "--origin", "app.example.com"], env)
    assert bad.returncode == 2 and "malformed origin" in bad.stderr
