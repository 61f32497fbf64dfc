"""One control interval, all decisions together: the single function the operator's daemon and
the simulator both call, so what the benchmarks measure is what runs in the cluster.

decide(spec, view, current replicas, state, now) -> (decisions, new state). The decisions carry
the replica count, per-pod batch sizes, alert transitions, the Events to post (after the events
policy) and the status fields the control loop owns (server-side applied by its own manager).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..api.conditions import Condition, ConditionStatus, ConditionUpdate, carry
from ..api.spec import GenerationClusterSpec
from .alerts import AlertDecision, AlertState, decide_alerts
from .batching import BatchDecision, BatchState, decide_batches
from .events import EventIntent, EventState, admit
from .replicas import ReplicaDecision, ReplicaState, decide_replicas
from .scheduling import hold_scale_up, transition_events
from .window import WindowView

ALERTING = "Alerting"
METRICS_AVAILABLE = "MetricsAvailable"
CUSTOM_METRICS_AVAILABLE = "CustomMetricsAvailable"
MESSAGE_LIMIT = 1000


RFC3339 = "%Y-%m-%dT%H:%M:%SZ"  # the times status holds, whole seconds in UTC


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime(RFC3339)


def epoch(value: Any) -> float | None:
    """rfc3339's inverse; None for what is not such a time."""
    try:
        return datetime.strptime(str(value), RFC3339).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LastScale:
    time: float
    from_: int
    to: int
    reason: str


@dataclass(frozen=True, slots=True)
class Recommendation:
    """Advisory mode: what the loop would do. Kept until the numbers change (so its time and
    reason describe when and why this recommendation began, and status is not rewritten per tick)."""

    since: float
    current: int
    replicas: int
    batch_size: int
    pod_batch_sizes: tuple[tuple[str, int], ...]
    reason: str

    def key(self) -> tuple[int, int, int, tuple[tuple[str, int], ...]]:
        return (self.current, self.replicas, self.batch_size, self.pod_batch_sizes)


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
    recommendation: Recommendation | None = None  # advisory mode only
    scale_up_held: bool = False  # workload pods are unschedulable (control/scheduling.py)


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


LOOP_CONDITIONS = (ALERTING, METRICS_AVAILABLE, CUSTOM_METRICS_AVAILABLE)


def resumed_state(status: Mapping[str, Any], batches: BatchState) -> ControlState:
    """The state a loop starts from when its cluster already has a status (the operator
    restarted): the loop's conditions with the times they last changed, and the last scale.
    Without them each restart moved every such lastTransitionTime to the restart and dropped
    status.lastScale (the loop's apply no longer held it). What cannot be read is left out."""
    conditions: list[Condition] = []
    for c in status.get("conditions") or []:
        if not isinstance(c, Mapping) or c.get("type") not in LOOP_CONDITIONS:
            continue
        since = epoch(c.get("lastTransitionTime"))
        if since is not None and c.get("status") in ("True", "False", "Unknown"):
            conditions.append(Condition(str(c["type"]), str(c["status"]), str(c.get("reason", "")),
                                        str(c.get("message", "")), since))
    last_scale = None
    last = status.get("lastScale")
    if isinstance(last, Mapping):
        at = epoch(last.get("time"))
        try:
            if at is not None:
                last_scale = LastScale(at, int(last["from"]), int(last["to"]),
                                       str(last.get("reason", "")))
        except (KeyError, TypeError, ValueError):
            last_scale = None
    return ControlState(batches=batches, conditions=tuple(conditions), last_scale=last_scale)


def _condition(old: tuple[Condition, ...], type_: str, status: ConditionStatus, reason: str,
               message: str, now: float) -> Condition:
    return carry(old, ConditionUpdate(type_, status, reason, _cut(message)), now)


def _not_done(rstate: ReplicaState, now: float) -> ReplicaState:
    """The replica state without the change decided at `now` (it was not carried out), so the
    rate limits of the next decisions do not count it."""
    return replace(rstate, scales=tuple(x for x in rstate.scales if x[0] != now))


def _advice(state: ControlState, replicas: ReplicaDecision, default: int,
            pods: tuple[tuple[str, int], ...], now: float,
            batch_reason: str) -> tuple[Recommendation, list[EventIntent]]:
    """The advisory recommendation, and the Would* Events when it changed since the last tick."""
    reason = replicas.reason if replicas.desired != replicas.current else (
        batch_reason or f"{replicas.current} replicas are right: {replicas.reason}")
    rec = Recommendation(now, replicas.current, replicas.desired, default, pods, _cut(reason))
    old = state.recommendation
    if old is not None and old.key() == rec.key():
        return old, []
    intents: list[EventIntent] = []
    if replicas.desired != replicas.current and (
            old is None or (old.current, old.replicas) != (rec.current, rec.replicas)):
        up = replicas.desired > replicas.current
        intents.append(EventIntent("Normal", "WouldScaleUp" if up else "WouldScaleDown", _cut(
            f"advisory: would scale {replicas.current} -> {replicas.desired} replicas: "
            f"{replicas.reason}")))
    if (pods or default != state.batches.default) and (
            old is None or (old.batch_size, old.pod_batch_sizes) != (default, pods)):
        moves = "; ".join(f"{p} -> {n}" for p, n in pods)
        intents.append(EventIntent("Normal", "WouldChangeBatchSize", _cut(
            f"advisory: would set batch size {default} for new pods"
            + (f" (now {state.batches.default})" if state.batches.default is not None else "")
            + (f"; pods: {moves}" if moves else "") + (f": {batch_reason}" if batch_reason else ""))))
    return rec, intents


