"""``http_upgrade``: the seed's curl upgrade test, over HTTP/1.1 and over HTTP/2.

HTTP/1.1 sends exactly what ``curl -i -N -H "Connection: Upgrade" -H "Upgrade: websocket"
-H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==" URL`` sent,
and follows redirects (bounded, loop-safe) recording each hop. HTTP/2 cannot carry an
Upgrade (RFC 9113 §8.2.2): the probe says so, sends the rest, and records whether the
server offers RFC 8441 extended CONNECT, the only way to run WebSocket over HTTP/2.
"""

from __future__ import annotations

from kiloscribe_lab import protocol
from kiloscribe_lab.details import Hop, HttpUpgradeDetail
from kiloscribe_lab.endpoints import Endpoint
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import Outcome, RedirectRefusal
from kiloscribe_lab.outcomes import outcome_for_status
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.wire import (
    evidence_headers,
    http2_request,
    open_stream,
    read_head,
)
from kiloscribe_lab.results import ProbeResult

SEED_KEY = "x3JJHMbDL1EzLkh9GBhXDw=="  # the key the seed's curl sent; any valid key works


def curl_command(endpoint: Endpoint, *, http2: bool) -> str:
    version = "" if http2 else " --http1.1"
    return (
        f'curl -i -N{version} -H "Connection: Upgrade" -H "Upgrade: websocket" '
        f'-H "Sec-WebSocket-Version: 13" -H "Sec-WebSocket-Key: {SEED_KEY}" {endpoint.url}'
    )


async def http_upgrade_h1(ctx: ProbeContext, rec: Recorder) -> ProbeResult:
    endpoint = ctx.endpoint
    detail = rec.detail_as(HttpUpgradeDetail)
    detail["command"] = curl_command(endpoint, http2=False)
    hops: list[Hop] = []
    seen = {endpoint.origin + endpoint.path}
    extra = list(ctx.network.headers.items())
    while True:
        stream = await open_stream(
            endpoint, ctx.network, rec.clock, ca_bundle=ctx.options.ca_bundle, alpn=("http/1.1",)
        )
        try:
            await stream.send(
                protocol.build_upgrade_request(endpoint.authority, endpoint.path, SEED_KEY, extra)
            )
            began = rec.clock.begin("waiting for response")
            head, rest = await read_head(stream)
            rec.clock.mark_once("first_byte", began)
        finally:
            stream.abort()
        location = head.get("location")
        hops.append({"url": endpoint.url, "status": head.status, "location": location})
        if len(hops) == 1:
            # The first answer is the evidence; later hops are in ``redirects``.
            rec.status = head.status
            rec.headers = evidence_headers(head.headers)
            detail["header_names"] = [name for name, _ in head.headers]
            detail["status_line"] = f"HTTP/{head.http_version} {head.status} {head.reason}".rstrip()
            detail["body"] = rec.excerpt(rest) if head.status != 101 else ""
        detail["redirects"] = hops
        if head.status == 101:
            check = protocol.check_upgrade_response(head, SEED_KEY)
            detail["upgrade"] = check.reason
            if not check.accepted:
                return rec.result(Outcome.MALFORMED, check.reason)
            if len(hops) > 1:
                return rec.result(Outcome.REDIRECT, f"upgraded only after redirects to {endpoint.url}")
            return rec.result(Outcome.OK)
        if 300 <= head.status < 400 and location:
            if len(hops) > ctx.options.max_redirects:
                detail["redirect_refused"] = RedirectRefusal.TOO_MANY
                return rec.result(Outcome.REDIRECT, f"more than {ctx.options.max_redirects} redirects")
            try:
                nxt = endpoint.resolve_location(location)
            except UsageError:
                detail["redirect_refused"] = RedirectRefusal.UNFOLLOWABLE
                return rec.result(
                    Outcome.REDIRECT, f"redirect to a location we do not follow: {rec.excerpt(location, 80)}"
                )
            key = nxt.origin + nxt.path
            if key in seen:
                detail["redirect_refused"] = RedirectRefusal.LOOP
                return rec.result(Outcome.REDIRECT, f"redirect loop back to {nxt.url}")
            if nxt.origin != ctx.endpoint.origin:
                # Another origin would get the network's headers too: recorded, not followed.
                detail["redirect_refused"] = RedirectRefusal.CROSS_ORIGIN
                return rec.result(Outcome.REDIRECT, f"redirect to another origin, {nxt.origin}: not followed")
            seen.add(key)
            endpoint = nxt
            continue
        # The first hop decides the outcome: a 308 at "/" is a redirect even if its target
        # answers 200; the chain is evidence.
        first = hops[0]["status"]
        outcome = outcome_for_status(first)
        if outcome is Outcome.OK:
            # 2xx to an upgrade request: the server ignored the Upgrade headers.
            outcome = Outcome.PROTOCOL_MISMATCH
        error = None if outcome is Outcome.REDIRECT else detail["status_line"]
        return rec.result(outcome, error)


async def http_upgrade_h2(ctx: ProbeContext, rec: Recorder) -> ProbeResult:
    endpoint = ctx.endpoint
    detail = rec.detail_as(HttpUpgradeDetail)
    detail["command"] = curl_command(endpoint, http2=True)
    if not endpoint.tls:
        detail["note"] = "HTTP/2 is negotiated by ALPN over TLS; this endpoint is plain HTTP"
        return rec.result(Outcome.PROTOCOL_MISMATCH, "no TLS, no ALPN h2")
    stream = await open_stream(
        endpoint, ctx.network, rec.clock, ca_bundle=ctx.options.ca_bundle, alpn=("h2", "http/1.1")
    )
    try:
        detail["alpn"] = stream.alpn
        if stream.alpn != "h2":
            detail["note"] = f"server chose {stream.alpn or 'no ALPN'}, not h2"
            return rec.result(Outcome.PROTOCOL_MISMATCH, "server does not speak HTTP/2")
        headers = [
            ("user-agent", "kiloscribe-lab/0.1"),
            ("sec-websocket-version", "13"),
            ("sec-websocket-key", SEED_KEY),
            *((k.lower(), v) for k, v in ctx.network.headers.items()),
        ]
        answer = await http2_request(stream, rec.clock, endpoint, headers)
    finally:
        stream.abort()
    detail["enable_connect_protocol"] = answer.enable_connect_protocol
    detail["upgrade_headers"] = (
        "Connection and Upgrade are forbidden in HTTP/2 and were not sent; WebSocket over "
        "HTTP/2 needs extended CONNECT (RFC 8441), which the server "
        + ("offers" if answer.enable_connect_protocol else "does not offer")
    )
    if answer.response is None:
        return rec.result(Outcome.RESET, f"stream reset (code {answer.reset_code})")
    response = answer.response
    rec.status = response.status
    rec.headers = evidence_headers(response.headers)
    detail["status_line"] = response.status_line
    detail["body"] = rec.excerpt(response.body)
    outcome = outcome_for_status(response.status)
    return rec.result(outcome, None if outcome in {Outcome.OK, Outcome.REDIRECT} else response.status_line)
