"""How many workload pods: the HPA v2 algorithm, fed with the signals a GPU service needs.

One proposal per target, the largest wins:
- queue depth per replica and GPU memory %: HPA's ratio, ceil(pods x average / target), both ways,
  with HPA's rules for pods without fresh metrics (0 % when scaling up, 100 % of target when
  scaling down) and for pods still starting (0 when scaling up);
- p95 latency: ceil(ready pods x p95 / target), UP ONLY and at most doubling the ready pods per
  decision. Below the target, latency is floored by one batch's service time and says nothing
  about how many pods could go; above it, it lags (a window of requests that already waited);
- predictive (autoscaling.predictive): Holt's trend on the request rate, `horizon` ahead,
  scaling the reactive answer by the forecast growth; it can only add capacity (as AWS
  predictive scaling never scales in on a forecast).
Guards: no fresh metrics at all, or a target no pod reports while the others say down: hold.
A scale-down never goes below the capacity floor: the pods the arrival rate needs at
CAPACITY_UTILISATION of the throughput the pods showed while saturated (control/capacity.py).
Then HPA's behaviour: tolerance band, stabilisation (scale-down keeps the highest recommendation
of its window, scale-up the lowest of its own, 0 s by default; a loop younger than the
scale-down window does not scale down), rate limits per period (of maxPods and maxPercent, the
one allowing the most change, HPA's default selectPolicy Max), min/max last. Every decision
carries a reason.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..api.spec import GenerationClusterSpec, ScalingRule
from .capacity import service_model
from .forecast import holt_forecast
from .window import WindowView

MIN_FORECAST_POINTS = 8
CAPACITY_UTILISATION = 0.7  # scale-down keeps pods at most this busy (learnt service model)
LATENCY_MAX_RATIO = 2.0  # latency lags and saturates: at most double the ready pods per step


@dataclass(frozen=True, slots=True)
class Proposal:
    """One target's answer. `replicas` None: the target abstains (no data, or latency under)."""

    metric: str
    value: float | None
    target: float
    replicas: int | None
    note: str


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What the replica decision remembers between intervals."""

    recommendations: tuple[tuple[float, int], ...] = ()  # (time, raw recommendation)
    scales: tuple[tuple[float, int, int], ...] = ()  # (time, from, to) decided changes
    since: float | None = None  # first decision: no scale-down before a full window of evidence


@dataclass(frozen=True, slots=True)
class ReplicaDecision:
    current: int
    desired: int
    reason: str
    proposals: tuple[Proposal, ...]

    @property
    def direction(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else ""


def _within(ratio: float, tol: float) -> bool:
    return abs(ratio - 1.0) <= tol


def pod_metric_proposal(metric: str, values: Mapping[str, float | None], ready: Sequence[str],
                        unready: int, target: float, tol: float, current: int) -> Proposal:
    """HPA's replica calculation for a per-pod average metric, missing and unready pods included.

    values: metric per ready pod (None when the pod has no fresh value).
    """
    have = {p: v for p, v in values.items() if v is not None and p in ready}
    if not have:
        return Proposal(metric, None, target, None, "no pod reports it")
    missing = [p for p in ready if p not in have]
    avg = sum(have.values()) / len(have)
    ratio = avg / target
    if not missing and unready == 0:
        if _within(ratio, tol):
            return Proposal(metric, avg, target, current, "within tolerance")
        return Proposal(metric, avg, target, math.ceil(ratio * len(have)), f"ratio {ratio:.2f}")
    if ratio < 1.0:  # scaling down: pods without data are assumed at the target
        vals = [*have.values(), *(target for _ in missing)]
    elif ratio > 1.0:  # scaling up: pods without data and pods starting are assumed idle
        vals = [*have.values(), *(0.0 for _ in missing), *(0.0 for _ in range(unready))]
    else:
        return Proposal(metric, avg, target, current, "at target")
    new_ratio = sum(vals) / (len(vals) * target)
    if _within(new_ratio, tol) or (ratio > 1.0) != (new_ratio > 1.0):
        return Proposal(metric, avg, target, current,
                        f"ratio {ratio:.2f}, {new_ratio:.2f} counting {len(missing)} without data"
                        f" and {unready} starting")
    return Proposal(metric, avg, target, math.ceil(new_ratio * len(vals)),
                    f"ratio {new_ratio:.2f} counting {len(missing)} without data"
                    f" and {unready} starting")


def latency_proposal(p95_ms: float | None, target: float, ready: int, tol: float,
                     current: int) -> Proposal:
    if p95_ms is None or ready == 0:
        return Proposal("latencyP95Ms", p95_ms, target, None, "no completed requests")
    ratio = p95_ms / target
    if ratio <= 1.0 + tol:
        return Proposal("latencyP95Ms", p95_ms, target, None, "under target (up-only)")
    capped = min(ratio, LATENCY_MAX_RATIO)
    return Proposal("latencyP95Ms", p95_ms, target, max(current, math.ceil(capped * ready)),
                    f"ratio {ratio:.2f}" + (f", capped at {capped:.0f}" if capped < ratio else ""))


def predictive_proposal(view: WindowView, horizon_s: float, base: int, tol: float) -> Proposal:
    pts = [(p.t, p.rps) for p in view.history if p.rps is not None]
    if len(pts) < MIN_FORECAST_POINTS or view.rps is None or view.rps <= 0.0:
        return Proposal("predictive", None, 0.0, None, "not enough history")
    gaps = sorted(b[0] - a[0] for a, b in itertools.pairwise(pts))
    step = gaps[len(gaps) // 2] if gaps else 0.0
    if step <= 0.0:
        return Proposal("predictive", None, 0.0, None, "no time spread")
    forecast = holt_forecast([r for _, r in pts], horizon_s / step)
    if forecast is None:
        return Proposal("predictive", None, 0.0, None, "no forecast")
    growth = forecast / view.rps
    if growth <= 1.0 + tol:
        return Proposal("predictive", forecast, view.rps, None, f"forecast x{growth:.2f}")
    return Proposal("predictive", forecast, view.rps, math.ceil(base * growth),
                    f"rps forecast {forecast:.1f} in {horizon_s:.0f}s (x{growth:.2f})")


def capacity_floor(view: WindowView) -> tuple[int | None, str]:
    """The fewest pods that serve the arrival rate at CAPACITY_UTILISATION of the learnt μ(b)."""
    model = service_model(view.service)
    sizes = sorted(p.batch_size for p in view.pods.values() if p.fresh and p.batch_size)
    if model is None or view.arrival_rate is None or not sizes:
        return None, "no saturated interval seen yet"
    b = sizes[len(sizes) // 2]
    mu = model.throughput(b)
    if mu <= 0:
        return None, "no service model"
    need = math.ceil(view.arrival_rate / (mu * CAPACITY_UTILISATION))
    return need, (f"{view.arrival_rate:.1f} req/s over {mu:.1f} req/s per pod at batch {b:.0f}"
                  f" x {CAPACITY_UTILISATION:.0%}")


def _changed(scales: Sequence[tuple[float, int, int]], since: float, up: bool) -> int:
    return sum((b - a) if up else (a - b) for t, a, b in scales if t > since and (b > a) == up
               and a != b)


def decide_replicas(spec: GenerationClusterSpec, view: WindowView, current: int,
                    state: ReplicaState, now: float) -> tuple[ReplicaDecision, ReplicaState]:
    """The replica count for the Deployment's scale subresource, with the reason why."""
    a, bounds = spec.autoscaling, spec.replicas
    tol = a.tolerance_percent / 100.0
    ready = [p.name for p in view.pods.values() if p.ready]
    unready = max(0, current - len(ready))
    proposals = [
        latency_proposal(view.p95_ms, a.targets.latency_p95_ms,
                         sum(1 for p in view.pods.values() if p.ready and p.fresh), tol, current),
        pod_metric_proposal("gpuMemoryPercent",
                            {p.name: p.gpu_memory_percent for p in view.pods.values()}, ready,
                            unready, a.targets.gpu_memory_percent, tol, current),
        pod_metric_proposal("queueDepthPerReplica",
                            {p.name: p.queue_depth for p in view.pods.values()}, ready, unready,
                            a.targets.queue_depth_per_replica, tol, current),
    ]
    voting = [p for p in proposals if p.replicas is not None]
    if a.predictive.enabled:
        base = max([current, *(p.replicas for p in voting if p.replicas is not None)])
        proposals.append(predictive_proposal(view, a.predictive.horizon_seconds, base, tol))
    winner = max((p for p in proposals if p.replicas is not None),
                 key=lambda p: p.replicas or 0, default=None)
    if view.pods_reporting == 0 or winner is None:
        raw, why = current, "no fresh metrics: holding"
    else:
        raw = winner.replicas or 0
        why = f"{winner.metric} {_fmt(winner.value)} vs target {_fmt(winner.target)} ({winner.note})"
        silent = [p.metric for p in proposals[1:3] if p.replicas is None]
        if raw < current and silent:
            raw, why = current, f"{', '.join(silent)} unavailable: not scaling down"
        floor, floor_note = capacity_floor(view)
        if raw < current and floor is not None and raw < floor:
            raw = min(current, floor)
            why += f"; capacity floor {floor} ({floor_note})"
    raw = max(bounds.min, min(bounds.max, raw))

    desired, why, new_state = behave(current, raw, why, state, now, a.scale_up, a.scale_down,
                                     bounds.min, bounds.max)
    return ReplicaDecision(current, desired, why, tuple(proposals)), new_state


