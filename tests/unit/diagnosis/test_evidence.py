"""Evidence: what a variant says (transport, credential), what "the path works" means, and the
boundary that drops a detail field of the wrong type."""

from __future__ import annotations

from typing import Any

import pytest

from kiloscribe_lab.diagnosis import Evidence, path_works
from kiloscribe_lab.diagnosis.evidence import credential_of, is_polling, is_websocket, transport_of
from kiloscribe_lab.names import Credential, Outcome, ProbeName, Transport
from tests.unit.diagnosis.helpers import A, pr


@pytest.mark.parametrize(
    ("probe", "variant", "transport", "credential"),
    [
        (ProbeName.SOCKETIO_CONNECT, "websocket:valid", Transport.WEBSOCKET, Credential.VALID),
        (ProbeName.SOCKETIO_CONNECT, "polling:none", Transport.POLLING, Credential.NONE),
        (ProbeName.CONNECT_STATS, "websocket", Transport.WEBSOCKET, None),
        (ProbeName.CONNECT_STATS, "polling", Transport.POLLING, None),
        (ProbeName.STICKY_SESSION, "cookies", None, None),
        (ProbeName.SDK_FLOW, "", None, None),
    ],
)
def test_a_variant_names_its_transport_and_credential(
    probe: str, variant: str, transport: Transport | None, credential: Credential | None
) -> None:
    r = pr(probe, variant, A, Outcome.OK)
    assert transport_of(r) is transport
    assert credential_of(r) is credential
    assert is_polling(r) is (transport is Transport.POLLING)


@pytest.mark.parametrize(
    ("probe", "variant", "websocket"),
    [
        (ProbeName.WEBSOCKET_PLAIN, "socket.io", True),
        (ProbeName.WEBSOCKET_PLAIN, "as-given", False),  # not the Socket.IO path
        (ProbeName.ENGINEIO_UPGRADE, "", True),
        (ProbeName.SDK_FLOW, "", True),
        (ProbeName.SOCKETIO_CONNECT, "websocket:invalid", True),
        (ProbeName.SOCKETIO_CONNECT, "polling:valid", False),
        (ProbeName.ENGINEIO_HANDSHAKE, "", False),
    ],
)
def test_which_probes_are_websocket(probe: str, variant: str, websocket: bool) -> None:
    assert is_websocket(pr(probe, variant, A, Outcome.OK)) is websocket


@pytest.mark.parametrize(
    ("probe", "variant", "outcome", "works"),
    [
        (ProbeName.ENGINEIO_HANDSHAKE, "", Outcome.OK, True),
        (ProbeName.SOCKETIO_CONNECT, "websocket:invalid", Outcome.AUTH_REJECTED, True),  # the server's words
        (ProbeName.SOCKETIO_CONNECT, "polling:none", Outcome.AUTH_REJECTED, True),
        (ProbeName.SOCKETIO_CONNECT, "websocket:valid", Outcome.AUTH_REJECTED, False),  # that client is stuck
        (ProbeName.SDK_FLOW, "", Outcome.AUTH_REJECTED, False),
        (ProbeName.SOCKETIO_CONNECT, "websocket:invalid", Outcome.UPSTREAM_ERROR, False),
    ],
)
def test_path_works(probe: str, variant: str, outcome: Outcome, works: bool) -> None:
    assert path_works(pr(probe, variant, A, outcome)) is works


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("moved", "3"),
        ("answered", True),  # a bool is an int to Python, not to the rules
        ("answers", [1, 2]),
        ("outcomes", {"ok": "many"}),
        ("label", 7),
        ("engineio_error", "code 5"),
    ],
)
def test_a_detail_field_of_the_wrong_type_is_dropped_at_the_boundary(field: str, value: Any) -> None:
    r = pr(
        ProbeName.STICKY_SESSION, "cookies", A, Outcome.OK, follow_ups=6, extra={"kept": 1}, **{field: value}
    )
    (sane,) = Evidence.of([r]).results
    assert field not in sane.detail
    assert sane.detail["follow_ups"] == 6 and sane.detail["extra"] == {"kept": 1}


def test_a_sane_result_passes_unchanged() -> None:
    r = pr(ProbeName.STICKY_SESSION, "cookies", A, Outcome.OK, moved=2, answers=[{"status": 200}], label="lb")
    assert Evidence.of([r]).results == (r,)
    assert Evidence.of([r]).results[0] is r
