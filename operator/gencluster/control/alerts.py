"""Alerts: threshold rules with for-duration and hysteresis, anomaly detectors, leak prediction.

Every alert is a small state machine: it FIRES once its condition has held for `forSeconds`, and
RESOLVES only after the value has been back past the threshold by a margin (HYSTERESIS of the
threshold, at least 1 unit) for RESOLVE_SECONDS (or forSeconds, if longer), so a value hovering
at the threshold does not flap. No data (no pod reporting) changes nothing: a firing alert stays
firing and the MetricsAvailable condition says why.

Built-in rules (alerts.builtinRules): GPU memory > 85 % warning and > 95 % critical, p95 over the
batching SLO, error rate > 1 % (errorRatePermille > 10), cache hit ratio < 50 %, queue saturated
(a pod's queue at >= 90 % of workload.queueMax). User rules with a built-in's name replace it.
Anomalies (alerts.anomalyDetection, anomaly.py): change detectors on signals a healthy load change
does not move: a Bernoulli CUSUM on the 5xx share (anomaly-error-rate), a CUSUM on device seconds
per forward pass against the pods' own service curve (anomaly-slowdown), and pods that have
requests queued and complete nothing (pod-stuck). Leak prediction (alerts.predictiveMemory): a line through each pod's GPU
memory floor (the lowest reading per 30 s, which batch activity cannot raise for long) that
reaches MEMORY_FULL (95 %) within MEMORY_HORIZON_S + MEMORY_CONFIRM_S (so a firing alert, which
needed MEMORY_CONFIRM_S to confirm, still gives MEMORY_HORIZON_S of warning).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..api.spec import BUILTIN_METRICS, GenerationClusterSpec
from . import custom
from .anomaly import (
    ERROR_ALT,
    ERROR_H,
    SLOW_H,
    SLOW_K,
    STUCK_S,
    ErrorCusum,
    PodProgress,
    ServiceCusum,
    error_cusum,
    service_cusum,
    stuck_pods,
)
from .forecast import fit_line, seconds_until
from .window import WindowView

Comparison = Literal["gt", "ge", "lt", "le"]
Severity = Literal["warning", "critical"]

HYSTERESIS = 0.05
RESOLVE_SECONDS = 60.0
QUEUE_SATURATED_PERCENT = 90.0
ERROR_RULE = "anomaly-error-rate"
SLOWDOWN_RULE = "anomaly-slowdown"
STUCK_RULE = "pod-stuck"
MEMORY_RULE = "gpu-memory-exhaustion"
MEMORY_HORIZON_S = 600.0  # warn when exhaustion is this close (if the trend holds)
MEMORY_CONFIRM_S = 60.0  # the prediction must hold this long; counted into the horizon
MEMORY_FIT_S = 600.0  # floor points used for the fit
MEMORY_MIN_POINTS = 8
MEMORY_MIN_SPAN_S = 240.0
MEMORY_MIN_R2 = 0.8
MEMORY_FULL = 95.0  # allocations fail before the last few percent (fragmentation, workspace)


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    metric: str
    comparison: Comparison
    threshold: float
    for_seconds: float
    severity: Severity


def builtin_rules(spec: GenerationClusterSpec) -> list[Rule]:
    return [
        Rule("gpu-memory-high", "gpuMemoryPercent", "gt", 85, 60, "warning"),
        Rule("gpu-memory-critical", "gpuMemoryPercent", "gt", 95, 30, "critical"),
        Rule("latency-slo", "latencyP95Ms", "gt", spec.batching.latency_slo_ms, 60, "warning"),
        Rule("error-rate", "errorRatePermille", "gt", 10, 60, "warning"),
        Rule("cache-hit-low", "cacheHitPercent", "lt", 50, 300, "warning"),
        Rule("queue-saturated", "queueFullPercent", "ge", QUEUE_SATURATED_PERCENT, 30, "warning"),
    ]


def rules_for(spec: GenerationClusterSpec) -> list[Rule]:
    out = {r.name: r for r in builtin_rules(spec)} if spec.alerts.builtin_rules else {}
    for u in spec.alerts.rules:
        metric = u.metric if u.metric in BUILTIN_METRICS else custom.key(u.metric, u.aggregation)
        out[u.name] = Rule(u.name, metric, u.comparison, custom.quantity(u.threshold),
                           float(u.for_seconds), u.severity)
    return list(out.values())


def breached(value: float, rule: Rule) -> bool:
    t = rule.threshold
    return {"gt": value > t, "ge": value >= t, "lt": value < t, "le": value <= t}[rule.comparison]


def cleared(value: float, rule: Rule) -> bool:
    """Back past the threshold by the hysteresis margin."""
    margin = max(1.0, HYSTERESIS * abs(rule.threshold))
    if rule.comparison in ("gt", "ge"):
        return value < rule.threshold - margin
    return value > rule.threshold + margin


@dataclass(frozen=True, slots=True)
class Track:
    pending_since: float | None = None
    firing_since: float | None = None
    clear_since: float | None = None
    severity: Severity = "warning"
    value: float | None = None
    threshold: float | None = None
    message: str = ""


@dataclass(frozen=True, slots=True)
class Transition:
    name: str
    state: Literal["firing", "resolved"]
    severity: Severity
    value: float | None
    threshold: float | None
    message: str


@dataclass(frozen=True, slots=True)
class Active:
    name: str
    severity: Severity
    value: float | None
    threshold: float | None
    since: float
    message: str


@dataclass(frozen=True, slots=True)
class AlertState:
    tracks: Mapping[str, Track] = field(default_factory=dict)
    errors: ErrorCusum = field(default_factory=ErrorCusum)
    service: ServiceCusum = field(default_factory=ServiceCusum)


@dataclass(frozen=True, slots=True)
class AlertDecision:
    transitions: tuple[Transition, ...]
    active: tuple[Active, ...]


def step(track: Track, bad: bool | None, good: bool | None, now: float, for_s: float,
         resolve_s: float) -> tuple[Track, Literal["firing", "resolved"] | None]:
    """Advance one alert's state machine. bad/good None: no data, nothing changes."""
    if bad is None or good is None:
        return Track(None, track.firing_since, track.clear_since, track.severity, track.value,
                     track.threshold, track.message), None
    if track.firing_since is None:
        if not bad:
            return Track(severity=track.severity), None
        pending = track.pending_since if track.pending_since is not None else now
        if now - pending >= for_s:
            return Track(None, now, None, track.severity), "firing"
        return Track(pending, None, None, track.severity), None
    if not good:
        return Track(None, track.firing_since, None, track.severity), None
    since = track.clear_since if track.clear_since is not None else now
    if now - since >= resolve_s:
        return Track(severity=track.severity), "resolved"
    return Track(None, track.firing_since, since, track.severity), None


