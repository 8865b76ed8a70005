"""The vantage code's pure parts: which workers are the vantages, whether they may run the
cells, and what a cell carries to its worker (a config its notebook reads back exactly)."""

from __future__ import annotations

import dataclasses
import pickle
import sys
from pathlib import Path

import pytest

import kiloscribe_lab
from kiloscribe_lab import report
from kiloscribe_lab.config import ClusterSpec, parse_config
from kiloscribe_lab.errors import UsageError
from kiloscribe_lab.names import NetworkName, Transport
from kiloscribe_lab.networks import DIRECT, NetworkProfile
from kiloscribe_lab.report.cluster import (
    CA_FILE,
    CONFIG_FILE,
    NETWORK_CA_FILE,
    PATH_PARAMETERS,
    WorkerFacts,
    _facts_function,
    cell_config,
    cell_task,
    check_workers,
    choose_vantages,
    network_profiles,
)
from kiloscribe_lab.report.jobs import EXECUTION_TIMEOUT_S, START_TIMEOUT_S, WorkerSpec
from kiloscribe_lab.report.plan import MatrixRun, Target

WORKERS = {"tcp://10.0.0.1:4000": "eu-west", "tcp://10.0.0.2:4000": "corp-office"}


def facts(name: str, **changes: object) -> WorkerFacts:
    base = WorkerFacts(name, f"tcp://{name}:1", f"{name}.host", "0.1.0", "3.11.7")
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_every_worker_is_a_vantage_when_none_is_named() -> None:
    assert choose_vantages(WORKERS, None, "tcp://s:8786") == {
        "eu-west": "tcp://10.0.0.1:4000",
        "corp-office": "tcp://10.0.0.2:4000",
    }


def test_named_vantages_in_their_order() -> None:
    assert list(choose_vantages(WORKERS, ["corp-office", "eu-west"], "tcp://s:8786")) == [
        "corp-office",
        "eu-west",
    ]


def test_an_unknown_vantage_says_which_workers_there_are() -> None:
    with pytest.raises(UsageError) as info:
        choose_vantages(WORKERS, ["eu-west", "ap-south"], "tcp://s:8786")
    message = str(info.value)
    assert "unknown vantage 'ap-south'" in message and "corp-office, eu-west" in message
    assert "\n" not in message


def test_no_worker_at_all_says_how_to_start_one() -> None:
    with pytest.raises(UsageError, match="has no worker: start one per place"):
        choose_vantages({}, None, "tcp://s:8786")


def test_a_worker_named_local_is_refused() -> None:
    with pytest.raises(UsageError, match="this machine's vantage"):
        choose_vantages({"tcp://10.0.0.3:1": "local"}, None, "tcp://s:8786")


def test_a_worker_of_another_version_is_named() -> None:
    check_workers([facts("eu-west"), facts("corp-office")], "0.1.0")
    with pytest.raises(UsageError) as info:
        check_workers([facts("eu-west"), facts("corp-office", version="0.0.9")], "0.1.0")
    assert str(info.value).startswith("worker corp-office (corp-office.host) runs kiloscribe-lab 0.0.9")
    assert "kiloscribe-lab==0.1.0" in str(info.value)
    with pytest.raises(UsageError, match="runs no kiloscribe-lab"):
        check_workers([facts("eu-west", version=None)], "0.1.0")


def test_a_key_missing_on_a_worker_names_the_vantage_and_never_a_value() -> None:
    problem = "environment variable KILOSCRIBE_API_KEY is unset or empty"
    with pytest.raises(UsageError) as info:
        check_workers([facts("eu-west"), facts("corp-office", key_problem=problem)], "0.1.0")
    assert str(info.value).startswith(f"vantage corp-office: {problem} in its worker's environment")


def test_the_facts_function_travels_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """It must run on a worker whatever is installed there: pickled by value, so a worker
    without this module (another version) still unpickles and runs it."""
    import cloudpickle

    data = cloudpickle.dumps(_facts_function())
    monkeypatch.setitem(sys.modules, "kiloscribe_lab.report.cluster", None)  # not importable
    monkeypatch.setitem(sys.modules, "kiloscribe_lab.report", None)
    function = pickle.loads(data)

    class Worker:
        name, address = "eu-west", "tcp://10.0.0.1:4000"

    said = function("KILOSCRIBE_TEST_UNSET_KEY", dask_worker=Worker())
    assert said["name"] == "eu-west" and said["version"] == kiloscribe_lab.__version__
    assert said["key_problem"] == "environment variable KILOSCRIBE_TEST_UNSET_KEY is unset or empty"


def plan_for(tmp_path: Path, **investigation: object) -> report.ReportPlan:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nlab\n-----END CERTIFICATE-----\n")
    net_ca = tmp_path / "corp.pem"
    net_ca.write_text("-----BEGIN CERTIFICATE-----\ncorp\n-----END CERTIFICATE-----\n")
    data = {
        "investigation": {
            "endpoints": ["https://edge.example:8443"],
            "api_key_env": "KILOSCRIBE_API_KEY",
            "networks": ["direct", "office"],
            "ca_bundle": str(ca),
            **investigation,
        },
        "networks": {
            "office": {
                "transports": ["polling"],
                "headers": {"X-Office": 'on "quoted"'},
                "ca_bundle": str(net_ca),
                "resolve": {"inscribe.example:443": "127.0.0.1"},
            }
        },
        "cluster": {"scheduler": "tcp://127.0.0.1:8786", "vantages": ["eu-west", "corp-office"]},
    }
    return report.plan_from_config(parse_config(data))


