"""The daemon's loop (ClusterLoop) with real loopback pods and a recording stand-in for the API.

The pods are aiohttp servers on their own 127.0.0.x addresses serving /metrics and the
/admin/batching endpoint; the Kubernetes side is a recorder (the e2e test on the local cluster
covers the real API calls).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from gencluster.control.events import EventIntent
from gencluster.control.samples import PodRef
from gencluster.edge.control_loop import (
    STATUS_METRICS_PER_SECOND,
    STATUS_METRICS_SECONDS,
    ClusterLoop,
    metrics_refresh_seconds,
    persisted_size,
    pod_ref,
    status_signature,
)
from gencluster.metrics_source.scrape import new_session

from .loopback import serve, workload

TOKEN = "s3cret"


@dataclass
class FakePod:
    queue: float = 0.0
    batch: int = 4
    served: int = 0
    latencies: list[float] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    pushes: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    ready: bool = True  # readiness as PUT /admin/readiness set it
    readiness_calls: list[bool] = field(default_factory=list)

    def text(self) -> str:
        bounds = (0.25, 0.5, 1.0, 2.0, 4.0)
        lines = [f'gencluster_requests_total{{code="200"}} {self.served}',
                 f"gencluster_queue_depth {self.queue}", "gencluster_inflight_requests 0",
                 f"gencluster_batch_size {self.batch}",
                 'gencluster_gpu_memory_used_bytes{device="cuda:0"} 8e9',
                 'gencluster_gpu_memory_total_bytes{device="cuda:0"} 16e9',
                 "gencluster_oom_total 0"]
        for le in bounds:
            n = sum(1 for x in self.latencies if x <= le)
            lines.append(f'gencluster_request_duration_seconds_bucket{{outcome="ok",le="{le}"}} {n}')
        n = len(self.latencies)
        lines += [f'gencluster_request_duration_seconds_bucket{{outcome="ok",le="+Inf"}} {n}',
                  f'gencluster_request_duration_seconds_count{{outcome="ok"}} {n}',
                  f'gencluster_request_duration_seconds_sum{{outcome="ok"}} {sum(self.latencies)}']
        for le in (1, 2, 4, 8, 16, 32):
            k = sum(1 for b in self.batches if b <= le)
            lines.append(f'gencluster_batch_size_observed_bucket{{le="{le}"}} {k}')
        lines += [f'gencluster_batch_size_observed_bucket{{le="+Inf"}} {len(self.batches)}',
                  f"gencluster_batch_size_observed_count {len(self.batches)}",
                  f"gencluster_batch_size_observed_sum {sum(self.batches)}"]
        return "\n".join(lines) + "\n"

    def routes(self) -> list[tuple[str, str, Any]]:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(text=self.text())

        async def admin(request: web.Request) -> web.Response:
            auth = request.headers.get("Authorization")
            body = await request.json()
            self.pushes.append((auth, body))
            if auth != f"Bearer {TOKEN}":
                return web.Response(status=401)
            self.batch = body["maxBatchSize"]
            return web.json_response(body)

        async def readiness(request: web.Request) -> web.Response:
            if request.headers.get("Authorization") != f"Bearer {TOKEN}":
                return web.Response(status=401)
            if request.method == "PUT":
                body = await request.json()
                assert body["ready"] or body["leaseSeconds"] >= 30  # never unready for good
                self.ready = body["ready"]
                self.readiness_calls.append(self.ready)
            return web.json_response({"ready": self.ready, "queued": int(self.queue),
                                      "inflight": 0})

        return [("GET", "/metrics", metrics), ("PUT", "/admin/batching", admin),
                ("GET", "/admin/readiness", readiness), ("PUT", "/admin/readiness", readiness)]


@dataclass
class Recorder:
    persisted: str | None = None
    scales: list[int] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    events: list[EventIntent] = field(default_factory=list)
    persisted_docs: list[str] = field(default_factory=list)
    annotations: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        assert (namespace, deployment) == ("ns", "gc-workload")
        self.scales.append(replicas)

    async def read_token(self, namespace: str, secret: str) -> str | None:
        assert secret == "gc-admin"
        return TOKEN

    async def read_batching(self, namespace: str, configmap: str) -> str | None:
        assert configmap == "gc-runtime"
        return self.persisted

    async def persist_batching(self, namespace: str, configmap: str, document: str) -> None:
        self.persisted_docs.append(document)

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.statuses.append(status)

    async def annotate_pod(self, namespace: str, pod: str, annotations: Any) -> None:
        assert namespace == "ns"
        self.annotations.append((pod, dict(annotations)))

    def emit(self, event: EventIntent) -> None:
        self.events.append(event)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def spec(port: int, **autoscaling: Any) -> dict[str, Any]:
    return {"workload": workload(port),
            "replicas": {"min": 1, "max": 10},
            "autoscaling": {"intervalSeconds": 5, **autoscaling},
            "batching": {"initial": 4, "max": 16, "latencySloMs": 2000},
            "alerts": {"anomalyDetection": False}}


async def test_loop_scales_pushes_batches_persists_and_reports():
    pods = {"127.0.3.1": FakePod(), "127.0.3.2": FakePod()}
    refs = [PodRef(f"gc-workload-{i}", f"uid-{i}", ip) for i, ip in enumerate(pods)]
    rec, clock = Recorder(persisted='{"maxBatchSize": 4, "maxQueueDelayMs": 10}'), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        first = await loop.tick(spec(port), 1, refs, 2)
        assert first.scraped == 2 and first.scaled_to is None and first.status_written
        # load arrives: deep queues, fast full batches
        for p in pods.values():
            p.queue, p.served = 40, 100
            p.latencies += [0.3] * 100
            p.batches += [4] * 25
        clock.t += 5
        second = await loop.tick(spec(port), 1, refs, 2)
    assert second.decisions is not None
    assert rec.scales == [second.decisions.replicas.desired] and rec.scales[0] > 2
    assert [e.reason for e in rec.events if e.type == "Normal"][:1] == ["ScaledUp"]
    # the backlog grows each pod's batch size, pushed with the admin token
    assert second.pushed and all(p.pushes[-1][0] == f"Bearer {TOKEN}" for p in pods.values())
    assert all(p.batch > 4 for p in pods.values())
    doc = json.loads(rec.persisted_docs[-1])
    assert doc["maxBatchSize"] > 4 and doc["maxQueueDelayMs"] == 10
    status = rec.statuses[-1]
    assert status["desiredReplicas"] == rec.scales[0] and status["metrics"]["queueDepth"] == 80
    assert status["lastScale"]["from"] == 2 and status["batchSize"] == doc["maxBatchSize"]


@contextlib.asynccontextmanager
async def one_pod(ip: str) -> AsyncIterator[tuple[int, Any, list[PodRef], Recorder, Clock]]:
    """A fake pod at `ip` served on loopback: (port, scrape session, refs, recorder, clock)."""
    async with serve({ip: FakePod().routes()}) as port, new_session() as session:
        yield port, session, [PodRef("gc-workload-0", "uid-0", ip)], Recorder(), Clock()


async def test_status_is_not_rewritten_when_nothing_changed():
    async with one_pod("127.0.3.5") as (port, session, refs, rec, clock):
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        writes = []
        step = STATUS_METRICS_SECONDS / 4
        for _ in range(3):
            writes.append((await loop.tick(spec(port), 1, refs, 1)).status_written)
            clock.t += step
        clock.t += STATUS_METRICS_SECONDS
        writes.append((await loop.tick(spec(port), 1, refs, 1)).status_written)
    assert writes == [True, False, False, True]  # metrics alone refresh every STATUS_METRICS_SECONDS


async def test_a_restarted_loop_resumes_from_the_status_and_does_not_rewrite_it_at_once():
    """After an operator restart the new loop starts from the status the old one wrote: its
    conditions keep their transition times, lastScale stays, and a status that differs only in
    live readings is not rewritten before its paced turn (1,000 restarted loops rewrote 1,000
    statuses at once). A status that differs otherwise is written at once."""
    async with one_pod("127.0.3.9") as (port, session, refs, rec, clock):
        before = ClusterLoop("gc", "ns", rec, session, clock=clock)
        for _ in range(3):
            await before.tick(spec(port), 1, refs, 1)
            clock.t += 5
        stored = {**rec.statuses[-1], "observedGeneration": 1, "conditions": [
            *rec.statuses[-1]["conditions"],  # and the reconcile's, which the loop leaves alone
            {"type": "Ready", "status": "True", "reason": "Ready", "message": "1/1",
             "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "lastScale": {"time": "2026-01-01T00:00:00Z", "from": 2, "to": 1, "reason": "idle"}}
        since = {c["type"]: c["lastTransitionTime"] for c in stored["conditions"]}
        written = len(rec.statuses)
        clock.t += 60  # the operator was down a minute
        after = ClusterLoop("gc", "ns", rec, session, clock=clock)
        first = await after.tick(spec(port), 1, refs, 1, stored)
        assert not first.status_written and len(rec.statuses) == written
        clock.t += STATUS_METRICS_SECONDS  # its paced turn has come by now
        assert (await after.tick(spec(port), 1, refs, 1, stored)).status_written
        again = rec.statuses[-1]
        assert again["lastScale"] == stored["lastScale"]
        assert {c["type"]: c["lastTransitionTime"] for c in again["conditions"]} == {
            t: v for t, v in since.items() if t != "Ready"}
        # a status the loop would change beyond live readings: written on the first tick
        other = ClusterLoop("gc", "ns", rec, session, clock=clock)
        assert (await other.tick(spec(port), 1, refs, 1, {**stored, "batchSize": 9})).status_written


async def test_a_large_fleet_rewrites_metrics_less_often_but_other_changes_at_once():
    """1,000 clusters: metric-only writes every 100 s each (10 a second operator-wide)."""
    assert metrics_refresh_seconds(1) == metrics_refresh_seconds(100) == STATUS_METRICS_SECONDS
    assert metrics_refresh_seconds(1000) == 1000 / STATUS_METRICS_PER_SECOND
    pods = {"127.0.3.6": FakePod()}
    refs = [PodRef("gc-workload-0", "uid-0", "127.0.3.6")]
    rec, clock = Recorder(), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock, fleet=lambda: 1000)
        writes = []
        for step in (0.0, 50.0, 51.0):  # t = 0, 50, 101
            clock.t += step
            writes.append((await loop.tick(spec(port), 1, refs, 1)).status_written)
        assert writes == [True, False, True]
        clock.t += 5.0
        writes.append((await loop.tick(spec(port), 1, refs, 2)).status_written)  # 2 replicas now
    assert writes[-1] and rec.statuses[-1] != rec.statuses[-2]


async def test_disabled_autoscaling_observes_only_and_dead_pods_are_reported():
    pods = {"127.0.3.9": FakePod(queue=500)}
    refs = [PodRef("a", "ua", "127.0.3.9"), PodRef("dead", "ud", "127.0.3.10")]
    rec, clock = Recorder(), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        for _ in range(3):
            report = await loop.tick(spec(port, enabled=False), 1, refs, 1)
            clock.t += 5
    assert rec.scales == [] and report.pushed == {} and "dead" in report.failed
    assert rec.statuses and rec.statuses[-1]["metrics"]["podsReporting"] == 1


async def test_prometheus_source_is_used_when_configured():
    async def query(_: web.Request) -> web.Response:  # the wiring; tests/control/
        # test_prometheus_source.py runs the source against the real Prometheus
        return web.json_response({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "gencluster_queue_depth", "pod": "a", "namespace": "ns"},
             "values": [[985.0, "10"], [1000.0, "12"]]}]}})

    rec, clock = Recorder(), Clock()
    async with serve({"127.0.3.20": [("POST", "/api/v1/query", query)]}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        s = spec(8080, metrics={"type": "prometheus",
                                "prometheusUrl": f"http://127.0.3.20:{port}"})
        report = await loop.tick(s, 1, [PodRef("a", "ua", "10.9.9.9")], 1)
    assert report.scraped == 1 and rec.statuses[-1]["metrics"]["queueDepth"] == 12
    # the scrape interval (15 s) it learnt from the samples sets the staleness: 2 x 15 + 5 s
    assert loop.window is not None and loop.window.config.stale_after_s == 35.0


def test_pod_ref_and_persisted_size():
    st = {"podIP": "10.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    assert pod_ref("p", "u", st) == PodRef("p", "u", "10.0.0.1", True)
    assert not pod_ref("p", "u", {"conditions": st["conditions"]}).ready
    assert persisted_size('{"maxBatchSize": 9}') == 9
    assert persisted_size("garbage") is None and persisted_size(None) is None


class FakeKube:
    """The subset of gencluster.kube.client.Kube the daemon's KopfKubeOps calls."""

    def __init__(self) -> None:
        self.status: list[dict[str, Any]] = []
        self.applied: list[dict[str, Any]] = []
        self.scaled: list[int] = []

    async def get(self, api_version: str, kind: str, name: str, namespace: str | None = None):
        if kind == "Secret":
            return {"data": {"token": "czNjcmV0"}}  # base64 of s3cret
        return {"data": {"batching.json": '{"maxBatchSize": 5, "maxQueueDelayMs": 10}'}}

    async def apply(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]:
        assert field_manager == "gencluster-control"
        self.applied.append(obj)
        return obj

    async def apply_status(self, api_version, kind, name, namespace, status, field_manager):
        assert (api_version, kind, field_manager) == (
            "orfeas.ai/v1alpha1", "GenerationCluster", "gencluster-control")
        self.status.append(status)
        return {}

    async def patch_scale(self, api_version, kind, name, namespace, replicas):
        self.scaled.append(replicas)
        return {}

    async def patch_merge(self, api_version, kind, name, namespace, body):
        self.applied.append({"patched": (api_version, kind, name, namespace), **body})
        return {}


