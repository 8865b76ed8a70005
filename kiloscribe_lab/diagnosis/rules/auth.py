"""Auth: what the server said to the configured key and to a deliberately invalid one."""

from __future__ import annotations

from kiloscribe_lab.diagnosis.evidence import Evidence, credential_of, refs, targets_of
from kiloscribe_lab.diagnosis.registry import Draft, rule
from kiloscribe_lab.names import (
    Credential,
    FindingId,
    Outcome,
    ProbeName,
    SdkStep,
    Severity,
    parse_sdk_variant,
)
from kiloscribe_lab.results import ProbeResult

# The SDK replay's connect with each key, beside socketio_connect's.
_SDK_CONNECT = {Credential.VALID: SdkStep.CONNECT_VALID, Credential.INVALID: SdkStep.CONNECT_INVALID}


def _auth_results(ev: Evidence, credential: Credential) -> list[ProbeResult]:
    """Every connect that sent ``credential``: socketio_connect's, then the SDK replay's."""
    step = _SDK_CONNECT[credential]
    return [r for r in ev.where(ProbeName.SOCKETIO_CONNECT) if credential_of(r) is credential] + [
        r for r in ev.where(ProbeName.SDK_REPLAY) if parse_sdk_variant(r.variant)[1] is step
    ]


@rule(
    FindingId.AUTH_REJECTED,
    severities={Severity.CRITICAL},
    # The invalid key was refused too, but "the auth path is healthy" would mislead.
    supersedes={FindingId.AUTH_PATH_HEALTHY},
    title="The configured API key is refused",
    means="The server refuses the configured key in its own words: the path works; the key, or the "
    "server's key check, is the fault.",
    evidence="A Socket.IO or SDK connect with the configured key refused with CONNECT_ERROR, or discovery "
    "refusing the call while a key is configured.",
)
def auth_rejected(ev: Evidence) -> Draft | None:
    refused = [r for r in _auth_results(ev, Credential.VALID) if r.outcome is Outcome.AUTH_REJECTED]
    if ev.api_key_env:  # without a configured key, a 401 from discovery is not "the key refused"
        refused += [r for r in ev.where(ProbeName.DISCOVERY) if r.outcome is Outcome.AUTH_REJECTED]
    if not refused:
        return None
    name = f"${ev.api_key_env}" if ev.api_key_env else "the configured key"
    messages = sorted({str(r.error) for r in refused if r.error})
    return Draft(
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
        evidence=refs(refused),
        targets=targets_of(refused),
    )


@rule(
    FindingId.AUTH_PATH_HEALTHY,
    severities={Severity.INFO},
    title="The auth path works",
    means="A deliberately invalid key is refused with the server's own message: client and application "
    "talked. Expected, not an outage.",
    evidence="A Socket.IO or SDK connect with a deliberately invalid key refused with CONNECT_ERROR.",
)
def auth_path_healthy(ev: Evidence) -> Draft | None:
    refused = [r for r in _auth_results(ev, Credential.INVALID) if r.outcome is Outcome.AUTH_REJECTED]
    if not refused:
        return None
    messages = sorted({str(r.error) for r in refused if r.error})
    return Draft(
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
        evidence=refs(refused),
        targets=targets_of(refused),
    )
