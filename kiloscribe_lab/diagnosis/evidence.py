"""Evidence: one investigation's ProbeResults, indexed for the rules, and what outcomes mean.

What the probes' outcomes mean here, in one place:

* *expected* failures are not faults: a plain WebSocket at ``/`` (the server speaks
  Socket.IO), a redirect at ``/``, a refused invalid or missing key;
* the *Socket.IO path works* on a target when a Socket.IO connect succeeds or is refused
  with the server's own message — either way client and application talked.

Results may come from files (a report run, a hand-edited JSONL): ``Evidence.of`` drops a
detail field of the wrong type at this boundary, so no rule ever crashes on foreign evidence.

Where a probe ran is a *place*: its network profile and its vantage (the machine: ``local``, or
a Dask worker). The rules compare places as they once compared networks, so a fault seen from
some places only is named by what they share: "on network(s) mobile", "from vantage
corp-office" (``Evidence.scope``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from kiloscribe_lab.diagnosis.fingerprint import Fingerprint, fingerprint
from kiloscribe_lab.names import (
    CorsCheck,
    Credential,
    FlowStep,
    Outcome,
    PlainPath,
    ProbeName,
    Transport,
    VantageName,
    parse_connect_variant,
)
from kiloscribe_lab.outcomes import Refusal, refusal
from kiloscribe_lab.results import ProbeResult, replace

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
WEBSOCKET_VARIANTS = {(ProbeName.WEBSOCKET_PLAIN, PlainPath.SOCKETIO), (ProbeName.ENGINEIO_UPGRADE, "")}
# Probes whose variant names a transport (``websocket:valid``, or ``polling`` for the stats).
_TRANSPORT_PROBES = {ProbeName.SOCKETIO_CONNECT, ProbeName.CONNECT_STATS}


def transport_of(r: ProbeResult) -> Transport | None:
    """The transport a connect or stats probe used; None for every other probe."""
    return parse_connect_variant(r.variant)[0] if r.probe in _TRANSPORT_PROBES else None


def credential_of(r: ProbeResult) -> Credential | None:
    """The key a Socket.IO connect sent; None for every other probe."""
    return parse_connect_variant(r.variant)[1] if r.probe == ProbeName.SOCKETIO_CONNECT else None


def is_websocket(r: ProbeResult) -> bool:
    return (
        (r.probe, r.variant) in WEBSOCKET_VARIANTS
        or transport_of(r) is Transport.WEBSOCKET
        or r.probe == ProbeName.SDK_FLOW
    )


def is_polling(r: ProbeResult) -> bool:
    return r.probe == ProbeName.ENGINEIO_HANDSHAKE or transport_of(r) is Transport.POLLING


def raw_websocket(r: ProbeResult) -> bool:
    """A WebSocket request at the Engine.IO path whose answer (status, body) the probe kept:
    websocket_plain at /socket.io/, engineio_upgrade once it asked to upgrade, cors's."""
    return (
        (r.probe == ProbeName.WEBSOCKET_PLAIN and r.variant == PlainPath.SOCKETIO)
        or (r.probe == ProbeName.ENGINEIO_UPGRADE and "websocket" in r.detail)
        or (r.probe == ProbeName.CORS and r.variant == CorsCheck.WEBSOCKET)
    )


def refusal_of(r: ProbeResult) -> Refusal | None:
    """Why an answer on the Engine.IO path refused the request (outcomes.refusal), read from
    what the probe kept: status, headers and the body's first bytes."""
    body = r.detail.get("body")
    text = body if isinstance(body, str) else ""
    websocket = raw_websocket(r)
    # engineio_upgrade's WebSocket carries its polling session's sid; the others carry none.
    sid_bound = websocket and r.probe == ProbeName.ENGINEIO_UPGRADE
    return refusal(r.status, text, r.headers, websocket=websocket, sid_bound=sid_bound)


def reached_engineio(r: ProbeResult) -> bool:
    """A polling request that was answered by the Engine.IO server itself, well or not: the
    HTTP path to it works (a session, an Engine.IO error in its own words, a lost session)."""
    if path_works(r) or partly_worked(r) or r.outcome is Outcome.SESSION_UNKNOWN:
        return True
    return r.probe == ProbeName.ENGINEIO_HANDSHAKE and (
        r.detail.get("engineio_error") is not None or r.detail.get("engineio_version") is not None
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
        and credential_of(r) is not Credential.VALID
    )


