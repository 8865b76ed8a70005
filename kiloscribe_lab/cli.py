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
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from kiloscribe_lab import __version__
from kiloscribe_lab.errors import (
    EXIT_CRITICAL,
    EXIT_INTERRUPTED,
    EXIT_LAB,
    EXIT_OK,
    EXIT_USAGE,
    KiloscribeLabError,
    LabStateError,
    UsageError,
)
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import DEFAULT_SCENARIO, SCENARIOS, BackendKind
from kiloscribe_lab.output import COLOR_MODES

if TYPE_CHECKING:
    from kiloscribe_lab.output import ReportEnd, ReportProgress
    from kiloscribe_lab.report import ReportOutcome


PROG = "kiloscribe-lab"
DESCRIPTION = (
    "Probes, diagnosis, a local lab and dated reports for Socket.IO (Engine.IO v4) services "
    "behind a load balancer and a CDN."
)
EXIT_CODES = (
    "Exit codes: 0 no critical finding, 1 a critical finding, 2 bad usage, config or input, "
    "3 the local lab failed, 4 the report could not be rendered, 130 interrupted."
)


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so every usage error takes one path. The
    message names the subcommand, not the program: main() prefixes the program's name once.
    Every parser, subcommands' included, formats its help with ``_Help``."""

    def _get_formatter(self) -> argparse.HelpFormatter:
        return _Help(prog=self.prog)

    def error(self, message: str) -> NoReturn:
        for action in self._actions:
            # "the following arguments are required: COMMAND" says neither which nor where.
            if isinstance(action, argparse._SubParsersAction) and f"required: {action.metavar}" in message:
                message = f"choose a command: {', '.join(action.choices)} (--help says what each does)"
        where = self.prog.removeprefix(PROG).strip()
        raise UsageError(f"{where}: {message}" if where else message)


