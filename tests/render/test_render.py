"""Renderers: golden files for the examples, and the rules the children must follow.

Regenerate the golden files after an intended change with `UPDATE_GOLDEN=1 pytest tests/render`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gencluster.api.spec import parse_spec
from gencluster.render.children import (
    Observed,
    OperatorDefaults,
    Secrets,
    desired_batch_size,
    desired_replicas,
    render_children,
)
from gencluster.render.redis import RedisAuth

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
AUTH = RedisAuth(**{f: f"{f}-x" for f in RedisAuth.__dataclass_fields__})
SECRETS = Secrets(admin_token="admin-token-x", redis_auth=AUTH)


def _example(name: str) -> tuple[str, Any]:
    doc = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    return doc["metadata"]["name"], parse_spec(doc["spec"])


def _render(name: str, spec: Any, observed: Observed | None = None) -> list[dict[str, Any]]:
    return render_children(name, "ns", spec, observed or Observed(), SECRETS, OperatorDefaults())


@pytest.mark.parametrize("example", ["minimal", "full"])
def test_golden(example: str) -> None:
    name, spec = _example(example)
    text = yaml.safe_dump_all(_render(name, spec), sort_keys=True)
    path = GOLDEN / f"{example}-children.yaml"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), "run with UPDATE_GOLDEN=1 once"
    assert text == path.read_text()


def _by_kind(objs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objs if o["kind"] == kind]


def test_workload_deployment_rules() -> None:
    name, spec = _example("full")
    dep = next(o for o in _by_kind(_render(name, spec), "Deployment") if o["metadata"]["name"] == "full-workload")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {p for p in ("startupProbe", "readinessProbe", "livenessProbe") if p in c} == {
        "startupProbe", "readinessProbe", "livenessProbe"}
    env = {e["name"]: e for e in c["env"]}
    assert env["GENCLUSTER_BATCH_MAX_SIZE"]["value"] == "4"
    assert env["GENCLUSTER_REDIS_MODE"]["value"] == "cluster"
    assert "valueFrom" in env["GENCLUSTER_REDIS_PASSWORD"]  # never a literal password
    assert env["LOG_LEVEL"]["value"] == "info"
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_cpu_only_workload_has_no_gpu_limit() -> None:
    spec = parse_spec({"workload": {"image": "x", "gpusPerReplica": 0}, "cache": {"mode": "disabled"}})
    objs = _render("c", spec)
    dep = _by_kind(objs, "Deployment")[0]
    assert "nvidia.com/gpu" not in str(dep)
    assert not _by_kind(objs, "StatefulSet")  # no Redis when the cache is disabled
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["GENCLUSTER_DEVICE"] == "cpu" and env["GENCLUSTER_REDIS_MODE"] == "disabled"
    gpu = _by_kind(_render("g", parse_spec({"workload": {"image": "x"}})), "Deployment")[0]
    gpu_env = {e["name"]: e.get("value") for e in gpu["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert gpu_env["GENCLUSTER_DEVICE"] == "auto"


def test_every_child_is_namespaced_and_labelled() -> None:
    name, spec = _example("full")
    for obj in _render(name, spec):
        meta = obj["metadata"]
        assert meta["namespace"] == "ns", obj["kind"]
        assert meta["labels"]["app.kubernetes.io/instance"] == name
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "gencluster-operator"


def test_no_secret_in_configmaps() -> None:
    name, spec = _example("full")
    for cm in _by_kind(_render(name, spec), "ConfigMap"):
        text = str(cm["data"])
        assert "admin-token-x" not in text and "-x" not in text.replace("max", "")


@pytest.mark.parametrize(("raw", "observed", "want"), [
    ({"replicas": {"min": 1, "max": 4}}, None, 1),             # autoscaled, nothing yet: min
    ({"replicas": {"min": 1, "max": 4}}, 3, 3),                # autoscaled: keep the loop's count
    # outside the bounds: the loop brings it back (draining a scale-down), not the reconcile
    ({"replicas": {"min": 2, "max": 4}}, 9, 9),
    ({"replicas": {"min": 2, "max": 4}}, 0, 0),
    ({"replicas": {"min": 2, "max": 4}, "autoscaling": {"mode": "advisory"}}, 9, 9),
    ({"replicas": {"min": 1, "max": 4, "count": 3}, "autoscaling": {"enabled": False}}, 1, 3),  # kubectl scale
    ({"replicas": {"min": 1, "max": 4}, "autoscaling": {"enabled": False}}, 3, 1),
])
def test_desired_replicas(raw: dict[str, Any], observed: int | None, want: int) -> None:
    spec = parse_spec({"workload": {"image": "x"}, **raw})
    assert desired_replicas(spec, Observed(deployment_replicas=observed)) == want


@pytest.mark.parametrize(("batching", "persisted", "want"), [
    ({}, None, 4),
    ({}, '{"maxBatchSize": 9, "maxQueueDelayMs": 10}', 9),
    ({"max": 8}, '{"maxBatchSize": 9, "maxQueueDelayMs": 10}', 8),
    ({"mode": "fixed", "initial": 2}, '{"maxBatchSize": 9, "maxQueueDelayMs": 10}', 2),
    ({}, "not json", 4),
    ({}, '{"maxBatchSize": true}', 4),
])
def test_desired_batch_size(batching: dict[str, Any], persisted: str | None, want: int) -> None:
    spec = parse_spec({"workload": {"image": "x"}, "batching": batching})
    assert desired_batch_size(spec, Observed(persisted_batching=persisted)) == want


def test_render_is_deterministic() -> None:
    name, spec = _example("full")
    assert _render(name, spec) == _render(name, spec)


def test_carried_fields_are_outside_the_content_hash() -> None:
    from gencluster.render.children import carried_fields, without_carried

    name, spec = _example("minimal")
    a = _render(name, spec, Observed(deployment_replicas=2, persisted_batching='{"maxBatchSize": 3, "maxQueueDelayMs": 10}'))
    b = _render(name, spec, Observed(deployment_replicas=3, persisted_batching='{"maxBatchSize": 5, "maxQueueDelayMs": 10}'))
    for x, y in zip(a, b, strict=True):
        assert without_carried(x) == without_carried(y), x["kind"]
    dep_a = next(o for o in a if o["kind"] == "Deployment")
    dep_b = next(o for o in b if o["kind"] == "Deployment")
    assert carried_fields(dep_a) == {"spec.replicas": 2} and carried_fields(dep_b) == {"spec.replicas": 3}
    cm = next(o for o in b if o["metadata"]["name"] == "minimal-runtime")
    assert carried_fields(cm) == {"data.batching.json": '{"maxBatchSize": 5, "maxQueueDelayMs": 10}'}


def _workload_policy(objs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (policy,) = [o for o in _by_kind(objs, "NetworkPolicy") if o["metadata"]["name"] == f"{name}-workload"]
    return policy


@pytest.mark.parametrize("cache", ["disabled", "standalone", "cluster"])
def test_workload_network_policy_admits_the_admin_port_only_from_the_operator(cache: str) -> None:
    spec = parse_spec({"workload": {"image": "x", "port": 9000, "adminPort": 9100},
                       "cache": {"mode": cache}})
    objs = render_children("c", "team-a", spec, Observed(), SECRETS,
                           OperatorDefaults(operator_namespace="ops"))
    policy = _workload_policy(objs, "c")
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    assert policy["metadata"]["namespace"] == "team-a"
    assert policy["metadata"]["labels"]["app.kubernetes.io/component"] == "workload"
    dep = _by_kind(objs, "Deployment")[0]
    # It selects exactly the workload pods (not Redis's), and only ingress is restricted.
    assert policy["spec"]["podSelector"] == {"matchLabels": dep["spec"]["selector"]["matchLabels"]}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    main, admin = policy["spec"]["ingress"]
    # The HTTP port: from anywhere (clients through the Service, Prometheus).
    assert main == {"ports": [{"protocol": "TCP", "port": 9000}]}
    # The admin port: the operator's pod, in the operator's namespace (both selectors in one
    # peer: an AND, so a look-alike elsewhere, or another pod of team-a, gets nothing).
    assert admin == {
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}},
                  "podSelector": {"matchLabels": {"app.kubernetes.io/name": "gencluster-operator"}}}],
        "ports": [{"protocol": "TCP", "port": 9100}],
    }
    # No rule admits the admin port from anyone else.
    for rule in policy["spec"]["ingress"]:
        if any(p["port"] == 9100 for p in rule["ports"]):
            assert rule is admin
    # Applied before the pods exist, so no pod ever runs with its admin port open.
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert kinds.index(("NetworkPolicy", "c-workload")) < kinds.index(("Deployment", "c-workload"))


def test_workload_container_serves_the_admin_port_named_admin() -> None:
    spec = parse_spec({"workload": {"image": "x", "port": 9000, "adminPort": 9100}})
    objs = _render("c", spec)
    dep = _by_kind(objs, "Deployment")[0]
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"},
                          {"name": "admin", "containerPort": 9100, "protocol": "TCP"}]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert (env["GENCLUSTER_PORT"], env["GENCLUSTER_ADMIN_PORT"]) == ("9000", "9100")
    # Probes, the Service and Prometheus stay on the HTTP port: the admin port is not exposed.
    assert {c[p]["httpGet"]["port"] for p in ("startupProbe", "readinessProbe", "livenessProbe")} == {"http"}
    (svc,) = [o for o in _by_kind(objs, "Service") if o["metadata"]["name"] == "c-workload"]
    assert [p["targetPort"] for p in svc["spec"]["ports"]] == ["http"]
    assert dep["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "9000"


def test_default_ports_render_8080_and_8081() -> None:
    name, spec = _example("minimal")
    objs = _render(name, spec)
    (c,) = _by_kind(objs, "Deployment")[0]["spec"]["template"]["spec"]["containers"]
    assert [p["containerPort"] for p in c["ports"]] == [8080, 8081]
    policy = _workload_policy(objs, name)
    assert [r["ports"][0]["port"] for r in policy["spec"]["ingress"]] == [8080, 8081]
    assert policy["spec"]["ingress"][1]["from"][0]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "gencluster-system"}}