def is_cdn(r: ProbeResult) -> bool:
    return "cf-ray" in r.headers or r.headers.get("server", "").lower() == "cloudflare"


def partly_worked(r: ProbeResult) -> bool:
    """A sticky or stats probe that got some answers: the service is there."""
    if r.probe == ProbeName.STICKY_SESSION:
        return bool(r.detail.get("answered")) or r.outcome is Outcome.SESSION_UNKNOWN
    if r.probe == ProbeName.CONNECT_STATS:
        return bool(r.detail.get("successes"))
    return False


def accepted(r: ProbeResult) -> bool:
    """The TCP connection was accepted (it stalled later, not at the door)."""
    return (
        r.timings.connect is not None
        or r.timings.tls is not None
        or (r.detail.get("stalled_during") not in {None, "start", "connect", "dns"})
    )


def request_counts(rs: Sequence[ProbeResult]) -> tuple[int, int]:
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


def refs(rs: Iterable[ProbeResult]) -> tuple[str, ...]:
    """A finding's evidence: the results' refs, each once, all of them (a report shows a few and
    counts the rest; a cap here would hide how much evidence there is)."""
    return tuple(dict.fromkeys(r.ref for r in rs))


def targets_of(rs: Iterable[ProbeResult]) -> tuple[str, ...]:
    """The results' targets, each once, in order."""
    return tuple(dict.fromkeys(r.target for r in rs))


def pct(x: float) -> str:
    return f"{round(100 * x)} %"


# --- the boundary ------------------------------------------------------------------------

# The detail fields the rules read, and their types.
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
    "tls": dict,
    "body": str,
    "origin": str,
    "allow_origin": str,
    "why": str,
    "failed_step": str,
    "websocket": str,
    "redirect_refused": str,
    "allowed": bool,
    "ack_wait_s": (int, float),
    "outcomes": dict,
    "problems": list,
    "answers": list,
    "open_attempts": list,
    "cookie_names": list,
    "header_names": list,
    "exchanges": list,
    "servers": list,
    # hold, payload (--deep)
    "end": dict,
    "pings": list,
    "pingInterval": int,
    "pingTimeout": int,
    "overdue_ms": (int, float),
    "cap": int,
    "file_size": int,
    "largest_passed": int,
    "smallest_failed": int,
    "failure": dict,
    "exact": bool,
    "file_passes": bool,
    "redirects": list,
}
_LIST_OF_DICTS = {"answers", "open_attempts", "servers", "exchanges", "pings", "redirects"}


def _sane(r: ProbeResult) -> ProbeResult:
    bad = []
    for key, kind in _DETAIL_TYPES.items():
        value = r.detail.get(key)
        if value is None:
            continue
        wrong = not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        if not wrong and key in _LIST_OF_DICTS:
            wrong = not all(isinstance(item, dict) for item in value)
        if not wrong and key == "outcomes":
            wrong = not all(isinstance(v, int) for v in value.values())
        if wrong:
            bad.append(key)
    if not bad:
        return r
    return replace(r, detail={k: v for k, v in r.detail.items() if k not in bad})


# sdk_flow's steps after its Socket.IO connect: a failure there is the application's answer.
_AFTER_CONNECT = {FlowStep.START_INSCRIPTION, FlowStep.PROGRESS}


# --- places: network x vantage ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Place:
    """Where a result was observed: through which network profile, from which vantage."""

    network: str
    vantage: str = VantageName.LOCAL


_BESIDE_THE_MATRIX = {ProbeName.DISCOVERY, ProbeName.SDK_REPLAY}


def place_of(r: ProbeResult) -> Place:
    return Place(r.network, r.vantage)


def _plural(word: str, items: Sequence[str]) -> str:
    return f"{word}{'s' if len(items) > 1 else ''} {', '.join(items)}"


