"""The resync budget: unpaced up to period x budget clusters; beyond, the mean rate is the budget."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.reconcile.pacing import next_resync, resync_due, resync_interval


def test_few_clusters_are_resynced_every_period():
    assert resync_interval(15, 10, 5.0) == 15
    due = next_resync(100.0, 15, 10, 5.0, jitter=0.99)
    assert not resync_due(due, 100.0 + 13.9) and resync_due(due, 100.0 + 14.0)  # next firing
    assert resync_interval(15, 10_000, 0.0) == 15  # budget 0: no limit


def test_many_clusters_share_the_budget_and_spread_out():
    assert resync_interval(15, 1000, 5.0) == 200
    rng = random.Random(7)
    # 1,000 clusters resumed at once, then resynced as due, for an hour of 15 s timer firings:
    due = [next_resync(0.0, 15, 1000, 5.0, rng.random()) for _ in range(1000)]
    runs_per_window = []
    for step in range(1, 241):
        now = step * 15.0
        ran = 0
        for i, d in enumerate(due):
            if resync_due(d, now):
                due[i] = next_resync(now, 15, 1000, 5.0, rng.random())
                ran += 1
        runs_per_window.append(ran)
    rate = sum(runs_per_window[40:]) / (200 * 15.0)  # after the first rounds
    assert 4.0 <= rate <= 6.0  # the budget, 5 a second, on average
    assert max(runs_per_window) <= 15 * 5.0 * 2  # never a burst of all 1,000 at once


@settings(max_examples=200, deadline=None)
@given(st.floats(1, 3600), st.integers(0, 100_000), st.floats(0, 1000), st.floats(0, 1),
       st.floats(0, 1e9))
def test_due_is_never_sooner_than_almost_a_period(period, managed, budget, jitter, now):
    due = next_resync(now, period, managed, budget, jitter)
    assert due - now >= period / 2 - 1e-6 * max(1.0, now)  # at most 1 s early, never a hot loop
    assert due - now <= 1.5 * max(period, managed / budget if budget > 0 else period) + 1e-6 * max(1.0, now)
