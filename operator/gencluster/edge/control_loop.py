"""The control loop at the edge: one daemon per GenerationCluster (registered in kopf_handlers).

Every spec.autoscaling.intervalSeconds: take the cluster's workload pods (from a watch-fed Kopf
index, not a LIST per loop), scrape them (or query Prometheus), update the in-memory window, call
the pure decisions (gencluster.control.cycle.decide), then act:
- scale the `<name>-workload` Deployment through its scale subresource (autoscaling.enabled only);
- PUT each pod's new batch setting to http://<podIP>:<adminPort>/admin/batching (bearer token from
  Secret `<name>-admin`, key `token`) and persist the size new pods start with in ConfigMap
  `<name>-runtime`, key batching.json (server-side apply, field manager gencluster-control);
- post the Events the events policy admits (ScaledUp, ScaledDown, BatchSizeChanged,
  AlertFiring, AlertResolved) through the one event path (edge/events.py);
- server-side apply the status fields the loop owns (metrics, lastScale, alerts, alertCount,
  batchSize, desiredReplicas, conditions Alerting and MetricsAvailable) with field manager
  gencluster-control, on the status subresource. Live readings alone (metrics, cost, an alert's
  value, condition messages: status_signature) are rewritten at most every
  STATUS_METRICS_SECONDS, and no more than STATUS_METRICS_PER_SECOND of them a second across the
  operator (metrics_refresh_seconds); anything else that changes is written at once.

Each cluster has its own daemon, scraper semaphore and timeouts, so one cluster's slow or dead
pods never delay another's loop. A failing tick is logged and the next one runs on schedule.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import aiohttp
from opentelemetry import trace
from pydantic import ValidationError

from .. import API_VERSION, KIND
from ..api.spec import GenerationClusterSpec, custom_series, parse_spec
from ..control.batching import BatchState
from ..control.cost import CostLedger, cost_status
from ..control.custom import base_names
from ..control.cycle import LOOP_CONDITIONS, ControlState, Decisions, decide, resumed_state
from ..control.events import EventIntent
from ..control.samples import PodRef, PodSample
from ..control.scaledown import (
    VICTIM_COST,
    DrainPlan,
    DrainReport,
    DrainState,
    effective_replicas,
    plan_scale_down,
)
from ..control.window import Window, WindowConfig
from ..dashboard.model import ClusterHistory
from ..metrics_source.prometheus import PrometheusSource
from ..metrics_source.scrape import Scraper
from ..render.children import persisted_batch_size
from ..render.names import (
    CONTROL_FIELD_MANAGER,
    DELETION_COST_ANNOTATION,
    INSTANCE_LABEL,
    admin_secret_name,
    runtime_configmap_name,
    workload_name,
)
from ..render.workload import ADMIN_TOKEN_KEY, BATCHING_KEY, batching_document
from .events import EventRecorder
from .metrics import forget_cluster, observe_cost, observe_tick

STATUS_METRICS_SECONDS = 10.0
# Operator-wide bound on metric-only status writes. Each is a server-side apply the apiserver
# merges; at 1,000 clusters every 10 s they were ~50 a second, nearly all of its load.
STATUS_METRICS_PER_SECOND = 10.0
ADMIN_PATH = "/admin/batching"
READINESS_PATH = "/admin/readiness"

log = logging.getLogger(__name__)
tracer = trace.get_tracer("gencluster.operator")


def metrics_refresh_seconds(clusters: int) -> float:
    """How often one cluster's status metrics are rewritten when nothing else in its status
    changed: every STATUS_METRICS_SECONDS, or slower once the fleet would write more than
    STATUS_METRICS_PER_SECOND a second (1,000 clusters: every 100 s). Prometheus has the live
    series; status.metrics is what `kubectl get` shows."""
    return max(STATUS_METRICS_SECONDS, clusters / STATUS_METRICS_PER_SECOND)


def status_signature(status: Mapping[str, Any]) -> str:
    """What must be written at once when it changes: the status less its live readings (the
    metrics, the cost, an alert's current value and the texts that quote it, a condition's
    message), which refresh at metrics_refresh_seconds. Without this an alert quoting a noisy
    value ("errorRatePermille 9.66 > 10") rewrote the status every tick."""
    def settled(entries: Any, keep: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{k: e.get(k) for k in keep} for e in entries or []]

    rest = {k: v for k, v in status.items() if k not in ("metrics", "cost", "alerts", "conditions")}
    rest["alerts"] = settled(status.get("alerts"), ("name", "severity", "threshold", "since"))
    rest["conditions"] = settled(status.get("conditions"), (
        "type", "status", "reason", "lastTransitionTime", "observedGeneration"))
    return json.dumps(rest, sort_keys=True)


def as_held(stored: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a cluster's stored status the loop's `status` would write: the same fields
    (and a lastScale or recommendation the loop wrote before, which its apply would remove),
    and the loop's own conditions (the reconcile's are not the loop's to compare)."""
    held = {k: stored[k] for k in (*status, "lastScale", "recommendation")
            if k in stored and k != "conditions"}
    held["conditions"] = [c for c in stored.get("conditions") or []
                          if isinstance(c, Mapping) and c.get("type") in LOOP_CONDITIONS]
    return held


