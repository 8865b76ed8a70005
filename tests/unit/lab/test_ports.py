"""The lab's ports: picked free and distinct, described in JSON for the state file."""

from __future__ import annotations

import json

import pytest

from kiloscribe_lab.lab import ports
from kiloscribe_lab.lab.scenarios import BACKENDS
from tests.unit.lab.samples import PORTS


def test_allocate_gives_every_component_its_own_port_and_the_extra_ones() -> None:
    lab_ports, extra = ports.allocate(2)
    assert len(extra) == 2
    assert set(lab_ports.direct) == set(lab_ports.backend) == set(BACKENDS)
    every = [*lab_ports.all_tcp(), *extra]
    assert len(every) == len(set(every)) == 3 + 2 * len(BACKENDS) + 2
    assert all(1024 <= p <= 65535 for p in every)


def test_free_ports_are_distinct() -> None:
    picked = ports.free_ports(20)
    assert len(set(picked)) == 20


def test_lab_ports_json_round_trip() -> None:
    data = json.loads(json.dumps(PORTS.to_json()))
    assert ports.LabPorts.from_json(data) == PORTS


@pytest.mark.parametrize(
    ("change", "error"),
    [({"edge": "x"}, ValueError), ({"direct": 4}, TypeError), ({"lb": None}, TypeError)],
)
def test_lab_ports_from_json_rejects_what_it_did_not_write(change: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        ports.LabPorts.from_json({**PORTS.to_json(), **change})
    with pytest.raises(KeyError):
        ports.LabPorts.from_json({k: v for k, v in PORTS.to_json().items() if k != "api"})
