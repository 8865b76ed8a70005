"""render_nginx_conf: the nginx balancer each Balancer setting asks for, read directive by directive."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from kiloscribe_lab.lab.caddyfile import READY_PATH
from kiloscribe_lab.lab.nginx_conf import TEMP_PATHS, render_nginx_conf
from kiloscribe_lab.lab.scenarios import SCENARIOS, Balancer, BalancerKind, LbPolicy, Tls
from tests.unit.lab.samples import PORTS

LAB_DIR = Path("/srv/labs/on call")
NGINX = BalancerKind.NGINX


def render(balancer: Balancer | None = None, tls: Tls | None = None) -> str:
    scenario = dataclasses.replace(
        SCENARIOS["healthy"], balancer=balancer or Balancer(kind=NGINX), tls=tls or Tls()
    )
    return render_nginx_conf(scenario, PORTS, LAB_DIR)


def block(text: str, head: str) -> list[str]:
    """The directives of the block opened by ``head {`` (nested blocks' lines included)."""
    lines = [line.strip() for line in text.splitlines()]
    start = lines.index(head + " {")
    depth, body = 0, []
    for line in lines[start:]:
        depth += line.count("{") - line.count("}")
        body.append(line)
        if depth == 0:
            return body[1:-1]
    raise AssertionError(f"{head} is not closed")


def directives(lines: list[str]) -> list[str]:
    return [line for line in lines if line and not line.startswith("#")]


def test_runs_in_the_foreground_with_every_path_in_the_lab() -> None:
    text = render()
    top = directives([line for line in text.splitlines() if not line.startswith(" ")])
    assert top[:4] == [
        "daemon off;",
        "master_process off;",
        f'pid "{LAB_DIR}/nginx/nginx.pid";',
        "error_log stderr warn;",
    ]
    http = directives(block(text, "http"))
    for name in TEMP_PATHS:
        assert f'{name}_temp_path "{LAB_DIR}/nginx/{name}";' in http
    assert "access_log off;" in http
    # every absolute path it names is inside the lab directory
    paths = re.findall(r'"(/[^"]+)"', text)
    assert paths and all(p.startswith(f"{LAB_DIR}/") for p in paths)


def test_tls_on_the_balancers_port_with_the_lab_certificate_and_plain_http_behind() -> None:
    server = directives(block(render(), "server"))
    assert f"listen 127.0.0.1:{PORTS.lb} ssl http2;" in server
    assert f'ssl_certificate "{LAB_DIR}/pki/lb.fullchain.crt";' in server
    assert f'ssl_certificate_key "{LAB_DIR}/pki/lb.key";' in server
    assert "proxy_pass http://socketio;" in server
    leaf_only = directives(block(render(tls=Tls(incomplete_chain=("lb",))), "server"))
    assert f'ssl_certificate "{LAB_DIR}/pki/lb.crt";' in leaf_only


def test_the_ready_path_answers_before_the_proxy() -> None:
    ready = directives(block(render(), f"location = {READY_PATH}"))
    assert ready == ["default_type text/plain;", 'return 200 "ready lb";']


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (LbPolicy.ROUND_ROBIN, [f"server 127.0.0.1:{p};" for p in PORTS.backend.values()]),
        (
            LbPolicy.IP_HASH,
            ["hash $remote_addr consistent;", *(f"server 127.0.0.1:{p};" for p in PORTS.backend.values())],
        ),
        (
            LbPolicy.FIRST,
            [
                f"server 127.0.0.1:{PORTS.backend['inscribe-1']};",
                f"server 127.0.0.1:{PORTS.backend['inscribe-2']} backup;",
                f"server 127.0.0.1:{PORTS.backend['inscribe-3']} backup;",
            ],
        ),
    ],
)
def test_each_policy_is_nginxs_own(policy: LbPolicy, expected: list[str]) -> None:
    upstream = [
        line.split("  #")[0]
        for line in directives(block(render(Balancer(NGINX, policy)), "upstream socketio"))
    ]
    assert upstream == expected


def test_upgrade_headers_are_forwarded_unless_the_scenario_drops_them() -> None:
    upgrade = ["proxy_http_version 1.1;", "proxy_set_header Upgrade $http_upgrade;",
               "proxy_set_header Connection $connection_upgrade;"]  # fmt: skip
    kept = render()
    assert all(line in directives(block(kept, "location /")) for line in upgrade)
    assert "map $http_upgrade $connection_upgrade {" in [line.strip() for line in kept.splitlines()]
    dropped = render(Balancer(NGINX, forwards_upgrade=False))
    location = directives(block(dropped, "location /"))
    assert not [line for line in location if "Upgrade" in line or "http_version" in line]
    assert "$connection_upgrade" not in dropped  # no map left dangling
    assert "proxy_pass http://socketio;" in location


def test_idle_timeout_is_the_read_and_send_timeout() -> None:
    location = directives(block(render(Balancer(NGINX, idle_timeout_s=4)), "location /"))
    assert "proxy_read_timeout 4000ms;" in location and "proxy_send_timeout 4000ms;" in location
    assert "timeout" not in " ".join(directives(block(render(), "location /")))  # nginx's default 60 s


def test_body_limit_is_client_max_body_size() -> None:
    assert "client_max_body_size 65536;" in directives(
        block(render(Balancer(NGINX, max_body_bytes=65536)), "server")
    )
    assert not any("client_max_body_size" in line for line in directives(block(render(), "server")))


def test_rendering_is_pure() -> None:
    assert render() == render()
    assert not LAB_DIR.exists()
