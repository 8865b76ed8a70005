"""What the notebooks call: one awaitable per job, results written as JSON lines.

Notebook kernels already run an event loop, so these are coroutines (``await`` them in a
cell) rather than ``asyncio.run`` wrappers. Only the *name* of the key variable travels in
parameters; the kernel reads the value from its environment.

``Investigation`` is the on-call notebook's (investigate.ipynb) whole API: what to probe, the
CA to trust, the key's variable, from a lab (``Investigation.of_lab``) or from your own targets
(``Investigation.of_targets``, which starts and attaches to nothing).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kiloscribe_lab import output
from kiloscribe_lab.errors import LabError, UsageError
from kiloscribe_lab.lab import fleet
from kiloscribe_lab.lab.scenarios import DEFAULT_SCENARIO, get_scenario
from kiloscribe_lab.names import NetworkName, VantageName
from kiloscribe_lab.probes.command import ProbeReport, ProbeRequest, build_report, validate
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import ProbeResult, replace, write_jsonl
from kiloscribe_lab.settings import ProbeOptions, ProbeSettings, settings_from_parameters


async def probe_endpoint(
    endpoint: str,
    network: str = "direct",
    settings: Mapping[str, object] | None = None,
    results_path: str | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    vantage: str = VantageName.LOCAL,
) -> ProbeReport:
    """Run the probe suite for one endpoint on one network; write the results if asked.
    ``settings``: ProbeSettings by field name (settings.settings_to_parameters), defaults for
    the rest. Every result names ``vantage``: where it ran (``local``, or the Dask worker that
    runs this)."""
    env = dict(os.environ if environ is None else environ)
    lab_networks, lab_source = fleet.known_networks(None, env)
    request = ProbeRequest(
        urls=(endpoint,),
        network=network,
        config=Path(config_path) if config_path else None,
        settings=settings_from_parameters(settings or {}),
        known_networks=lab_networks,
        known_networks_source=lab_source,
    )
    results, options = await _run(request, env)
    if vantage != VantageName.LOCAL:
        results = [replace(r, vantage=str(vantage)) for r in results]
    if results_path:
        path = Path(results_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(write_jsonl(results))  # noqa: ASYNC240 - once, after the probes
    return build_report(results, options.api_key_env, options.network)


async def _run(request: ProbeRequest, env: Mapping[str, str]) -> tuple[list[ProbeResult], ProbeOptions]:
    """Validated before any traffic, as ``probe`` is: a missing key or CA file is one clear error."""
    options = validate(request, env)
    return await investigate(request.urls, options, discover=request.discover, environ=env), options


def _near(path: str | Path) -> str:
    """A path as seen from the notebook's folder when it is close (``../.lab``), else whole."""
    relative = os.path.relpath(path)
    return str(path) if Path(relative).parts[:2] == (os.pardir, os.pardir) else relative


