"""The replay program's JSON lines -> ProbeResults of probe ``sdk_replay``. Pure, no I/O.

One node run (one runtime mode) gives one result per step, variant ``node-<mode>:<step>``
(``node-plain:connect-valid``, ``node-websocket:start-inscription``, ...). ``error`` is the
SDK's own message, verbatim, wherever the SDK gives one; ``detail`` carries the runtime
(Node version, how a WebSocket global was provided), the SDK's log lines and what the
replay observed beside the SDK (connect_error events, the engine's state, a transport check).

Outcomes, from the SDK's messages (contract: connectWebSocket's two messages):

* ``WebSocket connection timeout``: ``timeout`` (the SDK's own 10 s timer fired);
* ``WebSocket connection failed: <m>`` where the server refused the CONNECT: ``auth_rejected``
  when ``m`` is about the key (``Invalid API key``), ``protocol_mismatch`` otherwise;
* ``WebSocket connection failed: websocket error`` (a transport error): what the replay's
  upgrade check found: ``refused``, ``reset``, ``dns_error``, ``tls_error``, ``timeout``,
  ``upstream_error``/``redirect`` by status, else ``blocked`` (no WebSocket upgrade).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kiloscribe_lab.credentials import redact
from kiloscribe_lab.names import Credential, Outcome, ProbeName, SdkMode, SdkStep, sdk_variant
from kiloscribe_lab.outcomes import upgrade_refusal
from kiloscribe_lab.results import ProbeResult, Timings, replace, utc_now

SDK_PACKAGE = "@kiloscribe/inscription-sdk"
TIMEOUT_MESSAGE = "WebSocket connection timeout"
FAILED_PREFIX = "WebSocket connection failed: "
DISCOVERY_FAILED_LOG = "Could not fetch WebSocket servers, will use HTTP only"
# socket.io-client's own words for a transport that failed (as opposed to a server's refusal).
TRANSPORT_REASONS = frozenset(
    {"websocket error", "xhr poll error", "xhr post error", "transport error", "transport close", "timeout"}
)
AUTH_WORDS = re.compile(r"api.?key|auth|token|unauthori[sz]ed|forbidden|credential", re.IGNORECASE)
_CHECK_KINDS = {
    "refused": Outcome.REFUSED,
    "reset": Outcome.RESET,
    "dns": Outcome.DNS_ERROR,
    "tls": Outcome.TLS_ERROR,
    "timeout": Outcome.TIMEOUT,
}
_TEXT_CLASSES: tuple[tuple[re.Pattern[str], Outcome], ...] = (
    (re.compile(r"ECONNREFUSED", re.IGNORECASE), Outcome.REFUSED),
    (re.compile(r"ECONNRESET|EPIPE|socket hang up", re.IGNORECASE), Outcome.RESET),
    (re.compile(r"ENOTFOUND|EAI_AGAIN", re.IGNORECASE), Outcome.DNS_ERROR),
    (re.compile(r"ETIMEDOUT", re.IGNORECASE), Outcome.TIMEOUT),
    (re.compile(r"cert|ssl|tls|self.signed|unable to verify", re.IGNORECASE), Outcome.TLS_ERROR),
)
_UNEXPECTED_STATUS = re.compile(r"Unexpected server response: (\d{3})")
DETECT_TIMER_SLACK_MS = 100.0


@dataclass(frozen=True, slots=True)
class ReplayRun:
    """What one node process produced, with what check.py knows about it."""

    mode: SdkMode
    target: str
    stdout: str
    expected_steps: tuple[SdkStep, ...]  # start-inscription is added when connect-valid connected
    inscription: bool = True  # the program was asked for start-inscription (else --no-inscription)
    returncode: int | None = 0  # None: killed at kiloscribe-lab's deadline
    deadline_s: float = 0.0
    stderr_tail: str = ""
    label: str | None = None
    node_version: str | None = None  # from inspect_node, for when the program said nothing
    node_path: str | None = None
    sdk_version: str | None = None
    secrets: tuple[str, ...] = field(default=(), repr=False)


def read_records(stdout: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The program's JSON records, and any other line (stray output is kept, not trusted)."""
    records: list[dict[str, Any]] = []
    stray: list[str] = []
    for line in stdout.splitlines():
        text = line.strip()
        if not text:
            continue
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            stray.append(text[:300])
            continue
        if isinstance(data, dict) and isinstance(data.get("kind"), str):
            records.append(data)
        else:
            stray.append(text[:300])
    return records, stray


