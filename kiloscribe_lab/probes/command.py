"""``kiloscribe-lab probe`` as a pipeline: validate the request, probe, diagnose.

Validation happens before any traffic, so bad input costs nothing and a missing key
variable or CA file is one clear line (exit 2), never a half-run.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kiloscribe_lab import diagnosis
from kiloscribe_lab.config import InvestigationConfig, load_config
from kiloscribe_lab.errors import SecretError, UsageError
from kiloscribe_lab.names import Severity
from kiloscribe_lab.networks import DIRECT, NetworkProfile
from kiloscribe_lab.probes.base import ProbeOptions
from kiloscribe_lab.probes.runner import Progress, investigate, parse_target
from kiloscribe_lab.probes.wire import parse_endpoint
from kiloscribe_lab.results import Finding, ProbeResult


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    urls: tuple[str, ...]
    discover: str | None = None
    api_key_env: str | None = None
    network: str = "direct"
    config: Path | None = None
    timeout_s: float = 5.0
    attempts: int = 1
    ca_bundle: Path | None = None
    lab_dir: Path | None = None  # where to find lab networks; default $KILOSCRIBE_LAB_DIR or ./.lab
    inscription: bool = True  # sdk_flow's dry-run start-inscription


@dataclass(frozen=True, slots=True)
class ProbeReport:
    results: list[ProbeResult]
    findings: list[Finding]
    verdicts: list[diagnosis.TargetVerdict]
    status: str
    sentence: str
    network: NetworkProfile = field(default=DIRECT)

    @property
    def has_critical(self) -> bool:
        return any(f.severity is Severity.CRITICAL for f in self.findings)

    def json_lines(self) -> Iterator[str]:
        def dump(obj: object) -> str:
            return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))

        for r in self.results:
            yield dump(r.to_json())
        for f in self.findings:
            yield dump(f.to_json())
        for v in self.verdicts:
            yield dump(v.to_json())
        yield dump(
            {
                "kind": "summary",
                "status": self.status,
                "sentence": self.sentence,
                "network": self.network.name,
            }
        )


def resolve_network(
    name: str,
    config: Path | None,
    *,
    lab_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> NetworkProfile:
    """The profile called ``name``: from ``config``, else ``direct``, else from the lab running
    in ``lab_dir`` (default ``$KILOSCRIBE_LAB_DIR`` or ``./.lab``), whose ``lab up`` wrote its
    networks (``polling-only``, ``corporate-proxy``, ``mobile``); else a UsageError."""
    return _resolve_network(name, None if config is None else load_config(config), lab_dir, environ)


def _resolve_network(
    name: str,
    cfg: InvestigationConfig | None,
    lab_dir: Path | None,
    environ: Mapping[str, str] | None,
) -> NetworkProfile:
    if cfg is not None and name in cfg.networks:
        return cfg.networks[name]
    if name == "direct":
        return DIRECT
    from kiloscribe_lab.lab import fleet

    where = lab_dir or fleet.default_lab_dir(os.environ if environ is None else environ)
    profiles = fleet.lab_network_profiles(where)
    if name in profiles:
        return profiles[name]
    known = sorted(set(profiles) - {"direct"})
    hint = (
        f"the lab in {where} has {', '.join(known)}"
        if known
        else f"define it in --config, or start the lab (no lab runs in {where})"
    )
    raise UsageError(f"unknown network {name!r} ({hint})")


def check_key(name: str, environ: Mapping[str, str]) -> None:
    """The key must be usable as a header value. The message names the variable, never the
    value: a key with a stray CR (a CRLF .env file) would otherwise echo in an h11 error."""
    value = environ.get(name, "")
    if not value:
        raise SecretError(f"environment variable {name} is unset or empty")
    if value != value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise SecretError(
            f"environment variable {name} holds white space or control characters around or in "
            "the key (a CRLF .env file?); the value is not shown"
        )


def check_ca_bundle(path: Path) -> None:
    if not path.is_file():
        raise UsageError(f"CA bundle {path} does not exist")
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        raise UsageError(f"CA bundle {path} is not a PEM file of certificates: {exc}") from exc


def validate(request: ProbeRequest, environ: Mapping[str, str]) -> ProbeOptions:
    if not request.urls and request.discover is None:
        raise UsageError("give at least one URL, or --discover API_BASE")
    for url in request.urls:
        parse_target(url)
    if request.discover:
        parse_endpoint(request.discover)
    if request.ca_bundle is not None:
        check_ca_bundle(request.ca_bundle)
    if request.api_key_env is not None:
        if not request.api_key_env.replace("_", "").isalnum():
            raise UsageError(f"--api-key-env takes a variable NAME, got {request.api_key_env!r}")
        check_key(request.api_key_env, environ)
    cfg = None if request.config is None else load_config(request.config)
    network = _resolve_network(request.network, cfg, request.lab_dir, environ)
    if network.ca_bundle is not None and not network.ca_bundle.is_file():
        raise UsageError(f"network {network.name}: CA bundle {network.ca_bundle} does not exist")
    inscription = request.inscription and (cfg is None or cfg.inscription)  # either "off" holds
    return ProbeOptions(
        timeout_s=request.timeout_s,
        attempts=request.attempts,
        ca_bundle=request.ca_bundle,
        api_key_env=request.api_key_env,
        network=network,
        inscription=inscription,
    )


def build_report(
    results: list[ProbeResult], api_key_env: str | None, network: NetworkProfile = DIRECT
) -> ProbeReport:
    findings = diagnosis.diagnose(results, api_key_env)
    target_verdicts = diagnosis.verdicts(results)
    status, sentence = diagnosis.overall(findings, target_verdicts)
    return ProbeReport(results, findings, target_verdicts, status, sentence, network)


def run_probe(
    request: ProbeRequest,
    *,
    environ: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    started: float | None = None,
) -> ProbeReport:
    env = dict(os.environ if environ is None else environ)
    options = validate(request, env)
    results = asyncio.run(
        investigate(
            request.urls, options, discover=request.discover, environ=env, progress=progress, started=started
        )
    )
    return build_report(results, request.api_key_env, options.network)
