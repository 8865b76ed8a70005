"""The SDK replay (probe ``sdk_replay``, kiloscribe_lab/sdk): the published SDK in the user's Node."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import FindingId, Outcome, ProbeName, SdkMode, SdkStep, Severity, parse_sdk_variant
from kiloscribe_lab.results import ProbeResult

# SDK releases whose inscribeAndExecute logs "falling back to HTTP" after a WebSocket failure
# and then re-throws (contract: no HTTP fallback happens).
SDK_NO_FALLBACK_VERSIONS = frozenset({"2.0.9"})
_SDK_WS_SHOWN = {"flag": "--experimental-websocket", "ws-shim": "a `ws` shim", "native": "a native WebSocket"}


_CONNECTS = {SdkStep.CONNECT_VALID, SdkStep.CONNECT_INVALID}
# The steps that go over the SDK's WebSocket (discovery and detection do not, or not only).
_OVER_WEBSOCKET = {*_CONNECTS, SdkStep.START_INSCRIPTION}


def _sdk_step(r: ProbeResult) -> tuple[SdkMode | None, SdkStep | None]:
    """(PLAIN, CONNECT_VALID) from variant "node-plain:connect-valid"."""
    return parse_sdk_variant(r.variant)


def _runtime_shown(r: ProbeResult) -> str:
    """The runtime as the variant names it ("node-plain"), for a summary."""
    return r.variant.partition(":")[0]


def _sdk_str(r: ProbeResult, key: str) -> str:
    value = r.detail.get(key)
    return value if isinstance(value, str) else ""


def _sdk_s(r: ProbeResult) -> str:
    total = r.timings.total
    if total is None:
        return "?"
    return f"{total:.0f} ms" if total < 1000 else f"{total / 1000:.1f} s"


@rule(
    FindingId.SDK_RUNTIME_MISSING_WEBSOCKET,
    severities={Severity.CRITICAL},
    title="The SDK cannot open a WebSocket in this machine's Node",
    means="The Node that ran the SDK here has no global WebSocket, so the SDK's connect times out before "
    "any request: the client's runtime, not the service. A user on the same Node version sees the same.",
    evidence="The SDK replay in this machine's Node (no WebSocket global) times out on connect while the "
    "same SDK with a WebSocket global reaches the server.",
)
def sdk_runtime_missing_websocket(ev: Evidence) -> Draft | None:
    timed_out: list[ProbeResult] = []
    reached: list[ProbeResult] = []
    for t in ev.targets:
        replays = ev.where(ProbeName.SDK_REPLAY, target=t)
        for r in replays:
            mode, step = _sdk_step(r)
            if mode is not SdkMode.PLAIN or step not in _CONNECTS or r.outcome is not Outcome.TIMEOUT:
                continue
            if _sdk_str(r, "websocket_global") not in {"", "none"}:
                continue  # it had a WebSocket and still timed out: not this cause
            with_ws = [
                o
                for o in replays
                if _sdk_step(o) == (SdkMode.WEBSOCKET, step)
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
        if _sdk_step(r) == (SdkMode.PLAIN, SdkStep.DETECT)
        and r.outcome is Outcome.TIMEOUT
        and r.target in {x.target for x in timed_out}
    ]
    detect_note = (
        " detectBestConnection (connectionMode 'auto') gave up at its 3 s timer there too." if detect else ""
    )
    return Draft(
        severity=Severity.CRITICAL,
        # Whose runtime it is, nobody said: it is the Node this replay found (--node, or on PATH).
        title=f"The SDK cannot open a WebSocket in this machine's Node {nodes} (no global WebSocket)",
        summary=(
            f"In this machine's Node {nodes}, run without flags and with no global WebSocket, every "
            "connectWebSocket "
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
        evidence=refs([*timed_out, *reached, *detect]),
        targets=targets_of(timed_out),
    )


def _sdk_websocket_failure(r: ProbeResult) -> bool:
    """A failure of the SDK's WebSocket path that HTTP would not share (a refused key is not)."""
    _, step = _sdk_step(r)
    if step not in _OVER_WEBSOCKET:
        return False
    if r.outcome in {Outcome.OK, Outcome.AUTH_REJECTED}:
        return False
    return not (step is SdkStep.START_INSCRIPTION and r.outcome is Outcome.HTTP_ERROR)  # the server's answer


@rule(
    FindingId.SDK_FALLBACK_NOT_EFFECTIVE,
    severities={Severity.WARNING},
    title="The SDK does not fall back to HTTP when its WebSocket fails",
    means="The SDK logs 'falling back to HTTP' and re-throws: a WebSocket failure fails the inscription "
    "though the REST API may work.",
    evidence="An SDK replay of a release known to lack the fallback (2.0.9) fails on its WebSocket path "
    "for another reason than a refused key.",
)
def sdk_fallback_not_effective(ev: Evidence) -> Draft | None:
    failures = [
        r
        for r in ev.where(ProbeName.SDK_REPLAY)
        if _sdk_str(r, "sdk_version") in SDK_NO_FALLBACK_VERSIONS and _sdk_websocket_failure(r)
    ]
    if not failures:
        return None
    versions = ", ".join(sorted({_sdk_str(r, "sdk_version") for r in failures}))
    seen = sorted({f"{r.error or r.outcome.value} ({_runtime_shown(r)})" for r in failures})
    return Draft(
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
        evidence=refs(failures),
        targets=targets_of(failures),
    )
