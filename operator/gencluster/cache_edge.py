"""Observing the cache tier (and, in cluster mode, bootstrapping and repairing it).

Standalone Redis is ready when its StatefulSet's pod is ready. A Redis Cluster additionally needs
the operator to join the pods into one cluster; that is planned by `gencluster.rediscluster`
(pure) and executed here against the pods.
"""

from __future__ import annotations

from typing import Any

from .api.spec import GenerationClusterSpec
from .health import CacheObservation
from .kube.client import Kube
from .render.redis import REDIS_PORT, RedisAuth, redis_service_name, redis_statefulset_name


def _statefulset_counts(sts: dict[str, Any] | None) -> tuple[int, int]:
    if not sts:
        return 0, 0
    want = int((sts.get("spec") or {}).get("replicas") or 0)
    ready = int((sts.get("status") or {}).get("readyReplicas") or 0)
    return want, ready


async def observe_cache(kube: Kube, name: str, namespace: str, spec: GenerationClusterSpec,
                        children: dict[tuple[str, str], dict[str, Any]],
                        auth: RedisAuth | None) -> CacheObservation:
    mode = spec.cache.mode
    if mode == "disabled":
        return CacheObservation(mode, True, "CacheDisabled", "", {"mode": mode, "state": "disabled"})
    endpoint = f"{redis_service_name(name)}.{namespace}.svc:{REDIS_PORT}"
    want, ready = _statefulset_counts(children.get(("StatefulSet", redis_statefulset_name(name))))
    if mode == "standalone":
        ok = want > 0 and ready >= want
        state = "ok" if ok else "unavailable"
        return CacheObservation(
            mode, ok, "CacheReady" if ok else "CachePodsNotReady",
            f"standalone Redis at {endpoint}" if ok else f"{ready}/{want} Redis pods ready",
            {"mode": mode, "state": state, "endpoint": endpoint,
             "mastersReady": min(ready, 1)})
    from .cache_cluster_edge import observe_redis_cluster

    observation: CacheObservation = await observe_redis_cluster(kube, name, namespace, spec, want, ready, endpoint, auth)
    return observation
