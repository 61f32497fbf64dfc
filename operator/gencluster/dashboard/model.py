"""What the dashboard shows, as pure data: bounded per-cluster history and its JSON views.

The control loop already holds everything (the metric window's view, this interval's scrapes,
the decisions); `ClusterHistory.record` keeps one Point per tick in a ring of HISTORY_SECONDS at
1 s resolution (two ticks in the same second: the later one wins), the last MAX_EVENTS Events,
and the last decision explained. Nothing here does I/O or reads a clock: `now` comes from the
caller. Memory per cluster is bounded: at most HISTORY_SECONDS points, each with at most
MAX_PODS pods, and MAX_EVENTS events.

Views:
- summary(): one row of the cluster list (/, /api/clusters);
- snapshot(): the row plus the whole history as columns (uPlot's data layout: one array of times,
  one array per series, None where a series has no value), events and the decision;
- update(): the row plus the newest point only (what /ws/metrics pushes every second).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..control import samples as m
from ..control.cycle import Decisions
from ..control.replicas import Proposal, ReplicaDecision
from ..control.samples import PodRef, PodSample, SeriesKey
from ..control.window import WindowView, _increase, valid
from ..render.names import MIB

HISTORY_SECONDS = 300
MAX_PODS = 16  # per-pod series charted per cluster (first by name); the rest are counted
MAX_EVENTS = 100
UPDATE_EVENTS = 20  # events in each per-second update
TIERS = ("l1", "redis")

# Reason classes of a replica decision: a bounded label set for the Prometheus metrics. The
# guards, else the winning proposal's metric (a name from control/replicas.py, so bounded too).
GUARDS = ("Disabled", "NoMetrics", "MetricsMissing", "Bounds", "Stabilization", "RateLimit")
REASON_CLASSES = (*GUARDS, "latencyP95Ms", "gpuMemoryPercent", "queueDepthPerReplica",
                  "predictive", "capacity", "Other")


@dataclass(frozen=True, slots=True)
class PodPoint:
    name: str
    batch: int | None
    used: int | None  # bytes, all devices
    reserved: int | None
    total: int | None


@dataclass(frozen=True, slots=True)
class Point:
    """One tick of one cluster, as the charts show it. None means "no data"."""

    t: float
    rps: float | None
    p50: float | None  # ms, over the loop's latency window
    p95: float | None
    p99: float | None
    slo: float | None  # ms: the latency target the loop scales to
    queue: float | None
    ready: int
    desired: int
    current: int
    recommendation: int | None  # advisory mode (status.recommendation) when present
    errors: float | None  # 5xx per second
    shed: float | None  # 429 (queue full) per second
    gpu_memory: float | None  # highest pod, %
    cache: tuple[float | None, ...]  # hit ratio % per tier in TIERS
    pods: tuple[PodPoint, ...]


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    t: float
    type: str
    reason: str
    message: str


def _r(x: float | None, digits: int = 1) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return round(x, digits)


def classify(decision: ReplicaDecision) -> str:
    """The reason class of a replica decision (one of REASON_CLASSES)."""
    why = decision.reason
    if why.startswith("autoscaling disabled"):
        return "Disabled"
    if why.startswith("no fresh metrics"):
        return "NoMetrics"
    if "unavailable: not scaling down" in why:
        return "MetricsMissing"
    if why.startswith("outside replicas"):
        return "Bounds"
    if "limited to" in why:
        return "RateLimit"
    if " held" in why:
        return "Stabilization"
    w = winner(decision.proposals)
    return w.metric if w is not None else "Other"


def winner(proposals: Sequence[Proposal]) -> Proposal | None:
    """The proposal the replica decision took (the largest; the first of equals), as
    control/replicas.py picks it: the predictive one only lifts afterwards, it never wins."""
    return max((p for p in proposals if p.replicas is not None and p.metric != "predictive"),
               key=lambda p: p.replicas or 0, default=None)


def explain(decisions: Decisions) -> dict[str, Any]:
    """The decision, for people: each target's proposal, which one won, and why."""
    rep = decisions.replicas
    win = winner(rep.proposals)
    b = decisions.batches
    return {
        "current": rep.current, "desired": rep.desired, "direction": rep.direction or "hold",
        "reason": rep.reason, "reasonClass": classify(rep),
        "proposals": [{"metric": p.metric, "value": _r(p.value, 2), "target": _r(p.target, 2),
                       "ratio": _r(p.value / p.target, 3) if p.value is not None and p.target
                       else None,
                       "replicas": p.replicas, "note": p.note, "winner": p is win}
                      for p in rep.proposals],
        "batch": {"default": b.default,
                  "changes": [{"pod": c.pod, "from": c.old, "to": c.new, "reason": c.reason}
                              for c in b.changes]},
    }


