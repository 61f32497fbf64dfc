"""One control interval, all decisions together: the single function the operator's daemon and
the simulator both call, so what the benchmarks measure is what runs in the cluster.

decide(spec, view, current replicas, state, now) -> (decisions, new state). The decisions carry
the replica count, per-pod batch sizes, alert transitions, the Events to post (after the events
policy) and the status fields the control loop owns (server-side applied by its own manager).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..api.spec import GenerationClusterSpec
from .alerts import AlertDecision, AlertState, decide_alerts
from .batching import BatchDecision, BatchState, decide_batches
from .events import EventIntent, EventState, admit
from .replicas import ReplicaDecision, ReplicaState, decide_replicas
from .window import WindowView

ALERTING = "Alerting"
METRICS_AVAILABLE = "MetricsAvailable"
MESSAGE_LIMIT = 1000


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str
    message: str
    since: float


@dataclass(frozen=True, slots=True)
class LastScale:
    time: float
    from_: int
    to: int
    reason: str


@dataclass(frozen=True, slots=True)
class ControlState:
    """Everything one cluster's loop remembers between intervals (besides the metric window)."""

    replicas: ReplicaState = field(default_factory=ReplicaState)
    batches: BatchState = field(default_factory=BatchState)
    alerts: AlertState = field(default_factory=AlertState)
    events: EventState = field(default_factory=EventState)
    conditions: tuple[Condition, ...] = ()
    last_scale: LastScale | None = None
    metrics_missing_since: float | None = None


@dataclass(frozen=True, slots=True)
class Decisions:
    replicas: ReplicaDecision
    batches: BatchDecision
    alerts: AlertDecision
    events: tuple[EventIntent, ...]
    status: dict[str, Any]


def _cut(s: str) -> str:
    return s if len(s) <= MESSAGE_LIMIT else s[: MESSAGE_LIMIT - 3] + "..."


def _int(x: float | None) -> int | None:
    return None if x is None else round(x)


def _condition(old: tuple[Condition, ...], type_: str, status: str, reason: str, message: str,
               now: float) -> Condition:
    prev = next((c for c in old if c.type == type_), None)
    since = prev.since if prev is not None and prev.status == status else now
    return Condition(type_, status, reason, _cut(message), since)


def decide(spec: GenerationClusterSpec, view: WindowView, current: int, state: ControlState,
           now: float, generation: int | None = None) -> tuple[Decisions, ControlState]:
    """All of one interval's decisions for one GenerationCluster."""
    a = spec.autoscaling
    replicas, rstate = decide_replicas(spec, view, current, state.replicas, now)
    if not a.enabled:
        replicas = ReplicaDecision(current, current, "autoscaling disabled", replicas.proposals)
        rstate = state.replicas
    batches, bstate = decide_batches(spec.batching, view, state.batches, now)
    if not a.enabled:
        batches = replace(batches, changes=(), pushes=(), default_changed=False)
        bstate = state.batches
    alerts, astate = decide_alerts(spec, view, state.alerts, now)

    intents: list[EventIntent] = []
    last_scale = state.last_scale
    if replicas.desired != replicas.current:
        up = replicas.desired > replicas.current
        intents.append(EventIntent("Normal", "ScaledUp" if up else "ScaledDown", _cut(
            f"{replicas.current} -> {replicas.desired} replicas: {replicas.reason}")))
        last_scale = LastScale(now, replicas.current, replicas.desired, _cut(replicas.reason))
    if batches.default_changed and state.batches.default is not None:
        moves = "; ".join(f"{c.pod} {c.old}->{c.new} ({c.reason})" for c in batches.changes)
        intents.append(EventIntent("Normal", "BatchSizeChanged", _cut(
            f"batch size {state.batches.default} -> {batches.default}"
            + (f": {moves}" if moves else ""))))
    for t in alerts.transitions:
        detail = f"value {_num(t.value)}, threshold {_num(t.threshold)}"
        if t.state == "firing":
            intents.append(EventIntent("Warning", "AlertFiring", _cut(
                f"{t.name} ({t.severity}): {t.message or detail}; {detail}")))
        else:
            intents.append(EventIntent("Normal", "AlertResolved", _cut(
                f"{t.name} resolved; {detail}")))
    events, estate = admit(intents, state.events, now)

    missing_since = state.metrics_missing_since
    if view.pods_reporting > 0 or view.pods_known == 0:
        missing_since = None
    elif missing_since is None:
        missing_since = now
    degraded_after = max(60.0, 4.0 * a.interval_seconds)
    if view.pods_known == 0:
        metrics_cond = _condition(state.conditions, METRICS_AVAILABLE, "Unknown", "NoPods",
                                  "no workload pods", now)
    elif missing_since is not None and now - missing_since >= degraded_after:
        metrics_cond = _condition(
            state.conditions, METRICS_AVAILABLE, "False", "MetricsMissing",
            f"no workload pod has reported metrics for {now - missing_since:.0f}s; scale-down "
            f"is suspended", now)
    else:
        metrics_cond = _condition(state.conditions, METRICS_AVAILABLE, "True", "PodsReporting",
                                  f"{view.pods_reporting}/{view.pods_known} pods reporting", now)
    if alerts.active:
        names = ", ".join(f"{x.name} ({x.severity})" for x in alerts.active)
        alert_cond = _condition(state.conditions, ALERTING, "True", "AlertsFiring", names, now)
    else:
        alert_cond = _condition(state.conditions, ALERTING, "False", "NoAlerts",
                                "no alert is firing", now)
    conditions = (alert_cond, metrics_cond)

    metrics = {k: v for k, v in {
        "p95Ms": _int(view.p95_ms), "gpuMemoryPercent": _int(view.gpu_memory_percent),
        "queueDepth": _int(view.queue_depth), "requestsPerSecond": _int(view.rps),
        "errorRatePermille": _int(view.error_rate_permille),
        "cacheHitPercent": _int(view.cache_hit_percent), "podsReporting": view.pods_reporting,
    }.items() if v is not None}
    status: dict[str, Any] = {
        "metrics": metrics,
        "alerts": [{k: v for k, v in {
            "name": x.name, "severity": x.severity, "value": _int(x.value),
            "threshold": _int(x.threshold), "since": rfc3339(x.since),
            "message": _cut(x.message)}.items() if v is not None} for x in alerts.active],
        "alertCount": len(alerts.active),
        "batchSize": batches.default,
        "desiredReplicas": replicas.desired,
        "conditions": [{"type": c.type, "status": c.status, "reason": c.reason,
                        "message": c.message, "lastTransitionTime": rfc3339(c.since),
                        **({"observedGeneration": generation} if generation is not None else {})}
                       for c in conditions],
    }
    if last_scale is not None:
        status["lastScale"] = {"time": rfc3339(last_scale.time), "from": last_scale.from_,
                               "to": last_scale.to, "reason": last_scale.reason}
    new_state = ControlState(rstate, bstate, astate, estate, conditions, last_scale,
                             missing_since)
    return Decisions(replicas, batches, alerts, events, status), new_state


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.2f}"
