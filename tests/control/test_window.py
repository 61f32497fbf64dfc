"""The window's arithmetic: deltas not cumulative values, resets, restarts, staleness, bad values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.control import samples as m
from gencluster.control.quantile import histogram_quantile
from gencluster.control.samples import HistogramSample, PodSample
from gencluster.control.window import Window, WindowConfig, memory_percent

from .helpers import GIB, ref, sample

CFG = WindowConfig(latency_window_s=30.0, stale_after_s=45.0, history_s=900.0)


def test_p95_comes_from_bucket_deltas_not_lifetime_counts():
    w = Window(CFG)
    slow_history = [6.0] * 1000  # the pod's lifetime: slow
    w.update(0.0, [sample(0.0, latencies=slow_history)], [ref()])
    v = w.update(15.0, [sample(15.0, latencies=slow_history + [0.2] * 100)], [ref()])
    assert v.p95_ms is not None and v.p95_ms <= 250.0  # only the 100 new fast requests count
    assert v.pods["p1"].p95_last_ms == pytest.approx(v.p95_ms)


def test_rates_from_counter_deltas():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, codes={"200": 1000, "500": 10})], [ref()])
    v = w.update(10.0, [sample(10.0, codes={"200": 1090, "500": 20})], [ref()])
    assert v.rps == pytest.approx(10.0)
    assert v.error_rate_permille == pytest.approx(100.0)


def test_counter_reset_counts_from_zero():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, codes={"200": 5000})], [ref()])
    v = w.update(10.0, [sample(10.0, codes={"200": 30})], [ref()])  # process restarted
    assert v.rps == pytest.approx(3.0)
    assert v.restarts == 1


def test_new_pod_uid_only_sets_a_baseline():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, codes={"200": 100})], [ref()])
    v = w.update(10.0, [sample(10.0, uid="u2", codes={"200": 7000})], [ref(uid="u2")])
    assert v.rps is None  # no delta yet for the new pod: not a 700 rps spike
    assert v.restarts == 1
    v = w.update(20.0, [sample(20.0, uid="u2", codes={"200": 7050})], [ref(uid="u2")])
    assert v.rps == pytest.approx(5.0)


def test_histogram_reset_uses_new_counts():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, latencies=[3.0] * 500)], [ref()])
    v = w.update(10.0, [sample(10.0, latencies=[0.2] * 20)], [ref()])
    assert v.p95_ms is not None and v.p95_ms <= 250.0


def test_staleness_per_pod():
    w = Window(CFG)
    pods = [ref("a", "ua"), ref("b", "ub")]
    w.update(0.0, [sample(0.0, "a", "ua", queue=3), sample(0.0, "b", "ub", queue=5)], pods)
    v = w.update(30.0, [sample(30.0, "a", "ua", queue=3)], pods)
    assert v.pods["b"].fresh and v.pods_reporting == 2  # 30 s old: still fresh
    v = w.update(60.0, [sample(60.0, "a", "ua", queue=3)], pods)
    assert not v.pods["b"].fresh and v.pods["b"].age_s == pytest.approx(60.0)
    assert v.pods_reporting == 1 and v.queue_depth == 3.0


def test_departed_pods_are_forgotten_and_unknown_pods_are_missing():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, "a", "ua")], [ref("a", "ua")])
    v = w.update(10.0, [], [ref("b", "ub")])
    assert set(v.pods) == {"b"} and not v.pods["b"].fresh and v.pods_reporting == 0


def test_duplicate_or_old_sample_is_ignored():
    w = Window(CFG)
    w.update(10.0, [sample(10.0, codes={"200": 100})], [ref()])
    v = w.update(20.0, [sample(5.0, codes={"200": 0})], [ref()])
    assert v.restarts == 0


def test_memory_percent_contract_and_dcgm():
    dev0, dev1 = (("device", "cuda:0"),), (("device", "cuda:1"),)
    g = {(m.GPU_MEMORY_USED, dev0): 4 * GIB, (m.GPU_MEMORY_TOTAL, dev0): 16 * GIB,
         (m.GPU_MEMORY_USED, dev1): 12 * GIB, (m.GPU_MEMORY_TOTAL, dev1): 16 * GIB}
    assert memory_percent(g) == pytest.approx(75.0)  # the fullest device
    dcgm = {(m.DCGM_FB_USED, (("gpu", "0"),)): 30000.0, (m.DCGM_FB_FREE, (("gpu", "0"),)): 10000.0}
    assert memory_percent(dcgm) == pytest.approx(75.0)
    assert memory_percent({}) is None


def test_cache_hit_ratio_uses_final_tier_misses():
    w = Window(CFG)
    c0 = {("l1", "hit"): 0, ("l1", "miss"): 0, ("redis", "hit"): 0, ("redis", "miss"): 0}
    c1 = {("l1", "hit"): 30, ("l1", "miss"): 70, ("redis", "hit"): 40, ("redis", "miss"): 30}
    w.update(0.0, [sample(0.0, cache=c0)], [ref()])
    v = w.update(10.0, [sample(10.0, cache=c1)], [ref()])
    assert v.cache_hit_percent == pytest.approx(70.0)  # 70 hits of 100 lookups


def test_oom_and_batch_fill_of_last_interval():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, oom=2, batches=[1.0] * 10)], [ref()])
    v = w.update(10.0, [sample(10.0, oom=3, batches=[1.0] * 10 + [8.0] * 10)], [ref()])
    assert v.pods["p1"].new_ooms == 1.0
    assert v.pods["p1"].batch_fill == pytest.approx(7.6)  # p90, interpolated in (4, 8]


def test_saturated_intervals_feed_the_service_model():
    w = Window(CFG)
    w.update(0.0, [sample(0.0, queue=10, batches=[])], [ref()])
    v = w.update(10.0, [sample(10.0, queue=12, batches=[8.0] * 20)], [ref()])
    assert v.service == ((8.0, 0.5),)  # 20 batches of 8 in 10 s, never idle


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -5.0])
def test_bad_values_are_ignored(bad: float):
    w = Window(CFG)
    w.update(0.0, [sample(0.0, codes={"200": 100}, queue=2)], [ref()])
    v = w.update(10.0, [sample(10.0, codes={"200": bad}, queue=bad, mem_percent=None)], [ref()])
    assert v.queue_depth is None and v.rps in (None, 0.0)
    v = w.update(20.0, [sample(20.0, codes={"200": 150}, queue=1)], [ref()])
    assert v.rps == pytest.approx(2.5)  # baseline kept across the bad scrape: 50 over 20 s
    assert v.queue_depth == 1.0


values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**6))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(values, values, values, values, st.booleans()), min_size=1,
                max_size=12))
def test_aggregates_are_never_nan_or_negative(seq):
    w = Window(CFG)
    for i, (req, q, mem, lat, restart) in enumerate(seq):
        t = 10.0 * i
        h = HistogramSample(((0.5, float(lat)), (math.inf, float(lat))), float(lat), 1.0)
        s = PodSample(t, "p", "u2" if restart else "u1",
                      {(m.REQUESTS_TOTAL, (("code", "200"),)): float(req)},
                      {(m.QUEUE_DEPTH, ()): float(q),
                       (m.GPU_MEMORY_USED, ()): float(mem), (m.GPU_MEMORY_TOTAL, ()): 100.0},
                      {(m.REQUEST_DURATION, (("outcome", "ok"),)): h})
        v = w.update(t, [s], [ref("p", "u2" if restart else "u1")])
        for x in (v.p95_ms, v.rps, v.queue_depth, v.gpu_memory_percent, v.error_rate_permille,
                  v.arrival_rate):
            assert x is None or (math.isfinite(x) and x >= 0.0)


def test_quantile_matches_prometheus_interpolation():
    buckets = {0.1: 10.0, 0.5: 60.0, 1.0: 100.0, math.inf: 100.0}
    assert histogram_quantile(0.5, buckets) == pytest.approx(0.1 + 0.4 * 40 / 50)
    assert histogram_quantile(0.95, buckets) == pytest.approx(0.5 + 0.5 * 35 / 40)
    assert histogram_quantile(0.99, {1.0: 1.0, math.inf: 100.0}) == 1.0  # +Inf bucket
    assert histogram_quantile(0.95, {}) is None
    assert histogram_quantile(0.95, {1.0: 0.0, math.inf: 0.0}) is None
