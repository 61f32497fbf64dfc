"""How many workload pods: HPA v2's shape (proposals, tolerance, missing-pod rules,
stabilisation, rate limits), sized by what a pod can serve. docs/autoscaling.md#replicas.

One proposal per target, the largest wins:
- capacity (once the learnt service curve, control/capacity.py, has MODEL_MIN_POINTS points since
  the last workload change): the pods the arrival rate needs at CAPACITY_UTILISATION of what the
  slowest pod serves, plus HEADROOM_Z x the rate's recent wander, plus the pods that drain the
  backlog within DRAIN_S; both ways. In a surge (the last interval's arrivals over twice the
  window's rate, beyond noise: `surging`) it sizes for the last interval's rate, as KPA's panic;
- queue depth per replica (HPA's ratio, both ways): the fallback before a service model exists;
  with one it is reported but does not vote (its ratio over-adds while pods start);
- GPU memory % (HPA's ratio, UP ONLY: memory is mostly weights, whatever the load);
- p95 latency: ceil(ready pods x p95 / target), UP ONLY and at most doubling the ready pods per
  decision; it abstains while the pods the capacity proposal sized are starting or draining a
  backlog (the latency then is the backlog's);
- custom targets (autoscaling.targets.custom, control/custom.py);
- predictive (autoscaling.predictive): the forecast arrival rate's lower 90 % bound (Holt, or
  Holt-Winters when the history shows a season) over the per-pod capacity; it only raises the
  count, after the stabilisation windows and without being remembered by them.
HPA's rules for pods without fresh metrics (0 % when scaling up, 100 % of target when scaling
down) and for pods still starting (0 when scaling up). Guards: no fresh metrics at all, or the
load signal or GPU memory reported by no pod while the others say down: hold. Then HPA's
behaviour: tolerance band, stabilisation (scale-down keeps the highest recommendation of its
window, scale-up the lowest of its own, 0 s by default; a loop younger than the scale-down
window does not scale down), rate limits per period (maxPods and maxPercent combined by
selectPolicy: Max, the larger change, as HPA's default; Min, the smaller), min/max last. Every
decision carries a reason.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from ..api.spec import GenerationClusterSpec, ScalingRule
from . import custom
from .capacity import service_model
from .forecast import detect_period, holt_path, holt_winters_path
from .window import PodView, WindowView

CAPACITY_UTILISATION = 0.7  # pods are sized to be at most this busy (learnt service model)
MODEL_MIN_POINTS = 12  # service points before the capacity model is trusted (else: the queue)
SLO_SHARE = 0.9  # the batch-size reach keeps two batch times within this share of the SLO
MEMORY_HELD = 80.0  # GPU memory % at which a pod's batch limit is taken as memory-bound
NOISE_BUCKETS = 20  # the rate's wander is measured over the last 10 min
HEADROOM_Z = 2.5  # capacity for the rate ~99 % of the next 30 s stay under  # a backlogged pod's batches are "short" below this fraction of the limit
# A surge: the last scrape interval's arrivals over SURGE_RATIO x the window's rate and more than
# SURGE_Z standard deviations of Poisson noise above it (so noise alone is almost never one). As
# KPA's panic mode (its threshold is also 2x), a surge sizes for the recent rate, upwards only.
SURGE_RATIO = 2.0
SURGE_Z = 4.0
DRAIN_S = 30.0  # a backlog beyond one batch per pod is sized to drain within this
# the arrival rate in RATE_BUCKET_S means, up to RATE_HISTORY_BUCKETS of them (headroom, forecasts)
RATE_BUCKET_S = 30.0
RATE_HISTORY_BUCKETS = 360  # 3 h: a season up to 1 h long shows three times
RATE_GAP_BUCKETS = 10  # a longer gap in the rates restarts the history
MIN_FORECAST_POINTS = 8  # 4 min of history before any forecast
HOLT_POINTS = 30  # Holt's trend follows the last 15 min
PERIOD_MIN_BUCKETS = 4  # seasons shorter than 2 min are noise to a 30-60 s pod start
PERIOD_RECHECK_S = 600.0
FORECAST_Z = 1.28  # scale on the forecast's one-sided 90 % lower bound
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
    capacity_epoch: tuple[str, float] | None = None  # (workload fingerprint, learnt since)
    rates: tuple[float, ...] = ()  # mean arrival rate per RATE_BUCKET_S, oldest first
    rate_bucket: tuple[float, float, int] | None = None  # (start, sum, samples) being filled
    period: tuple[float, int] = (-math.inf, 0)  # (checked at, season in buckets; 0: none)


@dataclass(frozen=True, slots=True)
class ReplicaDecision:
    current: int
    desired: int
    reason: str
    proposals: tuple[Proposal, ...]

    @property
    def direction(self) -> str:
        return "up" if self.desired > self.current else "down" if self.desired < self.current else ""


POD_COUNT_CAP = 1_000_000  # far above any spec's replicas.max (1000), so clamping changes nothing else


def pod_count(x: float) -> int:
    """ceil(x) as a pod count, safe for what garbage metrics produce: sums of huge finite values
    overflow to inf (and inf - inf to nan), which math.ceil refuses."""
    if math.isnan(x):
        return 0
    return math.ceil(min(max(x, 0.0), float(POD_COUNT_CAP)))


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
        return Proposal(metric, avg, target, pod_count(ratio * len(have)), f"ratio {ratio:.2f}")
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
    return Proposal(metric, avg, target, pod_count(new_ratio * len(vals)),
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
    return Proposal("latencyP95Ms", p95_ms, target, max(current, pod_count(capped * ready)),
                    f"ratio {ratio:.2f}" + (f", capped at {capped:.0f}" if capped < ratio else ""))


def pod_capacity(view: WindowView, since: float | None = None, slo_ms: float | None = None,
                 b_max: float | None = None) -> tuple[float, float] | None:
    """(μ, b): what the slowest fresh pod serves saturated (req/s) at its batch limit b, from
    the service points learnt since `since` (a spec or image change); None without a model."""
    if view.service_points:
        pts = [(b, s) for t, b, s in view.service_points if since is None or t >= since]
    else:  # a view built without times (tests): usable until a change sets an epoch
        pts = list(view.service) if since is None or since == -math.inf else []
    model = service_model(pts) if len(pts) >= MODEL_MIN_POINTS else None
    if model is None:
        return None
    sizes = sorted(p.batch_size for p in view.pods.values() if p.fresh and p.batch_size)
    if not sizes:
        return None
    median = sizes[len(sizes) // 2]
    # the batch the tuner can reach under load: where two batch times (one waited for, one
    # served) fill SLO_SHARE of the SLO; a pod whose limit is lower only has not been loaded yet
    reach = 0.0
    if slo_ms is not None and model.fitted and model.item_s > 0:
        reach = (SLO_SHARE * slo_ms / 1000.0 / 2.0 - model.base_s) / model.item_s
        reach = max(0.0, min(b_max if b_max is not None else reach, math.floor(reach)))
    caps: list[tuple[float, float]] = []
    for p in view.pods.values():
        if not (p.fresh and p.batch_size):
            continue
        backlogged = (p.queue_depth or 0.0) > p.batch_size
        # a limit below the median that neither a backlog nor memory holds down only shows a
        # light load (AIMD grows it once batches fill): count such a pod at the median
        held = backlogged or (p.gpu_memory_percent or 0.0) >= MEMORY_HELD
        b_p = p.batch_size if held else max(p.batch_size, median, reach)
        mu_p = model.throughput(b_p)
        # A backlogged pod whose batches OOM shows what it really serves: if that is less
        # than the model says, believe it. (A pod that just started has no batch yet either;
        # that is not evidence.)
        if backlogged and p.new_ooms > 0:
            mu_p = min(mu_p, _served(p))
        caps.append((mu_p, b_p))
    if not caps:
        return None
    # A Service spreads requests evenly, so the slowest pod sets how much each may get
    mu, b = min(caps)
    return (mu, b) if mu > 0 else None


def _served(p: PodView) -> float:
    """Requests a pod answered without error per second, over its last scrape interval (its
    window's rate when it was not scraped this time): failed batches finish fast and would
    otherwise look like throughput."""
    if p.updated and p.step_s > 0.0:
        return max(0.0, p.requests_step - p.errors_step) / p.step_s
    return p.rps or 0.0


def rate_noise(rates: Sequence[float]) -> float:
    """How much the arrival rate moves from one RATE_BUCKET_S to the next (req/s): the sd of
    the first differences of the last NOISE_BUCKETS means, over sqrt 2. Differences drop a
    trend or a slow season; what is left is the wander a 30-60 s pod start cannot follow."""
    xs = rates[-NOISE_BUCKETS - 1:]
    if len(xs) < 4:
        return 0.0
    d = [b - a for a, b in itertools.pairwise(xs)]
    m = sum(d) / len(d)
    return math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1) / 2.0)


def surging(view: WindowView) -> bool:
    """Whether the load has just stepped up: the window's rate (30 s) still mostly holds the
    time before it, so sizing by it alone would add pods over several intervals, each 30-60 s
    from serving. Counts are compared, on Anscombe's square-root scale, where Poisson noise is
    close to unit normal even at a few requests (at 1 req/s a 1 s count of 6 is noise)."""
    recent, rate, seconds = view.arrival_recent, view.arrival_rate, view.arrival_recent_s
    if recent is None or rate is None or seconds <= 0.0:
        return False
    z = 2.0 * (math.sqrt(recent * seconds + 0.375) - math.sqrt(rate * seconds + 0.375))
    return recent > SURGE_RATIO * rate and z > SURGE_Z


def capacity_proposal(view: WindowView, cap: tuple[float, float] | None, current: int,
                      tol: float, noise: float = 0.0) -> Proposal:
    """The pods the arrival rate needs at CAPACITY_UTILISATION of μ(b), with HEADROOM_Z x the
    rate's recent wander on top, plus those that drain the backlog beyond one batch per ready
    pod within DRAIN_S; both ways. Pods still starting count (they are part of `current`), so a
    backlog growing while they start adds nothing twice."""
    if cap is None or view.arrival_rate is None:
        return Proposal("capacity", None, 0.0, None, "no service model yet")
    mu, b = cap
    ready = sum(1 for p in view.pods.values() if p.ready and p.fresh)
    excess = max(0.0, (view.queue_depth or 0.0) - ready * b)
    spare = HEADROOM_Z * noise
    surge = surging(view)
    rate = view.arrival_recent if surge and view.arrival_recent is not None else view.arrival_rate
    load = rate + spare + excess / DRAIN_S
    exact = load / (mu * CAPACITY_UTILISATION)
    note = (f"{rate:.1f} req/s" + (" (surge: the last interval's)" if surge else "")
            + (f" + {spare:.1f} wander" if spare >= 0.05 else "")
            + (f" + backlog {excess:.0f}" if excess else "")
            + f" over {mu:.1f} req/s per pod at batch {b:.0f} x {CAPACITY_UTILISATION:.0%}")
    if current > 0 and _within(exact / current, tol):
        return Proposal("capacity", load, mu * CAPACITY_UTILISATION, current,
                        f"within tolerance: {note}")
    return Proposal("capacity", load, mu * CAPACITY_UTILISATION, max(1, pod_count(exact)), note)


# -- predictive: forecast capacity need, never a multiple of the current count -------------------

def record_rate(state: ReplicaState, now: float, rate: float | None) -> ReplicaState:
    """Fold this interval's arrival rate into the RATE_BUCKET_S history (gaps repeat the last
    bucket; a gap longer than RATE_GAP_BUCKETS restarts the history)."""
    if rate is None or not math.isfinite(rate) or rate < 0:
        return state
    start = math.floor(now / RATE_BUCKET_S) * RATE_BUCKET_S
    rates, cur = state.rates, state.rate_bucket
    if cur is not None and cur[0] == start:
        return replace(state, rate_bucket=(start, cur[1] + rate, cur[2] + 1))
    if cur is not None and cur[2] > 0:
        gap = int((start - cur[0]) / RATE_BUCKET_S) - 1
        mean = cur[1] / cur[2]
        rates = () if gap > RATE_GAP_BUCKETS else (*rates, mean, *([mean] * max(0, gap)))
        rates = rates[-RATE_HISTORY_BUCKETS:]
    return replace(state, rates=rates, rate_bucket=(start, rate, 1))


def season(state: ReplicaState, now: float) -> ReplicaState:
    """Re-detect the season every PERIOD_RECHECK_S (it changes slowly; detection is O(n x lags))."""
    if now - state.period[0] < PERIOD_RECHECK_S:
        return state
    p = detect_period(state.rates, PERIOD_MIN_BUCKETS, len(state.rates) // 3)
    return replace(state, period=(now, p or 0))


def predictive_proposal(state: ReplicaState, horizon_s: float,
                        cap: tuple[float, float] | None, current: int) -> Proposal:
    """The pods the forecast arrival rate needs (forecast ÷ per-pod capacity), at the forecast's
    lower confidence bound (mean − FORECAST_Z × sd), the highest over the horizon. Noise widens
    the sd, so a noisy flat load forecasts no more than it shows; a ramp or a season the
    history has seen forecasts ahead of it. It only raises the count (decide_replicas applies
    it after the stabilisation windows: it is never remembered as a recommendation)."""
    rates = state.rates
    if cap is None:
        return Proposal("predictive", None, 0.0, None, "no service model yet")
    if len(rates) < MIN_FORECAST_POINTS:
        return Proposal("predictive", None, 0.0, None, "not enough history")
    mu = cap[0]
    steps = max(1, math.ceil(horizon_s / RATE_BUCKET_S))
    period = state.period[1]
    path = holt_winters_path(rates, period, steps) if period else []
    if not path:
        path = holt_path(rates[-HOLT_POINTS:], steps)
    if not path:
        return Proposal("predictive", None, 0.0, None, "no forecast")
    best = max(path, key=lambda f: f.lower(FORECAST_Z))
    lo = best.lower(FORECAST_Z)
    need = max(1, pod_count(lo / (mu * CAPACITY_UTILISATION)))
    note = (f"{best.method}: {best.mean:.1f} ± {best.sd:.1f} req/s within {horizon_s:.0f}s, "
            f"lower bound {lo:.1f} over {mu * CAPACITY_UTILISATION:.1f} req/s per pod")
    if need <= current:
        return Proposal("predictive", lo, mu * CAPACITY_UTILISATION, None, note)
    return Proposal("predictive", lo, mu * CAPACITY_UTILISATION, need, note)


def _changed(scales: Sequence[tuple[float, int, int]], since: float, up: bool) -> int:
    return sum((b - a) if up else (a - b) for t, a, b in scales if t > since and (b > a) == up
               and a != b)


def workload_fingerprint(spec: GenerationClusterSpec) -> str:
    """What the learnt service curve depends on: the workload (image, model, GPUs, resources)."""
    return spec.workload.model_dump_json()


def custom_proposals(spec: GenerationClusterSpec, view: WindowView, ready: Sequence[str],
                     unready: int, tol: float, current: int) -> list[Proposal]:
    """autoscaling.targets.custom: avg through HPA's per-pod calculation, the other
    aggregations as control/custom.py's `proposal` says."""
    out = []
    for t in spec.autoscaling.targets.custom:
        k = custom.key(t.metric, t.aggregation)
        got = view.custom.get(k)
        target = custom.quantity(t.target)
        if t.aggregation == "avg":
            per_pod = dict(got.per_pod) if got is not None else {}
            out.append(pod_metric_proposal(k, per_pod, ready, unready, target, tol, current))
            continue
        n_ready = sum(1 for p in view.pods.values() if p.ready and p.fresh)
        replicas, note = custom.proposal(t.aggregation, got.value if got else None, target,
                                         n_ready, current, tol)
        out.append(Proposal(k, got.value if got else None, target, replicas, note))
    return out


