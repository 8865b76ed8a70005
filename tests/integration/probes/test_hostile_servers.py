"""Servers that are not what they seem: the probes record evidence, never a false finding."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from kiloscribe_lab import diagnosis
from kiloscribe_lab.names import FindingId, Outcome, ProbeName
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.settings import ProbeOptions
from tests.integration.servers import canned_server, http_answer

pytestmark = pytest.mark.timeout(60)


GATEWAY_BODY = b'{"message":"Forbidden"}'


@pytest.fixture
def gateway() -> Iterator[str]:
    with canned_server(http_answer("403 Forbidden", GATEWAY_BODY, "Content-Type: application/json")) as url:
        yield url


@pytest.fixture
def ftp_redirect() -> Iterator[str]:
    with canned_server(http_answer("301 Moved", b"", "Location: ftp://files.example.invalid/")) as url:
        yield url


def test_a_gateways_json_403_is_not_a_socketio_refusal(gateway: str) -> None:
    options = ProbeOptions(timeout_s=2, api_key_env="K", strict=True)
    results = asyncio.run(investigate([gateway], options, environ={"K": "some-key-value"}))
    connects = [r for r in results if r.probe == ProbeName.SOCKETIO_CONNECT]
    assert connects and all(r.outcome is not Outcome.AUTH_REJECTED for r in connects), [
        (r.variant, r.outcome) for r in connects
    ]
    found = {f.id for f in diagnosis.diagnose(results, "K")}
    assert FindingId.AUTH_REJECTED not in found and FindingId.AUTH_PATH_HEALTHY not in found
    assert FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH not in found
    # no handshake happened, so none has a duration
    assert all(r.timings.handshake is None for r in connects)


def test_a_redirect_to_a_non_http_location_is_recorded(ftp_redirect: str) -> None:
    results = asyncio.run(investigate([ftp_redirect], ProbeOptions(timeout_s=2, strict=True)))
    [upgrade] = [r for r in results if r.probe == ProbeName.HTTP_UPGRADE]
    assert upgrade.outcome is Outcome.REDIRECT and "ftp://" in (upgrade.error or "")
