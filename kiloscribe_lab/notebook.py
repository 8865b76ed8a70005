"""What the notebooks call: one awaitable per job, results written as JSON lines.

Notebook kernels already run an event loop, so these are coroutines (``await`` them in a
cell) rather than ``asyncio.run`` wrappers. Only the *name* of the key variable travels in
parameters; the kernel reads the value from its environment.
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from kiloscribe_lab.lab import fleet
from kiloscribe_lab.probes.command import ProbeReport, ProbeRequest, build_report, validate
from kiloscribe_lab.probes.runner import investigate
from kiloscribe_lab.results import ProbeResult, write_jsonl
from kiloscribe_lab.settings import ProbeSettings


async def probe_endpoint(
    endpoint: str,
    network: str = "direct",
    api_key_env: str | None = None,
    attempts: int = 1,
    timeout: float = 5.0,  # noqa: ASYNC109 - the probes' deadline, enforced inside; papermill's name
    ca_bundle: str | None = None,
    results_path: str | None = None,
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    inscription: bool = True,
) -> ProbeReport:
    """Run the probe suite for one endpoint on one network; write the results if asked."""
    env = dict(os.environ if environ is None else environ)
    lab_networks, lab_source = fleet.known_networks(None, env)
    request = ProbeRequest(
        urls=(endpoint,),
        network=network,
        config=Path(config_path) if config_path else None,
        settings=ProbeSettings(
            timeout_s=float(timeout),
            attempts=int(attempts),
            ca_bundle=Path(ca_bundle) if ca_bundle else None,
            api_key_env=api_key_env or None,
            inscription=bool(inscription),
        ),
        known_networks=lab_networks,
        known_networks_source=lab_source,
    )
    options = validate(request, env)
    results = await investigate(request.urls, options, environ=env)
    if results_path:
        path = Path(results_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(write_jsonl(results))  # noqa: ASYNC240 - once, after the probes
    return build_report(results, options.api_key_env, options.network)


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
