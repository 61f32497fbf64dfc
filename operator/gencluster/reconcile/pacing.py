"""When the periodic resync may reconcile a GenerationCluster again: one budget for the operator.

The resync is the level-triggered safety net (drift repair, status refresh). Its cost grows with
the clusters managed: each reconcile lists the children of seven kinds and the pods, and writes
status. With a budget of B resync reconciles per second across the operator, each cluster is
resynced every max(period, clusters / B) seconds on average (at 5/s: every 15 s up to 75
clusters, every 200 s at 1,000). Changes (create, update, resume) are never paced; only the
timer's safety net waits.
"""

from __future__ import annotations

TOLERANCE_S = 1.0  # a timer firing this much early still counts as due (timers drift)


def resync_interval(period_s: float, managed: int, budget_per_s: float) -> float:
    """Mean seconds between resyncs of one cluster; the period itself when the budget allows."""
    if budget_per_s <= 0:
        return period_s
    return max(period_s, managed / budget_per_s)


def next_resync(now: float, period_s: float, managed: int, budget_per_s: float,
                jitter: float) -> float:
    """When this cluster's next resync is due, after a reconcile that ended at `now`.

    Unpaced, every timer firing is due (the old behaviour). Paced, the wait is the interval
    times a factor uniform in [0.5, 1.5) (`jitter` in [0, 1)): the mean stays the interval, and
    clusters that started together (an operator restart resumes them all at once) spread out
    instead of resyncing in one burst every interval.
    """
    interval = resync_interval(period_s, managed, budget_per_s)
    if interval <= period_s:
        return now + period_s - min(TOLERANCE_S, period_s / 2)
    return now + interval * (0.5 + min(max(jitter, 0.0), 1.0))


def resync_due(due_at: float | None, now: float) -> bool:
    return due_at is None or now >= due_at