async def test_kopf_ops_annotate_pods_with_a_merge_patch():
    from gencluster.edge.control_loop import KopfKubeOps

    kube = FakeKube()
    ops = KopfKubeOps(kube, {})
    await ops.annotate_pod("ns", "gc-workload-1", {"controller.kubernetes.io/pod-deletion-cost": "-1000"})
    await ops.annotate_pod("ns", "gc-workload-1", {"controller.kubernetes.io/pod-deletion-cost": None})
    assert kube.applied == [
        {"patched": ("v1", "Pod", "gc-workload-1", "ns"),
         "metadata": {"annotations": {"controller.kubernetes.io/pod-deletion-cost": v}}}
        for v in ("-1000", None)]


async def test_kopf_daemon_runs_ticks_from_the_indexes_until_cancelled():
    import asyncio
    import logging
    from types import SimpleNamespace

    from gencluster.dashboard.model import Board
    from gencluster.edge import control_loop as a
    from gencluster.edge.events import EventRecorder
    from gencluster.metrics_source.scrape import new_session as open_session
    from gencluster.render.names import INSTANCE_LABEL

    pods = {"127.0.3.30": FakePod(queue=1)}
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port:
        raw_pod = {"podIP": "127.0.3.30", "conditions": [{"type": "Ready", "status": "True"}]}
        idx = a.gencluster_workload_pods(name="gc-workload-x", namespace="ns", uid="u1",
                                         labels={INSTANCE_LABEL: "gc"}, status=raw_pod, meta={})
        gone = a.gencluster_workload_pods(name="old", namespace="ns", uid="u0",
                                          labels={INSTANCE_LABEL: "gc"}, status=raw_pod,
                                          meta={"deletionTimestamp": "now"})
        reps = a.gencluster_workload_replicas(namespace="ns", labels={INSTANCE_LABEL: "gc"},
                                              spec={"replicas": 1})
        assert gone == {}
        kube = FakeKube()
        events: list[EventIntent] = []  # kopf.event needs a running operator
        recorder = EventRecorder(post=lambda body, e: events.append(e))
        session = open_session()
        task = asyncio.create_task(a.run_cluster_loop(
            name="gc", namespace="ns", body={}, spec=spec(port), meta={"generation": 1},
            memo=SimpleNamespace(loop_kube=kube, events=recorder, session=session, board=Board()),
            logger=logging.getLogger("test"),
            gencluster_workload_pods={k: [v] for k, v in idx.items()},
            gencluster_workload_replicas={k: [v] for k, v in reps.items()}))
        for _ in range(100):
            await asyncio.sleep(0.05)
            if kube.status:
                break
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await session.close()
    assert kube.status and kube.status[0]["metrics"]["podsReporting"] == 1
    # the persisted size (5) was read back; the pod runs 4, which the loop adopts and reports
    assert [e.reason for e in events] == ["BatchSizeChanged"] and "5 -> 4" in events[0].message
    assert kube.status[0]["batchSize"] == 4 and kube.applied[0]["data"]["batching.json"]


