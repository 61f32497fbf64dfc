"""The resync budget: unpaced (every firing reconciles) up to period x budget clusters; beyond,
the mean rate is the budget, spread out, and a changed cluster is never held back."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.reconcile.pacing import resync_due, resync_interval


def test_within_the_budget_every_firing_reconciles() -> None:
    assert resync_interval(15, 10, 5.0) == 15
    assert resync_interval(15, 75, 5.0) == 15  # the threshold: period x budget
    assert resync_interval(15, 10_000, 0.0) == 15  # budget 0: no limit
    # a change-triggered reconcile just before does not skip the safety net (as without a budget)
    assert resync_due(99.9, 100.0, 15, 10, 5.0, jitter=0.99, changed=False)
    assert resync_due(None, 0.0, 15, 1000, 5.0, jitter=0.5, changed=False)  # never reconciled


def test_paced_waits_but_a_change_does_not() -> None:
    assert resync_interval(15, 1000, 5.0) == 200
    assert not resync_due(0.0, 99.0, 15, 1000, 5.0, jitter=0.0, changed=False)  # 0.5 x 200
    assert resync_due(0.0, 100.0, 15, 1000, 5.0, jitter=0.0, changed=False)
    assert not resync_due(0.0, 299.0, 15, 1000, 5.0, jitter=0.999, changed=False)
    assert resync_due(0.0, 1.0, 15, 1000, 5.0, jitter=0.999, changed=True)


def test_many_clusters_share_the_budget_and_spread_out() -> None:
    rng = random.Random(7)
    n, period, budget = 1000, 15.0, 5.0
    # 1,000 clusters resumed at once, then the timer fires for each every 15 s, for an hour
    last = [(0.0, rng.random()) for _ in range(n)]
    runs_per_window = []
    for step in range(1, 241):
        now = step * period
        ran = 0
        for i, (t, j) in enumerate(last):
            if resync_due(t, now, period, n, budget, j, changed=False):
                last[i] = (now, rng.random())
                ran += 1
        runs_per_window.append(ran)
    rate = sum(runs_per_window[40:]) / (200 * period)  # after the first rounds
    assert 4.0 <= rate <= 6.0  # the budget, 5 a second, on average
    assert max(runs_per_window) <= period * budget * 2  # never a burst of all 1,000 at once


@settings(max_examples=300, deadline=None)
@given(st.floats(1, 3600), st.integers(0, 100_000), st.floats(0, 1000), st.floats(0, 1),
       st.floats(0, 1e6), st.floats(0, 1e6))
def test_paced_rate_never_exceeds_the_budget_nor_waits_past_one_and_a_half_intervals(
        period: float, managed: int, budget: float, jitter: float, last: float,
        wait: float) -> None:
    interval = resync_interval(period, managed, budget)
    due = resync_due(last, last + wait, period, managed, budget, jitter, changed=False)
    if wait >= 1.5 * interval:
        assert due  # nobody waits longer than 1.5 x the mean interval
    if due and interval > period:
        assert wait >= 0.5 * interval  # paced: never sooner than half the mean interval
    assert interval >= period
    if budget > 0:
        assert managed / interval <= budget + 1e-9  # the mean resync rate stays in the budget