def decide_replicas(spec: GenerationClusterSpec, view: WindowView, current: int,
                    state: ReplicaState, now: float) -> tuple[ReplicaDecision, ReplicaState]:
    """The replica count for the Deployment's scale subresource, with the reason why."""
    a, bounds = spec.autoscaling, spec.replicas
    tol = a.tolerance_percent / 100.0
    fingerprint = workload_fingerprint(spec)
    if state.capacity_epoch is None or state.capacity_epoch[0] != fingerprint:
        # a new workload (or the first look): what was learnt about the old one is void
        epoch = (fingerprint, now if state.capacity_epoch is not None else -math.inf)
        state = replace(state, capacity_epoch=epoch)
    cap = pod_capacity(view, state.capacity_epoch[1] if state.capacity_epoch else None,
                       spec.batching.latency_slo_ms, spec.batching.max)
    ready = [p.name for p in view.pods.values() if p.ready]
    unready = max(0, current - len(ready))
    queue = pod_metric_proposal("queueDepthPerReplica",
                                {p.name: p.queue_depth for p in view.pods.values()}, ready,
                                unready, a.targets.queue_depth_per_replica, tol, current)
    state = record_rate(state, now, view.arrival_rate)
    capacity = capacity_proposal(view, cap, current, tol, rate_noise(state.rates))
    if capacity.replicas is not None and queue.replicas is not None:
        # with a service model the queue says nothing the capacity proposal has not counted
        # (the backlog is in it); its ratio over-adds while pods start
        queue = replace(queue, replicas=None, note=f"{queue.note}; capacity model in use")
    latency = latency_proposal(view.p95_ms, a.targets.latency_p95_ms,
                               sum(1 for p in view.pods.values() if p.ready and p.fresh), tol,
                               current)
    draining = (capacity.value is not None and view.arrival_rate is not None
                and capacity.value > view.arrival_rate)
    if latency.replicas is not None and capacity.replicas is not None \
            and capacity.replicas <= current and (unready > 0 or draining):
        # the capacity model has sized the pods for the load and the backlog (some still
        # starting): the latency is the backlog's, which they are sized to drain
        latency = replace(latency, replicas=None,
                          note=f"{latency.note}; the pods sized for load and backlog cover it")
    memory = pod_metric_proposal("gpuMemoryPercent",
                                 {p.name: p.gpu_memory_percent for p in view.pods.values()},
                                 ready, unready, a.targets.gpu_memory_percent, tol, current)
    if memory.replicas is not None and memory.replicas < current:
        # up only: GPU memory is mostly weights, the same on every pod whatever the load; it
        # says when pods are too full, never how many could go
        memory = replace(memory, replicas=None, note=f"{memory.note} (up-only)")
    proposals = [latency, memory, queue, capacity,
                 *custom_proposals(spec, view, ready, unready, tol, current)]
    ahead: Proposal | None = None
    if a.predictive.enabled:
        state = season(state, now)
        ahead = predictive_proposal(state, a.predictive.horizon_seconds, cap, current)
    winner = max((p for p in proposals if p.replicas is not None),
                 key=lambda p: p.replicas or 0, default=None)
    if view.pods_reporting == 0 or winner is None:
        raw, why = current, "no fresh metrics: holding"
    else:
        raw = winner.replicas or 0
        why = f"{winner.metric} {_fmt(winner.value)} vs target {_fmt(winner.target)} ({winner.note})"
        load = capacity if capacity.replicas is not None else queue
        silent = [p.metric for p in (memory, load) if p.value is None]
        if raw < current and silent:
            raw, why = current, f"{', '.join(silent)} unavailable: not scaling down"
    raw = max(bounds.min, min(bounds.max, raw))
    lift = None
    if ahead is not None and ahead.replicas is not None and view.pods_reporting > 0:
        lift = (min(bounds.max, ahead.replicas), f"predictive {ahead.note}")
    desired, why, new_state = behave(current, raw, why, state, now, a.scale_up, a.scale_down,
                                     bounds.min, bounds.max, lift)
    return ReplicaDecision(current, desired, why, tuple([*proposals, *(
        [ahead] if ahead is not None else [])])), new_state


