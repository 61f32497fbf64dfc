"""Replica decisions: HPA's arithmetic and behaviour, and the guards that make it safe."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.control.replicas import ReplicaState, decide_replicas

from .helpers import pod_view, spec, view

FAST = spec(replicas={"min": 1, "max": 50},
            autoscaling={"scaleDown": {"stabilizationSeconds": 0, "maxPods": 1000,
                                       "periodSeconds": 15}})


def pods(queues, *, mem=50.0, stale=(), unready=()):
    return [pod_view(f"p{i}", uid=f"u{i}", queue=q, mem=mem, fresh=i not in stale,
                     ready=i not in unready)
            for i, q in enumerate(queues)]


def decide(s, v, current, state=None, now=1000.0):
    return decide_replicas(s, v, current, state or ReplicaState(since=0.0), now)


@pytest.mark.parametrize("queues, mem, p95, current, want", [
    ([16, 16, 16, 16], 50, None, 4, 8),  # queue ratio 2: double
    ([8.5, 8.5, 8.5, 8.5], 50, None, 4, 4),  # within the 10 % tolerance
    ([16, 16, 16, 16], 95, None, 4, 8),  # largest wins (memory says 5)
    ([0, 0, 0, 0], 95, None, 4, 5),  # memory alone: ceil(4 x 95/80)
    ([0, 0, 0, 0], 50, None, 4, 1),  # queue empty: down to min (memory at 50 % is up-only)
    ([8, 8, 8, 8], 70, 5000, 4, 8),  # latency 2.5x, capped at 2x the ready pods
    ([8, 8, 8, 8], 75, 1000, 4, 4),  # latency under target: it abstains
    ([400] * 40, 50, None, 40, 50),  # max holds
])
def test_table(queues, mem, p95, current, want):
    d, _ = decide(FAST, view(pods(queues, mem=mem), p95_ms=p95), current)
    assert d.desired == want, d.reason
    assert d.reason


def test_missing_pods_count_as_idle_when_scaling_up():
    d, _ = decide(FAST, view(pods([24, 24, 0, 0], stale={2, 3})), 4)
    assert d.desired == 6  # (24 + 24 + 0 + 0) / 4 / 8 = 1.5


def test_missing_pods_count_as_at_target_when_scaling_down():
    d, _ = decide(FAST, view(pods([0, 0, 0, 0], mem=10, stale={3})), 4)
    # queue (0, 0, 0, 8): ratio 0.25 of 4 pods (memory is up-only)
    assert d.desired == 1
    d, _ = decide(FAST, view(pods([4, 4, 4, 0], mem=10, stale={3})), 4)
    assert d.desired == 3  # (4 + 4 + 4 + 8) / 4 / 8 x 4 = 2.5 -> 3, not 12 / 3 / 8 x 3 = 2


def test_starting_pods_count_as_idle_when_scaling_up():
    d, _ = decide(FAST, view(pods([40, 40])), 4)  # 2 ready, 2 starting
    assert d.proposals[2].replicas == 10  # 80 queued / 8 per pod, not 2 x 40/8
    assert d.desired == 8  # the scale-up rate limit: max(4 + 4, 200 %)


def test_no_fresh_metrics_holds():
    d, _ = decide(FAST, view(pods([0, 0, 0], stale={0, 1, 2})), 3)
    assert d.desired == 3 and "no fresh metrics" in d.reason


def test_unreported_target_blocks_scale_down():
    d, _ = decide(FAST, view(pods([0, 0, 0, 0], mem=None)), 4)
    assert d.desired == 4 and "unavailable" in d.reason


def test_bounds_apply_even_without_metrics():
    s = spec(replicas={"min": 2, "max": 5})
    assert decide(s, view(pods([0], stale={0})), 1)[0].desired == 2
    assert decide(s, view(pods([0] * 9)), 9)[0].desired == 5


def test_scale_down_waits_for_the_stabilisation_window():
    s = spec(replicas={"min": 1, "max": 20})  # default scaleDown: 300 s
    state = ReplicaState()
    current = 10
    changed_at = None
    for t in range(0, 600, 15):
        d, state = decide_replicas(s, view(pods([0] * current, mem=10)), current, state, float(t))
        if d.desired != current and changed_at is None:
            changed_at = t
        current = d.desired
    assert changed_at is not None and changed_at >= 300


def test_scale_up_rate_limit():
    d, _ = decide(FAST, view(pods([400, 400])), 2)
    assert d.desired == 6 and "limited" in d.reason  # max(2 + 4 pods, 2 x 200 %)


def test_scale_down_rate_limit_takes_the_policy_allowing_most_change():
    s = spec(replicas={"min": 1, "max": 50},
             autoscaling={"scaleDown": {"stabilizationSeconds": 0, "maxPods": 2,
                                        "maxPercent": 10, "periodSeconds": 60}})
    d, st1 = decide(s, view(pods([0] * 20, mem=10)), 20)
    assert d.desired == 18  # max change of (2 pods, 10 % = 2)
    d, _ = decide(s, view(pods([0] * 18, mem=10)), 18, st1, now=1030.0)
    assert d.desired == 18  # the period's budget is spent


def test_capacity_floor_blocks_a_scale_down_the_load_needs():
    service = tuple((8.0, 1.0) for _ in range(12))  # 8 req/s per pod at batch 8
    v = view([pod_view(f"p{i}", uid=f"u{i}", queue=0, mem=10, batch=8) for i in range(10)],
             arrival_rate=56.0, service=service)
    d, _ = decide(FAST, v, 10)
    assert d.desired == 10 and "capacity" in d.reason  # 56 / (8 x 0.7) = 10


queue_st = st.one_of(st.none(), st.floats(0, 500))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(queue_st, st.one_of(st.none(), st.floats(0, 100)), st.booleans()),
                min_size=0, max_size=12),
       st.integers(0, 60), st.integers(0, 20), st.integers(0, 30),
       st.one_of(st.none(), st.floats(0, 60000)))
def test_bounds_always_hold(pod_specs, current, lo, span, p95):
    s = spec(replicas={"min": lo, "max": lo + span + 1 if lo + span + 1 <= 1000 else 1000})
    ps = [pod_view(f"p{i}", uid=f"u{i}", queue=q, mem=mm, fresh=fresh)
          for i, (q, mm, fresh) in enumerate(pod_specs)]
    d, _ = decide(s, view(ps, p95_ms=p95), current)
    assert s.replicas.min <= d.desired <= s.replicas.max


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(0, 200), min_size=1, max_size=10), st.floats(0, 200),
       st.integers(1, 30))
def test_more_queue_never_means_fewer_replicas(queues, extra, current):
    low, _ = decide(FAST, view(pods(queues)), current)
    high, _ = decide(FAST, view(pods([q + extra for q in queues])), current)
    assert high.desired >= low.desired


@settings(max_examples=100, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=10), st.integers(1, 40))
def test_no_fresh_metrics_never_scales_down(stale_flags, current):
    ps = [pod_view(f"p{i}", uid=f"u{i}", queue=0, mem=0, fresh=False)
          for i in range(len(stale_flags))]
    s = spec(replicas={"min": 0, "max": 100})
    d, _ = decide(s, view(ps), current)
    assert d.desired >= current


@settings(max_examples=60, deadline=None)
@given(st.floats(20, 400), st.floats(0, 19), st.integers(1, 8), st.integers(2, 40))
def test_at_most_one_scale_down_per_window_under_oscillating_input(hi, lo, half_period, start):
    window = 300
    s = spec(replicas={"min": 1, "max": 100},
             autoscaling={"scaleDown": {"stabilizationSeconds": window, "maxPods": 1000,
                                        "periodSeconds": 15}})
    state, current, downs = ReplicaState(), start, []
    for k in range(0, 120):  # 30 minutes at 15 s
        t = 15.0 * k
        demand = hi if (k // half_period) % 2 == 0 else lo  # total queue across the cluster
        v = view(pods([demand / current] * current, mem=10.0))
        d, state = decide_replicas(s, v, current, state, t)
        if d.desired < current:
            downs.append(t)
        current = d.desired
    for t in downs:
        assert len([u for u in downs if t <= u < t + window]) <= 1