def status_outcome(status: int) -> Outcome:
    """An answer to the WebSocket upgrade request that was not a usable 101."""
    if status == 101:
        return Outcome.RESET  # the upgrade itself works; the transport broke afterwards
    return upgrade_refusal(status, engineio_path=True)


def transport_outcome(check: Any, description: Any) -> Outcome:
    if isinstance(check, Mapping):
        kind = check.get("kind")
        status = check.get("status")
        if kind == "http" and isinstance(status, int) and not isinstance(status, bool):
            return status_outcome(status)
        if kind in _CHECK_KINDS:
            return _CHECK_KINDS[str(kind)]
    text = description if isinstance(description, str) else ""
    found = _UNEXPECTED_STATUS.search(text)
    if found:
        return status_outcome(int(found.group(1)))
    for pattern, outcome in _TEXT_CLASSES:
        if pattern.search(text):
            return outcome
    return Outcome.BLOCKED


def connect_outcome(message: str, observed: Mapping[str, Any]) -> Outcome:
    """What connectWebSocket's rejection means. ``message`` is the SDK's, verbatim."""
    if message == TIMEOUT_MESSAGE:
        return Outcome.TIMEOUT
    if not message.startswith(FAILED_PREFIX):
        return Outcome.MALFORMED
    reason = message[len(FAILED_PREFIX) :]
    errors = [e for e in observed.get("connect_errors") or [] if isinstance(e, Mapping)]
    last: Mapping[str, Any] = errors[-1] if errors else {}
    if last.get("type") == "TransportError" or (not last and reason in TRANSPORT_REASONS):
        return transport_outcome(observed.get("transport_check"), last.get("description"))
    return Outcome.AUTH_REJECTED if AUTH_WORDS.search(reason) else Outcome.PROTOCOL_MISMATCH


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _log_lines(rec: Mapping[str, Any]) -> list[str]:
    lines = []
    for entry in rec.get("logs") or []:
        if isinstance(entry, Mapping):
            lines.append(f"{entry.get('level', 'log')}: {entry.get('text', '')}")
    return lines


