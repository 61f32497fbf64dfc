"""Workload pods that hang or are OOM-killed under load, on the local cluster (real operator,
kubelet, containerd, workload processes): each is replaced, and every request gets an answer.

- hung: the admin fault switch blocks one pod's device thread; the watchdog
  (GENCLUSTER_HANG_AFTER_SECONDS, 5 s here) answers its waiting requests 503, its readiness and
  liveness fail, and the kubelet restarts the container;
- OOM-killed: the other pod's fault switch makes its server hold more memory than the
  container's limit (a leak); the kernel's OOM killer ends it and the kubelet restarts it.
Throughout, an open-loop load runs through the Service. Nothing is silently lost: every request
ends with a response or a client-side error (none left unfinished, none timing out), and the
failures are only the hung pod's fast 503s and the OOM-killed process's broken connections, and
each restarted container's last state says why (what `kubectl describe pod` shows).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from control.test_alert_faults_live import admin_token, gencl, load, ready_pods
from fixtures.kube import get_json, wait_for

from gencluster.loadtest import run_profile
from gencluster.loadtest.images import make_pool

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
HANG_AFTER_S = 5
MEMORY_LIMIT = "3Gi"
LEAK_MIB = 4096  # more than the limit: the kernel's OOM killer ends the process


def restarts(cluster, ns: str, pod: str) -> int:  # type: ignore[no-untyped-def]
    obj = get_json(cluster, "pod", pod, "-n", ns) or {}
    return sum(c.get("restartCount", 0) for c in (obj.get("status") or {}).get("containerStatuses") or [])


def last_termination(cluster, ns: str, pod: str) -> tuple[int, str] | None:  # type: ignore[no-untyped-def]
    """(exit code, reason) of the container's previous run."""
    obj = get_json(cluster, "pod", pod, "-n", ns) or {}
    for c in (obj.get("status") or {}).get("containerStatuses") or []:
        terminated = (c.get("lastState") or {}).get("terminated")
        if terminated:
            return int(terminated["exitCode"]), str(terminated.get("reason", ""))
    return None


def test_hung_and_oom_killed_pods_are_replaced_and_no_request_is_lost(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    name = "podfaults"
    cluster.apply(gencl(name, replicas={"min": 2, "max": 2}, autoscaling={"enabled": False},
                        workload={"env": [{"name": "GENCLUSTER_FAULT_INJECTION", "value": "on"},
                                          {"name": "GENCLUSTER_HANG_AFTER_SECONDS",
                                           "value": str(HANG_AFTER_S)}],
                                  "resources": {"limits": {"memory": MEMORY_LIMIT}}}), namespace)
    wait_for("two ready workload pods", lambda: len(ready_pods(cluster, namespace, name)) == 2,
             timeout=300, interval=2)
    hung, leaky = sorted(p["metadata"]["name"] for p in ready_pods(cluster, namespace, name))
    pods = {p["metadata"]["name"]: p for p in ready_pods(cluster, namespace, name)}
    admin = next(p["containerPort"] for p in pods[hung]["spec"]["containers"][0]["ports"]
                 if p["name"] == "admin")

    http = next(p["containerPort"] for p in pods[hung]["spec"]["containers"][0]["ports"]
                if p["name"] == "http")

    def faults_url(pod: str) -> str:
        return f"http://{pods[pod]['status']['podIP']}:{admin}/admin/faults"

    async def generate_on(pod: str, seed: int) -> tuple[int, float]:
        """One request straight to `pod` (the Service may keep every connection on the other
        pod): (status, seconds until the answer)."""
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as s, s.post(
                f"http://{pods[pod]['status']['podIP']}:{http}/v1/generate?resolution=48",
                data=make_pool(1, seed=seed)[0], headers={"Content-Type": "image/png"},
                timeout=aiohttp.ClientTimeout(total=60)) as r:
            await r.read()
            return r.status, time.monotonic() - t0

    token = admin_token(cluster, namespace, name)
    before = {p: restarts(cluster, namespace, p) for p in (hung, leaky)}
    timeline: dict[str, float] = {}

    async def inject(pod: str, fault: dict[str, Any]) -> None:
        try:
            async with aiohttp.ClientSession() as s, s.put(
                    faults_url(pod), json=fault, headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200, await r.text()
        except aiohttp.ClientConnectionError:
            assert "allocateMiB" in fault  # leaky while answering: the fault took effect

    async def scenario() -> Any:
        runner = asyncio.create_task(run_profile(load(cluster, namespace, name, 3, 150)))
        await asyncio.sleep(15)
        await inject(hung, {"stuck": True})
        t0 = time.monotonic()
        direct = await asyncio.gather(*(generate_on(hung, seed) for seed in range(3)))
        timeline["hung_direct_answer_s"] = max(t for _, t in direct)
        assert [code for code, _ in direct] == [503] * 3, direct  # failed fast, not left waiting
        assert timeline["hung_direct_answer_s"] < HANG_AFTER_S + 5, direct
        await asyncio.to_thread(wait_for, f"{hung} restarted",
                                lambda: restarts(cluster, namespace, hung) > before[hung],
                                timeout=120, interval=1)
        timeline["hung_to_restarted_s"] = time.monotonic() - t0
        await asyncio.to_thread(wait_for, "both pods ready again",
                                lambda: len(ready_pods(cluster, namespace, name)) == 2,
                                timeout=180, interval=1)
        t0 = time.monotonic()
        await inject(leaky, {"allocateMiB": LEAK_MIB})
        await asyncio.to_thread(wait_for, f"{leaky} restarted",
                                lambda: restarts(cluster, namespace, leaky) > before[leaky],
                                timeout=120, interval=1)
        timeline["oom_to_restarted_s"] = time.monotonic() - t0
        return await runner

    report = asyncio.run(scenario())
    o = report.overall
    print(f"\npod faults: {timeline}; arrivals {o['arrivals']}, ok {o['ok']}, errors {o['errors_by_code']}")
    assert report.client["unfinished"] == 0 and o["outcomes"] == o["arrivals"], report.client
    assert o["errors_by_code"].get("timeout", 0) == 0, o["errors_by_code"]
    assert set(o["errors_by_code"]) <= {"503", "conn_error", "client_error"}, o["errors_by_code"]
    assert o["ok"] >= 0.8 * o["arrivals"], o
    # What `kubectl describe pod` shows as the last state: 3 = exited with a hung device.
    assert last_termination(cluster, namespace, hung) == (3, "Error")
    assert last_termination(cluster, namespace, leaky) == (137, "OOMKilled")
    wait_for("both pods ready at the end", lambda: len(ready_pods(cluster, namespace, name)) == 2,
             timeout=180, interval=2)
