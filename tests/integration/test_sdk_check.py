"""`sdk-check` against the lab, with the machine's Node 20 and the published SDK 2.0.9.

Wall time: the SDK is installed once into the project's `.cache/kiloscribe-lab` (gitignored;
override with $KILOSCRIBE_LAB_TEST_CACHE), so only a fresh checkout pays npm's download. The
plain runtime's 10 s `WebSocket connection timeout` runs once per session (`healthy_replay`);
every other lab run uses only the runtime with a WebSocket global, about a second each.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab import cli, diagnosis, report
from kiloscribe_lab.errors import ToolchainMissingError
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.names import FindingId, Outcome, Severity
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.sdk import DEFAULT_SDK_VERSION, SdkInstall, ensure_sdk, sdk_check
from kiloscribe_lab.settings import ProbeSettings
from kiloscribe_lab.toolchain.subproc import run_bounded
from tests.integration.clients import jobs_started
from tests.integration.conftest import LabGetter

pytestmark = pytest.mark.timeout(400)  # a cold cache downloads the SDK once (about a minute)

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "kiloscribe_lab.cli"]
TIMEOUT = "WebSocket connection timeout"
INVALID = "WebSocket connection failed: Invalid API key"


@pytest.fixture(scope="session")
def sdk_cache() -> Path:
    return Path(os.environ.get("KILOSCRIBE_LAB_TEST_CACHE") or REPO / ".cache" / "kiloscribe-lab")


@pytest.fixture(scope="session")
def sdk_install(sdk_cache: Path) -> SdkInstall:
    try:
        return asyncio.run(ensure_sdk(DEFAULT_SDK_VERSION, cache_dir=sdk_cache, environ=dict(os.environ)))
    except ToolchainMissingError as exc:
        pytest.skip(f"sdk-check needs Node.js and npm: {exc}")


@dataclass(frozen=True)
class Replay:
    results: list[ProbeResult]
    elapsed_s: float

    def step(self, variant: str) -> ProbeResult:
        (found,) = [r for r in self.results if r.variant == variant]
        return found

    @property
    def finding_ids(self) -> list[str]:
        return [f.id for f in diagnosis.diagnose(self.results, fleet.API_KEY_ENV)]


def replay(
    lab: fleet.LabInfo, lab_key: str, cache: Path, environ: Mapping[str, str] | None = None, **kw: Any
) -> Replay:
    env = dict(environ if environ is not None else {**os.environ, fleet.API_KEY_ENV: lab_key})
    started = time.monotonic()
    results = asyncio.run(
        sdk_check(
            lab.socket_url,
            api_base=lab.api,
            api_key_env=fleet.API_KEY_ENV,
            ca_bundle=lab.ca_bundle,
            environ=env,
            cache_dir=cache,
            **kw,
        )
    )
    return Replay(results, time.monotonic() - started)


@pytest.fixture(scope="session")
def healthy_replay(labs: LabGetter, lab_key: str, sdk_cache: Path, sdk_install: SdkInstall) -> Replay:
    """Both runtimes against the healthy lab: the session's one 10 s timeout."""
    return replay(labs("healthy"), lab_key, sdk_cache)


# --- the user's runtime: Node 20, no global WebSocket ----------------------------------------


def test_plain_node20_reproduces_the_sdks_10s_timeout(healthy_replay: Replay) -> None:
    for variant in ("node-plain:connect-valid", "node-plain:connect-invalid"):
        r = healthy_replay.step(variant)
        assert (r.outcome, r.error) == (Outcome.TIMEOUT, TIMEOUT)
        assert r.detail["sdk_message"] == TIMEOUT
        assert 9_950 <= (r.timings.total or 0) <= 10_800
        assert str(r.detail["node_version"]).startswith("v20.")
        assert r.detail["websocket_global"] == "none" and r.detail["xmlhttprequest"] is False
        assert r.detail["observed"]["engine"]["engine"] == "opening"  # the transport never started
    detect = healthy_replay.step("node-plain:detect")
    assert detect.outcome is Outcome.TIMEOUT and 2_950 <= (detect.timings.total or 0) <= 3_800
    # The SDK's REST path works in the very same runtime: connectionMode 'auto' would get through.
    assert healthy_replay.step("node-plain:discover").outcome is Outcome.OK