class _Builder:
    """Turns one run's records into results; holds the run-wide facts."""

    def __init__(self, run: ReplayRun, runtime: Mapping[str, Any]) -> None:
        self.run = run
        self.runtime = runtime

    def variant(self, step: SdkStep) -> str:
        return sdk_variant(self.run.mode, step)

    def base_detail(self, step: SdkStep) -> dict[str, Any]:
        rt = self.runtime
        detail: dict[str, Any] = {
            "runtime": f"node-{self.run.mode}",
            "mode": self.run.mode,
            "node_version": rt.get("node_version") or self.run.node_version,
            "node_path": rt.get("node_path") or self.run.node_path,
            "exec_argv": rt.get("exec_argv") or [],
            "websocket_global": rt.get("websocket_global"),
            "xmlhttprequest": rt.get("xmlhttprequest"),
            "sdk_package": SDK_PACKAGE,
            "sdk_version": rt.get("sdk_version") or self.run.sdk_version,
            "step": step,
        }
        if rt.get("node_options"):
            detail["node_options"] = rt["node_options"]
        if rt.get("import_ms") is not None:
            detail["sdk_import_ms"] = rt["import_ms"]
        if self.run.label:
            detail["label"] = self.run.label
        return detail

    def started_at(self, started_ms: Any) -> str | None:
        """Wall-clock start of a step, from node's clock: the result is built later."""
        t0 = _num(self.runtime.get("t0_epoch_ms"))
        offset = _num(started_ms)
        if t0 is None or offset is None:
            return None
        moment = datetime.fromtimestamp((t0 + offset) / 1000, UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def result(
        self,
        step: SdkStep,
        outcome: Outcome,
        error: str | None,
        detail: dict[str, Any],
        *,
        status: int | None = None,
        timings: Timings | None = None,
    ) -> ProbeResult:
        secrets = self.run.secrets
        return ProbeResult(
            probe=ProbeName.SDK_REPLAY,
            variant=self.variant(step),
            target=self.run.target,
            outcome=outcome,
            status=status,
            error=None if error is None else redact(error, secrets),
            timings=timings or Timings(),
            detail=redact(detail, secrets),
            started_at=self.started_at(detail.get("started_ms")) or utc_now(),
        )

    def step_detail(self, step: SdkStep, rec: Mapping[str, Any]) -> dict[str, Any]:
        detail = self.base_detail(step)
        timer = _num(rec.get("sdk_timer_ms"))
        detail.update(
            {
                "credential": rec.get("credential"),
                "sdk_message": rec.get("sdk_message"),
                "sdk_timer_s": None if timer is None else timer / 1000,
                "sdk_log": _log_lines(rec),
                "replay_result": rec.get("result"),
                "started_ms": rec.get("started_ms"),
                "observed": dict(rec.get("observed") or {}),
            }
        )
        return detail


def _connect(b: _Builder, step: SdkStep, rec: Mapping[str, Any]) -> ProbeResult:
    detail = b.step_detail(step, rec)
    elapsed = _num(rec.get("elapsed_ms"))
    observed = detail["observed"]
    check = observed.get("transport_check")
    status = (
        check.get("status") if isinstance(check, Mapping) and isinstance(check.get("status"), int) else None
    )
    result = rec.get("result")
    message = rec.get("sdk_message")
    if result == "resolved":
        return b.result(step, Outcome.OK, None, detail, timings=Timings(handshake=elapsed, total=elapsed))
    if result == "rejected" and isinstance(message, str):
        outcome = connect_outcome(message, observed)
        if outcome is Outcome.TIMEOUT:
            detail["stalled_during"] = "websocket-transport-open"
        return b.result(step, outcome, message, detail, status=status, timings=Timings(total=elapsed))
    if result == "deadline":
        deadline = _num(rec.get("deadline_ms"))
        note = f"connectWebSocket() did not settle within the replay's deadline{_secs(deadline)}"
        return b.result(step, Outcome.TIMEOUT, note, detail, timings=Timings(total=elapsed))
    text = str(message) if message is not None else f"the replay step ended with {result!r}"
    return b.result(step, Outcome.MALFORMED, text, detail, timings=Timings(total=elapsed))


def _secs(ms: float | None) -> str:
    return "" if ms is None else f" ({ms / 1000:g} s)"


def _detect(
    b: _Builder, step: SdkStep, rec: Mapping[str, Any], siblings: Mapping[SdkStep, ProbeResult]
) -> ProbeResult:
    detail = b.step_detail(step, rec)
    elapsed = _num(rec.get("elapsed_ms"))
    timer = _num(rec.get("sdk_timer_ms")) or 3000.0
    detail["sdk_result"] = rec.get("value")
    timings = Timings(total=elapsed)
    if rec.get("result") == "resolved" and rec.get("value") is True:
        detail["chooses"] = "websocket"
        return b.result(
            SdkStep.DETECT, Outcome.OK, None, detail, timings=Timings(handshake=elapsed, total=elapsed)
        )
    if rec.get("result") == "resolved" and rec.get("value") is False:
        detail["chooses"] = "http"
        error = "detectBestConnection() returned false"
        if elapsed is not None and elapsed >= timer - DETECT_TIMER_SLACK_MS:
            detail["stalled_during"] = "websocket-transport-open"
            return b.result(
                SdkStep.DETECT,
                Outcome.TIMEOUT,
                f"{error} at its {timer / 1000:g} s timer",
                detail,
                timings=timings,
            )
        # It says no more than false. The connect with the same key, run beside it, says why.
        same_key = {Credential.VALID: SdkStep.CONNECT_VALID, Credential.INVALID: SdkStep.CONNECT_INVALID}
        sibling_step = (
            same_key.get(Credential(c)) if (c := rec.get("credential")) in set(Credential) else None
        )
        sibling = None if sibling_step is None else siblings.get(sibling_step)
        if sibling is not None and sibling.outcome not in {Outcome.OK, Outcome.TIMEOUT}:
            detail["outcome_from"] = sibling.variant
            return b.result(
                SdkStep.DETECT,
                sibling.outcome,
                f"{error} ({sibling.error})",
                detail,
                status=sibling.status,
                timings=timings,
            )
        return b.result(SdkStep.DETECT, Outcome.HTTP_ERROR, error, detail, timings=timings)
    if rec.get("result") == "deadline":
        return b.result(
            SdkStep.DETECT, Outcome.TIMEOUT, "detectBestConnection() did not settle", detail, timings=timings
        )
    return b.result(
        SdkStep.DETECT,
        Outcome.MALFORMED,
        str(rec.get("sdk_message") or rec.get("result")),
        detail,
        timings=timings,
    )


def _discover(b: _Builder, step: SdkStep, rec: Mapping[str, Any]) -> ProbeResult:
    detail = b.step_detail(step, rec)
    elapsed = _num(rec.get("elapsed_ms"))
    timings = Timings(total=elapsed)
    chosen = rec.get("value")
    detail["chosen"] = chosen if isinstance(chosen, str) else None
    http = detail["observed"].get("http")
    http = http if isinstance(http, Mapping) else {}
    status = http.get("status") if isinstance(http.get("status"), int) else None
    logged = [line for line in detail["sdk_log"] if DISCOVERY_FAILED_LOG in line]
    sdk_line = DISCOVERY_FAILED_LOG if logged else None
    if rec.get("result") == "deadline":
        return b.result(
            SdkStep.DISCOVER,
            Outcome.TIMEOUT,
            "fetchWebSocketServers() did not settle",
            detail,
            timings=timings,
        )
    if status is not None and 200 <= status < 300:
        if detail["chosen"]:
            return b.result(SdkStep.DISCOVER, Outcome.OK, None, detail, status=status, timings=timings)
        return b.result(
            SdkStep.DISCOVER,
            Outcome.MALFORMED,
            "the server list names no usable server",
            detail,
            status=status,
            timings=timings,
        )
    if status is not None:
        if status in {401, 403}:
            outcome = Outcome.AUTH_REJECTED
        elif status in {502, 503, 504}:
            outcome = Outcome.UPSTREAM_ERROR
        elif 300 <= status < 400:
            outcome = Outcome.REDIRECT
        else:
            outcome = Outcome.HTTP_ERROR
    else:
        outcome = transport_outcome(None, " ".join(str(v) for v in http.values() if v))
        if outcome is Outcome.BLOCKED:
            outcome = Outcome.HTTP_ERROR
    return b.result(
        SdkStep.DISCOVER,
        outcome,
        sdk_line or str(http.get("message") or "discovery failed"),
        detail,
        status=status,
        timings=timings,
    )


def _start_inscription(b: _Builder, step: SdkStep, rec: Mapping[str, Any]) -> ProbeResult:
    detail = b.step_detail(step, rec)
    elapsed = _num(rec.get("elapsed_ms"))
    ack = rec.get("ack") if isinstance(rec.get("ack"), Mapping) else None
    detail["ack"] = ack
    emitted = _num(detail["observed"].get("emitted_ms"))
    acked = _num(rec.get("ack_ms"))
    first_byte = acked - emitted if acked is not None and emitted is not None else None
    timings = Timings(first_byte=first_byte, total=elapsed)
    result = rec.get("result")
    message = rec.get("sdk_message")
    if result == "ack":
        return b.result(SdkStep.START_INSCRIPTION, Outcome.OK, None, detail, timings=timings)
    if result == "rejected":
        if ack is not None and ack.get("success") is not True:
            return b.result(
                SdkStep.START_INSCRIPTION, Outcome.HTTP_ERROR, str(message), detail, timings=timings
            )
        if ack is not None:
            return b.result(
                SdkStep.START_INSCRIPTION, Outcome.MALFORMED, str(message), detail, timings=timings
            )
        return b.result(SdkStep.START_INSCRIPTION, Outcome.RESET, str(message), detail, timings=timings)
    if result == "resolved":
        return b.result(SdkStep.START_INSCRIPTION, Outcome.OK, None, detail, timings=timings)
    if result == "deadline":
        deadline = _num(rec.get("deadline_ms"))
        return b.result(
            SdkStep.START_INSCRIPTION,
            Outcome.TIMEOUT,
            f"no start-inscription ack{_secs(deadline)}",
            detail,
            timings=timings,
        )
    return b.result(
        SdkStep.START_INSCRIPTION, Outcome.MALFORMED, str(message or result), detail, timings=timings
    )


def results_from_run(run: ReplayRun) -> list[ProbeResult]:
    """Every step's ProbeResult for one node run, in step order; a missing step says why."""
    records, stray = read_records(run.stdout)
    runtime: Mapping[str, Any] = next((r for r in records if r["kind"] == "runtime"), {})
    b = _Builder(run, runtime)
    fatal = next((r for r in records if r["kind"] == "fatal"), None)
    if fatal is not None and fatal.get("stage") == "import":
        detail = b.base_detail(SdkStep.LOAD)
        detail["sdk_log"] = _log_lines(fatal)
        message = f"the SDK could not be loaded in this runtime: {fatal.get('message')}"
        return [b.result(SdkStep.LOAD, Outcome.MALFORMED, message, detail)]
    steps = {str(r.get("step")): r for r in records if r["kind"] == "step"}
    done = next((r for r in records if r["kind"] == "done"), None)
    expected = list(run.expected_steps)
    connected = steps.get(SdkStep.CONNECT_VALID, {}).get("result") == "resolved"
    if run.inscription and connected and SdkStep.START_INSCRIPTION not in expected:
        expected.append(SdkStep.START_INSCRIPTION)
    results: dict[SdkStep, ProbeResult] = {}
    for step in SdkStep:
        if step is SdkStep.LOAD:
            continue  # not a step the program reports; a failed import is a "fatal" record
        rec = steps.get(step)
        if rec is None:
            if step in expected:
                results[step] = _missing(b, step, run, stray, fatal)
            continue
        if step in {SdkStep.CONNECT_VALID, SdkStep.CONNECT_INVALID}:
            results[step] = _connect(b, step, rec)
        elif step is SdkStep.DETECT:
            results[step] = _detect(b, step, rec, results)
        elif step is SdkStep.DISCOVER:
            results[step] = _discover(b, step, rec)
        else:
            results[step] = _start_inscription(b, step, rec)
    if not run.inscription and SdkStep.CONNECT_VALID in results:
        valid = results[SdkStep.CONNECT_VALID]
        detail = {**valid.detail, "start_inscription": "skipped (--no-inscription)"}
        results[SdkStep.CONNECT_VALID] = replace(valid, detail=detail)
    out = list(results.items())
    extras: dict[str, Any] = {}
    if done is not None and (done.get("logs") or done.get("uncaught")):
        extras = {"sdk_log_unattributed": _log_lines(done), "uncaught": list(done.get("uncaught") or [])}
    if stray:
        extras["stray_output"] = stray[:20]
    if extras and out:
        step, first = out[0]
        out[0] = (
            step,
            b.result(
                step,
                first.outcome,
                first.error,
                {**first.detail, **extras},
                status=first.status,
                timings=first.timings,
            ),
        )
    return [r for _, r in out]


def _missing(
    b: _Builder, step: SdkStep, run: ReplayRun, stray: list[str], fatal: Mapping[str, Any] | None
) -> ProbeResult:
    detail = b.base_detail(step)
    if run.returncode is None:
        why = f"node was stopped at kiloscribe-lab's deadline ({run.deadline_s:g} s) before this step ended"
    elif fatal is not None:
        why = str(fatal.get("message"))
    else:
        why = f"node exited with code {run.returncode} before this step ended"
        if run.stderr_tail:
            why += f": {run.stderr_tail}"
    detail["replay_result"] = "missing"
    return b.result(step, Outcome.TIMEOUT if run.returncode is None else Outcome.MALFORMED, why, detail)
