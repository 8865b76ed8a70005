"""``kiloscribe-lab``: the command line. Thin: parse, call, print, map errors to exit codes.

Exit codes: 0 fine; 1 a critical finding; 2 bad usage, config or input (one line on
stderr, never a traceback); 3 the local lab failed; 4 the report could not be rendered;
130 interrupted.
"""

from __future__ import annotations

import time

# The command's clock starts before the heavy imports, so `probe` returns within the
# deadline it promises, interpreter and imports included.
STARTED = time.monotonic()

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from kiloscribe_lab.errors import (
    EXIT_CRITICAL,
    EXIT_INTERRUPTED,
    EXIT_LAB,
    EXIT_OK,
    EXIT_USAGE,
    KiloscribeLabError,
    UsageError,
)
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import DEFAULT_SCENARIO, SCENARIOS


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error takes one path."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog.removeprefix('kiloscribe-lab ')}: {message}")


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def _lab_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir).resolve() if args.dir else fleet.default_lab_dir()


def cmd_lab_up(args: argparse.Namespace) -> int:
    info = fleet.up(_lab_dir(args), args.scenario)
    if args.json:
        _print_json(info.to_json())
        return EXIT_OK
    data = info.to_json()
    print(f"lab up: scenario {info.scenario} in {info.lab_dir}")
    print(f"  edge (CDN)     {data['edge']}")
    print(f"  load balancer  {data['lb']}")
    for backend in data["backends"]:
        print(f"  {backend['name']:<14} {backend['url']}  (upstream {backend['upstream']})")
    print(f"  API base       {data['api']}")
    print(f"  CA bundle      {data['ca_bundle']}")
    if info.api_key_file is not None:
        print(f"  API key        in ${info.api_key_env}: `set -a; . {info.api_key_file}; set +a`")
    else:
        print(f"  API key        the value of ${info.api_key_env}")
    networks = data.get("networks") or {}
    print("  networks       " + ", ".join(f"{n} ({url})" if url else n for n, url in networks.items()))
    print("                 probe through one with: kiloscribe-lab probe URL --network NAME")
    return EXIT_OK


def cmd_lab_down(args: argparse.Namespace) -> int:
    stubborn = fleet.down(_lab_dir(args))
    if stubborn:
        print(f"lab down: could not stop {', '.join(stubborn)}", file=sys.stderr)
        return EXIT_LAB
    print("lab down: every lab process stopped")
    return EXIT_OK


def cmd_lab_status(args: argparse.Namespace) -> int:
    st = fleet.status(_lab_dir(args))
    if args.json:
        _print_json(st.to_json())
    else:
        print(
            f"lab {st.info.lab_dir}: scenario {st.info.scenario}, "
            f"{'healthy' if st.healthy else 'NOT HEALTHY'}"
        )
        for c in st.components:
            pid = "" if c.pid is None else f"pid {c.pid}"
            extra = f"  {c.detail}" if c.detail else ""
            print(f"  {c.name:<16} {c.state:<20} {pid}{extra}")
    return EXIT_OK if st.healthy else EXIT_LAB


def cmd_lab_scenarios(args: argparse.Namespace) -> int:
    if args.json:
        for scenario in SCENARIOS.values():
            _print_json(scenario.to_json())
        return EXIT_OK
    for scenario in SCENARIOS.values():
        default = " (default)" if scenario.name == DEFAULT_SCENARIO else ""
        print(f"{scenario.name + default:<24} {scenario.description}")
        print(f"{'':<24} balancer: {scenario.balancer.kind}, lb_policy {scenario.balancer.policy}")
        print(f"{'':<24} expect: {', '.join(scenario.expected_findings)}")
        for truth in scenario.truth.networks:
            if truth.adds:
                deadline = f" (deadline {truth.probe_timeout_s:g} s)" if truth.probe_timeout_s else ""
                adds = ", ".join(truth.adds)
                print(f"{'':<24} on {truth.network}{deadline}: + {adds} ({truth.severity})")
    return EXIT_OK


