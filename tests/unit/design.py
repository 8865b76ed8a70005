"""Contracts from DESIGN.md that several test modules check against."""

from __future__ import annotations

# DESIGN.md, "Finding (one JSON object)": the stable finding ids, plus dns-problem, which this
# project added (see the closing note: DESIGN.md should list it).
DESIGN_FINDING_IDS = frozenset(
    {
        "plain-websocket-protocol-mismatch",
        "root-redirect",
        "auth-path-healthy",
        "auth-rejected",
        "backend-down",
        "all-backends-down",
        "backend-timeout",
        "sticky-sessions-missing",
        "sticky-sessions-cookie-only",
        "websocket-blocked",
        "network-timeouts",
        "not-socketio",
        "engineio-version-mismatch",
        "discovery-problem",
        "tls-problem",
        "dns-problem",
        "sdk-runtime-missing-websocket",
        "sdk-fallback-not-effective",
    }
)
