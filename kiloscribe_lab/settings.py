"""What every investigation asks of the probes, whoever asks: one type, shared. Pure.

``probe``'s command line, a report config's ``[investigation]`` table and the report's plan
all carry a :class:`ProbeSettings`; the probes get it as :class:`ProbeOptions`, the same
settings resolved for one network. A setting is added here once and reaches every caller.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.networks import DIRECT, NetworkProfile

DEFAULT_TIMEOUT_S = 5.0
# The size of the files users inscribe, for the payload probe (--file-size): SDK users upload
# images of a few hundred KiB.
DEFAULT_FILE_SIZE = 512 * 1024
MAX_FILE_SIZE = 64 * 1024 * 1024
# What start-inscription carries besides the file (kiloscribe-contract.md): the Socket.IO
# framing `42["start-inscription",{...}]` and the request's other fields. A request with a short
# name and description and no metadata is 282 bytes without its fileBase64; rounded up, so the
# estimate errs towards the larger message.
INSCRIPTION_OVERHEAD_BYTES = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    timeout_s: float = DEFAULT_TIMEOUT_S  # each probe's hard deadline
    attempts: int = 1  # connects per transport for the success rate and percentiles
    ca_bundle: Path | None = None  # PEM of CAs to trust, beside the system's
    api_key_env: str | None = None  # the NAME of the variable holding the key, never the key
    # sdk_flow (and the SDK replay) emit a dry-run start-inscription, the SDK's own next step. It
    # signs and executes nothing, but a production server records a job: --no-inscription skips it.
    inscription: bool = True
    # Probe also as a browser page on this origin would (CORS): the ``cors`` probes. None: no
    # Origin is sent anywhere and nothing is said about CORS (the SDK's Node client sends none).
    origin: str | None = None
    # The slow probes too (hold a session past one heartbeat; the largest message that passes):
    # off in `probe`, on in `report`. Their deadline is ``timeout_s``, the hold included.
    deep: bool = False
    file_size: int = DEFAULT_FILE_SIZE  # bytes of the files users inscribe (the payload probe's cap)

    def settings(self) -> ProbeSettings:
        """Just the settings (a subclass's extra fields dropped)."""
        return ProbeSettings(**{f.name: getattr(self, f.name) for f in dataclasses.fields(ProbeSettings)})


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOptions(ProbeSettings):
    """The settings as the probes of one run use them: on one network, with the probes' knobs."""

    network: NetworkProfile = field(default=DIRECT)
    follow_ups: int = 8  # sticky-session follow-up requests per variant
    max_redirects: int = 5
    # A probe that raises something unforeseen is recorded as "malformed" so one probe cannot end
    # a run; tests set strict so such a bug surfaces instead of hiding as evidence.
    strict: bool = False

    @classmethod
    def of(
        cls, settings: ProbeSettings, network: NetworkProfile = DIRECT, *, strict: bool = False
    ) -> ProbeOptions:
        return cls(**{f.name: getattr(settings, f.name) for f in dataclasses.fields(ProbeSettings)},
                   network=network, strict=strict)  # fmt: skip


def inscription_message_bytes(file_size: int) -> int:
    """The bytes of the start-inscription message that uploads a file of ``file_size`` bytes:
    the file base64-encoded (4/3 of it, padded to 4) in ``fileBase64``, plus the rest."""
    return 4 * ((file_size + 2) // 3) + INSCRIPTION_OVERHEAD_BYTES


def largest_file_bytes(message_bytes: int) -> int:
    """The largest file whose start-inscription fits in a message of ``message_bytes``."""
    return max(0, (message_bytes - INSCRIPTION_OVERHEAD_BYTES) // 4 * 3)


# --- as notebook parameters ----------------------------------------------------------------

SettingValue = str | int | float | bool | None  # what papermill injects and JSON carries


def settings_to_parameters(settings: ProbeSettings) -> dict[str, SettingValue]:
    """Every setting by its field name, a path as its text: the probe notebook's ``settings``
    parameter. Derived from the fields, so a new setting reaches the notebooks by itself."""
    out: dict[str, SettingValue] = {}
    for f in dataclasses.fields(ProbeSettings):
        value = getattr(settings, f.name)
        out[f.name] = str(value) if isinstance(value, Path) else value
    return out


def settings_from_parameters(values: Mapping[str, object]) -> ProbeSettings:
    """``settings_to_parameters``'s inverse; a missing field takes its default. Raises UsageError
    on an unknown name or a value of the wrong type (papermill checks neither)."""
    hints = typing.get_type_hints(ProbeSettings)
    known = {f.name for f in dataclasses.fields(ProbeSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise UsageError(f"unknown probe settings {unknown}; known: {sorted(known)}")
    return ProbeSettings(**{name: _setting(name, hints[name], value) for name, value in values.items()})


def _setting(name: str, hint: object, value: object) -> Any:  # the field's type, checked here
    kinds = set(typing.get_args(hint)) or {hint}
    if (value is None or value == "") and type(None) in kinds:
        return None  # papermill and forms say "" for "not set"
    if Path in kinds and isinstance(value, str) and value:
        return Path(value)
    if bool in kinds and isinstance(value, bool):
        return value
    if isinstance(value, bool):  # bool is an int: True is not a timeout
        raise UsageError(f"probe setting {name}: expected {_kind(kinds)}, not {value!r}")
    if int in kinds and isinstance(value, int):
        return value
    if float in kinds and isinstance(value, int | float):
        return float(value)
    if str in kinds and isinstance(value, str):
        return value
    raise UsageError(f"probe setting {name}: expected {_kind(kinds)}, not {value!r}")


def _kind(kinds: set[object]) -> str:
    return " or ".join(sorted(getattr(k, "__name__", str(k)) for k in kinds))
