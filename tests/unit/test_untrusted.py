"""untrusted: a server's text decoded without failing, redacted, escaped and capped, in that order."""

from __future__ import annotations

import json
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiloscribe_lab.credentials import FRAGMENT, REDACTED, forms, redact
from kiloscribe_lab.untrusted import CAP, MORE, cap, decoded, evidence, fix_surrogates, one_line, visible

pytestmark = pytest.mark.unit

KEY = 'k3y-"quote\\slash-0123456789abcdef'


# --- decoded / cap (what wire.snippet did, in two steps: decode, then cut characters) -----------


@pytest.mark.parametrize(
    ("body", "limit", "expected"),
    [
        (b"", 240, ""),
        (b"Permanent Redirect", 240, "Permanent Redirect"),
        (b"x" * 240, 240, "x" * 240),
        (b"x" * 241, 240, "x" * 240 + "…"),
        (b"abcdef", 3, "abc…"),
        (b"\xff\xfeok", 240, "\ufffd\ufffdok"),
        (b"\xc3\xa9\xc3", 240, "é\ufffd"),  # a character cut in half by a byte limit is replaced
        ("é".encode() * 3, 2, "éé…"),  # the cap counts characters, not bytes
        (b"<script>alert(1)</script>", 240, "<script>alert(1)</script>"),
    ],
)
def test_decoded_then_capped(body: bytes, limit: int, expected: str) -> None:
    assert cap(decoded(body), limit) == expected


def test_surrogate_escaped_bytes_read_as_latin_1_and_lone_surrogates_are_replaced() -> None:
    # aiohttp hands a non-UTF-8 header byte over as a surrogate escape: Caf\xe9.
    assert fix_surrogates("Caf\udce9") == "Café"
    assert fix_surrogates("a\ud800b") == "a\ufffdb"
    assert fix_surrogates("plain") == "plain"
    fix_surrogates("x\udcff\ud83d").encode("utf-8")  # encodable, whatever came in


# --- visible ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("bell\x07 nul\x00 del\x7f", "bell\\x07 nul\\x00 del\\x7f"),
        ("c1 \x9b31m \x85", "c1 \\x9b31m \\x85"),
        ("rtl \u202etxt.exe", "rtl \\u202etxt.exe"),
        ("a\r\nb\tc", "a  b c"),
        ("emoji 👩\u200d💻 stays", "emoji 👩\u200d💻 stays"),
    ],
)
def test_visible_shows_control_characters_instead_of_obeying_them(text: str, expected: str) -> None:
    assert visible(text) == expected


def test_visible_keeps_newlines_only_when_asked() -> None:
    assert visible("a\nb\x1b", newlines=True) == "a\nb\\x1b"
    assert visible("a\nb") == "a b"


def test_one_line_is_one_short_line() -> None:
    line = one_line("bad\nurl \x1b[2J" + "h" * 10_000)
    assert "\n" not in line and "\x1b" not in line and len(line) <= 301


# --- redaction ---------------------------------------------------------------------------------


def test_the_key_is_redacted_whole_and_in_every_escaped_form() -> None:
    for form in forms(KEY):
        text = f"echo: {form} :end"
        assert redact(text, (KEY,)) == f"echo: {REDACTED} :end", form
    assert json.dumps(KEY)[1:-1] in forms(KEY)
    assert urllib.parse.quote(KEY, safe="") in forms(KEY)


@pytest.mark.parametrize("start", [0, 3, 10, len(KEY) - FRAGMENT])
def test_any_eight_characters_of_the_key_are_redacted(start: int) -> None:
    piece = KEY[start : start + FRAGMENT]
    out = redact(f"the server said {piece}!", (KEY,))
    assert piece not in out and REDACTED in out


def test_a_piece_of_the_key_at_a_cut_is_redacted_even_when_short() -> None:
    assert redact("ends with " + KEY[:6], (KEY,)) == "ends with " + REDACTED
    assert redact(KEY[-6:] + " starts it", (KEY,)) == REDACTED + " starts it"


def test_ordinary_words_survive_redaction() -> None:
    key = "test-Zm9vYmFyYmF6cXV4"
    for text in ("the latest test", "test-", "contest result"):
        assert redact(text, (key,)) == text


@given(st.text(max_size=400), st.integers(min_value=0, max_value=400))
def test_no_eight_characters_of_the_key_survive_evidence(text: str, at: int) -> None:
    """Wherever the key lands in a server's text, and wherever the cap cuts, no FRAGMENT
    characters of it (in any of its forms) are left."""
    at = min(at, len(text))
    for form in forms(KEY):
        out = evidence(text[:at] + form + text[at:], (KEY,))
        for f in forms(KEY):
            assert not any(f[i : i + FRAGMENT] in out for i in range(len(f) - FRAGMENT + 1)), (out, f)


# --- evidence ----------------------------------------------------------------------------------


def test_evidence_redacts_before_it_caps() -> None:
    # The seed of issue 13: cut to 240 first, the key's first characters survived the cut.
    body = "A" * 230 + KEY + "B" * 100
    out = evidence(body, (KEY,))
    assert KEY[:8] not in out and out.startswith("A" * 230 + REDACTED)
    assert len(out) <= CAP + len(MORE)


def test_evidence_walks_keys_values_and_nesting() -> None:
    got = evidence({"a\x1b": ["Caf\udce9", float("nan"), 3, True, None, {"deep": {"x": {"y": {"z": 1}}}}]})
    assert got == {"a\\x1b": ["Café", None, 3, True, None, {"deep": {"x": {"y": {"z": 1}}}}]}
    deep: object = "bottom"
    for _ in range(50):
        deep = [deep]
    assert json.dumps(evidence(deep)).count("[") <= 9  # cut at MAX_DEPTH, never a RecursionError


@given(st.text())
def test_evidence_text_is_valid_utf8_without_control_characters(text: str) -> None:
    out = evidence(text, (KEY,))
    out.encode("utf-8")
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in out)
    assert len(out) <= CAP + len(MORE)
