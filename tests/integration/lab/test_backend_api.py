"""The mock Kiloscribe API and the backends' WebSocket door, per the client contract.

REST goes through the lab's API site (``info.api``) with httpx over TLS, verified against
the lab's CA; the WebSocket checks use the ``websockets`` client, as wscat would.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import ssl
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage, InvalidStatus

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.backend_config import BACKEND_HEADER
from kiloscribe_lab.lab.scenarios import BackendKind
from tests.integration.clients import INSCRIPTION_REQUEST, http
from tests.integration.conftest import LabGetter

pytestmark = pytest.mark.timeout(60)

INVALID = {"message": "Invalid API key"}
SERVER_KEYS = {"url", "region", "status", "priority", "activeJobs"}
TX_ID_RE = re.compile(r"^(0\.0\.1234)@(\d+)\.(\d+)$")
# The API site serves from the first live backend (lb_policy first).
API_BACKEND = "inscribe-1"


def checked(response: httpx.Response) -> Any:
    """Every backend response names its backend; every body is JSON. Returns the body."""
    assert response.headers.get(BACKEND_HEADER) == API_BACKEND, dict(response.headers)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def call(
    client: httpx.Client,
    lab: fleet.LabInfo,
    method: str,
    route: str,
    key: str | None,
    **kwargs: Any,
) -> httpx.Response:
    headers = dict(kwargs.pop("headers", {}))
    if key is not None:
        headers["x-api-key"] = key
    return client.request(method, f"{lab.api}/inscriptions/{route}", headers=headers, **kwargs)


def start(client: httpx.Client, lab: fleet.LabInfo, key: str, body: Any) -> httpx.Response:
    return call(client, lab, "POST", "start-inscription", key, json=body)


# --- GET /inscriptions/websocket-servers ------------------------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_websocket_servers_shape_and_recommended(labs: LabGetter, lab_key: str, http2: bool) -> None:
    lab = labs("healthy")
    with http(lab, http2=http2) as client:
        response = call(client, lab, "GET", "websocket-servers", lab_key)
    assert response.status_code == 200
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    body = checked(response)
    assert set(body) == {"servers", "recommended"}
    servers = body["servers"]
    assert servers and all(set(s) == SERVER_KEYS for s in servers)
    assert all(s["url"].startswith("wss://") for s in servers)
    assert all(isinstance(s["priority"], int) and isinstance(s["activeJobs"], int) for s in servers)
    # The SDK takes `recommended`, else the first active server: both lead to the edge.
    assert body["recommended"] == lab.socket_url
    active = [s["url"] for s in servers if s["status"] == "active"]
    assert active[0] == body["recommended"]


# --- POST start-inscription, GET retrieve-inscription -----------------------------------


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
def test_start_inscription_then_retrieve_it(labs: LabGetter, lab_key: str, http2: bool) -> None:
    lab = labs("healthy")
    with http(lab, http2=http2) as client:
        started = start(client, lab, lab_key, INSCRIPTION_REQUEST)
        assert started.status_code == 200
        assert started.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
        body = checked(started)
        assert set(body) == {"transactionBytes", "tx_id"}
        assert base64.b64decode(body["transactionBytes"], validate=True)
        match = TX_ID_RE.match(body["tx_id"])
        assert match, body["tx_id"]

        # The SDK sends 0.0.X@S.N as 0.0.X-S-N.
        sdk_id = f"{match[1]}-{match[2]}-{match[3]}"
        retrieved = call(client, lab, "GET", "retrieve-inscription", lab_key, params={"id": sdk_id})
    assert retrieved.status_code == 200
    record = checked(retrieved)
    assert record["id"] == body["tx_id"]
    assert isinstance(record["status"], str) and record["status"]
    assert isinstance(record["completed"], bool)
    assert re.fullmatch(r"0\.0\.\d+", record["topic_id"])


def test_start_inscription_accepts_an_inline_file(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    request = {k: v for k, v in INSCRIPTION_REQUEST.items() if k != "fileURL"}
    request.update(
        fileBase64=base64.b64encode(b"\x89PNG lab").decode(),
        fileName="cat.png",
        fileMimeType="image/png",
    )
    with http(lab) as client:
        response = start(client, lab, lab_key, request)
    assert response.status_code == 200
    assert TX_ID_RE.match(checked(response)["tx_id"])


def _without(*names: str) -> dict[str, Any]:
    return {k: v for k, v in INSCRIPTION_REQUEST.items() if k not in names}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        b"[1, 2, 3]",
        _without("holderId"),
        {**INSCRIPTION_REQUEST, "holderId": "alice"},
        _without("mode"),
        {**INSCRIPTION_REQUEST, "network": "previewnet"},
        _without("fileURL"),  # neither fileURL nor fileBase64 + fileName + fileMimeType
        {**_without("fileURL"), "fileBase64": "aGk=", "fileName": "x.txt"},  # no mime type
    ],
    ids=[
        "not-json",
        "empty",
        "array",
        "no-holder",
        "bad-holder",
        "no-mode",
        "bad-network",
        "no-file",
        "partial-file",
    ],
)
def test_start_inscription_bad_body_is_400_with_a_message(labs: LabGetter, lab_key: str, body: Any) -> None:
    lab = labs("healthy")
    with http(lab) as client:
        if isinstance(body, bytes):
            response = call(
                client,
                lab,
                "POST",
                "start-inscription",
                lab_key,
                content=body,
                headers={"content-type": "application/json"},
            )
        else:
            response = start(client, lab, lab_key, body)
    assert response.status_code == 400
    error = checked(response)
    assert set(error) == {"message"}
    assert isinstance(error["message"], str) and error["message"]


def test_retrieve_unknown_id_is_404(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    with http(lab) as client:
        response = call(
            client, lab, "GET", "retrieve-inscription", lab_key, params={"id": "0.0.999-1700000000-000000001"}
        )
    assert response.status_code == 404
    assert "message" in checked(response)


@pytest.mark.parametrize(
    "params",
    [{"id": "0.0.1234@1700000000.1"}, {"id": "abc"}, {"id": ""}, {"id": "0.0.1-2"}, {}],
    ids=["at-form", "word", "empty", "short", "missing"],
)
def test_retrieve_malformed_id_is_400(labs: LabGetter, lab_key: str, params: dict[str, str]) -> None:
    lab = labs("healthy")
    with http(lab) as client:
        response = call(client, lab, "GET", "retrieve-inscription", lab_key, params=params)
    assert response.status_code == 400
    assert "message" in checked(response)


# --- the x-api-key check ----------------------------------------------------------------

ROUTES: list[tuple[str, str, dict[str, Any]]] = [
    ("GET", "websocket-servers", {}),
    ("POST", "start-inscription", {"json": INSCRIPTION_REQUEST}),
    ("GET", "retrieve-inscription", {"params": {"id": "0.0.1234-1-1"}}),
]


@pytest.mark.parametrize("key", [None, "not-the-key", ""], ids=["missing", "wrong", "empty"])
@pytest.mark.parametrize(("method", "route", "kwargs"), ROUTES, ids=[r[1] for r in ROUTES])
def test_missing_or_wrong_key_is_401_invalid_api_key(
    labs: LabGetter, key: str | None, method: str, route: str, kwargs: dict[str, Any]
) -> None:
    lab = labs("healthy")
    with http(lab) as client:
        response = call(client, lab, method, route, key, **kwargs)
    assert response.status_code == 401
    assert checked(response) == INVALID


@pytest.mark.parametrize(("method", "route", "kwargs"), ROUTES, ids=[r[1] for r in ROUTES])
def test_auth_broken_refuses_the_valid_key_over_rest(
    labs: LabGetter, lab_key: str, method: str, route: str, kwargs: dict[str, Any]
) -> None:
    lab = labs("auth-broken")
    with http(lab, http2=True) as client:
        response = call(client, lab, method, route, lab_key, **kwargs)
    assert response.status_code == 401
    assert checked(response) == INVALID


def test_health_needs_no_key_and_other_paths_are_json_errors(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    with http(lab) as client:
        health = client.get(lab.api + "/health")
        unknown = call(client, lab, "GET", "no-such-route", lab_key)
        wrong_method = call(client, lab, "DELETE", "websocket-servers", lab_key)
        outside = client.get(lab.api + "/elsewhere")
    assert health.status_code == 200
    assert checked(health) == {"status": "ok", "backend": API_BACKEND, "scenario": "healthy"}
    assert unknown.status_code == 404 and "message" in checked(unknown)
    assert wrong_method.status_code == 405 and "message" in checked(wrong_method)
    assert outside.status_code == 404 and "message" in checked(outside)


# --- plain WebSocket vs. Engine.IO over WebSocket ---------------------------------------


def _ws_target(lab: fleet.LabInfo, via: str, path: str) -> tuple[str, ssl.SSLContext | None]:
    """The backend's public TLS site (through Caddy), or its own uvicorn (plain ws)."""
    if via == "site":
        url = lab.backend_url("inscribe-1").replace("https://", "wss://", 1)
        return url + path, ssl.create_default_context(cafile=str(lab.ca_bundle))
    return lab.upstream_url("inscribe-1").replace("http://", "ws://", 1) + path, None


