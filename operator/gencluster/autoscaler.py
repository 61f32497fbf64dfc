"""The control loop's Kopf edge: one daemon per GenerationCluster.

Every spec.autoscaling.intervalSeconds: take the cluster's workload pods (from a watch-fed Kopf
index, not a LIST per loop), scrape them (or query Prometheus), update the in-memory window, call
the pure decisions (gencluster.control.cycle.decide), then act:
- scale the `<name>-workload` Deployment through its scale subresource (autoscaling.enabled only);
- PUT each pod's new batch setting to http://<podIP>:<port>/admin/batching (bearer token from
  Secret `<name>-admin`, key `token`) and persist the size new pods start with in ConfigMap
  `<name>-runtime`, key batching.json (server-side apply, field manager gencluster-control);
- post the Events the events policy admits (ScaledUp, ScaledDown, BatchSizeChanged,
  AlertFiring, AlertResolved);
- server-side apply the status fields the loop owns (metrics, lastScale, alerts, alertCount,
  batchSize, desiredReplicas, conditions Alerting and MetricsAvailable) with field manager
  gencluster-control, on the status subresource. Metrics alone are rewritten at most every
  STATUS_METRICS_SECONDS; anything else that changes is written at once.

Each cluster has its own daemon, scraper semaphore and timeouts, so one cluster's slow or dead
pods never delay another's loop. A failing tick is logged and the next one runs on schedule.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import kopf
from pydantic import ValidationError

from . import GROUP, KIND, PLURAL, VERSION
from .api.spec import GenerationClusterSpec, parse_spec
from .control.batching import BatchState
from .control.cycle import ControlState, Decisions, decide
from .control.events import EventIntent
from .control.samples import PodRef, PodSample
from .control.window import Window, WindowConfig
from .metrics_source.prometheus import PrometheusSource
from .metrics_source.scrape import Scraper, new_session
from .render.children import persisted_batch_size
from .render.names import MANAGED_BY, admin_secret_name, runtime_configmap_name, workload_name
from .render.workload import ADMIN_TOKEN_KEY, BATCHING_KEY, batching_document

FIELD_MANAGER = "gencluster-control"
API_VERSION = f"{GROUP}/{VERSION}"
INSTANCE = "app.kubernetes.io/instance"
COMPONENT = "app.kubernetes.io/component"
STATUS_METRICS_SECONDS = 10.0
ADMIN_PATH = "/admin/batching"

log = logging.getLogger(__name__)


class KubeOps(Protocol):
    """The API calls the loop makes; KopfKubeOps is the real one, tests bring their own."""

    async def scale(self, namespace: str, deployment: str, replicas: int) -> None: ...

    async def read_token(self, namespace: str, secret: str) -> str | None: ...

    async def read_batching(self, namespace: str, configmap: str) -> str | None: ...

    async def persist_batching(self, namespace: str, configmap: str, document: str) -> None: ...

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None: ...

    def emit(self, event: EventIntent) -> None: ...


class KopfKubeOps:
    """KubeOps over the lead's gencluster.kube.client.Kube and kopf.event."""

    def __init__(self, kube: Any, body: Any) -> None:
        self.kube = kube
        self.body = body

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
                               "data": {BATCHING_KEY: document}}, FIELD_MANAGER)

    async def apply_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        await self.kube.apply_status(API_VERSION, KIND, name, namespace, status, FIELD_MANAGER)

    def emit(self, event: EventIntent) -> None:
        kopf.event(self.body, type=event.type, reason=event.reason, message=event.message)


def pod_ref(name: str, uid: str, status: Mapping[str, Any]) -> PodRef:
    conds = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)
    return PodRef(name, uid, status.get("podIP"), ready and bool(status.get("podIP")))


def persisted_size(document: str | None) -> int | None:
    """The persisted batch size the loop starts from; a non-positive one counts as absent."""
    value = persisted_batch_size(document)
    return value if value is not None and value > 0 else None


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


