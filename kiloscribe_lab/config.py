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
    deep = true                                   # the slow probes too (the report's default)
    file_size = 524288                            # bytes of the files users inscribe

    [networks.corporate]
    proxy = "http://proxy.corp.example:3128"
    transports = ["polling"]

    [cluster]                                     # optional: run the matrix on Dask workers
    scheduler = "tcp://scheduler.example:8786"
    vantages = ["eu-west", "corp-office"]         # worker names; omitted: every worker
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab.credentials import is_env_name
from kiloscribe_lab.endpoints import parse_endpoint, parse_origin
from kiloscribe_lab.errors import ConfigError, UsageError
from kiloscribe_lab.files import CA_BUNDLE_LIMIT, CONFIG_LIMIT, check_file, read_text
from kiloscribe_lab.names import NetworkName, VantageName
from kiloscribe_lab.networks import DIRECT, NetworkProfile, profile_from_mapping
from kiloscribe_lab.settings import DEFAULT_FILE_SIZE, MAX_FILE_SIZE, ProbeSettings
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
    "deep",
    "file_size",
}


CLUSTER_KEYS = {"scheduler", "vantages"}


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """A running Dask cluster to run the matrix on: its scheduler, and which of its workers
    (by ``--name``) are the vantages; None: every worker the scheduler has."""

    scheduler: str
    vantages: tuple[str, ...] | None = None


def check_vantage_names(names: Sequence[object], where: str) -> tuple[str, ...]:
    """Worker names as vantages: non-empty strings, each once, and never ``local`` (this machine)."""
    out: list[str] = []
    for name in names:
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise ConfigError(
                f"{where}: a vantage is a worker's name (dask worker --name NAME), got {name!r}"
            )
        if name == VantageName.LOCAL:
            raise ConfigError(
                f"{where}: {VantageName.LOCAL!s} is this machine's vantage, not a worker's: "
                "start the worker with another --name"
            )
        if name in out:
            raise ConfigError(f"{where}: vantage {name!r} is given twice")
        out.append(name)
    if not out:
        raise ConfigError(f"{where}: give at least one vantage, or omit them for every worker")
    return tuple(out)


def check_scheduler(address: object, where: str) -> str:
    """A scheduler address as Dask takes it (``tcp://host:port``; no scheme is tcp)."""
    if not isinstance(address, str) or not address.strip() or any(c.isspace() for c in address.strip()):
        raise ConfigError(f"{where}: the scheduler is an address such as tcp://scheduler.example:8786")
    return address.strip()


@dataclass(frozen=True, slots=True)
class InvestigationConfig:
    endpoints: tuple[str, ...]
    api_base: str | None = None
    run_networks: tuple[str, ...] = (NetworkName.DIRECT,)
    networks: Mapping[str, NetworkProfile] = field(default_factory=lambda: {NetworkName.DIRECT: DIRECT})
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    source: Path | None = None
    # `deep` as the file says it; None when it does not: each command's own default then
    # (`probe` off, `report` on). ``settings.deep`` is this or False.
    deep: bool | None = None
    cluster: ClusterSpec | None = None


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{where} has the wrong type ({type(value).__name__})")
    return value


def parse_config(data: Mapping[str, Any], source: Path | None = None) -> InvestigationConfig:
    where = str(source) if source else "config"
    unknown = set(data) - {"investigation", "networks", "cluster"}
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
    deep = inv.get("deep")
    if deep is not None:
        _expect(deep, bool, f"{where}: deep")
    file_size = _expect(inv.get("file_size", DEFAULT_FILE_SIZE), int, f"{where}: file_size")
    if not 1 <= file_size <= MAX_FILE_SIZE:
        raise ConfigError(f"{where}: file_size must be 1..{MAX_FILE_SIZE} bytes")
    cluster = None
    if "cluster" in data:
        table = _expect(data["cluster"], dict, f"{where}: [cluster]")
        bad_keys = set(table) - CLUSTER_KEYS
        if bad_keys:
            raise ConfigError(f"{where}: [cluster] has unknown keys {sorted(bad_keys)}")
        if "scheduler" not in table:
            raise ConfigError(f'{where}: [cluster] needs scheduler = "tcp://HOST:PORT"')
        vantages = table.get("vantages")
        cluster = ClusterSpec(
            check_scheduler(table["scheduler"], f"{where}: [cluster] scheduler"),
            None
            if vantages is None
            else check_vantage_names(
                _expect(vantages, list, f"{where}: [cluster] vantages"), f"{where}: [cluster]"
            ),
        )
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
            deep=bool(deep),
            file_size=file_size,
        ),
        source=source,
        deep=deep,
        cluster=cluster,
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