def admin_url(spec: GenerationClusterSpec, pod: PodRef, path: str) -> str:
    """A pod's admin API: its own port (spec.workload.adminPort), which the workload's
    NetworkPolicy admits only from the operator's pod; /metrics stays on spec.workload.port."""
    return f"http://{pod.ip}:{spec.workload.admin_port}{path}"


class KubeOps(Protocol):
    """The API calls the loop makes; KopfKubeOps is the real one, tests bring their own."""

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...

    async def read_token(self, namespace: str, secret: str) -> str | None: ...

    async def read_batching(self, namespace: str, configmap: str) -> str | None: ...

    async def persist_batching(self, namespace: str, configmap: str, document: str) -> None: ...

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...

    async def annotate_pod(self, namespace: str, pod: str,
                           annotations: Mapping[str, str | None]) -> None: ...

    def emit(self, event: EventIntent) -> None: ...


class NullKubeOps:
    """KubeOps that changes nothing and reads nothing back (the admin token is "token"): the
    loop benchmark's stand-in, and the base of tests' recorders, which override what they watch."""

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        return None

    async def read_token(self, namespace: str, secret: str) -> str | None:
        return "token"

    async def read_batching(self, namespace: str, configmap: str) -> str | None:
        return None

    async def persist_batching(self, namespace: str, configmap: str, document: str) -> None:
        return None

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        return None

    async def annotate_pod(self, namespace: str, pod: str,
                           annotations: Mapping[str, str | None]) -> None:
        return None

    def emit(self, event: EventIntent) -> None:
        return None


class KopfKubeOps:
    """KubeOps over gencluster.kube.client.Kube and the operator's EventRecorder."""

    def __init__(self, kube: Any, body: Any, events: EventRecorder | None = None) -> None:
        self.kube = kube
        self.body = body
        self.events = events or EventRecorder()

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        await self.kube.patch_scale("apps/v1", "Deployment", deployment, namespace, replicas)

    async def read_token(self, namespace: str, secret: str) -> str | None:
        obj = await self.kube.get("v1", "Secret", secret, namespace)
        raw = ((obj or {}).get("data") or {}).get(ADMIN_TOKEN_KEY)
        return base64.b64decode(raw).decode().strip() if raw else None

    async def read_batching(self, namespace: str, configmap: str) -> str | None:
        obj = await self.kube.get("v1", "ConfigMap", configmap, namespace)
        value = ((obj or {}).get("data") or {}).get(BATCHING_KEY)
        return value if isinstance(value, str) else None

    async def persist_batching(self, namespace: str, configmap: str, document: str) -> None:
        await self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": configmap, "namespace": namespace},
                               "data": {BATCHING_KEY: document}}, CONTROL_FIELD_MANAGER)

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.kube.apply_status(API_VERSION, KIND, name, namespace, status, CONTROL_FIELD_MANAGER)

    async def annotate_pod(self, namespace: str, pod: str,
                           annotations: Mapping[str, str | None]) -> None:
        await self.kube.patch_merge("v1", "Pod", pod, namespace,
                                    {"metadata": {"annotations": dict(annotations)}})

    def emit(self, event: EventIntent) -> None:
        self.events.emit_admitted(self.body, (event,))  # admitted by the loop's decide


def pod_ref(name: str, uid: str, status: Mapping[str, Any]) -> PodRef:
    conds = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
    unschedulable = next((str(c.get("message") or "") for c in conds
                          if c.get("type") == "PodScheduled" and c.get("status") == "False"
                          and c.get("reason") == "Unschedulable"), None)
    return PodRef(name, uid, status.get("podIP"), ready and bool(status.get("podIP")),
                  unschedulable)


