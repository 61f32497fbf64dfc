"""Converging one Redis Cluster: join its pods into one cluster, repair it, report its health.

The planning is pure (`gencluster.rediscluster`); a RedisClusterConverger lists the Redis pods,
keeps one admin connection pool, runs the planner's actions against the pods (bounded in time, so
one cluster never stalls the operator), and remembers the previous health so that failovers and
degradations become Events.
"""

from __future__ import annotations

from typing import Any

from ..api.spec import GenerationClusterSpec
from ..control.events import EventIntent
from ..kube.client import KubeApi
from ..reconcile.assess import CacheObservation
from ..rediscluster import (
    AdminConnector,
    ClusterHealth,
    cache_condition,
    cache_status,
    cluster_events,
    converge,
    statefulset_replicas,
)
from ..render import names
from ..render.redis import REDIS_PORT, RedisAuth

CONVERGE_DEADLINE_S = 20.0


class RedisClusterConverger:
    """One GenerationCluster's Redis Cluster, between reconciles."""

    def __init__(self, name: str, namespace: str, auth: RedisAuth,
                 tls_ca_pem: str | None = None) -> None:
        self.name, self.namespace, self.auth = name, namespace, auth
        self.tls_ca_pem = tls_ca_pem  # spec.cache.tls: the Secret's ca.crt; None = plaintext
        self.connector = AdminConnector(auth, tls_ca_pem=tls_ca_pem)
        self.health: ClusterHealth | None = None
        # The last fully healthy observation: failovers are found against it, since the passes
        # in between may see the shard with its master failing and no replica promoted yet.
        self.last_ok: ClusterHealth | None = None
        self.failovers_reported: set[str] = set()
        self.statefulset_replicas: int | None = None

    async def aclose(self) -> None:
        await self.connector.aclose()

    async def observe(self, kube: KubeApi, spec: GenerationClusterSpec, want: int, ready: int,
                      endpoint: str) -> CacheObservation:
        mode = "cluster"
        pods: list[dict[str, Any]] = await kube.list(
            "v1", "Pod", self.namespace, names.selector_string(self.name, names.CACHE_COMPONENT))
        # A cluster pod only turns Ready once joined, so join every Running pod with an IP.
        live = [p for p in pods if (p.get("status") or {}).get("podIP")
                and (p.get("status") or {}).get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")]
        if not live:
            return CacheObservation(mode, False, "CacheBootstrapping", f"{ready}/{want} Redis pods ready",
                                    {"mode": mode, "state": "bootstrapping", "endpoint": endpoint})
        addresses = {p["metadata"]["name"]: f"{p['status']['podIP']}:{REDIS_PORT}" for p in live}
        k8s_nodes = {p["metadata"]["name"]: (p.get("spec") or {}).get("nodeName", "") for p in live}
        result = await converge(addresses, self.connector, spec.cache.shards,
                                spec.cache.replicas_per_shard, k8s_nodes=k8s_nodes,
                                deadline_s=CONVERGE_DEADLINE_S)
        events = [e for e in cluster_events(self.health, result.health) if e.reason != "FailoverObserved"]
        for event in cluster_events(self.last_ok, result.health):
            if event.reason == "FailoverObserved" and event.message not in self.failovers_reported:
                self.failovers_reported.add(event.message)
                events.append(event)
        self.health = result.health
        if result.health.state == "ok":
            self.last_ok, self.failovers_reported = result.health, set()
        self.statefulset_replicas = statefulset_replicas(
            result.observation, spec.cache.shards, spec.cache.replicas_per_shard)
        status_, reason, message = cache_condition(result.health)
        if result.refused:
            reason, message = "CacheShrinkRefused", result.refused
            events.append(EventIntent("Warning", "CacheShrinkRefused", result.refused))
        return CacheObservation(mode, status_ == "True", reason, message,
                                cache_status(result.health, endpoint), events=events)
