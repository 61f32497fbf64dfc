"""Holt's trend, line fits, robust z-scores and the learnt service model."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gencluster.control.anomaly import robust_z
from gencluster.control.capacity import service_model
from gencluster.control.forecast import fit_line, holt, holt_forecast, seconds_until


def test_holt_follows_a_ramp():
    series = [10.0 + 2.0 * i for i in range(30)]
    level, trend = holt(series) or (0, 0)
    assert level == pytest.approx(68.0, abs=0.5) and trend == pytest.approx(2.0, abs=0.1)
    assert holt_forecast(series, 10) == pytest.approx(88.0, abs=1.5)
    assert holt([1.0]) is None


@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=50), st.floats(0, 100))
def test_holt_forecast_is_finite_and_not_negative(values, ahead):
    f = holt_forecast(values, ahead)
    assert f is not None and math.isfinite(f) and f >= 0


def test_line_and_time_to_threshold():
    line = fit_line([(t, 50.0 + 0.01 * t) for t in range(0, 600, 30)])
    assert line is not None and line.r2 == pytest.approx(1.0)
    assert seconds_until(line, 600.0, 95.0) == pytest.approx(3900.0)
    flat = fit_line([(t, 50.0) for t in range(0, 600, 30)])
    assert flat is not None and seconds_until(flat, 600.0, 95.0) is None
    assert fit_line([(1.0, 2.0), (1.0, 3.0), (1.0, 4.0)]) is None


def test_robust_z_ignores_outliers_in_the_baseline():
    base = [100.0] * 15 + [101.0, 99.0, 102.0, 98.0, 5000.0, 100.0]
    s = robust_z(base, 160.0, mad_floor=5.0)
    assert s is not None and s.z > 3.5 and s.median == 100.0
    assert robust_z(base, 103.0, mad_floor=5.0).z < 3.5  # type: ignore[union-attr]
    assert robust_z(base[:5], 1e9, mad_floor=1.0) is None  # too short a baseline


def test_service_model_fit_and_pessimistic_single_size():
    pts = [(b, 0.4 + 0.04 * b) for b in (4, 8, 12, 16, 20)]
    m = service_model(pts)
    assert m is not None and m.fitted
    assert m.throughput(10) == pytest.approx(10 / 0.8, rel=1e-6)
    one = service_model([(8.0, 0.72)] * 4)
    assert one is not None and not one.fitted
    assert one.throughput(16) == pytest.approx(8 / 0.72)  # no credit for bigger batches
    assert one.throughput(4) == pytest.approx(4 / 0.72)  # all fixed cost for smaller ones
    assert service_model([(8.0, 0.7)]) is None