def pod_memory(gauges: Mapping[SeriesKey, float]) -> tuple[int | None, int | None, int | None]:
    """(used, reserved, total) bytes of one pod, summed over its devices (contract or dcgm)."""
    sums: dict[str, float] = {}
    for (name, _), v in gauges.items():
        if valid(v) and name in (m.GPU_MEMORY_USED, m.GPU_MEMORY_RESERVED, m.GPU_MEMORY_TOTAL,
                                 m.DCGM_FB_USED, m.DCGM_FB_FREE):
            sums[name] = sums.get(name, 0.0) + v
    if m.GPU_MEMORY_USED in sums or m.GPU_MEMORY_TOTAL in sums:
        got = (sums.get(m.GPU_MEMORY_USED), sums.get(m.GPU_MEMORY_RESERVED),
               sums.get(m.GPU_MEMORY_TOTAL))
        return tuple(None if x is None else round(x) for x in got)  # type: ignore[return-value]
    if m.DCGM_FB_USED in sums:
        used = sums[m.DCGM_FB_USED] * MIB
        free = sums.get(m.DCGM_FB_FREE)
        return round(used), None, None if free is None else round(used + free * MIB)
    return None, None, None


@dataclass(slots=True)
class _Counts:
    """Cumulative request and cache counters of one pod at its last scrape."""

    uid: str
    t: float
    values: dict[SeriesKey, float]


@dataclass(slots=True)
class _Rates:
    errors: float = 0.0
    shed: float = 0.0
    hits: dict[str, float] = field(default_factory=dict)
    lookups: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0  # sum over pods of the scrape interval (for per-second rates)
    pods: int = 0