def _limit(start: int, rule: ScalingRule, up: bool) -> int:
    """The furthest count the rule's policies allow from `start` in one period: of maxPods and
    maxPercent, the larger change under selectPolicy Max, the smaller under Min."""
    by_pods = start + rule.max_pods if up else start - rule.max_pods
    by_pct = (math.ceil(start * (1 + rule.max_percent / 100.0)) if up
              else math.ceil(start * (1 - rule.max_percent / 100.0)))
    pick = max if (rule.select_policy == "Max") == up else min
    return max(0, pick(by_pods, by_pct))


def behave(current: int, raw: int, why: str, state: ReplicaState, now: float, up: ScalingRule,
           down: ScalingRule, lo: int, hi: int,
           lift: tuple[int, str] | None = None) -> tuple[int, str, ReplicaState]:
    """HPA v2 behaviour: stabilisation windows, then rate limits per period, then min/max.

    The rate limit per period is maxPods or maxPercent (selectPolicy: Max, the larger change;
    Min, the smaller), both ways. A loop that has not yet seen a full scale-down window does
    not scale down. `lift` (the predictive proposal) raises the stabilised count, within the
    scale-up limits, without entering the recommendations the windows keep: once the forecast
    falls, nothing it asked for holds the count up.
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
    if lift is not None and lift[0] > desired:
        desired, why = lift
    if desired > current:
        start = current - _changed(state.scales, now - up.period_seconds, up=True)
        limit = _limit(start, up, True)
        if desired > limit:
            desired = max(current, limit)
            why += (f"; limited to {limit} by scaleUp ({up.max_pods} pods / {up.max_percent}%"
                    f" per {up.period_seconds}s, {up.select_policy})")
    elif desired < current:
        start = current + _changed(state.scales, now - down.period_seconds, up=False)
        floor = _limit(start, down, False)
        if desired < floor:
            desired = min(current, floor)
            why += (f"; limited to {floor} by scaleDown ({down.max_pods} pods / "
                    f"{down.max_percent}% per {down.period_seconds}s, {down.select_policy})")
    if current < lo or current > hi:
        desired = max(lo, min(hi, current))
        why = f"outside replicas [{lo}, {hi}]"
    desired = max(lo, min(hi, desired))
    scales = tuple(x for x in state.scales if x[0] > now - keep)
    if desired != current:
        scales += ((now, current, desired),)
    return desired, why, replace(state, recommendations=recs, scales=scales, since=since)


def _fmt(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0f}" if abs(x) >= 10 else f"{x:.2f}"
