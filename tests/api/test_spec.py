"""Spec parsing: defaults, bounds and the messages a user sees."""

import pytest
from pydantic import ValidationError

from gencluster.api.spec import GenerationClusterSpec, parse_spec


def test_minimal_spec_gets_documented_defaults() -> None:
    spec = parse_spec({"workload": {"image": "example/server:1"}})
    assert spec.replicas.min == 1 and spec.replicas.max == 4
    assert spec.autoscaling.enabled and spec.autoscaling.interval_seconds == 5
    assert spec.autoscaling.scale_down.stabilization_seconds == 300
    assert spec.autoscaling.scale_up.stabilization_seconds == 0
    assert spec.batching.mode == "adaptive" and spec.batching.initial == 4
    assert spec.cache.mode == "standalone"
    assert spec.workload.gpus_per_replica == 1


def test_camel_case_round_trip() -> None:
    raw = {"workload": {"image": "x", "gpusPerReplica": 2, "memoryBudgetMiB": 512},
           "cache": {"mode": "cluster", "shards": 4, "maxMemoryMiB": 64}}
    spec = parse_spec(raw)
    dumped = spec.model_dump(by_alias=True)
    assert dumped["workload"]["gpusPerReplica"] == 2
    assert dumped["workload"]["memoryBudgetMiB"] == 512
    assert dumped["cache"]["maxMemoryMiB"] == 64
    assert GenerationClusterSpec.model_validate(dumped) == spec


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({}, "workload"),
        ({"workload": {"image": ""}}, "workload.image"),
        ({"workload": {"image": "x", "port": 80}}, "workload.port"),
        ({"workload": {"image": "x", "gpusPerReplica": -1}}, "workload.gpusPerReplica"),
        ({"workload": {"image": "x"}, "batching": {"mode": "greedy"}}, "batching.mode"),
        ({"workload": {"image": "x"}, "replicaz": {}}, "replicaz"),
        ({"workload": {"image": "x"}, "alerts": {"rules": [{"name": "Bad Name", "metric": "queueDepth",
                                                             "comparison": "gt", "threshold": 1}]}},
         "alerts.rules.0.name"),
    ],
)
def test_invalid_specs_name_the_field(raw: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_spec(raw)
    locs = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert any(loc.startswith(field) for loc in locs), locs


def test_admin_port_defaults_apart_from_the_http_port() -> None:
    w = parse_spec({"workload": {"image": "x"}}).workload
    assert (w.port, w.admin_port) == (8080, 8081)
    w = parse_spec({"workload": {"image": "x", "port": 9000, "adminPort": 9001}}).workload
    assert (w.port, w.admin_port) == (9000, 9001)
    assert w.model_dump(by_alias=True)["adminPort"] == 9001


@pytest.mark.parametrize(
    ("workload", "needle"),
    [
        ({"adminPort": 80}, "greater than or equal to 1024"),
        ({"adminPort": 65536}, "less than or equal to 65535"),
        ({"adminPort": 8080}, "workload.adminPort must differ from workload.port (8080)"),
        ({"port": 9000, "adminPort": 9000}, "workload.adminPort must differ from workload.port (9000)"),
        ({"port": 8081}, "workload.adminPort must differ from workload.port (8081)"),
    ],
)
def test_bad_admin_ports_are_refused(workload: dict, needle: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_spec({"workload": {"image": "x", **workload}})
    assert needle in str(err.value)
    locs = [".".join(str(p) for p in e["loc"]) for e in err.value.errors()]
    assert any(loc.startswith("workload") for loc in locs), locs


def test_the_crd_refuses_an_admin_port_equal_to_the_port() -> None:
    """The same rule at admission (tests/api/test_crd_validation.py submits it to the apiserver)."""
    from gencluster.api.crd import build_crd

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    workload = schema["properties"]["spec"]["properties"]["workload"]
    assert {"rule": "self.adminPort != self.port",
            "message": "workload.adminPort must differ from workload.port"} in workload[
        "x-kubernetes-validations"]
    admin = workload["properties"]["adminPort"]
    assert (admin["default"], admin["minimum"], admin["maximum"]) == (8081, 1024, 65535)
    env_rule = workload["properties"]["env"]["items"]["x-kubernetes-validations"][1]["rule"]
    assert '"GENCLUSTER_ADMIN_PORT"' in env_rule
