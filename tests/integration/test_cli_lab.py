"""``kiloscribe-lab lab ...`` as a user runs it: the installed script, in a subprocess."""

from __future__ import annotations

import concurrent.futures
import json
import os
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import DEFAULT_SCENARIO, SCENARIOS

pytestmark = pytest.mark.timeout(60)

KILOSCRIBE_LAB = str(Path(sys.executable).parent / "kiloscribe-lab")
UP_KEYS = {"scenario", "edge", "lb", "backends", "api", "ca_bundle", "api_key_env", "networks"}


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KILOSCRIBE_LAB, *args],
        capture_output=True,
        text=True,
        timeout=45,
        env=os.environ if env is None else env,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kiloscribe-lab: ")
    return lines[0]


def test_lab_up_json_status_and_down(tmp_path: Path, lab_key: str) -> None:
    lab_dir = tmp_path / "lab"
    env = {**os.environ, fleet.API_KEY_ENV: lab_key}
    try:
        up = run("lab", "up", "--json", "--dir", str(lab_dir), "--scenario", "healthy", env=env)
        assert up.returncode == 0, up.stderr
        lines = up.stdout.splitlines()
        assert len(lines) == 1, up.stdout
        data = json.loads(lines[0])
        assert isinstance(data, dict)
        assert set(data) >= UP_KEYS
        assert data["scenario"] == "healthy"
        assert data["api_key_env"] == fleet.API_KEY_ENV
        networks = data["networks"]
        assert list(networks) == ["direct", "polling-only", "corporate-proxy", "mobile"]
        assert networks["direct"] is None and networks["polling-only"] is None
        assert networks["corporate-proxy"].startswith("http://127.0.0.1:")
        assert networks["mobile"].startswith("http://127.0.0.1:")
        assert Path(data["networks_config"]).is_file()
        assert [b["name"] for b in data["backends"]] == ["inscribe-1", "inscribe-2", "inscribe-3"]
        assert data["api"].endswith("/api")
        assert lab_key not in up.stdout + up.stderr

        # What it printed is true: the edge answers over TLS verified by the printed CA bundle.
        verify = ssl.create_default_context(cafile=data["ca_bundle"])
        with httpx.Client(verify=verify, trust_env=False, timeout=3) as client:
            assert client.get(data["edge"] + "/api/health").status_code == 200
            for backend in data["backends"]:
                assert client.get(backend["url"] + "/api/health").status_code == 200

        status = run("lab", "status", "--json", "--dir", str(lab_dir), env=env)
        assert status.returncode == 0, status.stdout + status.stderr
        report = json.loads(status.stdout)
        assert report["healthy"] is True and report["scenario"] == "healthy"
        assert lab_key not in status.stdout

        human = run("lab", "status", "--dir", str(lab_dir), env=env)
        assert human.returncode == 0
        assert "scenario healthy, healthy" in human.stdout.splitlines()[0]
    finally:
        down = run("lab", "down", "--dir", str(lab_dir), env=env)
    assert down.returncode == 0, down.stderr
    assert not (lab_dir / fleet.STATE_FILE).exists()

    gone = run("lab", "status", "--dir", str(lab_dir), env=env)
    assert gone.returncode == 3
    assert "no lab in" in one_line_error(gone)
    again = run("lab", "down", "--dir", str(lab_dir), env=env)
    assert again.returncode == 0, again.stderr


def test_lab_scenarios_lists_all_seven_with_their_ground_truth() -> None:
    result = run("lab", "scenarios")
    assert result.returncode == 0, result.stderr
    for name, scenario in SCENARIOS.items():
        assert name in result.stdout
        assert ", ".join(scenario.expected_findings) in result.stdout
    assert f"{DEFAULT_SCENARIO} (default)" in result.stdout


