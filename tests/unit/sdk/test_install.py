"""Pure parts of the SDK install and of sdk_check's plan: version form, the package's entry
point, npm's failures as one line, which runtimes run, the program's config."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiloscribe_lab.errors import ToolchainError, UsageError
from kiloscribe_lab.sdk.check import DEADLINES, plan_modes, replay_config
from kiloscribe_lab.sdk.install import (
    MARKER,
    SdkInstall,
    check_version,
    installed,
    npm_failure,
    sdk_entry,
)
from kiloscribe_lab.sdk.node import NodeRuntime
from kiloscribe_lab.toolchain.subproc import Completed


@pytest.mark.parametrize("version", ["2.0.9", "2.1.0-beta.1", "10.20.300"])
def test_exact_versions_pass(version: str) -> None:
    assert check_version(version) == version


@pytest.mark.parametrize("version", ["latest", "^2.0.9", "2.0", "file:../x", "2.0.9 ", "2.0.9||3", ""])
def test_anything_else_is_a_usage_error(version: str) -> None:
    with pytest.raises(UsageError, match="exact version"):
        check_version(version)


def test_entry_follows_the_packages_exports() -> None:
    manifest = {
        "main": "./dist/umd/x.umd.js",
        "module": "./dist/es/x.es.js",
        "exports": {".": {"import": {"types": "t.d.ts", "default": "./dist/es/x.es.js"}, "require": {}}},
    }
    assert sdk_entry(manifest) == "./dist/es/x.es.js"
    assert sdk_entry({"exports": {".": "./e.js"}}) == "./e.js"
    assert sdk_entry({"module": "./m.js", "main": "./c.js"}) == "./m.js"
    assert sdk_entry({}) == "index.js"


def done(stderr: str, returncode: int | None = 1) -> Completed:
    return Completed(("npm", "install"), returncode, "", stderr, 1.0)


def test_npm_failures_are_one_line() -> None:
    unknown = npm_failure(
        "9.9.9", done("npm error code ETARGET\nnpm error notarget No matching version"), 300
    )
    assert isinstance(unknown, UsageError) and "npm has no @kiloscribe/inscription-sdk@9.9.9" in str(unknown)
    offline = npm_failure("2.0.9", done("npm ERR! code EAI_AGAIN\nnpm ERR! request failed"), 300)
    assert isinstance(offline, ToolchainError) and "unreachable" in str(offline)
    slow = npm_failure("2.0.9", done("", None), 300)
    assert isinstance(slow, ToolchainError) and "within 300 s" in str(slow)
    other = npm_failure("2.0.9", done("npm error code EACCES\nnpm error permission denied"), 300)
    assert "\n" not in str(other) and "permission denied" in str(other)


def test_installed_needs_the_marker_and_the_entry(tmp_path: Path) -> None:
    root = tmp_path / "sdk" / "2.0.9"
    entry = root / "node_modules" / "@kiloscribe" / "inscription-sdk" / "dist" / "es" / "x.js"
    entry.parent.mkdir(parents=True)
    assert installed(tmp_path, "2.0.9") is None
    (root / MARKER).write_text(json.dumps({"version": "2.0.9", "entry": str(entry.relative_to(root))}))
    assert installed(tmp_path, "2.0.9") is None  # the entry file is missing: a broken install
    entry.write_text("export {}")
    found = installed(tmp_path, "2.0.9")
    assert found is not None and found.entry == entry and found.ws_shim == root / "node_modules" / "ws"
    assert installed(tmp_path, "2.0.8") is None


NODE20 = NodeRuntime("/usr/bin/node", "v20.20.2", websocket_global=False, websocket_flag=True)
NODE18 = NodeRuntime("/usr/bin/node", "v18.20.0", websocket_global=False, websocket_flag=False)
NODE22 = NodeRuntime("/usr/bin/node", "v22.12.0", websocket_global=True, websocket_flag=True)


def test_plan_uses_the_flag_where_node_has_it_else_the_shim() -> None:
    both = ("plain", "websocket")
    assert plan_modes(NODE20, both, "auto") == {"plain": "as-is", "websocket": "flag"}
    assert plan_modes(NODE18, both, "auto") == {"plain": "as-is", "websocket": "shim"}
    assert plan_modes(NODE20, ("websocket",), "shim") == {"websocket": "shim"}
    assert plan_modes(NODE22, both, "auto") == {"plain": "as-is"}  # nothing to isolate
    assert plan_modes(NODE22, ("websocket",), "auto") == {"websocket": "as-is"}
    with pytest.raises(UsageError, match="no --experimental-websocket"):
        plan_modes(NODE18, both, "flag")
    with pytest.raises(UsageError, match="unknown runtime"):
        plan_modes(NODE20, ("deno",), "auto")


def test_the_programs_config_carries_no_key(tmp_path: Path) -> None:
    install = SdkInstall("2.0.9", tmp_path, tmp_path / "entry.js")
    config = replay_config(
        mode="plain",
        provider="as-is",
        url="wss://edge.example",
        api_base=None,
        api_key_env="KILOSCRIBE_API_KEY",
        install=install,
        deadlines=DEADLINES,
    )
    assert config["api_key_env"] == "KILOSCRIBE_API_KEY"
    assert "apiKey" not in json.dumps(config)
    assert config["api_base"] is None and config["no_api_base"].startswith("http://127.0.0.1:")
    assert config["request"]["file"]["type"] == "url" and config["deadlines"]["connect_ms"] > 10_000
    assert config["start_inscription"] is True
    args = dict(mode="plain", provider="as-is", url="wss://e", api_base=None, api_key_env=None)
    assert (
        replay_config(**args, install=install, deadlines=DEADLINES, inscription=False)["start_inscription"]
        is False
    )


def test_deadlines_bound_the_sdks_timers() -> None:
    assert DEADLINES.connect_ms > 10_000 and DEADLINES.detect_ms > 3_000
    assert DEADLINES.process_s > DEADLINES.node_total_ms / 1000


@pytest.mark.parametrize(
    ("arg", "expected"),
    [
        ("edge=wss://h.example", ("wss://h.example", "edge")),
        ("wss://h.example/?a=b", ("wss://h.example/?a=b", None)),
        ("wss://u:p@h.example", ("wss://u:p@h.example", None)),
    ],
)
def test_label_url_names_the_target_as_for_probe(arg: str, expected: tuple[str, str | None]) -> None:
    from kiloscribe_lab.sdk.check import _split_label

    assert _split_label(arg, None) == expected