def _number(kind: type[int] | type[float], low: float, high: float, unit: str = "") -> Callable[[str], Any]:
    """An argparse type: a number in [low, high] (low excluded for floats: a 0 s deadline is none)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None
        ok = low <= value <= high if kind is int else low < value <= high
        if not ok:
            raise argparse.ArgumentTypeError(f"must be between {low:g} and {high:g}{unit}, got {text}")
        return value

    return parse


_positive_float = _number(float, 0, 600, " seconds")
_attempts = _number(int, 1, 1000)
_jobs = _number(int, 1, 64)


def cmd_probe(args: argparse.Namespace) -> int:
    from kiloscribe_lab import output
    from kiloscribe_lab.probes.command import ProbeRequest, run_probe
    from kiloscribe_lab.settings import ProbeSettings

    lab_networks, lab_source = fleet.known_networks(Path(args.lab_dir) if args.lab_dir else None)
    request = ProbeRequest(
        urls=tuple(args.urls),
        discover=args.discover,
        network=args.network,
        config=Path(args.config) if args.config else None,
        settings=ProbeSettings(
            timeout_s=args.timeout,
            attempts=args.attempts,
            ca_bundle=Path(args.ca_bundle) if args.ca_bundle else None,
            api_key_env=args.api_key_env,
            inscription=args.inscription,
            origin=args.origin,
        ),
        known_networks=lab_networks,
        known_networks_source=lab_source,
    )
    progress = None if args.json or not sys.stderr.isatty() else output.progress_printer()
    report = run_probe(request, progress=progress, started=STARTED)
    if args.json:
        for line in report.json_lines():
            print(line)
    else:
        print(output.render_text(report))
    return EXIT_CRITICAL if report.has_critical else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from kiloscribe_lab import report
    from kiloscribe_lab.credentials import read_key

    out_root = Path(args.out).resolve()
    compare = Path(args.compare).resolve() if args.compare else None
    if compare is not None and not (compare / "summary.json").exists():
        raise UsageError(f"--compare {compare}: not a report run (no summary.json)")
    jobs = args.jobs or os.cpu_count() or 2
    plan = report.load_plan(Path(args.config)) if args.config else None
    if plan is not None and plan.settings.api_key_env:
        read_key(plan.settings.api_key_env, os.environ)
    bar = _progress_bar()
    try:
        if plan is not None:
            outcome = report.run_report(
                plan,
                dict(os.environ),
                out_root=out_root,
                jobs=jobs,
                compare_dir=compare,
                progress=bar.update_with,
            )
        else:
            with (
                tempfile.TemporaryDirectory(prefix="kiloscribe-report-lab-") as lab_dir,
                report.lab_plan(args.scenario, Path(lab_dir)) as (lab, env, lab_start_s),
            ):
                outcome = report.run_report(
                    lab,
                    env,
                    out_root=out_root,
                    jobs=jobs,
                    compare_dir=compare,
                    progress=bar.update_with,
                    extra_timings={"lab_up_s": lab_start_s},
                )
    finally:
        bar.close()  # also when the report fails: its one line must not land on the bar's
    failed = [r for r in outcome.records if not r.ok]
    print(f"report: {outcome.run_dir / 'findings.html'}")
    print(f"status: {outcome.status}; {len(outcome.records)} notebook runs, {len(failed)} failed")
    for r in failed:
        print(f"  failed: {r.id}: {r.error}")
    print("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in outcome.timings.items()))
    return EXIT_OK


class _Bar:
    """A tqdm progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.bar: Any = None
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(desc="notebooks", unit="run", file=sys.stderr)

    def update_with(self, message: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(message[-40:])
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress_bar() -> _Bar:
    return _Bar()


def cmd_sdk_check(args: argparse.Namespace) -> int:
    import asyncio

    from kiloscribe_lab import diagnosis
    from kiloscribe_lab.names import Severity
    from kiloscribe_lab.output import render_sdk_check
    from kiloscribe_lab.results import dumps_line
    from kiloscribe_lab.sdk import sdk_check

    def notify(message: str) -> None:
        if sys.stderr.isatty():
            print(f"kiloscribe-lab: {message}", file=sys.stderr, flush=True)

    results = asyncio.run(
        sdk_check(
            args.url,
            api_base=args.api_base,
            api_key_env=args.api_key_env,
            sdk_version=args.sdk_version,
            node=args.node,
            ca_bundle=Path(args.ca_bundle) if args.ca_bundle else None,
            notify=notify,
            inscription=args.inscription,
        )
    )
    findings = diagnosis.diagnose(results, args.api_key_env)
    if args.json:
        for result in results:
            print(dumps_line(result))
        for finding in findings:
            print(dumps_line(finding))
    else:
        print(render_sdk_check(results, findings))
    return EXIT_CRITICAL if any(f.severity is Severity.CRITICAL for f in findings) else EXIT_OK


def cmd_findings(args: argparse.Namespace) -> int:
    import textwrap

    from kiloscribe_lab.diagnosis import CATALOGUE, REGISTRY

    if args.json:
        for entry in CATALOGUE.values():
            _print_json(entry.to_json())
        return EXIT_OK
    if args.markdown:
        print(REGISTRY.markdown_table(), end="")
        return EXIT_OK
    if args.readme:
        readme = Path(args.readme)
        try:
            text = readme.read_text(encoding="utf-8")
            readme.write_text(REGISTRY.with_table(text), encoding="utf-8")
        except (OSError, ValueError) as exc:
            raise UsageError(f"--readme {readme}: {exc}") from exc
        return EXIT_OK
    for i, entry in enumerate(CATALOGUE.values()):
        if i:
            print()
        print(f"{entry.id}  [{', '.join(entry.severities)}]  {entry.title}")
        lines = [("means", entry.means), ("raised by", entry.raised_by)]
        if entry.supersedes:
            lines.append(("supersedes", ", ".join(entry.supersedes)))
        for label, text in lines:
            # Not at hyphens: header names (Access-Control-Allow-Origin) stay whole.
            print(
                textwrap.fill(
                    text,
                    100,
                    initial_indent=f"  {label:<11} ",
                    subsequent_indent=" " * 14,
                    break_on_hyphens=False,
                )
            )
    return EXIT_OK


def _add_api_key_env(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="the environment variable holding the API key (never the key itself)",
    )


def _add_no_inscription(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-inscription",
        dest="inscription",
        action="store_false",
        help="skip the dry-run start-inscription after a connect (it executes nothing, but a "
        "production server records a job)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="kiloscribe-lab", description=__doc__.splitlines()[0] if __doc__ else "")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    probe = sub.add_parser("probe", help="run every probe against the endpoints and diagnose")
    probe.add_argument("urls", nargs="*", metavar="URL", help="https://, wss://, http:// or ws://")
    probe.add_argument(
        "--discover",
        metavar="API_BASE",
        help="also probe the servers GET API_BASE/inscriptions/websocket-servers lists",
    )
    _add_api_key_env(probe)
    probe.add_argument(
        "--network",
        metavar="PROFILE",
        default="direct",
        help="network profile (from --config, or a lab network)",
    )
    probe.add_argument("--config", metavar="FILE", help="investigation config (TOML) with networks")
    probe.add_argument(
        "--lab-dir",
        metavar="DIR",
        help="find --network in the lab running there (default $KILOSCRIBE_LAB_DIR or ./.lab)",
    )
    probe.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="hard deadline of each probe, counted from the command's start (default 5)",
    )
    probe.add_argument(
        "--attempts",
        type=_attempts,
        default=1,
        metavar="N",
        help="repeat the connects N times: success rate and latency percentiles",
    )
    probe.add_argument("--ca-bundle", metavar="PATH", help="PEM file of CAs to trust")
    probe.add_argument(
        "--origin",
        metavar="URL",
        help="also probe as a browser page on this origin would (CORS: Origin on the polling "
        "handshake, a preflight, the WebSocket); without it nothing is said about CORS",
    )
    _add_no_inscription(probe)
    probe.add_argument(
        "--json",
        action="store_true",
        help="JSON lines: every ProbeResult, then every Finding, then verdicts",
    )
    probe.set_defaults(func=cmd_probe)

    rep = sub.add_parser("report", help="run the notebook matrix and render a dated findings report")
    rep.add_argument("--config", metavar="FILE", help="investigation config (TOML); default: the lab")
    rep.add_argument("--out", default="reports", metavar="DIR", help="reports folder (default ./reports)")
    rep.add_argument(
        "--jobs",
        type=_jobs,
        default=None,
        metavar="N",
        help="notebooks run in parallel (default: the core count)",
    )
    rep.add_argument("--compare", metavar="DIR", help="compare with this run (default: the previous one)")
    rep.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        choices=sorted(SCENARIOS),
        help="lab scenario when no --config is given (default incident)",
    )
    rep.set_defaults(func=cmd_report)

    sdk = sub.add_parser(
        "sdk-check", help="run the published Kiloscribe SDK in the user's Node runtime against URL"
    )
    sdk.add_argument("url", metavar="URL", help="the Socket.IO URL, as the SDK's wsBaseUrl (wss://…)")
    sdk.add_argument("--api-base", metavar="URL", help="REST base for the SDK (https://HOST/api)")
    _add_api_key_env(sdk)
    sdk.add_argument(
        "--sdk-version",
        default="2.0.9",
        metavar="V",
        help="exact @kiloscribe/inscription-sdk version (default 2.0.9); installed once with npm into "
        "$KILOSCRIBE_LAB_CACHE (default ~/.cache/kiloscribe-lab)",
    )
    sdk.add_argument("--node", metavar="PATH", help="the Node.js to run (default: node on PATH)")
    sdk.add_argument("--ca-bundle", metavar="PATH", help="PEM file of CAs for Node (NODE_EXTRA_CA_CERTS)")
    sdk.add_argument("--json", action="store_true", help="JSON lines: every ProbeResult, then every Finding")
    _add_no_inscription(sdk)
    sdk.set_defaults(func=cmd_sdk_check)

    fnd = sub.add_parser(
        "findings", help="the catalogue: every finding the diagnosis can raise, what it means and why"
    )
    fnd.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per finding: id, title, severity (list), meaning, evidence, supersedes",
    )
    fnd.add_argument("--markdown", action="store_true", help="the catalogue as the README's Markdown table")
    fnd.add_argument(
        "--readme", metavar="FILE", help="rewrite the findings table between its markers in FILE"
    )
    fnd.set_defaults(func=cmd_findings)

    lab = sub.add_parser("lab", help="the local lab: Caddy edge + LB in front of Socket.IO backends")
    lab_sub = lab.add_subparsers(dest="lab_command", required=True, parser_class=_Parser)
    dir_help = "lab directory (default $KILOSCRIBE_LAB_DIR or ./.lab)"

    up = lab_sub.add_parser("up", help="start the lab and wait until every endpoint answers")
    up.add_argument("--scenario", default=DEFAULT_SCENARIO, choices=sorted(SCENARIOS))
    up.add_argument("--dir", help=dir_help)
    up.add_argument("--json", action="store_true", help="print one JSON object")
    up.set_defaults(func=cmd_lab_up)

    down = lab_sub.add_parser("down", help="stop every lab process")
    down.add_argument("--dir", help=dir_help)
    down.set_defaults(func=cmd_lab_down)

    st = lab_sub.add_parser("status", help="each component's health (exit 3 when unhealthy)")
    st.add_argument("--dir", help=dir_help)
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_lab_status)

    sc = lab_sub.add_parser("scenarios", help="list scenarios and their ground truth")
    sc.add_argument("--json", action="store_true", help="one JSON object per scenario")
    sc.set_defaults(func=cmd_lab_scenarios)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except KiloscribeLabError as exc:
        print(f"kiloscribe-lab: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("kiloscribe-lab: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `kiloscribe-lab probe ... | head`: the reader left. An OSError, so before that branch;
        # stdout is pointed at devnull so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        # A path that is not a directory, a full disk, a permission: the user's to fix.
        where = f" ({exc.filename})" if exc.filename else ""
        print(f"kiloscribe-lab: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE


def run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run()
