"""settings.py: the settings every caller shares, and their form as notebook parameters."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.settings import (
    DEFAULT_FILE_SIZE,
    ProbeSettings,
    inscription_message_bytes,
    largest_file_bytes,
    settings_from_parameters,
    settings_to_parameters,
)

EVERY_FIELD_CHANGED = ProbeSettings(
    timeout_s=2.5,
    attempts=3,
    ca_bundle=Path("/tmp/ca.pem"),
    api_key_env="KILOSCRIBE_API_KEY",
    inscription=False,
    origin="https://app.example",
    deep=True,
    file_size=65536,
)


def test_every_field_is_changed_by_the_example() -> None:
    default = ProbeSettings()
    assert all(
        getattr(EVERY_FIELD_CHANGED, f.name) != getattr(default, f.name)
        for f in dataclasses.fields(ProbeSettings)
    )


def test_parameters_round_trip_every_field_as_json_scalars() -> None:
    params = settings_to_parameters(EVERY_FIELD_CHANGED)
    assert set(params) == {f.name for f in dataclasses.fields(ProbeSettings)}
    assert params["ca_bundle"] == "/tmp/ca.pem" and params["timeout_s"] == 2.5
    assert all(v is None or isinstance(v, str | int | float | bool) for v in params.values())
    assert settings_from_parameters(params) == EVERY_FIELD_CHANGED
    assert settings_to_parameters(ProbeSettings()) == settings_to_parameters(settings_from_parameters({}))


def test_parameters_missing_take_defaults_and_an_int_timeout_is_a_float() -> None:
    got = settings_from_parameters({"timeout_s": 3, "deep": True})
    assert got == ProbeSettings(timeout_s=3.0, deep=True)
    assert isinstance(got.timeout_s, float)
    assert settings_from_parameters({"ca_bundle": ""}).ca_bundle is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"timeout": 5.0}, r"unknown probe settings \['timeout'\]"),
        ({"deep": "yes"}, "probe setting deep: expected bool, not 'yes'"),
        ({"attempts": True}, "probe setting attempts: expected int, not True"),
        ({"file_size": 1.5}, "probe setting file_size: expected int"),
        ({"origin": 1}, "probe setting origin: expected NoneType or str, not 1"),
    ],
)
def test_parameters_of_the_wrong_name_or_type_are_refused(params: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        settings_from_parameters(params)


def test_an_inscription_message_is_four_thirds_of_the_file_plus_the_request() -> None:
    assert inscription_message_bytes(DEFAULT_FILE_SIZE) == 4 * ((DEFAULT_FILE_SIZE + 2) // 3) + 512
    assert largest_file_bytes(inscription_message_bytes(3000)) == 3000
    assert largest_file_bytes(100) == 0
