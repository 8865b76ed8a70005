"""The runner's pure parts: target arguments, the probe suite per options, the run deadline."""

from __future__ import annotations

import pytest

from kiloscribe_lab.endpoints import parse_target
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import CorsCheck, ProbeName
from kiloscribe_lab.networks import NetworkProfile
from kiloscribe_lab.probes.runner import RUN_SLACK_S, run_deadline, suite
from kiloscribe_lab.probes.sio import BACKOFF_CAP_S
from kiloscribe_lab.settings import ProbeOptions

KEY = "KILOSCRIBE_API_KEY"
POLLING_ONLY = NetworkProfile("corp", transports=("polling",))


@pytest.mark.parametrize(
    ("arg", "url", "label"),
    [
        ("inscribe-2=https://h.example", "https://h.example", "inscribe-2"),
        ("edge=wss://127.0.0.1:8443/socket.io/?a=b", "wss://127.0.0.1:8443/socket.io/?a=b", "edge"),
        ("https://h.example/?a=b", "https://h.example/?a=b", None),
        ("wss://h.example/socket.io/?EIO=4&x=y", "wss://h.example/socket.io/?EIO=4&x=y", None),
        ("https://h.example", "https://h.example", None),
    ],
)
def test_parse_target(arg: str, url: str, label: str | None) -> None:
    endpoint, got_label = parse_target(arg)
    assert got_label == label
    assert endpoint.url == url


def test_parse_target_label_gives_the_endpoint() -> None:
    endpoint, label = parse_target("inscribe-2=wss://h.example:8443")
    assert label == "inscribe-2"
    assert (endpoint.scheme, endpoint.host, endpoint.port) == ("https", "h.example", 8443)


@pytest.mark.parametrize("arg", ["a=b", "label=", "=https://h.example", "inscribe-2=ftp://h", "no-url"])
def test_parse_target_rejects(arg: str) -> None:
    with pytest.raises(UsageError):
        parse_target(arg)


def pairs(options: ProbeOptions) -> list[tuple[str, str]]:
    return [(s.probe, s.variant) for s in suite(options)]


def test_suite_with_a_key() -> None:
    got = pairs(ProbeOptions(api_key_env=KEY))
    assert len(got) == len(set(got))
    assert got[:6] == [
        (ProbeName.HTTP_UPGRADE, "http1.1"),
        (ProbeName.HTTP_UPGRADE, "h2"),
        (ProbeName.WEBSOCKET_PLAIN, "as-given"),
        (ProbeName.WEBSOCKET_PLAIN, "socket.io"),
        (ProbeName.ENGINEIO_HANDSHAKE, ""),
        (ProbeName.ENGINEIO_UPGRADE, ""),
    ]
    connects = [v for p, v in got if p == ProbeName.SOCKETIO_CONNECT]
    assert connects == [f"{t}:{c}" for t in ("websocket", "polling") for c in ("valid", "invalid", "none")]
    assert (ProbeName.STICKY_SESSION, "cookies") in got and (ProbeName.STICKY_SESSION, "no-cookies") in got
    assert (ProbeName.SDK_FLOW, "") in got
    assert not any(p == ProbeName.CONNECT_STATS for p, _ in got)  # one attempt: no statistics


def test_suite_without_a_key_has_no_valid_credential_and_no_sdk_flow() -> None:
    got = pairs(ProbeOptions())
    connects = [v for p, v in got if p == ProbeName.SOCKETIO_CONNECT]
    assert connects and not any(v.endswith(":valid") for v in connects)
    assert {v.split(":")[1] for v in connects} == {"invalid", "none"}
    assert not any(p in {"sdk_flow", ProbeName.CONNECT_STATS} for p, _ in got)
    assert not any(p == ProbeName.CONNECT_STATS for p, _ in pairs(ProbeOptions(attempts=5)))


def test_suite_polling_only_network_has_no_websocket_socketio_variants() -> None:
    got = pairs(ProbeOptions(api_key_env=KEY, network=POLLING_ONLY, attempts=3))
    socketio = [v for p, v in got if p in {"socketio_connect", ProbeName.CONNECT_STATS}]
    assert socketio and all(v.startswith("polling") for v in socketio)
    assert (ProbeName.SDK_FLOW, "") not in got  # the SDK connects over WebSocket only
    assert (ProbeName.CONNECT_STATS, "polling") in got


def test_suite_attempts_add_connect_stats_with_a_larger_deadline() -> None:
    options = ProbeOptions(api_key_env=KEY, attempts=4, timeout_s=2.0)
    specs = suite(options)
    stats = [s for s in specs if s.probe == ProbeName.CONNECT_STATS]
    assert [s.variant for s in stats] == ["websocket", "polling"]
    expected = 4 * 2.0 + 3 * BACKOFF_CAP_S
    assert all(s.deadline_s == pytest.approx(expected) for s in stats)
    assert all(s.deadline_s == 2.0 for s in specs if s.probe != ProbeName.CONNECT_STATS)


def test_run_deadline() -> None:
    plain = ProbeOptions(timeout_s=3.0)
    assert run_deadline(plain, discover=False) == pytest.approx(3.0 + RUN_SLACK_S)
    assert run_deadline(plain, discover=True) == pytest.approx(6.0 + RUN_SLACK_S)
    stats = ProbeOptions(api_key_env=KEY, attempts=3, timeout_s=1.0)
    longest = 3 * 1.0 + 2 * BACKOFF_CAP_S
    assert run_deadline(stats, discover=False) == pytest.approx(longest + RUN_SLACK_S)
    assert run_deadline(stats, discover=True) == pytest.approx(1.0 + longest + RUN_SLACK_S)


def test_suite_has_the_cors_probes_only_with_an_origin() -> None:
    """Without --origin no Origin is sent anywhere: CORS is not the SDK's Node client's problem."""
    assert not any(p == ProbeName.CORS for p, _ in pairs(ProbeOptions(api_key_env=KEY)))
    got = pairs(ProbeOptions(api_key_env=KEY, origin="https://app.example.com"))
    assert [v for p, v in got if p == ProbeName.CORS] == list(CorsCheck)


def test_a_probe_keeps_its_own_deadline_unless_the_run_has_clearly_less_left() -> None:
    from kiloscribe_lab.probes.runner import DEADLINE_TOLERANCE_S, _deadline

    assert _deadline(1.0, 0.9995) == 1.0  # the moment between planning and starting
    assert _deadline(1.0, 1.0 - DEADLINE_TOLERANCE_S) == 1.0
    assert _deadline(1.0, 0.6) == 0.6  # a command whose clock started at process start
    assert _deadline(1.0, 0.2) == 0.5  # start-up ate the deadline: half of it, not nothing
    assert _deadline(1.0, -1.0) == 0.5