def loaded_pods(pods: dict[str, FakePod]) -> None:
    for p in pods.values():
        p.queue, p.served = 40, p.served + 100
        p.latencies += [0.3] * 100
        p.batches += [4] * 25


async def test_advisory_mode_decides_reports_and_changes_nothing():
    pods = {"127.0.3.41": FakePod(), "127.0.3.42": FakePod()}
    refs = [PodRef(f"gc-workload-{i}", f"uid-{i}", ip) for i, ip in enumerate(pods)]
    rec, clock = Recorder(persisted='{"maxBatchSize": 4, "maxQueueDelayMs": 10}'), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        s = spec(port, mode="advisory")
        await loop.tick(s, 1, refs, 2)
        loaded_pods(pods)
        clock.t += 5
        report = await loop.tick(s, 1, refs, 2)
        clock.t += 5
        await loop.tick(s, 1, refs, 2)
    assert report.decisions is not None and report.scaled_to is None
    assert rec.scales == [] and rec.persisted_docs == [] and rec.annotations == []
    assert all(p.pushes == [] and p.batch == 4 for p in pods.values())
    reasons = [e.reason for e in rec.events]
    assert reasons.count("WouldScaleUp") == 1 and reasons.count("WouldChangeBatchSize") == 1
    assert "ScaledUp" not in reasons and "BatchSizeChanged" not in reasons
    recommendation = rec.statuses[-1]["recommendation"]
    assert recommendation["currentReplicas"] == 2 and recommendation["replicas"] > 2
    assert recommendation["batchSize"] > 4 and rec.statuses[-1]["desiredReplicas"] == 2
    assert {x["pod"] for x in recommendation["podBatchSizes"]} == {r.name for r in refs}


