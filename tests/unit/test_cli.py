"""The command line as the user meets it before anything runs: --version, usage, help with
examples and defaults for every option, and one program name in every error line."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from kiloscribe_lab import __version__, cli


def parsers(parser: argparse.ArgumentParser | None = None) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subcommand's, depth first."""
    parser = parser or cli.build_parser()
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers(sub)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    out, err = capsys.readouterr()
    assert out == f"kiloscribe-lab {__version__}\n" and err == ""


def test_nothing_prints_the_usage_once_with_one_program_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("usage: kiloscribe-lab ") and err.count("usage:") == 1
    assert "kiloscribe-lab: kiloscribe-lab" not in err
    for command in ("probe", "report", "sdk-check", "findings", "lab"):
        assert f"\n    {command}" in err, command
    assert "examples:" in err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--bogus"], "choose a command: probe, report, sdk-check, findings, lab"),
        (["probe", "https://h.example", "--bogus"], "unrecognized arguments: --bogus"),
        (["lab"], "lab: choose a command: up, restart, info, down, status, scenarios"),
        (["lab", "teleport"], "lab: argument COMMAND: invalid choice: 'teleport'"),
        (["lab", "up", "--scenario", "halthy"], "lab up: argument --scenario: invalid choice: 'halthy'"),
        (["probe", "--timeout", "-1"], "probe: argument --timeout: must be between 0 and 600"),
        (["report", "--jobs", "0"], "report: argument --jobs:"),
        (["probe", "--color", "sometimes"], "probe: argument --color: invalid choice: 'sometimes'"),
    ],
)
def test_every_error_line_names_the_program_once(
    capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("kiloscribe-lab: ") and line.count("kiloscribe-lab") == 1, line
    assert says in line


# Options whose absence only means "not done" (no discovery, no REST base, no config file).
NOT_USED_WITHOUT = {"--discover", "--api-base", "--config"}


def test_every_option_has_help_and_says_its_default() -> None:
    for parser in parsers():
        for action in parser._actions:
            if isinstance(
                action, argparse._SubParsersAction | argparse._HelpAction | argparse._VersionAction
            ):
                continue
            name = f"{parser.prog} {'/'.join(action.option_strings) or action.dest}"
            assert action.help and action.help is not argparse.SUPPRESS, name
            if not action.option_strings or action.nargs == 0:
                continue  # a positional, a flag: nothing to default
            shown = parser._get_formatter()._expand_help(action)
            if action.default is not None:
                assert f"(default: {action.default})" in shown, name
            elif action.option_strings[0] in NOT_USED_WITHOUT and parser.prog != "kiloscribe-lab report":
                continue
            else:  # nothing given still means something: the help says what
                assert "default:" in shown or "without it" in shown, name


def test_every_command_has_examples_that_name_the_program(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    leaves = [p for p in parsers() if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)]
    for parser in parsers():  # every command, the program and `lab` included: an epilog of examples
        name = parser.prog.removeprefix("kiloscribe-lab").strip()
        assert parser.epilog and parser.epilog.startswith("examples:"), name
        examples = [line for line in parser.epilog.splitlines()[1:] if line.startswith("  ")]
        assert examples and all(
            e.lstrip().startswith(("kiloscribe-lab ", "set -a")) or e.startswith("    ") for e in examples
        ), name
        assert cli.main([*name.split(), "--help"]) == 0
        out, _ = capsys.readouterr()
        assert out.startswith(f"usage: {parser.prog}")
        for line in out.splitlines():
            assert len(line) <= 80, (name, line)
    assert len(leaves) >= 8


def test_colour_and_verbosity_are_options_where_output_is_human() -> None:
    by_name = {p.prog.removeprefix("kiloscribe-lab ").strip(): p for p in parsers()}
    for name in ("probe", "report", "sdk-check"):
        args = by_name[name]._actions
        color = next(a for a in args if "--color" in a.option_strings)
        assert list(color.choices or ()) == ["auto", "always", "never"] and color.default == "auto"
    assert any("-v" in a.option_strings for a in by_name["report"]._actions)
