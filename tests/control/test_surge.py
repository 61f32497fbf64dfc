"""A surge (the load stepping up) is sized for at once, as KPA's panic mode does, and noise is
never taken for one: control/replicas.py `surging`, window.py `arrival_recent`."""

from __future__ import annotations

import dataclasses

import numpy as np

from gencluster.control.replicas import capacity_proposal, pod_capacity, surging
from gencluster.control.window import Window, WindowConfig
from gencluster.simulate.cli import load_spec
from gencluster.simulate.model import ModelParams
from gencluster.simulate.policies import make
from gencluster.simulate.run import run
from gencluster.simulate.traces import load

from .helpers import ref, sample
from .test_capacity import loaded

SCORECARD = "operator/gencluster/simulate/specs/scorecard.yaml"


def test_the_window_reports_the_last_intervals_arrivals_beside_its_own_rate():
    """Six 5 s scrapes at 10 req/s, then one at 70: the 30 s window's rate has moved a sixth of
    the way; the last interval's has all of it."""
    w = Window(WindowConfig.for_interval(5.0))
    done = 0
    v = None
    for i, rate in enumerate([10] * 7 + [70]):
        done += rate * 5 if i else 0
        v = w.update(5.0 * i, [sample(5.0 * i, latencies=[0.5] * done)], [ref()])
    assert v is not None and v.arrival_rate is not None and v.arrival_recent is not None
    assert abs(v.arrival_recent - 70.0) < 1e-6 and v.arrival_recent_s == 5.0
    assert 15.0 < v.arrival_rate < 25.0  # (5 x 10 + 70) / 6
    assert surging(v)


def test_a_surge_sizes_the_pods_for_the_recent_rate_upwards_only():
    _, v = loaded(3, 20.0)
    calm = capacity_proposal(v, pod_capacity(v), 3, 0.1)
    step = dataclasses.replace(v, arrival_recent=75.0, arrival_recent_s=5.0)
    hot = capacity_proposal(step, pod_capacity(step), 3, 0.1)
    lull = dataclasses.replace(v, arrival_recent=2.0, arrival_recent_s=5.0)
    quiet = capacity_proposal(lull, pod_capacity(lull), 3, 0.1)
    assert calm.replicas == 3  # ceil(20 / (8 / 0.72 x 0.7))
    assert hot.replicas == 10 and "surge" in hot.note  # ceil(75 / 7.78)
    assert quiet.replicas == calm.replicas  # a drop in the last interval is not a surge


def test_poisson_noise_is_never_a_surge():
    """20,000 intervals of Poisson arrivals at a steady rate (0.2 to 200 req/s, 1 to 15 s
    scrapes): the last interval's count against the window's rate never reads as a surge."""
    rng = np.random.default_rng(7)
    _, v = loaded(3, 1.0)
    false = 0
    for _ in range(20_000):
        rate, seconds = float(rng.uniform(0.2, 200.0)), float(rng.choice([1.0, 5.0, 15.0]))
        recent = rng.poisson(rate * seconds) / seconds
        false += surging(dataclasses.replace(v, arrival_rate=rate, arrival_recent=recent,
                                             arrival_recent_s=seconds))
    assert false == 0
    # while a doubling that lasts a whole interval is one, from a few req/s up
    for rate in (3.0, 10.0, 100.0):
        assert surging(dataclasses.replace(v, arrival_rate=rate, arrival_recent=2.5 * rate,
                                           arrival_recent_s=5.0))


def test_a_5x_step_is_sized_at_the_first_decision_after_it():
    """step5x: ~12 req/s, then ~75 from 600 s. At the first decision after the step the desired
    count covers the new rate (7 pods); sized by the 30 s window alone it was 4, then 6 at
    615 s and 9 at 630 s, each 30-60 s from serving."""
    spec = load_spec(SCORECARD)
    params = ModelParams()
    policy = make("gencluster", spec, params)
    asked: dict[float, int | None] = {}
    act = policy.act

    def record(t, pods, current):
        a = act(t, pods, current)
        asked[t] = a.replicas
        return a

    policy.act = record  # type: ignore[method-assign]
    trace = load("step5x")
    short = dataclasses.replace(trace, requests=trace.requests[:700], leak=trace.leak[:700])
    run(short, spec, policy, params)
    assert all((asked[t] or 0) <= 4 for t in asked if 300 <= t < 600)  # before: a few pods
    assert (asked[605.0] or 0) >= 7
