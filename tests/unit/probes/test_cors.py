"""``cors``'s judgement of an answer, as a browser page without credentials would make it."""

from __future__ import annotations

import pytest

from kiloscribe_lab.probes.cors import allows

ORIGIN = "https://evil.example"


@pytest.mark.parametrize(
    ("allow_origin", "allowed", "why"),
    [
        (None, False, "no Access-Control-Allow-Origin"),  # socket.io with an origin list (FACTS.md §3.5)
        ("https://app.kiloscribe.test", False, "not https://evil.example"),  # socket.io's string form
        (ORIGIN, True, ORIGIN),  # an echo: the lab's python backend, socket.io origin: true
        ("*", True, "*"),  # fine without credentials, socket.io-client's default
        (f" {ORIGIN} ", True, ORIGIN),
    ],
)
def test_allows(allow_origin: str | None, allowed: bool, why: str) -> None:
    got, reason = allows(allow_origin, ORIGIN)
    assert got is allowed and why in reason
