"""`kiloscribe-lab findings --json` as a process: every finding id, one JSON object a line, exit 0."""

from __future__ import annotations

import json
import subprocess
import sys

from kiloscribe_lab.names import FindingId


def test_findings_json_as_a_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kiloscribe_lab.cli", "findings", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    objects = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [o["id"] for o in objects] == [str(fid) for fid in FindingId]
    assert all(o["title"] and o["severity"] for o in objects)
