"""The control loop's live behaviour on the local cluster, with the real workload and operator:
advisory mode, pods no node can take, a scale-down under load that fails nothing, and the
Prometheus metrics source against a real Prometheus discovering the pods through the apiserver.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.kube import condition, get_json, wait_for
from fixtures.prometheus import PrometheusServer

from gencluster.loadtest import LoadConfig, run_profile
from gencluster.loadtest.cluster_target import resolve

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
NODE_IP = "10.244.0.1"  # hack/lib.sh: the node's address on the pod bridge
WORKLOAD = "app.kubernetes.io/component=workload"


def gencl(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workload": {"image": "localhost/gencluster-workload:dev", "imagePullPolicy": "Never",
                     "memoryBudgetMiB": 1024, "shutdownGraceSeconds": 20},
        "replicas": {"min": 1, "max": 3},
        "cache": {"mode": "disabled"},
        "autoscaling": {"intervalSeconds": 2},
        "alerts": {"anomalyDetection": False},
    }
    for key, value in spec.items():
        merged = copy.deepcopy(base.get(key, {}))
        for k, v in value.items():
            merged[k] = {**merged.get(k, {}), **v} if isinstance(v, dict) else v
        base[key] = merged
    return {"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
            "metadata": {"name": name}, "spec": base}


def obj(cluster, ns: str, name: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return get_json(cluster, "gencl", name, "-n", ns) or {}


def deployment_replicas(cluster, ns: str, name: str) -> int:  # type: ignore[no-untyped-def]
    d = get_json(cluster, "deployment", f"{name}-workload", "-n", ns) or {}
    return int((d.get("spec") or {}).get("replicas", -1))


def events(cluster, ns: str, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, "events", "-n", ns, "--field-selector",
                   f"involvedObject.kind=GenerationCluster,involvedObject.name={name}")
    return out["items"] if out else []


def pods(cluster, ns: str, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={name},{WORKLOAD}")
    return out["items"] if out else []


def ready_pods(cluster, ns: str, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [p for p in pods(cluster, ns, name) if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (p.get("status") or {}).get("conditions") or [])]


def wait_ready(cluster, ns: str, name: str, n: int, timeout: float = 300) -> None:  # type: ignore[no-untyped-def]
    wait_for(f"{n} ready workload pods of {name}",
             lambda: len(ready_pods(cluster, ns, name)) >= n, timeout=timeout, interval=2)


def load(cluster, ns: str, name: str, rate: float, seconds: float,  # type: ignore[no-untyped-def]
         resolution: int = 64) -> LoadConfig:
    target = resolve(name, ns, False, cluster.core_v1(), cluster.custom_objects())
    return LoadConfig(target=target, profile="load", rate=rate, duration_s=seconds,
                      window_s=2.0, pool=20000, zipf=0.0, resolution=resolution,
                      concurrency=256, timeout_s=60.0)


class Watch:
    """Polls the cluster in a thread while a load runs (kubectl is blocking)."""

    def __init__(self, fn: Any, interval: float = 2.0) -> None:
        self.fn, self.interval, self.seen = fn, interval, []  # type: ignore[var-annotated]
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            self.seen.append(await asyncio.to_thread(self.fn))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval)

    def stop(self) -> None:
        self._stop.set()


# --- advisory --------------------------------------------------------------------------------

def test_advisory_mode_recommends_under_load_and_changes_nothing(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    name = "advise"
    cluster.apply(gencl(name, replicas={"min": 1, "max": 4},
                        autoscaling={"mode": "advisory",
                                     "targets": {"queueDepthPerReplica": 1}}), namespace)
    wait_ready(cluster, namespace, name, 1)
    cm = get_json(cluster, "configmap", f"{name}-runtime", "-n", namespace)
    batching_before = cm["data"]["batching.json"]

    def snapshot() -> tuple[int, dict[str, Any] | None]:
        return (deployment_replicas(cluster, namespace, name),
                (obj(cluster, namespace, name).get("status") or {}).get("recommendation"))

    async def run() -> tuple[Any, Watch]:
        watch = Watch(snapshot)
        task = asyncio.create_task(watch.run())
        loading = asyncio.create_task(run_profile(load(cluster, namespace, name, rate=4,
                                                       seconds=30)))
        await asyncio.sleep(5)
        # The spec now wants at least 3 pods: auto mode would scale at once; advisory says so.
        await asyncio.to_thread(cluster.kubectl, "patch", "gencl", name, "-n", namespace,
                                "--type=merge", "-p", json.dumps({"spec": {"replicas": {"min": 3}}}))
        report = await loading
        watch.stop()
        await task
        return report, watch

    report, watch = asyncio.run(run())
    assert report.overall["ok"] > 0
    # Nothing changed: one replica throughout, the persisted batch size as it was.
    assert {replicas for replicas, _ in watch.seen} == {1}, watch.seen
    cm = get_json(cluster, "configmap", f"{name}-runtime", "-n", namespace)
    assert cm["data"]["batching.json"] == batching_before
    # ... but the loop said what it would do.
    recs = [r for _, r in watch.seen if r]
    assert recs and max(r["replicas"] for r in recs) > 1, watch.seen
    up = next(r for r in recs if r["replicas"] > 1)
    assert up["currentReplicas"] == 1 and up["reason"]
    status = obj(cluster, namespace, name)["status"]
    assert status["desiredReplicas"] == 1 and "lastScale" not in status
    reasons = [e["reason"] for e in events(cluster, namespace, name)]
    assert "WouldScaleUp" in reasons, reasons
    assert "ScaledUp" not in reasons and "BatchSizeChanged" not in reasons, reasons
    would = next(e for e in events(cluster, namespace, name) if e["reason"] == "WouldScaleUp")
    assert would["type"] == "Normal" and "advisory: would scale 1 ->" in would["message"]


# --- unschedulable ---------------------------------------------------------------------------

def free_gpus(cluster) -> int | None:  # type: ignore[no-untyped-def]
    """The node's GPUs no pod holds; None while a pod holding some may still free them: one
    terminating, or any pod in a namespace being deleted (an earlier test's; its pods get their
    deletionTimestamp only when the namespace controller reaches them). A blocker sized before
    they free would leave a GPU for the pod that must stay unschedulable."""
    node = get_json(cluster, "node", cluster.node_name)
    total = int(node["status"]["allocatable"]["nvidia.com/gpu"])
    leaving = {ns["metadata"]["name"] for ns in get_json(cluster, "namespaces")["items"]
               if (ns.get("status") or {}).get("phase") == "Terminating"}
    used = 0
    for p in get_json(cluster, "pods", "-A", "--field-selector",
                      f"spec.nodeName={cluster.node_name}")["items"]:
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        held = sum(int(((c.get("resources") or {}).get("limits") or {}).get("nvidia.com/gpu", 0))
                   for c in p["spec"]["containers"])
        if held and (p["metadata"].get("deletionTimestamp")
                     or p["metadata"]["namespace"] in leaving):
            return None
        used += held
    return total - used


def gpu_blocker(gpus: int, index: int) -> dict[str, Any]:
    """A pause pod holding some of the node's remaining GPUs (Pod Security restricted)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"gpu-blocker-{index}", "labels": {"test": "gpu-blocker"}}, "spec": {
        "securityContext": {"runAsNonRoot": True, "runAsUser": 65535,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 0,
        "containers": [{"name": "pause", "image": "localhost/gencluster-pause:1.0",
                        "imagePullPolicy": "Never",
                        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
                        "securityContext": {"allowPrivilegeEscalation": False,
                                            "capabilities": {"drop": ["ALL"]}}}]}}


