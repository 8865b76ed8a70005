"""The shared data model: ProbeResult and Finding as JSON, in and out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiloscribe_lab.errors import RecordError
from kiloscribe_lab.names import FindingId, Outcome, Severity, VantageName
from kiloscribe_lab.results import (
    TIMING_PHASES,
    Finding,
    ProbeResult,
    Timings,
    dumps_line,
    read_jsonl,
    record_from_json,
    write_jsonl,
)

# DESIGN.md, "ProbeResult": the closed outcome vocabulary.
DESIGN_OUTCOMES = {
    "ok",
    "auth_rejected",
    "redirect",
    "http_error",
    "upstream_error",
    "protocol_mismatch",
    "session_unknown",
    "blocked",
    "timeout",
    "refused",
    "reset",
    "dns_error",
    "tls_error",
    "malformed",
}
PROBE_KEYS = {
    "kind",
    "probe",
    "variant",
    "target",
    "network",
    "vantage",
    "outcome",
    "ok",
    "status",
    "error",
    "timings_ms",
    "headers",
    "detail",
    "started_at",
}
FINDING_KEYS = {
    "kind",
    "id",
    "severity",
    "title",
    "summary",
    "evidence",
    "recommendation",
    "targets",
}


def probe(**changes: Any) -> ProbeResult:
    fields: dict[str, Any] = {
        "probe": "socketio",
        "variant": "websocket",
        "target": "https://127.0.0.1:8443",
        "network": "direct",
        "outcome": Outcome.AUTH_REJECTED,
        "status": 101,
        "error": "Invalid API key",
        "timings": Timings(dns=None, connect=1.25, tls=3.5, first_byte=None, handshake=7.0, total=12.0),
        "headers": {"server": "cloudflare", "cf-ray": "abc"},
        "detail": {"connect_error": {"message": "Invalid API key"}, "attempts": [1, 2]},
        "started_at": "2026-11-26T10:00:00.000Z",
    }
    fields.update(changes)
    return ProbeResult(**fields)


FINDING = Finding(
    id=FindingId.BACKEND_DOWN,
    severity=Severity.CRITICAL,
    title="inscribe-2 is down",
    summary="Every request routed to inscribe-2 answers 502.",
    recommendation="Restart inscribe-2 and add a health check to the balancer.",
    evidence=("http:polling@https://inscribe-2#direct",),
    targets=("https://inscribe-2",),
)


def test_outcomes_are_the_designs_vocabulary() -> None:
    assert {o.value for o in Outcome} == DESIGN_OUTCOMES
    assert [o for o in Outcome if o.ok] == [Outcome.OK]
    assert [s.value for s in sorted(Severity, key=lambda s: s.rank)] == [
        "info",
        "warning",
        "critical",
    ]


def test_probe_result_json_shape_and_round_trip() -> None:
    result = probe()
    data = result.to_json()
    assert set(data) == PROBE_KEYS
    assert data["kind"] == "probe"
    assert data["outcome"] == "auth_rejected"
    assert data["ok"] is False
    assert set(data["timings_ms"]) == set(TIMING_PHASES)
    assert ProbeResult.from_json(json.loads(json.dumps(data))) == result


def test_finding_json_shape_and_round_trip() -> None:
    data = FINDING.to_json()
    assert set(data) == FINDING_KEYS
    assert data["kind"] == "finding"
    assert data["severity"] == "critical"
    assert data["evidence"] == list(FINDING.evidence)
    assert Finding.from_json(json.loads(json.dumps(data))) == FINDING


def test_jsonl_round_trip_keeps_order_and_kind() -> None:
    records = [probe(), probe(outcome=Outcome.OK, error=None, status=200), FINDING]
    text = write_jsonl(records)
    assert text.count("\n") == 3
    assert all("\n" not in dumps_line(r) for r in records)
    assert list(read_jsonl(text)) == records


def test_timings_that_did_not_happen_stay_null() -> None:
    result = probe(timings=Timings(connect=0.0, total=5.0))
    line = dumps_line(result)
    timings = json.loads(line)["timings_ms"]
    assert timings == {
        "dns": None,
        "connect": 0.0,
        "tls": None,
        "first_byte": None,
        "handshake": None,
        "total": 5.0,
    }
    assert '"dns":null' in line
    back = ProbeResult.from_json(json.loads(line)).timings
    assert back.dns is None and back.tls is None and back.handshake is None
    assert back.connect == 0.0  # a real zero is not confused with null either


def test_missing_timings_object_means_all_null() -> None:
    data = probe().to_json()
    del data["timings_ms"]
    assert ProbeResult.from_json(data).timings == Timings()


def test_ref_names_probe_variant_target_and_network() -> None:
    assert probe().ref == "socketio:websocket@https://127.0.0.1:8443#direct"
    assert probe(variant="").ref == "socketio@https://127.0.0.1:8443#direct"


def test_a_vantage_other_than_local_is_part_of_the_ref_and_round_trips() -> None:
    remote = probe(vantage="corp-office")
    assert remote.ref == "socketio:websocket@https://127.0.0.1:8443#direct/corp-office"
    assert remote.ref != probe().ref  # the same probe from two places: two pieces of evidence
    assert remote.to_json()["vantage"] == "corp-office"
    assert ProbeResult.from_json(json.loads(json.dumps(remote.to_json()))) == remote


def test_a_record_without_a_vantage_ran_locally() -> None:
    data = probe().to_json()
    del data["vantage"]
    assert ProbeResult.from_json(data).vantage == VantageName.LOCAL
    assert probe().to_json()["vantage"] == "local"


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[1, 2]",
        '"a string"',
        '{"kind": "mystery"}',
        '{"kind": [1]}',  # unhashable: still a RecordError
        '{"kind": {"a": 1}}',
        '{"probe": "x", "target": "t", "outcome": "ok"}',  # no kind
    ],
)
def test_read_jsonl_bad_line_raises_protocol_error(text: str) -> None:
    good = dumps_line(probe())
    with pytest.raises(RecordError):
        list(read_jsonl(f"{good}\n{text}\n"))


def test_read_jsonl_error_names_the_line_and_skips_blank_lines() -> None:
    good = dumps_line(FINDING)
    with pytest.raises(RecordError, match="line 4"):
        list(read_jsonl(f"{good}\n\n{good}\n{{oops\n"))
    assert list(read_jsonl(f"\n{good}\n   \n")) == [FINDING]


def test_read_jsonl_skips_the_derived_verdict_and_summary_lines() -> None:
    verdict = '{"kind":"verdict","target":"https://x","verdict":"healthy"}'
    summary = '{"kind":"summary","overall":"healthy"}'
    text = f"{dumps_line(probe())}\n{dumps_line(FINDING)}\n{verdict}\n{summary}\n"
    assert list(read_jsonl(text)) == [probe(), FINDING]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("outcome", "exploded"),
        ("status", True),  # a bool is not an HTTP status
        ("status", "200"),
        ("timings_ms", {"total": "12"}),
        ("headers", ["not", "a", "mapping"]),
    ],
)
def test_malformed_probe_records_raise_protocol_error(key: str, value: Any) -> None:
    data = probe().to_json()
    data[key] = value
    with pytest.raises(RecordError):
        record_from_json(data)


@pytest.mark.parametrize(("key", "value"), [("severity", "fatal"), ("id", None)])
def test_malformed_findings_raise_protocol_error(key: str, value: Any) -> None:
    data = FINDING.to_json()
    if value is None:
        del data[key]
    else:
        data[key] = value
    with pytest.raises(RecordError):
        record_from_json(data)


ms = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))


@given(st.builds(Timings, dns=ms, connect=ms, tls=ms, first_byte=ms, handshake=ms, total=ms))
def test_timings_round_trip_keeps_nulls_and_millisecond_precision(timings: Timings) -> None:
    back = Timings.from_json(json.loads(json.dumps(timings.to_json())))
    for phase in TIMING_PHASES:
        before, after = getattr(timings, phase), getattr(back, phase)
        if before is None:
            assert after is None
        else:
            assert after == pytest.approx(before, abs=0.0005 + 1e-9)


def test_labelled_records_round_trip_through_json_lines() -> None:
    """A target's label (``inscribe-2=https://…``) travels in detail and survives JSON."""
    labelled = probe(
        target="https://127.0.0.1:36653",
        outcome=Outcome.UPSTREAM_ERROR,
        status=502,
        error="HTTP/1.1 502 Bad Gateway",
        detail={"label": "inscribe-2", "exchanges": [{"status": 502, "backend": None}]},
    )
    finding = Finding(
        id=FindingId.BACKEND_DOWN,
        severity=Severity.CRITICAL,
        title="Backend down: inscribe-2 (https://127.0.0.1:36653)",
        summary="inscribe-2 answers every request with 502.",
        recommendation="Restart inscribe-2.",
        evidence=(labelled.ref,),
        targets=(labelled.target,),
    )
    back = list(read_jsonl(write_jsonl([labelled, finding])))
    assert back == [labelled, finding]
    assert isinstance(back[0], ProbeResult)
    assert back[0].detail["label"] == "inscribe-2"
    assert back[0].detail["exchanges"] == [{"status": 502, "backend": None}]
    assert isinstance(back[1], Finding)
    assert back[1].evidence == (labelled.ref,) and back[1].targets == (labelled.target,)