@dataclass(frozen=True, slots=True)
class _Check:
    """One alert's inputs this interval."""

    name: str
    severity: Severity
    bad: bool | None
    good: bool | None
    value: float | None
    threshold: float | None
    for_s: float
    resolve_s: float
    message: str


def queue_full_percent(view: WindowView, queue_max: int) -> float | None:
    qs = [p.queue_depth for p in view.pods.values() if p.queue_depth is not None]
    return 100.0 * max(qs) / queue_max if qs else None


def _rule_checks(spec: GenerationClusterSpec, view: WindowView) -> list[_Check]:
    out = []
    for r in rules_for(spec):
        v = (queue_full_percent(view, spec.workload.queue_max) if r.metric == "queueFullPercent"
             else view.metric(r.metric))
        bad = None if v is None else breached(v, r)
        out.append(_Check(
            r.name, r.severity, bad, None if v is None else cleared(v, r), v, r.threshold,
            r.for_seconds, max(RESOLVE_SECONDS, r.for_seconds),
            "" if v is None else rule_message(r.metric, v, r.comparison, r.threshold, bool(bad))))
    return out


def rule_message(metric: str, value: float, comparison: str, threshold: float,
                 breaching: bool) -> str:
    """The latest reading, true as stated: a firing alert whose reading is back past its
    threshold (but not yet cleared for long enough) says so, rather than "9.66 > 10"."""
    rule = f"{_OPS[comparison]} {_num(threshold)}"
    return f"{metric} {_num(value)} {rule}" if breaching else f"{metric} {_num(value)} (fires at {rule})"


_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 10 or x == int(x) else f"{x:.3g}"


