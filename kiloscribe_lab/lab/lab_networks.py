"""The lab's networks: the same lab seen from the networks users are on.

``lab up`` starts them beside the fleet and ``lab down`` stops them:

``direct``           no proxy: the probes' own connections.
``polling-only``     no proxy: a client restricted to ``transports: ['polling']``.
``corporate-proxy``  a real TLS-inspecting forward proxy (mitmproxy's ``mitmdump``) with a
                     small policy of ours: ordinary HTTPS passes, WebSocket upgrades are
                     refused with 403. Its clients trust mitmproxy's CA like a corporate root.
``mobile``           ``mitmdump`` relaying CONNECT tunnels untouched through a slow link: each
                     chunk is held RTT/2 in each direction (default 150 ms ± 10 ms round trip).
                     Kernel netem would be the first choice; it is not available on these
                     machines, so the delay is injected at the TCP stream level instead.

One ``mitmdump`` process (component ``proxies``) listens once per proxied network and runs
``kiloscribe_lab/lab/mitm_network.py`` as its addon. mitmproxy lives in its own virtualenv
(``.venv/tools/mitmproxy``, installed by ``make setup``): its pins (h11, h2, tornado, ...)
conflict with the project's, and 12.x needs Python 3.12.

The profiles are written as ``<lab>/networks.toml`` in the investigation-config format, so
``kiloscribe-lab probe --network NAME`` and ``report --config`` use them like any others.
This module is pure except for the readiness check and the files it writes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kiloscribe_lab.errors import ConfigError, LabStartError
from kiloscribe_lab.names import NetworkName

LOOPBACK = "127.0.0.1"
DIRECT = NetworkName.DIRECT
POLLING_ONLY = NetworkName.POLLING_ONLY
CORPORATE = NetworkName.CORPORATE_PROXY
MOBILE = NetworkName.MOBILE
LAB_NETWORKS: tuple[NetworkName, ...] = (DIRECT, POLLING_ONLY, CORPORATE, MOBILE)
PROXIED: tuple[NetworkName, ...] = (CORPORATE, MOBILE)
PROXY_COMPONENT = "proxies"  # the mitmdump process, in lab.json and `lab status`

MITMPROXY_VERSION = "11.0.2"  # the last release for Python 3.11 (12.x needs 3.12); pinned in the Makefile
MITMDUMP_ENV = "KILOSCRIBE_MITMDUMP"  # an explicit mitmdump, else <venv>/tools/mitmproxy/bin/mitmdump
NETWORKS_FILE = "networks.toml"
CORPORATE_CA_FILE = "corporate-ca.pem"
MITM_CONFDIR = "mitmproxy"
MITM_CA_CERT = "mitmproxy-ca-cert.pem"
ADDON = Path(__file__).with_name("mitm_network.py")

RTT_ENV = "KILOSCRIBE_LAB_MOBILE_RTT_MS"
JITTER_ENV = "KILOSCRIBE_LAB_MOBILE_JITTER_MS"
BLOCKED_BODY = "WebSocket blocked by corporate policy"


@dataclass(frozen=True, slots=True)
class MobileLink:
    """What the ``mobile`` network adds: a round trip of ``rtt_ms`` ± ``jitter_ms``."""

    rtt_ms: int = 150
    jitter_ms: int = 10

    def __post_init__(self) -> None:
        if not 0 <= self.rtt_ms <= 10_000 or not 0 <= self.jitter_ms <= self.rtt_ms:
            raise ConfigError(
                f"mobile link: rtt_ms must be 0..10000 and jitter_ms 0..rtt_ms, got "
                f"{self.rtt_ms} ± {self.jitter_ms}"
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MobileLink:
        values = {}
        for name, key in ((RTT_ENV, "rtt_ms"), (JITTER_ENV, "jitter_ms")):
            raw = environ.get(name, "").strip()
            if raw:
                try:
                    values[key] = int(raw)
                except ValueError:
                    raise ConfigError(f"{name} must be a whole number of milliseconds, got {raw!r}") from None
        return cls(**values)

    def to_json(self) -> dict[str, int]:
        return {"rtt_ms": self.rtt_ms, "jitter_ms": self.jitter_ms}


def proxy_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def network_urls(proxy_ports: Mapping[str, int]) -> dict[str, str | None]:
    """``lab up --json``'s ``networks``: name -> proxy URL, or null for no proxy."""
    return {name: proxy_url(proxy_ports[name]) if name in proxy_ports else None for name in LAB_NETWORKS}


# --- mitmdump ----------------------------------------------------------------------------------


