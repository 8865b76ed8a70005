"""The diagnosis against servers and proxies no one here wrote, exactly.

Each case starts real software on loopback (python-socketio under uvicorn, the ``websockets``
library, nginx and HAProxy with hand-written configs, an OpenSSL chain, a CDN challenge
stand-in), runs the probe command's pipeline against it, and asserts the warning and critical
findings are exactly the expected ones: none missing, none extra (info findings are not faults
and are not counted). Two cases also run ``kiloscribe-lab probe`` itself. A case is one
``Case`` entry: Node servers (socket.io, ``ws``) join as entries when the lab ships them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.details import DETAIL_SHAPES, shape_problems
from kiloscribe_lab.names import FindingId, FlowStep, Outcome, ProbeName, Severity
from kiloscribe_lab.probes import runner
from kiloscribe_lab.probes.command import ProbeReport, ProbeRequest, build_report, validate
from kiloscribe_lab.settings import ProbeSettings
from tests.integration.foreign import servers
from tests.integration.foreign.servers import (
    Chain,
    haproxy,
    make_chain,
    nginx,
    nginx_conf,
    plain_websocket,
    pysio,
    pysio_fleet,
)

pytestmark = pytest.mark.timeout(90)

CLI = [sys.executable, "-m", "kiloscribe_lab.cli"]
KEY_ENV = "KILOSCRIBE_API_KEY"
KEY = "foreign-test-key"
PROBE_TIMEOUT_S = 5.0
ALLOWED = "https://app.kiloscribe.test"
FOREIGN = "https://evil.example"

W, C = Severity.WARNING, Severity.CRITICAL


@dataclass(frozen=True)
class Setup:
    targets: list[str]
    origin: str | None = None
    ca_bundle: Path | None = None

    def cli_args(self) -> list[str]:
        args = ["--origin", self.origin] if self.origin else []
        return args + (["--ca-bundle", str(self.ca_bundle)] if self.ca_bundle else [])


Start = Callable[[Path], contextlib.AbstractContextManager[Setup]]


@dataclass(frozen=True)
class Case:
    name: str
    start: Start
    expected: Mapping[FindingId, Severity]
    # Extra checks on the findings (by id: their JSON), e.g. the words of the fix.
    check: Callable[[dict[str, dict[str, Any]]], None] | None = None


def url(port: int, scheme: str = "http", path: str = "") -> str:
    return f"{scheme}://127.0.0.1:{port}{path}"


# --- the setups -----------------------------------------------------------------------------------


def python_socketio(**options: Any) -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with pysio(tmp, KEY, **options) as port:
            yield Setup([f"server={url(port)}"])

    return start


def python_socketio_with_origin(origin: str) -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with pysio(tmp, KEY, cors=ALLOWED) as port:
            yield Setup([f"server={url(port)}"], origin=origin)

    return start


def plain_ws(greeting: str) -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with plain_websocket(tmp, greeting) as port:
            yield Setup([f"ws={url(port)}"])

    return start


def wrong_path() -> Start:
    """python-socketio at /ws/; the user's URL names that path, the SDK looks at /socket.io/."""

    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with pysio(tmp, KEY, path="ws") as port:
            yield Setup([f"server={url(port, path='/ws/?EIO=4&transport=websocket')}"])

    return start


def behind_nginx(
    *, sticky: bool, upgrade: bool, backends: int = 2, extra_http: str = "", extra_location: str = ""
) -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with contextlib.ExitStack() as stack:
            ports = stack.enter_context(pysio_fleet(tmp, KEY, backends))

            def conf(lab: Path, port: int) -> str:
                return nginx_conf(
                    lab, port, ports, sticky=sticky, upgrade=upgrade, extra_http=extra_http,
                    extra_location=extra_location,
                )  # fmt: skip

            lb = stack.enter_context(nginx(tmp, conf))
            yield Setup([f"lb={url(lb)}"])

    return start