def _anomaly_checks(view: WindowView, state: AlertState,
                    now: float) -> tuple[list[_Check], ErrorCusum, ServiceCusum]:
    """The change detectors' checks, fed with this update's scrapes (anomaly.py)."""
    new = [p for p in view.pods.values() if p.fresh and p.updated]
    errors, share = error_cusum(state.errors, sum(p.errors_step for p in new),
                                sum(p.requests_step for p in new), now)
    service, ratio = service_cusum(state.service, sum(p.batches_step for p in new),
                                   sum(p.items_step for p in new),
                                   sum(p.batch_seconds_step for p in new), now)
    out = []
    if share is None:
        out.append(_Check(ERROR_RULE, "warning", None, None, None, None, 0.0, RESOLVE_SECONDS,
                          ""))
    else:
        out.append(_Check(
            ERROR_RULE, "warning", errors.g > ERROR_H, errors.g == 0.0, 1000.0 * share,
            1000.0 * max(ERROR_ALT, 2.0 * errors.p0), 0.0, RESOLVE_SECONDS,
            f"5xx share {100.0 * share:.1f} % against a usual {100.0 * errors.p0:.2f} % "
            f"(CUSUM {errors.g:.1f} > {ERROR_H:.0f})"))
    if ratio is None:
        out.append(_Check(SLOWDOWN_RULE, "warning", None, None, None, None, 0.0,
                          RESOLVE_SECONDS, ""))
    else:
        out.append(_Check(
            SLOWDOWN_RULE, "warning", service.g > SLOW_H, service.g == 0.0, 100.0 * ratio,
            100.0 * math.exp(SLOW_K), 0.0, RESOLVE_SECONDS,
            f"forward passes take {ratio:.2f}x the pods' usual time at this batch size"))
    progress = [PodProgress(p.name, p.stalled_s, p.rps) for p in view.pods.values() if p.fresh]
    stuck = stuck_pods(progress)
    if progress:
        names = ", ".join(f"{n} ({s:.0f}s" + (f"; peers {r:.1f} req/s)" if r is not None else ")")
                          for n, s, r in stuck)
        out.append(_Check(STUCK_RULE, "warning", bool(stuck), not stuck, float(len(stuck)), 0.0,
                          0.0, RESOLVE_SECONDS,
                          f"{len(stuck)} pod(s) with queued requests completed nothing for "
                          f">= {STUCK_S:.0f}s: {names}" if stuck else ""))
    else:
        out.append(_Check(STUCK_RULE, "warning", None, None, None, None, 0.0, RESOLVE_SECONDS,
                          ""))
    return out, errors, service


def memory_eta(floor: Sequence[tuple[float, float]], now: float) -> float | None:
    """Seconds until a pod's GPU memory floor reaches MEMORY_FULL if its trend holds; None if no
    trend."""
    pts = [(t, v) for t, v in floor if t >= now - MEMORY_FIT_S]
    if len(pts) < MEMORY_MIN_POINTS or pts[-1][0] - pts[0][0] < MEMORY_MIN_SPAN_S:
        return None
    line = fit_line(pts)
    if line is None or line.r2 < MEMORY_MIN_R2:
        return None
    return seconds_until(line, now, MEMORY_FULL)


def _memory_check(view: WindowView) -> _Check:
    etas = [(eta, p.name) for p in view.pods.values() if p.fresh
            for eta in [memory_eta(p.memory_floor, view.now)] if eta is not None]
    limit = MEMORY_HORIZON_S + MEMORY_CONFIRM_S
    if not etas:
        return _Check(MEMORY_RULE, "warning", False, True, None, limit / 60.0, MEMORY_CONFIRM_S,
                      RESOLVE_SECONDS, "")
    eta, pod = min(etas)
    return _Check(MEMORY_RULE, "warning", eta <= limit, eta > limit + 120.0, eta / 60.0,
                  limit / 60.0, MEMORY_CONFIRM_S, RESOLVE_SECONDS,
                  f"GPU memory of pod {pod} trends to exhaustion in {eta / 60.0:.1f} min")


def decide_alerts(spec: GenerationClusterSpec, view: WindowView, state: AlertState,
                  now: float) -> tuple[AlertDecision, AlertState]:
    """Evaluate every alert; return the firing/resolved transitions and what is active."""
    checks = _rule_checks(spec, view)
    errors, service = state.errors, state.service
    if spec.alerts.anomaly_detection:
        found, errors, service = _anomaly_checks(view, state, now)
        checks += found
    if spec.alerts.predictive_memory:
        checks.append(_memory_check(view))
    tracks: dict[str, Track] = {}
    transitions: list[Transition] = []
    for c in checks:
        old = state.tracks.get(c.name, Track(severity=c.severity))
        new, what = step(old, c.bad, c.good, now, c.for_s, c.resolve_s)
        if new.firing_since is not None:  # firing: remember the latest reading for status
            new = Track(new.pending_since, new.firing_since, new.clear_since, c.severity,
                        c.value if c.value is not None else old.value,
                        c.threshold if c.threshold is not None else old.threshold,
                        c.message or old.message)
        tracks[c.name] = new
        if what is not None:
            transitions.append(Transition(c.name, what, c.severity, c.value, c.threshold,
                                          c.message or old.message))
    for name, old in state.tracks.items():  # rules removed from the spec resolve at once
        if name not in tracks and old.firing_since is not None:
            transitions.append(Transition(name, "resolved", old.severity, old.value,
                                          old.threshold, "rule removed"))
    active = tuple(Active(n, t.severity, t.value, t.threshold, t.firing_since, t.message)
                   for n, t in tracks.items() if t.firing_since is not None)
    return AlertDecision(tuple(transitions), active), AlertState(tracks, errors, service)
