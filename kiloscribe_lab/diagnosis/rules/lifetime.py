"""Lifetime (``--deep``): what only a session held past its heartbeat, or a large message, shows.

* idle-timeout: something on the path cuts connections that stay silent for N s, and N is below
  the server's pingInterval, so every idle client is cut before its first heartbeat (a WebSocket
  closed without a CLOSE frame, a long-poll answered by the proxy: 504, or 400 once it retried on
  another backend).
* heartbeat-late: PINGs come well after pingInterval: the server's event loop is blocked (every
  timer of it fires late), or the path stalls.
* payload-too-large: messages above N bytes end the session (engine.io: CLOSE 1009 / 413;
  python-engineio: CLOSE 1000 / 400; nginx: its own 413 page), so a start-inscription carrying a
  file of the users' size (``--file-size``) cannot pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from kiloscribe_lab.diagnosis.evidence import Evidence, refs, targets_of
from kiloscribe_lab.diagnosis.fingerprint import Fingerprint, fingerprint
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, ProbeName, SessionEnd, Severity, Tier, Transport
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.settings import largest_file_bytes

# A connection dropped sooner than this after its last traffic was not cut for being idle.
MIN_IDLE_S = 0.5
# A PING this late (at least; a quarter of pingInterval on slower heartbeats) is "well after":
# a loaded machine's own scheduling delays stay far below it.
LATE_MIN_S = 0.5
LATE_SHARE = 0.25
_CUT_ENDS = {SessionEnd.CONNECTION_CLOSED, SessionEnd.RESET, SessionEnd.POLL_FAILED}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval_s(r: ProbeResult) -> float | None:
    interval = _number(r.detail.get("pingInterval"))
    return interval / 1000 if interval is not None and interval > 0 else None


def _end(r: ProbeResult) -> Mapping[str, object]:
    end = r.detail.get("end")
    return end if isinstance(end, dict) else {}


def _holds(ev: Evidence) -> list[ProbeResult]:
    """The holds that opened a session (they know its heartbeat and how it ended)."""
    return [r for r in ev.where(ProbeName.HOLD) if _interval_s(r) is not None and _end(r)]


def _names(items: Iterable[str]) -> str:
    shown = list(dict.fromkeys(items))
    return " and ".join(shown) if len(shown) <= 2 else ", ".join(shown[:-1]) + " and " + shown[-1]


def _transport_name(variant: str) -> str:
    return "WebSocket" if variant == Transport.WEBSOCKET else "polling"


def _seconds(values: Sequence[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:.1f} s" if round(lo, 1) == round(hi, 1) else f"{lo:.1f}–{hi:.1f} s"


def _path_component(path: Fingerprint, tiers: Sequence[Tier]) -> str | None:
    for tier in tiers:
        belief = path.at(tier)
        if belief is not None:
            return str(belief.component)
    return None


def _with_server(cut: Fingerprint, whole: Fingerprint) -> Fingerprint:
    """The components that answered the failures, with the server the target's answers show
    (the fix's other way, a setting of the server's, is in that server's words)."""
    return Fingerprint(
        tuple(b for b in cut.beliefs if b.component.tier is not Tier.SERVER)
        + tuple(b for b in whole.beliefs if b.component.tier is Tier.SERVER)
    )


# --- idle-timeout --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cut:
    result: ProbeResult
    idle_s: float
    interval_s: float
    timeout_s: float


def _cut(r: ProbeResult) -> _Cut | None:
    """A hold cut while idle before its first heartbeat was due."""
    interval = _interval_s(r)
    end = _end(r)
    idle, at = _number(end.get("idle_s")), _number(end.get("at_s"))
    if interval is None or end.get("how") not in _CUT_ENDS or idle is None or at is None:
        return None
    if r.detail.get("pings") or idle < MIN_IDLE_S or at >= interval:
        return None
    timeout = (_number(r.detail.get("pingTimeout")) or 0) / 1000
    return _Cut(r, idle, interval, timeout)


def _how_cut(cuts: Sequence[_Cut]) -> str:
    parts = []
    ws = [c for c in cuts if c.result.variant == Transport.WEBSOCKET]
    polls = [c for c in cuts if c.result.variant != Transport.WEBSOCKET]
    if ws:
        bare = [c for c in ws if _end(c.result).get("how") == SessionEnd.CONNECTION_CLOSED]
        how = "closed without a CLOSE frame (1006)" if bare else "reset"
        parts.append(f"WebSocket sessions {how} after {_seconds([c.idle_s for c in ws])} of silence")
    if polls:
        statuses = sorted({str(_end(c.result).get("status") or "no answer") for c in polls})
        parts.append(
            f"long-polls answered {'/'.join(statuses)} after waiting {_seconds([c.idle_s for c in polls])}"
        )
    return "; ".join(parts)


@rule(
    FindingId.IDLE_TIMEOUT,
    severities={Severity.CRITICAL, Severity.WARNING},
    title="Idle connections are cut before the heartbeat",
    means="Something on the path closes connections idle for less than the server's pingInterval: every "
    "idle client is cut ('transport close' / 'transport error') and reconnects, over and over.",
    evidence="A session held with --deep (answering every PING) died while idle, before its first heartbeat: "
    "a WebSocket closed without a CLOSE frame, or a long-poll answered by the proxy (504) or lost.",
)
def idle_timeout(ev: Evidence) -> Draft | None:
    holds = _holds(ev)
    cuts = [c for r in holds if (c := _cut(r)) is not None]
    if not cuts:
        return None
    hit = [c.result for c in cuts]
    targets = targets_of(hit)
    # Critical where no session outlived the cut: every idle client of that target is cut.
    everything = [t for t in targets if all(_cut(r) is not None for r in holds if r.target == t)]
    severity = Severity.CRITICAL if everything else Severity.WARNING
    # Who cut: the proxy whose own page answered a long-poll, else what the cut sessions' answers
    # show of the path (a WebSocket's FIN says nothing of its own).
    cut_path = fingerprint(hit, authored=True)
    if _path_component(cut_path, (Tier.BALANCER, Tier.EDGE)) is None:
        cut_path = fingerprint(hit)
    component = _path_component(cut_path, (Tier.BALANCER, Tier.EDGE))
    through = f"through {component}" if component else "on the path"
    idle = min(c.idle_s for c in cuts)
    interval = max(c.interval_s for c in cuts)
    budget = interval + max(c.timeout_s for c in cuts)
    shorter = max(1.0, idle / 2)
    transports = _names(_transport_name(c.result.variant) for c in cuts)
    return Draft(
        severity=severity,
        title=f"Connections {through} die after {idle:.0f} s of idle, before the server's "
        f"{interval:g} s heartbeat ({ev.names(targets)})",
        summary=(
            f"Sessions held as socket.io-client holds them ({transports}; every PING answered) died "
            f"{through} after {_seconds([c.idle_s for c in cuts])} of silence, before the server's first "
            f"heartbeat (pingInterval {interval:g} s): {_how_cut(cuts)}. Something on the path closes "
            f"connections idle for about {idle:.1f} s; Socket.IO is silent for up to pingInterval between "
            "heartbeats, so every idle client is cut: socket.io-client reports 'transport close' "
            "(WebSocket) or 'transport error' (polling) and reconnects, and an inscription in flight is lost."
            + (
                f" No session to {ev.names(everything)} outlived it."
                if everything
                else " Other sessions outlived the same wait: only some paths or transports cut."
            )
        ),
        recommendation=(
            "Check each proxy between the clients and the servers (CDN, load balancer, ingress) for an idle "
            "or read timeout below pingInterval + pingTimeout."
        ),
        evidence=refs(hit),
        targets=targets,
        path=_with_server(cut_path, ev.fingerprint(targets)),
        fill={
            "BUDGET": f"{budget:g} s",
            "IDLE": f"{idle:.1f} s",
            "SHORTER_S": f"{shorter:.0f}",
            "SHORTER_MS": f"{shorter * 1000:.0f}",
        },
        fix_last=True,
    )


# --- heartbeat-late ------------------------------------------------------------------------


def late_threshold_s(interval_s: float) -> float:
    return max(LATE_MIN_S, LATE_SHARE * interval_s)


def _lateness(r: ProbeResult) -> tuple[float, bool] | None:
    """(seconds late, whether none came at all) of a hold's worst PING, when well late."""
    interval = _interval_s(r)
    if interval is None:
        return None
    pings = r.detail.get("pings")
    lates = [
        late / 1000
        for p in (pings if isinstance(pings, list) else [])
        if isinstance(p, dict) and (late := _number(p.get("late_ms"))) is not None
    ]
    overdue = _number(r.detail.get("overdue_ms"))
    worst, missing = (max(lates), False) if lates else ((overdue / 1000, True) if overdue else (0.0, False))
    # What our own busy event loop explains (we read the PING late) is not the server's lateness.
    worst -= (_number(r.detail.get("loop_lag_ms")) or 0.0) / 1000
    if missing and _end(r).get("how") != SessionEnd.HELD:
        return None  # the session ended: that is the finding, not the heartbeat
    return (worst, missing) if worst >= late_threshold_s(interval) else None


@rule(
    FindingId.HEARTBEAT_LATE,
    severities={Severity.WARNING},
    title="Heartbeats arrive late",
    means="The server's PINGs come well after pingInterval: its event loop is blocked (every timer of it is "
    "late, not only the heartbeat) or the path stalls; clients with a short pingTimeout disconnect.",
    evidence="A session held with --deep saw a PING well after it was due (at least 0.5 s, a quarter of "
    "pingInterval on slower heartbeats), or none long after it was due.",
)
def heartbeat_late(ev: Evidence) -> Draft | None:
    late = [(r, lateness) for r in _holds(ev) if (lateness := _lateness(r)) is not None]
    if not late:
        return None
    hit = [r for r, _ in late]
    targets = targets_of(hit)
    worst = max(s for _, (s, _) in late)
    missing = any(m for _, (_, m) in late)
    intervals = sorted({i for r in hit if (i := _interval_s(r)) is not None})
    timeouts = sorted({t / 1000 for r in hit if (t := _number(r.detail.get("pingTimeout"))) is not None})
    networks = sorted({r.network for r in hit})
    clean = [n for n in ev.networks if n not in networks and any(r.network == n for r in _holds(ev))]
    return Draft(
        severity=Severity.WARNING,
        title=f"Heartbeats arrive up to {worst:.1f} s late ({ev.names(targets)})",
        summary=(
            f"Sessions held on {ev.names(targets)} got their PINGs up to {worst:.1f} s after they were due "
            f"(pingInterval {'/'.join(f'{i:g}' for i in intervals)} s)"
            + ("; at least one never came while it was held" if missing else "")
            + ". A server sends each PING pingInterval after the last PONG: when it is late, the server's "
            "event loop was busy (every timer of it, and every answer, waits as long) or the path held the "
            "bytes back. A client gives up after pingInterval + pingTimeout"
            + (f" ({'/'.join(f'{i + t:g}' for i in intervals for t in timeouts)} s)" if timeouts else "")
            + " with 'ping timeout'."
            + (f" Sessions on {', '.join(clean)} were on time: the path, more likely." if clean else "")
        ),
        recommendation=(
            "Compare with the server's own event-loop delay metrics at the same time; a proxy that buffers "
            "(proxy_buffering on a long-poll) delays PINGs too."
        ),
        evidence=refs(hit),
        targets=targets,
        path=ev.fingerprint(targets),
        fix_last=True,
    )


# --- payload-too-large ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Limit:
    result: ProbeResult
    passed: int  # bytes (0: not even the smallest message passed)
    failed: int
    cap: int
    exact: bool


def _limit(r: ProbeResult) -> _Limit | None:
    if r.probe != ProbeName.PAYLOAD:
        return None
    failed, cap = _number(r.detail.get("smallest_failed")), _number(r.detail.get("cap"))
    if failed is None or cap is None or failed > cap:
        return None
    passed = _number(r.detail.get("largest_passed")) or 0
    return _Limit(r, int(passed), int(failed), int(cap), r.detail.get("exact") is True)


def _how_refused(r: ProbeResult) -> str:
    failure = r.detail.get("failure")
    end = failure if isinstance(failure, dict) else {}
    how = end.get("how")
    if how == SessionEnd.CLOSE_FRAME:
        return f"a CLOSE frame, code {end.get('code')}"
    if how in {SessionEnd.POST_FAILED, SessionEnd.POLL_FAILED}:
        return f"the {'POST' if how == SessionEnd.POST_FAILED else 'long-poll'} answered {end.get('status')}"
    if how == SessionEnd.CONNECTION_CLOSED:
        return "the connection closed"
    if how == SessionEnd.RESET:
        return "a reset"
    if how == SessionEnd.CLOSE_PACKET:
        return "the server's CLOSE packet"
    return "no answer"


def _round_up(n: int) -> int:
    """A round number of bytes comfortably above ``n`` (1e6, 2e6, 5e6, 1e7 ...)."""
    value = 1_000_000
    while value < 2 * n:
        value = value * 5 // 2 if str(value)[0] == "2" else value * 2
    return value


@rule(
    FindingId.PAYLOAD_TOO_LARGE,
    severities={Severity.CRITICAL, Severity.WARNING},
    title="Messages of an inscription's size do not pass",
    means="Messages above N bytes end the session (maxHttpBufferSize, or a proxy's body limit): "
    "start-inscription carries the file base64-encoded, so files of the users' size cannot be inscribed.",
    evidence="The payload probe (--deep) found the largest message that passes below the start-inscription "
    "of a --file-size file; critical when no transport passes it.",
)
def payload_too_large(ev: Evidence) -> Draft | None:
    tried = [r for r in ev.where(ProbeName.PAYLOAD) if _number(r.detail.get("cap")) is not None]
    limits = [lim for r in tried if (lim := _limit(r)) is not None]
    if not limits:
        return None
    hit = [lim.result for lim in limits]
    targets = targets_of(hit)
    passing = {(r.target, r.variant) for r in tried if r.detail.get("file_passes") is True}
    blocked_everywhere = [t for t in targets if not any(pt == t for pt, _ in passing)]
    severity = Severity.CRITICAL if blocked_everywhere else Severity.WARNING
    # The bound the searches pinned down best: within a factor of two, else one that saw a message pass (a
    # search the deadline stopped early knows less, not that nothing passes).
    settled = [lim for lim in limits if lim.passed and lim.failed <= 2 * lim.passed]
    settled = settled or [lim for lim in limits if lim.passed] or limits
    largest = min(lim.passed for lim in settled)
    cap = max(lim.cap for lim in limits)
    file_size = max(int(_number(r.detail.get("file_size")) or 0) for r in hit)
    by_transport: dict[str, list[_Limit]] = {}
    for lim in limits:
        by_transport.setdefault(lim.result.variant, []).append(lim)
    hows = "; ".join(
        f"{_transport_name(t)}: {_names(sorted({_how_refused(x.result) for x in ls}))}"
        for t, ls in sorted(by_transport.items())
    )
    exact = all(lim.exact for lim in settled)
    above = f"{largest}" if exact else f"about {largest}"
    over = _names(_transport_name(t) for t in sorted(by_transport))
    # Who refused: a proxy's own page (nginx's 413) says the balancer; else the server's limit
    # (a proxy that relayed the server's 413 or 400 adds its headers, not its page).
    refusals = fingerprint(hit, authored=True)
    balancer = _path_component(refusals, (Tier.BALANCER, Tier.EDGE))
    whole = ev.fingerprint(targets)
    if balancer is not None:
        path = Fingerprint(tuple(b for b in refusals.beliefs if b.component.tier is not Tier.SERVER))
        who = f"{balancer} refuses them before the server sees them"
    else:
        path = Fingerprint(tuple(b for b in whole.beliefs if b.component.tier is Tier.SERVER))
        server = _path_component(path, (Tier.SERVER,))
        who = f"the server ({server}) closes the session" if server else "the server closes the session"
    kib = largest_file_bytes(largest) // 1024
    return Draft(
        severity=severity,
        title=f"Messages above {above} bytes close the connection: files above {kib} KiB cannot be "
        f"inscribed over {over} ({ev.names(targets)})",
        summary=(
            f"On {ev.names(targets)}, Socket.IO messages above {above} bytes end the session ({hows}): "
            f"{who}. start-inscription carries the file base64-encoded (4/3 of it plus the request), so a "
            f"{file_size // 1024} KiB file is a message of about {cap} bytes and files above {kib} KiB "
            f"cannot be inscribed over {over}: the inscription never completes, the session drops."
            + (
                f" No transport passes it on {ev.names(blocked_everywhere)}."
                if blocked_everywhere
                else " Another transport passes it, but clients that use this one fail."
            )
        ),
        recommendation=(
            f"Until it is raised, files up to {kib} KiB pass; tell the users of larger ones (the SDK "
            "cannot split a file into smaller messages)."
        ),
        evidence=refs(hit),
        targets=targets,
        path=path,
        fill={
            "NEEDED": str(cap),
            "ROUND_JS": f"{_round_up(cap):.0e}".replace("+0", "").replace("+", ""),
            "ROUND": f"{_round_up(cap):_}",
        },
    )
