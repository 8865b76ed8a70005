"""Investigation config (TOML): endpoints, discovery, networks, attempts, timeouts.

Secrets never live here: the config names the environment variable that holds the key.
Every error is a ConfigError that names the file and the key, raised before anything runs::

    [investigation]
    endpoints = ["wss://inscribe.example.com", "https://inscribe-1.example.com"]
    api_base = "https://api.example.com/api"      # optional: discovery
    api_key_env = "KILOSCRIBE_API_KEY"            # the variable's NAME
    networks = ["direct", "corporate"]            # which profiles to run
    attempts = 3
    timeout = 5.0
    ca_bundle = "ca.pem"                          # relative to this file
    inscription = false                           # skip the dry-run start-inscription
    origin = "https://app.example.com"            # probe as a browser page there (CORS)

    [networks.corporate]
    proxy = "http://proxy.corp.example:3128"
    transports = ["polling"]
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab.credentials import is_env_name
from kiloscribe_lab.endpoints import parse_endpoint, parse_origin
from kiloscribe_lab.errors import ConfigError, UsageError
from kiloscribe_lab.files import CA_BUNDLE_LIMIT, CONFIG_LIMIT, check_file, read_text
from kiloscribe_lab.names import NetworkName
from kiloscribe_lab.networks import DIRECT, NetworkProfile, profile_from_mapping
from kiloscribe_lab.settings import ProbeSettings
from kiloscribe_lab.untrusted import one_line

INVESTIGATION_KEYS = {
    "endpoints",
    "api_base",
    "api_key_env",
    "networks",
    "attempts",
    "timeout",
    "ca_bundle",
    "inscription",
    "origin",
}


@dataclass(frozen=True, slots=True)
class InvestigationConfig:
    endpoints: tuple[str, ...]
    api_base: str | None = None
    run_networks: tuple[str, ...] = (NetworkName.DIRECT,)
    networks: Mapping[str, NetworkProfile] = field(default_factory=lambda: {NetworkName.DIRECT: DIRECT})
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    source: Path | None = None


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where} has the wrong type ({type(value).__name__})")
    return value


def parse_config(data: Mapping[str, Any], source: Path | None = None) -> InvestigationConfig:
    where = str(source) if source else "config"
    unknown = set(data) - {"investigation", "networks"}
    if unknown:
        raise ConfigError(f"{where}: unknown tables {sorted(unknown)}")
    inv = _expect(data.get("investigation", {}), dict, f"{where}: [investigation]")
    bad = set(inv) - INVESTIGATION_KEYS
    if bad:
        raise ConfigError(f"{where}: [investigation] has unknown keys {sorted(bad)}")
    endpoints = tuple(_expect(inv.get("endpoints", []), list, f"{where}: endpoints"))
    api_base = inv.get("api_base")
    if not endpoints and api_base is None:
        raise ConfigError(f"{where}: give [investigation] endpoints, api_base, or both")
    for url in (*endpoints, *([api_base] if api_base is not None else [])):
        _expect(url, str, f"{where}: every endpoint and api_base")
        try:
            parse_endpoint(url)
        except UsageError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    key_env = inv.get("api_key_env")
    if key_env is not None and not is_env_name(key_env):
        raise ConfigError(f"{where}: api_key_env must be an environment variable NAME")
    profiles: dict[str, NetworkProfile] = {NetworkName.DIRECT: DIRECT}
    for name, table in _expect(data.get("networks", {}), dict, f"{where}: [networks]").items():
        profile = profile_from_mapping(name, _expect(table, dict, f"{where}: [networks.{name}]"))
        if profile.ca_bundle is not None and source is not None and not profile.ca_bundle.is_absolute():
            profile = dataclasses.replace(profile, ca_bundle=source.parent / profile.ca_bundle)
        profiles[name] = profile
    run = tuple(_expect(inv.get("networks", [NetworkName.DIRECT]), list, f"{where}: networks"))
    missing = [n for n in run if n not in profiles]
    if missing or not run:
        raise ConfigError(f"{where}: networks {missing or run} are not defined under [networks]")
    attempts = _expect(inv.get("attempts", 1), int, f"{where}: attempts")
    timeout = float(_expect(inv.get("timeout", 5.0), (int, float), f"{where}: timeout"))
    if not 1 <= attempts <= 1000 or not 0 < timeout <= 600:
        raise ConfigError(f"{where}: attempts must be 1..1000 and timeout 0..600 s")
    ca = inv.get("ca_bundle")
    ca_path = None
    if ca is not None:
        ca_path = Path(_expect(ca, str, f"{where}: ca_bundle"))
        if source is not None and not ca_path.is_absolute():
            ca_path = source.parent / ca_path
        check_file(ca_path, f"{where}: ca_bundle", CA_BUNDLE_LIMIT)
    inscription = _expect(inv.get("inscription", True), bool, f"{where}: inscription")
    origin = inv.get("origin")
    if origin is not None:
        try:
            origin = parse_origin(_expect(origin, str, f"{where}: origin"))
        except UsageError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
    return InvestigationConfig(
        endpoints=endpoints,
        api_base=api_base,
        run_networks=run,
        networks=profiles,
        settings=ProbeSettings(
            timeout_s=timeout,
            attempts=attempts,
            ca_bundle=ca_path,
            api_key_env=key_env,
            inscription=inscription,
            origin=origin,
        ),
        source=source,
    )


def load_config(path: Path) -> InvestigationConfig:
    text = read_text(path, "config", CONFIG_LIMIT)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config {one_line(path, 200)} is not valid TOML: {one_line(exc, 160)}") from exc
    except RecursionError:  # arrays nested thousands deep
        raise ConfigError(f"config {one_line(path, 200)} is not valid TOML: nested too deep") from None
    return parse_config(data, path)
