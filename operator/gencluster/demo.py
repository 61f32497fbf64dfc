"""`gencluster demo` (what `make demo` runs): the whole loop on the local cluster, narrated.

Applies a GenerationCluster with short windows, waits for it to be Ready, drives a spike of load
at its Service with the load tester, and prints a timeline (replicas, batch size, p95, GPU memory,
alerts, Events) while the operator reacts; then waits for the scale-down. `run_demo` is also what
the e2e test runs, with shorter phases, so the demo and the test cannot drift apart.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import API_VERSION, GROUP, PLURAL, VERSION

Print = Callable[[str], None]


@dataclass(frozen=True)
class DemoSettings:
    namespace: str = "gencluster-demo"
    name: str = "demo"
    image: str = "localhost/gencluster-workload:dev"
    baseline_rate: float = 8.0
    spike_factor: float = 15.0
    baseline_s: float = 20.0
    spike_s: float = 60.0
    recovery_s: float = 20.0
    ready_timeout_s: float = 300.0
    scale_down_timeout_s: float = 240.0
    poll_s: float = 3.0
    out_dir: str | None = None


@dataclass
class Sample:
    t: float
    ready: int | None
    desired: int | None
    batch: int | None
    p95_ms: int | None
    gpu_percent: int | None
    queue: int | None
    alerts: int | None


@dataclass
class DemoResult:
    samples: list[Sample] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    spike_started: float = 0.0
    spike_ended: float = 0.0
    load_report: Any = None

    def reasons(self) -> set[str]:
        return {e["reason"] for e in self.events}

    def first_scale_up_after(self, t0: float) -> float | None:
        base = next((s.desired for s in self.samples if s.t <= t0 and s.desired), None) or 1
        return next((s.t - t0 for s in self.samples if s.t > t0 and (s.desired or 0) > base), None)


def demo_manifest(s: DemoSettings) -> dict[str, Any]:
    """Short windows so the loop is visible within minutes; limits sized for a 2-core machine."""
    return {
        "apiVersion": API_VERSION, "kind": "GenerationCluster",
        "metadata": {"name": s.name, "namespace": s.namespace},
        "spec": {
            "workload": {"image": s.image, "imagePullPolicy": "Never", "gpusPerReplica": 1,
                         "memoryBudgetMiB": 1536,
                         "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}},
                         "env": [{"name": "GENCLUSTER_TORCH_THREADS", "value": "1"}]},
            "replicas": {"min": 1, "max": 4},
            "autoscaling": {
                "intervalSeconds": 3,
                "targets": {"latencyP95Ms": 80, "queueDepthPerReplica": 2, "gpuMemoryPercent": 85},
                "scaleDown": {"stabilizationSeconds": 20, "periodSeconds": 10, "maxPods": 4},
            },
            "batching": {"mode": "adaptive", "min": 1, "max": 16, "initial": 2,
                         "latencySloMs": 80, "maxQueueDelayMs": 5},
            "cache": {"mode": "standalone", "maxMemoryMiB": 64},
            "alerts": {"rules": [
                {"name": "p95-over-target", "metric": "latencyP95Ms", "comparison": "gt",
                 "threshold": 80, "forSeconds": 6, "severity": "warning"},
                {"name": "queue-building", "metric": "queueDepth", "comparison": "gt",
                 "threshold": 2, "forSeconds": 6, "severity": "warning"},
            ]},
        },
    }


class Narrator:
    """Polls the GenerationCluster and its Events; prints a line per change."""

    def __init__(self, custom: Any, core: Any, s: DemoSettings, out: Print, result: DemoResult,
                 t0: float) -> None:
        self.custom, self.core, self.s, self.out, self.result, self.t0 = custom, core, s, out, result, t0
        self.seen_events: set[str] = set()
        self.last_line = ""

    def _get(self) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.s.namespace, PLURAL, self.s.name)
        return obj

    def poll(self) -> Sample:
        status = self._get().get("status") or {}
        m = status.get("metrics") or {}
        sample = Sample(time.monotonic() - self.t0, status.get("readyReplicas"),
                        status.get("desiredReplicas"), status.get("batchSize"), m.get("p95Ms"),
                        m.get("gpuMemoryPercent"), m.get("queueDepth"), status.get("alertCount"))
        self.result.samples.append(sample)
        line = (f"replicas {sample.ready}/{sample.desired}  batch {sample.batch}  "
                f"p95 {sample.p95_ms} ms  gpu-mem {sample.gpu_percent}%  queue {sample.queue}  "
                f"alerts {sample.alerts}")
        if line != self.last_line:
            self.out(f"[{sample.t:6.1f}s] {line}")
            self.last_line = line
        events = self.core.list_namespaced_event(
            self.s.namespace, field_selector=f"involvedObject.name={self.s.name}").items
        for ev in sorted(events, key=lambda e: str(e.last_timestamp or e.event_time or "")):
            uid = ev.metadata.uid
            if uid in self.seen_events:
                continue
            self.seen_events.add(uid)
            self.result.events.append({"t": sample.t, "type": ev.type, "reason": ev.reason,
                                       "message": ev.message})
            self.out(f"[{sample.t:6.1f}s]   event {ev.type:7} {ev.reason}: {ev.message}")
        return sample

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.poll)
            except Exception as err:
                self.out(f"(poll failed: {err})")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.s.poll_s)


def _apply(custom: Any, core: Any, s: DemoSettings) -> None:
    from kubernetes.client import V1Namespace, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    try:
        core.create_namespace(V1Namespace(metadata=V1ObjectMeta(name=s.namespace)))
    except ApiException as err:
        if err.status != 409:
            raise
    body = demo_manifest(s)
    try:
        custom.create_namespaced_custom_object(GROUP, VERSION, s.namespace, PLURAL, body)
    except ApiException as err:
        if err.status != 409:
            raise
        custom.patch_namespaced_custom_object(GROUP, VERSION, s.namespace, PLURAL, s.name,
                                              {"spec": body["spec"]})


def _ready(custom: Any, s: DemoSettings) -> bool:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, s.namespace, PLURAL, s.name)
    conds = (obj.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


async def run_demo(s: DemoSettings, out: Print = print, api_client: Any = None) -> DemoResult:
    from kubernetes import client, config

    from .loadtest import LoadConfig, cluster_target, run_profile

    if api_client is None:
        config.load_kube_config()  # type: ignore[no-untyped-call]
        api_client = client.ApiClient()
    custom, core = client.CustomObjectsApi(api_client), client.CoreV1Api(api_client)
    result = DemoResult()
    t0 = time.monotonic()
    out(f"==> applying GenerationCluster {s.namespace}/{s.name}")
    _apply(custom, core, s)
    out("==> waiting for Ready (the operator deploys Redis and the workload; the model warms up)")
    deadline = time.monotonic() + s.ready_timeout_s
    while not await asyncio.to_thread(_ready, custom, s):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{s.name} not Ready after {s.ready_timeout_s:.0f}s: kubectl describe gencl {s.name} -n {s.namespace}")
        await asyncio.sleep(2)
    narrator = Narrator(custom, core, s, out, result, t0)
    stop = asyncio.Event()
    watcher = asyncio.create_task(narrator.run(stop))
    peak = s.baseline_rate * s.spike_factor
    out(f"==> spike: {s.baseline_rate:g} req/s for {s.baseline_s:g}s, then {peak:g} req/s for "
        f"{s.spike_s:g}s, then {s.baseline_rate:g} req/s for {s.recovery_s:g}s")
    target = await asyncio.to_thread(cluster_target, s.name, s.namespace)
    cfg = LoadConfig(target=target, profile="spike", rate=s.baseline_rate, spike_factor=s.spike_factor,
                     baseline_s=s.baseline_s, spike_s=s.spike_s, recovery_s=s.recovery_s,
                     window_s=2.0, pool=20000, zipf=1.0, resolution=96, concurrency=256,
                     timeout_s=20.0, slo_ms=1000.0)
    result.spike_started = time.monotonic() - t0 + s.baseline_s
    result.load_report = await run_profile(cfg)
    result.spike_ended = result.spike_started + s.spike_s
    r = result.load_report
    out(f"==> load done: {r.throughput_rps:.1f} req/s, p95 {r.p95_ms:.0f} ms, "
        f"errors {100 * r.error_rate:.1f} %")
    if s.out_dir:
        Path(s.out_dir).mkdir(parents=True, exist_ok=True)
        r.write(s.out_dir)
        out(f"    load report: {s.out_dir}/summary.txt, report.json, plot.png")
    out("==> load stopped; waiting for the scale-down after the stabilisation window")
    deadline = time.monotonic() + s.scale_down_timeout_s
    while time.monotonic() < deadline:
        last = result.samples[-1] if result.samples else None
        if last and last.desired == 1 and any(e["reason"] == "ScaledDown" for e in result.events):
            break
        await asyncio.sleep(s.poll_s)
    stop.set()
    await watcher
    await asyncio.to_thread(narrator.poll)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gencluster demo", description=__doc__)
    parser.add_argument("--out", default="out/demo", help="where the load report goes")
    args = parser.parse_args(argv)
    s = DemoSettings(out_dir=args.out)
    result = asyncio.run(run_demo(s))
    reaction = result.first_scale_up_after(result.spike_started)
    print("\n==> what happened")
    print(f"    scale-up {reaction:.0f}s after the spike began" if reaction is not None
          else "    no scale-up observed")
    for reason in ("ScaledUp", "BatchSizeChanged", "AlertFiring", "AlertResolved", "ScaledDown"):
        n = sum(1 for e in result.events if e["reason"] == reason)
        print(f"    {reason:17} {n} event(s)")
    print(f"""
==> next
    export KUBECONFIG={Path('.cluster/kubeconfig').resolve()} PATH={Path('.cluster/bin').resolve()}:$PATH
    kubectl get gencl -n {s.namespace}
    kubectl describe gencl {s.name} -n {s.namespace}
    kubectl get pods -n {s.namespace}
    .venv/bin/gencluster loadtest load --gencluster {s.name} -n {s.namespace} --rate 20 --duration 30
    make demo-down        # remove the demo and stop the local cluster
""")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