class ClusterHistory:
    """One GenerationCluster's dashboard state: bounded, fed once per control-loop tick."""

    def __init__(self, namespace: str, name: str, seconds: int = HISTORY_SECONDS,
                 max_pods: int = MAX_PODS, max_events: int = MAX_EVENTS) -> None:
        self.namespace, self.name = namespace, name
        self.seconds, self.max_pods = seconds, max_pods
        self.points: deque[Point] = deque(maxlen=seconds)
        self.events: deque[TimelineEvent] = deque(maxlen=max_events)
        self.decision: dict[str, Any] | None = None
        self.alerts: list[dict[str, Any]] = []
        self.ready: str = "Unknown"  # the Ready condition's status ("True", "False", "Unknown")
        self.ready_reason: str = ""
        self.cost: dict[str, Any] | None = None
        self.object_recommendation: int | None = None
        self.pods_hidden = 0
        self.seq = 0  # bumped per recorded tick (cache key for serialised snapshots)
        self._counts: dict[str, _Counts] = {}

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    # -- feeding -------------------------------------------------------------------------------
    def observe_object(self, status: Mapping[str, Any]) -> None:
        """What the object's status says that the loop does not decide: Ready, recommendation and
        cost (written by other parts of the operator)."""
        for c in status.get("conditions") or []:
            if isinstance(c, Mapping) and c.get("type") == "Ready":
                self.ready = str(c.get("status") or "Unknown")
                self.ready_reason = str(c.get("reason") or "")
        rec = status.get("recommendation")
        self.object_recommendation = _recommended(rec)
        cost = status.get("cost")
        self.cost = dict(cost) if isinstance(cost, Mapping) else self.cost

    def _rates(self, samples: Iterable[PodSample], pods: Sequence[PodRef]) -> _Rates:
        out = _Rates()
        present = {p.name for p in pods}
        for gone in [n for n in self._counts if n not in present]:
            del self._counts[gone]
        for s in samples:
            values = {k: v for k, v in s.counters.items()
                      if k[0] in (m.REQUESTS_TOTAL, m.CACHE_REQUESTS) and valid(v)}
            prev = self._counts.get(s.pod)
            self._counts[s.pod] = _Counts(s.uid, s.timestamp, values)
            if prev is None or prev.uid != s.uid or s.timestamp <= prev.t:
                continue  # first scrape of this pod (or a new pod object): a baseline only
            out.seconds += s.timestamp - prev.t
            out.pods += 1
            for key, v in values.items():
                inc = _increase(v, prev.values.get(key))
                name, labels = key
                if name == m.REQUESTS_TOTAL:
                    code = m.label(labels, "code") or ""
                    if code.startswith("5"):
                        out.errors += inc
                    elif code == "429":
                        out.shed += inc
                else:
                    tier = m.label(labels, "tier") or "l1"
                    out.lookups[tier] = out.lookups.get(tier, 0.0) + inc
                    if m.label(labels, "result") == "hit":
                        out.hits[tier] = out.hits.get(tier, 0.0) + inc
        return out

    def record(self, now: float, view: WindowView, samples: Sequence[PodSample],
               pods: Sequence[PodRef], decisions: Decisions, current: int,
               slo_ms: float | None) -> None:
        """Append this tick. O(pods); never blocks."""
        rates = self._rates(samples, pods)
        dt = rates.seconds / rates.pods if rates.pods else 0.0

        def per_s(x: float) -> float | None:
            return x / dt if dt > 0 else None

        memory = {s.pod: pod_memory(s.gauges) for s in samples}
        names = sorted(view.pods)
        self.pods_hidden = max(0, len(names) - self.max_pods)
        pod_points = []
        for n in names[: self.max_pods]:
            pv = view.pods[n]
            used, reserved, total = memory.get(n, (None, None, None))
            batch = None if pv.batch_size is None else round(pv.batch_size)
            pod_points.append(PodPoint(n, batch, used, reserved, total))
        cache = tuple(100.0 * rates.hits.get(t, 0.0) / rates.lookups[t]
                      if rates.lookups.get(t) else None for t in TIERS)
        rec = _recommended(decisions.status.get("recommendation"))
        if rec is None:
            rec = self.object_recommendation
        point = Point(
            t=now, rps=view.rps, p50=view.p50_ms, p95=view.p95_ms, p99=view.p99_ms, slo=slo_ms,
            queue=view.queue_depth, ready=sum(1 for p in pods if p.ready),
            desired=decisions.replicas.desired, current=current, recommendation=rec,
            errors=per_s(rates.errors), shed=per_s(rates.shed),
            gpu_memory=view.gpu_memory_percent, cache=cache, pods=tuple(pod_points))
        if self.points and math.floor(self.points[-1].t) == math.floor(now):
            self.points[-1] = point  # 1 s resolution: the later tick of the same second wins
        else:
            self.points.append(point)
        while self.points and self.points[0].t <= now - self.seconds:
            self.points.popleft()
        for e in decisions.events:
            self.events.append(TimelineEvent(now, e.type, e.reason, e.message))
        self.decision = explain(decisions)
        self.alerts = list(decisions.status.get("alerts") or [])
        cost = decisions.status.get("cost")
        if isinstance(cost, Mapping):
            self.cost = dict(cost)
        self.seq += 1

    # -- views ---------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        last = self.points[-1] if self.points else None
        return {
            "namespace": self.namespace, "name": self.name, "ready": self.ready,
            "readyReason": self.ready_reason,
            "replicas": {"ready": last.ready if last else None,
                         "desired": last.desired if last else None,
                         "current": last.current if last else None,
                         "recommendation": last.recommendation if last else None},
            "p95Ms": _r(last.p95) if last else None,
            "sloMs": _r(last.slo) if last else None,
            "gpuMemoryPercent": _r(last.gpu_memory) if last else None,
            "alerts": [{"name": a.get("name"), "severity": a.get("severity")}
                       for a in self.alerts],
            "updated": last.t if last else None,
        }

    def point_json(self, p: Point) -> dict[str, Any]:
        return {
            "t": round(p.t, 3), "rps": _r(p.rps, 2), "p50": _r(p.p50), "p95": _r(p.p95),
            "p99": _r(p.p99), "slo": _r(p.slo), "queue": _r(p.queue), "ready": p.ready,
            "desired": p.desired, "current": p.current, "recommendation": p.recommendation,
            "errors": _r(p.errors, 3), "shed": _r(p.shed, 3), "gpuMemory": _r(p.gpu_memory),
            "cache": {t: _r(v) for t, v in zip(TIERS, p.cache, strict=True)},
            "pods": {q.name: {"batch": q.batch, "used": q.used, "reserved": q.reserved,
                              "total": q.total} for q in p.pods},
        }

    def _state(self, events: int | None = None) -> dict[str, Any]:
        shown = list(self.events)[-events:] if events else list(self.events)
        return {"summary": self.summary(), "decision": self.decision, "cost": self.cost,
                "alerts": self.alerts, "podsHidden": self.pods_hidden,
                "events": [{"t": round(e.t, 3), "type": e.type, "reason": e.reason,
                            "message": e.message} for e in shown]}

    def update(self) -> dict[str, Any]:
        """The newest point and the current state (the per-second push; the newest
        UPDATE_EVENTS events, the snapshot has them all)."""
        out = self._state(UPDATE_EVENTS)
        out["point"] = self.point_json(self.points[-1]) if self.points else None
        return out

    def snapshot(self) -> dict[str, Any]:
        """The current state and the whole history, as columns aligned on `t`."""
        pts = list(self.points)
        scalar = ("rps", "p50", "p95", "p99", "slo", "queue", "errors", "shed", "gpu_memory")
        series: dict[str, list[Any]] = {"t": [round(p.t, 3) for p in pts]}
        for f in scalar:
            digits = 3 if f in ("errors", "shed", "rps") else 1
            series[_camel(f)] = [_r(getattr(p, f), digits) for p in pts]
        for f in ("ready", "desired", "current", "recommendation"):
            series[f] = [getattr(p, f) for p in pts]
        for i, tier in enumerate(TIERS):
            series[f"cache_{tier}"] = [_r(p.cache[i]) for p in pts]
        pod_names = sorted({q.name for p in pts for q in p.pods})
        pods: dict[str, dict[str, list[int | None]]] = {
            n: {"batch": [], "used": [], "reserved": [], "total": []} for n in pod_names}
        for p in pts:
            by = {q.name: q for q in p.pods}
            for n in pod_names:
                q = by.get(n)
                cols = pods[n]
                cols["batch"].append(q.batch if q else None)
                cols["used"].append(q.used if q else None)
                cols["reserved"].append(q.reserved if q else None)
                cols["total"].append(q.total if q else None)
        out = self._state()
        out["history"] = {"seconds": self.seconds, "series": series, "pods": pods}
        return out


