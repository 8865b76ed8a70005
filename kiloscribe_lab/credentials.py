"""The API key: named by an environment variable, read once, redacted everywhere. Pure.

A secret is never passed as a value (DESIGN.md, "Secrets"): commands, configs and papermill
parameters carry the variable's *name*; ``read_key`` reads its value from an environment
mapping with one strength of validation for every caller; ``redact`` removes secrets from
anything before it is recorded (a server may echo what we sent).
"""

from __future__ import annotations

import functools
import html
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kiloscribe_lab.errors import SecretError

REDACTED = "[redacted]"
# Shorter values are no credential, and replacing them would mangle ordinary words.
MIN_SECRET_LEN = 6
# What the probes send as the "invalid key" variant: recognisable in a server's log.
INVALID_KEY = "kiloscribe-lab-deliberately-invalid-key"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_T = TypeVar("_T")


def is_env_name(name: object) -> bool:
    """A POSIX environment variable name (``KILOSCRIBE_API_KEY``), not a value that looks like one."""
    return isinstance(name, str) and _ENV_NAME.fullmatch(name) is not None


def read_key(name: str, environ: Mapping[str, str]) -> str:
    """The key in ``$name``. Unset, empty, or holding white space or control characters (a CRLF
    ``.env`` file) is a SecretError that names the variable and never shows the value."""
    value = environ.get(name, "")
    if not value:
        raise SecretError(f"environment variable {name} is unset or empty")
    if value != value.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in value):
        raise SecretError(
            f"environment variable {name} holds white space or control characters around or in "
            "the key (a CRLF .env file?); the value is not shown"
        )
    return value


def worth_redacting(values: Iterable[str]) -> tuple[str, ...]:
    """The values long enough to be credentials, longest first (so no shorter one splits a longer)."""
    return tuple(sorted({v for v in values if len(v) >= MIN_SECRET_LEN}, key=len, reverse=True))


# No run of this many characters of a secret survives redaction, wherever it sits in a text: a
# server that echoes part of the key (or a cut through an echo) gives nothing usable away.
FRAGMENT = 8
# At a text's ends (where a cut may have fallen) a shorter piece is redacted too; not shorter
# than a secret may be, or ordinary words at the end of a sentence would go.
EDGE = MIN_SECRET_LEN


@functools.lru_cache(maxsize=64)
def forms(secret: str) -> tuple[str, ...]:
    """``secret`` as a server may echo it: as sent, JSON-escaped (a ``"`` or ``\\`` in a key),
    URL-escaped (either case of hex, ``+`` for a space) and HTML-escaped."""
    quoted = urllib.parse.quote(secret, safe="")
    found = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        quoted,
        re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quoted),
        urllib.parse.quote_plus(secret, safe=""),
        html.escape(secret, quote=True),
    ]
    return tuple(dict.fromkeys(found))


def longest_secret(secrets: Iterable[str]) -> int:
    """The longest form any of ``secrets`` can take in a text (0 for none)."""
    return max((len(f) for s in secrets for f in forms(s)), default=0)


@dataclass(frozen=True)
class _Needles:
    """What ``redact`` looks for, worked out once per set of secrets (every probe result of a
    run is redacted with the same ones): each form, longest first, and every FRAGMENT-long
    piece of any of them."""

    variants: tuple[str, ...]
    grams: tuple[str, ...]


@functools.lru_cache(maxsize=16)
def _needles(secrets: tuple[str, ...]) -> _Needles:
    variants = tuple(sorted({f for s in secrets for f in forms(s)}, key=len, reverse=True))
    grams = {v[i : i + FRAGMENT] for v in variants for i in range(len(v) - FRAGMENT + 1)}
    return _Needles(variants, tuple(sorted(grams)))


def redact(value: _T, secrets: tuple[str, ...]) -> _T:
    """``value`` with every secret replaced by ``[redacted]``, through dicts, lists and tuples:
    whole, in each of its ``forms``, and in pieces (any FRAGMENT characters of one, or EDGE at a
    text's start or end)."""
    if not secrets:
        return value
    return _redact(value, _needles(tuple(secrets)))  # type: ignore[no-any-return]


def _fragments(text: str, needles: _Needles) -> str:
    covered = bytearray(len(text))
    # str.find per piece, not a Python loop per position: this runs on every string of every
    # result, and a loop over a 400-character window for each of seven forms was most of a
    # probe's CPU.
    for gram in needles.grams:
        at = text.find(gram)
        while at >= 0:
            covered[at : at + FRAGMENT] = b"\x01" * FRAGMENT
            at = text.find(gram, at + 1)
    for v in needles.variants:
        for n in range(min(len(v), len(text)), EDGE - 1, -1):
            if text.endswith(v[:n]):
                covered[len(text) - n :] = b"\x01" * n
                break
        for n in range(min(len(v), len(text)), EDGE - 1, -1):
            if text.startswith(v[-n:]):
                covered[:n] = b"\x01" * n
                break
    if not any(covered):
        return text
    out, pos = [], 0
    while pos < len(text):
        if covered[pos]:
            while pos < len(text) and covered[pos]:
                pos += 1
            out.append(REDACTED)
        else:
            start = pos
            while pos < len(text) and not covered[pos]:
                pos += 1
            out.append(text[start:pos])
    return "".join(out)


def _redact(value: Any, needles: _Needles) -> Any:
    if isinstance(value, str):
        for secret in needles.variants:
            value = value.replace(secret, REDACTED)
        return _fragments(value, needles)
    if isinstance(value, Mapping):
        return {_redact(str(k), needles): _redact(v, needles) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, needles) for v in value]
    return value
