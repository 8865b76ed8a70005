"""Peak memory against a server that answers every request with a 200 MB body, sent as it is or
as a 200 KB gzip bomb (issue 13: the polling probes read whole bodies, 200 MB took ~1 GB of RSS
and 400 MB missed a 3 s deadline).

The command runs in a process of its own, so its peak RSS is its own (the table's in-process
runs share one heap); the server runs in another (hostile_process).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from kiloscribe_lab.errors import EXIT_CRITICAL
from kiloscribe_lab.probes.runner import run_deadline
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.hostile import SCHEDULER_SLACK_S, hostile_process

pytestmark = pytest.mark.timeout(60)

TIMEOUT_S = 3.0
PEAK_RSS_BAR_KB = 300 << 10
# The interpreter, the libraries and one command's results, against a server that says nothing
# much: what the command costs anyway, so the bar measures the body.
ROOT = Path(__file__).resolve().parents[3]
MEASURED = (
    "import resource, sys, time\n"
    "from kiloscribe_lab import cli\n"
    # Before the clock, as in the table: importing on a loaded machine is no probe's deadline.
    "import kiloscribe_lab.output, kiloscribe_lab.probes.command, kiloscribe_lab.probes.sio\n"
    "began = time.monotonic()\n"
    "code = cli.main(sys.argv[1:])\n"
    "print('seconds', time.monotonic() - began, file=sys.stderr)\n"
    "print('peak-rss-kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


@pytest.mark.parametrize("behaviour", ["body-200-mb", "gzip-bomb-200-mb"])
def test_a_200_mb_body_costs_no_memory_and_no_deadline(behaviour: str) -> None:
    with hostile_process([behaviour]) as urls:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                MEASURED,
                "probe",
                urls[behaviour],
                "--timeout",
                str(TIMEOUT_S),
                "--json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )
    peak_kb = int(done.stderr.rsplit("peak-rss-kb", 1)[-1].split()[0])
    # main()'s own time: an interpreter's start on a loaded machine is no probe's deadline.
    seconds = float(done.stderr.rsplit("seconds", 1)[-1].split()[0])
    assert done.returncode == EXIT_CRITICAL, done.stderr[-2000:]
    assert peak_kb < PEAK_RSS_BAR_KB, f"peak RSS {peak_kb >> 10} MiB"
    print(f"peak RSS {peak_kb >> 10} MiB in {seconds:.2f} s")
    assert "1048576-byte limit" in done.stdout
    assert "Traceback" not in done.stderr
    promised = run_deadline(ProbeOptions(timeout_s=TIMEOUT_S), discover=False)
    assert seconds <= promised + max(0.1 * promised, SCHEDULER_SLACK_S), seconds