@dataclass(frozen=True, slots=True)
class Investigation:
    """What the on-call notebook probes: named targets, the CA to trust, the key's variable
    name (the value stays in ``environ``, never shown), and the lab they belong to, if any."""

    targets: dict[str, str]
    ca_bundle: str | None = None
    api_key_env: str | None = None
    discover: str | None = None
    lab: fleet.LabInfo | None = None
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)

    @classmethod
    def of_targets(
        cls,
        targets: Mapping[str, str] | Sequence[str],
        *,
        ca_bundle: str | None = None,
        api_key_env: str | None = None,
        discover: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Investigation:
        """Your endpoints (``{"edge": "https://…"}``, or a list of URLs): no lab is started or
        attached. The key is read from ``$api_key_env`` when a probe runs."""
        named = dict(targets) if isinstance(targets, Mapping) else {url: url for url in targets}
        if not named and not discover:
            raise UsageError('no targets: set TARGETS to your endpoints, e.g. {"edge": "https://…"}')
        return cls(
            targets={str(k): str(v) for k, v in named.items()},
            ca_bundle=ca_bundle or None,
            api_key_env=api_key_env or None,
            discover=discover or None,
            environ=dict(os.environ if environ is None else environ),
        )

    @classmethod
    def of_lab(
        cls,
        lab_dir: str | Path | None = None,
        scenario: str = DEFAULT_SCENARIO,
        *,
        say: Callable[[str], None] = print,
    ) -> Investigation:
        """The lab in ``lab_dir`` (default ``$KILOSCRIBE_LAB_DIR``, else ``./.lab``) running
        ``scenario``: attached when it runs healthy; started when there is none; restarted, and
        said so, when it runs another scenario or a component is not what the scenario wants.
        An unreadable ``lab.json`` is raised, not replaced: it is worth reading first."""
        where = Path(lab_dir).resolve() if lab_dir else fleet.default_lab_dir()
        get_scenario(scenario)  # an unknown name fails here, before anything stops
        if not (where / fleet.STATE_FILE).exists():
            info = fleet.up(where, scenario)
            say(f"started the lab in {_near(where)}: scenario {scenario}")
        else:
            st = fleet.status(where)
            unwell = [f"{c.name} {c.state}" for c in st.components if not c.healthy]
            if st.info.scenario == scenario and not unwell:
                info = st.info
                say(f"attached to the lab in {_near(where)}: scenario {scenario}")
            else:
                why = f"it ran {st.info.scenario}" if st.info.scenario != scenario else ", ".join(unwell)
                stubborn = fleet.down(where)
                if stubborn:
                    raise LabError(f"the lab in {where} would not stop ({', '.join(stubborn)})")
                info = fleet.up(where, scenario)
                say(f"restarted the lab in {_near(where)} as scenario {scenario} ({why})")
        data = info.to_json()
        targets = {"edge": info.edge, "lb": info.lb, **{b["name"]: b["url"] for b in data["backends"]}}
        return cls(
            targets=targets,
            ca_bundle=str(info.ca_bundle),
            api_key_env=info.api_key_env,
            discover=info.api,
            lab=info,
            environ=fleet.lab_environment(info),
        )

    @property
    def expected_findings(self) -> tuple[str, ...]:
        """The lab scenario's ground truth (empty away from a lab)."""
        if self.lab is None:
            return ()
        return tuple(str(f) for f in get_scenario(self.lab.scenario).expected_findings)

    def target(self, name: str) -> str:
        """``LABEL=URL`` for a name in ``targets``; anything else is taken as a URL."""
        return f"{name}={self.targets[name]}" if name in self.targets else name

    async def probe(
        self,
        target: str,
        *,
        network: str = NetworkName.DIRECT,
        inscription: bool = False,
        attempts: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the probes' deadline, enforced inside
    ) -> ProbeReport:
        """Every probe against one target (a name in ``targets``, or a URL), diagnosed alone."""
        return await self._probe([self.target(target)], None, network, inscription, attempts, timeout)

    async def probe_all(
        self,
        *,
        network: str = NetworkName.DIRECT,
        inscription: bool = False,
        attempts: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 - the probes' deadline, enforced inside
    ) -> ProbeReport:
        """Every target (and what ``discover`` lists) at once: the diagnosis ``probe`` makes."""
        urls = [self.target(name) for name in self.targets]
        return await self._probe(urls, self.discover, network, inscription, attempts, timeout)

    async def _probe(
        self,
        urls: Sequence[str],
        discover: str | None,
        network: str,
        inscription: bool,
        attempts: int,
        timeout: float,  # noqa: ASYNC109 - the probes' deadline, enforced inside
    ) -> ProbeReport:
        lab_networks, lab_source = fleet.known_networks(None, self.environ)
        request = ProbeRequest(
            urls=tuple(urls),
            discover=discover,
            network=network,
            settings=ProbeSettings(
                timeout_s=float(timeout),
                attempts=int(attempts),
                ca_bundle=Path(self.ca_bundle) if self.ca_bundle else None,
                api_key_env=self.api_key_env,
                inscription=bool(inscription),
            ),
            known_networks=lab_networks,
            known_networks_source=lab_source,
        )
        results, options = await _run(request, self.environ)
        return build_report(results, options.api_key_env, options.network)

    def overall(self, report: ProbeReport, *, inscription: bool = False, attempts: int = 1) -> str:
        """The verdict, then what this run did not check: what ``probe`` prints first."""
        notices = output.probe_notices(
            report,
            api_key_env=self.api_key_env,
            attempts=attempts,
            inscription=inscription,
            switch="INSCRIPTION = False",
        )
        return output.render_overall(report, output.Style(width=100), notices)

    def stop_lab(self) -> None:
        """Stop the lab this investigation runs against (``kiloscribe-lab lab down`` does too)."""
        if self.lab is None:
            raise UsageError("no lab to stop: this investigation probes your own targets")
        stubborn = fleet.down(self.lab.lab_dir)
        if stubborn:
            raise LabError(f"could not stop {', '.join(stubborn)}")

    def _rows(self) -> list[list[str]]:
        rows = [[name, url] for name, url in self.targets.items()]
        rows.append(["CA bundle", _near(self.ca_bundle) if self.ca_bundle else "the system's"])
        rows.append(["key", f"${self.api_key_env}" if self.api_key_env else "none: no valid-key checks"])
        if self.discover:
            rows.append(["discovery", self.discover])
        if self.lab is not None:
            rows.append(["lab", f"{_near(self.lab.lab_dir)} (scenario {self.lab.scenario})"])
        return rows

    def _repr_html_(self) -> str:
        return HtmlTable(["", "where"], self._rows())._repr_html_()

    def __repr__(self) -> str:
        return "\n".join(f"{name:<10} {value}" for name, value in self._rows())


class HtmlTable:
    """A table that renders as escaped HTML in a notebook and as text elsewhere."""

    def __init__(self, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.columns = list(columns)
        self.rows = [["" if v is None else str(v) for v in row] for row in rows]

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        return "\n".join(" | ".join(row) for row in [self.columns, *self.rows])


def results_table(results: Sequence[ProbeResult]) -> HtmlTable:
    def ms(v: float | None) -> str:
        return "" if v is None else f"{v:.0f}"

    return HtmlTable(
        ["probe", "variant", "outcome", "HTTP", "handshake ms", "total ms", "note"],
        [
            [
                r.probe,
                r.variant,
                r.outcome.value,
                r.status,
                ms(r.timings.handshake),
                ms(r.timings.total),
                r.error or "",
            ]
            for r in results
        ],
    )


def findings_table(report: ProbeReport) -> HtmlTable:
    return HtmlTable(
        ["severity", "finding", "title", "recommendation"],
        [[f.severity.value, f.id, f.title, f.recommendation] for f in report.findings],
    )


def verdicts_table(report: ProbeReport) -> HtmlTable:
    return HtmlTable(
        ["target", "verdict", "why"],
        [[v.label or v.target, v.verdict.value, v.sentence] for v in report.verdicts],
    )


def truth_table(report: ProbeReport, investigation: Investigation) -> HtmlTable:
    """Against a lab: each finding its scenario must produce, and whether this run did."""
    found = {str(f.id) for f in report.findings}
    expected = investigation.expected_findings
    rows = [[fid, "expected", "found" if fid in found else "MISSING"] for fid in expected]
    rows += [[fid, "not expected", "found"] for fid in sorted(found - set(expected))]
    return HtmlTable(["finding", "scenario", "this run"], rows)