def test_plain_node20_yields_the_runtime_finding(healthy_replay: Replay) -> None:
    findings = diagnosis.diagnose(healthy_replay.results, fleet.API_KEY_ENV)
    by_id = {f.id: f for f in findings}
    runtime = by_id[FindingId.SDK_RUNTIME_MISSING_WEBSOCKET]
    assert runtime.severity is Severity.CRITICAL and "v20." in runtime.title
    assert by_id[FindingId.SDK_FALLBACK_NOT_EFFECTIVE].severity is Severity.WARNING
    assert FindingId.AUTH_PATH_HEALTHY in by_id  # the SDK's refused invalid key counts
    assert healthy_replay.finding_ids[:2] == [
        FindingId.SDK_RUNTIME_MISSING_WEBSOCKET,
        FindingId.SDK_FALLBACK_NOT_EFFECTIVE,
    ]


# --- the same Node with a WebSocket global ----------------------------------------------------


def test_with_a_websocket_global_the_sdk_connects_and_refuses_the_invalid_key(healthy_replay: Replay) -> None:
    valid = healthy_replay.step("node-websocket:connect-valid")
    assert valid.outcome is Outcome.OK and valid.error is None
    assert valid.detail["websocket_global"] == "flag"
    assert valid.detail["exec_argv"] == ["--experimental-websocket"]
    assert "info: WebSocket connected" in valid.detail["sdk_log"]
    invalid = healthy_replay.step("node-websocket:connect-invalid")
    assert invalid.outcome is Outcome.AUTH_REJECTED
    assert invalid.error == INVALID and invalid.detail["sdk_message"] == INVALID
    assert healthy_replay.step("node-websocket:detect").outcome is Outcome.OK


def test_start_inscription_gets_its_ack_through_the_lab(healthy_replay: Replay) -> None:
    r = healthy_replay.step("node-websocket:start-inscription")
    assert r.outcome is Outcome.OK, r.error
    ack = r.detail["ack"]
    assert ack["success"] is True and ack["transaction_bytes"] and ack["job_id"]
    assert "file" in r.detail["observed"]["payload_keys"]  # the SDK's own request shape went out
    assert "network" in r.detail["observed"]["payload_keys"]


def test_the_key_stays_in_the_environment(healthy_replay: Replay, lab_key: str) -> None:
    text = json.dumps([r.to_json() for r in healthy_replay.results])
    assert lab_key not in text


def test_the_replay_costs_the_sdks_timer_not_the_sum_of_its_steps(healthy_replay: Replay) -> None:
    # The bar (SDK timeout + 2 s) is measured and reported; this only guards against a run
    # that would add up its steps (10 + 10 + 3 s) or hang.
    assert healthy_replay.elapsed_s < 20


def test_ws_shim_also_provides_the_global(
    labs: LabGetter, lab_key: str, sdk_cache: Path, sdk_install: SdkInstall
) -> None:
    run = replay(labs("healthy"), lab_key, sdk_cache, runtimes=("websocket",), websocket_provider="shim")
    valid = run.step("node-websocket:connect-valid")
    assert valid.outcome is Outcome.OK and valid.detail["websocket_global"] == "ws-shim"
    assert run.step("node-websocket:connect-invalid").error == INVALID
    assert run.step("node-websocket:start-inscription").outcome is Outcome.OK
    assert not any(r.variant.startswith("node-plain:") for r in run.results)


