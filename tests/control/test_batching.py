"""AIMD batch sizes per pod: table, bounds, monotonicity, fixed mode, new pods' default."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.control.batching import BatchState, aimd_step, decide_batches

from .helpers import pod_view, spec, view

B = spec(batching={"min": 1, "max": 32, "initial": 8, "latencySloMs": 2000,
                   "increaseStep": 2, "decreasePercent": 10}).batching


@pytest.mark.parametrize("kw, size, want", [
    (dict(p95_last_ms=1000, completed_last=50, fill=8), 8, 10),  # under SLO, full: +step
    (dict(p95_last_ms=1000, completed_last=50, fill=2), 8, 8),  # batches not full: hold
    (dict(p95_last_ms=1900, completed_last=50, fill=8), 8, 8),  # inside the margin: hold
    (dict(p95_last_ms=2500, p95_ms=2400, completed_last=50, fill=20), 20, 18),  # breach: x0.9
    (dict(p95_last_ms=2500, p95_ms=1500, completed_last=50, fill=20), 20, 20),  # window calm
    (dict(p95_last_ms=2500, p95_ms=2400, completed_last=50, fill=9), 20, 20),  # not full: hold
    (dict(p95_last_ms=2500, p95_ms=2400, completed_last=2, fill=20), 20, 20),  # too few
    (dict(p95_last_ms=1000, p95_ms=2400, completed_last=50, fill=8), 8, 8),  # window not calm
    (dict(p95_last_ms=1000, completed_last=50, fill=8, mem=90), 20, 18),  # memory high
    (dict(p95_last_ms=1000, completed_last=50, fill=8, new_ooms=1), 20, 18),  # new OOM
    (dict(p95_last_ms=2500, completed_last=50, queue=100, mem=50), 8, 12),  # backlog: grow
    (dict(p95_last_ms=2500, completed_last=50, queue=100, mem=82), 8, 8),  # ...not near high
    (dict(p95_last_ms=1000, completed_last=50, fill=32), 32, 32),  # max holds
    (dict(p95_last_ms=9000, p95_ms=9000, completed_last=50, fill=1), 1, 1),  # min holds
])
def test_aimd_table(kw, size, want):
    new, why = aimd_step(B, size, pod_view(**kw))
    assert new == want
    assert bool(why) == (new != size)


def test_stale_pod_keeps_its_size():
    assert aimd_step(B, 12, pod_view(fresh=False))[0] == 12


def test_a_latency_cut_settles_before_the_next():
    slow = pod_view(p95_last_ms=3000, p95_ms=3000, completed_last=50, fill=20, batch=20)
    d1, st1 = decide_batches(B, view([slow]), BatchState(), 0.0)
    assert d1.sizes == {"p1": 18}
    d2, st2 = decide_batches(B, view([slow]), st1, 15.0)
    assert d2.sizes == {"p1": 18}  # the window still shows size 20
    d3, _ = decide_batches(B, view([slow]), st2, 31.0)
    assert d3.sizes == {"p1": 16}
    hot = pod_view(p95_last_ms=3000, p95_ms=3000, completed_last=50, fill=20, batch=20, mem=90)
    d4, _ = decide_batches(B, view([hot]), st1, 15.0)
    assert d4.sizes == {"p1": 16}  # memory pressure does not wait


def test_fixed_mode_is_always_initial():
    fixed = spec(batching={"mode": "fixed", "initial": 6}).batching
    d, _ = decide_batches(fixed, view([pod_view(batch=9, p95_last_ms=100, completed_last=99,
                                                  fill=9)]), BatchState(), 0.0)
    assert d.sizes == {"p1": 6} and d.default == 6 and d.pushes == ("p1",)


def test_per_pod_sizes_and_default_for_new_pods():
    pods = [pod_view("a", uid="ua", batch=8, p95_last_ms=500, completed_last=50, fill=8),
            pod_view("b", uid="ub", batch=8, p95_last_ms=3000, p95_ms=3000, completed_last=50,
                     fill=8)]
    d, state = decide_batches(B, view(pods), BatchState(default=8), 0.0)
    assert d.sizes == {"a": 10, "b": 7}
    assert {c.pod for c in d.changes} == {"a", "b"} and set(d.pushes) == {"a", "b"}
    assert d.default == 7  # lower median: new pods start conservative
    # a replaced pod (new uid) starts from what it reports, not from its predecessor
    pods2 = [pod_view("a", uid="ua2", batch=7), pods[1]]
    d2, _ = decide_batches(B, view(pods2), state, 15.0)
    assert d2.sizes["a"] == 7


def test_pods_still_starting_do_not_hold_the_default_down():
    # One serving pod grows under a backlog while two new pods have not reported yet: new pods
    # should start from what the serving pod found, not from the old default the others carry.
    pods = [pod_view("a", uid="ua", batch=2, queue=9, completed_last=50, p95_last_ms=50, fill=2),
            pod_view("b", uid="ub", fresh=False), pod_view("c", uid="uc", fresh=False)]
    d, _ = decide_batches(B, view(pods), BatchState(default=2), 0.0)
    assert d.sizes["a"] > 2 and d.default == d.sizes["a"] and d.default_changed
    # no pod serving: nothing is known, the default holds
    d2, _ = decide_batches(B, view(pods[1:]), BatchState(default=5), 0.0)
    assert d2.default == 5 and not d2.default_changed


def test_operator_restart_adopts_what_pods_run():
    d, _ = decide_batches(B, view([pod_view(batch=13)]), BatchState(), 0.0)
    assert d.sizes == {"p1": 13} and d.pushes == ()


p95s = st.one_of(st.none(), st.floats(0, 100000))
mems = st.one_of(st.none(), st.floats(0, 120))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 64), p95s, mems, st.floats(0, 500), st.floats(0, 1000),
       st.one_of(st.none(), st.floats(0, 64)), st.floats(0, 3))
def test_bounds_hold(size, p95, mem, queue, completed, fill, ooms):
    new, _ = aimd_step(B, size, pod_view(p95_last_ms=p95, mem=mem, queue=queue,
                                         completed_last=completed, fill=fill, new_ooms=ooms))
    assert B.min <= new <= B.max


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 32), st.floats(0, 10000), st.floats(0, 10000), mems, st.floats(0, 500),
       st.one_of(st.none(), st.floats(0, 64)))
def test_slower_never_means_bigger(size, p1, p2, mem, queue, fill):
    lo, hi = sorted((p1, p2))
    kw = dict(mem=mem, queue=queue, completed_last=100, fill=fill)
    fast, _ = aimd_step(B, size, pod_view(p95_last_ms=lo, p95_ms=lo, **kw))
    slow, _ = aimd_step(B, size, pod_view(p95_last_ms=hi, p95_ms=hi, **kw))
    assert slow <= fast


@settings(max_examples=200, deadline=None)
@given(st.integers(2, 32), st.floats(0, 100000), st.floats(0, 500))
def test_new_oom_always_shrinks(size, p95, queue):
    new, why = aimd_step(B, size, pod_view(p95_last_ms=p95, queue=queue, completed_last=100,
                                           new_ooms=1))
    assert new < size and "OOM" in why
