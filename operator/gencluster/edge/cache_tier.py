"""The cache tier at the edge: observe standalone Redis; converge and observe a Redis Cluster.

Standalone Redis is ready when its StatefulSet's pod is ready. A Redis Cluster also needs the
operator to join its pods into one cluster and keep it whole; that is planned by
`gencluster.rediscluster` (pure) and carried out by `RedisClusterConverger` (edge/redis_cluster.py),
one per GenerationCluster, kept here between reconciles (it holds an admin connection pool and the
previous health, which turns failovers into Events).
"""

from __future__ import annotations

from typing import Any

from ..api.spec import GenerationClusterSpec
from ..kube.client import KubeApi
from ..reconcile.assess import CacheObservation
from ..reconcile.plan import RedisTLS
from ..render.names import redis_service_name, redis_statefulset_name
from ..render.redis import REDIS_PORT, RedisAuth
from .redis_cluster import RedisClusterConverger


def _statefulset_counts(sts: dict[str, Any] | None) -> tuple[int, int]:
    if not sts:
        return 0, 0
    want = int((sts.get("spec") or {}).get("replicas") or 0)
    ready = int((sts.get("status") or {}).get("readyReplicas") or 0)
    return want, ready


class CacheTier:
    """Every GenerationCluster's cache tier, as the reconcile sees it."""

    def __init__(self) -> None:
        self._clusters: dict[tuple[str, str], RedisClusterConverger] = {}

    def carried_statefulset_replicas(self, namespace: str, name: str) -> int | None:
        """Pods the Redis StatefulSet must keep while a shrink drains (None: the spec's count)."""
        converger = self._clusters.get((namespace, name))
        return converger.statefulset_replicas if converger else None

    async def forget(self, namespace: str, name: str) -> None:
        converger = self._clusters.pop((namespace, name), None)
        if converger:
            await converger.aclose()

    async def aclose(self) -> None:
        for key in list(self._clusters):
            await self.forget(*key)

    async def _converger(self, namespace: str, name: str, auth: RedisAuth,
                         tls_ca_pem: str | None = None) -> RedisClusterConverger:
        key = (namespace, name)
        c = self._clusters.get(key)
        if c is None or c.auth != auth or c.tls_ca_pem != tls_ca_pem:
            if c is not None:  # new credentials or CA: the old pool's connections are useless
                await c.aclose()
            c = self._clusters[key] = RedisClusterConverger(name, namespace, auth, tls_ca_pem)
        return c

    async def observe(self, kube: KubeApi, name: str, namespace: str, spec: GenerationClusterSpec,
                      children: dict[tuple[str, str], dict[str, Any]],
                      auth: RedisAuth | None, tls: RedisTLS | None = None) -> CacheObservation:
        """`tls`: spec.cache.tls as read from its Secret (None: TLS off)."""
        mode = spec.cache.mode
        if mode == "disabled":
            return CacheObservation(mode, True, "CacheDisabled", "", {"mode": mode, "state": "disabled"})
        endpoint = f"{redis_service_name(name)}.{namespace}.svc:{REDIS_PORT}"
        if tls is not None and tls.problem:
            # The Redis pods cannot start (or serve TLS) without it; nothing to converge.
            return CacheObservation(mode, False, "CacheTLSSecretInvalid", tls.problem,
                                    {"mode": mode, "state": "unavailable", "endpoint": endpoint})
        want, ready = _statefulset_counts(children.get(("StatefulSet", redis_statefulset_name(name))))
        if mode == "standalone":
            ok = want > 0 and ready >= want
            return CacheObservation(
                mode, ok, "CacheReady" if ok else "CachePodsNotReady",
                f"standalone Redis at {endpoint}" if ok else f"{ready}/{want} Redis pods ready",
                {"mode": mode, "state": "ok" if ok else "unavailable", "endpoint": endpoint,
                 "mastersReady": min(ready, 1)})
        if auth is None:
            return CacheObservation(mode, False, "CacheUnavailable", "no Redis credentials yet",
                                    {"mode": mode, "state": "unavailable"})
        converger = await self._converger(namespace, name, auth,
                                          tls.ca_pem if tls is not None else None)
        return await converger.observe(kube, spec, want, ready, endpoint)