class _Help(argparse.HelpFormatter):
    """Every option that takes a value says its default, once; a text with line breaks of its
    own (the examples) keeps them; no line breaks inside a hyphenated name or a URL."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            action.option_strings
            and action.nargs != 0  # a flag's default is its absence
            and action.default not in (None, argparse.SUPPRESS)
            and "default" not in text
        ):
            text += " (default: %(default)s)"
        return text

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line + "\n" for line in text.splitlines()).rstrip("\n")
        return textwrap.fill(
            " ".join(text.split()),
            width,
            initial_indent=indent,
            subsequent_indent=indent,
            break_on_hyphens=False,
            break_long_words=False,
        )


def _epilog(*examples: str, extra: str = "") -> str:
    """Examples, one a line as typed (under 80 columns), then ``extra`` filled to 78."""
    lines = ["examples:", *(f"  {e}" for e in examples)]
    if extra:
        lines += ["", *textwrap.wrap(extra, 78, break_on_hyphens=False)]
    return "\n".join(lines)


def _print_json(obj: object) -> None:
    print(json.dumps(obj, ensure_ascii=False))


def _lab_dir(args: argparse.Namespace) -> Path:
    return Path(args.dir).resolve() if args.dir else fleet.default_lab_dir()


def cmd_lab_up(args: argparse.Namespace) -> int:
    balancer = fleet.BalancerKind(args.balancer) if args.balancer else None
    info = fleet.up(
        _lab_dir(args), args.scenario, balancer=balancer, backend=args.backend, replace=args.force
    )
    return _print_lab(info, args.json, "lab up")


def cmd_lab_restart(args: argparse.Namespace) -> int:
    """The running lab again, on fresh ports (its scenario, balancer and backends unless told others)."""
    lab_dir = _lab_dir(args)
    # What the last lab was, running or crashed: a restart after a crash restarts *that* lab.
    current = fleet.recorded(lab_dir)
    scenario = args.scenario or (current.scenario if current else DEFAULT_SCENARIO)
    kind = args.balancer or (current.balancer if current else None)
    backend = args.backend or (current.backend if current else None)
    info = fleet.up(
        lab_dir,
        scenario,
        balancer=fleet.BalancerKind(kind) if kind else None,
        backend=backend,
        replace=True,
    )
    return _print_lab(info, args.json, "lab restart")


def cmd_lab_info(args: argparse.Namespace) -> int:
    """The running lab, read from its state: nothing is started, stopped or asked."""
    lab_dir = _lab_dir(args)
    info = fleet.running(lab_dir)
    if info is None:
        recorded = fleet.recorded(lab_dir)
        raise LabStateError(
            f"no lab in {lab_dir} is running"
            + (
                f" (lab.json records one, scenario {recorded.scenario}, whose processes are gone: "
                "`lab status` says which, `lab down` clears it)"
                if recorded is not None
                else ""
            )
        )
    return _print_lab(info, args.json, "lab")


def _print_lab(info: fleet.LabInfo, as_json: bool, verb: str) -> int:
    if as_json:
        _print_json(info.to_json())
        return EXIT_OK
    data = info.to_json()
    print(f"{verb}: scenario {info.scenario} in {info.lab_dir} ({info.backend} backends)")
    print(f"  edge (CDN)     {data['edge']}")
    print(f"  load balancer  {data['lb']}  ({info.balancer}, {data['balancer_config']})")
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
    lab_dir = _lab_dir(args)
    if not (lab_dir / fleet.STATE_FILE).exists():
        print(f"lab down: no lab in {lab_dir}; nothing to stop")
        return EXIT_OK
    stubborn = fleet.down(lab_dir)
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
        notices = output.probe_notices(
            report, api_key_env=args.api_key_env, attempts=args.attempts, inscription=args.inscription
        )
        print(output.render_text(report, output.style_for(sys.stdout, args.color), notices))
    return EXIT_CRITICAL if report.has_critical else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    import os
    import tempfile

    from kiloscribe_lab import output, report
    from kiloscribe_lab.credentials import read_key

    out_root = Path(args.out).resolve()
    compare = Path(args.compare).resolve() if args.compare else None
    if compare is not None and not (compare / "summary.json").exists():
        raise UsageError(f"--compare {compare}: not a report run (no summary.json)")
    jobs = args.jobs or os.cpu_count() or 2
    plan = report.load_plan(Path(args.config)) if args.config else None
    if plan is not None and plan.settings.api_key_env:
        read_key(plan.settings.api_key_env, os.environ)
    progress = _report_progress()
    try:
        if plan is not None:
            progress.note(f"investigating {args.config}")
            outcome = report.run_report(
                plan,
                dict(os.environ),
                out_root=out_root,
                jobs=jobs,
                compare_dir=compare,
                progress=progress.step,
                planned=progress.planned,
            )
        else:
            progress.note(f"starting the lab (scenario {args.scenario})")
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
                    progress=progress.step,
                    planned=progress.planned,
                    extra_timings={"lab_up_s": lab_start_s},
                )
    finally:
        progress.close()  # also when the report fails: its one line must not land on the bar's
    print(
        output.render_report_end(
            _report_end(outcome), output.style_for(sys.stdout, args.color), verbose=args.verbose
        )
    )
    return EXIT_OK


def _report_progress() -> ReportProgress:
    """On a terminal, a line on stderr rewritten in place; else a line per notebook on stdout,
    so a log shows what ran while stderr keeps only errors (one line, as for every command)."""
    from kiloscribe_lab import output

    if sys.stderr.isatty():
        return output.ReportProgress(
            sys.stderr, live=True, width=output.terminal_width(sys.stderr, os.environ)
        )
    return output.ReportProgress(sys.stdout, live=False)


def _shown(path: Path) -> str:
    """A path as the user can paste it: relative to here when it is below here."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _report_end(outcome: ReportOutcome) -> ReportEnd:
    from kiloscribe_lab import output
    from kiloscribe_lab.report.loose import as_items, as_str, read_json_object

    summary = read_json_object(outcome.run_dir / "summary.json")
    findings = [
        (as_str(f.get("severity")) or "", as_str(f.get("title")) or as_str(f.get("id")) or "")
        for f in as_items(summary.get("findings"))
        if isinstance(f, dict)
    ]
    run_dir = outcome.run_dir
    files = [
        (what, _shown(path))
        for what, path in (
            ("HTML", run_dir / "findings.html"),
            ("Markdown", run_dir / "findings.md"),
            ("index", run_dir.parent / "index.html"),
        )
        if path.exists()
    ]
    return output.ReportEnd(
        status=outcome.status,
        sentence=as_str(summary.get("sentence")) or "",
        findings=findings,
        runs=len(outcome.records),
        failed=[(r.id, r.error or "failed") for r in outcome.records if not r.ok],
        files=files,
        timings=outcome.timings,
    )


