"""Quantiles of cumulative histograms, the way Prometheus' histogram_quantile() computes them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping


def merge(into: dict[float, float], buckets: Iterable[tuple[float, float]]) -> None:
    """Add cumulative bucket counts into `into` (keyed by upper bound)."""
    for le, count in buckets:
        into[le] = into.get(le, 0.0) + count


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The q-quantile of a cumulative histogram {upper bound: count}; None when it is empty.

    Linear interpolation inside the bucket that holds the rank; a rank in the +Inf bucket returns
    the largest finite bound (as Prometheus does). Non-monotonic counts (merging pods with
    different bounds) are made monotonic first.
    """
    if not buckets:
        return None
    bounds = sorted(buckets)
    counts: list[float] = []
    running = 0.0
    for le in bounds:
        running = max(running, buckets[le])
        counts.append(running)
    total = counts[-1]
    if total <= 0.0:
        return None
    rank = q * total
    lower_bound = 0.0
    lower_count = 0.0
    for le, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if math.isinf(le):
                finite = [b for b in bounds if not math.isinf(b)]
                return finite[-1] if finite else None
            span = count - lower_count
            if span <= 0.0:
                return le
            return lower_bound + (le - lower_bound) * (rank - lower_count) / span
        lower_bound, lower_count = le, count
    return bounds[-1] if not math.isinf(bounds[-1]) else None