def test_no_inscription_connects_and_starts_no_job(
    labs: LabGetter, lab_key: str, sdk_cache: Path, sdk_install: SdkInstall
) -> None:
    lab = labs("healthy")
    before = jobs_started(lab)
    run = replay(lab, lab_key, sdk_cache, runtimes=("websocket",), inscription=False)
    assert run.step("node-websocket:connect-valid").outcome is Outcome.OK
    assert not any(r.variant.endswith(":start-inscription") for r in run.results)
    assert jobs_started(lab) == before


def test_auth_broken_the_valid_key_is_refused_in_the_sdks_words(
    labs: LabGetter, lab_key: str, sdk_cache: Path, sdk_install: SdkInstall
) -> None:
    run = replay(labs("auth-broken"), lab_key, sdk_cache, runtimes=("websocket",))
    valid = run.step("node-websocket:connect-valid")
    assert (valid.outcome, valid.error) == (Outcome.AUTH_REJECTED, INVALID)
    assert not any(r.variant.endswith(":start-inscription") for r in run.results)
    ids = run.finding_ids
    assert FindingId.AUTH_REJECTED in ids and FindingId.AUTH_PATH_HEALTHY not in ids
    assert FindingId.SDK_FALLBACK_NOT_EFFECTIVE not in ids  # a refused key is not a WebSocket failure


# --- toolchain problems: one line, exit 2 -------------------------------------------------


def run_cli(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=dict(env))


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("node", "says"),
    [("/nonexistent/bin/node", "no executable file there"), ("/bin/false", "not a usable Node.js")],
)
def test_bad_node_path_is_exit_2_in_one_line(node: str, says: str, sdk_cache: Path) -> None:
    env = {**os.environ, "KILOSCRIBE_LAB_CACHE": str(sdk_cache)}
    line = one_line(run_cli(["sdk-check", "wss://127.0.0.1:1", "--node", node], env))
    assert line.startswith("kiloscribe-lab: --node") and says in line


def test_unknown_sdk_version_is_exit_2_in_one_line(sdk_cache: Path, sdk_install: SdkInstall) -> None:
    env = {**os.environ, "KILOSCRIBE_LAB_CACHE": str(sdk_cache)}
    line = one_line(
        run_cli(["sdk-check", "wss://127.0.0.1:1", "--sdk-version", "0.0.0-kiloscribe-lab-none"], env)
    )
    assert "npm has no @kiloscribe/inscription-sdk@0.0.0-kiloscribe-lab-none" in line
    assert not list((sdk_cache / "sdk").glob("*kiloscribe-lab-none*"))  # nothing half-installed kept


def test_a_version_that_is_not_exact_never_reaches_npm(sdk_cache: Path) -> None:
    env = {**os.environ, "KILOSCRIBE_LAB_CACHE": str(sdk_cache)}
    assert "exact version" in one_line(
        run_cli(["sdk-check", "wss://127.0.0.1:1", "--sdk-version", "latest"], env)
    )


def test_missing_node_or_npm_is_its_own_error(tmp_path: Path, sdk_install: SdkInstall) -> None:
    no_path = {"PATH": str(tmp_path), "HOME": str(tmp_path)}
    with pytest.raises(ToolchainMissingError, match="not on PATH"):
        asyncio.run(sdk_check("wss://127.0.0.1:1", environ=no_path, cache_dir=tmp_path))
    node = subprocess.run(["which", "node"], capture_output=True, text=True, check=True).stdout.strip()
    with pytest.raises(
        ToolchainMissingError, match="npm is not on PATH"
    ):  # the cache is empty: npm is needed
        asyncio.run(sdk_check("wss://127.0.0.1:1", node=node, environ=no_path, cache_dir=tmp_path / "empty"))


