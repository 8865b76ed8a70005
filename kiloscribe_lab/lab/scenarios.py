"""The lab's scenarios: named presets, each with the ground truth a correct diagnosis gives.

Pure data. The Caddyfile generator and the backends read a Scenario; tests and the
diagnosis integration table read ``expected_findings``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import FindingId

BACKENDS: tuple[str, ...] = ("inscribe-1", "inscribe-2", "inscribe-3")


class LbPolicy(enum.StrEnum):
    """The Caddy ``lb_policy`` the load balancer runs."""

    ROUND_ROBIN = "round_robin"
    IP_HASH = "ip_hash"
    COOKIE = "cookie"
    FIRST = "first"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    lb_policy: LbPolicy
    expected_findings: tuple[str, ...]
    down: frozenset[str] = frozenset()  # backends not running: Caddy answers 502 for them
    stalled: frozenset[str] = frozenset()  # backends that accept and never answer
    root_redirect: bool = False  # the backends' "/" answers 308
    edge_blocks_websocket: bool = False  # the CDN edge refuses WebSocket upgrades
    auth_broken: bool = False  # every key is refused, the valid one included

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "description": self.description,
            "lb_policy": self.lb_policy.value,
            "down": sorted(self.down),
            "stalled": sorted(self.stalled),
            "root_redirect": self.root_redirect,
            "edge_blocks_websocket": self.edge_blocks_websocket,
            "auth_broken": self.auth_broken,
            "expected_findings": list(self.expected_findings),
        }


_HEALTHY_TRUTH = (FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH, FindingId.AUTH_PATH_HEALTHY)

SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="healthy",
            description="All backends up, sticky sessions by client IP (ip_hash), WebSocket proxied.",
            lb_policy=LbPolicy.IP_HASH,
            expected_findings=_HEALTHY_TRUTH,
        ),
        Scenario(
            name="cookie-sticky",
            description="As healthy, but stickiness comes from the balancer's cookie (lb_policy cookie).",
            lb_policy=LbPolicy.COOKIE,
            expected_findings=(FindingId.STICKY_SESSIONS_COOKIE_ONLY, *_HEALTHY_TRUTH),
        ),
        Scenario(
            name="incident",
            description="The seed's state: inscribe-2 down (502), round robin, / answers 308.",
            lb_policy=LbPolicy.ROUND_ROBIN,
            down=frozenset({"inscribe-2"}),
            root_redirect=True,
            expected_findings=(
                FindingId.BACKEND_DOWN,
                FindingId.STICKY_SESSIONS_MISSING,
                FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
                FindingId.ROOT_REDIRECT,
                FindingId.AUTH_PATH_HEALTHY,
            ),
        ),
        Scenario(
            name="all-down",
            description="Every backend down: the balancer and every direct site answer 502.",
            lb_policy=LbPolicy.ROUND_ROBIN,
            down=frozenset(BACKENDS),
            expected_findings=(FindingId.ALL_BACKENDS_DOWN,),
        ),
        Scenario(
            name="edge-blocks-websocket",
            description="The CDN edge refuses WebSocket upgrades; polling still works.",
            lb_policy=LbPolicy.IP_HASH,
            edge_blocks_websocket=True,
            expected_findings=(FindingId.WEBSOCKET_BLOCKED,),
        ),
        Scenario(
            name="slow-backend",
            description="inscribe-3 accepts connections and then stalls past any probe deadline.",
            # Not ip_hash: which upstream a client IP hashes to depends on the lab's random
            # ports, and the balancer would stall entirely in some labs and not in others.
            lb_policy=LbPolicy.FIRST,
            stalled=frozenset({"inscribe-3"}),
            expected_findings=(FindingId.BACKEND_TIMEOUT,),
        ),
        Scenario(
            name="auth-broken",
            description="The servers refuse every key, the valid one included.",
            lb_policy=LbPolicy.IP_HASH,
            auth_broken=True,
            expected_findings=(FindingId.AUTH_REJECTED,),
        ),
    )
}

DEFAULT_SCENARIO = "incident"


def get_scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise UsageError(f"unknown scenario {name!r}; known scenarios: {known}") from None


@dataclass(frozen=True, slots=True)
class NetworkTruth:
    """What one lab network adds to a scenario's ground truth, when that network's results
    are diagnosed together with ``direct``'s (as the report's endpoint × network matrix does).

    ``adds``: finding ids beyond the scenario's ``expected_findings``, with ``severity``.
    ``probe_timeout_s``: the probes' deadline this holds for; None means one the network's
    round trips fit in (the lab's mobile link needs ~4 round trips, 0.6 s, per connect).
    """

    network: str
    adds: tuple[str, ...] = ()
    severity: str = "warning"
    probe_timeout_s: float | None = None
    why: str = ""


# Per scenario, per lab network (lab_networks.LAB_NETWORKS): the extended ground truth.
NETWORK_GROUND_TRUTH: dict[str, tuple[NetworkTruth, ...]] = {
    scenario: (
        NetworkTruth("direct", why="the baseline every other network is compared with"),
        NetworkTruth("polling-only", why="polling works wherever it works direct: nothing new"),
        NetworkTruth(
            "corporate-proxy",
            (FindingId.WEBSOCKET_BLOCKED,),
            why="the proxy answers 403 to every WebSocket upgrade; polling through it works",
        ),
        NetworkTruth("mobile", why="slower, but every deadline is met: nothing new"),
        NetworkTruth(
            "mobile",
            (FindingId.NETWORK_TIMEOUTS,),
            probe_timeout_s=1.0,
            why="a deadline shorter than the round trips a Socket.IO connect needs on the slow link",
        ),
    )
    for scenario in ("incident", "healthy")
}
