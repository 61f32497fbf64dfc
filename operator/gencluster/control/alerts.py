"""Alerts: threshold rules with for-duration and hysteresis, anomaly detectors, leak prediction.

Every alert is a small state machine: it FIRES once its condition has held for `forSeconds`, and
RESOLVES only after the value has been back past the threshold by a margin (HYSTERESIS of the
threshold, at least 1 unit) for RESOLVE_SECONDS (or forSeconds, if longer), so a value hovering
at the threshold does not flap. No data (no pod reporting) changes nothing: a firing alert stays
firing and the MetricsAvailable condition says why.

Built-in rules (alerts.builtinRules): GPU memory > 85 % warning and > 95 % critical, p95 over the
batching SLO, error rate > 1 % (errorRatePermille > 10), cache hit ratio < 50 %, queue saturated
(a pod's queue at >= 90 % of workload.queueMax). User rules with a built-in's name replace it.
Anomalies (alerts.anomalyDetection): robust z-score (anomaly.py) of each cluster aggregate against
its own recent history. Leak prediction (alerts.predictiveMemory): a line through each pod's GPU
memory floor (the lowest reading per 30 s, which batch activity cannot raise for long) that
reaches 100 % within MEMORY_HORIZON_S.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from ..api.spec import GenerationClusterSpec
from .anomaly import MIN_POINTS, Z_RESOLVE, Z_THRESHOLD, Direction, robust_z, signed
from .forecast import fit_line, seconds_until
from .window import WindowView

Comparison = Literal["gt", "ge", "lt", "le"]
Severity = Literal["warning", "critical"]

HYSTERESIS = 0.05
RESOLVE_SECONDS = 60.0
QUEUE_SATURATED_PERCENT = 90.0
ANOMALY_FOR_SECONDS = 30.0
MEMORY_RULE = "gpu-memory-exhaustion"
MEMORY_HORIZON_S = 600.0  # warn when exhaustion is this close (if the trend holds)
MEMORY_CONFIRM_S = 60.0  # the prediction must hold this long; counted into the horizon
MEMORY_FIT_S = 600.0  # floor points used for the fit
MEMORY_MIN_POINTS = 8
MEMORY_MIN_SPAN_S = 240.0
MEMORY_MIN_R2 = 0.8
MEMORY_FULL = 95.0  # allocations fail before the last few percent (fragmentation, workspace)

# metric -> (direction, absolute MAD floor, MAD floor relative to the median)
ANOMALY_STREAMS: Mapping[str, tuple[Direction, float, float]] = {
    "latencyP95Ms": ("up", 50.0, 0.10),
    "errorRatePermille": ("up", 2.0, 0.10),
    "queueDepth": ("up", 2.0, 0.10),
    "gpuMemoryPercent": ("up", 2.0, 0.02),
    "requestsPerSecond": ("both", 1.0, 0.10),
}


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
        out[u.name] = Rule(u.name, u.metric, u.comparison, float(u.threshold),
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
        out.append(_Check(
            r.name, r.severity, None if v is None else breached(v, r),
            None if v is None else cleared(v, r), v, r.threshold, r.for_seconds,
            max(RESOLVE_SECONDS, r.for_seconds),
            "" if v is None else f"{r.metric} {v:.0f} {_OPS[r.comparison]} {r.threshold:.0f}"))
    return out


_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _anomaly_checks(view: WindowView) -> list[_Check]:
    out = []
    past = view.history[:-1] if view.history and view.history[-1].t == view.now else view.history
    for metric, (direction, abs_floor, rel_floor) in ANOMALY_STREAMS.items():
        value = view.metric(metric)
        base = [getattr(p, _HISTORY_FIELD[metric]) for p in past]
        pts = [b for b in base if b is not None]
        name = f"anomaly-{_KEBAB[metric]}"
        if value is None or len(pts) < MIN_POINTS:
            out.append(_Check(name, "warning", None, None, value, None, ANOMALY_FOR_SECONDS,
                              RESOLVE_SECONDS, ""))
            continue
        med = sorted(pts)[len(pts) // 2]
        score = robust_z(pts, value, max(abs_floor, rel_floor * abs(med)))
        if score is None:
            out.append(_Check(name, "warning", None, None, value, None, ANOMALY_FOR_SECONDS,
                              RESOLVE_SECONDS, ""))
            continue
        z = signed(score.z, direction)
        edge = score.band_edge()
        out.append(_Check(name, "warning", z > Z_THRESHOLD, z < Z_RESOLVE, value, edge,
                          ANOMALY_FOR_SECONDS, RESOLVE_SECONDS,
                          f"{metric} {value:.1f} is anomalous (robust z {score.z:.1f}; median "
                          f"{score.median:.1f}, usual band up to {edge:.1f})"))
    return out


_HISTORY_FIELD = {
    "latencyP95Ms": "p95_ms", "errorRatePermille": "error_rate_permille",
    "queueDepth": "queue_depth", "gpuMemoryPercent": "gpu_memory_percent",
    "requestsPerSecond": "rps",
}
_KEBAB = {
    "latencyP95Ms": "latency", "errorRatePermille": "error-rate", "queueDepth": "queue-depth",
    "gpuMemoryPercent": "gpu-memory", "requestsPerSecond": "request-rate",
}


def memory_eta(floor: Sequence[tuple[float, float]], now: float) -> float | None:
    """Seconds until a pod's GPU memory floor reaches 100 % if its trend holds; None if no trend."""
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
    if spec.alerts.anomaly_detection:
        checks += _anomaly_checks(view)
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
    return AlertDecision(tuple(transitions), active), AlertState(tracks)
