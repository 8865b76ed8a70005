"""Software no one here wrote, started on loopback for the foreign-server tests: python-socketio
(the real library, under uvicorn), a plain WebSocket server (the ``websockets`` library), real
nginx with hand-written configs, OpenSSL-made certificate chains, and one tiny stand-in for a
CDN's challenge. Each starts in a process group of its own and is stopped by its id (SIGTERM,
then SIGKILL) when its block ends; its output goes to a log file kept for the failure message.

nginx is required, never skipped: CI installs it in ``make setup``; a missing binary fails.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).parent
START_S = 10.0  # a server that is not accepting by then failed to start
STOP_S = 2.0


class StartError(RuntimeError):
    """A foreign server did not start: the test fails with its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepting(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)  # our child leads its own group
        try:
            self.process.wait(STOP_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_S)


@dataclass(frozen=True)
class Spec:
    name: str
    argv: Sequence[str]
    port: int
    env: dict[str, str] | None = None


@contextlib.contextmanager
def running_all(specs: Sequence[Spec], log_dir: Path) -> Iterator[list[Proc]]:
    """Start every spec at once, wait until each one's port accepts, yield; all are stopped
    afterwards, whatever happened (started together: interpreters start in parallel)."""
    procs: list[Proc] = []
    try:
        for spec in specs:
            log = log_dir / f"{spec.name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    list(spec.argv),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=spec.env,
                )
            procs.append(Proc(spec.name, process, log))
        deadline = time.monotonic() + START_S
        for spec, proc in zip(specs, procs, strict=True):
            while not _accepting(spec.port):
                if proc.process.poll() is not None or time.monotonic() > deadline:
                    log = proc.log.read_text(errors="replace")
                    raise StartError(f"{spec.name} did not start on port {spec.port}:\n{log}")
                time.sleep(0.05)
        yield procs
    finally:
        for proc in procs:
            proc.stop()


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], port: int, log_dir: Path, env: dict[str, str] | None = None
) -> Iterator[Proc]:
    """Start ``argv``, wait until ``port`` accepts, yield; always stopped afterwards."""
    with running_all([Spec(name, argv, port, env)], log_dir) as (proc,):
        yield proc


# --- python-socketio and websockets ------------------------------------------------------------


def pysio_spec(
    key: str,
    *,
    name: str = "pysio",
    transports: str = "polling,websocket",
    cors: str = "*",
    no_ack: bool = False,
    path: str = "socket.io",
) -> Spec:
    """A python-socketio server (pysio_server.py) on a free port."""
    port = free_port()
    argv = [sys.executable, str(HERE / "pysio_server.py"), "--port", str(port), "--transports", transports]
    argv += ["--cors", cors, "--path", path, *(["--no-ack"] if no_ack else [])]
    return Spec(name, argv, port, {**os.environ, "KILOSCRIBE_API_KEY": key})


@contextlib.contextmanager
def pysio(
    log_dir: Path,
    key: str,
    *,
    transports: str = "polling,websocket",
    cors: str = "*",
    no_ack: bool = False,
    path: str = "socket.io",
) -> Iterator[int]:
    """One python-socketio server: yields its port."""
    spec = pysio_spec(key, transports=transports, cors=cors, no_ack=no_ack, path=path)
    with running_all([spec], log_dir):
        yield spec.port


@contextlib.contextmanager
def pysio_fleet(log_dir: Path, key: str, count: int) -> Iterator[list[int]]:
    """``count`` python-socketio servers, started together: yields their ports."""
    specs = [pysio_spec(key, name=f"pysio-{i}") for i in range(count)]
    with running_all(specs, log_dir):
        yield [s.port for s in specs]


@contextlib.contextmanager
def plain_websocket(log_dir: Path, greeting: str = "") -> Iterator[int]:
    """A plain WebSocket server (plain_ws.py): yields its port."""
    port = free_port()
    argv = [sys.executable, str(HERE / "plain_ws.py"), "--port", str(port)]
    if greeting:
        argv += ["--greeting", greeting]
    with running("plain-ws", argv, port, log_dir):
        yield port


# --- nginx --------------------------------------------------------------------------------------

NGINX_HEAD = """\
daemon off;
master_process on;
worker_processes 1;
pid {lab}/nginx.pid;
error_log {lab}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {lab}/access.log;
    client_body_temp_path {lab}/tmp/client_body;
    proxy_temp_path {lab}/tmp/proxy;
    fastcgi_temp_path {lab}/tmp/fastcgi;
    uwsgi_temp_path {lab}/tmp/uwsgi;
    scgi_temp_path {lab}/tmp/scgi;
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      close;
    }}
"""

# What a Socket.IO location needs; left out, nginx speaks HTTP/1.0 upstream and drops them.
UPGRADE_HEADERS = """\
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
"""