async def test_unschedulable_pods_stop_further_scale_up_until_scheduled():
    pods = {"127.0.3.45": FakePod(), "127.0.3.46": FakePod()}
    refs = [PodRef(f"gc-workload-{i}", f"uid-{i}", ip) for i, ip in enumerate(pods)]
    msg = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    pending = PodRef("gc-workload-9", "uid-9", None, False, msg)
    rec, clock = Recorder(), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        await loop.tick(spec(port), 1, [*refs, pending], 3)
        for _ in range(3):
            loaded_pods(pods)
            clock.t += 5
            held = await loop.tick(spec(port), 1, [*refs, pending], 3)
        assert rec.scales == [] and held.decisions is not None
        assert "held" in held.decisions.replicas.reason
        warnings = [e for e in rec.events if e.reason == "ScaleUpHeld"]
        assert len(warnings) == 1 and warnings[0].type == "Warning" and msg in warnings[0].message
        # the pod is scheduled (it is starting): the loop may scale up again
        loaded_pods(pods)
        clock.t += 5
        free = await loop.tick(spec(port), 1,
                               [*refs, PodRef("gc-workload-9", "uid-9", None, False)], 3)
    assert free.decisions is not None and "held" not in free.decisions.replicas.reason
    desired = free.decisions.replicas.desired
    assert rec.scales == ([desired] if desired > 3 else [])
    assert "ScaleUpResumed" in [e.reason for e in rec.events]


