"""The session's two end-to-end reports of the incident lab, shared by test_report.py and
test_report_browser.py (``incident_reports`` in conftest.py): a report run costs a lab, a
dozen Jupyter kernels and nbconvert, so each is run once and every test reads its part.

- Run A, in process: the plan ``report.lab_plan`` makes for the incident lab (every network),
  with the key set to a sentinel, a hostile endpoint beside the lab's and one notebook made to
  fail.
- Run B, as a user at a terminal: ``kiloscribe-lab report --scenario incident`` into the same
  output folder, progress on a pty, what it found on a pipe. It compares itself with A.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiloscribe_lab import report
from kiloscribe_lab.lab.keys import API_KEY_ENV
from kiloscribe_lab.names import NetworkName
from kiloscribe_lab.report.plan import run_dirs
from tests.integration.servers import canned_server, http_answer
from tests.integration.tty import TtyRun, run_on_tty

SENTINEL = "sentinel-key-4f1c9e2a7b"
HOSTILE = "<script>alert('owned')</script>"
BROKEN_RUN = "99-broken-direct"
B_COLUMNS = 100


@dataclass(frozen=True)
class IncidentReports:
    out_root: Path
    a: report.ReportOutcome  # run A, in process
    b: TtyRun  # run B, the CLI's own output
    b_dir: Path  # run B's run directory


@contextlib.contextmanager
def hostile_server() -> Iterator[str]:
    """An HTTP server whose every answer carries markup where text belongs."""
    body = f"{HOSTILE} | ![x](http://evil.invalid/x.png) `tick`".encode()
    answer = http_answer("400 Bad Request", body, f"Server: {HOSTILE}", "Content-Type: text/html")
    with canned_server(answer) as url:
        yield url


def run_a(out_root: Path, lab_dir: Path) -> report.ReportOutcome:
    """The incident report in process, as ``kiloscribe-lab report`` plans it, plus a hostile
    endpoint (direct only) and a notebook whose endpoint is not a URL (its probe cell raises)."""
    with (
        hostile_server() as hostile,
        pytest.MonkeyPatch.context() as patch,
    ):
        patch.setenv(API_KEY_ENV, SENTINEL)  # the key lab_plan's lab accepts, and the probes use
        with report.lab_plan("incident", lab_dir) as (plan, env, _started):
            plan = dataclasses.replace(
                plan, targets=(*plan.targets, report.Target(hostile, "hostile", (NetworkName.DIRECT,)))
            )
            runs = [
                *report.build_matrix(plan),
                report.MatrixRun(BROKEN_RUN, report.Target("not a url", "broken"), NetworkName.DIRECT),
            ]
            return report.run_report(plan, env, out_root=out_root, jobs=2, runs_override=runs)


def run_b(out_root: Path) -> TtyRun:
    """``kiloscribe-lab report`` of the same scenario, at a terminal 100 columns wide."""
    return run_on_tty(
        [
            sys.executable,
            "-m",
            "kiloscribe_lab.cli",
            "report",
            "--scenario",
            "incident",
            "--out",
            str(out_root),
            "--jobs",
            "2",
            "--no-deep",  # A ran the slow probes; B is the command line's path (and --no-deep's)
        ],
        {k: v for k, v in os.environ.items() if k not in {"COLUMNS", "NO_COLOR"}},
        tty_stdout=False,
        tty_stderr=True,
        columns=B_COLUMNS,
        timeout_s=240,
    )


def incident_reports_in(out_root: Path, lab_dir: Path) -> IncidentReports:
    a = run_a(out_root, lab_dir)
    b = run_b(out_root)
    later = [p for p in run_dirs(out_root) if p != a.run_dir]
    assert b.returncode == 0 and len(later) == 1, (b.returncode, later, b.stderr[-3000:])
    return IncidentReports(out_root, a, b, later[0])