class ClusterLoop:
    """One GenerationCluster's loop state and its tick; no Kopf in here, so tests drive it."""

    def __init__(self, name: str, namespace: str, ops: KubeOps, session: aiohttp.ClientSession,
                 clock: Callable[[], float] = time.time) -> None:
        self.name, self.namespace, self.ops, self.session, self.clock = (
            name, namespace, ops, session, clock)
        self.window: Window | None = None
        self.state: ControlState | None = None
        self.scraper = Scraper(session, clock=clock)
        self.token: str | None = None
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
            try:
                out = await PrometheusSource(self.session, src.prometheus_url).fetch(
                    self.namespace, pods, timeout)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as err:
                report.failed["prometheus"] = f"{type(err).__name__}: {err}"[:200]
                return []
            report.scraped = len(out)
            return out
        results = await self.scraper.scrape(pods, spec.workload.port, timeout)
        report.failed.update({r.pod: r.error for r in results if r.error})
        report.scraped = sum(1 for r in results if r.sample is not None)
        return [r.sample for r in results if r.sample is not None]

    async def tick(self, raw_spec: Mapping[str, Any], generation: int | None,
                   pods: Sequence[PodRef], current: int | None) -> TickReport:
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
            self.state = ControlState(batches=BatchState(default=persisted_size(doc)))
        samples = await self._samples(spec, pods, report)
        now = self.clock()
        view = self.window.update(now, samples, pods)
        replicas = current
        decisions, self.state = decide(spec, view, replicas, self.state, now, generation)
        report.decisions = decisions
        if spec.autoscaling.enabled and decisions.replicas.desired != current:
            await self.ops.scale(self.namespace, workload_name(self.name),
                                 decisions.replicas.desired)
            report.scaled_to = decisions.replicas.desired
        if spec.autoscaling.enabled:
            await self._push_batches(spec, pods, decisions, report)
            if decisions.batches.default_changed:
                await self.ops.persist_batching(
                    self.namespace, runtime_configmap_name(self.name),
                    batching_document(decisions.batches.default,
                                      spec.batching.max_queue_delay_ms))
        for event in decisions.events:
            self.ops.emit(event)
        await self._write_status(decisions.status, now, report)
        return report

    async def _push_batches(self, spec: GenerationClusterSpec, pods: Sequence[PodRef],
                            decisions: Decisions, report: TickReport) -> None:
        by_name = {p.name: p for p in pods}
        targets = [(by_name[n], decisions.batches.sizes[n]) for n in decisions.batches.pushes
                   if n in by_name and by_name[n].ip]
        if not targets:
            return
        if self.token is None:
            self.token = await self.ops.read_token(self.namespace, admin_secret_name(self.name))
        timeout = aiohttp.ClientTimeout(total=spec.autoscaling.metrics.scrape_timeout_ms / 1000.0)
        results = await asyncio.gather(*(self._push_one(p, size, spec, timeout)
                                         for p, size in targets))
        for (pod, size), err in zip(targets, results, strict=True):
            if err is None:
                report.pushed[pod.name] = size
            else:
                report.push_failed[pod.name] = err
                if err.startswith("HTTP 401"):
                    self.token = None  # rotated: read it again next time

    async def _push_one(self, pod: PodRef, size: int, spec: GenerationClusterSpec,
                        timeout: aiohttp.ClientTimeout) -> str | None:
        url = f"http://{pod.ip}:{spec.workload.port}{ADMIN_PATH}"
        body = {"maxBatchSize": size, "maxQueueDelayMs": spec.batching.max_queue_delay_ms}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            async with self.session.put(url, json=body, headers=headers, timeout=timeout) as r:
                if r.status >= 300:
                    return f"HTTP {r.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as err:
            return f"{type(err).__name__}: {err}"[:200]
        return None

    async def _write_status(self, status: dict[str, Any], now: float, report: TickReport) -> None:
        rest = {k: v for k, v in status.items() if k != "metrics"}
        sig = json.dumps(rest, sort_keys=True)
        if sig == self._status_sig and now - self._status_at < STATUS_METRICS_SECONDS:
            return
        await self.ops.apply_status(self.namespace, self.name, status)
        self._status_sig, self._status_at = sig, now
        report.status_written = True


# --- Kopf wiring ------------------------------------------------------------------------------

WORKLOAD_LABELS: dict[str, Any] = {COMPONENT: "workload", INSTANCE: kopf.PRESENT,
                                   "app.kubernetes.io/managed-by": MANAGED_BY}

@kopf.index("pods", labels=WORKLOAD_LABELS)
def gencluster_workload_pods(name: Any, namespace: Any, uid: Any, labels: Any, status: Any,
                             meta: Any, **_: Any) -> dict[tuple[str, str], PodRef]:
    """Workload pods by (namespace, GenerationCluster name), fed by a watch."""
    if meta.get("deletionTimestamp"):
        return {}  # terminating: no longer part of the fleet (an empty result un-indexes it)
    return {(namespace, labels[INSTANCE]): pod_ref(name, uid, status)}


@kopf.index("deployments", labels=WORKLOAD_LABELS)
def gencluster_workload_replicas(namespace: Any, labels: Any, spec: Any,
                                 **_: Any) -> dict[tuple[str, str], int]:
    """The workload Deployment's spec.replicas by (namespace, GenerationCluster name)."""
    return {(namespace, labels[INSTANCE]): int(spec.get("replicas", 1))}


def _one(index: Any, key: tuple[str, str]) -> Iterable[Any]:
    try:
        return list(index.get(key, []))
    except AttributeError:
        return []


_SESSION: aiohttp.ClientSession | None = None


def _session() -> aiohttp.ClientSession:
    global _SESSION
    if _SESSION is None or _SESSION.closed:
        _SESSION = new_session()
    return _SESSION


@kopf.on.cleanup()
async def close_session(**_: Any) -> None:
    """Close the scrape session when the operator stops."""
    global _SESSION
    if _SESSION is not None and not _SESSION.closed:
        await _SESSION.close()
    _SESSION = None


@kopf.daemon(GROUP, VERSION, PLURAL, id="autoscaler", cancellation_timeout=10.0)
async def autoscaler(name: Any, namespace: Any, body: Any, spec: Any, meta: Any, memo: Any,
                     logger: Any, gencluster_workload_pods: Any = None,
                     gencluster_workload_replicas: Any = None, **_: Any) -> None:
    """Runs for as long as the GenerationCluster exists; Kopf cancels it on deletion."""
    loop = ClusterLoop(name, namespace, KopfKubeOps(memo.kube, body), _session())
    key = (namespace, name)
    while True:
        started = time.monotonic()
        interval = 15.0
        try:
            parsed = loop.spec(spec, meta.get("generation"))
            interval = float(parsed.autoscaling.interval_seconds)
            pods = sorted(_one(gencluster_workload_pods, key), key=lambda p: p.name)
            replicas = next(iter(_one(gencluster_workload_replicas, key)), None)
            report = await loop.tick(spec, meta.get("generation"), pods, replicas)
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
