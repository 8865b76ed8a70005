"""Synthetic evidence from the exact bytes real software sent (research/FACTS.md, measured on
nginx 1.22.1, HAProxy 2.6, socket.io 4.8.4, python-socketio 5.18), shaped as the probes record
it: each builder returns the ProbeResults one probe (or a suite of them) writes for that answer.
"""

from __future__ import annotations

from typing import Any

from kiloscribe_lab.names import CookieMode, CorsCheck, Credential, Outcome, PlainPath, ProbeName, Transport
from kiloscribe_lab.names import connect_variant as cv
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis.helpers import pr

# --- bodies ------------------------------------------------------------------------------------

NODE_BAD_REQUEST = '{"code":3,"message":"Bad request"}'  # engine.io: a WebSocket request as a plain GET
PY_BAD_UPGRADE = '"Invalid websocket upgrade"'  # python-engineio: the same
NODE_TRANSPORT_UNKNOWN = '{"code":0,"message":"Transport unknown"}'
PY_INVALID_TRANSPORT = '"Invalid transport"'
NODE_SESSION_UNKNOWN = '{"code":1,"message":"Session ID unknown"}'
PY_SESSION_UNKNOWN = '"Invalid session 7Bq0dnXe3mWbEmXuAAAB"'
PY_ORIGIN_REFUSED = '"https://evil.example is not an accepted origin."'
NODE_OPEN = (
    '0{"sid":"0XM8iyA1hCFC0i7UAAAA","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,'
    '"maxPayload":1000000}'
)
PY_OPEN = (
    '0{"sid":"w7WccyfBISrHletWAAAi","upgrades":["websocket"],"pingTimeout":20000,"pingInterval":25000,'
    '"maxPayload":1000000}'
)
NODE_OPEN_NO_UPGRADE = NODE_OPEN.replace('["websocket"]', "[]")
WS_426 = "Upgrade Required"  # the ws library's answer to plain HTTP
CHALLENGE_PAGE = (
    '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>'
    "<noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)
HAPROXY_504 = (
    "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"
)


def nginx_page(status: int, reason: str) -> str:
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


# --- headers, as the probes keep them (lower-cased) and as the server spelled their names ----------

NGINX = {"server": "nginx/1.22.1"}
CADDY = {"server": "Caddy", "via": "1.1 Caddy"}
CLOUDFLARE = {"server": "cloudflare", "cf-ray": "8f1e2d3c4b5a6978-AMS"}
UVICORN = {"server": "uvicorn"}
CHALLENGE = {**CLOUDFLARE, "cf-mitigated": "challenge", "content-type": "text/html; charset=UTF-8"}
NODE_NAMES = ["Content-Type", "Date", "Connection", "Keep-Alive", "Transfer-Encoding"]
HAPROXY_NAMES = ["content-type", "date", "connection", "keep-alive", "transfer-encoding"]


# --- what each probe records ------------------------------------------------------------------


def plain_ws(
    target: str,
    outcome: Outcome,
    status: int | None,
    body: str = "",
    headers: dict[str, str] | None = None,
    **detail: Any,
) -> ProbeResult:
    """websocket_plain at /socket.io/ (the raw WebSocket, no sid)."""
    if body:
        detail["body"] = body
    return pr(
        ProbeName.WEBSOCKET_PLAIN, PlainPath.SOCKETIO, target, outcome, status, headers=headers, **detail
    )


def handshake(
    target: str,
    outcome: Outcome,
    status: int,
    body: str,
    headers: dict[str, str] | None = None,
    **detail: Any,
) -> ProbeResult:
    """engineio_handshake: the polling handshake as the probe keeps it."""
    return pr(ProbeName.ENGINEIO_HANDSHAKE, "", target, outcome, status, headers=headers, body=body, **detail)


def upgrade(
    target: str,
    outcome: Outcome,
    status: int,
    body: str = "",
    headers: dict[str, str] | None = None,
    **detail: Any,
) -> ProbeResult:
    """engineio_upgrade once its WebSocket step ran (with the polling session's sid)."""
    return pr(
        ProbeName.ENGINEIO_UPGRADE,
        "",
        target,
        outcome,
        status,
        headers=headers,
        body=body,
        websocket=f"HTTP/1.1 {status}",
        stuck_in_polling=outcome is not Outcome.OK,
        **detail,
    )


def connects(
    target: str,
    transport: Transport,
    outcome: Outcome,
    status: int | None,
    headers: dict[str, str] | None = None,
) -> list[ProbeResult]:
    """socketio_connect with each key over one transport; a working one refuses the bad keys."""
    out = []
    for credential in Credential:
        got = outcome
        if outcome is Outcome.OK and credential is not Credential.VALID:
            got = Outcome.AUTH_REJECTED
        out.append(
            pr(ProbeName.SOCKETIO_CONNECT, cv(transport, credential), target, got, status, headers=headers)
        )
    return out


def sticky(
    target: str,
    outcome: Outcome,
    *,
    lost: int = 0,
    answers: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> list[ProbeResult]:
    """Both sticky_session variants; ``lost`` follow-ups of 8 answered 'Session ID unknown'."""
    follow = answers or [
        {"status": 400 if i < lost else 200, "backend": None, "session_unknown": i < lost} for i in range(8)
    ]
    return [
        pr(
            ProbeName.STICKY_SESSION,
            mode,
            target,
            outcome,
            200,
            headers=headers,
            follow_ups=len(follow),
            answered=sum(a["status"] == 200 for a in follow),
            session_unknown=lost,
            moved=lost,
            answers=follow,
            open_attempts=[{"status": 200, "backend": None}],
        )
        for mode in CookieMode
    ]


def cors(
    target: str,
    check: CorsCheck,
    outcome: Outcome,
    status: int,
    *,
    origin: str = "https://evil.example",
    allow_origin: str | None = None,
    body: str = "",
    why: str = "",
) -> ProbeResult:
    return pr(
        ProbeName.CORS,
        check,
        target,
        outcome,
        status,
        origin=origin,
        allow_origin=allow_origin,
        allowed=outcome is Outcome.OK,
        why=why or ("allowed" if outcome is Outcome.OK else "refused"),
        body=body,
    )
