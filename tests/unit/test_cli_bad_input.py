"""Bad input, as a careless user (or a pasted link) gives it (issue 13): every row is refused
before any traffic with exit 2 and one line on stderr that echoes nothing raw (no control
byte, no password from a URL, no key), and never a traceback. A bug of ours is exit 70, one
line, never 1 (which reads as "a critical finding")."""

from __future__ import annotations

import argparse
import unicodedata
from collections.abc import Callable
from pathlib import Path

import pytest

from kiloscribe_lab import cli
from kiloscribe_lab.errors import EXIT_INTERNAL, EXIT_USAGE

SECRET = "hunter2-secret-pass"
KEY_ENV = "KILOSCRIBE_BAD_INPUT_KEY"


def _config(tmp: Path, text: str) -> str:
    path = tmp / "config.toml"
    path.write_text(text)
    return str(path)


ENDPOINT = '[investigation]\nendpoints = ["http://127.0.0.1:9/"]\n'
Row = Callable[[Path], list[str]]
ROWS: dict[str, Row] = {
    "url-with-credentials": lambda t: ["probe", f"https://user:{SECRET}@127.0.0.1:9/"],
    "ws-url-with-credentials": lambda t: ["probe", f"wss://{SECRET}@127.0.0.1:9/socket.io/"],
    "sdk-url-with-credentials": lambda t: ["sdk-check", f"wss://u:{SECRET}@127.0.0.1:9/"],
    "discover-with-credentials": lambda t: ["probe", "--discover", f"https://u:{SECRET}@127.0.0.1:9/api"],
    "host-of-10000-characters": lambda t: ["probe", f"http://{'a' * 10_000}.example/"],
    "host-label-of-64": lambda t: ["probe", f"http://{'b' * 64}.example/"],
    "escape-in-the-path": lambda t: ["probe", "http://127.0.0.1:9/a\x1b[31mb"],
    "bell-in-the-host": lambda t: ["probe", "http://127.0.0.1\x07:9/"],
    "c1-in-the-host": lambda t: ["probe", "http://exa\x9bmple.com/"],
    "space-in-the-host": lambda t: ["probe", "http://exa mple.com/"],
    "bidi-override-in-the-url": lambda t: ["probe", "http://127.0.0.1:9/\u202eevil"],
    "port-out-of-range": lambda t: ["probe", "http://127.0.0.1:99999/"],
    "ftp-url": lambda t: ["probe", "ftp://127.0.0.1/"],
    "javascript-url": lambda t: ["probe", "javascript:alert(1)"],
    "escape-in-a-label": lambda t: ["probe", "a\x1b[2Jb=http://127.0.0.1:9/"],
    "label-of-5000": lambda t: ["probe", "x" * 5000 + "=http://127.0.0.1:9/"],
    "crlf-in-the-origin": lambda t: ["probe", "http://127.0.0.1:9/", "--origin", "http://a\r\nX-Evil: 1"],
    "a-key-for-a-key-name": lambda t: ["probe", "http://127.0.0.1:9/", "--api-key-env", f"sk-{SECRET}"],
    "timeout-nan": lambda t: ["probe", "http://127.0.0.1:9/", "--timeout", "nan"],
    "timeout-1e308": lambda t: ["probe", "http://127.0.0.1:9/", "--timeout", "1e308"],
    "ca-bundle-a-directory": lambda t: ["probe", "http://127.0.0.1:9/", "--ca-bundle", str(t)],
    "ca-bundle-dev-zero": lambda t: ["probe", "http://127.0.0.1:9/", "--ca-bundle", "/dev/zero"],
    "ca-bundle-not-pem": lambda t: ["probe", "http://127.0.0.1:9/", "--ca-bundle", _config(t, "no pem")],
    "ca-bundle-missing": lambda t: ["probe", "http://127.0.0.1:9/", "--ca-bundle", str(t / "none.pem")],
    "config-dev-zero": lambda t: ["probe", "http://127.0.0.1:9/", "--config", "/dev/zero"],
    "config-a-directory": lambda t: ["probe", "http://127.0.0.1:9/", "--config", str(t)],
    "config-not-utf8": lambda t: ["probe", "http://127.0.0.1:9/", "--config", _bytes(t, b"\xff\xfe[x]")],
    "config-of-2-mb": lambda t: ["probe", "http://127.0.0.1:9/", "--config", _config(t, "#" * (2 << 20))],
    "report-config-dev-zero": lambda t: ["report", "--config", "/dev/zero", "--out", str(t)],
    "crlf-in-a-profile-header": lambda t: [
        "probe",
        "--network",
        "evil",
        "--config",
        _config(t, ENDPOINT + '[networks.evil]\nheaders = { "X-Tenant" = "a\\r\\nX-Injected: 1" }\n'),
    ],
    "escape-in-a-header-name": lambda t: [
        "probe",
        "--network",
        "evil",
        "--config",
        _config(t, ENDPOINT + '[networks.evil]\nheaders = { "X-T\\u001b[31m" = "a" }\n'),
    ],
    "credentials-in-a-profile-proxy": lambda t: [
        "probe",
        "--network",
        "evil",
        "--config",
        _config(t, ENDPOINT + f'[networks.evil]\nproxy = "http://u:{SECRET}@127.0.0.1:9"\n'),
    ],
    "escape-in-a-network-name": lambda t: ["probe", "http://127.0.0.1:9/", "--network", "no\x1bsuch"],
}


def _bytes(tmp: Path, data: bytes) -> str:
    path = tmp / "raw.toml"
    path.write_bytes(data)
    return str(path)


def _controls(text: str) -> list[str]:
    return [repr(c) for c in text if c != "\n" and unicodedata.category(c) in ("Cc", "Cf")]


@pytest.mark.parametrize("name", list(ROWS))
def test_bad_input_is_one_line_exit_2_and_nothing_raw(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "a-configured-key-value")
    argv = ROWS[name](tmp_path)
    code = cli.main([*argv, "--lab-dir", str(tmp_path / "no-lab")] if argv[0] == "probe" else argv)
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE, (code, err)
    assert out == ""
    assert err.startswith("kiloscribe-lab: ") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert not _controls(err), _controls(err)
    assert SECRET not in err and SECRET[:8] not in err
    assert len(err) < 400


def test_a_bug_of_ours_is_exit_70_and_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise TypeError(f"a library's words, quoting a server: \x1b[31m{SECRET}")

    monkeypatch.setattr(cli, "cmd_probe", broken)
    code = cli.main(["probe", "http://127.0.0.1:9/"])
    out, err = capsys.readouterr()
    assert code == EXIT_INTERNAL and out == ""
    assert err.count("\n") == 1 and "internal error (TypeError at test_cli_bad_input.py:" in err, err
    assert SECRET not in err and "\x1b" not in err and "Traceback" not in err
