"""``cors``: what a browser page on ``--origin`` would be allowed to do (only with ``--origin``).

Three requests, one variant each (``names.CorsCheck``), all at the Engine.IO path:

* ``polling``: the polling handshake with ``Origin``, as socket.io-client's XHR sends it (a
  simple request: no preflight). The page may read the answer only when
  ``Access-Control-Allow-Origin`` is its origin or ``*`` (socket.io-client's default
  ``withCredentials: false`` accepts ``*``; with credentials a browser also needs
  ``Access-Control-Allow-Credentials: true`` and an exact origin).
* ``preflight``: ``OPTIONS`` with ``Access-Control-Request-Method``/``-Headers``, what a
  browser sends first for a client that adds headers (``extraHeaders``).
* ``websocket``: the WebSocket handshake with ``Origin``. Browsers apply no CORS to it, but
  servers may check the Origin themselves (python-socketio answers 403).

What each answer means in a browser is decided here (``allowed``, ``why``), from the answer
alone; the diagnosis (``cors-origin-rejected``) compares them with the Origin-less probes.
"""

from __future__ import annotations

from kiloscribe_lab import protocol
from kiloscribe_lab.details import CorsDetail
from kiloscribe_lab.names import CorsCheck, Outcome, Transport
from kiloscribe_lab.outcomes import Refusal, outcome_for_status, refusal
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.polling import Session
from kiloscribe_lab.probes.websocket import header_names, websocket_handshake
from kiloscribe_lab.probes.wire import evidence_headers
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.session import SioClient

# What a browser asks before a POST carrying a header it must ask about.
PREFLIGHT_METHOD = "POST"
PREFLIGHT_HEADERS = "content-type"


def allows(allow_origin: str | None, origin: str) -> tuple[bool, str]:
    """Would a browser page on ``origin`` (without credentials, socket.io-client's default)
    accept an answer carrying ``allow_origin``? With the reason, in a few words."""
    if allow_origin is None:
        return False, "no Access-Control-Allow-Origin in the answer"
    value = allow_origin.strip()
    if value == "*":
        return True, "Access-Control-Allow-Origin: *"
    if value == origin:
        return True, f"Access-Control-Allow-Origin: {value}"
    return False, f"Access-Control-Allow-Origin: {value}, not {origin}"


async def cors(ctx: ProbeContext, rec: Recorder, *, check: CorsCheck) -> ProbeResult:
    origin = ctx.options.origin
    if origin is None:  # the suite runs this probe only with an origin
        raise ValueError("the cors probe needs ProbeSettings.origin")
    detail = rec.detail_as(CorsDetail)
    detail["origin"] = origin
    if check is CorsCheck.WEBSOCKET:
        return await _websocket(ctx, rec, origin)
    client = SioClient()
    endpoint = ctx.endpoint.with_path(client.handshake_target())
    sent = {"origin": origin}
    method = "GET"
    if check is CorsCheck.PREFLIGHT:
        method = "OPTIONS"
        sent |= {
            "access-control-request-method": PREFLIGHT_METHOD,
            "access-control-request-headers": PREFLIGHT_HEADERS,
        }
    detail["method"] = method
    detail["request_headers"] = sent
    detail["command"] = (
        f"curl -i -X {method} " + " ".join(f"-H '{k}: {v}'" for k, v in sent.items()) + (f" '{endpoint.url}'")
    )
    session = Session(endpoint, ctx, rec)
    try:
        response = await session.request(method, endpoint.path, headers=list(sent.items()))
    finally:
        session.close()
    rec.status = response.status
    rec.headers = evidence_headers(response.headers)
    detail["header_names"] = list(response.header_names)
    detail["status_line"] = response.status_line
    detail["body"] = rec.excerpt(response.body)
    allow_origin = response.get("access-control-allow-origin")
    detail["allow_origin"] = allow_origin
    detail["allow_credentials"] = response.get("access-control-allow-credentials")
    why_refused = refusal(response.status, response.body, rec.headers, websocket=False)
    if why_refused is Refusal.ORIGIN_REFUSED:
        # python-engineio's own check: it says so in the body, and sends no ACAO.
        return _refused(rec, f"the server refuses the origin: {rec.excerpt(response.body, 120)}")
    outcome = outcome_for_status(response.status)
    ok, why = allows(allow_origin, origin)
    if outcome is not Outcome.OK:
        # A 5xx, a 429, a 404: not an answer about CORS, whatever its headers say.
        detail["allowed"] = False
        detail["why"] = f"no answer to judge CORS by ({response.status_line})"
        return rec.result(outcome, detail["why"])
    if check is CorsCheck.POLLING and not isinstance(
        protocol.classify_handshake(response.status, response.body, response.get("content-type")),
        protocol.EioV4Handshake,
    ):
        detail["allowed"] = False
        detail["why"] = "the handshake did not open an Engine.IO session"
        return rec.result(Outcome.PROTOCOL_MISMATCH, detail["why"])
    detail["allowed"] = ok
    detail["why"] = why
    return rec.result(Outcome.OK) if ok else _refused(rec, why)


def _refused(rec: Recorder, why: str) -> ProbeResult:
    detail = rec.detail_as(CorsDetail)
    detail["allowed"] = False
    detail["why"] = why
    return rec.result(Outcome.BLOCKED, f"a browser page on {detail['origin']} is refused: {why}")


async def _websocket(ctx: ProbeContext, rec: Recorder, origin: str) -> ProbeResult:
    client = SioClient(Transport.WEBSOCKET)
    endpoint = ctx.endpoint.with_path(client.handshake_target())
    detail = rec.detail_as(CorsDetail)
    detail["method"] = "GET"
    detail["request_headers"] = {"origin": origin}
    detail["command"] = f"wscat -H 'Origin: {origin}' -c {endpoint.url.replace('https://', 'wss://', 1)}"
    sock = await websocket_handshake(endpoint, ctx, rec, extra_headers=[("Origin", origin)])
    try:
        head = sock.head
        rec.status = head.status
        rec.headers = evidence_headers(head.headers)
        detail["header_names"] = header_names(head)
        detail["status_line"] = f"HTTP/{head.http_version} {head.status} {head.reason}".rstrip()
        detail["allow_origin"] = head.get("access-control-allow-origin")
        detail["allow_credentials"] = head.get("access-control-allow-credentials")
        if sock.check.accepted:
            detail["allowed"] = True
            detail["why"] = "101: the server accepts WebSockets from this origin"
            return rec.result(Outcome.OK)
        detail["body"] = rec.excerpt(sock.buffer)
        if head.status == 403:
            # python-socketio's answer to an origin it does not accept (uvicorn: empty body);
            # the diagnosis tells it from a blocking proxy by the Origin-less WebSocket.
            return _refused(rec, "403 to the WebSocket handshake with this Origin")
        detail["allowed"] = False
        detail["why"] = f"no answer to judge by ({detail['status_line']})"
        return rec.result(outcome_for_status(head.status), detail["why"])
    finally:
        sock.stream.abort()
