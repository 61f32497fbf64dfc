"""Builders for the control tests: specs, pod samples and views, without a cluster."""

from __future__ import annotations

import copy
import math
from typing import Any

from gencluster.api.spec import GenerationClusterSpec, parse_spec
from gencluster.control import samples as m
from gencluster.control.samples import HistogramSample, PodRef, PodSample
from gencluster.control.window import ClusterPoint, PodView, WindowView

BOUNDS = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, math.inf)
GIB = 1024.0**3


def spec(**overrides: Any) -> GenerationClusterSpec:
    """The CRD defaults plus nested overrides, e.g. spec(replicas={"max": 10})."""
    raw: dict[str, Any] = {"workload": {"image": "test"}}
    for key, value in overrides.items():
        if isinstance(value, dict):
            merged = copy.deepcopy(raw.get(key, {}))
            merged.update(value)
            raw[key] = merged
        else:
            raw[key] = value
    return parse_spec(raw)


def hist(latencies: list[float], bounds: tuple[float, ...] = BOUNDS) -> HistogramSample:
    buckets = tuple((le, float(sum(1 for x in latencies if x <= le))) for le in bounds)
    return HistogramSample(buckets, float(len(latencies)), float(sum(latencies)))


def sample(t: float, pod: str = "p1", uid: str = "u1", *, latencies: list[float] | None = None,
           codes: dict[str, float] | None = None, queue: float | None = 0.0,
           inflight: float | None = 0.0, batch: float | None = 4.0,
           mem_percent: float | None = 50.0, oom: float = 0.0,
           cache: dict[tuple[str, str], float] | None = None,
           batches: list[float] | None = None) -> PodSample:
    """A cumulative scrape. latencies: every request the pod ever completed (seconds)."""
    lat = latencies or []
    counters: dict[m.SeriesKey, float] = {
        (m.REQUESTS_TOTAL, (("code", c),)): v for c, v in (codes or {"200": len(lat)}).items()}
    counters[(m.OOM_TOTAL, ())] = oom
    for (tier, result), v in (cache or {}).items():
        counters[(m.CACHE_REQUESTS, (("result", result), ("tier", tier)))] = v
    gauges: dict[m.SeriesKey, float] = {}
    if queue is not None:
        gauges[(m.QUEUE_DEPTH, ())] = queue
    if inflight is not None:
        gauges[(m.INFLIGHT, ())] = inflight
    if batch is not None:
        gauges[(m.BATCH_SIZE, ())] = batch
    if mem_percent is not None:
        dev = (("device", "cuda:0"),)
        gauges[(m.GPU_MEMORY_USED, dev)] = 16 * GIB * mem_percent / 100.0
        gauges[(m.GPU_MEMORY_TOTAL, dev)] = 16 * GIB
    hists = {(m.REQUEST_DURATION, (("outcome", "ok"),)): hist(lat)}
    if batches is not None:
        hists[(m.BATCH_SIZE_OBSERVED, ())] = hist(batches, (1, 2, 4, 8, 16, 32, math.inf))
    return PodSample(t, pod, uid, counters, gauges, hists)


def ref(name: str = "p1", uid: str = "u1", ready: bool = True) -> PodRef:
    return PodRef(name, uid, "127.0.0.1", ready)


def pod_view(name: str = "p1", *, uid: str = "u1", ready: bool = True, fresh: bool = True,
             p95_ms: float | None = None, p95_last_ms: float | None = None,
             completed_last: float = 0.0, rps: float | None = None,
             arrival_rate: float | None = None, queue: float | None = 0.0,
             inflight: float | None = 0.0, batch: float | None = 4.0,
             fill: float | None = None, mem: float | None = 50.0, new_ooms: float = 0.0,
             floor: tuple[tuple[float, float], ...] = ()) -> PodView:
    if not fresh:  # as the window reports a stale pod: no values
        p95_ms = p95_last_ms = rps = arrival_rate = queue = inflight = batch = fill = mem = None
    return PodView(name, uid, ready, fresh, 0.0 if fresh else 999.0, p95_ms, p95_last_ms,
                   completed_last, rps, arrival_rate, queue, inflight, batch, fill, mem,
                   new_ooms, floor)


def view(pods: list[PodView], now: float = 1000.0, *, p95_ms: float | None = None,
         rps: float | None = None, arrival_rate: float | None = None,
         error_rate: float | None = None, cache_hit: float | None = None,
         history: tuple[ClusterPoint, ...] = (),
         service: tuple[tuple[float, float], ...] = ()) -> WindowView:
    fresh = [p for p in pods if p.fresh]
    mems = [p.gpu_memory_percent for p in fresh if p.gpu_memory_percent is not None]
    queues = [p.queue_depth for p in fresh if p.queue_depth is not None]
    return WindowView(
        now=now, pods={p.name: p for p in pods}, p95_ms=p95_ms,
        gpu_memory_percent=max(mems) if mems else None,
        queue_depth=sum(queues) if queues else None, inflight=None, rps=rps,
        arrival_rate=arrival_rate, error_rate_permille=error_rate,
        cache_hit_percent=cache_hit, oom_per_minute=0.0 if fresh else None,
        pods_reporting=len(fresh), pods_known=len(pods), restarts=0, history=history,
        last_fresh=now if fresh else None, service=service)