def block_every_free_gpu(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """Blockers until no GPU is free, counted again after each one runs: a GPU that frees
    while the first is sized gets a blocker of its own instead of the pod under test."""
    def settled() -> tuple[int] | None:  # truthy even when 0 GPUs are free
        n = free_gpus(cluster)
        return None if n is None else (n,)

    for index in range(8):
        (spare,) = wait_for("no pod holding GPUs leaving", settled, timeout=180)
        if spare == 0:
            return
        cluster.apply(gpu_blocker(spare, index), namespace)
        blocker = f"gpu-blocker-{index}"
        wait_for("the blocker running", lambda name=blocker: (get_json(
            cluster, "pod", name, "-n", namespace) or {}).get("status", {}).get(
                "phase") == "Running", timeout=60)
    raise AssertionError("GPUs kept freeing up: 8 blockers did not hold them all")


def test_unschedulable_pods_hold_the_scale_up_until_gpus_free_up(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    name = "nogpu"
    cluster.apply(gencl(name, replicas={"min": 1, "max": 6}), namespace)
    wait_ready(cluster, namespace, name, 1)
    block_every_free_gpu(cluster, namespace)

    def snapshot() -> tuple[int, int]:
        pending = [p for p in pods(cluster, namespace, name)
                   if any(c["type"] == "PodScheduled" and c.get("reason") == "Unschedulable"
                          for c in (p.get("status") or {}).get("conditions") or [])]
        return deployment_replicas(cluster, namespace, name), len(pending)

    def want(n: int) -> None:
        cluster.kubectl("patch", "gencl", name, "-n", namespace, "--type=merge", "-p",
                        json.dumps({"spec": {"replicas": {"min": n}}}))

    async def run() -> tuple[Any, Watch]:
        watch = Watch(snapshot)
        task = asyncio.create_task(watch.run())
        await asyncio.to_thread(want, 2)  # a second pod: no GPU left for it
        await asyncio.sleep(12)
        await asyncio.to_thread(want, 4)  # more wanted while it is unschedulable: held
        await asyncio.sleep(20)
        watch.stop()
        await task
        return None, watch

    _, watch = asyncio.run(run())
    held_from = next((i for i, (_, pending) in enumerate(watch.seen) if pending), None)
    assert held_from is not None, f"no pod became unschedulable: {watch.seen}"
    # From the first unschedulable pod on, the replica count never grew.
    counts = [replicas for replicas, _ in watch.seen[held_from:]]
    assert max(counts) == counts[0] == 2, watch.seen
    evs = events(cluster, namespace, name)
    held = [e for e in evs if e["reason"] == "ScaleUpHeld"]
    assert held and held[0]["type"] == "Warning", [e["reason"] for e in evs]
    assert "Insufficient nvidia.com/gpu" in held[0]["message"], held[0]["message"]
    status = obj(cluster, namespace, name)
    deg, prog = condition(status, "Degraded"), condition(status, "Progressing")
    assert deg and deg["status"] == "True" and deg["reason"] == "Unschedulable", deg
    assert prog and prog["reason"] == "PodsUnschedulable", prog

    # GPUs free up: the pending pod schedules, the loop says so and scales up to what is wanted.
    cluster.kubectl("delete", "pod", "-l", "test=gpu-blocker", "-n", namespace, "--wait=true")
    wait_for("scale-up resumed", lambda: deployment_replicas(cluster, namespace, name) == 4,
             timeout=120, interval=2)
    reasons = [e["reason"] for e in events(cluster, namespace, name)]
    assert "ScaleUpResumed" in reasons, reasons


# --- drop-free scale-down --------------------------------------------------------------------

def test_scale_down_under_load_fails_no_request(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    name = "drain"
    fast_down = {"stabilizationSeconds": 0, "maxPods": 1, "maxPercent": 1, "periodSeconds": 8}
    cluster.apply(gencl(name, replicas={"min": 3, "max": 3},
                        autoscaling={"scaleDown": fast_down}), namespace)
    wait_ready(cluster, namespace, name, 3)

    cost = "controller.kubernetes.io/pod-deletion-cost"

    def snapshot() -> tuple[int, set[str], set[str]]:
        live = pods(cluster, namespace, name)
        return (deployment_replicas(cluster, namespace, name),
                {p["metadata"]["name"] for p in live},
                {p["metadata"]["name"] for p in live
                 if (p["metadata"].get("annotations") or {}).get(cost) == "-1000"})

    async def run() -> tuple[Any, Watch]:
        watch = Watch(snapshot, interval=1.0)
        task = asyncio.create_task(watch.run())
        loading = asyncio.create_task(run_profile(load(cluster, namespace, name, rate=4,
                                                       seconds=75)))
        await asyncio.sleep(8)
        # The spec now allows one pod: the loop scales 3 -> 1 under load, through its drain.
        await asyncio.to_thread(cluster.kubectl, "patch", "gencl", name, "-n", namespace,
                                "--type=merge", "-p",
                                json.dumps({"spec": {"replicas": {"min": 1, "max": 1}}}))
        report = await loading
        watch.stop()
        await task
        return report, watch

    report, watch = asyncio.run(run())
    counts = [replicas for replicas, _, _ in watch.seen]
    print(f"\ndrained scale-down 3 -> {min(counts)} under {report.overall['offered_rate']} req/s: "
          f"{report.overall['arrivals']} requests, {report.overall['errors']} failed "
          f"{report.overall['errors_by_code']}")
    assert counts[0] == 3 and counts[-1] == 1, watch.seen  # it did scale down under load
    overall = report.overall
    assert overall["arrivals"] > 250 and overall["ok"] == overall["arrivals"], (
        f"failed requests during the scale-down: {overall['errors_by_code']}")
    assert overall["errors"] == 0, overall["errors_by_code"]
    evs = events(cluster, namespace, name)
    assert any(e["reason"] == "ScaledDown" for e in evs), [e["reason"] for e in evs]
    # The pods that went were the ones the loop chose and drained: they carried its deletion
    # cost before they disappeared.
    gone = {n for _, live, _ in watch.seen for n in live} - {
        p["metadata"]["name"] for p in pods(cluster, namespace, name)}
    marked = {n for _, _, m in watch.seen for n in m}
    assert gone and gone <= marked, (gone, marked)


# --- Prometheus ------------------------------------------------------------------------------

@pytest.fixture
def prometheus(cluster, namespace: str, tmp_path: Path) -> Iterator[PrometheusServer]:  # type: ignore[no-untyped-def]
    """The real Prometheus on the node's address, discovering this namespace's pods through the
    apiserver (kubernetes_sd, role pod) and scraping their IPs, relabelled as usual."""
    config = {
        "global": {"scrape_interval": "2s", "scrape_timeout": "1500ms"},
        "scrape_configs": [{
            "job_name": "gencluster-workload",
            "kubernetes_sd_configs": [{"role": "pod", "kubeconfig_file": str(cluster.kubeconfig),
                                       "namespaces": {"names": [namespace]}}],
            "relabel_configs": [
                {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                 "regex": "true", "action": "keep"},
                {"source_labels": ["__meta_kubernetes_pod_label_gencluster_test_unscraped"],
                 "regex": "true", "action": "drop"},
                {"source_labels": ["__meta_kubernetes_pod_ip",
                                   "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                 "regex": "(.+);(\\d+)", "replacement": "$1:$2", "target_label": "__address__"},
                {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
            ]}],
    }
    server = PrometheusServer(tmp_path, config, host=NODE_IP).start()
    try:
        yield server
    finally:
        server.stop()


def test_prometheus_source_end_to_end_with_a_pod_prometheus_stops_seeing(  # type: ignore[no-untyped-def]
        cluster, namespace: str, prometheus: PrometheusServer) -> None:
    name = "prom"
    cluster.apply(gencl(name, replicas={"min": 2, "max": 2}, autoscaling={
        "metrics": {"type": "prometheus", "prometheusUrl": prometheus.url}}), namespace)
    wait_ready(cluster, namespace, name, 2)

    def metrics() -> dict[str, Any]:
        return (obj(cluster, namespace, name).get("status") or {}).get("metrics") or {}

    def reporting(n: int):  # type: ignore[no-untyped-def]
        def check():  # type: ignore[no-untyped-def]
            cond = condition(obj(cluster, namespace, name), "MetricsAvailable") or {}
            return metrics().get("podsReporting") == n and cond.get("message", "").startswith(
                f"{n}/2 pods reporting") and cond
        return check

    wait_for("both pods reported through Prometheus", reporting(2), timeout=120, interval=2)
    assert len([t for t in prometheus.active_targets() if t["health"] == "up"]) == 2
    # Load through the Service: the rate the loop reads from Prometheus' samples is the load's.
    report = asyncio.run(run_profile(load(cluster, namespace, name, rate=4, seconds=30)))
    assert report.overall["ok"] > 60
    rps = metrics().get("requestsPerSecond")
    assert rps is not None and 2 <= rps <= 6, metrics()

    # Prometheus stops seeing one pod (its target is dropped); the pod itself still runs.
    victim = sorted(p["metadata"]["name"] for p in ready_pods(cluster, namespace, name))[0]
    cluster.kubectl("label", "pod", victim, "-n", namespace, "gencluster.test/unscraped=true")
    wait_for("Prometheus dropped the target", lambda: all(
        t["labels"].get("pod") != victim for t in prometheus.active_targets()), timeout=60)
    cond = wait_for("the loop sees the pod as stale", reporting(1), timeout=90, interval=2)
    assert cond["status"] == "True", cond
    assert len(ready_pods(cluster, namespace, name)) == 2  # still Ready: only Prometheus lost it
    # Seen again: fresh again.
    cluster.kubectl("label", "pod", victim, "-n", namespace, "gencluster.test/unscraped-")
    wait_for("the pod reports again", reporting(2), timeout=90, interval=2)


def test_baseline_plain_scale_down_under_load_for_the_figures(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    """The same load and the same 3 -> 1, done the plain way (autoscaling off, `replicas.count`
    lowered: the ReplicaSet deletes pods of its choice, SIGTERM is their only drain). Its failed
    requests are the baseline docs/benchmarks.md puts next to the drained scale-down's 0."""
    name = "plain"
    cluster.apply(gencl(name, replicas={"min": 1, "max": 3, "count": 3},
                        autoscaling={"enabled": False}), namespace)
    wait_ready(cluster, namespace, name, 3)

    async def run() -> Any:
        loading = asyncio.create_task(run_profile(load(cluster, namespace, name, rate=4,
                                                       seconds=45)))
        await asyncio.sleep(8)
        await asyncio.to_thread(cluster.kubectl, "patch", "gencl", name, "-n", namespace,
                                "--type=merge", "-p", json.dumps({"spec": {"replicas": {"count": 1}}}))
        return await loading

    report = asyncio.run(run())
    assert deployment_replicas(cluster, namespace, name) == 1
    overall = report.overall
    print(f"\nplain scale-down 3 -> 1 under {overall['offered_rate']} req/s: "
          f"{overall['arrivals']} requests, {overall['errors']} failed {overall['errors_by_code']}")
    assert overall["arrivals"] > 150
