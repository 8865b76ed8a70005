"""`kiloscribe-lab probe` against servers and proxies no one here wrote, exactly.

Each case starts real software on loopback (python-socketio under uvicorn, the ``websockets``
library, nginx with a hand-written config, an OpenSSL chain, a CDN challenge stand-in), runs the
CLI as a user would, and asserts the warning and critical findings are exactly the expected
ones: none missing, none extra (info findings are not faults and are not counted). A case is
one ``Case`` entry: Node servers (socket.io, ``ws``) join as entries when the lab ships them.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from kiloscribe_lab.names import FindingId, Severity
from tests.integration.foreign import servers
from tests.integration.foreign.servers import (
    Chain,
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
PROBE_TIMEOUT_S = "5"
ALLOWED = "https://app.kiloscribe.test"
FOREIGN = "https://evil.example"

W, C = Severity.WARNING, Severity.CRITICAL


@dataclass(frozen=True)
class Setup:
    targets: list[str]
    args: list[str] = field(default_factory=list)


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
            yield Setup([f"server={url(port)}"], ["--origin", origin])

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
            yield Setup([f"lb={url(lb, 'https')}"], ["--ca-bundle", str(chain.root)])

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


def probe(setup: Setup) -> tuple[int, list[dict[str, Any]], str]:
    env = {**os.environ, KEY_ENV: KEY}
    argv = [*CLI, "probe", *setup.targets, "--api-key-env", KEY_ENV, "--timeout", PROBE_TIMEOUT_S, "--json"]
    proc = subprocess.run([*argv, *setup.args], capture_output=True, text=True, timeout=60, env=env)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    return proc.returncode, records, proc.stderr


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_probe_finds_exactly_the_faults(case: Case, tmp_path: Path) -> None:
    with case.start(tmp_path) as setup:
        code, records, stderr = probe(setup)
    findings = {r["id"]: r for r in records if r["kind"] == "finding"}
    got = {FindingId(i): Severity(f["severity"]) for i, f in findings.items() if f["severity"] != "info"}
    shown = "\n".join(
        [f"{f['severity']} {i}: {f['title']}" for i, f in findings.items()]
        + [
            f"  {r['probe']} {r['variant']}: {r['outcome']} {r['status']} {r['error']}"
            for r in records
            if r["kind"] == "probe"
        ]
    )
    assert got == dict(case.expected), shown
    assert code == (1 if Severity.CRITICAL in case.expected.values() else 0), stderr
    assert "Traceback" not in stderr and KEY not in json.dumps(records)
    for finding in findings.values():
        assert finding["evidence"] and finding["recommendation"] and finding["targets"]
    if case.check is not None:
        case.check(findings)
