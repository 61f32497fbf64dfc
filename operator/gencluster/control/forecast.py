"""Short-horizon forecasts over the metric window: Holt's linear trend and least-squares lines.

Holt (double exponential smoothing) follows a level and a trend and reacts to a ramp within a few
points, without needing a season; a line fitted to the GPU memory floor says when a leak will
exhaust the device. Both are pure and cheap (O(n) over at most a few hundred points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

HOLT_ALPHA = 0.5  # weight of the newest point in the level
HOLT_BETA = 0.3  # weight of the newest slope in the trend


def holt(values: Sequence[float], alpha: float = HOLT_ALPHA,
         beta: float = HOLT_BETA) -> tuple[float, float] | None:
    """(level, trend per step) after smoothing `values`; None with fewer than two points."""
    pts = [v for v in values if math.isfinite(v)]
    if len(pts) < 2:
        return None
    level, trend = pts[0], pts[1] - pts[0]
    for x in pts[1:]:
        prev = level
        level = alpha * x + (1.0 - alpha) * (level + trend)
        trend = beta * (level - prev) + (1.0 - beta) * trend
    return level, trend


def holt_forecast(values: Sequence[float], steps_ahead: float, alpha: float = HOLT_ALPHA,
                  beta: float = HOLT_BETA) -> float | None:
    """Holt's forecast `steps_ahead` steps after the last point (never negative)."""
    fit = holt(values, alpha, beta)
    if fit is None:
        return None
    level, trend = fit
    return max(0.0, level + steps_ahead * trend)


@dataclass(frozen=True, slots=True)
class Line:
    slope: float  # units per second
    intercept: float  # value at x = 0
    r2: float  # goodness of fit, 0..1

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x


def fit_line(points: Sequence[tuple[float, float]]) -> Line | None:
    """Least-squares line through (x, y) points; None with fewer than 3 or no x spread."""
    pts = [(x, y) for x, y in points if math.isfinite(x) and math.isfinite(y)]
    n = len(pts)
    if n < 3:
        return None
    mx = sum(x for x, _ in pts) / n
    my = sum(y for _, y in pts) / n
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx <= 0.0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in pts)
    syy = sum((y - my) ** 2 for _, y in pts)
    slope = sxy / sxx
    r2 = 1.0 if syy <= 0.0 else max(0.0, min(1.0, sxy * sxy / (sxx * syy)))
    return Line(slope, my - slope * mx, r2)


def seconds_until(line: Line, now: float, threshold: float) -> float | None:
    """When the line reaches `threshold` counting from `now`; None if it never does (slope <= 0)."""
    if line.slope <= 0.0:
        return None
    return max(0.0, (threshold - line.at(now)) / line.slope)
