"""``discovery``: ``GET <api>/inscriptions/websocket-servers``, as the SDK's constructor does.

It validates the shape the SDK relies on and returns the servers, which the runner adds
to the run's targets. The key travels in ``x-api-key`` and is never recorded.
"""

from __future__ import annotations

import json
from typing import Any

from kiloscribe_lab.details import DiscoveryDetail
from kiloscribe_lab.endpoints import parse_endpoint
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import Outcome
from kiloscribe_lab.outcomes import outcome_for_status
from kiloscribe_lab.probes.base import ProbeContext, Recorder
from kiloscribe_lab.probes.polling import Session
from kiloscribe_lab.probes.wire import evidence_headers
from kiloscribe_lab.results import ProbeResult

PATH = "/inscriptions/websocket-servers"
# Each listed server becomes a target with a dozen probes: a list longer than this is a broken
# (or hostile) document, not a fleet to probe all at once.
MAX_SERVERS = 16


def _refused_url(url: str) -> str | None:
    """Why a listed URL is no endpoint (``parse_endpoint``'s reason, the URL only as shown), or None."""
    try:
        parse_endpoint(url)
    except UsageError as exc:
        return str(exc).removeprefix("malformed URL ")
    return None


def _scalar(value: Any) -> Any:
    """A field of a server entry as evidence: a JSON scalar, else its type's name."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return f"<{type(value).__name__}>"


def check_servers(data: Any) -> tuple[list[dict[str, Any]], str | None, list[str]]:
    """The servers, the recommended URL and every way the document departs from the
    contract. Pure, for table tests."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return [], None, ["the answer is not a JSON object"]
    raw = data.get("servers")
    if not isinstance(raw, list):
        return [], None, ["'servers' is missing or not a list"]
    servers: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("url"), str):
            problems.append(f"servers[{i}] has no string 'url'")
            continue
        refused = _refused_url(item["url"])
        if refused is not None:
            # Recorded and never probed: a javascript: or ftp: URL is no server to connect to.
            problems.append(f"servers[{i}] url {refused}: not probed")
            continue
        if len(servers) == MAX_SERVERS:
            problems.append(
                f"more than {MAX_SERVERS} servers listed: only the first {MAX_SERVERS} are probed"
            )
            break
        servers.append(
            {k: _scalar(item.get(k)) for k in ("url", "region", "status", "priority", "activeJobs")}
        )
        if not isinstance(item.get("status"), str):
            problems.append(f"servers[{i}] has no string 'status'")
    recommended = data.get("recommended")
    if recommended is not None and not isinstance(recommended, str):
        problems.append("'recommended' is not a string")
        recommended = None
    if isinstance(recommended, str) and (refused := _refused_url(recommended)) is not None:
        problems.append(f"recommended url {refused}")
        recommended = None
    active = [s for s in servers if s.get("status") == "active"]
    if not active:
        problems.append("no server has status 'active'")
    if recommended and recommended not in {s["url"] for s in servers}:
        problems.append(f"recommended {recommended} is not in the server list")
    return servers, recommended, problems


def chosen_server(servers: list[dict[str, Any]], recommended: str | None) -> str | None:
    """What the SDK connects to: ``recommended`` wins, else the first active server."""
    if recommended:
        return recommended
    return next((s["url"] for s in servers if s.get("status") == "active"), None)


async def discovery(ctx: ProbeContext, rec: Recorder) -> ProbeResult:
    base = ctx.endpoint.path.rstrip("/")
    endpoint = ctx.endpoint.with_path(base + PATH)
    detail = rec.detail_as(DiscoveryDetail)
    detail["url"] = endpoint.url
    key_env = ctx.options.api_key_env
    detail["command"] = (
        f'curl -H "x-api-key: ${key_env}" {endpoint.url}' if key_env else f"curl {endpoint.url}"
    )
    key = ctx.api_key()
    session = Session(endpoint, ctx, rec)
    try:
        headers = [("x-api-key", key)] if key else []
        await session.open()
        began = rec.clock.begin("discovery")
        response = await session.request("GET", endpoint.path, headers=headers)
        rec.clock.mark_once("handshake", began)
    finally:
        session.close()
    rec.status = response.status
    rec.headers = evidence_headers(response.headers)
    detail["status_line"] = response.status_line
    if response.status in {401, 403}:
        detail["body"] = rec.excerpt(response.body)
        return rec.result(Outcome.AUTH_REJECTED, _message(response.body) or response.status_line)
    if response.status != 200:
        detail["body"] = rec.excerpt(response.body)
        return rec.result(outcome_for_status(response.status), response.status_line)
    try:
        data = json.loads(response.body)
    except (ValueError, RecursionError):
        detail["body"] = rec.excerpt(response.body)
        return rec.result(Outcome.MALFORMED, "the answer is not JSON")
    servers, recommended, problems = check_servers(data)
    detail["servers"] = servers
    detail["recommended"] = recommended
    detail["problems"] = problems
    detail["chosen"] = chosen_server(servers, recommended)
    if not servers and problems:
        return rec.result(Outcome.MALFORMED, "; ".join(problems))
    return rec.result(Outcome.OK, "; ".join(problems) or None)


def _message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    message = data.get("message") if isinstance(data, dict) else None
    return message if isinstance(message, str) else None