async def test_scale_down_drains_the_least_loaded_pod_before_the_count_falls():
    ips = ["127.0.3.51", "127.0.3.52", "127.0.3.53"]
    pods = {ip: FakePod(queue=q) for ip, q in zip(ips, (2, 0, 1), strict=True)}
    refs = [PodRef(f"gc-workload-{i}", f"uid-{i}", ip) for i, ip in enumerate(ips)]
    rec, clock = Recorder(), Clock()
    s_down = {"stabilizationSeconds": 0, "maxPods": 1, "maxPercent": 1, "periodSeconds": 15}
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        s = spec(port, scaleDown=s_down)
        first = await loop.tick(s, 1, refs, 3)
        assert first.decisions is not None and first.decisions.replicas.desired == 2
        # the least loaded pod (queue 0) is the victim: deletion cost, then readiness off
        assert rec.scales == [] and rec.annotations == [
            ("gc-workload-1", {"controller.kubernetes.io/pod-deletion-cost": "-1000"})]
        assert pods[ips[1]].readiness_calls == [False]
        assert pods[ips[0]].readiness_calls == pods[ips[2]].readiness_calls == []
        # still Ready in the API (the probe has not failed yet): no scale-down yet
        clock.t += 3
        await loop.tick(s, 1, refs, 3)
        assert rec.scales == []
        # not Ready now, and its queue is empty: once settled, the count falls
        refs[1] = PodRef("gc-workload-1", "uid-1", ips[1], ready=False)
        clock.t += 3
        await loop.tick(s, 1, refs, 3)
        assert rec.scales == []
        clock.t += 4
        done = await loop.tick(s, 1, refs, 3)
        assert rec.scales == [2] and done.scaled_to == 2
        # the ReplicaSet removed it: nothing left to do, and the next decisions start from 2
        clock.t += 5
        await loop.tick(s, 1, [refs[0], refs[2]], 2)
        assert loop.drain is None
    assert [e.reason for e in rec.events].count("ScaledDown") == 1