def _camel(s: str) -> str:
    head, *rest = s.split("_")
    return head + "".join(w.title() for w in rest)


def _recommended(rec: Any) -> int | None:
    """status.recommendation (advisory mode) as a replica count: an int, or {"replicas": n}."""
    if isinstance(rec, Mapping):
        rec = rec.get("replicas", rec.get("desiredReplicas"))
    if isinstance(rec, bool) or not isinstance(rec, int | float) or not math.isfinite(rec):
        return None
    return round(rec)


class Board:
    """Every managed cluster's history, keyed by (namespace, name)."""

    def __init__(self, seconds: int = HISTORY_SECONDS) -> None:
        self.seconds = seconds
        self.clusters: dict[tuple[str, str], ClusterHistory] = {}

    def cluster(self, namespace: str, name: str) -> ClusterHistory:
        key = (namespace, name)
        h = self.clusters.get(key)
        if h is None:
            h = self.clusters[key] = ClusterHistory(namespace, name, self.seconds)
        return h

    def forget(self, namespace: str, name: str) -> None:
        self.clusters.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> ClusterHistory | None:
        return self.clusters.get((namespace, name))

    def ordered(self) -> list[ClusterHistory]:
        return [self.clusters[k] for k in sorted(self.clusters)]

    def summaries(self) -> list[dict[str, Any]]:
        return [h.summary() for h in self.ordered()]