def persisted_size(document: str | None) -> int | None:
    """The persisted batch size the loop starts from; a non-positive one counts as absent."""
    value = persisted_batch_size(document)
    return value if value is not None and value > 0 else None


def decision_attributes(d: Decisions) -> dict[str, str | int | bool]:
    """A tick's decision and its reason, as span attributes."""
    return {"gencluster.replicas.current": d.replicas.current,
            "gencluster.replicas.desired": d.replicas.desired,
            "gencluster.replicas.reason": d.replicas.reason[:500],
            "gencluster.batch.default": d.batches.default,
            "gencluster.batch.changes": len(d.batches.changes),
            "gencluster.alerts.active": len(d.alerts.active)}


@dataclass
class TickReport:
    """What one tick did (for tests and logs)."""

    decisions: Decisions | None
    scraped: int
    failed: dict[str, str]
    scaled_to: int | None
    pushed: dict[str, int]
    push_failed: dict[str, str]
    status_written: bool
    drain: DrainPlan | None = None  # the scale-down step taken (control/scaledown.py)
    drain_failed: dict[str, str] = field(default_factory=dict)


class ClusterLoop:
    """One GenerationCluster's loop state and its tick; no Kopf in here, so tests drive it."""

    def __init__(self, name: str, namespace: str, ops: KubeOps, session: aiohttp.ClientSession,
                 clock: Callable[[], float] = time.time,
                 history: ClusterHistory | None = None,
                 fleet: Callable[[], int] = lambda: 1) -> None:
        self.name, self.namespace, self.ops, self.session, self.clock = (
            name, namespace, ops, session, clock)
        self.fleet = fleet  # how many clusters this operator runs loops for
        self.history = history  # the dashboard's ring of this cluster's ticks (in memory)
        self.window: Window | None = None
        self.state: ControlState | None = None
        self.scraper = Scraper(session, clock=clock)
        self.token: str | None = None
        self.drain: DrainState | None = None  # a drop-free scale-down in progress
        self._prometheus: PrometheusSource | None = None
        self.cost = CostLedger()  # what the cluster costs (control/cost.py), in memory
        self._spec: tuple[Any, GenerationClusterSpec] | None = None
        self._status_sig: str | None = None
        self._status_at = -1e18

    def spec(self, raw: Mapping[str, Any], generation: Any) -> GenerationClusterSpec:
        if self._spec is None or self._spec[0] != generation:
            self._spec = (generation, parse_spec(dict(raw)))
        return self._spec[1]

    async def _samples(self, spec: GenerationClusterSpec, pods: Sequence[PodRef],
                       report: TickReport) -> list[PodSample]:
        src = spec.autoscaling.metrics
        timeout = src.scrape_timeout_ms / 1000.0
        if src.type == "prometheus" and src.prometheus_url:
            if self._prometheus is None or self._prometheus.base_url != src.prometheus_url.rstrip("/"):
                self._prometheus = PrometheusSource(self.session, src.prometheus_url)
            try:
                out = await self._prometheus.fetch(self.namespace, pods, timeout)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as err:
                report.failed["prometheus"] = f"{type(err).__name__}: {err}"[:200]
                return []
            self._fit_staleness(spec, self._prometheus.scrape_interval_s)
            report.scraped = len(out)
            return out
        results = await self.scraper.scrape(pods, spec.workload.port, timeout,
                                            base_names(s for s, _ in custom_series(spec)))
        report.failed.update({r.pod: r.error for r in results if r.error})
        report.scraped = sum(1 for r in results if r.sample is not None)
        return [r.sample for r in results if r.sample is not None]

    def _fit_staleness(self, spec: GenerationClusterSpec, scrape_interval_s: float | None) -> None:
        """Samples from Prometheus are as old as its last scrape: a pod is stale only after two
        of Prometheus' scrape intervals (plus one loop interval) without a new one."""
        if self.window is None or scrape_interval_s is None:
            return
        interval = float(spec.autoscaling.interval_seconds)
        stale = max(WindowConfig.for_interval(interval).stale_after_s,
                    2.0 * scrape_interval_s + interval)
        if self.window.config.stale_after_s != stale:
            self.window.config = replace(self.window.config, stale_after_s=stale)

    async def tick(self, raw_spec: Mapping[str, Any], generation: int | None,
                   pods: Sequence[PodRef], current: int | None,
                   stored: Mapping[str, Any] | None = None) -> TickReport:
        """One interval: a span `control.tick` (the decision and its reason as attributes) with
        `scrape`, `decide` and `act` inside. `stored`: the status the cluster holds now (the
        first tick after a restart starts from it)."""
        with tracer.start_as_current_span("control.tick", attributes={
                "k8s.namespace.name": self.namespace, "gencluster.cluster": self.name}) as span:
            report = await self._tick(raw_spec, generation, pods, current, stored or {})
            if report.decisions is not None:
                span.set_attributes(decision_attributes(report.decisions))
            return report

    async def _tick(self, raw_spec: Mapping[str, Any], generation: int | None,
                    pods: Sequence[PodRef], current: int | None,
                    stored: Mapping[str, Any]) -> TickReport:
        report = TickReport(None, 0, {}, None, {}, {}, False)
        if current is None:
            # No workload Deployment yet (the reconcile creates it): nothing to control, and
            # deciding against 0 replicas would announce a scale-up that nobody performs.
            return report
        spec = self.spec(raw_spec, generation)
        if self.window is None:
            self.window = Window(WindowConfig.for_interval(spec.autoscaling.interval_seconds))
        if self.state is None:
            doc = await self.ops.read_batching(self.namespace, runtime_configmap_name(self.name))
            self.state = resumed_state(stored, BatchState(default=persisted_size(doc)))
        scrape = tracer.start_span("scrape", attributes={"gencluster.pods": len(pods)})
        samples = await self._samples(spec, pods, report)
        scrape.set_attributes({"gencluster.pods.scraped": report.scraped,
                               "gencluster.pods.failed": len(report.failed)})
        scrape.end()
        now = self.clock()
        view = self.window.update(now, samples, pods, custom_series(spec))
        self.cost.observe(now, samples, pods)
        decide_span = tracer.start_span("decide")
        auto = spec.autoscaling.enabled and spec.autoscaling.mode == "auto"
        if not auto and self.drain is not None:  # switched to advisory or off mid-drain
            await self._set_readiness(spec, pods, (v.name for v in self.drain.victims), True,
                                      report)
            self.drain = None
        # A drain in progress has decided already: decide from the count it is heading for.
        replicas = effective_replicas(current, self.drain) if auto else current
        unschedulable = {p.name: p.unschedulable for p in pods if p.unschedulable is not None}
        decisions, self.state = decide(spec, view, replicas, self.state, now, generation,
                                       unschedulable)
        report.decisions = decisions
        decide_span.set_attributes(decision_attributes(decisions))
        decide_span.end()
        act = tracer.start_span("act")
        if self.history is not None:
            self.history.record(now, view, samples, pods, decisions, current,
                                float(spec.autoscaling.targets.latency_p95_ms))
        if auto:
            await self._scale(spec, pods, view, current, decisions.replicas.desired, now, report)
        if spec.autoscaling.enabled:
            await self._push_batches(spec, pods, decisions, report)
            if decisions.batches.default_changed:
                await self.ops.persist_batching(
                    self.namespace, runtime_configmap_name(self.name),
                    batching_document(decisions.batches.default,
                                      spec.batching.max_queue_delay_ms))
        for event in decisions.events:
            self.ops.emit(event)
        decisions.status["cost"], hour, day = cost_status(spec, self.cost, now)
        observe_cost(self.namespace, self.name, {"1h": hour, "24h": day},
                     spec.cost.currency if spec.cost is not None else None)
        await self._write_status(decisions.status, now, report, stored)
        act.set_attributes({"gencluster.scaled_to": -1 if report.scaled_to is None
                            else report.scaled_to, "gencluster.batch.pushed": len(report.pushed),
                            "gencluster.events": len(decisions.events),
                            "gencluster.status_written": report.status_written})
        act.end()
        return report

    async def _scale(self, spec: GenerationClusterSpec, pods: Sequence[PodRef], view: Any,
                     current: int, desired: int, now: float, report: TickReport) -> None:
        """Scale up at once; scale down through the drain (control/scaledown.py)."""
        reports = await self._drain_reports(spec, pods) if self.drain is not None else {}
        load: dict[str, float | None] = {
            name: None if pv.queue_depth is None else pv.queue_depth + (pv.inflight or 0.0)
            for name, pv in view.pods.items()}
        plan = plan_scale_down(self.drain, current, desired, pods, load, reports, now,
                               float(spec.workload.shutdown_grace_seconds))
        report.drain = plan
        by_name = {p.name: p for p in pods}
        for name in plan.drain:  # the ReplicaSet must pick exactly these: lowest deletion cost
            try:
                await self.ops.annotate_pod(self.namespace, name,
                                            {DELETION_COST_ANNOTATION: VICTIM_COST})
            except Exception as err:  # the pod may be gone; readiness still goes
                report.drain_failed[name] = f"annotate: {type(err).__name__}: {err}"[:200]
        await self._set_readiness(spec, pods, plan.drain, False, report)
        await self._set_readiness(spec, pods, plan.undrain, True, report)
        for name in plan.undrain:
            if name in by_name:
                try:
                    await self.ops.annotate_pod(self.namespace, name,
                                                {DELETION_COST_ANNOTATION: None})
                except Exception as err:  # gone meanwhile
                    report.drain_failed[name] = f"annotate: {type(err).__name__}: {err}"[:200]
        if plan.scale_to is not None and plan.scale_to != current:
            await self.ops.scale(self.namespace, workload_name(self.name), plan.scale_to)
            report.scaled_to = plan.scale_to
        self.drain = plan.state

    @staticmethod
    def _lease(spec: GenerationClusterSpec) -> int:
        """How long a victim stays unready without hearing from the loop again: an operator that
        stops mid-drain cannot leave pods unready for good."""
        return spec.workload.shutdown_grace_seconds + max(30, 4 * spec.autoscaling.interval_seconds)

    async def _drain_reports(self, spec: GenerationClusterSpec,
                             pods: Sequence[PodRef]) -> dict[str, DrainReport]:
        """Each victim's own word on its queue; the same PUT renews its readiness lease."""
        assert self.drain is not None
        by_name = {p.name: p for p in pods}
        victims = [by_name[v.name] for v in self.drain.victims
                   if v.name in by_name and by_name[v.name].ip]
        if self.drain.phase != "draining":
            return {}
        body = {"ready": False, "leaseSeconds": self._lease(spec)}
        answers = await asyncio.gather(*(self._admin(spec, p, "PUT", READINESS_PATH, body)
                                         for p in victims))
        out: dict[str, DrainReport] = {}
        for pod, (status, body) in zip(victims, answers, strict=True):
            if status == 404:
                out[pod.name] = DrainReport(0, 0, supported=False)
            elif status == 200 and isinstance(body, dict):
                out[pod.name] = DrainReport(int(body.get("queued") or 0),
                                            int(body.get("inflight") or 0))
        return out

    async def _set_readiness(self, spec: GenerationClusterSpec, pods: Sequence[PodRef],
                             names: Iterable[str], ready: bool, report: TickReport) -> None:
        by_name = {p.name: p for p in pods}
        targets = [by_name[n] for n in names if n in by_name and by_name[n].ip]
        body: dict[str, Any] = {"ready": ready}
        if not ready:
            body["leaseSeconds"] = self._lease(spec)
        answers = await asyncio.gather(*(self._admin(spec, p, "PUT", READINESS_PATH, body)
                                         for p in targets))
        for pod, (status, body) in zip(targets, answers, strict=True):
            if status != 200:
                report.drain_failed[pod.name] = f"readiness {ready}: {body}"[:200]

    async def _admin(self, spec: GenerationClusterSpec, pod: PodRef, method: str, path: str,
                     body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One call to a pod's admin API with the token: (HTTP status or 0, JSON or error)."""
        if self.token is None:
            self.token = await self.ops.read_token(self.namespace, admin_secret_name(self.name))
        url = admin_url(spec, pod, path)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        timeout = aiohttp.ClientTimeout(total=spec.autoscaling.metrics.scrape_timeout_ms / 1000.0)
        try:
            async with self.session.request(method, url, json=body, headers=headers,
                                            timeout=timeout) as r:
                if r.status == 401:
                    self.token = None  # rotated: read it again next time
                if r.status != 200:
                    return r.status, f"HTTP {r.status}"
                return r.status, await r.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as err:
            return 0, f"{type(err).__name__}: {err}"[:200]

    async def _push_batches(self, spec: GenerationClusterSpec, pods: Sequence[PodRef],
                            decisions: Decisions, report: TickReport) -> None:
        by_name = {p.name: p for p in pods}
        targets = [(by_name[n], decisions.batches.sizes[n]) for n in decisions.batches.pushes
                   if n in by_name and by_name[n].ip]
        if not targets:
            return
        results = await asyncio.gather(*(self._admin(
            spec, p, "PUT", ADMIN_PATH,
            {"maxBatchSize": size, "maxQueueDelayMs": spec.batching.max_queue_delay_ms})
            for p, size in targets))
        for (pod, size), (status, answer) in zip(targets, results, strict=True):
            if 200 <= status < 300:
                report.pushed[pod.name] = size
            else:
                report.push_failed[pod.name] = str(answer)

    async def _write_status(self, status: dict[str, Any], now: float, report: TickReport,
                            stored: Mapping[str, Any]) -> None:
        sig = status_signature(status)
        if self._status_sig is None and status_signature(as_held(stored, status)) == sig:
            # The first tick after a restart, and the status holds all but live readings: those
            # refresh at their paced turn, a random point of the period (1,000 restarted loops
            # would otherwise rewrite 1,000 statuses at once, then again all together)
            self._status_sig = sig
            self._status_at = now - random.random() * metrics_refresh_seconds(self.fleet())
            return
        if sig == self._status_sig and now - self._status_at < metrics_refresh_seconds(self.fleet()):
            return
        await self.ops.apply_status(self.namespace, self.name, status)
        self._status_sig, self._status_at = sig, now
        report.status_written = True


# --- what the Kopf wiring (kopf_handlers.py) calls -------------------------------------------


def gencluster_workload_pods(name: Any, namespace: Any, uid: Any, labels: Any, status: Any,
                             meta: Any, **_: Any) -> dict[tuple[str, str], PodRef]:
    """Index: workload pods by (namespace, GenerationCluster name), fed by a watch."""
    if meta.get("deletionTimestamp"):
        return {}  # terminating: no longer part of the fleet (an empty result un-indexes it)
    return {(namespace, labels[INSTANCE_LABEL]): pod_ref(name, uid, status)}


def gencluster_workload_replicas(namespace: Any, labels: Any, spec: Any,
                                 **_: Any) -> dict[tuple[str, str], int]:
    """Index: the workload Deployment's spec.replicas by (namespace, GenerationCluster name)."""
    return {(namespace, labels[INSTANCE_LABEL]): int(spec.get("replicas", 1))}


def _one(index: Any, key: tuple[str, str]) -> Iterable[Any]:
    try:
        return list(index.get(key, []))
    except AttributeError:
        return []


async def run_cluster_loop(name: Any, namespace: Any, body: Any, spec: Any, meta: Any, memo: Any,
                           logger: Any, gencluster_workload_pods: Any = None,
                           gencluster_workload_replicas: Any = None, **_: Any) -> None:
    """The daemon: runs for as long as the GenerationCluster exists; Kopf cancels it on
    deletion. memo carries the operator's kube client, scrape session, event recorder and the
    dashboard's board."""
    board = memo.board
    history = board.cluster(namespace, name)
    loop = ClusterLoop(name, namespace, KopfKubeOps(memo.loop_kube, body, memo.events), memo.session,
                       history=history, fleet=lambda: len(board.clusters))
    key = (namespace, name)
    try:
        while True:
            started = time.monotonic()
            interval = 15.0
            try:
                parsed = loop.spec(spec, meta.get("generation"))
                interval = float(parsed.autoscaling.interval_seconds)
                pods = sorted(_one(gencluster_workload_pods, key), key=lambda p: p.name)
                replicas = next(iter(_one(gencluster_workload_replicas, key)), None)
                history.observe_object(body.get("status") or {})
                report = await loop.tick(spec, meta.get("generation"), pods, replicas,
                                         body.get("status") or {})
                observe_tick(namespace, name, report.decisions,
                             ready=sum(1 for p in pods if p.ready),
                             scrape_errors=len(report.failed), pods_reporting=report.scraped,
                             seconds=time.monotonic() - started, finished=time.time(),
                             interval=interval)
                if report.scaled_to is not None and report.decisions is not None:
                    logger.info("scaled %s -> %s: %s", report.decisions.replicas.current,
                                report.scaled_to, report.decisions.replicas.reason)
                if report.push_failed:
                    logger.warning("batch settings not pushed to %s", report.push_failed)
            except ValidationError:
                pass  # the reconcile handler reports invalid specs; nothing to control
            except asyncio.CancelledError:
                raise
            except Exception as err:  # one bad tick must not end the loop
                logger.warning("control loop tick failed: %s: %s", type(err).__name__, err)
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))
    finally:  # deleted (or the operator stops): its dashboard history and series go with it
        board.forget(namespace, name)
        forget_cluster(namespace, name)