def behind_haproxy(balance: str) -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with pysio_fleet(tmp, KEY, 2) as ports, haproxy(tmp, ports, balance=balance) as lb:
            yield Setup([f"lb={url(lb)}"])

    return start


# nginx's limit_req as the FACTS experiment set it up: 2 r/s, burst 2, 429 with Retry-After.
RATE_LIMIT_HTTP = """\
    limit_req_zone $binary_remote_addr zone=socketio:1m rate=2r/s;
    limit_req_status 429;
    map $status $retry_after {
        429     1;
        default "";
    }
"""
RATE_LIMIT_LOCATION = """\
            limit_req zone=socketio burst=2 nodelay;
            add_header Retry-After $retry_after always;
"""


def tls_leaf_only() -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        chain: Chain = make_chain(tmp / "pki")
        with contextlib.ExitStack() as stack:
            backend = stack.enter_context(pysio(tmp, KEY))

            def conf(lab: Path, port: int) -> str:
                return nginx_conf(
                    lab, port, [backend], sticky=True, upgrade=True, tls=(chain.leaf, chain.key)
                )

            lb = stack.enter_context(nginx(tmp, conf))
            yield Setup([f"lb={url(lb, 'https')}"], ca_bundle=chain.root)

    return start


def challenge() -> Start:
    @contextlib.contextmanager
    def start(tmp: Path) -> Iterator[Setup]:
        with servers.challenge_edge() as port:
            yield Setup([f"edge={url(port)}"])

    return start


# --- what each finding must also say ------------------------------------------------------------


def says(
    fid: FindingId, *needles: str, where: str = "recommendation"
) -> Callable[[dict[str, dict[str, Any]]], None]:
    def check(found: dict[str, dict[str, Any]]) -> None:
        text = found[fid][where]
        for needle in needles:
            assert needle in text, f"{fid} {where} lacks {needle!r}: {text}"

    return check


def all_of(
    *checks: Callable[[dict[str, dict[str, Any]]], None],
) -> Callable[[dict[str, dict[str, Any]]], None]:
    def check(found: dict[str, dict[str, Any]]) -> None:
        for c in checks:
            c(found)

    return check


