"""Reading the files a user points us at: a config, a CA bundle, a results file, a lab's state.

Each is checked before a byte is read: it exists, it is a regular file (not a directory, not
``/dev/zero``, not a FIFO that would block forever), and it is of a sane size for what it is.
Then at most that many bytes are read, whatever the file does meanwhile. Every failure is one
``error`` (a ConfigError unless the caller says otherwise) that names the file and says why.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from kiloscribe_lab.errors import ConfigError, KiloscribeLabError
from kiloscribe_lab.untrusted import one_line

__all__ = ["CA_BUNDLE_LIMIT", "CONFIG_LIMIT", "RESULTS_LIMIT", "STATE_LIMIT", "check_file", "read_text"]

CONFIG_LIMIT = 1 << 20  # a TOML investigation config of a megabyte is already absurd
CA_BUNDLE_LIMIT = 16 << 20  # the whole Mozilla bundle is about 220 KiB
STATE_LIMIT = 1 << 20  # a lab's state.json
RESULTS_LIMIT = 256 << 20  # a report run's JSON Lines, read back for the findings


def _name(path: Path) -> str:
    return one_line(path, 200)


def check_file(
    path: Path, what: str, limit: int, error: type[KiloscribeLabError] = ConfigError
) -> os.stat_result:
    """The file's stat, once it is known to be a regular file of at most ``limit`` bytes."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise error(f"{what} {_name(path)} does not exist") from None
    except NotADirectoryError:
        raise error(f"{what} {_name(path)} does not exist (a part of its path is a file)") from None
    except PermissionError:
        raise error(f"{what} {_name(path)} cannot be read (permission denied)") from None
    except OSError as exc:
        raise error(f"{what} {_name(path)} cannot be read: {one_line(exc.strerror or exc, 80)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{what} {_name(path)} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{what} {_name(path)} is not a regular file (a device, a pipe or a socket)")
    if info.st_size > limit:
        raise error(f"{what} {_name(path)} is {info.st_size} bytes; more than {limit} is not a {what}")
    return info


def read_text(path: Path, what: str, limit: int, error: type[KiloscribeLabError] = ConfigError) -> str:
    """The file as UTF-8 text, after ``check_file``; never more than ``limit`` bytes are read."""
    check_file(path, what, limit, error)
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {_name(path)} cannot be read: {one_line(exc.strerror or exc, 80)}") from exc
    if len(data) > limit:  # it grew since we looked
        raise error(f"{what} {_name(path)} is more than {limit} bytes; that is not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {_name(path)} is not UTF-8 text (a byte at offset {exc.start})") from None