def behave(current: int, raw: int, why: str, state: ReplicaState, now: float, up: ScalingRule,
           down: ScalingRule, lo: int, hi: int) -> tuple[int, str, ReplicaState]:
    """HPA v2 behaviour: stabilisation windows, then rate limits per period, then min/max.

    Of maxPods and maxPercent, the one allowing the most change applies, both ways (HPA's default
    selectPolicy Max). A loop that has not yet seen a full scale-down window does not scale down.
    """
    keep = max(up.stabilization_seconds, down.stabilization_seconds, up.period_seconds,
               down.period_seconds)
    recs = (*((t, n) for t, n in state.recommendations if t > now - keep), (now, raw))
    up_rec = min(n for t, n in recs if t > now - up.stabilization_seconds or t == now)
    down_rec = max(n for t, n in recs if t > now - down.stabilization_seconds or t == now)
    since = state.since if state.since is not None else now
    if now - since < down.stabilization_seconds:
        down_rec = max(down_rec, current)  # not a full window of recommendations yet
    desired = current
    if desired < up_rec:
        desired = up_rec
    if desired > down_rec:
        desired = down_rec
    if desired < raw and desired == current:
        why += f"; scale-up held by its {up.stabilization_seconds}s window"
    if desired > raw and desired == current and raw < current:
        why += (f"; scale-down held: highest recommendation {down_rec} in the last"
                f" {down.stabilization_seconds}s")
    if desired > current:
        start = current - _changed(state.scales, now - up.period_seconds, up=True)
        limit = max(start + up.max_pods, math.ceil(start * (1 + up.max_percent / 100.0)))
        if desired > limit:
            desired = max(current, limit)
            why += (f"; limited to {limit} by scaleUp ({up.max_pods} pods / {up.max_percent}%"
                    f" per {up.period_seconds}s)")
    elif desired < current:
        start = current + _changed(state.scales, now - down.period_seconds, up=False)
        floor = max(0, min(start - down.max_pods,
                           math.ceil(start * (1 - down.max_percent / 100.0))))
        if desired < floor:
            desired = min(current, floor)
            why += (f"; limited to {floor} by scaleDown ({down.max_pods} pods / "
                    f"{down.max_percent}% per {down.period_seconds}s)")
    if current < lo or current > hi:
        desired = max(lo, min(hi, current))
        why = f"outside replicas [{lo}, {hi}]"
    desired = max(lo, min(hi, desired))
    scales = tuple(x for x in state.scales if x[0] > now - keep)
    if desired != current:
        scales += ((now, current, desired),)
    return desired, why, ReplicaState(recs, scales, since)


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.2f}"
