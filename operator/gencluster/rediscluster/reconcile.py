"""Observe -> plan -> apply, once (`reconcile_cluster`) or until converged (`converge`).

The reconcile handler calls one of these with the Redis pods it listed (pod name -> pod IP,
pod name -> Kubernetes node) and the admin credentials; everything else is decided by the
pure planner.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

from .executor import ActionResult, AdminConnector, Connector, apply_actions
from .health import ClusterHealth, cluster_health
from .model import ClusterObservation
from .observer import observe_cluster
from .planner import Action, Refuse, Wait, is_work, plan_cluster


@dataclass(frozen=True)
class ReconcileResult:
    observation: ClusterObservation  # before the actions
    plan: list[Action]
    results: list[ActionResult]
    health: ClusterHealth  # of `observation`

    @property
    def converged(self) -> bool:
        return not self.plan

    @property
    def refused(self) -> str | None:
        return next((a.reason for a in self.plan if isinstance(a, Refuse)), None)

    @property
    def waiting(self) -> str | None:
        return next((a.reason for a in self.plan if isinstance(a, Wait)), None)


async def reconcile_cluster(
    addresses: Mapping[str, str],
    connect: Connector,
    desired_shards: int,
    replicas_per_shard: int,
    *,
    k8s_nodes: Mapping[str, str] | None = None,
    timeout_s: float = 3.0,
) -> ReconcileResult:
    """One pass: observe every pod, plan, apply the plan's work."""
    if isinstance(connect, AdminConnector):
        await connect.retain(a for a in addresses.values() if a)
    obs = await observe_cluster(addresses, connect, k8s_nodes=k8s_nodes, timeout_s=timeout_s)
    plan = plan_cluster(obs, desired_shards, replicas_per_shard)
    results = await apply_actions(plan, connect) if any(is_work(a) for a in plan) else []
    return ReconcileResult(
        obs, plan, results, cluster_health(obs, desired_shards, replicas_per_shard)
    )


async def converge(
    addresses: Mapping[str, str],
    connect: Connector,
    desired_shards: int,
    replicas_per_shard: int,
    *,
    k8s_nodes: Mapping[str, str] | None = None,
    deadline_s: float = 30.0,
    pause_s: float = 0.2,
) -> ReconcileResult:
    """Reconcile repeatedly until the plan is empty, refused, or the deadline passes.

    Returns the last pass; its `health` is that of a converged cluster when `converged`.
    """
    end = time.monotonic() + deadline_s
    while True:
        r = await reconcile_cluster(
            addresses, connect, desired_shards, replicas_per_shard, k8s_nodes=k8s_nodes
        )
        if r.converged or r.refused or time.monotonic() >= end:
            return r
        await asyncio.sleep(pause_s)
