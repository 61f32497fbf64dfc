"""The CRD's schema and CEL rules, against the real kube-apiserver of the local cluster.

Every invalid GenerationCluster must be refused with a message that names the offending field,
and both examples must be accepted.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("crd")]
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BASE: dict[str, Any] = {"workload": {"image": "localhost/gencluster-workload:dev"}}


def _obj(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
            "metadata": {"name": name}, "spec": spec}


def _with(path: str, value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    node = spec
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value
    return spec


def _create(cluster, namespace: str, obj: dict[str, Any]):  # type: ignore[no-untyped-def]
    # kubectl's default server-side field validation is Strict, so unknown fields are errors too.
    return cluster.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)


RULE = {"name": "r1", "metric": "queueDepth", "comparison": "gt", "threshold": 5}
INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("no-workload", {"replicas": {"min": 1}}, "spec.workload: Required value"),
    ("empty-image", _with("workload.image", ""), "spec.workload.image"),
    ("low-port", _with("workload.port", 80), "spec.workload.port"),
    ("low-admin-port", _with("workload.adminPort", 80), "spec.workload.adminPort"),
    ("high-admin-port", _with("workload.adminPort", 65536), "spec.workload.adminPort"),
    ("admin-port-is-default-port", _with("workload.adminPort", 8080),
     "workload.adminPort must differ from workload.port"),
    ("admin-port-is-port", _with("workload", {"image": "x", "port": 9000, "adminPort": 9000}),
     "workload.adminPort must differ from workload.port"),
    ("too-many-gpus", _with("workload.gpusPerReplica", 17), "spec.workload.gpusPerReplica"),
    ("negative-gpus", _with("workload.gpusPerReplica", -1), "spec.workload.gpusPerReplica"),
    ("pull-policy", _with("workload.imagePullPolicy", "Sometimes"), "spec.workload.imagePullPolicy"),
    ("bad-quantity", _with("workload.resources", {"requests": {"cpu": "lots"}}), "spec.workload.resources.requests.cpu"),
    ("gpu-in-limits", _with("workload.resources", {"limits": {"nvidia.com/gpu": "1"}}), "workload.gpusPerReplica"),
    ("bad-env-name", _with("workload.env", [{"name": "1BAD", "value": "x"}]), "spec.workload.env[0].name"),
    ("min-over-max", {**BASE, "replicas": {"min": 5, "max": 2}}, "replicas.min must be <= replicas.max"),
    ("count-over-max", {**BASE, "replicas": {"min": 1, "max": 4, "count": 9}}, "replicas.count must be within"),
    ("zero-max", {**BASE, "replicas": {"min": 0, "max": 0}}, "spec.replicas.max"),
    ("zero-interval", _with("autoscaling", {"intervalSeconds": 0}), "spec.autoscaling.intervalSeconds"),
    ("tolerance", _with("autoscaling", {"tolerancePercent": 150}), "spec.autoscaling.tolerancePercent"),
    ("gpu-target", _with("autoscaling", {"targets": {"gpuMemoryPercent": 101}}), "spec.autoscaling.targets.gpuMemoryPercent"),
    ("prom-no-url", _with("autoscaling", {"metrics": {"type": "prometheus"}}), "prometheusUrl is required"),
    ("prom-bad-url", _with("autoscaling", {"metrics": {"type": "prometheus", "prometheusUrl": "ftp://x"}}), "spec.autoscaling.metrics.prometheusUrl"),
    ("batch-mode", _with("batching", {"mode": "greedy"}), "spec.batching.mode"),
    ("batch-min-max", _with("batching", {"min": 8, "max": 4, "initial": 4}), "batching.min must be <= batching.max"),
    ("batch-initial", _with("batching", {"initial": 64, "max": 32}), "batching.initial must be within"),
    ("batch-decrease", _with("batching", {"decreasePercent": 95}), "spec.batching.decreasePercent"),
    ("cache-mode", _with("cache", {"mode": "memcached"}), "spec.cache.mode"),
    ("cluster-shards", _with("cache", {"mode": "cluster", "shards": 2}), "cache.shards must be at least 3"),
    ("cache-memory", _with("cache", {"maxMemoryMiB": 1}), "spec.cache.maxMemoryMiB"),
    ("rule-metric", _with("alerts", {"rules": [{**RULE, "metric": "temperature{"}]}), "spec.alerts.rules[0].metric"),
    ("rule-matcher", _with("alerts", {"rules": [{**RULE, "metric": "temp{zone=eu}"}]}), "spec.alerts.rules[0].metric"),
    ("rule-quantile-builtin", _with("alerts", {"rules": [{**RULE, "aggregation": "p95"}]}),
     "quantile aggregations apply to custom (histogram) metrics"),
    ("rule-threshold", _with("alerts", {"rules": [{**RULE, "metric": "temp", "threshold": "1.2.3"}]}),
     "spec.alerts.rules[0].threshold"),
    ("custom-metric", _with("autoscaling", {"targets": {"custom": [{"metric": "9lives", "target": 1}]}}),
     "spec.autoscaling.targets.custom[0].metric"),
    ("custom-aggregation", _with("autoscaling", {"targets": {"custom": [{"metric": "x", "aggregation": "median", "target": 1}]}}),
     "spec.autoscaling.targets.custom[0].aggregation"),
    ("custom-target", _with("autoscaling", {"targets": {"custom": [{"metric": "x", "target": "lots"}]}}),
     "spec.autoscaling.targets.custom[0].target"),
    ("rule-comparison", _with("alerts", {"rules": [{**RULE, "comparison": "eq"}]}), "spec.alerts.rules[0].comparison"),
    ("rule-name", _with("alerts", {"rules": [{**RULE, "name": "Bad_Name"}]}), "spec.alerts.rules[0].name"),
    ("rule-duplicate", _with("alerts", {"rules": [RULE, RULE]}), "spec.alerts.rules[1]"),
    ("unknown-field", {**BASE, "replicaz": {"min": 1}}, "spec.replicaz"),
    # Embedded Kubernetes types, validated as Kubernetes validates them (else the pod is refused
    # after admission, where the user sees it only in status).
    ("toleration-no-key", _with("workload.tolerations", [{"operator": "Equal", "value": "x"}]),
     "a toleration without a key must use operator Exists"),
    ("toleration-exists-value", _with("workload.tolerations", [{"key": "k", "operator": "Exists", "value": "v"}]),
     "operator Exists must not set a value"),
    ("toleration-seconds", _with("workload.tolerations", [{"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}]),
     "tolerationSeconds applies only to effect NoExecute"),
    ("toleration-key", _with("workload.tolerations", [{"key": "bad key!", "operator": "Exists"}]),
     "key must be a qualified name"),
    ("toleration-effect", _with("workload.tolerations", [{"key": "k", "effect": "NoRun"}]),
     "spec.workload.tolerations[0].effect"),
    ("toleration-value", _with("workload.tolerations", [{"key": "k", "value": "has space"}]),
     "spec.workload.tolerations[0].value"),
    ("node-selector-key", _with("workload.nodeSelector", {"bad key": "v"}), "nodeSelector keys must be label keys"),
    ("node-selector-prefix", _with("workload.nodeSelector", {"a/b/c": "v"}), "nodeSelector keys must be label keys"),
    ("node-selector-value", _with("workload.nodeSelector", {"k": "bad value!"}), "spec.workload.nodeSelector.k"),
    ("env-reserved", _with("workload.env", [{"name": "GENCLUSTER_PORT", "value": "1"}]),
     "this variable is set by the operator"),
    ("env-admin-port", _with("workload.env", [{"name": "GENCLUSTER_ADMIN_PORT", "value": "1"}]),
     "this variable is set by the operator"),
    ("env-both", _with("workload.env", [{"name": "X", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
     "set either value or valueFrom, not both"),
    ("env-secret-name", _with("workload.env", [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "Bad_Name", "key": "k"}}}]),
     "spec.workload.env[0].valueFrom.secretKeyRef.name"),
    ("env-secret-key", _with("workload.env", [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "bad key"}}}]),
     "spec.workload.env[0].valueFrom.secretKeyRef.key"),
    ("quantity-format", _with("workload.resources", {"requests": {"cpu": "1.2.3"}}),
     "every value must be a Kubernetes quantity"),
    ("quantity-negative", _with("workload.resources", {"limits": {"memory": "-1Gi"}}), "quantities must not be negative"),
    ("request-over-limit", _with("workload.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}),
     "each request must be less than or equal to its limit"),
    ("resource-name", _with("workload.resources", {"requests": {"gpu": "1"}}), "resource names must be cpu, memory"),
    ("image-space", _with("workload.image", "repo/image with-space"), "spec.workload.image"),
]


@pytest.mark.parametrize(("case", "spec", "expected"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_spec_is_rejected_naming_the_field(cluster, namespace: str, case: str,  # type: ignore[no-untyped-def]
                                                  spec: dict[str, Any], expected: str) -> None:
    proc = _create(cluster, namespace, _obj(case, spec))
    assert proc.returncode != 0, f"{case} was accepted"
    assert expected in proc.stderr, proc.stderr


BAD_NAMES = [
    ("a" * 47, "metadata.name must be at most 46 characters"),
    ("9-lives", "metadata.name must be a DNS-1035 label"),
    ("a.b", "metadata.name must be a DNS-1035 label"),
]


@pytest.mark.parametrize(("name", "expected"), BAD_NAMES, ids=["too-long", "digit-first", "dotted"])
def test_names_children_cannot_carry_are_rejected(cluster, namespace: str, name: str,  # type: ignore[no-untyped-def]
                                                  expected: str) -> None:
    proc = _create(cluster, namespace, _obj(name, BASE))
    assert proc.returncode != 0, f"{name} was accepted"
    assert expected in proc.stderr, proc.stderr
    assert _create(cluster, namespace, _obj("a" * 46, BASE)).returncode == 0


@pytest.mark.parametrize("example", ["minimal.yaml", "full.yaml"])
def test_examples_are_accepted(cluster, namespace: str, example: str) -> None:  # type: ignore[no-untyped-def]
    proc = cluster.kubectl("create", "-n", namespace, "-f", str(EXAMPLES / example), check=False)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(cluster.kubectl("get", "gencl", "-n", namespace, "-o", "json").stdout)["items"][0]
    # The apiserver applied the schema defaults.
    assert got["spec"]["autoscaling"]["scaleDown"]["stabilizationSeconds"] in (120, 300)
    assert got["spec"]["batching"]["increaseStep"] == 1


@pytest.mark.parametrize(("field", "old", "new"), [
    ("cache.mode", "standalone", "cluster"),
    ("cache.replicasPerShard", 1, 2),
    ("cache.persistence", {"enabled": False}, {"enabled": True}),
])
def test_immutable_fields(cluster, namespace: str, field: str, old: Any, new: Any) -> None:  # type: ignore[no-untyped-def]
    name = "immutable"
    assert _create(cluster, namespace, _obj(name, _with(field, old))).returncode == 0
    patch = _with(field, new)
    proc = cluster.kubectl("patch", "gencl", name, "-n", namespace, "--type=merge",
                           "-p", json.dumps({"spec": patch}), check=False)
    assert proc.returncode != 0
    assert "immutable" in proc.stderr or "can only change" in proc.stderr, proc.stderr


def test_scale_subresource_with_bounds(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    spec = {**BASE, "autoscaling": {"enabled": False}, "replicas": {"min": 1, "max": 3}}
    assert _create(cluster, namespace, _obj("scaled", spec)).returncode == 0
    cluster.kubectl("scale", "gencl", "scaled", "-n", namespace, "--replicas=2")
    got = yaml.safe_load(cluster.kubectl("get", "gencl", "scaled", "-n", namespace, "-o", "yaml").stdout)
    assert got["spec"]["replicas"]["count"] == 2
    proc = cluster.kubectl("scale", "gencl", "scaled", "-n", namespace, "--replicas=9", check=False)
    assert proc.returncode != 0 and "replicas.count must be within" in proc.stderr


def test_explain_shows_descriptions(cluster) -> None:  # type: ignore[no-untyped-def]
    out = cluster.kubectl("explain", "gencl.spec.batching.mode").stdout
    assert "adaptive" in out


def test_printer_columns(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    assert _create(cluster, namespace, _obj("cols", BASE)).returncode == 0
    header = cluster.kubectl("get", "gencl", "-n", namespace).stdout.splitlines()[0].split()
    for col in ("READY", "REPLICAS", "BATCH", "P95", "GPU", "ALERTS", "AGE"):
        assert col in header, header
