"""Redis Cluster mode at the edge: join the pods into one cluster, repair it, report it.

The planning is pure (`gencluster.rediscluster.planner`); this module lists the Redis pods,
keeps one admin connection pool per GenerationCluster, runs the planner's actions against the
pods (bounded in time, so one cluster never stalls the operator), and remembers the previous
health so that failovers and degradations become Events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .api.spec import GenerationClusterSpec
from .health import CacheObservation
from .kube.client import Kube
from .rediscluster import (
    AdminConnector,
    ClusterHealth,
    cache_condition,
    cache_status,
    cluster_events,
    converge,
    statefulset_replicas,
)
from .render import names
from .render.redis import REDIS_PORT, RedisAuth

CONVERGE_DEADLINE_S = 20.0


@dataclass
class _ClusterMemory:
    connector: AdminConnector
    auth: RedisAuth
    health: ClusterHealth | None = None
    # The last fully healthy observation: failovers are found against it, since the passes in
    # between may see the shard with its master failing and no replica promoted yet.
    last_ok: ClusterHealth | None = None
    failovers_reported: set[str] = field(default_factory=set)
    statefulset_replicas: int | None = None
    pending_events: list[tuple[str, str, str]] = field(default_factory=list)


_MEMORY: dict[tuple[str, str], _ClusterMemory] = {}


def carried_statefulset_replicas(namespace: str, name: str) -> int | None:
    """Pods the Redis StatefulSet must keep while a shrink drains (None: the spec's count)."""
    mem = _MEMORY.get((namespace, name))
    return mem.statefulset_replicas if mem else None


async def forget(namespace: str, name: str) -> None:
    mem = _MEMORY.pop((namespace, name), None)
    if mem:
        await mem.connector.aclose()


def _memory(namespace: str, name: str, auth: RedisAuth) -> _ClusterMemory:
    key = (namespace, name)
    mem = _MEMORY.get(key)
    if mem is None or mem.auth != auth:
        mem = _MEMORY[key] = _ClusterMemory(connector=AdminConnector(auth), auth=auth)
    return mem


async def observe_redis_cluster(kube: Kube, name: str, namespace: str, spec: GenerationClusterSpec,
                                want: int, ready: int, endpoint: str,
                                auth: RedisAuth | None) -> CacheObservation:
    mode = "cluster"
    if auth is None:
        return CacheObservation(mode, False, "CacheUnavailable", "no Redis credentials yet",
                                {"mode": mode, "state": "unavailable"})
    pods: list[dict[str, Any]] = await kube.list(
        "v1", "Pod", namespace, names.selector_string(name, "cache"))
    # A cluster pod only turns Ready once joined, so join every Running pod with an IP.
    live = [p for p in pods if (p.get("status") or {}).get("podIP")
            and (p.get("status") or {}).get("phase") == "Running"
            and not p["metadata"].get("deletionTimestamp")]
    if not live:
        return CacheObservation(mode, False, "CacheBootstrapping", f"{ready}/{want} Redis pods ready",
                                {"mode": mode, "state": "bootstrapping", "endpoint": endpoint})
    addresses = {p["metadata"]["name"]: f"{p['status']['podIP']}:{REDIS_PORT}" for p in live}
    k8s_nodes = {p["metadata"]["name"]: (p.get("spec") or {}).get("nodeName", "") for p in live}
    mem = _memory(namespace, name, auth)
    result = await converge(addresses, mem.connector, spec.cache.shards, spec.cache.replicas_per_shard,
                            k8s_nodes=k8s_nodes, deadline_s=CONVERGE_DEADLINE_S)
    events = [e for e in cluster_events(mem.health, result.health) if e[1] != "FailoverObserved"]
    for event in cluster_events(mem.last_ok, result.health):
        if event[1] == "FailoverObserved" and event[2] not in mem.failovers_reported:
            mem.failovers_reported.add(event[2])
            events.append(event)
    mem.health = result.health
    if result.health.state == "ok":
        mem.last_ok, mem.failovers_reported = result.health, set()
    mem.statefulset_replicas = statefulset_replicas(
        result.observation, spec.cache.shards, spec.cache.replicas_per_shard)
    status_, reason, message = cache_condition(result.health)
    if result.refused:
        reason, message = "CacheShrinkRefused", result.refused
        events.append(("Warning", "CacheShrinkRefused", result.refused))
    return CacheObservation(mode, status_ == "True", reason, message,
                            cache_status(result.health, endpoint), events=events)
