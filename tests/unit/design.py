"""Contracts from DESIGN.md that several test modules check against."""

from __future__ import annotations

from kiloscribe_lab.names import FindingId

# DESIGN.md, "Finding (one JSON object)": the stable finding ids, plus dns-problem, which this
# project added (see the closing note: DESIGN.md should list it), and the second wave's (issue 11)
# with websocket-disabled, one of the "findings a rule needs to explain a broken server" DESIGN.md
# allows (a server whose transports exclude websocket; polling-disabled's mirror); and issue
# 12's, which DESIGN.md lists too (idle-timeout, heartbeat-late, payload-too-large).
DESIGN_FINDING_IDS = frozenset(
    {
        FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
        FindingId.ROOT_REDIRECT,
        FindingId.AUTH_PATH_HEALTHY,
        FindingId.AUTH_REJECTED,
        FindingId.BACKEND_DOWN,
        FindingId.ALL_BACKENDS_DOWN,
        FindingId.BACKEND_TIMEOUT,
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.STICKY_SESSIONS_COOKIE_ONLY,
        FindingId.WEBSOCKET_BLOCKED,
        FindingId.NETWORK_TIMEOUTS,
        FindingId.NOT_SOCKETIO,
        FindingId.ENGINEIO_VERSION_MISMATCH,
        FindingId.DISCOVERY_PROBLEM,
        FindingId.TLS_PROBLEM,
        FindingId.DNS_PROBLEM,
        FindingId.SDK_RUNTIME_MISSING_WEBSOCKET,
        FindingId.SDK_FALLBACK_NOT_EFFECTIVE,
        FindingId.UPGRADE_HEADERS_DROPPED,
        FindingId.POLLING_DISABLED,
        FindingId.INSCRIPTION_NOT_ACKNOWLEDGED,
        FindingId.CORS_ORIGIN_REJECTED,
        FindingId.CDN_CHALLENGE,
        FindingId.RATE_LIMITED,
        FindingId.WEBSOCKET_DISABLED,
        # issue 12 (--deep)
        FindingId.IDLE_TIMEOUT,
        FindingId.HEARTBEAT_LATE,
        FindingId.PAYLOAD_TOO_LARGE,
        # issue 13: the ids DESIGN.md names for a broken server ("e.g. malformed-handshake,
        # redirect-loop")
        FindingId.MALFORMED_HANDSHAKE,
        FindingId.REDIRECT_LOOP,
    }
)
