"""Anomaly detection: change detectors on load-independent signals, and a robust z-score.

The alerts' anomaly detectors (alerts.anomalyDetection) look for a CHANGE in a signal that a
healthy load change does not move, so that a load spike the autoscaler absorbs never fires:

- errors: a Bernoulli CUSUM (Page, 1954) on the share of answers that are 5xx. The baseline
  share p0 is learnt (exponential forgetting, frozen while a change is suspected, at least
  P0_FLOOR); the alternative p1 = max(1 %, 2·p0). Each interval adds the log-likelihood ratio of
  its errors out of its answers; the alert fires when the sum passes ERROR_H. A CUSUM is the
  quickest detector of a step change for a given false-alarm rate (Lorden, 1971), and counting
  errors against answers makes it independent of the load.
- slowdown: a CUSUM on the log ratio of the observed device seconds per forward pass
  (gencluster_batch_duration_seconds) to what the pod's own service curve predicts at the batch
  sizes it ran, t(b) = a + c·b, fitted by weighted least squares on forgotten history (frozen
  while a change is suspected). More load only makes batches bigger, which the curve accounts
  for; a slower device (thermal throttling, a noisy neighbour, a bad driver or build) raises
  every batch's time. Allowance SLOW_K = ln 1.1 (half-way to the 1.2 that counts as a fault).
- stuck pods: a per-pod check across the fleet: a pod that has had requests queued and
  completed nothing for STUCK_S has stopped serving though it may still pass its readiness
  probe (its peers' completion rate goes into the message: one pod far slower than its peers).

`robust_z` (kept for one-off comparisons): z = 0.6745 · (x − median) / MAD over a baseline
(Iglewicz & Hoaglin; |z| > 3.5 is their cut-off).

Everything here is pure: state in, state out, so the simulator replays exactly what the loop does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from statistics import median
from typing import Literal

Z_THRESHOLD = 3.5
Z_RESOLVE = 2.5  # hysteresis: an anomaly clears only once |z| is back under this
MIN_POINTS = 20
CONSISTENCY = 0.6745  # makes the MAD comparable to a standard deviation for normal data

Direction = Literal["up", "down", "both"]


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    median: float
    mad: float
    z: float

    def band_edge(self, threshold: float = Z_THRESHOLD) -> float:
        """The value at which z reaches `threshold` above the median (for messages)."""
        return self.median + threshold * self.mad / CONSISTENCY


def robust_z(baseline: Sequence[float], value: float, mad_floor: float,
             min_points: int = MIN_POINTS) -> Score | None:
    """Robust z-score of `value` against `baseline`; None if the baseline is too short."""
    pts = [v for v in baseline if math.isfinite(v)]
    if len(pts) < min_points or not math.isfinite(value):
        return None
    med = median(pts)
    mad = max(median(abs(v - med) for v in pts), mad_floor)
    return Score(value, med, mad, CONSISTENCY * (value - med) / mad)


def signed(z: float, direction: Direction) -> float:
    """The part of z that counts for a detector looking `direction`."""
    if direction == "up":
        return z
    if direction == "down":
        return -z
    return abs(z)


# --- change detectors ---------------------------------------------------------------------------

FORGET_S = 1800.0  # baselines forget with this time constant
P0_FLOOR = 0.001  # the error baseline is never taken below 0.1 %
P0_CEIL = 0.45  # nor above 45 %: the alternative (2·p0) must stay a probability below 1
ERROR_ALT = 0.01  # p1: the 1 % that makes an error incident
ERROR_H = 7.0  # log-likelihood ratio to fire (~ e^7 against a false alarm per run length)
SLOW_K = math.log(1.1)
SLOW_H = 0.4
SLOW_MIN_BATCHES = 30.0  # baseline weight before the slowdown detector speaks
SLOW_MIN_SPREAD = 0.5  # batch-size s.d. needed to fit a slope; below it, a bound (expected())
STUCK_S = 10.0


def _usable(*values: float) -> bool:
    """Finite, positive and below 2**53 (past that, sums of squares overflow; see window.valid)."""
    return all(math.isfinite(v) and 0.0 < v < 2.0**53 for v in values)


def _decay(dt: float) -> float:
    return math.exp(-max(0.0, dt) / FORGET_S)


@dataclass(frozen=True, slots=True)
class ErrorCusum:
    g: float = 0.0
    base_errors: float = 0.0
    base_requests: float = 0.0
    last_t: float | None = None

    @property
    def p0(self) -> float:
        if self.base_requests <= 0.0:
            return P0_FLOOR
        return min(P0_CEIL, max(P0_FLOOR, self.base_errors / self.base_requests))


def error_cusum(state: ErrorCusum, errors: float, requests: float,
                now: float) -> tuple[ErrorCusum, float | None]:
    """One interval's errors out of its answers; returns (state, share of errors or None)."""
    if not (math.isfinite(errors) and math.isfinite(requests)) or requests <= 0.0:
        return state, None
    errors = min(max(errors, 0.0), requests)
    p0 = state.p0
    p1 = max(ERROR_ALT, 2.0 * p0)
    llr = errors * math.log(p1 / p0) + (requests - errors) * math.log((1.0 - p1) / (1.0 - p0))
    g = min(2.0 * ERROR_H, max(0.0, state.g + llr))
    k = _decay(now - state.last_t) if state.last_t is not None else 1.0
    be, br = state.base_errors * k, state.base_requests * k
    if g < ERROR_H / 2.0:  # learn only while no change is suspected
        be, br = be + errors, br + requests
    return ErrorCusum(g, be, br, now), errors / requests


