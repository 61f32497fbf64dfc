"""The scorecard's baselines and oracle: their algorithms on small hand-made cases, the batch
sweep (and its early stop, which must never change the choice), and the published traces."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.simulate.model import ModelParams, SimPod
from gencluster.simulate.oracle import schedule
from gencluster.simulate.policies import Hpa, Keda, Kpa, make
from gencluster.simulate.run import arrivals, run
from gencluster.simulate.scorecard import judge
from gencluster.simulate.shapes import SHAPES, generate
from gencluster.simulate.sweep import batch_sizes, key, run_policy
from gencluster.simulate.traces import Trace, load

from .helpers import spec

S = spec(replicas={"min": 1, "max": 20})


def pod(name: str, queued: int, running: int = 0, ready_at: float = 0.0) -> SimPod:
    p = SimPod(name, f"u-{name}", 0.0, ready_at, 4)
    p.queue.extend([0.0] * queued)
    p.running = [0.0] * running
    return p


def test_hpa_scales_on_in_flight_plus_queued_per_pod_with_the_scrape_lag():
    h = Hpa(S, 4)  # target 4 in flight + queued per pod
    pods = [pod("a", 8, 4), pod("b", 8, 4)]  # 12 each: ratio 3
    h.observe(6.0, pods)  # not a scrape second: nothing seen
    assert h.act(15.0, pods, 2).replicas == 2  # no sample yet: the sync is skipped
    h.observe(7.0, pods)  # scraped at 7 (and 22, 37, ...)
    assert h.act(15.0, pods, 2).replicas == 6  # ceil(2 x 3) = 6, within max(4 pods, 100 %)


def test_hpa_counts_starting_pods_as_idle_on_a_scale_up_and_holds_on_a_flip():
    h = Hpa(S, 4)
    pods = [pod("a", 4, 4), pod("b", 4, 4), pod("c", 0, 0, ready_at=1e9)]
    h.observe(7.0, pods)
    # ready average 8 vs 4: ratio 2; with the starting pod at 0: 16 / 3 / 4 = 1.33 -> 4 pods
    assert h.act(15.0, pods, 3).replicas == 4


def test_keda_uses_the_total_over_all_replicas_and_activates_from_zero():
    zero = spec(replicas={"min": 0, "max": 20})
    k = Keda(zero, 4)
    pods = [pod("a", 10, 4), pod("b", 10, 4)]
    k.observe(7.0, pods)
    assert k.act(15.0, pods, 2).replicas == 6  # ceil(28 / 4) = 7, limited to max(2 + 4, 200 %)
    k2 = Keda(zero, 4)
    k2.scraped = {"x": 3}
    assert k2.act(30.0, [], 0).replicas == 1  # activation: something to do, none running


def test_kpa_panics_at_twice_the_target_and_never_scales_down_while_panicking():
    k = Kpa(S, 10)  # target value 7 per pod
    calm = [pod("a", 2, 5), pod("b", 2, 5)]  # 14 total: 2 pods
    k.observe(0.0, calm)
    k.act(0.0, calm, 2)
    assert k.panic_since == 0.0  # a new autoscaler over more than one pod starts panicking
    for t in range(1, 70):
        k.observe(float(t), calm)
    assert k.act(70.0, calm, 2).replicas == 2 and k.panic_since is None
    hot = [pod("a", 40, 10), pod("b", 40, 10)]  # 100 total in the panic window
    for t in range(70, 76):
        k.observe(float(t), hot)
    d = k.act(76.0, hot, 2).replicas
    assert k.panic_since == 76.0 and d == math.ceil(100 / 7)
    for t in range(76, 110):
        k.observe(float(t), calm)
    assert k.act(110.0, calm, d).replicas == d  # still panicking: no decrease
    for t in range(110, 200):
        k.observe(float(t), calm)
    assert k.act(200.0, calm, d).replicas < d  # 60 s calm: stable mode again


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=300), st.floats(1.0, 30.0),
       st.integers(0, 90))
def test_oracle_schedule_covers_every_second_of_need_ahead(reqs, cap, lead):
    plan = schedule(reqs, cap, lead, 1, 10_000)
    r = np.asarray(reqs, dtype=float)
    pad = np.pad(r, (5, 4), mode="edge")
    need = [math.ceil(pad[i:i + 10].mean() / cap - 1e-9) for i in range(len(r))]
    for t in range(len(r)):
        ahead = need[t:t + lead + 1]
        assert plan[t] == max(1, max(ahead))


def short_trace() -> Trace:
    rng = np.random.default_rng(4)
    rate = np.concatenate([np.full(240, 12.0), np.full(360, 45.0)])
    return Trace("short", tuple(int(x) for x in rng.poisson(rate)), (0.0,) * 600)


def test_the_sweep_keeps_the_best_size_and_its_early_stop_changes_nothing():
    s = spec(replicas={"min": 1, "max": 16}, batching={"max": 16})
    tr = short_trace()
    arr = arrivals(tr, 1)
    p = ModelParams()
    chosen = run_policy("hpa", tr, s, p, 1, arr, "best")
    full = [run(tr, s, make("hpa", s, p, b), p, 1, arr) for b in batch_sizes(s)]
    best = min(full, key=key)
    assert chosen["baseline_batch"] == best["final_batch"]
    assert key(chosen) == key(best)
    assert set(chosen["batch_sweep"]) == {str(b) for b in batch_sizes(s)}


def test_batch_sizes_are_powers_of_two_up_to_the_max():
    assert batch_sizes(spec(batching={"max": 32})) == [1, 2, 4, 8, 16, 32]
    assert batch_sizes(spec(batching={"min": 3, "max": 20, "initial": 4})) == [4, 8, 16, 20]


def test_the_oracle_serves_a_step_it_knows_is_coming():
    s = spec(replicas={"min": 1, "max": 16})
    tr = short_trace()
    res = run_policy("oracle", tr, s, ModelParams(), 1, arrivals(tr, 1), None)
    assert res["slo_violation_minutes"] == 0 and res["dropped"] == 0
    hpa = run_policy("hpa", tr, s, ModelParams(), 1, arrivals(tr, 1), 16)
    assert res["gpu_seconds"] < hpa["gpu_seconds"] or hpa["slo_violation_minutes"] > 0


@pytest.mark.parametrize("name", SHAPES)
def test_published_shapes_regenerate_bit_for_bit(name):
    t = load(name)
    assert t.requests == tuple(int(x) for x in generate(name))
    r = np.asarray(t.requests, dtype=float)
    assert len(r) >= 3600 and r.std() > math.sqrt(r.mean())  # noisier than Poisson


def test_judge_finds_the_best_baseline_and_the_targets():
    rows = [{"trace": "t", "policy": "gencluster", "slo_violation_minutes": 1, "dropped": 0,
             "gpu_seconds": 100},
            {"trace": "t", "policy": "hpa", "slo_violation_minutes": 2, "dropped": 5,
             "gpu_seconds": 90},
            {"trace": "t", "policy": "kpa", "slo_violation_minutes": 2, "dropped": 0,
             "gpu_seconds": 120},
            {"trace": "t", "policy": "oracle", "slo_violation_minutes": 0, "dropped": 0,
             "gpu_seconds": 80}]
    v = judge(rows)
    t = v["traces"]["t"]
    assert t["best_baseline"] == "hpa" and t["met_slo"] and t["met_dropped"]
    assert not t["met_gpu"] and t["vs_oracle"] == 1.25 and t["met_oracle"]
    assert v["sums"]["met_half"] is True
