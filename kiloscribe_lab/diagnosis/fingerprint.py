"""Who answered: the components on a target's path, told from the answers themselves. Pure.

Each answer (a ProbeResult's status, headers, header-name spelling and body) may carry marks
of the software that wrote it, as measured on the real thing (research/FACTS.md §2):

* Cloudflare: ``cf-ray``, ``Server: cloudflare``, ``cf-mitigated``, its own 52x statuses;
* Caddy: ``Via: 1.1 Caddy``, ``Server: Caddy``;
* nginx: ``Server: nginx[/1.22.1]`` (it hides the upstream's), pages ending
  ``<hr><center>nginx/1.22.1</center>``;
* an AWS ALB: ``Server: awselb/2.0`` on its own answers (its 502/504 pages);
* HAProxy: pages ``<html><body><h1>504 Gateway Time-out</h1>``; it adds no Server, Via or
  Date and lower-cases every header name it forwards (Node capitalises its own);
* engine.io (Node): errors as JSON objects ``{"code":3,"message":"Bad request"}``, an OPEN
  packet with ``pingInterval`` before ``pingTimeout``;
* python-engineio: errors as JSON strings (``"Invalid transport"``), ``pingTimeout`` first in
  its OPEN packet, usually ``server: uvicorn``.

A *belief* is a component with every mark seen for it and how many answers carried one: the
rules say which component they believe is there, and why, and pick its words for the fix
(``diagnosis.remedies``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kiloscribe_lab import protocol
from kiloscribe_lab.names import Component, Tier
from kiloscribe_lab.results import ProbeResult

__all__ = ["Belief", "Fingerprint", "Mark", "authored_marks", "fingerprint", "marks_of"]

_NGINX_PAGE = re.compile(r"<center>(nginx(?:/[0-9.]+)?)</center>")
_HAPROXY_PAGE = re.compile(r"^<html><body><h1>(\d{3} [^<]{1,60})</h1>\n")
_CLOUDFLARE_STATUSES = range(520, 528)  # 520-527: Cloudflare's own origin errors
_PYTHON_SERVERS = ("uvicorn", "hypercorn", "daphne")
# The OPEN packet's field order: engine.io writes pingInterval first, python-engineio
# pingTimeout first (both measured; research/results).
_ENGINEIO_OPEN = re.compile(r'^0\{"sid":"[^"]*","upgrades":\[[^\]]*\],"pingInterval":')
_PYTHON_OPEN = re.compile(r'^0\{"sid":"[^"]*","upgrades":\[[^\]]*\],"pingTimeout":')


@dataclass(frozen=True, slots=True)
class Mark:
    """One sign, in one answer, of the software that wrote it."""

    component: Component
    what: str  # as the user can check it: "Server: nginx/1.22.1"
    strong: bool = True  # a weak mark alone is a guess (lower-cased names; server: uvicorn)


def _tokens(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def authored_marks(r: ProbeResult) -> list[Mark]:
    """The marks of whoever *wrote* the answer: its body's (an nginx or HAProxy error page,
    Engine.IO's error in its own form). Headers are left out: a proxy adds its Server or Via to
    what it relays, so they say who the answer passed through, not who refused."""
    body = r.detail.get("body")
    return _body_marks(r.status, body) if isinstance(body, str) and body else []


def marks_of(r: ProbeResult) -> list[Mark]:
    """Every mark one answer carries."""
    marks: list[Mark] = []
    headers = r.headers
    server = headers.get("server", "")
    for token in _tokens(server):
        low = token.lower()
        if low == "cloudflare":
            marks.append(Mark(Component.CLOUDFLARE, "Server: cloudflare"))
        elif low.startswith("nginx"):
            marks.append(Mark(Component.NGINX, f"Server: {token}"))
        elif low.startswith("awselb"):
            marks.append(Mark(Component.AWS_ALB, f"Server: {token}"))
        elif low.startswith("caddy"):
            marks.append(Mark(Component.CADDY, f"Server: {token}"))
        elif low.startswith(_PYTHON_SERVERS):
            marks.append(Mark(Component.PYTHON_ENGINEIO, f"server: {token} (an ASGI server)", strong=False))
    if "cf-ray" in headers:
        marks.append(Mark(Component.CLOUDFLARE, "cf-ray"))
    if "cf-mitigated" in headers:
        marks.append(Mark(Component.CLOUDFLARE, f"cf-mitigated: {headers['cf-mitigated']}"))
    if r.status in _CLOUDFLARE_STATUSES:
        marks.append(Mark(Component.CLOUDFLARE, f"HTTP {r.status}, one of Cloudflare's own statuses"))
    for token in _tokens(headers.get("via", "")):
        if "caddy" in token.lower():
            marks.append(Mark(Component.CADDY, f"Via: {token}"))
    body = r.detail.get("body")
    if isinstance(body, str) and body:
        marks += _body_marks(r.status, body)
    error = r.detail.get("engineio_error")
    if not body and isinstance(error, Mapping) and error.get("style") in {"node", "python"}:
        component = Component.ENGINEIO if error["style"] == "node" else Component.PYTHON_ENGINEIO
        marks.append(Mark(component, f"its error {error.get('message')!r}, in {component}'s form"))
    names = r.detail.get("header_names")
    if isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) for n in names):
        lowered = {n.lower() for n in names}
        # HAProxy lower-cases what it forwards and adds no Server/Via; uvicorn also writes
        # lower-case names but always says "server: uvicorn".
        if all(n == n.lower() for n in names) and not lowered & {"server", "via"}:
            marks.append(Mark(Component.HAPROXY, "every header name lower-cased, no Server", strong=False))
    return marks


def _body_marks(status: int | None, body: str) -> list[Mark]:
    marks = []
    if _ENGINEIO_OPEN.match(body):
        marks.append(Mark(Component.ENGINEIO, "its OPEN packet's field order (pingInterval first)"))
    elif _PYTHON_OPEN.match(body):
        marks.append(Mark(Component.PYTHON_ENGINEIO, "its OPEN packet's field order (pingTimeout first)"))
    page = _NGINX_PAGE.search(body)
    if page:
        marks.append(Mark(Component.NGINX, f"an nginx error page (<center>{page.group(1)}</center>)"))
    page = _HAPROXY_PAGE.match(body)
    if page:
        marks.append(Mark(Component.HAPROXY, f"an HAProxy error page (<h1>{page.group(1)}</h1>)"))
    if status is not None:
        error = protocol.classify_engineio_error(status, body)
        if error is not None:
            component = Component.ENGINEIO if error.style == "node" else Component.PYTHON_ENGINEIO
            form = "a JSON object" if error.style == "node" else "a JSON string"
            marks.append(Mark(component, f"its error {error.message!r} as {form}"))
    return marks


@dataclass(frozen=True, slots=True)
class Belief:
    """A component believed to be on the path, with the evidence for it."""

    component: Component
    marks: tuple[str, ...]  # each distinct mark once, strong ones first
    answers: int  # answers that carried a mark of it
    strong: bool  # at least one strong mark
    refs: tuple[str, ...]

    def why(self) -> str:
        """The evidence, as a reader can check it: 'Server: nginx/1.22.1, on 9 answers'."""
        shown = "; ".join(self.marks[:3])
        return f"{shown}, on {self.answers} answer{'s' if self.answers != 1 else ''}"


@dataclass(frozen=True, slots=True)
class Fingerprint:
    beliefs: tuple[Belief, ...]  # best evidenced first

    def get(self, component: Component) -> Belief | None:
        return next((b for b in self.beliefs if b.component is component), None)

    def at(self, tier: Tier) -> Belief | None:
        """The best-evidenced component of ``tier``: strong marks beat weak ones, then the
        number of answers. None when nothing of that tier left a mark."""
        return next((b for b in self.beliefs if b.component.tier is tier), None)

    def describe(self) -> str:
        return "; ".join(f"{b.component}: {b.why()}" for b in self.beliefs) or "nothing recognised"


def fingerprint(results: Iterable[ProbeResult], *, authored: bool = False) -> Fingerprint:
    """The components the answers show, each with its marks; with ``authored``, only the
    components that wrote an answer themselves (``authored_marks``)."""
    seen: dict[Component, dict[str, bool]] = {}
    answers: dict[Component, list[str]] = {}
    for r in results:
        marks = authored_marks(r) if authored else marks_of(r)
        for m in marks:
            kinds = seen.setdefault(m.component, {})
            kinds[m.what] = kinds.get(m.what, False) or m.strong
        for component in dict.fromkeys(m.component for m in marks):
            answers.setdefault(component, []).append(r.ref)
    beliefs = []
    for component, kinds in seen.items():
        ordered = sorted(kinds, key=lambda what: not kinds[what])
        refs = tuple(dict.fromkeys(answers[component]))
        beliefs.append(Belief(component, tuple(ordered), len(answers[component]), any(kinds.values()), refs))
    beliefs.sort(key=lambda b: (not b.strong, -b.answers, list(Component).index(b.component)))
    return Fingerprint(tuple(beliefs))