def cmd_sdk_check(args: argparse.Namespace) -> int:
    import asyncio

    from kiloscribe_lab import diagnosis
    from kiloscribe_lab.names import Severity
    from kiloscribe_lab.output import render_sdk_check, sdk_notices, style_for
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
        notices = sdk_notices(
            api_key_env=args.api_key_env, api_base=args.api_base, inscription=args.inscription
        )
        print(render_sdk_check(results, findings, style_for(sys.stdout, args.color), notices))
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
        help="the environment variable holding the API key (never the key itself); without it "
        "the checks that need a valid key do not run, and the output says so",
    )


def _add_no_inscription(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-inscription",
        dest="inscription",
        action="store_false",
        help="skip the dry-run start-inscription after a connect (it executes nothing, but a "
        "production server records a job)",
    )


def _add_color(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--color",
        choices=COLOR_MODES,
        default="auto",
        metavar="WHEN",
        help="colour the output: auto (on a terminal, unless $NO_COLOR is set), always or never",
    )


SCENARIO_NAMES = ", ".join(SCENARIOS)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=_epilog(
            "kiloscribe-lab probe wss://ws.example.com --api-key-env KILOSCRIBE_API_KEY",
            "kiloscribe-lab lab up     # then: probe URL --ca-bundle .lab/ca.pem",
            "kiloscribe-lab report                 # the lab's incident, as a dated report",
            "kiloscribe-lab COMMAND --help         # a command's options and examples",
            extra=EXIT_CODES,
        ),
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    probe = sub.add_parser(
        "probe",
        help="run every probe against the endpoints and diagnose",
        description="Run every probe against the endpoints (and the servers --discover lists), then "
        "diagnose them together: the overall verdict first, then the findings, then each probe.",
        epilog=_epilog(
            "kiloscribe-lab probe wss://ws.example.com --api-key-env KILOSCRIBE_API_KEY",
            "kiloscribe-lab probe edge=https://cdn.example.com lb=https://lb.example.com \\",
            "    --discover https://api.example.com/api --api-key-env KILOSCRIBE_API_KEY",
            "set -a; . .lab/lab.env; set +a    # the lab's key, after `lab up`",
            "kiloscribe-lab probe https://127.0.0.1:PORT --ca-bundle .lab/ca.pem \\",
            "    --api-key-env KILOSCRIBE_API_KEY --network mobile --timeout 1",
            extra="LABEL=URL names a target in the findings. " + EXIT_CODES,
        ),
    )
    probe.add_argument(
        "urls", nargs="*", metavar="URL", help="https://, wss://, http:// or ws://, or LABEL=URL"
    )
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
        help="find --network in the lab running there (default: $KILOSCRIBE_LAB_DIR, else ./.lab)",
    )
    probe.add_argument(
        "--timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="hard deadline of each probe, counted from the command's start",
    )
    probe.add_argument(
        "--attempts",
        type=_attempts,
        default=1,
        metavar="N",
        help="repeat the connects N times: success rate and latency percentiles (needs --api-key-env)",
    )
    probe.add_argument("--ca-bundle", metavar="PATH", help="PEM file of CAs to trust (default: the system's)")
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
    _add_color(probe)
    probe.set_defaults(func=cmd_probe)

    rep = sub.add_parser(
        "report",
        help="run the notebook matrix and render a dated findings report",
        description="Run probe_endpoint.ipynb once per endpoint x network, aggregate them in "
        "findings_report.ipynb and render reports/YYYY-MM-DD/findings.html and findings.md. "
        "Without --config it starts a lab, investigates it and stops it.",
        epilog=_epilog(
            "kiloscribe-lab report                       # the lab, scenario incident",
            "kiloscribe-lab report --scenario healthy    # compared with the previous run",
            "kiloscribe-lab report --config investigation.toml --jobs 4",
            "kiloscribe-lab report --config .lab/networks.toml   # a running lab's networks",
        ),
    )
    rep.add_argument(
        "--config",
        metavar="FILE",
        help="investigation config (TOML) (default: start a lab and investigate it)",
    )
    rep.add_argument("--out", default="reports", metavar="DIR", help="reports folder")
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
        metavar="NAME",
        help=f"lab scenario when no --config is given: {SCENARIO_NAMES}",
    )
    _add_color(rep)
    rep.add_argument(
        "-v", "--verbose", action="store_true", help="also print the run's timings (the pipeline's internals)"
    )
    rep.set_defaults(func=cmd_report)

    sdk = sub.add_parser(
        "sdk-check",
        help="run the published Kiloscribe SDK in the user's Node runtime against URL",
        description="Run the published @kiloscribe/inscription-sdk in a Node runtime against URL: "
        "as the runtime is, and with a global WebSocket.",
        epilog=_epilog(
            "kiloscribe-lab sdk-check wss://inscribe.example.com \\",
            "    --api-base https://api.example.com/api --api-key-env KILOSCRIBE_API_KEY \\",
            "    --node /path/to/the/users/node",
            "kiloscribe-lab sdk-check wss://127.0.0.1:PORT --ca-bundle .lab/ca.pem \\",
            "    --api-key-env KILOSCRIBE_API_KEY",
            extra="Against the lab, --ca-bundle is needed: without it Node's TLS failures read as timeouts.",
        ),
    )
    sdk.add_argument("url", metavar="URL", help="the Socket.IO URL, as the SDK's wsBaseUrl (wss://…)")
    sdk.add_argument("--api-base", metavar="URL", help="REST base for the SDK (https://HOST/api)")
    _add_api_key_env(sdk)
    sdk.add_argument(
        "--sdk-version",
        default="2.0.9",
        metavar="V",
        help="exact @kiloscribe/inscription-sdk version (default: %(default)s); installed once with npm "
        "into $KILOSCRIBE_LAB_CACHE (default: ~/.cache/kiloscribe-lab)",
    )
    sdk.add_argument("--node", metavar="PATH", help="the Node.js to run (default: node on PATH)")
    sdk.add_argument(
        "--ca-bundle",
        metavar="PATH",
        help="PEM file of CAs for Node (NODE_EXTRA_CA_CERTS; default: Node's own)",
    )
    sdk.add_argument("--json", action="store_true", help="JSON lines: every ProbeResult, then every Finding")
    _add_no_inscription(sdk)
    _add_color(sdk)
    sdk.set_defaults(func=cmd_sdk_check)

    fnd = sub.add_parser(
        "findings",
        help="the catalogue: every finding the diagnosis can raise, what it means and why",
        description="Every finding the diagnosis can raise: its id, severities, meaning and evidence.",
        epilog=_epilog("kiloscribe-lab findings", "kiloscribe-lab findings --json | jq -r .id"),
    )
    fnd.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per finding: id, title, severity (list), meaning, evidence, supersedes",
    )
    fnd.add_argument("--markdown", action="store_true", help="the catalogue as the README's Markdown table")
    fnd.add_argument(
        "--readme",
        metavar="FILE",
        help="rewrite the findings table between its markers in FILE (without it: print the catalogue)",
    )
    fnd.set_defaults(func=cmd_findings)

    lab = sub.add_parser(
        "lab",
        help="the local lab: Caddy edge + LB in front of Socket.IO backends",
        description="The local lab: a real Caddy (CDN edge, load balancer, API) in front of "
        "python-socketio backends on loopback, with the networks users are on.",
        epilog=_epilog(
            "kiloscribe-lab lab scenarios",
            "kiloscribe-lab lab up --scenario incident",
            "set -a; . .lab/lab.env; set +a    # the lab's key in this shell",
            "kiloscribe-lab lab status",
            "kiloscribe-lab lab down",
        ),
    )
    lab_sub = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True, parser_class=_Parser)
    dir_help = "lab directory (default: $KILOSCRIBE_LAB_DIR, else ./.lab)"

    balancers = [str(k) for k in fleet.BalancerKind]
    balancer_help = (
        "run the balancer tier on this software: caddy, nginx or haproxy (default: the scenario's own)"
    )
    backends = [str(k) for k in BackendKind]
    backend_help = (
        "the backends' Socket.IO server: python (python-socketio) or node (socket.io 4.8, "
        "installed with npm on first use); default: the scenario's, else python"
    )
    up = lab_sub.add_parser(
        "up",
        help="start the lab and wait until every endpoint answers",
        epilog=_epilog(
            "kiloscribe-lab lab up --scenario healthy",
            "kiloscribe-lab lab up --scenario incident --balancer nginx --backend node",
            "kiloscribe-lab lab up --json | jq -r .edge",
        ),
    )
    up.add_argument(
        "--scenario",
        default=DEFAULT_SCENARIO,
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help=f"what the lab reproduces: {SCENARIO_NAMES} (`lab scenarios` describes them)",
    )
    up.add_argument("--balancer", choices=balancers, metavar="KIND", help=balancer_help)
    up.add_argument("--backend", choices=backends, metavar="KIND", help=backend_help)
    up.add_argument("--dir", help=dir_help)
    up.add_argument("--force", action="store_true", help="replace a lab already running there")
    up.add_argument("--json", action="store_true", help="print one JSON object")
    up.set_defaults(func=cmd_lab_up)

    restart = lab_sub.add_parser(
        "restart",
        help="restart the running lab (same scenario, balancer and backends unless told otherwise)",
        epilog=_epilog("kiloscribe-lab lab restart", "kiloscribe-lab lab restart --scenario healthy"),
    )
    restart.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        metavar="NAME",
        help="another scenario (default: the running one)",
    )
    restart.add_argument("--balancer", choices=balancers, metavar="KIND", help=balancer_help)
    restart.add_argument("--backend", choices=backends, metavar="KIND", help=backend_help)
    restart.add_argument("--dir", help=dir_help)
    restart.add_argument("--json", action="store_true", help="print one JSON object")
    restart.set_defaults(func=cmd_lab_restart)

    info = lab_sub.add_parser(
        "info",
        help="the running lab's URLs, CA bundle and key variable (read-only)",
        epilog=_epilog("kiloscribe-lab lab info", "kiloscribe-lab lab info --json | jq -r .ca_bundle"),
    )
    info.add_argument("--dir", help=dir_help)
    info.add_argument("--json", action="store_true", help="the object `lab up --json` printed")
    info.set_defaults(func=cmd_lab_info)

    down = lab_sub.add_parser(
        "down", help="stop every lab process", epilog=_epilog("kiloscribe-lab lab down --dir .lab")
    )
    down.add_argument("--dir", help=dir_help)
    down.set_defaults(func=cmd_lab_down)

    st = lab_sub.add_parser(
        "status",
        help="each component's health (exit 3 when unhealthy)",
        epilog=_epilog("kiloscribe-lab lab status", "kiloscribe-lab lab status --json | jq .healthy"),
    )
    st.add_argument("--dir", help=dir_help)
    st.add_argument("--json", action="store_true", help="print one JSON object")
    st.set_defaults(func=cmd_lab_status)

    sc = lab_sub.add_parser(
        "scenarios",
        help="list scenarios and their ground truth",
        epilog=_epilog("kiloscribe-lab lab scenarios", "kiloscribe-lab lab scenarios --json | jq -r .name"),
    )
    sc.add_argument("--json", action="store_true", help="one JSON object per scenario")
    sc.set_defaults(func=cmd_lab_scenarios)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        parser = build_parser()
        if not argv:
            # `kiloscribe-lab` alone: what it can do, on stderr (stdout stays for output), exit 2.
            print(parser.format_help(), end="", file=sys.stderr)
            return EXIT_USAGE
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version: printed, and done
            return exc.code if isinstance(exc.code, int) else EXIT_OK
        func: Callable[[argparse.Namespace], int] = args.func
        return func(args)
    except KiloscribeLabError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
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
        print(f"{PROG}: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_USAGE


def run() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    run()
