"""``kiloscribe-lab probe`` as a pipeline: validate the request, probe, diagnose.

Validation happens before any traffic, so bad input costs nothing and a missing key
variable or CA file is one clear line (exit 2), never a half-run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kiloscribe_lab import diagnosis
from kiloscribe_lab.config import InvestigationConfig, load_config
from kiloscribe_lab.credentials import is_env_name, read_key
from kiloscribe_lab.endpoints import parse_endpoint, parse_origin, parse_target
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.files import CA_BUNDLE_LIMIT, check_file
from kiloscribe_lab.names import NetworkName, Severity
from kiloscribe_lab.networks import DIRECT, NetworkProfile
from kiloscribe_lab.probes.runner import Progress, investigate
from kiloscribe_lab.results import Finding, ProbeResult, json_line
from kiloscribe_lab.settings import DEFAULT_FILE_SIZE, MAX_FILE_SIZE, ProbeOptions, ProbeSettings
from kiloscribe_lab.untrusted import one_line


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    urls: tuple[str, ...]
    discover: str | None = None
    network: str = NetworkName.DIRECT
    config: Path | None = None
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    # Networks defined elsewhere (the running lab's, passed in by the caller: probes do not
    # import the lab), and where they came from, for the message when ``network`` is unknown.
    known_networks: Mapping[str, NetworkProfile] = field(default_factory=dict)
    known_networks_source: str = ""


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
        dump = json_line
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


def _resolve_network(name: str, cfg: InvestigationConfig | None, request: ProbeRequest) -> NetworkProfile:
    """The profile called ``name``: from the config, else ``direct``, else one the caller knows
    (the running lab's); else a UsageError that says where networks come from."""
    if cfg is not None and name in cfg.networks:
        return cfg.networks[name]
    if name == NetworkName.DIRECT:
        return DIRECT
    if name in request.known_networks:
        return request.known_networks[name]
    known = sorted(set(request.known_networks) - {NetworkName.DIRECT})
    where = request.known_networks_source
    if known:
        hint = f"{where} has {', '.join(known)}" if where else f"known: {', '.join(known)}"
    else:
        hint = "define it in --config, or start the lab" + (f" ({where})" if where else "")
    raise UsageError(f"unknown network {str(name)!r} ({hint})")


def check_ca_bundle(path: Path, what: str = "CA bundle") -> None:
    """A PEM file of certificates, checked (a regular file of sane size) before OpenSSL reads it."""
    check_file(path, what, CA_BUNDLE_LIMIT, UsageError)
    try:
        ssl.create_default_context(cafile=str(path))
    except (ssl.SSLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UsageError(
            f"{what} {one_line(path, 200)} is not a PEM file of certificates: {one_line(reason, 120)}"
        ) from exc


def validate(request: ProbeRequest, environ: Mapping[str, str], *, strict: bool = False) -> ProbeOptions:
    if not request.urls and request.discover is None:
        raise UsageError("give at least one URL, or --discover API_BASE")
    for url in request.urls:
        parse_target(url)
    if request.discover:
        parse_endpoint(request.discover)
    settings = request.settings
    if settings.ca_bundle is not None:
        check_ca_bundle(settings.ca_bundle)
    if settings.api_key_env is not None:
        if not is_env_name(settings.api_key_env):
            raise UsageError("--api-key-env takes an environment variable NAME such as KILOSCRIBE_API_KEY")
        read_key(settings.api_key_env, environ)
    cfg = None if request.config is None else load_config(request.config)
    network = _resolve_network(request.network, cfg, request)
    if network.ca_bundle is not None:
        check_file(
            network.ca_bundle, f"network {one_line(network.name, 60)}: CA bundle", CA_BUNDLE_LIMIT, UsageError
        )
    if cfg is not None and not cfg.settings.inscription:
        settings = dataclasses.replace(settings, inscription=False)  # either "off" holds
    origin = settings.origin if settings.origin is not None else cfg.settings.origin if cfg else None
    if origin is not None:  # --origin wins over the config's
        settings = dataclasses.replace(settings, origin=parse_origin(origin))
    if cfg is not None and cfg.deep:
        settings = dataclasses.replace(settings, deep=True)  # --deep or the config's: either "on" holds
    if cfg is not None and settings.file_size == DEFAULT_FILE_SIZE:
        settings = dataclasses.replace(settings, file_size=cfg.settings.file_size)  # --file-size wins
    if not 1 <= settings.file_size <= MAX_FILE_SIZE:
        raise UsageError(f"--file-size must be 1..{MAX_FILE_SIZE} bytes, got {settings.file_size}")
    return ProbeOptions.of(settings, network, strict=strict)


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
    return build_report(results, options.api_key_env, options.network)
