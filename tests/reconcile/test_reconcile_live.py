"""End to end on the local cluster: the chart, the operator, and a GenerationCluster's life."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fixtures.kube import condition, get_json, wait_for

OPERATOR_NS = "gencluster-system"

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
ROOT = Path(__file__).resolve().parents[2]
CHILD_KINDS = "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets,networkpolicies"


def _gencl(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"workload": {"image": "localhost/gencluster-workload:dev",
                                         "imagePullPolicy": "Never", "memoryBudgetMiB": 1024},
                            "replicas": {"min": 1, "max": 3}}
    for k, v in spec.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) else v
    return {"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
            "metadata": {"name": name}, "spec": base}


def _children(cluster, ns: str, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, CHILD_KINDS, "-n", ns, "-l", f"app.kubernetes.io/instance={name}")
    return out["items"] if out else []


def _ready(cluster, ns: str, name: str):  # type: ignore[no-untyped-def]
    obj = get_json(cluster, "gencl", name, "-n", ns)
    c = condition(obj, "Ready")
    return obj if c and c["status"] == "True" else None


def _events(cluster, ns: str, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, "events", "-n", ns, "--field-selector",
                   f"involvedObject.kind=GenerationCluster,involvedObject.name={name}")
    return out["items"] if out else []


def test_minimal_example_becomes_ready_with_owned_children(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.kubectl("apply", "-n", namespace, "-f", str(ROOT / "examples" / "minimal.yaml"))
    obj = wait_for("minimal Ready=True", lambda: _ready(cluster, namespace, "minimal"), timeout=240)
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["readyReplicas"] >= 1
    assert obj["status"]["selector"] == "app.kubernetes.io/instance=minimal,app.kubernetes.io/component=workload"
    uid = obj["metadata"]["uid"]
    kinds = {}
    for child in _children(cluster, namespace, "minimal"):
        refs = child["metadata"].get("ownerReferences") or []
        assert any(r["uid"] == uid and r.get("controller") for r in refs), child["metadata"]["name"]
        kinds[child["kind"]] = kinds.get(child["kind"], 0) + 1
    assert kinds["Deployment"] == 1 and kinds["StatefulSet"] == 1 and kinds["PodDisruptionBudget"] == 1
    assert kinds["NetworkPolicy"] >= 1 and kinds["Secret"] >= 2 and kinds["Service"] >= 2
    assert condition(obj, "CacheReady")["status"] == "True"

    table = cluster.kubectl("get", "gencl", "minimal", "-n", namespace).stdout.splitlines()
    header, row = table[0].split(), table[1].split()
    assert header[:4] == ["NAME", "READY", "REPLICAS", "DESIRED"] and row[1] == "True", table

    described = cluster.kubectl("describe", "gencl", "minimal", "-n", namespace).stdout
    assert "Conditions:" in described and "Events:" in described
    reasons = {e["reason"] for e in _events(cluster, namespace, "minimal")}
    assert {"Applied", "Ready"} <= reasons, reasons

    # The workload pods meet Pod Security "restricted" (the test namespace enforces it, see below).
    pods = get_json(cluster, "pods", "-n", namespace, "-l",
                    "app.kubernetes.io/instance=minimal,app.kubernetes.io/component=workload")["items"]
    assert pods and all(p["spec"]["securityContext"]["runAsNonRoot"] for p in pods)
    gpu_env = cluster.kubectl("exec", "-n", namespace, pods[0]["metadata"]["name"], "--",
                              "printenv", "NVIDIA_VISIBLE_DEVICES", check=False).stdout.strip()
    assert gpu_env, "the fake device plugin gives each GPU pod its device env"


def test_restricted_pod_security_is_enforced_and_met(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted",
                    "--overwrite")
    cluster.apply(_gencl("psa", workload={"gpusPerReplica": 0}), namespace=namespace)
    wait_for("psa Ready=True", lambda: _ready(cluster, namespace, "psa"), timeout=240)
    warnings = [e for e in _events(cluster, namespace, "psa") if e["type"] == "Warning"]
    assert not warnings, warnings


def test_spec_change_rolls_out(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.apply(_gencl("roll"), namespace=namespace)
    first = wait_for("roll Ready", lambda: _ready(cluster, namespace, "roll"), timeout=240)
    patch = {"spec": {"workload": {"env": [{"name": "ROLLOUT_MARK", "value": "2"}]}}}
    cluster.kubectl("patch", "gencl", "roll", "-n", namespace, "--type=merge", "-p", json.dumps(patch))

    def rolled() -> Any:
        obj = _ready(cluster, namespace, "roll")
        if not obj or obj["status"]["observedGeneration"] != first["metadata"]["generation"] + 1:
            return None
        prog = condition(obj, "Progressing")
        return obj if prog and prog["status"] == "False" else None

    wait_for("rollout of the new env", rolled, timeout=240)
    pods = get_json(cluster, "pods", "-n", namespace, "-l",
                    "app.kubernetes.io/instance=roll,app.kubernetes.io/component=workload")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert live and all({"name": "ROLLOUT_MARK", "value": "2"} in p["spec"]["containers"][0]["env"]
                        for p in live)


def test_kubectl_scale_with_autoscaling_off(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.apply(_gencl("scaled", autoscaling={"enabled": False}, workload={"gpusPerReplica": 0},
                         cache={"mode": "disabled"}), namespace=namespace)
    wait_for("scaled Ready", lambda: _ready(cluster, namespace, "scaled"), timeout=240)
    cluster.kubectl("scale", "gencl", "scaled", "-n", namespace, "--replicas=2")

    def two_ready() -> Any:
        obj = _ready(cluster, namespace, "scaled")
        return obj if obj and obj["status"].get("readyReplicas") == 2 else None

    wait_for("2 ready replicas", two_ready, timeout=240)
    dep = get_json(cluster, "deployment", "scaled-workload", "-n", namespace)
    assert dep["spec"]["replicas"] == 2
    scale = json.loads(cluster.kubectl("get", "--raw",
                                       f"/apis/orfeas.ai/v1alpha1/namespaces/{namespace}/generationclusters/scaled/scale").stdout)
    assert scale["spec"]["replicas"] == 2 and scale["status"]["replicas"] == 2


def test_disabling_the_cache_removes_redis_children(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.apply(_gencl("nocache", workload={"gpusPerReplica": 0}), namespace=namespace)
    wait_for("nocache Ready", lambda: _ready(cluster, namespace, "nocache"), timeout=240)
    assert any(c["kind"] == "StatefulSet" for c in _children(cluster, namespace, "nocache"))
    cluster.kubectl("patch", "gencl", "nocache", "-n", namespace, "--type=merge",
                    "-p", json.dumps({"spec": {"cache": {"mode": "disabled"}}}))
    wait_for("redis children removed", lambda: not any(
        c["metadata"]["name"].startswith("nocache-redis") for c in _children(cluster, namespace, "nocache")),
        timeout=120)
    reasons = {e["reason"] for e in _events(cluster, namespace, "nocache")}
    assert "Removed" in reasons


def test_unsatisfiable_spec_degrades_without_crashing_the_operator(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    too_many = cluster.gpus() + 1
    cluster.apply(_gencl("greedy", workload={"gpusPerReplica": too_many}, cache={"mode": "disabled"}),
                  namespace=namespace)

    def degraded() -> Any:
        c = condition(get_json(cluster, "gencl", "greedy", "-n", namespace), "Degraded")
        return c if c and c["status"] == "True" and c["reason"] == "Unschedulable" else None

    c = wait_for("Degraded=Unschedulable", degraded, timeout=120)
    assert "nvidia.com/gpu" in c["message"] and "gpusPerReplica" in c["message"]
    warnings = [e for e in _events(cluster, namespace, "greedy") if e["type"] == "Warning"]
    assert any(e["reason"] == "Unschedulable" for e in warnings), warnings
    # The operator keeps serving other clusters, and did not restart.
    cluster.apply(_gencl("fine", workload={"gpusPerReplica": 0}, cache={"mode": "disabled"}), namespace=namespace)
    wait_for("fine Ready", lambda: _ready(cluster, namespace, "fine"), timeout=240)
    op = get_json(cluster, "pods", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/name=gencluster-operator")["items"]
    assert all(cs["restartCount"] == 0 for p in op for cs in p["status"]["containerStatuses"])


def test_deleting_the_cluster_removes_every_child(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.apply(_gencl("gone", workload={"gpusPerReplica": 0}), namespace=namespace)
    wait_for("gone Ready", lambda: _ready(cluster, namespace, "gone"), timeout=240)
    assert _children(cluster, namespace, "gone")
    cluster.kubectl("delete", "gencl", "gone", "-n", namespace, "--wait=true", timeout=120)
    wait_for("no children left", lambda: not _children(cluster, namespace, "gone"), timeout=120)


def test_killing_the_operator_mid_reconcile_leaves_no_duplicates(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.apply(_gencl("chaos", workload={"gpusPerReplica": 0}), namespace=namespace)
    # Kill the operator while it is creating the children.
    wait_for("first child", lambda: _children(cluster, namespace, "chaos"), timeout=60, interval=0.2)
    admin_before = get_json(cluster, "secret", "chaos-admin", "-n", namespace)
    cluster.kubectl("delete", "pod", "-n", OPERATOR_NS, "-l", "app.kubernetes.io/name=gencluster-operator",
                    "--grace-period=0", "--force", "--wait=false", check=False)
    obj = wait_for("chaos Ready after the restart", lambda: _ready(cluster, namespace, "chaos"), timeout=300)
    children = _children(cluster, namespace, "chaos")
    keys = [(c["kind"], c["metadata"]["name"]) for c in children]
    assert len(keys) == len(set(keys))
    by_kind: dict[str, int] = {}
    for kind, _ in keys:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    assert by_kind["Deployment"] == 1 and by_kind["StatefulSet"] == 1
    replicasets = get_json(cluster, "replicasets", "-n", namespace, "-l", "app.kubernetes.io/instance=chaos")["items"]
    assert len([r for r in replicasets if r["spec"]["replicas"]]) == 1
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    # The generated credentials were not regenerated by the second operator.
    admin_after = get_json(cluster, "secret", "chaos-admin", "-n", namespace)
    assert admin_before is not None, "the admin Secret is applied first"
    assert admin_after["metadata"]["uid"] == admin_before["metadata"]["uid"]
    assert admin_after["data"] == admin_before["data"]
