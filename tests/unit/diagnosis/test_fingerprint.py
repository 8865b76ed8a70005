"""Fingerprints: who answered, from the answers' own marks (FACTS.md §2)."""

from __future__ import annotations

import pytest

from kiloscribe_lab.diagnosis.fingerprint import fingerprint, marks_of
from kiloscribe_lab.names import Component, Outcome, PlainPath, ProbeName, Tier
from kiloscribe_lab.results import ProbeResult
from tests.unit.diagnosis import facts
from tests.unit.diagnosis.helpers import A, fixture, pr


def _answer(
    headers: dict[str, str] | None = None, body: str = "", status: int = 400, **detail: object
) -> ProbeResult:
    if body:
        detail["body"] = body
    return pr(
        ProbeName.WEBSOCKET_PLAIN, PlainPath.SOCKETIO, A, Outcome.BLOCKED, status, headers=headers, **detail
    )


@pytest.mark.parametrize(
    ("answer", "component", "mark"),
    [
        (_answer(facts.NGINX), Component.NGINX, "Server: nginx/1.22.1"),
        (
            _answer(body=facts.nginx_page(502, "Bad Gateway"), status=502),
            Component.NGINX,
            "an nginx error page",
        ),
        (_answer(body=facts.HAPROXY_504, status=504), Component.HAPROXY, "<h1>504 Gateway Time-out</h1>"),
        (_answer(header_names=facts.HAPROXY_NAMES), Component.HAPROXY, "every header name lower-cased"),
        (_answer(facts.CADDY), Component.CADDY, "Via: 1.1 Caddy"),
        (_answer(facts.CLOUDFLARE), Component.CLOUDFLARE, "cf-ray"),
        (_answer(status=522), Component.CLOUDFLARE, "HTTP 522"),
        (_answer(body=facts.NODE_BAD_REQUEST), Component.ENGINEIO, "as a JSON object"),
        (_answer(body=facts.PY_BAD_UPGRADE), Component.PYTHON_ENGINEIO, "as a JSON string"),
        (_answer(body=facts.NODE_OPEN, status=200), Component.ENGINEIO, "pingInterval first"),
        (_answer(body=facts.PY_OPEN, status=200), Component.PYTHON_ENGINEIO, "pingTimeout first"),
        (_answer(facts.UVICORN), Component.PYTHON_ENGINEIO, "server: uvicorn"),
    ],
)
def test_each_component_is_recognised_by_its_mark(
    answer: ProbeResult, component: Component, mark: str
) -> None:
    marks = [m for m in marks_of(answer) if m.component is component]
    assert marks and any(mark in m.what for m in marks), marks_of(answer)


@pytest.mark.parametrize(
    "names",
    [
        facts.NODE_NAMES,  # Node capitalises its own names
        ["content-type", "date", "server"],  # uvicorn writes lower case, and says so in Server
        ["content-type"],  # one name is too little to tell
    ],
)
def test_lower_cased_names_alone_are_not_haproxy(names: list[str]) -> None:
    assert not [m for m in marks_of(_answer(header_names=names)) if m.component is Component.HAPROXY]


def test_beliefs_rank_strong_marks_over_weak_ones_and_name_their_evidence() -> None:
    results = [
        _answer(facts.NGINX, header_names=facts.HAPROXY_NAMES),
        _answer(facts.NGINX),
        _answer(body=facts.NODE_BAD_REQUEST),
    ]
    fp = fingerprint(results)
    balancer = fp.at(Tier.BALANCER)
    assert balancer is not None and balancer.component is Component.NGINX
    assert balancer.why() == "Server: nginx/1.22.1, on 2 answers"
    server = fp.at(Tier.SERVER)
    assert server is not None and server.component is Component.ENGINEIO
    assert fp.at(Tier.EDGE) is None
    assert "nginx" in fp.describe() and "HAProxy" in fp.describe()


def test_the_labs_recordings_show_its_caddy_and_its_cloudflare_stand_in() -> None:
    results = fixture("healthy")
    lb = [r for r in results if r.detail.get("label") == "lb"]
    edge = [r for r in results if r.detail.get("label") == "edge"]
    assert (b := fingerprint(lb).at(Tier.BALANCER)) is not None and b.component is Component.CADDY
    assert (e := fingerprint(edge).at(Tier.EDGE)) is not None and e.component is Component.CLOUDFLARE
    backends = [r for r in results if str(r.detail.get("label", "")).startswith("inscribe-")]
    assert (
        s := fingerprint(backends).at(Tier.SERVER)
    ) is not None and s.component is Component.PYTHON_ENGINEIO
    # the lab serves each backend through a Caddy site of its own (caddyfile.py): it shows
    assert (d := fingerprint(backends).at(Tier.BALANCER)) is not None and d.component is Component.CADDY


def test_nothing_recognised() -> None:
    assert (
        fingerprint([pr(ProbeName.ENGINEIO_HANDSHAKE, "", A, Outcome.REFUSED)]).describe()
        == "nothing recognised"
    )
