"""Engine.IO long-polling probes over HTTP/1.1 (h11): the handshake and sticky sessions.

* ``engineio_handshake``: ``GET /socket.io/?EIO=4&transport=polling``; parses the OPEN
  packet and tells a v4 server, a v3 server, a v4 server refusing EIO 3, and something that
  is not Engine.IO at all apart.
* ``sticky_session``: opens a polling session, then sends K follow-ups on its ``sid`` — a
  PONG packet, which a server accepts at any time and answers at once — and counts who
  answered and who said "Session ID unknown". With a cookie jar (a browser) and without
  (the SDK's Node client, which drops cookies).

The Engine.IO side (targets, packets, what an answer means) is
:class:`~kiloscribe_lab.session.SioClient`'s; these functions move the bytes.
"""

from __future__ import annotations

import asyncio
import random

from kiloscribe_lab import protocol
from kiloscribe_lab.details import (
    EngineioHandshakeDetail,
    FollowUp,
    OpenAttempt,
    StickySessionDetail,
)
from kiloscribe_lab.endpoints import Endpoint
from kiloscribe_lab.errors import ProtocolError
from kiloscribe_lab.names import BACKEND_HEADERS, Outcome
from kiloscribe_lab.outcomes import UPSTREAM_STATUSES, handshake_outcome, outcome_for_status
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.wire import (
    Http1,
    HttpResponse,
    Stream,
    base_headers,
    evidence_headers,
    open_stream,
)
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.session import EioState, PollingRefused, SioClient, first

# Only to recognise an old server (the session speaks v4 alone): does it still accept v3?
EIO3_HANDSHAKE = "/socket.io/?EIO=3&transport=polling"
OPEN_TRIES = 6  # a round robin onto a dead backend is retried, as a client's reconnect would


def backend_of(response: HttpResponse) -> str | None:
    for name in BACKEND_HEADERS:
        value = response.get(name)
        if value:
            return value
    return None


class Session:
    """An HTTP/1.1 connection that reconnects when the server closes it."""

    def __init__(self, endpoint: Endpoint, ctx: ProbeContext, rec: Recorder) -> None:
        self.endpoint = endpoint
        self.ctx = ctx
        self.rec = rec
        self.stream: Stream | None = None
        self.http: Http1 | None = None

    async def open(self) -> Http1:
        """The connection, (re)opened when the server closed it; timed as connect/tls."""
        if self.http is None or not self.http.reusable:
            self.close()
            self.stream = await open_stream(
                self.endpoint, self.ctx.network, self.rec.clock, ca_bundle=self.ctx.options.ca_bundle
            )
            self.http = Http1(self.stream, self.rec.clock)
        return self.http

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: list[tuple[str, str]] | None = None,
    ) -> HttpResponse:
        http = await self.open()
        all_headers = base_headers(self.endpoint, self.ctx.network) + (headers or [])
        if body:
            all_headers.append(("content-type", "text/plain;charset=UTF-8"))
        return await http.request(method, path, all_headers, body)

    def close(self) -> None:
        if self.stream is not None:
            self.stream.abort()
        self.stream = None
        self.http = None


def _describe(result: protocol.HandshakeResult) -> EngineioHandshakeDetail:
    if isinstance(result, protocol.EioV4Handshake | protocol.EioV3Handshake):
        opened = result.open
        return {
            "engineio_version": 4 if isinstance(result, protocol.EioV4Handshake) else 3,
            "sid": opened.sid,
            "upgrades": list(opened.upgrades),
            "pingInterval": opened.ping_interval,
            "pingTimeout": opened.ping_timeout,
            "maxPayload": opened.max_payload,
            "idle_budget_ms": opened.idle_budget_ms,
        }
    if isinstance(result, protocol.EioError):
        return {
            "engineio_error": {
                "code": int(result.code),
                "name": result.code.name,
                "message": result.message,
                "style": result.style,
            }
        }
    return {"not_engineio": result.description, "body_kind": result.body_kind.value}


async def engineio_handshake(ctx: ProbeContext, rec: Recorder) -> ProbeResult:
    client = SioClient()
    endpoint = ctx.endpoint.with_path(client.handshake_target())
    detail = rec.detail_as(EngineioHandshakeDetail)
    detail["command"] = f"curl -i '{endpoint.url}'"
    session = Session(endpoint, ctx, rec)
    try:
        await session.open()  # connect and TLS are their own phases, not the handshake's
        began = rec.clock.begin("polling handshake")
        response = await session.request("GET", endpoint.path)
        rec.clock.mark_once("handshake", began)
        rec.status = response.status
        rec.headers = evidence_headers(response.headers)
        detail["header_names"] = list(response.header_names)
        detail["status_line"] = response.status_line
        detail["body"] = rec.excerpt(response.body)
        try:
            client.receive_handshake(response.status, response.body, response.get("content-type"))
        except ProtocolError as exc:
            return rec.result(Outcome.MALFORMED, f"broken Engine.IO handshake: {exc}")
        result = client.handshake_result
        detail.update(_describe(result))
        outcome, error = handshake_outcome(result, response.status)
        if isinstance(result, protocol.EioV4Handshake):
            # Does it still accept Engine.IO v3 clients? Evidence for version mismatches.
            v3 = await session.request("GET", EIO3_HANDSHAKE)
            try:
                v3_result = protocol.classify_handshake(v3.status, v3.body, v3.get("content-type"))
                detail["eio3"] = (
                    "accepted (v3 clients can connect)"
                    if isinstance(v3_result, protocol.EioV3Handshake)
                    else f"refused: {v3.status_line} {rec.excerpt(v3.body, 120)}"
                )
            except ProtocolError as exc:
                detail["eio3"] = f"broken answer: {exc}"
        return rec.result(outcome, error)
    finally:
        session.close()


