"""Availability: is the service there at all? All backends down, one down, one stalled, DNS, TLS."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import (
    FAILURES_OF_SERVICE,
    Evidence,
    Health,
    partly_worked,
    path_works,
    pct,
    refs,
    request_counts,
    targets_of,
)
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import BackendHeader, FindingId, Outcome, Severity
from kiloscribe_lab.results import ProbeResult


def _waiting_on_the_dead(ev: Evidence) -> list[str]:
    """Targets that only ever stalled while every other target is down and nothing works: a
    balancer in front of dead backends still dialling them, not a stalled backend. HAProxy
    without health checks retries a refused server 3 times, 1 s apart, before its 503 (an
    unreachable one ``timeout connect`` x 4): past a short deadline, that is silence."""
    if not ev.targets or any(path_works(r) or partly_worked(r) for t in ev.targets for r in ev.socket(t)):
        return []
    down = [t for t in ev.targets if ev.is_down(t)]
    silent = [t for t in ev.targets if t not in down]
    if not down or not silent:
        return []
    stalled = all(
        ev.health(t, p).health is Health.STALLED for t in silent for p in ev.places if ev.socket(t, p)
    )
    return silent if stalled else []


# A balancer's 5xx this slow was not its first attempt: it retried a dead server (HAProxy's
# retries, 1 s apart for a refused connection) for want of a health check that skips it.
_RETRIED_MS = 2500.0


def _retried(results: list[ProbeResult]) -> list[ProbeResult]:
    return [
        r for r in results if r.outcome is Outcome.UPSTREAM_ERROR and (r.timings.total or 0.0) >= _RETRIED_MS
    ]


@rule(
    FindingId.ALL_BACKENDS_DOWN,
    severities={Severity.CRITICAL},
    # Nothing answers: lost sessions, a dead upstream, discovery's pick, the expected
    # answers of a live server are all this one fault, or cannot be said.
    supersedes={
        FindingId.BACKEND_DOWN,
        FindingId.STICKY_SESSIONS_MISSING,
        FindingId.STICKY_SESSIONS_COOKIE_ONLY,
        FindingId.PLAIN_WEBSOCKET_PROTOCOL_MISMATCH,
        FindingId.AUTH_PATH_HEALTHY,
        FindingId.DISCOVERY_PROBLEM,
        FindingId.ROOT_REDIRECT,
    },
    title="Every backend is down",
    means="No target completes a Socket.IO handshake: the service is down for every client, not for "
    "one user.",
    evidence="Every target's Socket.IO probes fail with 502/503/504, a refusal or a reset, on every network "
    "that reached it (a balancer in front of them may only stall, still dialling them).",
)
def all_backends_down(ev: Evidence) -> Draft | None:
    if not ev.targets:
        return None
    waiting = _waiting_on_the_dead(ev)
    if not waiting and not all(ev.is_down(t) for t in ev.targets):
        return None
    healths = {t: ev.health(t) for t in ev.targets if t not in waiting}
    failures = [r for h in healths.values() for r in h.results if r.outcome in FAILURES_OF_SERVICE]
    evidence = failures[:12]
    statuses = sorted({r.status for r in evidence if r.status})
    refused = any(r.outcome is Outcome.REFUSED for r in evidence)
    # Accepted, then closed or reset: something listens there, it just does not serve.
    dropped = any(r.outcome is Outcome.RESET and r.timings.connect is not None for r in evidence)
    if statuses:
        seen = (
            f"the proxies answered {', '.join(map(str, statuses))}: they are up, but no "
            "upstream behind them answers"
        )
    elif dropped and not refused:
        seen = (
            "every connection was accepted and then closed or reset before an answer: something "
            "listens there but does not serve (a crashing server, a proxy or firewall that accepts "
            "and drops, a TLS port spoken to in plain HTTP)"
        )
    elif dropped:
        seen = (
            "connections were refused, or accepted and then closed or reset before an answer: a "
            "stopped or crashing service, or a wrong host or port"
        )
    else:
        seen = (
            "every connection was refused or reset: nothing listens there (a stopped "
            "service, or a wrong host or port)"
        )
    retried = _retried(failures)
    if retried:
        slowest = max(r.timings.total or 0.0 for r in retried) / 1000
        seen += (
            f". {ev.names(targets_of(retried))} answered {retried[0].status} only after up to "
            f"{slowest:.1f} s: a balancer that retried dead servers before giving up, as HAProxy does "
            "without health checks (`retries 3`, 1 s apart for a refused connection)"
        )
    if waiting:
        stalled = [r for t in waiting for r in ev.socket(t) if r.outcome is Outcome.TIMEOUT]
        evidence += stalled[:6]
        seen += (
            f"; {ev.names(waiting)} answered nothing within the probes' deadline: in front of dead "
            "backends, a balancer that does not health-check them keeps dialling them (HAProxy retries "
            "a refused server 3 times, 1 s apart, before its 503 'No server is available'; an "
            "unreachable one `timeout connect` x 4), so its silence is theirs, not a stall of its own"
        )
    return Draft(
        severity=Severity.CRITICAL,
        title="Every backend is down",
        summary=(
            f"No target completed a single Socket.IO handshake; {seen}. The service is down "
            "for every client, not for one user."
        ),
        recommendation=(
            "Restart the backend processes and check that each listens on the address the "
            "balancer dials. Look at what changed last (a deploy, a config, the host)."
        ),
        evidence=refs(evidence),
        targets=tuple(ev.targets),
        path=ev.fingerprint(ev.targets),
        fix_last=True,
    )


@rule(
    FindingId.BACKEND_DOWN,
    severities={Severity.CRITICAL},
    # Discovery pointing at a server that is down is the same fault, seen earlier.
    supersedes={FindingId.DISCOVERY_PROBLEM},
    title="Backend down",
    means="A backend fails every request: clients routed to it fail while the others connect.",
    evidence="A target whose Socket.IO probes all get 502/503/504, a refusal or a reset; or a balancer where "
    "a share of requests do while others work.",
)
def backend_down(ev: Evidence) -> Draft | None:
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
            f"about {pct(h.share_failing)} of requests through {ev.name(t)} fail the same way "
            f"({h.upstream_errors} of {h.requests})"
        )
    answered = sorted(
        {
            str(r.detail.get("backend") or r.headers.get(BackendHeader.LAB))
            for _, h in partial
            for r in h.results
            if r.detail.get("backend") or r.headers.get(BackendHeader.LAB)
        }
    )
    if answered:
        parts.append(f"the backends that did answer behind the balancer: {', '.join(answered)}")
    # A sticky or stats probe can end OK and still have met 502s on the way: it is evidence too.
    evidence = [
        r
        for _, h in down + partial
        for r in h.results
        if r.outcome in FAILURES_OF_SERVICE or request_counts([r])[0]
    ]
    names = ev.names(t for t, _ in down) or "the failing upstream"
    return Draft(
        severity=Severity.CRITICAL,
        title=f"Backend down: {names}" if down else "A backend behind the balancer is down",
        summary="; ".join(parts) + ". Clients routed there fail; the others connect, which is "
        "why only some users see errors.",
        recommendation=(
            f"Restart {names} and look first at its process and its log (is it running and "
            "listening on the upstream port?), then at the balancer's error log."
        ),
        evidence=refs(evidence),
        targets=tuple(t for t, _ in down + partial),
        path=ev.fingerprint(t for t, _ in down + partial),
        fix_last=True,
    )


@rule(
    FindingId.BACKEND_TIMEOUT,
    severities={Severity.CRITICAL},
    # Discovery pointing at a server that stalls is the same fault, seen earlier.
    supersedes={FindingId.DISCOVERY_PROBLEM},
    title="Backend accepts connections but never answers",
    means="A backend accepts TCP (and TLS) and then sends nothing: clients hang until their own timeout.",
    evidence="Every Socket.IO probe of a target times out after its connection was accepted, on every "
    "network.",
)
def backend_timeout(ev: Evidence) -> Draft | None:
    stalled = []
    waiting = _waiting_on_the_dead(ev)  # all-backends-down's: a balancer dialling dead backends
    for t in ev.targets:
        if t in waiting:
            continue
        per_net = {p: ev.health(t, p) for p in ev.places if ev.socket(t, p)}
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
    # Bytes that arrived without an answer completing: a server trickling, not a silent one.
    trickled = [r for _, rs in stalled for r in rs if r.timings.first_byte is not None]
    sent = (
        "and then answered too slowly: bytes arrived (the first after "
        f"{min(r.timings.first_byte or 0.0 for r in trickled):.0f} ms) but no answer was complete"
        if trickled
        else "and then sent nothing"
    )
    return Draft(
        severity=Severity.CRITICAL,
        title=f"Backend accepts connections but never answers: {names}",
        summary=(
            f"{names} accepted TCP (and TLS) {sent} within the probes' deadlines, "
            f"on every network (stalled while: {', '.join(phases)}). Clients hang until their own "
            "timeout: the SDK's 'WebSocket connection timeout' after 10 s."
        ),
        recommendation=(
            f"Look at {names} first: a blocked event loop, an exhausted worker pool or a deadlock "
            "(take a stack dump: py-spy dump --pid, or node --inspect)."
        ),
        evidence=refs(r for _, rs in stalled for r in rs),
        targets=tuple(t for t, _ in stalled),
        path=ev.fingerprint(ev.targets),
        fix_last=True,
    )


@rule(
    FindingId.DNS_PROBLEM,
    severities={Severity.CRITICAL},
    title="The name does not resolve",
    means="No client can reach the target by that name, from this network.",
    evidence="Every probe of a target fails to resolve its host name.",
)
def dns_problem(ev: Evidence) -> Draft | None:
    """Names that do not resolve: nothing else can be said about those targets."""
    hits = []
    for t in ev.targets:
        rs = ev.where(target=t)
        if rs and all(r.outcome is Outcome.DNS_ERROR for r in rs):
            hits.append((t, rs))
    if not hits:
        return None
    errors = sorted({str(r.error) for _, rs in hits for r in rs if r.error})
    return Draft(
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
        evidence=refs(r for _, rs in hits for r in rs),
        targets=tuple(t for t, _ in hits),
    )


# OpenSSL's X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: the last certificate the server sent
# was issued by one the client does not hold.
_NO_LOCAL_ISSUER = 20


def _incomplete_chain(r: ProbeResult) -> tuple[int, str, str] | None:
    """(certificates presented, the last one's subject, its issuer) when a certificate failed
    for want of its issuer and the server's chain ends in one that is not self-issued."""
    tls = r.detail.get("tls")
    if not isinstance(tls, dict) or tls.get("verify_code") != _NO_LOCAL_ISSUER:
        return None
    presented = tls.get("presented")
    if not isinstance(presented, list) or not presented or not all(isinstance(c, dict) for c in presented):
        return None
    last = presented[-1]
    subject, issuer = str(last.get("subject", "")), str(last.get("issuer", ""))
    if not issuer or subject == issuer:
        return None  # a root or a self-signed leaf: the trust store's matter, not the chain's
    return len(presented), subject, issuer


@rule(
    FindingId.TLS_PROBLEM,
    severities={Severity.CRITICAL},
    title="TLS fails",
    means="The TLS handshake fails (an untrusted, expired or misnamed certificate, or an incomplete chain): "
    "clients cannot connect at all.",
    evidence="Any probe whose TLS handshake failed; the chain the server presented says whether an "
    "intermediate is missing.",
)
def tls_problem(ev: Evidence) -> Draft | None:
    hits = [r for r in ev.results if r.outcome is Outcome.TLS_ERROR]
    if not hits:
        return None
    errors = sorted({str(r.error) for r in hits if r.error})
    chains = {c for r in hits if (c := _incomplete_chain(r)) is not None}
    if not chains:
        return Draft(
            severity=Severity.CRITICAL,
            title="TLS fails",
            summary=f"The TLS handshake failed: {'; '.join(errors[:3])}. Clients cannot connect at all.",
            recommendation=(
                "Check the certificate chain, its names (SAN) and expiry with `openssl s_client "
                "-connect HOST:443 -servername HOST`; for a private CA, pass it with --ca-bundle."
            ),
            evidence=refs(hits),
            targets=targets_of(hits),
        )
    count, subject, issuer = sorted(chains)[0]
    said = sorted(
        {str(r.detail["tls"].get("verify_message")) for r in hits if isinstance(r.detail.get("tls"), dict)}
    )
    if count == 1:
        sent = f"only its own certificate ({subject}), issued by {issuer}, and not that issuer's"
        meaning = (
            "The chain is incomplete: the intermediate certificate is missing. Browsers cope (they "
            "fetch or cache intermediates); Node, Python and the SDK do not, and fail with 'unable to "
            "verify the first certificate' / 'unable to get local issuer certificate'."
        )
    else:
        sent = f"{count} certificates, the last ({subject}) issued by {issuer}, which it did not send"
        meaning = (
            "Either an intermediate is missing from the chain (browsers cope, Node, Python and the SDK "
            "do not), or that issuer is a private CA this client does not trust."
        )
    return Draft(
        severity=Severity.CRITICAL,
        title="TLS fails: the server's certificate chain is incomplete"
        if count == 1
        else "TLS fails: the chain ends at an issuer the client does not have",
        summary=(
            f"The TLS handshake failed ({'; '.join(said[:2])}). The server presented {sent}. " + meaning
        ),
        recommendation=(
            "Serve the full chain: the leaf followed by its intermediate(s), then check with "
            "`openssl s_client -connect HOST:443 -servername HOST -showcerts` (it must print the "
            "intermediate too). For a private CA, pass it with --ca-bundle."
        ),
        evidence=refs(hits),
        targets=targets_of(hits),
        path=ev.fingerprint(targets_of(hits)),
        fix_last=True,
    )