def test_a_killed_child_takes_its_whole_group_along() -> None:
    script = "sleep 30 & echo $!; wait"
    started = time.monotonic()
    done = asyncio.run(run_bounded(["sh", "-c", script], env=dict(os.environ), timeout_s=0.5))
    assert done.timed_out and time.monotonic() - started < 3
    grandchild = int(done.stdout.split()[0])
    time.sleep(0.2)
    stat = Path(f"/proc/{grandchild}/stat")
    assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] in {"Z", "X"}


def replays_running(url: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            text = cmdline.read_bytes()
            if b"replay.mjs" in text and url.encode() in text:
                pids.append(int(cmdline.parent.name))
    return pids


def test_a_stop_request_cancels_the_replay_beside_the_matrix_and_kills_node(
    labs: LabGetter, lab_key: str, sdk_cache: Path, sdk_install: SdkInstall, tmp_path: Path
) -> None:
    """Ctrl-C during `report` sets the stop event: the replay (here on Node as found, whose
    connect waits out the SDK's 10 s timer) ends at once and leaves no node behind."""
    lab = labs("healthy")
    env = {**os.environ, fleet.API_KEY_ENV: lab_key, "KILOSCRIBE_LAB_CACHE": str(sdk_cache)}
    plan = report.ReportPlan(
        "t", "test", (report.Target(lab.socket_url, "lb"),), api_base=lab.api,
        settings=ProbeSettings(api_key_env=fleet.API_KEY_ENV, ca_bundle=lab.ca_bundle),
    )  # fmt: skip
    stop = threading.Event()
    seen: list[list[int]] = []

    def stop_once_node_runs() -> None:
        deadline = time.monotonic() + 30
        while not replays_running(lab.socket_url) and time.monotonic() < deadline:
            time.sleep(0.05)
        seen.append(replays_running(lab.socket_url))
        stop.set()

    threading.Thread(target=stop_once_node_runs, daemon=True).start()
    with pytest.raises(asyncio.CancelledError):
        report.run_sdk_checks(plan, plan.targets, tmp_path, env, stop)
    assert seen and seen[0], "the replay never started"
    assert replays_running(lab.socket_url) == []
    assert not list((tmp_path / "results").glob("sdk-*.jsonl"))  # nothing half-written


# --- the command's output, from the session's results (no second 10 s run) ---------------


def test_cli_json_is_probe_lines_then_finding_lines_and_exit_1(
    healthy_replay: Replay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    async def recorded(url: str, **kw: Any) -> list[ProbeResult]:
        seen.update(kw, url=url)
        return healthy_replay.results

    monkeypatch.setattr("kiloscribe_lab.sdk.sdk_check", recorded)
    code = cli.main(["sdk-check", "wss://h.example", "--api-key-env", "K", "--ca-bundle", "/x.pem", "--json"])
    out = capsys.readouterr().out
    assert code == 1
    kinds = [json.loads(line)["kind"] for line in out.splitlines()]
    assert kinds == ["probe"] * len(healthy_replay.results) + ["finding"] * (
        len(kinds) - len(healthy_replay.results)
    )
    assert "finding" in kinds
    assert seen["url"] == "wss://h.example" and seen["api_key_env"] == "K" and seen["sdk_version"] == "2.0.9"
    assert seen["ca_bundle"] == Path("/x.pem") and seen["node"] is None


def test_cli_human_output_has_a_table_per_runtime_and_the_findings(
    healthy_replay: Replay, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def recorded(url: str, **kw: Any) -> list[ProbeResult]:
        return healthy_replay.results

    monkeypatch.setattr("kiloscribe_lab.sdk.sdk_check", recorded)
    assert cli.main(["sdk-check", "wss://h.example"]) == 1
    out = capsys.readouterr().out
    assert "node-plain: node v20." in out and "no global WebSocket" in out
    assert "node-websocket: node v20." in out and "--experimental-websocket" in out
    assert "connect-valid      timeout" in out and INVALID in out
    assert "[CRITICAL] sdk-runtime-missing-websocket" in out and "[WARNING] sdk-fallback-not-effective" in out
