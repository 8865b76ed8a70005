"""Diagnosis: evidence (every ProbeResult of one investigation) -> findings and verdicts. Pure.

The rules are a table, ``RULES``: each is a pure function ``(Evidence) -> Finding | None``.
Where one root cause explains another's symptoms, ``SUPERSEDES`` drops the symptom (all
backends down explains lost sessions; a refused valid key makes "the auth path is healthy"
a misleading comfort). Verdicts per target and an overall status come last.

What the probes' outcomes mean here, in one place:

* *expected* failures are not faults: a plain WebSocket at ``/`` (the server speaks
  Socket.IO), a redirect at ``/``, a refused invalid or missing key;
* the *Socket.IO path works* on a target when a Socket.IO connect succeeds or is refused
  with the server's own message — either way client and application talked.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from kiloscribe_lab.names import FindingId, Outcome, ProbeName, Severity
from kiloscribe_lab.results import Finding, ProbeResult, replace

FAILURES_OF_SERVICE = {Outcome.UPSTREAM_ERROR, Outcome.REFUSED, Outcome.RESET}
# Probes whose success means "the Socket.IO service answered on this target".
SOCKET_PROBES = {
    ProbeName.SOCKETIO_CONNECT,
    ProbeName.ENGINEIO_HANDSHAKE,
    ProbeName.ENGINEIO_UPGRADE,
    ProbeName.SDK_FLOW,
    ProbeName.STICKY_SESSION,
    ProbeName.CONNECT_STATS,
}
WEBSOCKET_VARIANTS = {(ProbeName.WEBSOCKET_PLAIN, "socket.io"), (ProbeName.ENGINEIO_UPGRADE, "")}


def is_websocket(r: ProbeResult) -> bool:
    return (
        (r.probe, r.variant) in WEBSOCKET_VARIANTS
        or (r.probe in {"socketio_connect", ProbeName.CONNECT_STATS} and r.variant.startswith("websocket"))
        or r.probe == ProbeName.SDK_FLOW
    )


def is_polling(r: ProbeResult) -> bool:
    return r.probe == ProbeName.ENGINEIO_HANDSHAKE or (
        r.probe in {"socketio_connect", ProbeName.CONNECT_STATS} and r.variant.startswith("polling")
    )


def path_works(r: ProbeResult) -> bool:
    """Client and application talked: a connect, or a refusal in the server's own words.

    A refused *configured* key is not "working": that client cannot connect.
    """
    if r.outcome is Outcome.OK:
        return True
    return (
        r.outcome is Outcome.AUTH_REJECTED
        and r.probe == ProbeName.SOCKETIO_CONNECT
        and not r.variant.endswith(":valid")
    )


def is_cdn(r: ProbeResult) -> bool:
    return "cf-ray" in r.headers or r.headers.get("server", "").lower() == "cloudflare"


# The detail fields the rules read, and their types. Results may come from files (a report
# run, a hand-edited JSONL): a field of the wrong type is dropped here, at the boundary,
# so no rule ever crashes on foreign evidence.
_DETAIL_TYPES: dict[str, type | tuple[type, ...]] = {
    "label": str,
    "backend": str,
    "chosen": str,
    "not_engineio": str,
    "stalled_during": str,
    "engineio_version": int,
    "moved": int,
    "session_unknown": int,
    "follow_ups": int,
    "answered": int,
    "successes": int,
    "attempts": int,
    "engineio_error": dict,
    "outcomes": dict,
    "problems": list,
    "answers": list,
    "open_attempts": list,
    "cookie_names": list,
    "servers": list,
}
_LIST_OF_DICTS = {"answers", "open_attempts", "servers"}


def _sane(r: ProbeResult) -> ProbeResult:
    bad = []
    for key, kind in _DETAIL_TYPES.items():
        value = r.detail.get(key)
        if value is None:
            continue
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is int)
        if not wrong and key in _LIST_OF_DICTS:
            wrong = not all(isinstance(item, dict) for item in value)
        if not wrong and key == "outcomes":
            wrong = not all(isinstance(v, int) for v in value.values())
        if wrong:
            bad.append(key)
    if not bad:
        return r
    return replace(r, detail={k: v for k, v in r.detail.items() if k not in bad})


_AFTER_CONNECT = {"start-inscription", "inscription-progress"}


@dataclass(frozen=True)
class Evidence:
    """One investigation's results, indexed for the rules."""

    results: tuple[ProbeResult, ...]
    api_key_env: str | None = None

    @classmethod
    def of(cls, results: Iterable[ProbeResult], api_key_env: str | None = None) -> Evidence:
        return cls(tuple(_sane(r) for r in results), api_key_env)

    @cached_property
    def targets(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.results:
            if r.probe != ProbeName.DISCOVERY:
                seen.setdefault(r.target, None)
        return list(seen)

    @cached_property
    def labels(self) -> dict[str, str]:
        return {r.target: str(r.detail["label"]) for r in self.results if r.detail.get("label")}

    def name(self, target: str) -> str:
        label = self.labels.get(target)
        return f"{label} ({target})" if label else target

    def names(self, targets: Iterable[str]) -> str:
        return ", ".join(self.name(t) for t in dict.fromkeys(targets))

    @cached_property
    def networks(self) -> list[str]:
        return list(dict.fromkeys(r.network for r in self.results))

    def where(
        self,
        probe: str | None = None,
        variant: str | None = None,
        target: str | None = None,
        network: str | None = None,
    ) -> list[ProbeResult]:
        return [
            r
            for r in self.results
            if (probe is None or r.probe == probe)
            and (variant is None or r.variant == variant)
            and (target is None or r.target == target)
            and (network is None or r.network == network)
        ]

    def socket(self, target: str, network: str | None = None) -> list[ProbeResult]:
        """The evidence of whether Socket.IO answers. sdk_flow counts up to its connect: a
        refused dry-run inscription is the application's answer, not the path's."""
        return [
            r
            for r in self.where(target=target, network=network)
            if (r.probe in SOCKET_PROBES or (r.probe, r.variant) in WEBSOCKET_VARIANTS)
            and not (r.probe == ProbeName.SDK_FLOW and r.detail.get("failed_step") in _AFTER_CONNECT)
        ]

    def health(self, target: str, network: str | None = None) -> TargetHealth:
        return TargetHealth.of(self.socket(target, network))

    def is_down(self, target: str) -> bool:
        """Down on every network that reached it. A network whose proxy refuses WebSocket
        mixes "blocked" into a dead backend's 502s; that does not make the backend less dead."""
        h = self.health(target)
        if h.health is Health.DOWN:
            return True
        if h.health is Health.UNKNOWN or any(path_works(r) or _partly_worked(r) for r in h.results):
            return False
        return any(self.health(target, n).health is Health.DOWN for n in self.networks)


class Health(enum.StrEnum):
    WORKS = "works"  # every Socket.IO-path probe worked
    PARTIAL = "partial"  # some worked, some failed
    DOWN = "down"  # none worked; the failures are the service's (502, refused, reset)
    STALLED = "stalled"  # none worked; connections were accepted and then nothing came
    BLOCKED = "blocked"  # WebSocket refused on the way, polling works
    OTHER = "other"  # none worked for another reason (TLS, not Socket.IO, auth...)
    UNKNOWN = "unknown"  # no evidence


@dataclass(frozen=True)
class TargetHealth:
    health: Health
    worked: int
    failed: int
    upstream_errors: int
    requests: int  # individual HTTP requests seen, for shares
    results: tuple[ProbeResult, ...] = field(repr=False, default=())

    @classmethod
    def of(cls, rs: Sequence[ProbeResult]) -> TargetHealth:
        if not rs:
            return cls(Health.UNKNOWN, 0, 0, 0, 0)
        worked = [r for r in rs if path_works(r) or _partly_worked(r)]
        failed = [r for r in rs if not path_works(r)]
        upstream, requests = _request_counts(rs)
        if not failed:
            health = Health.WORKS
        elif worked:
            ws_failed = [r for r in failed if is_websocket(r)]
            blocked = ws_failed and all(r.outcome is Outcome.BLOCKED for r in ws_failed)
            polling_ok = any(path_works(r) for r in rs if is_polling(r))
            if blocked and polling_ok and len(ws_failed) == len(failed):
                health = Health.BLOCKED
            else:
                health = Health.PARTIAL
        elif all(r.outcome is Outcome.TIMEOUT for r in failed) and any(_accepted(r) for r in failed):
            health = Health.STALLED
        elif any(r.outcome in FAILURES_OF_SERVICE for r in failed) and all(
            r.outcome in FAILURES_OF_SERVICE | {Outcome.TIMEOUT, Outcome.SESSION_UNKNOWN} for r in failed
        ):
            health = Health.DOWN
        else:
            health = Health.OTHER
        return cls(health, len(worked), len(failed), upstream, requests, tuple(rs))

    @property
    def share_failing(self) -> float:
        return self.upstream_errors / self.requests if self.requests else 0.0


def _partly_worked(r: ProbeResult) -> bool:
    """A sticky or stats probe that got some answers: the service is there."""
    if r.probe == ProbeName.STICKY_SESSION:
        return bool(r.detail.get("answered")) or r.outcome is Outcome.SESSION_UNKNOWN
    if r.probe == ProbeName.CONNECT_STATS:
        return bool(r.detail.get("successes"))
    return False


def _accepted(r: ProbeResult) -> bool:
    """The TCP connection was accepted (it stalled later, not at the door)."""
    return (
        r.timings.connect is not None
        or r.timings.tls is not None
        or (r.detail.get("stalled_during") not in {None, "start", "connect", "dns"})
    )


def _request_counts(rs: Sequence[ProbeResult]) -> tuple[int, int]:
    """(answers that were 502/503/504, requests seen), counting every sticky exchange."""
    upstream = requests = 0
    for r in rs:
        if r.probe == ProbeName.STICKY_SESSION:
            exchanges = list(r.detail.get("open_attempts") or []) + list(r.detail.get("answers") or [])
            requests += len(exchanges)
            upstream += sum(1 for e in exchanges if e.get("status") in {502, 503, 504})
        elif r.probe == ProbeName.CONNECT_STATS:
            outcomes = r.detail.get("outcomes") or {}
            requests += int(r.detail.get("attempts") or 0)
            upstream += int(outcomes.get("upstream_error", 0))
        else:
            requests += 1
            upstream += r.outcome is Outcome.UPSTREAM_ERROR
    return upstream, requests


def _origin(url: str) -> str:
    return url.split("://", 1)[-1].rstrip("/")


def _refs(rs: Iterable[ProbeResult], limit: int = 12) -> tuple[str, ...]:
    refs = list(dict.fromkeys(r.ref for r in rs))
    return tuple(refs[:limit])


def _pct(x: float) -> str:
    return f"{round(100 * x)} %"


# --- rules ----------------------------------------------------------------------------


def rule_all_backends_down(ev: Evidence) -> Finding | None:
    if not ev.targets:
        return None
    if not all(ev.is_down(t) for t in ev.targets):
        return None
    healths = {t: ev.health(t) for t in ev.targets}
    evidence = [r for h in healths.values() for r in h.results if r.outcome in FAILURES_OF_SERVICE][:12]
    statuses = sorted({r.status for r in evidence if r.status})
    if statuses:
        seen = (
            f"the proxies answered {', '.join(map(str, statuses))}: they are up, but no "
            "upstream behind them answers"
        )
    else:
        seen = (
            "every connection was refused or reset: nothing listens there (a stopped "
            "service, or a wrong host or port)"
        )
    return Finding(
        id=FindingId.ALL_BACKENDS_DOWN,
        severity=Severity.CRITICAL,
        title="Every backend is down",
        summary=(
            f"No target completed a single Socket.IO handshake; {seen}. The service is down "
            "for every client, not for one user."
        ),
        recommendation=(
            "Restart the backend processes and check that each listens on the address the "
            "balancer dials (Caddy's log says 'dial tcp ...: connection refused'). Look at what "
            "changed last (a deploy, a config, the host). Add active health checks to the "
            "reverse_proxy (health_uri /socket.io/?EIO=4&transport=polling) so a recovering fleet "
            "is detected, and alert on 5xx at the balancer."
        ),
        evidence=_refs(evidence),
        targets=tuple(ev.targets),
    )


def rule_backend_down(ev: Evidence) -> Finding | None:
    down, partial = [], []
    for t in ev.targets:
        h = ev.health(t)
        if ev.is_down(t):
            down.append((t, h))
        elif h.upstream_errors and h.worked:
            partial.append((t, h))
    if not down and not partial:
        return None
    parts = []
    if down:
        one = len(down) == 1
        parts.append(
            f"{ev.names(t for t, _ in down)} answer{'s' if one else ''} every request "
            f"with 502/503/504 or refuse{'s' if one else ''} connections"
        )
    for t, h in partial:
        parts.append(
            f"about {_pct(h.share_failing)} of requests through {ev.name(t)} fail the same way "
            f"({h.upstream_errors} of {h.requests})"
        )
    answered = sorted(
        {
            str(r.detail.get("backend") or r.headers.get("x-lab-backend"))
            for _, h in partial
            for r in h.results
            if r.detail.get("backend") or r.headers.get("x-lab-backend")
        }
    )
    if answered:
        parts.append(f"the backends that did answer behind the balancer: {', '.join(answered)}")
    # A sticky or stats probe can end OK and still have met 502s on the way: it is evidence too.
    evidence = [
        r
        for _, h in down + partial
        for r in h.results
        if r.outcome in FAILURES_OF_SERVICE or _request_counts([r])[0]
    ]
    names = ev.names(t for t, _ in down) or "the failing upstream"
    return Finding(
        id=FindingId.BACKEND_DOWN,
        severity=Severity.CRITICAL,
        title=f"Backend down: {names}" if down else "A backend behind the balancer is down",
        summary="; ".join(parts) + ". Clients routed there fail; the others connect, which is "
        "why only some users see errors.",
        recommendation=(
            f"Restart {names} and look first at its process and its log (is it running and "
            "listening on the upstream port?), then at Caddy's error log for 'dial tcp ... "
            "connection refused'. Until it is back, stop routing to it: add health checks to the "
            "reverse_proxy (active: health_uri /socket.io/?EIO=4&transport=polling, "
            "health_interval 5s; passive: fail_duration 30s) so Caddy skips a dead upstream."
        ),
        evidence=_refs(evidence),
        targets=tuple(t for t, _ in down + partial),
    )


def rule_backend_timeout(ev: Evidence) -> Finding | None:
    stalled = []
    for t in ev.targets:
        per_net = {n: ev.health(t, n) for n in ev.networks if ev.socket(t, n)}
        if per_net and all(h.health is Health.STALLED for h in per_net.values()):
            stalled.append((t, [r for h in per_net.values() for r in h.results]))
    if not stalled:
        return None
    names = ev.names(t for t, _ in stalled)
    phases = sorted(
        {
            str(r.detail.get("stalled_during"))
            for _, rs in stalled
            for r in rs
            if r.detail.get("stalled_during")
        }
    )
    return Finding(
        id=FindingId.BACKEND_TIMEOUT,
        severity=Severity.CRITICAL,
        title=f"Backend accepts connections but never answers: {names}",
        summary=(
            f"{names} accepted TCP (and TLS) and then sent nothing within the probes' deadlines, "
            f"on every network (stalled while: {', '.join(phases)}). Clients hang until their own "
            "timeout: the SDK's 'WebSocket connection timeout' after 10 s."
        ),
        recommendation=(
            f"Look at {names} first: a blocked event loop, an exhausted worker pool or a deadlock "
            "(take a stack dump: py-spy dump --pid, or node --inspect). In Caddy, bound the wait "
            "with `transport http { response_header_timeout 10s }` and passive health checks "
            "(fail_duration 30s) so the balancer stops sending clients to a stalled upstream."
        ),
        evidence=_refs(r for _, rs in stalled for r in rs),
        targets=tuple(t for t, _ in stalled),
    )


def _moved(r: ProbeResult) -> bool:
    """A follow-up on an open session did not reach the backend that opened it."""
    return r.outcome is Outcome.SESSION_UNKNOWN or int(r.detail.get("moved") or 0) > 0


def rule_sticky(ev: Evidence) -> Finding | None:
    missing, cookie_only = [], []
    for t in ev.targets:
        for n in ev.networks:
            with_cookies = ev.where(ProbeName.STICKY_SESSION, "cookies", t, n)
            without = ev.where(ProbeName.STICKY_SESSION, "no-cookies", t, n)
            lost_with = any(_moved(r) for r in with_cookies)
            lost_without = any(_moved(r) for r in without)
            if lost_with or (lost_without and not any(r.ok for r in with_cookies)):
                missing.append((t, with_cookies + without))
            elif lost_without and any(r.ok for r in with_cookies):
                cookie_only.append((t, with_cookies + without))
    if missing:
        ws_works = any(path_works(r) for r in ev.results if is_websocket(r))
        polling_works = any(path_works(r) for r in ev.results if is_polling(r))
        severity = Severity.CRITICAL if polling_works and not ws_works else Severity.WARNING
        names = ev.names(t for t, _ in missing)
        lost = sum(int(r.detail.get("moved") or 0) for _, rs in missing for r in rs)
        total = sum(int(r.detail.get("follow_ups") or 0) for _, rs in missing for r in rs)
        return Finding(
            id=FindingId.STICKY_SESSIONS_MISSING,
            severity=severity,
            title=f"No sticky sessions: polling sessions are lost ({names})",
            summary=(
                f"{lost} of {total} follow-up requests on an open Engine.IO polling session "
                f"did not reach the backend that opened it: another backend answered "
                "'Session ID unknown' / 'Invalid session', or a dead one 502. HTTP long-polling "
                "needs every request of a session on the same backend; WebSocket needs it for "
                "the upgrade."
                + (
                    " WebSocket does not work here, so polling is the only transport, and it breaks."
                    if severity is Severity.CRITICAL
                    else ""
                )
            ),
            recommendation=(
                "Make the balancer sticky. In Caddy: `lb_policy ip_hash` in the reverse_proxy "
                "block — behind a CDN use `lb_policy client_ip_hash` with `trusted_proxies` set "
                "to the CDN's ranges, since ip_hash would hash the CDN's addresses. "
                "`lb_policy cookie` is not enough: the SDK's Node client drops cookies. On the "
                "client side, `transports: ['websocket']` avoids polling sessions entirely."
            ),
            evidence=_refs(r for _, rs in missing for r in rs),
            targets=tuple(dict.fromkeys(t for t, _ in missing)),
        )
    if cookie_only:
        names = ev.names(t for t, _ in cookie_only)
        cookies = sorted(
            {
                c
                for _, rs in cookie_only
                for r in rs
                for c in r.detail.get("cookie_names") or []
                if isinstance(c, str)
            }
        )
        return Finding(
            id=FindingId.STICKY_SESSIONS_COOKIE_ONLY,
            severity=Severity.WARNING,
            title=f"Sticky only for clients that return the balancer's cookie ({names})",
            summary=(
                "A client that sends the balancer's cookie back stays on one backend; a client "
                "that drops it (the SDK's Node client, curl, most server-side clients) loses its "
                "polling session on a later request ('Session ID unknown')."
                + (f" Cookie: {', '.join(cookies)}." if cookies else "")
            ),
            recommendation=(
                "Use stickiness that needs nothing from the client: `lb_policy ip_hash` "
                "(`client_ip_hash` with `trusted_proxies` behind a CDN). `lb_policy cookie` works "
                "for browsers only. Node clients can also use `transports: ['websocket']`."
            ),
            evidence=_refs(r for _, rs in cookie_only for r in rs),
            targets=tuple(dict.fromkeys(t for t, _ in cookie_only)),
        )
    return None


def rule_plain_websocket_mismatch(ev: Evidence) -> Finding | None:
    hits = []
    for t in ev.targets:
        plain = [r for r in ev.where(ProbeName.WEBSOCKET_PLAIN, "as-given", t) if not r.ok]
        socketio = [
            r
            for r in ev.where(target=t)
            if path_works(r)
            and (r.probe == ProbeName.SOCKETIO_CONNECT or (r.probe, r.variant) in WEBSOCKET_VARIANTS)
        ]
        if plain and socketio:
            hits.append((t, plain + socketio[:2]))
    if not hits:
        return None
    statuses = sorted(
        {
            str(r.status)
            for _, rs in hits
            for r in rs
            if r.probe == ProbeName.WEBSOCKET_PLAIN and r.variant == "as-given" and r.status
        }
    )
    return Finding(
        id=FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
        severity=Severity.INFO,
        title="Plain WebSocket fails where Socket.IO works: expected, not an outage",
        summary=(
            f"A plain WebSocket client (what wscat does) at the URL as given gets "
            f"{'/'.join(statuses) or 'no upgrade'}, while Socket.IO at /socket.io/ connects on the "
            "same target. The server speaks Socket.IO (Engine.IO v4): a plain WebSocket client "
            "is the wrong tool, not evidence of a fault."
        ),
        recommendation=(
            "Test with a Socket.IO client (`kiloscribe-lab probe URL`, or socket.io-client with "
            "the SDK's options); use wscat only on "
            "wss://HOST/socket.io/?EIO=4&transport=websocket, where the server's first frame is "
            "its Engine.IO open packet 0{...}."
        ),
        evidence=_refs(r for _, rs in hits for r in rs),
        targets=tuple(t for t, _ in hits),
    )


def rule_root_redirect(ev: Evidence) -> Finding | None:
    hits = [
        r
        for r in ev.results
        if r.probe in {"http_upgrade", ProbeName.WEBSOCKET_PLAIN}
        and r.variant != "socket.io"
        and r.outcome is Outcome.REDIRECT
    ]
    if not hits:
        return None
    locations = sorted({str(r.headers.get("location")) for r in hits if r.headers.get("location")})
    statuses = sorted({str(r.status) for r in hits if r.status})
    return Finding(
        id=FindingId.ROOT_REDIRECT,
        severity=Severity.INFO,
        title=f"/ answers {'/'.join(statuses)}: a redirect, not a failure",
        summary=(
            f"The root path redirects ({'/'.join(statuses)} to {', '.join(locations) or '?'}). "
            "That is where the seed's curl and wscat went; the socket lives at /socket.io/, which "
            "the other probes test directly."
        ),
        recommendation="Nothing to fix. Point upgrade tests at /socket.io/, not at /.",
        evidence=_refs(hits),
        targets=tuple(dict.fromkeys(r.target for r in hits)),
    )


def _auth_results(ev: Evidence, credential: str) -> list[ProbeResult]:
    return [r for r in ev.where(ProbeName.SOCKETIO_CONNECT) if r.variant.endswith(":" + credential)] + [
        r for r in ev.where(ProbeName.SDK_REPLAY) if r.variant.endswith(":connect-" + credential)
    ]


def rule_auth_path_healthy(ev: Evidence) -> Finding | None:
    refused = [r for r in _auth_results(ev, "invalid") if r.outcome is Outcome.AUTH_REJECTED]
    if not refused:
        return None
    messages = sorted({str(r.error) for r in refused if r.error})
    return Finding(
        id=FindingId.AUTH_PATH_HEALTHY,
        severity=Severity.INFO,
        title="The auth path works: an invalid key is refused with the server's own message",
        summary=(
            f"A deliberately invalid key was refused with {', '.join(repr(m) for m in messages)} "
            "through the Socket.IO CONNECT_ERROR. The request crossed CDN, balancer and backend "
            "and the application answered: the path from client to application works."
        ),
        recommendation=(
            "Nothing to fix. 'WebSocket connection failed: Invalid API key' from the SDK with a "
            "wrong key is expected behaviour, not an outage."
        ),
        evidence=_refs(refused),
        targets=tuple(dict.fromkeys(r.target for r in refused)),
    )


def rule_auth_rejected(ev: Evidence) -> Finding | None:
    refused = [r for r in _auth_results(ev, "valid") if r.outcome is Outcome.AUTH_REJECTED]
    if ev.api_key_env:  # without a configured key, a 401 from discovery is not "the key refused"
        refused += [r for r in ev.where(ProbeName.DISCOVERY) if r.outcome is Outcome.AUTH_REJECTED]
    if not refused:
        return None
    name = f"${ev.api_key_env}" if ev.api_key_env else "the configured key"
    messages = sorted({str(r.error) for r in refused if r.error})
    return Finding(
        id=FindingId.AUTH_REJECTED,
        severity=Severity.CRITICAL,
        title=f"The configured API key ({name}) is refused",
        summary=(
            f"The key in {name} was refused with {', '.join(repr(m) for m in messages)} on "
            f"{len({r.target for r in refused})} target(s). The server answered in its own words, "
            "so the network path works; the key, or the server's key check, is the fault."
        ),
        recommendation=(
            f"Check that {name} holds a key for this environment (testnet vs mainnet) that is "
            "not revoked. If a known-good key is refused too, the servers' key store or auth "
            "backend is broken: check its logs and configuration on every backend."
        ),
        evidence=_refs(refused),
        targets=tuple(dict.fromkeys(r.target for r in refused)),
    )


def _websocket_refused_on(ev: Evidence, target: str, network: str) -> list[ProbeResult]:
    """The target's WebSocket probes on ``network`` when every one was refused on the way
    (BLOCKED) while its polling got through there; else []. A target whose balancer also
    fails some requests (PARTIAL) still counts: the refusal is about the transport."""
    rs = ev.socket(target, network)
    ws = [r for r in rs if is_websocket(r)]
    # A WebSocket probe that failed before its upgrade (a 502 from a dead backend behind a
    # round robin, a polling session lost) says nothing about the upgrade: it may sit
    # beside the refusals, but nothing may have upgraded.
    before_upgrade = FAILURES_OF_SERVICE | {Outcome.SESSION_UNKNOWN}
    blocked = [r for r in ws if r.outcome is Outcome.BLOCKED]
    if not blocked or not all(r.outcome is Outcome.BLOCKED or r.outcome in before_upgrade for r in ws):
        return []
    if not any(
        path_works(r) or _partly_worked(r) for r in rs if is_polling(r) or r.probe == ProbeName.STICKY_SESSION
    ):
        return []
    return blocked


def _websocket_works_on(ev: Evidence, target: str, network: str) -> bool:
    return any(path_works(r) for r in ev.socket(target, network) if is_websocket(r))


def rule_websocket_blocked(ev: Evidence) -> Finding | None:
    at_edge: list[tuple[str, str, list[ProbeResult]]] = []
    on_network: list[tuple[str, str, list[ProbeResult]]] = []
    for t in ev.targets:
        for n in ev.networks:
            others = [o for o in ev.networks if o != n]
            refused = _websocket_refused_on(ev, t, n)
            if refused and any(_websocket_works_on(ev, t, o) for o in others):
                # The same target upgrades from another network: what refuses it is on this one.
                on_network.append((t, n, refused))
                continue
            h = ev.health(t, n)
            if h.health is not Health.BLOCKED:
                continue
            elsewhere_ok = any(ev.health(t, other).health is Health.WORKS for other in others)
            blocked = [r for r in h.results if r.outcome is Outcome.BLOCKED]
            (on_network if elsewhere_ok else at_edge).append((t, n, blocked))
    if not at_edge and not on_network:
        return None
    where = []
    cdn = any(is_cdn(r) for _, _, rs in at_edge for r in rs)
    if at_edge:
        where.append(
            f"at {'the CDN edge' if cdn else 'a proxy in front of'} {ev.names(t for t, _, _ in at_edge)}"
        )
    networks = list(dict.fromkeys(n for _, n, _ in on_network))
    if on_network:
        where.append("only on network(s) " + ", ".join(networks))
    statuses = sorted({str(r.status) for _, _, rs in at_edge + on_network for r in rs if r.status})
    summary = (
        f"WebSocket upgrades are refused ({'/'.join(statuses) or 'no 101'}) "
        + "; ".join(where)
        + ", while long-polling to the same target works. Clients that "
        "insist on WebSocket (the SDK's default) fail; polling clients connect."
    )
    if on_network:
        working = [o for o in ev.networks if o not in networks]
        refusers = sorted(
            {str(r.headers["via"]) for _, _, rs in on_network for r in rs if r.headers.get("via")}
        )
        bodies = sorted(
            {
                str(r.detail["body"]).strip()[:80]
                for _, _, rs in on_network
                for r in rs
                if r.detail.get("body")
            }
        )
        summary += (
            f" The same targets upgrade to WebSocket from {', '.join(working) or 'another network'}: "
            f"something on {', '.join(networks)} (a proxy or firewall) refuses the upgrade, not the service."
            + (f" The refusal came via {'; '.join(refusers)}." if refusers else "")
            + (f" It said: {' / '.join(repr(b) for b in bodies[:2])}." if bodies else "")
        )
    recommendation = []
    if at_edge:
        recommendation.append(
            "Turn on WebSocket proxying at the edge (Cloudflare: Network → WebSockets on)"
            if cdn
            else "Let the proxy pass Upgrade/Connection headers to the origin"
        )
    if on_network:
        recommendation.append(
            f"on {', '.join(networks)}, ask the network's administrators to let WebSocket "
            "(Upgrade: websocket) through to this host, or to exempt it from TLS inspection"
        )
    recommendation.append(
        ("meanwhile clients need" if at_edge or on_network else "clients need")
        + " a working fallback: socket.io-client `transports: "
        "['websocket', 'polling']` with `tryAllTransports: true` (v4.8+), or "
        "`transports: ['polling']` for affected users; serve WSS on 443, which proxies pass more "
        "often; note SDK 2.0.9 does not fall back by itself (connectionMode 'auto' does)"
    )
    return Finding(
        id=FindingId.WEBSOCKET_BLOCKED,
        severity=Severity.CRITICAL if at_edge else Severity.WARNING,
        title="WebSocket is blocked " + "; ".join(where),
        summary=summary,
        recommendation="; ".join(recommendation) + ".",
        evidence=_refs(r for _, _, rs in at_edge + on_network for r in rs),
        targets=tuple(dict.fromkeys(t for t, _, _ in at_edge + on_network)),
    )


def _round_trip_ms(ev: Evidence, network: str) -> float | None:
    """A network's round trip as the probes measured it: the fastest TLS handshake (one round
    trip in TLS 1.3) of the raw-stream probes. The fastest, because probes run concurrently
    and waiting for the CPU only ever adds to a handshake."""
    handshakes = [r.timings.tls for r in ev.where(network=network) if r.timings.tls is not None]
    return min(handshakes) if handshakes else None


def rule_network_timeouts(ev: Evidence) -> Finding | None:
    if len(ev.networks) < 2:
        return None
    hits = []
    for t in ev.targets:
        for n in ev.networks:
            timeouts = [r for r in ev.socket(t, n) if r.outcome is Outcome.TIMEOUT]
            fine_elsewhere = any(
                ev.health(t, other).health in {Health.WORKS, Health.PARTIAL}
                and not any(r.outcome is Outcome.TIMEOUT for r in ev.socket(t, other))
                for other in ev.networks
                if other != n
            )
            if timeouts and fine_elsewhere:
                hits.append((t, n, timeouts))
    if not hits:
        return None
    slow = list(dict.fromkeys(n for _, n, _ in hits))
    nets = ", ".join(slow)
    fine = [n for n in ev.networks if n not in slow]
    phases = sorted(
        {str(r.detail["stalled_during"]) for _, _, rs in hits for r in rs if r.detail.get("stalled_during")}
    )
    measured = []
    for n in [*slow, *fine]:
        rtt = _round_trip_ms(ev, n)
        if rtt is not None:
            measured.append(f"{rtt:.0f} ms on {n}")
    deadlines = [m for _, _, rs in hits for r in rs if r.error and (m := _deadline_of(r.error)) is not None]
    return Finding(
        id=FindingId.NETWORK_TIMEOUTS,
        severity=Severity.WARNING,
        title=f"Timeouts on network(s) {nets} only: the client's network, not the service",
        summary=(
            f"{sum(len(rs) for _, _, rs in hits)} probes of {ev.names(t for t, _, _ in hits)} timed out "
            f"on {nets}"
            + (f" (deadline {max(deadlines):g} s)" if deadlines else "")
            + f" while the same targets answered in time on {', '.join(fine) or 'other networks'}."
            + (f" They were waiting in: {', '.join(phases)}." if phases else "")
            + (f" Round trip (fastest TLS handshake): {', '.join(measured)}." if measured else "")
            + " The service is up; the path from these networks is slow or drops traffic."
        ),
        recommendation=(
            "Ask the affected user for their network (VPN, corporate proxy, mobile); raise client "
            "timeouts above what the measured round trips need (a Socket.IO connect over TLS takes "
            "about 4 round trips; SDK 2.0.9 gives its WebSocket detection 3 s); prefer "
            "`transports: ['polling']` or `tryAllTransports: true` where WebSocket stalls; compare "
            "with a mobile hotspot."
        ),
        evidence=_refs(r for _, _, rs in hits for r in rs),
        targets=tuple(dict.fromkeys(t for t, _, _ in hits)),
    )


def _deadline_of(error: str) -> float | None:
    """The deadline a timeout result names: 'no answer within 3 s (while ...)' -> 3.0."""
    marker = "no answer within "
    if marker not in error:
        return None
    number = error.split(marker, 1)[1].split(" ", 1)[0]
    try:
        return float(number)
    except ValueError:
        return None


def rule_not_socketio(ev: Evidence) -> Finding | None:
    hits = []
    for t in ev.targets:
        handshakes = ev.where(ProbeName.ENGINEIO_HANDSHAKE, target=t)
        alien = [
            r for r in handshakes if r.detail.get("not_engineio") and r.outcome is Outcome.PROTOCOL_MISMATCH
        ]
        if alien and not any(path_works(r) for r in ev.socket(t)):
            hits.append((t, alien))
    if not hits:
        return None
    what = sorted({str(r.detail["not_engineio"]) for _, rs in hits for r in rs})
    return Finding(
        id=FindingId.NOT_SOCKETIO,
        severity=Severity.CRITICAL,
        title="The endpoint does not speak Engine.IO / Socket.IO",
        summary=(
            f"GET /socket.io/?EIO=4&transport=polling answered with {'; '.join(what)}: not an "
            "Engine.IO handshake. Whatever serves this URL is not the Socket.IO server."
        ),
        recommendation=(
            "Check the URL (host and path: the SDK uses /socket.io/), and the proxy's routing: a "
            "catch-all site, a maintenance page or a wrong upstream answers instead of the backend."
        ),
        evidence=_refs(r for _, rs in hits for r in rs),
        targets=tuple(t for t, _ in hits),
    )


def rule_engineio_version(ev: Evidence) -> Finding | None:
    hits = [
        r
        for r in ev.where(ProbeName.ENGINEIO_HANDSHAKE)
        if r.detail.get("engineio_version") == 3 or (r.detail.get("engineio_error") or {}).get("code") == 5
    ]
    if not hits:
        return None
    return Finding(
        id=FindingId.ENGINEIO_VERSION_MISMATCH,
        severity=Severity.CRITICAL,
        title="Engine.IO protocol version mismatch",
        summary=(
            "The server does not speak Engine.IO v4, the protocol of socket.io-client v4 that "
            "SDK 2.0.9 bundles: it answers in v3 framing or refuses EIO=4. Every SDK connect fails."
        ),
        recommendation=(
            "Upgrade the server to Socket.IO v4 (Engine.IO v4), or enable `allowEIO3` on a v4 "
            "server for old clients; keep client and server majors aligned."
        ),
        evidence=_refs(hits),
        targets=tuple(dict.fromkeys(r.target for r in hits)),
    )


def rule_discovery(ev: Evidence) -> Finding | None:
    found = ev.where(ProbeName.DISCOVERY)
    if not found:
        return None
    problems: list[str] = []
    for r in found:
        if r.outcome is Outcome.AUTH_REJECTED:
            if not ev.api_key_env:
                problems.append("the API refused the call without a key (pass --api-key-env NAME)")
            continue  # with a key configured, auth-rejected says it
        if not r.ok:
            problems.append(f"the discovery call failed: {r.error or r.outcome.value}")
        problems += [str(p) for p in r.detail.get("problems") or []]
        chosen = r.detail.get("chosen")
        # wss://host and https://host are one server: compare without the scheme.
        same = [t for t in ev.targets if isinstance(chosen, str) and _origin(t) == _origin(chosen)]
        for target in same:
            h = ev.health(target)
            # BLOCKED is websocket-blocked's finding, on the same evidence.
            if h.health in {Health.DOWN, Health.STALLED, Health.OTHER}:
                problems.append(f"the server the SDK would choose ({chosen}) is {h.health.value}")
    if not problems:
        return None
    return Finding(
        id=FindingId.DISCOVERY_PROBLEM,
        severity=Severity.WARNING,
        title="Discovery points clients at trouble",
        summary="; ".join(problems) + ".",
        recommendation=(
            "Fix GET /inscriptions/websocket-servers: list only servers that answer, mark the "
            "others inactive, and make `recommended` one of the active ones. The SDK trusts "
            "`recommended` first, then the first active server."
        ),
        evidence=_refs(found),
        targets=tuple(dict.fromkeys(r.target for r in found)),
    )


def rule_dns(ev: Evidence) -> Finding | None:
    """Names that do not resolve: nothing else can be said about those targets."""
    hits = []
    for t in ev.targets:
        rs = ev.where(target=t)
        if rs and all(r.outcome is Outcome.DNS_ERROR for r in rs):
            hits.append((t, rs))
    if not hits:
        return None
    errors = sorted({str(r.error) for _, rs in hits for r in rs if r.error})
    return Finding(
        id=FindingId.DNS_PROBLEM,
        severity=Severity.CRITICAL,
        title=f"The name does not resolve: {ev.names(t for t, _ in hits)}",
        summary=(
            f"Every probe of {ev.names(t for t, _ in hits)} failed to resolve the host name "
            f"({'; '.join(errors[:2])}). No client can reach it by that name, from this network."
        ),
        recommendation=(
            "Check the name for typos and the DNS records (`dig +short HOST`); compare with "
            "another resolver or network; behind a CDN, check the zone's proxied records."
        ),
        evidence=_refs(r for _, rs in hits for r in rs),
        targets=tuple(t for t, _ in hits),
    )


def rule_tls(ev: Evidence) -> Finding | None:
    hits = [r for r in ev.results if r.outcome is Outcome.TLS_ERROR]
    if not hits:
        return None
    errors = sorted({str(r.error) for r in hits if r.error})
    return Finding(
        id=FindingId.TLS_PROBLEM,
        severity=Severity.CRITICAL,
        title="TLS fails",
        summary=f"The TLS handshake failed: {'; '.join(errors[:3])}. Clients cannot connect at all.",
        recommendation=(
            "Check the certificate chain, its names (SAN) and expiry with `openssl s_client "
            "-connect HOST:443 -servername HOST`; for a private CA, pass it with --ca-bundle."
        ),
        evidence=_refs(hits),
        targets=tuple(dict.fromkeys(r.target for r in hits)),
    )


# --- rules from the SDK replay (probe ProbeName.SDK_REPLAY, kiloscribe_lab/sdk) ----------------------

# SDK releases whose inscribeAndExecute logs "falling back to HTTP" after a WebSocket failure
# and then re-throws (contract: no HTTP fallback happens).
SDK_NO_FALLBACK_VERSIONS = frozenset({"2.0.9"})
_SDK_WS_SHOWN = {"flag": "--experimental-websocket", "ws-shim": "a `ws` shim", "native": "a native WebSocket"}


def _sdk_step(r: ProbeResult) -> tuple[str, str]:
    """("node-plain", "connect-valid") from variant "node-plain:connect-valid"."""
    runtime, _, step = r.variant.partition(":")
    return runtime, step


def _sdk_str(r: ProbeResult, key: str) -> str:
    value = r.detail.get(key)
    return value if isinstance(value, str) else ""


def _sdk_s(r: ProbeResult) -> str:
    total = r.timings.total
    if total is None:
        return "?"
    return f"{total:.0f} ms" if total < 1000 else f"{total / 1000:.1f} s"


def rule_sdk_runtime_missing_websocket(ev: Evidence) -> Finding | None:
    timed_out: list[ProbeResult] = []
    reached: list[ProbeResult] = []
    for t in ev.targets:
        replays = ev.where(ProbeName.SDK_REPLAY, target=t)
        for r in replays:
            runtime, step = _sdk_step(r)
            if runtime != "node-plain" or not step.startswith("connect-") or r.outcome is not Outcome.TIMEOUT:
                continue
            if _sdk_str(r, "websocket_global") not in {"", "none"}:
                continue  # it had a WebSocket and still timed out: not this cause
            with_ws = [
                o
                for o in replays
                if _sdk_step(o) == ("node-websocket", step)
                and o.outcome in {Outcome.OK, Outcome.AUTH_REJECTED}
            ]
            if with_ws:
                timed_out.append(r)
                reached += with_ws
    if not timed_out:
        return None
    nodes = ", ".join(sorted({_sdk_str(r, "node_version") or "?" for r in timed_out}))
    plain_msgs = sorted({str(r.error) for r in timed_out if r.error})
    providers = sorted(
        {_SDK_WS_SHOWN.get(_sdk_str(r, "websocket_global"), "a WebSocket global") for r in reached}
    )
    answers = []
    for r in reached:
        said = "connected" if r.outcome is Outcome.OK else f"was refused with {r.error!r}"
        answers.append(f"{_sdk_step(r)[1]} {said} in {_sdk_s(r)}")
    detect = [
        r
        for r in ev.where(ProbeName.SDK_REPLAY)
        if _sdk_step(r) == ("node-plain", "detect")
        and r.outcome is Outcome.TIMEOUT
        and r.target in {x.target for x in timed_out}
    ]
    detect_note = (
        " detectBestConnection (connectionMode 'auto') gave up at its 3 s timer there too." if detect else ""
    )
    return Finding(
        id=FindingId.SDK_RUNTIME_MISSING_WEBSOCKET,
        severity=Severity.CRITICAL,
        title=f"The SDK cannot open a WebSocket in the user's runtime (Node {nodes}: no global WebSocket)",
        summary=(
            f"In Node {nodes} as the user runs it, with no global WebSocket, every connectWebSocket "
            f"ended with {', '.join(repr(m) for m in plain_msgs)} after {_sdk_s(timed_out[0])} (the SDK's "
            "own 10 s timer); the transport never started, so no request reached the server."
            f"{detect_note} The same SDK against the same endpoint, once {' / '.join(providers)} "
            f"provided a WebSocket global: {'; '.join(answers)}. The fault is in the client's "
            "runtime, not in the service: it explains one user timing out while others connect."
        ),
        recommendation=(
            "Run the SDK on Node 22 or newer (a global WebSocket), or start Node 20 with "
            "`--experimental-websocket`, or install a `ws` shim before the SDK is imported: "
            "`import WebSocket from 'ws'; globalThis.WebSocket = WebSocket;` (SDK 2.0.9 bundles "
            "socket.io-client's browser build, which reads the global when it loads). Forcing "
            "`transports: ['polling']` cannot help in Node: that browser build's polling needs "
            "XMLHttpRequest, which Node does not have (and the SDK does not expose its transports). "
            "connectionMode 'auto' sidesteps it: its 3 s detection fails and the REST path is used."
        ),
        evidence=_refs([*timed_out, *reached, *detect]),
        targets=tuple(dict.fromkeys(r.target for r in timed_out)),
    )


def _sdk_websocket_failure(r: ProbeResult) -> bool:
    """A failure of the SDK's WebSocket path that HTTP would not share (a refused key is not)."""
    _, step = _sdk_step(r)
    if step not in {"connect-valid", "connect-invalid", "start-inscription"}:
        return False
    if r.outcome in {Outcome.OK, Outcome.AUTH_REJECTED}:
        return False
    return not (step == "start-inscription" and r.outcome is Outcome.HTTP_ERROR)  # the server's answer


def rule_sdk_fallback_not_effective(ev: Evidence) -> Finding | None:
    failures = [
        r
        for r in ev.where(ProbeName.SDK_REPLAY)
        if _sdk_str(r, "sdk_version") in SDK_NO_FALLBACK_VERSIONS and _sdk_websocket_failure(r)
    ]
    if not failures:
        return None
    versions = ", ".join(sorted({_sdk_str(r, "sdk_version") for r in failures}))
    seen = sorted({f"{r.error or r.outcome.value} ({_sdk_step(r)[0]})" for r in failures})
    return Finding(
        id=FindingId.SDK_FALLBACK_NOT_EFFECTIVE,
        severity=Severity.WARNING,
        title=f"SDK {versions} does not fall back to HTTP when its WebSocket fails",
        summary=(
            f"The SDK's WebSocket path failed here: {'; '.join(seen)}. In SDK {versions}, "
            "inscribeAndExecute then logs 'WebSocket inscription failed, falling back to HTTP:' and "
            "re-throws the error: no HTTP request follows, so the user's inscription fails although "
            "the REST API may work. The default connectionMode is 'websocket'; only 'auto' reaches "
            "the REST path, and only when its 3 s detectBestConnection fails."
        ),
        recommendation=(
            "Construct the SDK with `connectionMode: 'auto'` (a failed 3 s detection then uses REST), "
            "or catch the error of inscribeAndExecute and call the REST path yourself: "
            "`startInscription(request)`, then execute the returned transactionBytes. 'auto' does not "
            "help when detection succeeds and the later connect fails: keep the catch either way."
        ),
        evidence=_refs(failures),
        targets=tuple(dict.fromkeys(r.target for r in failures)),
    )


Rule = Callable[[Evidence], Finding | None]

RULES: tuple[Rule, ...] = (
    rule_all_backends_down,
    rule_backend_down,
    rule_backend_timeout,
    rule_tls,
    rule_dns,
    rule_not_socketio,
    rule_engineio_version,
    rule_auth_rejected,
    rule_websocket_blocked,
    rule_network_timeouts,
    rule_sticky,
    rule_discovery,
    rule_plain_websocket_mismatch,
    rule_root_redirect,
    rule_auth_path_healthy,
    rule_sdk_runtime_missing_websocket,
    rule_sdk_fallback_not_effective,
)

# A root cause on the left explains the findings on the right: drop them.
SUPERSEDES: dict[str, frozenset[str]] = {
    FindingId.ALL_BACKENDS_DOWN: frozenset(
        {
            FindingId.BACKEND_DOWN,
            FindingId.STICKY_SESSIONS_MISSING,
            FindingId.STICKY_SESSIONS_COOKIE_ONLY,
            FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
            FindingId.AUTH_PATH_HEALTHY,
            FindingId.DISCOVERY_PROBLEM,
            FindingId.ROOT_REDIRECT,
        }
    ),
    FindingId.AUTH_REJECTED: frozenset({"auth-path-healthy"}),
    # Discovery pointing at a server that is down or stalls is the same fault, seen earlier.
    FindingId.BACKEND_DOWN: frozenset({"discovery-problem"}),
    FindingId.BACKEND_TIMEOUT: frozenset({"discovery-problem"}),
}


def diagnose(results: Iterable[ProbeResult], api_key_env: str | None = None) -> list[Finding]:
    """Every finding the evidence supports, most severe first."""
    ev = Evidence.of(results, api_key_env)
    findings = [f for f in (rule(ev) for rule in RULES) if f is not None]
    present = {f.id for f in findings}
    dropped = set().union(*(SUPERSEDES.get(i, frozenset()) for i in present))
    kept = [f for f in findings if f.id not in dropped]
    return sorted(kept, key=lambda f: -f.severity.rank)


# --- verdicts ---------------------------------------------------------------------------


class Verdict(enum.StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class TargetVerdict:
    target: str
    verdict: Verdict
    sentence: str
    label: str | None = None

    def to_json(self) -> dict[str, str | None]:
        return {
            "kind": "verdict",
            "target": self.target,
            "label": self.label,
            "verdict": self.verdict.value,
            "sentence": self.sentence,
        }


def verdicts(results: Iterable[ProbeResult]) -> list[TargetVerdict]:
    ev = Evidence.of(results)
    out = []
    for t in ev.targets:
        h = ev.health(t)
        valid = [
            r for r in h.results if r.probe == ProbeName.SOCKETIO_CONNECT and r.variant.endswith(":valid")
        ]
        if valid and all(r.outcome is Outcome.AUTH_REJECTED for r in valid):
            out.append(
                TargetVerdict(t, Verdict.DOWN, "Down for its clients: the configured API key is refused.")
            )
        elif h.health is Health.WORKS:
            out.append(TargetVerdict(t, Verdict.HEALTHY, "Socket.IO connects over every tried transport."))
        elif h.health in {Health.PARTIAL, Health.BLOCKED}:
            failing = sorted(
                {r.outcome.value for r in h.results if not path_works(r) and not _partly_worked(r)}
                | {"session_unknown" for r in h.results if r.outcome is Outcome.SESSION_UNKNOWN}
            )
            out.append(
                TargetVerdict(
                    t,
                    Verdict.DEGRADED,
                    f"{h.worked} Socket.IO checks worked, {h.failed} failed ({', '.join(failing)}).",
                )
            )
        elif h.health is Health.UNKNOWN:
            out.append(TargetVerdict(t, Verdict.DEGRADED, "No Socket.IO evidence was gathered."))
        else:
            why = {
                Health.DOWN: "every request failed with 502/503/504, a refusal or a reset",
                Health.STALLED: "it accepts connections and never answers",
                Health.OTHER: "no Socket.IO handshake completed",
            }[h.health]
            out.append(TargetVerdict(t, Verdict.DOWN, f"Down: {why}."))
    return [TargetVerdict(v.target, v.verdict, v.sentence, ev.labels.get(v.target)) for v in out]


def overall(findings: Sequence[Finding], target_verdicts: Sequence[TargetVerdict]) -> tuple[str, str]:
    """One status for the investigation, with its sentence."""
    critical = [f for f in findings if f.severity is Severity.CRITICAL]
    warnings = [f for f in findings if f.severity is Severity.WARNING]
    down = [v for v in target_verdicts if v.verdict is Verdict.DOWN]
    if target_verdicts and len(down) == len(target_verdicts):
        causes = "; ".join(f.title for f in critical)
        return "down", "Every target is down" + (f": {causes}." if causes else ".")
    if critical:
        return "critical", f"{len(critical)} critical finding(s): " + "; ".join(
            f.title for f in critical
        ) + "."
    if warnings or down or any(v.verdict is Verdict.DEGRADED for v in target_verdicts):
        if warnings:
            return "degraded", "The service works for some clients: " + "; ".join(
                f.title for f in warnings
            ) + "."
        return "degraded", "Some targets are degraded or down: see the verdicts."
    return "healthy", "Socket.IO works on every target; nothing needs fixing."
