"""When the periodic resync reconciles a GenerationCluster: one budget for the whole operator.

The resync is the level-triggered safety net (drift repair, status refresh). Its cost grows with
the clusters managed: each reconcile lists the children of seven kinds and the pods, and writes
status (about nine requests). With a budget of B resync reconciles per second, each cluster is
resynced every max(period, clusters / B) seconds on average: at 5/s and 15 s, every period up to
75 clusters (exactly as without a budget: every timer firing reconciles), every 200 s on average
at 1,000. Paced waits are spread (a factor uniform in [0.5, 1.5) drawn after each reconcile), so
clusters resumed together by an operator restart do not resync in one burst every interval.

Never paced: create, update and resume (changes), and a resync of a cluster whose pods,
Deployment or StatefulSet changed since its last reconcile (its conditions follow within one
period at any scale). Only the unchanged clusters' safety net waits.
"""

from __future__ import annotations


def resync_interval(period_s: float, managed: int, budget_per_s: float) -> float:
    """Mean seconds between resyncs of one cluster; the period itself when the budget allows
    (or there is no budget: 0)."""
    if budget_per_s <= 0:
        return period_s
    return max(period_s, managed / budget_per_s)


def resync_due(last_s: float | None, now_s: float, period_s: float, managed: int,
               budget_per_s: float, jitter: float, changed: bool) -> bool:
    """Whether this timer firing reconciles the cluster.

    last_s: when its last reconcile (any trigger) ended, None if never; jitter in [0, 1), drawn
    after that reconcile. Unpaced (within the budget), every firing is due.
    """
    interval = resync_interval(period_s, managed, budget_per_s)
    if last_s is None or changed or interval <= period_s:
        return True
    return now_s - last_s >= interval * (0.5 + min(max(jitter, 0.0), 1.0))
