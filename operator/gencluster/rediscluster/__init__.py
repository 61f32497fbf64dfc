"""Redis Cluster bootstrap, repair and resharding.

Pure core: `model` (observations), `planner` (observation -> actions), `health` (summary and
Events). Thin edges: `observer` and `executor` (redis-py, admin ACL user), `reconcile` (the
loop the reconcile handler calls). See docs/cache.md.
"""

from .executor import ActionResult, AdminConnector, Connector, apply_actions
from .health import ClusterHealth, cache_condition, cache_status, cluster_events, cluster_health
from .model import ClusterObservation, Member, NodeView, parse_cluster_nodes
from .observer import observe_cluster
from .planner import (
    Action,
    AssignSlots,
    Failover,
    Forget,
    Meet,
    MigrateSlots,
    Refuse,
    Replicate,
    StableSlots,
    Wait,
    plan_cluster,
    statefulset_replicas,
)
from .reconcile import ReconcileResult, converge, reconcile_cluster

__all__ = [
    "Action",
    "ActionResult",
    "AdminConnector",
    "AssignSlots",
    "ClusterHealth",
    "ClusterObservation",
    "Connector",
    "Failover",
    "Forget",
    "Meet",
    "Member",
    "MigrateSlots",
    "NodeView",
    "ReconcileResult",
    "Refuse",
    "Replicate",
    "StableSlots",
    "Wait",
    "apply_actions",
    "cache_condition",
    "cache_status",
    "cluster_events",
    "cluster_health",
    "converge",
    "observe_cluster",
    "parse_cluster_nodes",
    "plan_cluster",
    "reconcile_cluster",
    "statefulset_replicas",
]
