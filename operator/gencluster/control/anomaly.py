"""Robust z-score anomaly detection on a metric stream.

z = 0.6745 · (x − median) / MAD over a baseline of recent points (Iglewicz & Hoaglin): the median
and the median absolute deviation ignore the outliers they are looking for, unlike mean and
standard deviation. |z| > 3.5 is their recommended cut-off. A per-metric floor on the MAD keeps a
near-constant stream (error rate 0, say) from calling every small wobble an anomaly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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
