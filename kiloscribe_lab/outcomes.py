"""What an answer means: HTTP statuses and Engine.IO answers -> Outcome, in one place. Pure.

Every probe (and the SDK replay's parser) asks here, so "a 400 to an upgrade on the Engine.IO
path" means the same thing whoever met it.
"""

from __future__ import annotations

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
    if outcome in {Outcome.OK, Outcome.HTTP_ERROR}:
        return Outcome.PROTOCOL_MISMATCH, f"not Engine.IO: {result.description}"
    return outcome, result.description
