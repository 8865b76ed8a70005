"""Text that comes from a server (or a careless user): made safe to record and to show. Pure.

A server decides every byte of its headers, bodies, frames and error messages. Before any of it
is recorded it passes one boundary, ``evidence``: decoded without failing, redacted (the key a
server echoes, whole, escaped or in pieces: ``credentials.redact``), its control characters
shown as escapes (``\\x1b``, never an ESC a terminal would obey) and capped at ``CAP``
characters *after* redaction, so a cut can never leave part of a key behind. The renderers
(terminal, Markdown, HTML) call ``visible`` again on whatever they print, because a results file
may come from anywhere.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, TypeVar

from kiloscribe_lab.credentials import longest_secret, redact

__all__ = ["CAP", "MORE", "cap", "decoded", "evidence", "fix_surrogates", "one_line", "visible"]

CAP = 240  # characters of one piece of server text kept as evidence
MORE = "…"
# Nesting deeper than this in a server's JSON (a discovery document) is not evidence anyone reads.
MAX_DEPTH = 8
LINE = 300  # an error line on stderr: the message, never the whole input that caused it

_SURROGATE = re.compile("[\ud800-\udfff]")
# Kept by ``visible(newlines=True)``: a document renders them (as <br>); everything else in Cc is
# escaped. ZWJ is the one format character emoji sequences need.
_KEPT_FORMAT = {"\u200d"}
_T = TypeVar("_T")


def decoded(data: bytes | bytearray) -> str:
    """Bytes as text, never failing: UTF-8 where it is, U+FFFD where it is not."""
    return bytes(data).decode("utf-8", errors="replace")


def _unsurrogate(m: re.Match[str]) -> str:
    code = ord(m.group())
    # 0xDC80-0xDCFF: a byte that was not UTF-8, smuggled through by surrogateescape (aiohttp's
    # header decoding, os.environ). As latin-1 it reads as h11 reads the same byte.
    return chr(code - 0xDC00) if 0xDC80 <= code <= 0xDCFF else "\ufffd"


def fix_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced: what stays is encodable as UTF-8."""
    return _SURROGATE.sub(_unsurrogate, text) if _SURROGATE.search(text) else text


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str, *, newlines: bool = False) -> str:
    """``text`` safe to show: white space becomes spaces (with ``newlines``, ``\\n`` stays), and
    every other control or format character (ESC, BEL, NUL, DEL, C1, bidi overrides) is shown as
    an escape instead of obeyed. Lone surrogates are replaced first."""
    text = fix_surrogates(text)
    out = []
    for ch in text:
        if ch == "\n" and newlines:
            out.append(ch)
        elif ch in "\t\n\r\v\f":
            out.append(" ")
        elif ch in _KEPT_FORMAT or unicodedata.category(ch) not in ("Cc", "Cf"):
            out.append(ch)
        else:
            out.append(_escape(ch))
    return "".join(out)


def cap(text: str, limit: int = CAP) -> str:
    """The first ``limit`` characters; a cut text ends in ``…`` (one more)."""
    return text if len(text) <= limit else text[:limit] + MORE


def one_line(text: object, limit: int = LINE) -> str:
    """An error message for stderr: one line, nothing obeyed, not longer than ``limit``."""
    return cap(visible(str(text)).strip(), limit)


def _text(text: str, secrets: tuple[str, ...], limit: int) -> str:
    # Only the first ``limit`` characters are kept, so only they (and what a key starting among
    # them covers, escaped forms included) need redacting: a 64 KiB body costs what 1 KiB does.
    window = limit + 3 * longest_secret(secrets) + 16
    return cap(visible(redact(fix_surrogates(text[:window]), secrets)), limit)


def evidence(value: _T, secrets: tuple[str, ...] = (), limit: int = CAP) -> _T:
    """``value`` (a result's error, headers or detail) as it may be recorded: every string in it,
    keys included, through ``_text``; non-finite numbers (a server's JSON ``NaN``) become None,
    which JSON can say; nesting beyond MAX_DEPTH is cut."""
    return _walk(value, secrets, limit, 0)  # type: ignore[no-any-return]


def _walk(value: Any, secrets: tuple[str, ...], limit: int, depth: int) -> Any:
    if isinstance(value, str):
        return _text(value, secrets, limit)
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_DEPTH:
        return MORE
    if isinstance(value, Mapping):
        return {_text(str(k), secrets, limit): _walk(v, secrets, limit, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, secrets, limit, depth + 1) for v in value]
    return _text(str(value), secrets, limit)
