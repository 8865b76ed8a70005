"""The API key: named by an environment variable, read once, redacted everywhere. Pure.

A secret is never passed as a value (DESIGN.md, "Secrets"): commands, configs and papermill
parameters carry the variable's *name*; ``read_key`` reads its value from an environment
mapping with one strength of validation for every caller; ``redact`` removes secrets from
anything before it is recorded (a server may echo what we sent).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
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


def redact(value: _T, secrets: tuple[str, ...]) -> _T:
    """``value`` with every secret replaced by ``[redacted]``, through dicts, lists and tuples."""
    if not secrets:
        return value
    return _redact(value, secrets)  # type: ignore[no-any-return]


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, Mapping):
        return {str(k): _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact(v, secrets) for v in value]
    return value