@dataclass(frozen=True, slots=True)
class ServiceCusum:
    """CUSUM on log(observed / expected seconds per forward pass), with the baseline's sums
    (weights are forward passes): w, Σb, Σt, Σb², Σbt."""

    g: float = 0.0
    w: float = 0.0
    sb: float = 0.0
    st: float = 0.0
    sbb: float = 0.0
    sbt: float = 0.0
    last_t: float | None = None

    def expected(self, b: float) -> float | None:
        """Seconds per forward pass at mean batch size b under the baseline; None if unknown."""
        if self.w < SLOW_MIN_BATCHES:
            return None
        mb, mt = self.sb / self.w, self.st / self.w
        var = max(0.0, self.sbb / self.w - mb * mb)
        if var < SLOW_MIN_SPREAD**2:
            # No spread to fit a slope: with a, c >= 0, t(b) lies between mt (all fixed cost)
            # and mt·b/mb (all per item); take the larger, so an unknown slope never reads as
            # a slowdown (it can only delay the detection while batches grow).
            return mt * max(1.0, b / mb) if mb > 0 else None
        c = max(0.0, (self.sbt / self.w - mb * mt) / var)
        a = mt - c * mb
        if a < 0.0:
            a, c = 0.0, mt / mb if mb > 0 else 0.0
        t = a + c * b
        return t if t > 0.0 else None


def service_cusum(state: ServiceCusum, passes: float, items: float, seconds: float,
                  now: float) -> tuple[ServiceCusum, float | None]:
    """One interval's forward passes (count, requests in them, device seconds); returns (state,
    observed / expected time per pass, or None when there is nothing to compare)."""
    b, t = (items / passes, seconds / passes) if _usable(passes, items, seconds) else (0.0, 0.0)
    if not _usable(b, t):  # nothing to compare (or a value no real pod reports)
        return replace(state, last_t=now if state.last_t is None else state.last_t), None
    exp = state.expected(b)
    ratio = None if exp is None else t / exp
    if ratio is not None and not _usable(ratio):
        ratio = None
    g = state.g
    if ratio is not None:
        g = min(3.0 * SLOW_H, max(0.0, g + math.log(ratio) - SLOW_K))
    k = _decay(now - state.last_t) if state.last_t is not None else 1.0
    w, sb, st, sbb, sbt = (state.w * k, state.sb * k, state.st * k, state.sbb * k,
                           state.sbt * k)
    if g < SLOW_H / 2.0:
        w, sb, st, sbb, sbt = (w + passes, sb + passes * b, st + passes * t,
                               sbb + passes * b * b, sbt + passes * b * t)
    return ServiceCusum(g, w, sb, st, sbb, sbt, now), ratio


@dataclass(frozen=True, slots=True)
class PodProgress:
    """What the stuck-pod check needs of one fresh pod."""

    name: str
    stalled_s: float  # trailing seconds with requests queued and nothing completed
    rate: float | None  # requests completed per second over the latency window


def stuck_pods(pods: Sequence[PodProgress]) -> list[tuple[str, float, float | None]]:
    """Pods stalled (requests queued, none completed) for STUCK_S, with the median completion
    rate of their peers for the message: [(name, stalled seconds, peers' median rate)]. A
    healthy pod with a backlog completes a forward pass every few seconds at most."""
    out = []
    for p in pods:
        if p.stalled_s < STUCK_S:
            continue
        peers = sorted(q.rate for q in pods if q.name != p.name and q.rate is not None)
        peer = peers[len(peers) // 2] if peers else None
        out.append((p.name, p.stalled_s, peer))
    return out
