"""One exception hierarchy for kiloscribe-lab.

Probes never raise for what a server does: a refused handshake, a 502 or a stall is
*evidence* and comes back as a ProbeResult. Exceptions are for the tool's own failures
and for bad input, and every one of them maps to an exit code in the CLI::

    KiloscribeLabError                    exit 2 unless stated
    ├── UsageError                        bad command-line usage (malformed URL, bad option value)
    ├── ConfigError                       an invalid config file, profile or environment
    │   ├── SecretError                   the named key variable is unset or empty
    │   └── ToolchainError                Node.js or npm unusable, or npm could not install the SDK
    │       └── ToolchainMissingError     node or npm is not there (a report says so and goes on)
    ├── ProtocolError                     bytes that are not a valid Engine.IO/Socket.IO/HTTP
    │                                     upgrade message (raised by the sans-I/O core; probes
    │                                     turn it into outcome "malformed")
    ├── RecordError                       a JSON Lines record that is not a ProbeResult or Finding
    │                                     (a results file written by hand, another tool, a bug)
    ├── LabError                          the local lab could not do what was asked  (exit 3)
    │   ├── LabStartError                 a component did not come up; nothing is left running
    │   └── LabStateError                 no lab, a stale one, or one in an unexpected state
    └── ReportError                       the report could not be rendered (nbformat, nbconvert,
                                          its templates)  (exit 4)

Third-party exceptions are translated at one boundary each (``raise ... from exc``), so a
caller catches ``KiloscribeLabError`` and never a library's exception.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_CRITICAL = 1
EXIT_USAGE = 2
EXIT_LAB = 3
EXIT_REPORT = 4
EXIT_INTERNAL = 70  # sysexits' EX_SOFTWARE: a bug of ours, never to be read as "critical" (1)
EXIT_INTERRUPTED = 130


class KiloscribeLabError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code: int = EXIT_USAGE


class UsageError(KiloscribeLabError):
    """The command line is wrong: a malformed URL, an out-of-range value, a missing file."""


class ConfigError(KiloscribeLabError):
    """A config file, network profile or environment setting is invalid."""


class SecretError(ConfigError):
    """The environment variable that should hold a secret is unset or empty."""


class ToolchainError(ConfigError):
    """Node.js or npm cannot be used for ``sdk-check``: it fails, hangs, or npm cannot install."""


class ToolchainMissingError(ToolchainError):
    """``node`` or ``npm`` is not installed (or not at the given path). A report notes it and goes on."""


class ProtocolError(KiloscribeLabError):
    """Input that is not a valid protocol message. Raised only by pure protocol code."""


class RecordError(KiloscribeLabError):
    """A JSON Lines record (results, findings) that is not what the data model reads."""


class LabError(KiloscribeLabError):
    """The local lab failed."""

    exit_code = EXIT_LAB


class LabStartError(LabError):
    """A lab component did not become ready; everything already started was stopped."""


class LabStateError(LabError):
    """There is no lab where one was expected, or its state file is unreadable."""


class ReportError(KiloscribeLabError):
    """Rendering the findings report failed: what was measured is kept in the run directory."""

    exit_code = EXIT_REPORT
