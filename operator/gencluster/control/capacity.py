"""What one pod can serve, learnt from its own counters.

Each scrape interval with at least two forward passes gives one point of the service curve:
seconds per batch (gencluster_batch_duration_seconds) at a mean batch size
(gencluster_batch_size_observed); a pod that does not time its passes gives a point only when it
had requests queued at both ends of the interval (its GPU never idled: interval / batches). A line
t(b) = a + c·b through those points (least squares, a >= 0, c >= 0) gives the throughput
μ(b) = b / t(b) at any batch size.

With points at a single batch size (no spread to fit a slope), or a fit that is not physical
(negative slope or intercept: noise), the estimate is deliberately pessimistic at the largest
batches seen, b0 (their 90th percentile size): t(b) = t0 for b <= b0 (all fixed cost) and
μ(b) = μ(b0) for b > b0 (no gain from bigger batches). The replica decision sizes the cluster by
μ (control/replicas.py, the capacity proposal), so a pessimistic μ errs towards more pods.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .forecast import fit_line

MIN_POINTS = 3


@dataclass(frozen=True, slots=True)
class ServiceModel:
    base_s: float  # a: fixed seconds per batch
    item_s: float  # c: seconds per item
    fitted: bool  # False: a single batch size seen, the pessimistic form applies
    b0: float = 0.0

    def batch_seconds(self, b: float) -> float:
        return self.base_s + self.item_s * b

    def throughput(self, b: float) -> float:
        """Requests per second one saturated pod serves at batch size b."""
        if b <= 0:
            return 0.0
        if not self.fitted:
            t0 = self.base_s
            return min(b, self.b0) / t0 if t0 > 0 else 0.0
        t = self.batch_seconds(b)
        return b / t if t > 0 else 0.0


def service_model(points: Sequence[tuple[float, float]]) -> ServiceModel | None:
    """Fit t(b) = a + c·b to (mean batch size, seconds per batch) points; None if too few."""
    pts = [(b, t) for b, t in points if b > 0 and t > 0]
    if len(pts) < MIN_POINTS:
        return None
    bs = sorted(b for b, _ in pts)
    if bs[-1] - bs[0] < 1.0:  # one batch size: no slope to fit
        return _pessimistic(pts, bs)
    line = fit_line(pts)
    if line is None or line.slope < 0 or line.intercept < 0:
        return _pessimistic(pts, bs)  # a noisy fit
    return ServiceModel(line.intercept, line.slope, True, bs[len(bs) // 2])


def _pessimistic(pts: Sequence[tuple[float, float]], bs: Sequence[float]) -> ServiceModel:
    """The single-point form at the largest batches seen (their 90th percentile size b0 and
    the median seconds of the points at >= 80 % of it): no credit beyond what was seen."""
    b0 = bs[min(len(bs) - 1, (9 * len(bs)) // 10)]
    top = sorted(t for b, t in pts if b >= 0.8 * b0)
    return ServiceModel(top[len(top) // 2], 0.0, False, b0)
