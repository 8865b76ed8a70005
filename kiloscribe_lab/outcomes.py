"""What an answer means: HTTP statuses and Engine.IO answers -> Outcome, in one place. Pure.

Every probe (and the SDK replay's parser) asks here, so "a 400 to an upgrade on the Engine.IO
path" means the same thing whoever met it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from kiloscribe_lab import protocol
from kiloscribe_lab.names import Outcome

UPSTREAM_STATUSES = frozenset({502, 503, 504})  # a proxy answering for an upstream it could not use


def outcome_for_status(status: int) -> Outcome:
    """A plain HTTP answer."""
    if 200 <= status < 300 or status == 101:
        return Outcome.OK
    if 300 <= status < 400:
        return Outcome.REDIRECT
    if status in UPSTREAM_STATUSES:
        return Outcome.UPSTREAM_ERROR
    return Outcome.HTTP_ERROR


def upgrade_refusal(status: int, body: bytes | str = b"", *, engineio_path: bool) -> Outcome:
    """Why a WebSocket handshake got no 101. On the Engine.IO path a Socket.IO server always
    upgrades, so a 2xx or 4xx there (other than Engine.IO's own errors) means something between
    refused it: blocked."""
    error = protocol.classify_engineio_error(status, body)
    if error is not None:
        if error.session_unknown:
            return Outcome.SESSION_UNKNOWN
        if error.code is protocol.EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
            return Outcome.PROTOCOL_MISMATCH
        if error.code is protocol.EioErrorCode.BAD_REQUEST and engineio_path:
            # Code 3 on an upgrade: the Upgrade headers did not reach the server.
            return Outcome.BLOCKED
    outcome = outcome_for_status(status)
    if engineio_path and outcome in {Outcome.HTTP_ERROR, Outcome.OK}:
        return Outcome.BLOCKED
    if outcome is Outcome.OK:
        # A 2xx instead of 101: the server ignored the upgrade. No WebSocket, so never ok.
        return Outcome.PROTOCOL_MISMATCH
    return outcome


def handshake_outcome(result: protocol.HandshakeResult, status: int) -> tuple[Outcome, str | None]:
    """A polling handshake's answer, classified by ``protocol.classify_handshake``."""
    if isinstance(result, protocol.EioV4Handshake):
        return Outcome.OK, None
    if isinstance(result, protocol.EioV3Handshake):
        return Outcome.PROTOCOL_MISMATCH, "the server answers in Engine.IO v3 framing"
    if isinstance(result, protocol.EioError):
        if result.session_unknown:
            return Outcome.SESSION_UNKNOWN, result.message
        if result.code is protocol.EioErrorCode.UNSUPPORTED_PROTOCOL_VERSION:
            return Outcome.PROTOCOL_MISMATCH, result.message
        return Outcome.HTTP_ERROR, result.message
    outcome = outcome_for_status(status)
    if status == 429:
        return outcome, f"rate-limited: {result.description}"  # says nothing of what is behind
    if outcome in {Outcome.OK, Outcome.HTTP_ERROR}:
        return Outcome.PROTOCOL_MISMATCH, f"not Engine.IO: {result.description}"
    return outcome, result.description


class Refusal(enum.StrEnum):
    """Why a request on the Engine.IO path was not served, read from the answer itself."""

    CHALLENGE = "challenge"  # an edge's bot check (Cloudflare: 403 + cf-mitigated: challenge)
    RATE_LIMITED = "rate-limited"  # 429
    # A WebSocket request answered as a plain GET: engine.io's JSON code 3 (its HTTP handler's
    # "Bad request"), python-engineio's "Invalid websocket upgrade", or a 200 page instead of
    # 101. Something on the way dropped Upgrade/Connection: the server never saw an upgrade.
    HEADERS_DROPPED = "headers-dropped"
    TRANSPORT_DISABLED = "transport-disabled"  # the server itself: code 0 / "Invalid transport"
    ORIGIN_REFUSED = "origin-refused"  # python-engineio: "<origin> is not an accepted origin."
    OTHER = "other"  # refused, by whom the answer does not say (a 403, a proxy's page...)


def refusal(
    status: int | None,
    body: bytes | str,
    headers: Mapping[str, str],
    *,
    websocket: bool,
    sid_bound: bool = False,
) -> Refusal | None:
    """Why an answer on the Engine.IO path is a refusal, or None when it is not one (a 101 to
    a WebSocket request; any answer to a polling request that is not one of the above).
    ``headers`` are lower-cased names, as ProbeResult keeps them; ``sid_bound``: the request
    carried a session id (an upgrade), which changes what python-engineio's words mean."""
    if status is None or (websocket and status == 101):
        return None
    if status == 403 and headers.get("cf-mitigated", "").strip().lower() == "challenge":
        return Refusal.CHALLENGE
    if status == 429:
        return Refusal.RATE_LIMITED
    error = protocol.classify_engineio_error(status, body)
    if (
        error is not None
        and error.code is protocol.EioErrorCode.FORBIDDEN
        and error.message.endswith(protocol.PY_ORIGIN_REFUSED)
    ):
        return Refusal.ORIGIN_REFUSED
    if error is not None and error.code is protocol.EioErrorCode.TRANSPORT_UNKNOWN:
        if not (websocket and sid_bound and error.style == "python"):
            return Refusal.TRANSPORT_DISABLED
        # python-engineio also says "Invalid transport" to an upgrade for a known session that
        # arrived without its Upgrade header: with a sid, its words do not tell the two apart.
        return Refusal.OTHER
    if not websocket:
        return None
    # Node's JSON form comes only from engine.io's plain-HTTP handler (an upgrade it refuses
    # gets raw text); python's wording is its check for the Upgrade header.
    if status == 200 or (
        error is not None
        and error.code is protocol.EioErrorCode.BAD_REQUEST
        and (error.style == "node" or error.message == "Invalid websocket upgrade")
    ):
        return Refusal.HEADERS_DROPPED
    return Refusal.OTHER