async def test_a_drain_is_cancelled_when_load_returns():
    ips = ["127.0.3.56", "127.0.3.57", "127.0.3.58"]
    pods = {ip: FakePod() for ip in ips}
    refs = [PodRef(f"gc-workload-{i}", f"uid-{i}", ip) for i, ip in enumerate(ips)]
    rec, clock = Recorder(), Clock()
    s_down = {"stabilizationSeconds": 0, "maxPods": 1, "maxPercent": 1}
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        s = spec(port, scaleDown=s_down)
        await loop.tick(s, 1, refs, 3)
        victim = rec.annotations[0][0]
        loaded_pods(pods)
        clock.t += 5
        report = await loop.tick(s, 1, refs, 3)
    ip = ips[int(victim.rsplit("-", 1)[1])]
    assert report.decisions is not None and report.decisions.replicas.desired >= 3
    calls = pods[ip].readiness_calls  # off, renewed with each tick's report, then on again
    assert calls[0] is False and calls[-1] is True and pods[ip].ready
    assert rec.annotations[-1] == (victim, {"controller.kubernetes.io/pod-deletion-cost": None})
    desired = report.decisions.replicas.desired
    assert rec.scales == ([desired] if desired > 3 else []) and loop.drain is None


def test_live_readings_in_alerts_and_conditions_do_not_count_as_a_change():
    """A firing alert quoting a noisy value must not rewrite the status every tick; a new alert,
    a resolved one or a condition turning does."""
    def status(value: float, firing: bool = True, cond: str = "True") -> dict[str, object]:
        alerts = [{"name": "error-rate", "severity": "warning", "threshold": 10, "value": value,
                   "since": "2026-12-04T19:13:53Z", "message": f"errorRatePermille {value} > 10"}]
        return {"metrics": {"p95Ms": value}, "alertCount": int(firing),
                "alerts": alerts if firing else [],
                "conditions": [{"type": "Alerting", "status": cond, "reason": "AlertsFiring",
                                "message": f"{value} pods", "lastTransitionTime": "t0"}]}

    assert status_signature(status(9.66)) == status_signature(status(10.2))
    assert status_signature(status(9.66)) != status_signature(status(9.66, firing=False))
    assert status_signature(status(9.66)) != status_signature(status(9.66, cond="False"))