# --- evidence and health -------------------------------------------------------------------


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

    @cached_property
    def vantages(self) -> list[str]:
        return list(dict.fromkeys(r.vantage for r in self.results))

    @cached_property
    def places(self) -> list[Place]:
        """Every network x vantage the matrix's probes ran from, in first-seen order (discovery
        and the SDK replay run once, beside it: they compare no place with another)."""
        return list(dict.fromkeys(place_of(r) for r in self.results if r.probe not in _BESIDE_THE_MATRIX))

    def place_names(self, places: Iterable[Place]) -> str:
        """Places as a reader knows them: network names while one vantage ran everything
        ("mobile, corporate-proxy"); else "vantage corp-office" where a vantage's every place
        is among them, "network mobile" where a network's is, else "mobile from vantage eu-west"."""
        chosen = list(dict.fromkeys(places))
        if len(self.vantages) <= 1:
            return ", ".join(p.network for p in chosen)
        return ", ".join(self._place_words(chosen))

    def scope(self, places: Iterable[Place]) -> str:
        """Where something holds, as a title says it: "on network(s) mobile" (one vantage ran
        everything), "from vantage corp-office", "on network mobile", or each place."""
        chosen = list(dict.fromkeys(places))
        if len(self.vantages) <= 1:
            return "on network(s) " + ", ".join(p.network for p in chosen)
        words = self._place_words(chosen)
        vantages = [w.removeprefix("vantage ") for w in words if w.startswith("vantage ")]
        networks = [w.removeprefix("network ") for w in words if w.startswith("network ")]
        if vantages and len(vantages) == len(words):
            return "from " + _plural("vantage", vantages)
        if networks and len(networks) == len(words):
            return "on " + _plural("network", networks)
        return "on " + ", ".join(words)

    def _place_words(self, chosen: list[Place]) -> list[str]:
        """``chosen`` grouped by what explains them: a whole vantage, a whole network, else each."""
        left = set(chosen)
        words: list[str] = []
        for vantage in dict.fromkeys(p.vantage for p in chosen):
            every = {p for p in self.places if p.vantage == vantage}
            if every <= left:
                words.append(f"vantage {vantage}")
                left -= every
        for network in dict.fromkeys(p.network for p in chosen if p in left):
            every = {p for p in self.places if p.network == network}
            if every <= left:
                words.append(f"network {network}")
                left -= every
        words += [f"{p.network} from vantage {p.vantage}" for p in chosen if p in left]
        return words

    def where(
        self,
        probe: str | None = None,
        variant: str | None = None,
        target: str | None = None,
        network: str | None = None,
        place: Place | None = None,
    ) -> list[ProbeResult]:
        return [
            r
            for r in self.results
            if (probe is None or r.probe == probe)
            and (variant is None or r.variant == variant)
            and (target is None or r.target == target)
            and (network is None or r.network == network)
            and (place is None or (r.network == place.network and r.vantage == place.vantage))
        ]

    def socket(self, target: str, place: Place | None = None) -> list[ProbeResult]:
        """The evidence of whether Socket.IO answers. sdk_flow counts up to its connect: a
        refused dry-run inscription is the application's answer, not the path's."""
        return [
            r
            for r in self.where(target=target, place=place)
            if (r.probe in SOCKET_PROBES or (r.probe, r.variant) in WEBSOCKET_VARIANTS)
            and not (r.probe == ProbeName.SDK_FLOW and r.detail.get("failed_step") in _AFTER_CONNECT)
        ]

    def fingerprint(self, targets: Iterable[str]) -> Fingerprint:
        """The components the answers of ``targets`` show (diagnosis.fingerprint)."""
        key = tuple(dict.fromkeys(targets))
        cached = self._fingerprints.get(key)
        if cached is None:
            cached = self._fingerprints[key] = fingerprint(r for r in self.results if r.target in key)
        return cached

    @cached_property
    def _fingerprints(self) -> dict[tuple[str, ...], Fingerprint]:
        return {}

    def health(self, target: str, place: Place | None = None) -> TargetHealth:
        return TargetHealth.of(self.socket(target, place))

    def is_down(self, target: str) -> bool:
        """Down from every place that reached it. A network whose proxy refuses WebSocket
        mixes "blocked" into a dead backend's 502s; that does not make the backend less dead."""
        h = self.health(target)
        if h.health is Health.DOWN:
            return True
        if h.health is Health.UNKNOWN or any(path_works(r) or partly_worked(r) for r in h.results):
            return False
        return any(self.health(target, p).health is Health.DOWN for p in self.places)


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
        worked = [r for r in rs if path_works(r) or partly_worked(r)]
        failed = [r for r in rs if not path_works(r)]
        upstream, requests = request_counts(rs)
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
        elif all(r.outcome is Outcome.TIMEOUT for r in failed) and any(accepted(r) for r in failed):
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