class connect_no_redirects(connect):
    """websockets follows 3xx on its own; wscat (the seed's client) reports them instead."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


async def _refusal(url: str, ctx: ssl.SSLContext | None) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as excinfo:
        async with connect_no_redirects(url, ssl=ctx, proxy=None, open_timeout=5):
            pass
    return excinfo.value


async def _hung_up(url: str, ctx: ssl.SSLContext | None, via: str) -> None:
    """engine.io (the node backends) answers an upgrade it does not serve with nothing: a FIN
    after 1 s, which Caddy turns into its 502."""
    started = time.monotonic()
    if via == "site":
        assert (await _refusal(url, ctx)).response.status_code == 502
    else:
        with pytest.raises(InvalidMessage):
            async with connect_no_redirects(url, ssl=ctx, proxy=None, open_timeout=5):
                pass
    assert 0.9 <= time.monotonic() - started <= 3.0


@pytest.mark.parametrize("via", ["site", "upstream"])
async def test_plain_websocket_to_root_is_refused(labs: LabGetter, via: str) -> None:
    lab = labs("healthy")
    url, ctx = _ws_target(lab, via, "/")
    if lab.backend is BackendKind.NODE:
        await _hung_up(url, ctx, via)
        return
    refused = await _refusal(url, ctx)
    assert refused.response.status_code == 403
    assert refused.response.headers.get_all(BACKEND_HEADER) == ["inscribe-1"]
    assert json.loads(refused.response.body)["message"]
    # A refusal is the server working as designed: nothing in its log may say otherwise.
    with http(lab) as client:  # one more round trip: any log line about the refusal is out
        assert client.get(lab.upstream_url("inscribe-1") + "/api/health").status_code == 200
    log = (lab.lab_dir / "logs" / "inscribe-1.log").read_text()
    assert "ERROR" not in log and "handshake" not in log, log


async def test_plain_websocket_to_root_gets_the_incidents_308(labs: LabGetter) -> None:
    # What wscat saw in the seed: "Unexpected server response: 308".
    lab = labs("incident")
    url, ctx = _ws_target(lab, "site", "/")
    refused = await _refusal(url, ctx)
    assert refused.response.status_code == 308
    assert refused.response.headers["location"] == "/api/health"
    assert refused.response.headers.get_all(BACKEND_HEADER) == ["inscribe-1"]


@pytest.mark.parametrize("via", ["site", "upstream"])
async def test_engineio_websocket_gets_101_and_the_open_packet(labs: LabGetter, via: str) -> None:
    lab = labs("healthy")
    url, ctx = _ws_target(lab, via, "/socket.io/?EIO=4&transport=websocket")
    async with connect(url, ssl=ctx, proxy=None, open_timeout=5) as ws:
        assert ws.response.status_code == 101
        assert ws.response.headers.get_all(BACKEND_HEADER) == ["inscribe-1"]
        first = await ws.recv(decode=True)
    assert isinstance(first, str) and first.startswith("0{"), first
    handshake = json.loads(first[1:])
    assert set(handshake) >= {"sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"}
    assert handshake["sid"]


async def test_non_socketio_websocket_paths_are_refused_too(labs: LabGetter) -> None:
    lab = labs("healthy")
    url, ctx = _ws_target(lab, "site", "/api/inscriptions/websocket-servers")
    if lab.backend is BackendKind.NODE:
        await _hung_up(url, ctx, "site")
        return
    refused = await _refusal(url, ctx)
    assert refused.response.status_code == 403
    assert refused.response.headers.get_all(BACKEND_HEADER) == ["inscribe-1"]


def test_transaction_bytes_are_base64_not_text(labs: LabGetter, lab_key: str) -> None:
    lab = labs("healthy")
    with http(lab) as client:
        body = checked(start(client, lab, lab_key, INSCRIPTION_REQUEST))
    with pytest.raises((binascii.Error, ValueError)):
        base64.b64decode(body["transactionBytes"] + "!", validate=True)
    assert base64.b64encode(base64.b64decode(body["transactionBytes"])).decode() == (body["transactionBytes"])
