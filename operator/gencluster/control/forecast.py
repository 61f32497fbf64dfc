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


# -- forecasts that say how sure they are (the predictive replica proposal) ----------------------

@dataclass(frozen=True, slots=True)
class Forecast:
    """A point forecast and the standard deviation of its error at that horizon."""

    mean: float
    sd: float
    method: str

    def lower(self, z: float) -> float:
        """The one-sided lower confidence bound, mean - z x sd, never negative."""
        return max(0.0, self.mean - z * self.sd)


def _holt_sd(sigma: float, h: float, alpha: float, beta: float) -> float:
    """Error sd of Holt's h-step forecast, ETS(A,A,N) (Hyndman & Athanasopoulos, FPP3 table
    5.2, with their beta = alpha x ours)."""
    b = alpha * beta
    h = max(1.0, h)
    var = 1.0 + (h - 1.0) * (alpha * alpha + alpha * b * h + b * b * h * (2.0 * h - 1.0) / 6.0)
    return sigma * math.sqrt(var)


def holt_path(values: Sequence[float], steps: int, alpha: float = HOLT_ALPHA,
              beta: float = HOLT_BETA) -> list[Forecast]:
    """Holt's forecasts 1..steps ahead with their error sd (from the one-step residuals)."""
    pts = [v for v in values if math.isfinite(v)]
    if len(pts) < 3:
        return []
    level, trend = pts[0], pts[1] - pts[0]
    sq, n = 0.0, 0
    for i, x in enumerate(pts[1:]):
        err = x - (level + trend)
        if i > 0:  # the first point after the start is fitted exactly
            sq += err * err
            n += 1
        prev = level
        level = alpha * x + (1.0 - alpha) * (level + trend)
        trend = beta * (level - prev) + (1.0 - beta) * trend
    sigma = math.sqrt(sq / max(1, n))
    return [Forecast(max(0.0, level + h * trend), _holt_sd(sigma, h, alpha, beta), "holt")
            for h in range(1, steps + 1)]


def detect_period(values: Sequence[float], min_lag: int, max_lag: int,
                  min_acf: float = 0.5) -> int | None:
    """The season length (in points) if the series has one, else None.

    The autocorrelation of the series less its least-squares line, at lags min_lag..max_lag
    (at most a third of the points: two full seasons and more to compare): the first local
    maximum within 90 % of the highest one, if that reaches min_acf. A trend, a ramp or
    wandering noise has no interior peak; a daily or cron-driven cycle has one at its period.
    """
    n = len(values)
    max_lag = min(max_lag, n // 3)
    if max_lag < max(2, min_lag) + 1:
        return None
    line = fit_line(list(enumerate(values)))
    if line is None:
        return None
    x = [v - line.at(i) for i, v in enumerate(values)]
    denom = sum(v * v for v in x)
    if denom <= 0.0:
        return None
    acf = {k: sum(x[i] * x[i + k] for i in range(n - k)) / denom * n / (n - k)
           for k in range(max(1, min_lag - 1), max_lag + 2) if k < n}
    peaks = [k for k in range(min_lag, max_lag + 1)
             if k - 1 in acf and k + 1 in acf and acf[k] > acf[k - 1] and acf[k] >= acf[k + 1]]
    if not peaks:
        return None
    top = max(acf[k] for k in peaks)
    if top < min_acf:
        return None
    return next(k for k in peaks if acf[k] >= 0.9 * top)


HW_ALPHA, HW_BETA, HW_GAMMA = 0.3, 0.05, 0.3


def holt_winters_path(values: Sequence[float], period: int, steps: int,
                      alpha: float = HW_ALPHA, beta: float = HW_BETA,
                      gamma: float = HW_GAMMA) -> list[Forecast]:
    """Additive Holt-Winters forecasts 1..steps ahead (needs two full seasons of points)."""
    pts = [v for v in values if math.isfinite(v)]
    if period < 2 or len(pts) < 2 * period:
        return []
    first = sum(pts[:period]) / period
    second = sum(pts[period:2 * period]) / period
    level, trend = first, (second - first) / period
    season = [x - first for x in pts[:period]]
    sq, n = 0.0, 0
    for i in range(period, len(pts)):
        x, s = pts[i], season[i - period]
        err = x - (level + trend + s)
        sq += err * err
        n += 1
        new_level = alpha * (x - s) + (1.0 - alpha) * (level + trend)
        trend = beta * (new_level - level) + (1.0 - beta) * trend
        season.append(gamma * (x - new_level) + (1.0 - gamma) * s)
        level = new_level
    sigma = math.sqrt(sq / max(1, n))
    last = len(pts)
    return [Forecast(max(0.0, level + h * trend + season[last - period + (h - 1) % period]),
                     _holt_sd(sigma, h, alpha, beta), f"holt-winters(period {period})")
            for h in range(1, steps + 1)]