def mitmdump_binary(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    explicit = env.get(MITMDUMP_ENV)
    if explicit:
        if not Path(explicit).is_file():
            raise LabStartError(f"${MITMDUMP_ENV} = {explicit}: no such file")
        return explicit
    beside = Path(sys.prefix) / "tools" / "mitmproxy" / "bin" / "mitmdump"
    if beside.is_file():
        return str(beside)
    found = shutil.which("mitmdump")
    if found is None:
        raise LabStartError(
            f"mitmdump not found: the lab's proxies need mitmproxy=={MITMPROXY_VERSION} in "
            f"{beside.parent.parent} (run `make setup`), or set ${MITMDUMP_ENV}"
        )
    return found


def proxy_argv(
    mitmdump: str,
    proxy_ports: Mapping[str, int],
    lab_dir: Path,
    *,
    upstream_ca: Path,
    corporate_ports: Sequence[int],
    link: MobileLink,
) -> list[str]:
    """The command line of the one mitmdump that serves every proxied network. Pure."""
    argv = [mitmdump, "--set", f"confdir={lab_dir / MITM_CONFDIR}"]
    for name in PROXIED:
        argv += ["--mode", f"regular@{LOOPBACK}:{proxy_ports[name]}"]
    argv += [
        "--set", "connection_strategy=eager",  # answer CONNECT once the target took the connection
        "--set", f"ssl_verify_upstream_trusted_ca={upstream_ca}",  # the corporate proxy's upstream
        "--set", "termlog_verbosity=info",
        "--set", "flow_detail=1",
        "-s", str(ADDON),
        "--set", "lab_networks=" + ",".join(f"{name}={proxy_ports[name]}" for name in PROXIED),
        "--set", "corporate_ports=" + ",".join(str(p) for p in sorted(set(corporate_ports))),
        "--set", f"mobile_rtt_ms={link.rtt_ms}",
        "--set", f"mobile_jitter_ms={link.jitter_ms}",
    ]  # fmt: skip
    return argv


def proxy_environment(base: Mapping[str, str]) -> dict[str, str]:
    """mitmdump runs its own interpreter: nothing of ours may leak onto its import path."""
    return {k: v for k, v in base.items() if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP"}}


# --- files -------------------------------------------------------------------------------------


def write_corporate_bundle(lab_dir: Path, lab_ca: Path) -> Path:
    """The corporate network's trust: mitmproxy's CA (the 'corporate root') and the lab CA."""
    mitm_ca = lab_dir / MITM_CONFDIR / MITM_CA_CERT
    bundle = lab_dir / CORPORATE_CA_FILE
    tmp = bundle.with_suffix(".tmp")
    tmp.write_text(mitm_ca.read_text().rstrip() + "\n" + lab_ca.read_text().rstrip() + "\n")
    tmp.replace(bundle)
    return bundle


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def render_networks_toml(
    *,
    endpoints: Sequence[str],
    api_base: str,
    api_key_env: str,
    ca_bundle: Path,
    proxy_ports: Mapping[str, int],
    corporate_ca: Path,
    scenario: str,
    link: MobileLink,
) -> str:
    """The lab's networks as an investigation config (``[networks.NAME]`` tables). Pure."""

    def strings(values: Sequence[str]) -> str:
        return "[" + ", ".join(_toml_string(v) for v in values) + "]"

    lines = [
        f"# Written by `kiloscribe-lab lab up` (scenario {scenario}); removed by `lab down`.",
        "# The lab's network profiles, usable as --config for `probe --network NAME` and `report`.",
        "",
        "[investigation]",
        f"endpoints = {strings(endpoints)}",
        f"api_base = {_toml_string(api_base)}",
        f"api_key_env = {_toml_string(api_key_env)}",
        f"networks = {strings(LAB_NETWORKS)}",
        f"ca_bundle = {_toml_string(str(ca_bundle))}",
        "",
        f"[networks.{POLLING_ONLY}]",
        'transports = ["polling"]',
        "",
        f"# a TLS-inspecting proxy (mitmproxy) that refuses WebSocket upgrades: {BLOCKED_BODY}",
        f"[networks.{CORPORATE}]",
        f"proxy = {_toml_string(proxy_url(proxy_ports[CORPORATE]))}",
        f"ca_bundle = {_toml_string(str(corporate_ca))}",
        "",
        f"# a slow link: {link.rtt_ms} ms ± {link.jitter_ms} ms round trip added to every TCP stream",
        f"[networks.{MOBILE}]",
        f"proxy = {_toml_string(proxy_url(proxy_ports[MOBILE]))}",
        "",
    ]
    return "\n".join(lines)


# --- readiness ---------------------------------------------------------------------------------


class ConnectCheck:
    """Non-blocking: does a CONNECT through the proxy to ``target_port`` get a 2xx?

    ``poll()`` returns None while the answer is pending (the mobile proxy answers only
    after a round trip), "" once the tunnel was granted, or why not.
    """

    def __init__(self, proxy_port: int, target_port: int) -> None:
        self.proxy_port = proxy_port
        self.target = f"{LOOPBACK}:{target_port}"
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _start(self) -> socket.socket | str:
        """A socket with the CONNECT sent, or why it could not be sent."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.settimeout(0.5)
        try:
            sock.connect((LOOPBACK, self.proxy_port))
            sock.sendall(f"CONNECT {self.target} HTTP/1.1\r\nHost: {self.target}\r\n\r\n".encode())
        except OSError as exc:
            sock.close()
            return f"{type(exc).__name__}: {exc}"
        sock.setblocking(False)
        self.sock = sock
        self.buffer = b""
        return sock

    def poll(self) -> str | None:
        sock = self.sock if self.sock is not None else self._start()
        if isinstance(sock, str):
            return sock
        try:
            chunk = sock.recv(4096)
        except BlockingIOError:
            return None
        except OSError as exc:
            self.close()
            return f"{type(exc).__name__}: {exc}"
        self.buffer += chunk
        if not chunk or b"\r\n" in self.buffer:
            line = self.buffer.split(b"\r\n", 1)[0].decode("latin-1")
            self.close()
            parts = line.split()
            if len(parts) >= 2 and parts[1].startswith("2"):
                return ""
            return f"CONNECT answered {line!r}" if line else "the proxy closed the connection"
        return None

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None


def check_connect(proxy_port: int, target_port: int, timeout_s: float = 1.0) -> str:
    """Blocking variant for ``lab status``: "" when a CONNECT is granted, else why not."""
    import time

    check = ConnectCheck(proxy_port, target_port)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            answer = check.poll()
            if answer is not None:
                return answer
            time.sleep(0.01)
        return f"no answer to CONNECT within {timeout_s:g} s"
    finally:
        check.close()