CASES = [
    Case(
        "python-socketio-websocket-only",
        python_socketio(transports="websocket"),
        {FindingId.POLLING_DISABLED: W},
        all_of(
            says(FindingId.POLLING_DISABLED, "Invalid transport", where="summary"),
            says(FindingId.POLLING_DISABLED, "socketio.AsyncServer(transports="),
        ),
    ),
    Case(
        "python-socketio-polling-only",
        python_socketio(transports="polling"),
        {FindingId.WEBSOCKET_DISABLED: C},
    ),
    Case(
        "python-socketio-never-acks",
        python_socketio(no_ack=True),
        {FindingId.INSCRIPTION_NOT_ACKNOWLEDGED: C},
        all_of(
            says(FindingId.INSCRIPTION_NOT_ACKNOWLEDGED, "connect worked", where="summary"),
            says(FindingId.INSCRIPTION_NOT_ACKNOWLEDGED, "return its answer"),
        ),
    ),
    Case(
        "python-socketio-cors-foreign-origin",
        python_socketio_with_origin(FOREIGN),
        {FindingId.CORS_ORIGIN_REJECTED: C},
        all_of(
            says(FindingId.CORS_ORIGIN_REJECTED, "not an accepted origin", where="summary"),
            says(FindingId.CORS_ORIGIN_REJECTED, f"cors_allowed_origins=['{FOREIGN}'])"),
        ),
    ),
    Case("python-socketio-cors-allowed-origin", python_socketio_with_origin(ALLOWED), {}),
    Case(
        "plain-websocket-silent",
        plain_ws(""),
        {FindingId.NOT_SOCKETIO: C},
        says(FindingId.NOT_SOCKETIO, "plain WebSocket server", where="title"),
    ),
    Case(
        "plain-websocket-greeting",
        plain_ws("hello"),
        {FindingId.NOT_SOCKETIO: C},
        says(FindingId.NOT_SOCKETIO, "'hello'", where="summary"),
    ),
    Case(
        "python-socketio-at-another-path",
        wrong_path(),
        {FindingId.NOT_SOCKETIO: C},
        says(FindingId.NOT_SOCKETIO, "at another path", where="summary"),
    ),
    Case(
        "nginx-no-upgrade-headers",
        behind_nginx(sticky=True, upgrade=False),
        {FindingId.UPGRADE_HEADERS_DROPPED: C},
        all_of(
            says(FindingId.UPGRADE_HEADERS_DROPPED, "Invalid websocket upgrade", where="summary"),
            says(FindingId.UPGRADE_HEADERS_DROPPED, "proxy_http_version 1.1", "map $http_upgrade", "nginx"),
        ),
    ),
    Case(
        "nginx-round-robin",
        behind_nginx(sticky=False, upgrade=True),
        {FindingId.STICKY_SESSIONS_MISSING: W},
        all_of(
            says(FindingId.STICKY_SESSIONS_MISSING, "hash $remote_addr consistent", "Server: nginx/"),
            lambda found: (
                None
                if "lb_policy" not in found[FindingId.STICKY_SESSIONS_MISSING]["recommendation"]
                else pytest.fail("Caddy's words to an nginx user")
            ),
        ),
    ),
    Case(
        "nginx-naive",
        behind_nginx(sticky=False, upgrade=False),
        {FindingId.UPGRADE_HEADERS_DROPPED: C, FindingId.STICKY_SESSIONS_MISSING: C},
        says(FindingId.STICKY_SESSIONS_MISSING, "hash $remote_addr consistent"),
    ),
    Case("haproxy-balance-source", behind_haproxy("source"), {}),
    Case(
        "haproxy-round-robin",
        behind_haproxy("roundrobin"),
        {FindingId.STICKY_SESSIONS_MISSING: W},
        # HAProxy adds no Server and lower-cases every name it forwards: uvicorn's own 500s (no
        # Server, 'Content-Type') arrive as 'content-type', which is how it is recognised.
        all_of(
            says(FindingId.STICKY_SESSIONS_MISSING, "balance source", "looks like HAProxy"),
            lambda found: (
                None
                if "lb_policy" not in found[FindingId.STICKY_SESSIONS_MISSING]["recommendation"]
                else pytest.fail("Caddy's words to an HAProxy user")
            ),
        ),
    ),
    Case(
        "nginx-rate-limited",
        behind_nginx(
            sticky=True, upgrade=True, extra_http=RATE_LIMIT_HTTP, extra_location=RATE_LIMIT_LOCATION
        ),
        {FindingId.RATE_LIMITED: W},
        all_of(
            says(FindingId.RATE_LIMITED, "Retry-After: 1", where="summary"),
            says(FindingId.RATE_LIMITED, "limit_req"),
        ),
    ),
    Case(
        "nginx-tls-leaf-only",
        tls_leaf_only(),
        {FindingId.TLS_PROBLEM: C},
        all_of(
            says(FindingId.TLS_PROBLEM, "incomplete", where="title"),
            says(FindingId.TLS_PROBLEM, "Foreign Test Intermediate CA", "Browsers cope", where="summary"),
        ),
    ),
    Case(
        "cdn-challenge",
        challenge(),
        {FindingId.CDN_CHALLENGE: C},
        says(FindingId.CDN_CHALLENGE, "Cloudflare", "/socket.io/"),
    ),
]


