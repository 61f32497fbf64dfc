"""What one pod can serve, learnt from its own counters while it was saturated.

While a pod had requests queued at both ends of a scrape interval its GPU never idled, so that
interval's batches (count and items, from gencluster_batch_size_observed) give one point of the
service curve: seconds per batch at a mean batch size. A line t(b) = a + c·b through those points
(least squares, a >= 0, c >= 0) gives the throughput μ(b) = b / t(b) at any batch size.

With points at a single batch size b0 (no spread to fit a slope), the estimate is deliberately
pessimistic: t(b) = t0 for b <= b0 (all fixed cost) and μ(b) = μ(b0) for b > b0 (no gain from
bigger batches). The replica decision uses μ only as a floor under scale-down, so a pessimistic μ
errs towards keeping pods.
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
    ts = sorted(t for _, t in pts)
    if bs[-1] - bs[0] < 1.0:  # one batch size: no slope to fit
        mid = len(pts) // 2
        return ServiceModel(ts[mid], 0.0, False, bs[mid])
    line = fit_line(pts)
    if line is None or line.slope < 0 or line.intercept < 0:
        mid = len(pts) // 2
        # a noisy fit: the pessimistic single-point form at the median point
        return ServiceModel(ts[mid], 0.0, False, bs[mid])
    return ServiceModel(line.intercept, line.slope, True, bs[len(bs) // 2])
