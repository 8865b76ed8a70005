"""Real-client replay: the published Kiloscribe SDK, run in the user's Node runtime.

The API the CLI and the report use::

    results = await sdk_check(url, api_base=..., api_key_env=..., sdk_version="2.0.9",
                              node=None, ca_bundle=..., environ=..., cache_dir=...)

It returns ``sdk_replay`` ProbeResults (feed them to ``diagnosis.diagnose`` with the rest of
the evidence). ``ToolchainMissingError`` means node or npm is not there: say so and go on.
"""

from __future__ import annotations

from kiloscribe_lab.errors import ToolchainError, ToolchainMissingError
from kiloscribe_lab.sdk.check import DEADLINES, INSCRIPTION_REQUEST, Deadlines, sdk_check
from kiloscribe_lab.sdk.install import DEFAULT_SDK_VERSION, SDK_PACKAGE, SdkInstall, ensure_sdk, installed
from kiloscribe_lab.sdk.node import NodeRuntime, inspect_node
from kiloscribe_lab.toolchain.npm import CACHE_ENV, default_cache_dir

__all__ = [
    "CACHE_ENV",
    "DEADLINES",
    "DEFAULT_SDK_VERSION",
    "INSCRIPTION_REQUEST",
    "SDK_PACKAGE",
    "Deadlines",
    "NodeRuntime",
    "SdkInstall",
    "ToolchainError",
    "ToolchainMissingError",
    "default_cache_dir",
    "ensure_sdk",
    "inspect_node",
    "installed",
    "sdk_check",
]