def investigate(setup: Setup) -> ProbeReport:
    """The probe command's pipeline in this process (validate, investigate, diagnose), strict:
    a probe that raises fails the test. In-process, so the deadlines start with the probes, not
    with an interpreter's imports on a loaded machine."""
    env = {**os.environ, KEY_ENV: KEY}
    settings = ProbeSettings(
        timeout_s=PROBE_TIMEOUT_S, api_key_env=KEY_ENV, origin=setup.origin, ca_bundle=setup.ca_bundle
    )
    request = ProbeRequest(urls=tuple(setup.targets), settings=settings)
    options = validate(request, env, strict=True)
    results = asyncio.run(runner.investigate(request.urls, options, environ=env))
    return build_report(results, options.api_key_env, options.network)


def _shown(report: ProbeReport) -> str:
    return "\n".join(
        [f"{f.severity} {f.id}: {f.title}" for f in report.findings]
        + [f"  {r.probe} {r.variant}: {r.outcome} {r.status} {r.error}" for r in report.results]
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_diagnosis_finds_exactly_the_faults(case: Case, tmp_path: Path) -> None:
    with case.start(tmp_path) as setup:
        report = investigate(setup)
    got = {FindingId(f.id): f.severity for f in report.findings if f.severity is not Severity.INFO}
    assert got == dict(case.expected), _shown(report)
    assert report.has_critical == (Severity.CRITICAL in case.expected.values())
    for finding in report.findings:
        assert finding.evidence and finding.recommendation and finding.targets
    for r in report.results:  # what the probes wrote against foreign answers fits their shapes
        detail = json.loads(json.dumps(dict(r.detail)))
        assert shape_problems(detail, DETAIL_SHAPES[ProbeName(r.probe)], r.ref) == []
    if case.check is not None:
        case.check({f.id: f.to_json() for f in report.findings})


# The command itself, as a user runs it: flags, JSON lines, exit code (one case each way).
CLI_CASES = [
    c for c in CASES if c.name in {"python-socketio-cors-foreign-origin", "python-socketio-websocket-only"}
]


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_the_probe_command(case: Case, tmp_path: Path) -> None:
    env = {**os.environ, KEY_ENV: KEY}
    with case.start(tmp_path) as setup:
        # The command's deadline counts from its own start, imports included: room for a loaded machine.
        argv = [*CLI, "probe", *setup.targets, "--api-key-env", KEY_ENV, "--timeout", "8", "--json"]
        proc = subprocess.run([*argv, *setup.cli_args()], capture_output=True, text=True, timeout=60, env=env)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    got = {r["id"]: r["severity"] for r in records if r["kind"] == "finding" and r["severity"] != "info"}
    assert got == {str(k): str(v) for k, v in case.expected.items()}, proc.stdout
    assert proc.returncode == (1 if Severity.CRITICAL in case.expected.values() else 0), proc.stderr
    assert "Traceback" not in proc.stderr and KEY not in proc.stdout
    assert bool(setup.origin) == any(r["kind"] == "probe" and r["probe"] == ProbeName.CORS for r in records)


def test_a_connect_that_worked_is_never_called_a_connection_timeout(tmp_path: Path) -> None:
    """The never-acking server (FACTS.md §3.4): sdk_flow's connect step is ok on its own budget,
    and the inscription's silence is the inscription's, in every word the result carries."""
    with python_socketio(no_ack=True)(tmp_path) as setup:
        report = investigate(setup)
    [flow] = [r for r in report.results if r.probe == ProbeName.SDK_FLOW]
    steps = {s["step"]: s for s in flow.detail["steps"]}
    assert steps[FlowStep.CONNECT]["outcome"] == Outcome.OK and steps[FlowStep.CONNECT]["sdk_message"] is None
    assert steps[FlowStep.START_INSCRIPTION]["ack"] == "not-in-time"
    assert flow.detail["failed_step"] == FlowStep.START_INSCRIPTION
    assert flow.error is not None and flow.error.startswith("connected; start-inscription: no ack within")
    assert "connection timeout" not in json.dumps(flow.to_json()).lower()
    assert all(v.verdict == "healthy" for v in report.verdicts)  # the path works; the application does not