def nginx_conf(
    lab: Path,
    port: int,
    upstreams: Sequence[int],
    *,
    sticky: bool,
    upgrade: bool,
    extra_http: str = "",
    extra_location: str = "",
    tls: tuple[Path, Path] | None = None,
) -> str:
    """An nginx config as people write it: one upstream block, one proxied location."""
    servers = "".join(f"        server 127.0.0.1:{p};\n" for p in upstreams)
    listen = f"127.0.0.1:{port}" + (" ssl" if tls else "")
    certs = f"        ssl_certificate {tls[0]};\n        ssl_certificate_key {tls[1]};\n" if tls else ""
    return (
        NGINX_HEAD.format(lab=lab)
        + extra_http
        + "    upstream socketio {\n"
        + ("        hash $remote_addr consistent;\n" if sticky else "")
        + servers
        + "    }\n"
        + f"    server {{\n        listen {listen};\n{certs}"
        + "        location / {\n"
        + extra_location
        + "            proxy_pass http://socketio;\n"
        + (UPGRADE_HEADERS if upgrade else "")
        + "            proxy_set_header Host $host;\n"
        + "        }\n    }\n}\n"
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
    if found is None:
        # Never a skip: CI installs nginx-light in `make setup`, and so must a developer.
        raise StartError("nginx is not installed: run `make setup` (or apt-get install nginx-light)")
    return found


@contextlib.contextmanager
def nginx(log_dir: Path, conf_for: object) -> Iterator[int]:
    """Real nginx with the config ``conf_for(lab_dir, port)`` returns: yields its port."""
    if not callable(conf_for):
        raise TypeError("conf_for must be callable")
    lab = log_dir / f"nginx-{free_port()}"
    for sub in ("tmp/client_body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi"):
        (lab / sub).mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = lab / "nginx.conf"
    conf.write_text(str(conf_for(lab, port)))
    argv = [nginx_binary(), "-c", str(conf), "-p", str(lab), "-e", str(lab / "error.log")]
    with running("nginx", argv, port, lab):
        yield port


def haproxy_conf(port: int, upstreams: Sequence[int], *, balance: str, idle_s: int | None = None) -> str:
    """An HAProxy config as people write it (research/proxies/haproxy): tunnel timeouts right,
    unless ``idle_s`` sets client/server/tunnel to that (the idle cut of issue 12)."""
    servers = "".join(f"    server b{i} 127.0.0.1:{p}\n" for i, p in enumerate(upstreams))
    client, server, tunnel = ("60s", "60s", "1h") if idle_s is None else (f"{idle_s}s",) * 3
    return (
        "global\n    maxconn 256\n"
        f"defaults\n    mode http\n    timeout connect 5s\n    timeout client {client}\n"
        f"    timeout server {server}\n    timeout tunnel {tunnel}\n"
        f"frontend socketio_in\n    bind 127.0.0.1:{port}\n    default_backend socketio\n"
        f"backend socketio\n    balance {balance}\n{servers}"
    )


@contextlib.contextmanager
def haproxy(
    log_dir: Path, upstreams: Sequence[int], *, balance: str, idle_s: int | None = None
) -> Iterator[int]:
    """Real HAProxy in the foreground: yields its port."""
    binary = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if binary is None:
        raise StartError("haproxy is not installed: run `make setup` (or apt-get install haproxy)")
    port = free_port()
    conf = log_dir / f"haproxy-{port}.cfg"
    conf.write_text(haproxy_conf(port, upstreams, balance=balance, idle_s=idle_s))
    with running("haproxy", [binary, "-f", str(conf), "-db"], port, log_dir):
        yield port


# --- certificates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Chain:
    root: Path  # the CA the client trusts
    intermediate: Path
    leaf: Path  # the leaf alone: what an incomplete chain serves
    key: Path
    fullchain: Path  # leaf + intermediate: what a correct server serves


def _openssl(*args: str, cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise StartError("openssl is not installed")
    subprocess.run([binary, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_chain(directory: Path) -> Chain:
    """root CA -> intermediate CA -> leaf for 127.0.0.1 (as research/tools/make-chain.sh)."""
    d = directory
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ca_ext = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]
    root = ["-subj", "/CN=Foreign Test Root CA", "-keyout", "root.key", "-out", "root.pem", *ca_ext]
    _openssl("req", "-x509", *ec, "-days", "2", *root, cwd=d)
    intermediate = ["-subj", "/CN=Foreign Test Intermediate CA", "-keyout", "inter.key", "-out", "inter.csr"]
    _openssl("req", *ec, *intermediate, cwd=d)
    (d / "int.ext").write_text(
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n"
    )
    sign = ["-CAcreateserial", "-days", "2"]
    by_root = ["-CA", "root.pem", "-CAkey", "root.key", *sign, "-extfile", "int.ext"]
    _openssl("x509", "-req", "-in", "inter.csr", *by_root, "-out", "intermediate.pem", cwd=d)
    _openssl("req", *ec, "-subj", "/CN=127.0.0.1", "-keyout", "leaf.key", "-out", "leaf.csr", cwd=d)
    (d / "leaf.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
    )
    by_intermediate = ["-CA", "intermediate.pem", "-CAkey", "inter.key", *sign, "-extfile", "leaf.ext"]
    _openssl("x509", "-req", "-in", "leaf.csr", *by_intermediate, "-out", "leaf.pem", cwd=d)
    (d / "fullchain.pem").write_text((d / "leaf.pem").read_text() + (d / "intermediate.pem").read_text())
    return Chain(d / "root.pem", d / "intermediate.pem", d / "leaf.pem", d / "leaf.key", d / "fullchain.pem")


# --- a CDN's bot challenge, as Cloudflare answers it ---------------------------------------------

CHALLENGE_PAGE = (
    b'<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title></head><body>'
    b"<noscript>Enable JavaScript and cookies to continue</noscript></body></html>"
)


class _Challenge(BaseHTTPRequestHandler):
    """Every request, polling or WebSocket: Cloudflare's managed challenge (FACTS.md §3.9)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(403, "Forbidden")
        for name, value in (
            ("Server", "cloudflare"),
            ("cf-ray", "8f1e2d3c4b5a6978-AMS"),
            ("cf-mitigated", "challenge"),
            ("Content-Type", "text/html; charset=UTF-8"),
            ("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate"),
            ("Content-Length", str(len(CHALLENGE_PAGE))),
        ):
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(CHALLENGE_PAGE)

    do_POST = do_GET
    do_OPTIONS = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def challenge_edge() -> Iterator[int]:
    """A CDN edge stand-in answering everything with a challenge: yields its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Challenge)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(STOP_S)
