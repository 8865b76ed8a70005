"""Markers follow the directory: tests/unit is pure and fast, tests/integration runs a real lab."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lab-balancer",
        choices=("caddy", "nginx", "haproxy"),
        default=None,
        help="run the shared scenario labs' balancer tier on this software (default: each scenario's own)",
    )


# The probes honour the proxy variables of their process (curl's rules): a developer's or CI's
# own proxy must not route the loopback tests. A test that wants one sets it for its probes.
PROXY_VARIABLES = ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY")


def pytest_configure(config: pytest.Config) -> None:
    for name in PROXY_VARIABLES:
        os.environ.pop(name, None)
    # The SDK replay (sdk-check, and the report that runs it) installs the SDK with npm into
    # a cache: the project's, not $HOME's, so a test run writes nothing outside the checkout.
    os.environ.setdefault(
        "KILOSCRIBE_LAB_CACHE",
        os.environ.get("KILOSCRIBE_LAB_TEST_CACHE") or str(HERE.parent / ".cache" / "kiloscribe-lab"),
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(HERE).parts
        if parts[0] == "unit":
            item.add_marker(pytest.mark.unit)
        elif parts[0] in {"integration", "notebooks"}:
            item.add_marker(pytest.mark.lab)