def test_lab_scenarios_json_is_one_object_per_line() -> None:
    result = run("lab", "scenarios", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == len(SCENARIOS)
    assert [r["name"] for r in records] == list(SCENARIOS)
    for record in records:
        findings = record["expected_findings"]
        assert isinstance(findings, list) and findings
        assert findings == list(SCENARIOS[record["name"]].expected_findings)


BAD_USAGE = {
    "unknown-scenario": ("lab", "up", "--scenario", "no-such-scenario"),
    "unknown-option": ("lab", "up", "--no-such-option"),
    "status-option": ("lab", "status", "--verbose"),
    "unknown-command": ("lab", "teleport"),
    "no-lab-cmd": ("lab",),
}


@pytest.fixture(scope="module")
def bad_usage_runs(
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, tuple[Path, subprocess.CompletedProcess[str]]]:
    """Every BAD_USAGE command line, run at once (each is an interpreter start and nothing else),
    with the lab directory it would have used."""

    def attempt(case: str, args: tuple[str, ...]) -> tuple[Path, subprocess.CompletedProcess[str]]:
        lab_dir = tmp_path_factory.mktemp(case) / "never"
        extra = ("--dir", str(lab_dir)) if args[:2] == ("lab", "up") else ()
        return lab_dir, run(*args, *extra)

    with concurrent.futures.ThreadPoolExecutor(len(BAD_USAGE)) as pool:
        runs = {case: pool.submit(attempt, case, args) for case, args in BAD_USAGE.items()}
        return {case: future.result() for case, future in runs.items()}


@pytest.mark.parametrize("case", list(BAD_USAGE))
def test_bad_usage_exits_2_with_one_line(
    case: str, bad_usage_runs: dict[str, tuple[Path, subprocess.CompletedProcess[str]]]
) -> None:
    lab_dir, result = bad_usage_runs[case]
    assert result.returncode == 2, result
    one_line_error(result)
    assert result.stdout == ""
    assert not lab_dir.exists()  # bad usage starts nothing


def test_nothing_prints_the_usage_once_and_exits_2() -> None:
    result = run()
    assert result.returncode == 2, result
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.startswith("usage: kiloscribe-lab ") and result.stderr.count("usage:") == 1
    # one program name a line: never "kiloscribe-lab: kiloscribe-lab: …"
    assert all(line.count("kiloscribe-lab:") <= 1 for line in result.stderr.splitlines())
    assert "kiloscribe-lab: kiloscribe-lab" not in result.stderr


def test_version_as_the_installed_script() -> None:
    from kiloscribe_lab import __version__

    result = run("--version")
    assert result.returncode == 0 and result.stdout == f"kiloscribe-lab {__version__}\n"


def test_unknown_scenario_error_names_it() -> None:
    result = run("lab", "up", "--scenario", "halthy", "--dir", "/nonexistent/never")
    assert result.returncode == 2
    line = one_line_error(result)
    assert "halthy" in line and "healthy" in line


def test_status_with_no_lab_exits_3_with_one_line(tmp_path: Path) -> None:
    result = run("lab", "status", "--dir", str(tmp_path / "nothing-here"))
    assert result.returncode == 3
    assert "no lab in" in one_line_error(result)
    assert result.stdout == ""


def test_default_lab_dir_comes_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "KILOSCRIBE_LAB_DIR": str(tmp_path / "from-env")}
    result = run("lab", "status", env=env)
    assert result.returncode == 3
    assert str(tmp_path / "from-env") in one_line_error(result)


def test_lab_up_never_replaces_a_running_lab_silently_and_info_shows_it(tmp_path: Path, lab_key: str) -> None:
    """Issue 14: `lab up` over a running lab refuses (one line, exit 3) and leaves it as it was;
    `lab info --json` prints the object `lab up --json` printed; `--force` and `lab restart`
    replace it; `lab down` with no lab says so."""
    lab_dir = str(tmp_path / "lab")
    env = {**os.environ, fleet.API_KEY_ENV: lab_key}
    try:
        up = run(
            "lab", "up", "--json", "--dir", lab_dir, "--scenario", "healthy", "--balancer", "nginx", env=env
        )
        assert up.returncode == 0, up.stderr
        first = json.loads(up.stdout)
        assert first["balancer"] == "nginx"
        assert first["balancer_config"] == str(Path(lab_dir) / "nginx.conf")
        assert "proxy_pass http://socketio;" in Path(first["balancer_config"]).read_text()

        again = run("lab", "up", "--dir", lab_dir, "--scenario", "incident", env=env)
        assert again.returncode == 3 and again.stdout == ""
        line = one_line_error(again)
        assert "already running" in line and "--force" in line and "healthy" in line

        info = run("lab", "info", "--json", "--dir", lab_dir, env=env)
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout) == first  # unchanged by the refused `up`
        human = run("lab", "info", "--dir", lab_dir, env=env)
        assert human.returncode == 0
        assert first["lb"] in human.stdout and first["ca_bundle"] in human.stdout
        assert f"(nginx, {first['balancer_config']})" in human.stdout

        forced = run("lab", "up", "--json", "--force", "--dir", lab_dir, "--scenario", "auth-broken", env=env)
        assert forced.returncode == 0, forced.stderr
        replaced = json.loads(forced.stdout)
        assert replaced["scenario"] == "auth-broken" and replaced["balancer"] == "caddy"  # the scenario's own

        restart = run("lab", "restart", "--json", "--dir", lab_dir, env=env)
        assert restart.returncode == 0, restart.stderr
        restarted = json.loads(restart.stdout)
        assert (restarted["scenario"], restarted["balancer"]) == ("auth-broken", "caddy")
        assert restarted["edge"] != replaced["edge"]  # fresh ports: a new lab
        assert json.loads(run("lab", "info", "--json", "--dir", lab_dir, env=env).stdout) == restarted
    finally:
        down = run("lab", "down", "--dir", lab_dir, env=env)
    assert down.returncode == 0 and down.stdout == "lab down: every lab process stopped\n", down
    nothing = run("lab", "down", "--dir", lab_dir, env=env)
    assert nothing.returncode == 0 and nothing.stderr == ""
    assert nothing.stdout == f"lab down: no lab in {Path(lab_dir).resolve()}; nothing to stop\n"
    gone = run("lab", "info", "--dir", lab_dir, env=env)
    assert gone.returncode == 3 and "no lab in" in one_line_error(gone)


def test_a_balancer_the_scenario_cannot_run_on_is_bad_usage_and_starts_nothing(tmp_path: Path) -> None:
    lab_dir = tmp_path / "never"
    result = run("lab", "up", "--dir", str(lab_dir), "--scenario", "cookie-sticky", "--balancer", "nginx")
    assert result.returncode == 2, result
    line = one_line_error(result)
    assert "scenario cookie-sticky on nginx" in line and "no cookie stickiness" in line
    assert not lab_dir.exists()
    bad = run("lab", "up", "--dir", str(lab_dir), "--balancer", "traefik")
    assert bad.returncode == 2 and "invalid choice: 'traefik'" in one_line_error(bad)
