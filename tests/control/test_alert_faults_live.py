"""Alerts and custom metrics on the local cluster, with the real operator and workload:

- a fault injected into a real workload pod through its admin fault switch (on for this
  GenerationCluster only, behind the admin token) shows up in `kubectl describe` within 30 s;
- a custom metric (a rate of a series the pods expose) drives a scale-up.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import time
from typing import Any

import aiohttp
import pytest
from fixtures.kube import condition, get_json, wait_for

from gencluster.loadtest import LoadConfig, run_profile
from gencluster.loadtest.cluster_target import resolve

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
WORKLOAD = "app.kubernetes.io/component=workload"
ALERT_BOUND_S = 30.0


def gencl(name: str, **spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workload": {"image": "localhost/gencluster-workload:dev", "imagePullPolicy": "Never",
                     "memoryBudgetMiB": 1024, "shutdownGraceSeconds": 10},
        "replicas": {"min": 1, "max": 1},
        "cache": {"mode": "disabled"},
        "autoscaling": {"intervalSeconds": 2},
    }
    for key, value in spec.items():
        merged = copy.deepcopy(base.get(key, {}))
        merged.update(value)
        base[key] = merged
    return {"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
            "metadata": {"name": name}, "spec": base}


def ready_pods(cluster, ns: str, name: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, "pods", "-n", ns, "-l", f"app.kubernetes.io/instance={name},{WORKLOAD}")
    return [p for p in (out or {}).get("items", []) if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True"
                    for c in (p.get("status") or {}).get("conditions") or [])]


def load(cluster, ns: str, name: str, rate: float, seconds: float) -> LoadConfig:  # type: ignore[no-untyped-def]
    target = resolve(name, ns, False, cluster.core_v1(), cluster.custom_objects())
    return LoadConfig(target=target, profile="load", rate=rate, duration_s=seconds,
                      window_s=2.0, pool=20000, zipf=0.0, resolution=48,
                      concurrency=128, timeout_s=30.0)


def admin_token(cluster, ns: str, name: str) -> str:  # type: ignore[no-untyped-def]
    secret = get_json(cluster, "secret", f"{name}-admin", "-n", ns)
    return base64.b64decode(secret["data"]["token"]).decode().strip()


def test_a_fault_injected_into_a_pod_is_alerted_in_describe_within_30s(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    name = "faulty"
    cluster.apply(gencl(name, workload={"env": [{"name": "GENCLUSTER_FAULT_INJECTION",
                                                 "value": "on"}]}), namespace)
    wait_for("a ready workload pod", lambda: len(ready_pods(cluster, namespace, name)) >= 1,
             timeout=300, interval=2)
    pod = ready_pods(cluster, namespace, name)[0]
    # The admin API is on its own port (the container port named "admin", spec.workload.adminPort).
    admin = next(p["containerPort"] for p in pod["spec"]["containers"][0]["ports"] if p["name"] == "admin")
    url = f"http://{pod['status']['podIP']}:{admin}/admin/faults"
    token = admin_token(cluster, namespace, name)

    def described() -> str:
        return str(cluster.kubectl("describe", "gencl", name, "-n", namespace).stdout)

    async def scenario() -> tuple[float | None, str, int]:
        runner = asyncio.create_task(run_profile(load(cluster, namespace, name, 6, 75)))
        async with aiohttp.ClientSession() as s:
            async with s.put(url, json={"errorPercent": 40}) as r:  # no token: refused
                refused = r.status
            await asyncio.sleep(30)  # the detectors learn the healthy error share
            assert "anomaly-error-rate" not in await asyncio.to_thread(described)
            async with s.put(url, json={"errorPercent": 40},
                             headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, await r.text()
            t0 = time.monotonic()
            seen: float | None = None
            text = ""
            while time.monotonic() - t0 < 60:
                text = await asyncio.to_thread(described)
                if "anomaly-error-rate" in text:
                    seen = time.monotonic() - t0
                    break
                await asyncio.sleep(1)
            async with s.put(url, json={"errorPercent": 0},
                             headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
        await runner
        return seen, text, refused

    seen, text, refused = asyncio.run(scenario())
    assert refused == 401
    assert seen is not None and seen <= ALERT_BOUND_S, (seen, text)
    assert "AlertFiring" in text and "5xx share" in text, text



def test_a_custom_metric_drives_a_scale_up(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    name = "custom"
    metric = 'gencluster_requests_total{code="200"}'
    cluster.apply(gencl(name, replicas={"min": 1, "max": 3}, autoscaling={
        "intervalSeconds": 2,
        # the built-in targets out of the way: only the custom one can ask for pods
        "targets": {"latencyP95Ms": 600000, "queueDepthPerReplica": 100000,
                    "gpuMemoryPercent": 100,
                    "custom": [{"metric": metric, "aggregation": "avg", "target": "1500m"}]},
        "scaleDown": {"stabilizationSeconds": 600}}), namespace)
    wait_for("a ready workload pod", lambda: len(ready_pods(cluster, namespace, name)) >= 1,
             timeout=300, interval=2)

    def obj() -> dict[str, Any]:
        return get_json(cluster, "gencl", name, "-n", namespace) or {}

    def status() -> dict[str, Any]:
        return obj().get("status") or {}

    wait_for("CustomMetricsAvailable True",
             lambda: (condition(obj(), "CustomMetricsAvailable") or {}).get("status") == "True",
             timeout=60, interval=2)
    report = asyncio.run(run_profile(load(cluster, namespace, name, 6, 30)))
    assert report.overall["ok"] > 0
    st = status()
    assert st.get("lastScale", {}).get("to", 1) > 1, st
    assert f"avg({metric})" in st["lastScale"]["reason"], st["lastScale"]
    events = get_json(cluster, "events", "-n", namespace, "--field-selector",
                      f"involvedObject.kind=GenerationCluster,involvedObject.name={name}")
    ups = [e for e in events["items"] if e["reason"] == "ScaledUp"]
    assert ups and "gencluster_requests_total" in ups[0]["message"], events