def test_the_plan_carries_the_configs_cluster(tmp_path: Path) -> None:
    assert plan_for(tmp_path).cluster == ClusterSpec("tcp://127.0.0.1:8786", ("eu-west", "corp-office"))


def test_each_cell_runs_once_per_vantage_and_the_local_ids_stay(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    base = "01-edge-example-8443"
    assert [r.id for r in report.build_matrix(plan)] == [f"{base}-direct", f"{base}-office"]
    runs = report.build_matrix(plan, ("eu-west", "corp-office"))
    assert [(r.id, r.vantage) for r in runs] == [
        (f"{base}-direct-eu-west", "eu-west"),
        (f"{base}-direct-corp-office", "corp-office"),
        (f"{base}-office-eu-west", "eu-west"),
        (f"{base}-office-corp-office", "corp-office"),
    ]
    assert report.probe_parameters(runs[1], plan, tmp_path)["vantage"] == "corp-office"


def test_a_cell_carries_names_and_texts_never_a_path_or_a_secret(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    run = MatrixRun(
        "01-edge-office-corp-office", Target("https://127.0.0.1:8443", "edge"), "office", "corp-office"
    )
    profiles = network_profiles(plan, ["office"])
    task = cell_task(plan, run, '{"cells": []}', profiles["office"], "stop-1")
    assert task.vantage == "corp-office" and task.stop_event == "stop-1"
    assert not set(task.parameters) & set(PATH_PARAMETERS)  # the worker sets its own
    settings = task.parameters["settings"]
    assert isinstance(settings, dict) and settings["api_key_env"] == "KILOSCRIBE_API_KEY"
    assert "ca_bundle" not in settings  # a path here; the worker names its own copy
    assert set(task.files) == {CA_FILE, NETWORK_CA_FILE, CONFIG_FILE}
    assert "lab" in task.files[CA_FILE] and "corp" in task.files[NETWORK_CA_FILE]
    assert str(tmp_path) not in repr(task.parameters) + task.files[CONFIG_FILE]
    pickle.loads(pickle.dumps(task))  # it travels


def test_a_cell_runs_under_the_local_matrixs_deadlines(tmp_path: Path) -> None:
    """A local cell's WorkerSpec and a remote cell's are given the same deadlines."""
    plan = plan_for(tmp_path)
    run = MatrixRun("01-edge-direct-eu-west", Target("https://127.0.0.1:8443", "edge"), "direct", "eu-west")
    task = cell_task(plan, run, '{"cells": []}', DIRECT)
    local = WorkerSpec(Path(), Path(), Path())
    spec = task.spec(tmp_path, {"timeout": 3.0})
    assert (spec.start_timeout_s, spec.execution_timeout_s) == (START_TIMEOUT_S, EXECUTION_TIMEOUT_S)
    assert spec.wall_s == task.wall_s == local.wall_s
    assert spec.input.parent == spec.output.parent == spec.status.parent == tmp_path
    short = dataclasses.replace(task, execution_timeout_s=2)
    assert short.wall_s == local.wall_s - EXECUTION_TIMEOUT_S + 2


def test_the_cell_config_reads_back_as_the_plans_profile(tmp_path: Path) -> None:
    """The worker's notebook parses the config the cell carries: the same profile comes back,
    its CA bundle beside the config."""
    plan = plan_for(tmp_path, origin="https://app.example", inscription=False)
    run = MatrixRun("r", Target("https://127.0.0.1:8443", "edge"), "office", "eu-west")
    profile = plan.profiles["office"]
    where = tmp_path / "worker"
    where.mkdir()
    text = cell_config(plan, run, profile, network_ca=True)
    (where / CONFIG_FILE).write_text(text)
    import tomllib

    back = parse_config(tomllib.loads(text), where / CONFIG_FILE)
    got = back.networks["office"]
    assert dataclasses.replace(got, ca_bundle=profile.ca_bundle) == profile
    assert got.ca_bundle == where / NETWORK_CA_FILE
    assert got.transports == (Transport.POLLING,)
    assert back.settings.origin == "https://app.example" and back.settings.inscription is False
    assert back.endpoints == ("https://127.0.0.1:8443",) and back.run_networks == ("office",)
    assert "edge.example" not in text  # the cell's own target, not the config's list


def test_direct_needs_no_profile_in_the_cell_config(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    run = MatrixRun("r", Target("https://127.0.0.1:8443"), NetworkName.DIRECT, "eu-west")
    text = cell_config(plan, run, DIRECT, network_ca=False)
    assert "[networks." not in text
    import tomllib

    assert parse_config(tomllib.loads(text)).networks[NetworkName.DIRECT] == DIRECT


def test_a_network_without_a_profile_cannot_be_sent(tmp_path: Path) -> None:
    plan = dataclasses.replace(plan_for(tmp_path), profiles={})
    assert network_profiles(plan, ["direct"]) == {"direct": DIRECT}
    with pytest.raises(UsageError, match="network 'office': no profile"):
        network_profiles(plan, ["office"])


def test_a_profile_proxy_travels_with_its_cells(tmp_path: Path) -> None:
    plan = plan_for(tmp_path)
    profile = NetworkProfile(name="mobile", proxy="http://127.0.0.1:3128")
    run = MatrixRun("r", Target("https://127.0.0.1:8443"), "mobile", "eu-west")
    import tomllib

    back = parse_config(tomllib.loads(cell_config(plan, run, profile, network_ca=False)))
    assert back.networks["mobile"].proxy == "http://127.0.0.1:3128"