def custom_condition(view: WindowView, old: tuple[Condition, ...],
                     now: float) -> tuple[Condition, ...]:
    """CustomMetricsAvailable, when the spec names custom series: False (SeriesMissing) while
    some named series has never been scraped from any pod."""
    if not view.custom:
        return ()
    missing = [k for k, v in view.custom.items() if not v.seen]
    if view.pods_reporting == 0 and missing:
        return (_condition(old, CUSTOM_METRICS_AVAILABLE, "Unknown", "NoPodsReporting",
                           "no pod has reported metrics yet", now),)
    if missing:
        return (_condition(old, CUSTOM_METRICS_AVAILABLE, "False", "SeriesMissing",
                           "no pod has exposed: " + ", ".join(missing)
                           + " (check the name and label matchers; custom metrics are read "
                             "from the pods' /metrics)", now),)
    return (_condition(old, CUSTOM_METRICS_AVAILABLE, "True", "SeriesFound",
                       "found: " + ", ".join(view.custom), now),)


def decide(spec: GenerationClusterSpec, view: WindowView, current: int, state: ControlState,
           now: float, generation: int | None = None,
           unschedulable: Mapping[str, str] | None = None) -> tuple[Decisions, ControlState]:
    """All of one interval's decisions for one GenerationCluster.

    unschedulable: workload pods the scheduler cannot place (name -> its message); while there
    are any the replica count does not grow (control/scheduling.py).
    autoscaling.mode advisory: everything is decided as in auto, then reported (status
    recommendation, Would* Events) instead of done: the decisions returned change nothing, and
    the state does not remember changes that did not happen.
    """
    a = spec.autoscaling
    advisory = a.enabled and a.mode == "advisory"
    replicas, rstate = decide_replicas(spec, view, current, state.replicas, now)
    if not a.enabled:
        replicas = ReplicaDecision(current, current, "autoscaling disabled", replicas.proposals)
        rstate = state.replicas
    hold = hold_scale_up(replicas, unschedulable or {})
    if hold.clamped:
        replicas, rstate = hold.decision, _not_done(rstate, now)
    batches, bstate = decide_batches(spec.batching, view, state.batches, now)
    if not a.enabled:
        batches = replace(batches, changes=(), pushes=(), default_changed=False)
        bstate = state.batches
    alerts, astate = decide_alerts(spec, view, state.alerts, now)

    intents: list[EventIntent] = []
    if a.enabled:
        intents += transition_events(state.scale_up_held, hold)
    recommendation: Recommendation | None = None
    if advisory:
        pod_sizes = tuple(sorted(
            (n, size) for n, size in batches.sizes.items()
            if (pv := view.pods.get(n)) is not None and pv.fresh and pv.batch_size is not None
            and int(pv.batch_size) != size))
        batch_reason = "; ".join(f"{c.pod} {c.old}->{c.new} ({c.reason})" for c in batches.changes)
        recommendation, advice = _advice(state, replicas, batches.default, pod_sizes, now,
                                         batch_reason)
        intents += advice
        replicas = ReplicaDecision(current, current, f"advisory: {replicas.reason}",
                                   replicas.proposals)
        rstate = _not_done(rstate, now)
        kept = state.batches.default if state.batches.default is not None else batches.default
        batches = replace(batches, changes=(), pushes=(), default=kept, default_changed=False)
        # Sizes come from what the pods really run next time, not from sizes never pushed.
        bstate = replace(bstate, sizes={}, default=kept)
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
    conditions = (alert_cond, metrics_cond, *custom_condition(view, state.conditions, now))

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
    if recommendation is not None:
        status["recommendation"] = {
            "time": rfc3339(recommendation.since), "currentReplicas": recommendation.current,
            "replicas": recommendation.replicas, "batchSize": recommendation.batch_size,
            "podBatchSizes": [{"pod": p, "batchSize": n}
                              for p, n in recommendation.pod_batch_sizes],
            "reason": recommendation.reason}
    new_state = ControlState(rstate, bstate, astate, estate, conditions, last_scale,
                             missing_since, recommendation=recommendation,
                             scale_up_held=hold.held)
    return Decisions(replicas, batches, alerts, events, status), new_state


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.2f}"
