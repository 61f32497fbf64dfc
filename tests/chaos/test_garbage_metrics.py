"""Garbage metrics through the whole pure pipeline: scrapes -> Window -> decide.

Pods can report anything: NaN, +/-Inf, negative or wildly oscillating values, counters that go
backwards, stale scrapes, or one pod lying about its queue. Whatever they say, the loop must not
crash, must keep the replica count within [min, max], and must not shed pods faster than its
scale-down behaviour allows (here: at most one scale-down per stabilisation window).
"""
from __future__ import annotations

import itertools
import math

from control.helpers import ref, sample, spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gencluster.control.cycle import ControlState, decide
from gencluster.control.window import Window, WindowConfig

INTERVAL = 5.0
STABILISATION = 120
SPEC = spec(replicas={"min": 2, "max": 12},
            autoscaling={"intervalSeconds": int(INTERVAL),
                         "scaleDown": {"stabilizationSeconds": STABILISATION, "maxPods": 1,
                                       "maxPercent": 100, "periodSeconds": 15}},
            alerts={"anomalyDetection": True})
GARBAGE = st.one_of(st.just(math.nan), st.just(math.inf), st.just(-math.inf),
                    st.floats(-1e12, 1e12, allow_nan=False), st.just(0.0), st.just(1e300),
                    st.just(1.7e308))  # finite, but two of them sum to inf
SANE = st.floats(0, 50)


@st.composite
def pod_reports(draw: st.DrawFn) -> list[dict[str, float | None]]:
    """One tick's report of up to 12 pods: each value sane, garbage or missing."""
    n = draw(st.integers(1, 12))
    out = []
    for _ in range(n):
        value = st.one_of(SANE, GARBAGE, st.none())
        out.append({"queue": draw(value), "inflight": draw(value), "batch": draw(value),
                    "mem": draw(st.one_of(st.floats(0, 100), GARBAGE, st.none())),
                    "requests": draw(st.one_of(st.floats(0, 1e6), GARBAGE)),
                    "latency": draw(st.one_of(st.floats(0.001, 30.0), st.none())),
                    "stale": draw(st.booleans())})
    return out


def run(ticks: list[list[dict[str, float | None]]], liar: bool) -> list[tuple[float, int, int]]:
    """Drives the loop; returns (time, before, after) of every replica change."""
    window, state, current = Window(WindowConfig.for_interval(INTERVAL)), ControlState(), SPEC.replicas.min
    totals: dict[str, float] = {}
    changes = []
    for i, reports in enumerate(ticks):
        now = 1000.0 + i * INTERVAL
        samples, refs = [], []
        for j, r in enumerate(reports[:current]):
            pod = f"p{j}"
            refs.append(ref(pod, f"u{j}"))
            if r["stale"]:
                continue  # no scrape this tick
            totals[pod] = (r["requests"] if isinstance(r["requests"], float) else 0.0)
            lat = [r["latency"]] * 5 if r["latency"] is not None else []
            queue = 1e9 if liar and j == 0 else r["queue"]
            samples.append(sample(now, pod, f"u{j}", latencies=lat, codes={"200": totals[pod]},
                                  queue=queue, inflight=r["inflight"], batch=r["batch"],
                                  mem_percent=r["mem"]))
        view = window.update(now, samples, refs)
        decisions, state = decide(SPEC, view, current, state, now)
        desired = decisions.replicas.desired
        assert SPEC.replicas.min <= desired <= SPEC.replicas.max, (desired, view)
        if desired != current:
            changes.append((now, current, desired))
            current = desired
    return changes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pod_reports(), min_size=5, max_size=80), st.booleans())
def test_garbage_never_escapes_bounds_or_sheds_pods_fast(ticks, liar) -> None:  # type: ignore[no-untyped-def]
    changes = run(ticks, liar)
    downs = [t for t, before, after in changes if after < before]
    for a, b in itertools.pairwise(downs):
        assert b - a >= STABILISATION, f"two scale-downs {b - a:.0f} s apart: {changes}"


def test_a_wildly_oscillating_pod_holds_the_count() -> None:
    # Every other tick the pods report a huge queue, then nothing at all: the loop may scale up,
    # but the stabilisation window must keep it from scaling straight back down each time.
    high = [{"queue": 500.0, "inflight": 8.0, "batch": 4.0, "mem": 50.0, "requests": 1.0,
             "latency": 5.0, "stale": False}] * 12
    low = [{"queue": 0.0, "inflight": 0.0, "batch": 4.0, "mem": 5.0, "requests": 1.0,
            "latency": 0.01, "stale": False}] * 12
    changes = run([high if i % 2 == 0 else low for i in range(120)], liar=False)
    downs = [c for c in changes if c[2] < c[1]]
    assert len(downs) <= (120 * INTERVAL) // STABILISATION, changes


def test_a_pod_lying_about_its_queue_cannot_take_the_count_past_max() -> None:
    calm = [{"queue": 0.0, "inflight": 0.0, "batch": 4.0, "mem": 10.0, "requests": 1.0,
             "latency": 0.05, "stale": False}] * 12
    changes = run([calm] * 60, liar=True)
    assert all(after <= SPEC.replicas.max for _, _, after in changes)


def test_values_near_the_float_limit_do_not_overflow_the_sums() -> None:
    # Each is finite; summed over pods they overflow to inf (then ceil() would raise).
    huge = [{"queue": 1.7e308, "inflight": 1.7e308, "batch": 4.0, "mem": 50.0, "requests": 1.0,
             "latency": 0.05, "stale": False}] * 12
    changes = run([huge] * 10, liar=False)
    assert all(SPEC.replicas.min <= after <= SPEC.replicas.max for _, _, after in changes)