def _cookie_pairs(response: HttpResponse) -> dict[str, str]:
    pairs = {}
    for header in response.get_all("set-cookie"):
        name, _, rest = header.partition("=")
        pairs[name.strip()] = rest.split(";", 1)[0].strip()
    return pairs


FOLLOW_UP_JITTER_S = 0.03


async def sticky_session(ctx: ProbeContext, rec: Recorder, *, keep_cookies: bool) -> ProbeResult:
    client = SioClient()
    endpoint = ctx.endpoint.with_path(client.handshake_target())
    detail = rec.detail_as(StickySessionDetail)
    detail["client"] = "browser (returns cookies)" if keep_cookies else "Node SDK (drops cookies)"
    session = Session(endpoint, ctx, rec)
    jar: dict[str, str] = {}
    try:
        response = await session.request("GET", endpoint.path)
        attempts: list[OpenAttempt] = [{"status": response.status, "backend": backend_of(response)}]
        while response.status in UPSTREAM_STATUSES and len(attempts) < OPEN_TRIES:
            response = await session.request("GET", endpoint.path)
            attempts.append({"status": response.status, "backend": backend_of(response)})
        rec.status = response.status
        rec.headers = evidence_headers(response.headers)
        detail["header_names"] = list(response.header_names)
        detail["open_attempts"] = attempts
        try:
            client.receive_handshake(response.status, response.body, response.get("content-type"))
        except ProtocolError as exc:
            return rec.result(Outcome.MALFORMED, f"broken Engine.IO handshake: {exc}")
        if client.open is None:
            outcome, error = handshake_outcome(client.handshake_result, response.status)
            return rec.result(outcome, f"could not open a polling session: {error}")
        if client.state is not EioState.OPEN:
            return rec.result(Outcome.MALFORMED, "the server closed the session in its handshake answer")
        opener = backend_of(response)
        jar.update(_cookie_pairs(response))
        detail["opener"] = opener
        detail["cookie_names"] = sorted(jar)

        follow_path = client.polling_target()
        answers: list[FollowUp] = []
        for _ in range(ctx.options.follow_ups):
            # A round robin counts every client's requests: with the other probes of the same
            # balancer stepping in lockstep, each could meet the same backend every time and a
            # balancer without stickiness pass for sticky. A few ms of jitter breaks the step.
            await asyncio.sleep(random.uniform(0.0, FOLLOW_UP_JITTER_S))  # jitter, no secret
            headers = []
            if keep_cookies and jar:
                headers.append(("cookie", "; ".join(f"{k}={v}" for k, v in jar.items())))
            reply = await session.request("POST", follow_path, client.pong().polling_body(), headers)
            if keep_cookies:
                jar.update(_cookie_pairs(reply))
            refused = first(client.receive_post(reply.status, reply.body), PollingRefused)
            answer: FollowUp = {
                "status": reply.status,
                "backend": backend_of(reply),
                "session_unknown": bool(refused and refused.error and refused.error.session_unknown),
            }
            retry_after = reply.get("retry-after")
            if retry_after is not None:
                answer["retry_after"] = retry_after
            answers.append(answer)
        answered = sum(1 for a in answers if a["status"] == 200)
        lost = sum(1 for a in answers if a["session_unknown"])
        # Not answered by the opener: another backend refused the sid, or the balancer sent
        # the request to a dead upstream (5xx). A sticky balancer does neither. A 200 proves
        # the session is where it was, whatever a node header (a CDN's x-served-by) says.
        moved = sum(1 for a in answers if a["session_unknown"] or a["status"] >= 500)
        detail.update(
            {
                "follow_ups": len(answers),
                "answered": answered,
                "session_unknown": lost,
                "moved": moved,
                "other": len(answers) - answered - lost,
                "answers": answers,
                "backends": sorted({a["backend"] for a in answers if a["backend"]}),
            }
        )
        if answered == len(answers):
            return rec.result(Outcome.OK)
        if lost:
            return rec.result(
                Outcome.SESSION_UNKNOWN, f"{lost} of {len(answers)} follow-ups: Session ID unknown"
            )
        worst = next(a for a in answers if a["status"] != 200)
        return rec.result(
            outcome_for_status(worst["status"]),
            f"{len(answers) - answered} of {len(answers)} follow-ups failed",
        )
    finally:
        session.close()
