"""Fuzzing the renderers with a server's arbitrary bytes (issue 13): whatever a server sends,
decoded any way a library may decode it (UTF-8 with replacement, latin-1, surrogateescape),
and wherever the key sits in it, once it crossed the evidence boundary (``base.scrub``):

* the JSON lines are valid UTF-8 and parse back to what was recorded;
* the terminal output has no control character but the newline, and encodes as strict UTF-8;
* no string recorded is longer than the cap, and no 8 characters of the key survive anywhere.
"""

from __future__ import annotations

import json
import unicodedata

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiloscribe_lab.credentials import FRAGMENT, forms
from kiloscribe_lab.names import Outcome, ProbeName
from kiloscribe_lab.output import PLAIN, render_text
from kiloscribe_lab.probes.base import scrub
from kiloscribe_lab.probes.command import build_report
from kiloscribe_lab.results import ProbeResult
from kiloscribe_lab.untrusted import CAP

KEY_ENV = "KILOSCRIBE_FUZZ_KEY"
KEY = 'fz-"key\\with/escapes+0123456789'
TARGET = "https://fuzz.example"
DECODINGS = (
    lambda b: b.decode("utf-8", errors="replace"),
    lambda b: b.decode("latin-1"),
    lambda b: b.decode("utf-8", errors="surrogateescape"),
)
# Where the key lands in the server's bytes: nowhere, whole, escaped, or cut at the text's end.
PLACED = st.sampled_from(["none", "whole", "json", "url", "cut"])


def _with_key(data: bytes, where: str, at: int) -> bytes:
    if where == "none":
        return data
    variant = {"whole": KEY, "json": json.dumps(KEY)[1:-1], "url": forms(KEY)[3], "cut": KEY[:12]}[where]
    at = min(at, len(data))
    if where == "cut":
        return data + variant.encode()  # a cut through the key, at the end of what was kept
    return data[:at] + variant.encode() + data[at:]


def _fragments(text: str) -> set[str]:
    return {
        f[i : i + FRAGMENT]
        for f in forms(KEY)
        for i in range(len(f) - FRAGMENT + 1)
        if f[i : i + FRAGMENT] in text
    }


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.binary(max_size=700),
    st.integers(min_value=0, max_value=len(DECODINGS) - 1),
    PLACED,
    st.integers(min_value=0, max_value=700),
)
def test_any_server_bytes_render_clean(data: bytes, decoding: int, where: str, at: int) -> None:
    text = DECODINGS[decoding](_with_key(data, where, at))
    raw = ProbeResult(
        ProbeName.ENGINEIO_HANDSHAKE,
        TARGET,
        Outcome.PROTOCOL_MISMATCH,
        status=200,
        error=f"not Engine.IO: {text}",
        headers={"server": text, "via": text[::-1], text[:30] or "x": "value"},
        detail={"body": text, "nested": [{"message": text}]},
    )
    result = scrub(raw, (KEY,))
    report = build_report([result], KEY_ENV)

    lines = list(report.json_lines())
    encoded = "\n".join(lines).encode("utf-8", errors="strict")
    records = [json.loads(line) for line in encoded.decode("utf-8").splitlines()]
    assert records[0]["kind"] == "probe"
    for s in _strings(records[0]):
        assert len(s) <= CAP + 1, len(s)  # the cap, and its ellipsis

    human = render_text(report, PLAIN)
    human.encode("utf-8", errors="strict")
    assert not [c for c in human if c != "\n" and unicodedata.category(c) in ("Cc", "Cf", "Cs")]

    for name, rendered in (("json", encoded.decode("utf-8")), ("terminal", human)):
        assert not _fragments(rendered), (name, _fragments(rendered))
