"""All desired children of one GenerationCluster, and the two counts the operator carries over.

The replica count and the batch size are owned at run time by the control loop (scale
subresource, runtime ConfigMap). The reconcile keeps whatever is there, clamped to the spec's
bounds, so a level-triggered re-apply never undoes a scaling or tuning decision.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

from ..api.spec import GenerationClusterSpec
from . import names, workload
from .redis import RedisAuth, redis_auth_secret, render_redis, workload_redis_env
from .workload import BATCHING_KEY


@dataclass(frozen=True)
class Observed:
    """What the edge read from the cluster before rendering."""

    deployment_replicas: int | None = None
    persisted_batching: str | None = None  # runtime ConfigMap's batching.json
    redis_statefulset_replicas: int | None = None  # pods a Redis Cluster shrink still needs
    redis_tls_hash: str | None = None  # digest of spec.cache.tls's Secret (the keys Redis mounts)


@dataclass(frozen=True)
class Secrets:
    """Generated credentials (made once by the edge, then read back on every reconcile)."""

    admin_token: str = field(repr=False)  # never in a repr or a log line
    redis_auth: RedisAuth | None = None


@dataclass(frozen=True)
class OperatorDefaults:
    """Operator-wide settings from the Helm chart."""

    redis_image: str = "docker.io/library/redis:7.2-bookworm"
    # Where the operator's own pod runs: only it (not a look-alike elsewhere) may reach Redis
    # and the workload pods' admin port.
    operator_namespace: str = "gencluster-system"


def desired_replicas(spec: GenerationClusterSpec, observed: Observed) -> int:
    r = spec.replicas
    if not spec.autoscaling.enabled:
        wanted = r.count if r.count is not None else r.min
    elif spec.autoscaling.mode == "advisory" and r.count is not None:
        wanted = r.count  # advisory: the user's count (kubectl scale), the loop only recommends
    elif observed.deployment_replicas is not None:
        # The control loop owns the count, bounds included: it brings a count outside
        # [min, max] back within one interval, scale-downs through its drain (a reconcile that
        # clamped here would delete pods with requests in flight), scale-ups held while pods are
        # unschedulable. In advisory mode nothing changes it.
        return observed.deployment_replicas
    else:
        wanted = r.min
    return max(r.min, min(r.max, wanted))


def persisted_batch_size(document: str | None) -> int | None:
    """The batch size the control loop persisted, or None if absent or unreadable."""
    if not document:
        return None
    try:
        value = json.loads(document).get("maxBatchSize")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def desired_batch_size(spec: GenerationClusterSpec, observed: Observed) -> int:
    b = spec.batching
    if b.mode == "fixed":
        return b.initial
    persisted = persisted_batch_size(observed.persisted_batching)
    wanted = persisted if persisted is not None else b.initial
    return max(b.min, min(b.max, wanted))


def carried_fields(obj: dict[str, Any]) -> dict[str, Any]:
    """The run-time-owned fields of a child (replica count, persisted batch size).

    The control loop changes these between reconciles; the reconcile compares them directly
    instead of through the rendered-object hash, so that a scaling decision is not followed by
    a pointless re-apply of the whole Deployment.
    """
    if obj.get("kind") == "Deployment":
        return {"spec.replicas": (obj.get("spec") or {}).get("replicas")}
    if obj.get("kind") == "ConfigMap" and BATCHING_KEY in (obj.get("data") or {}):
        return {f"data.{BATCHING_KEY}": obj["data"][BATCHING_KEY]}
    return {}


def without_carried(obj: dict[str, Any]) -> dict[str, Any]:
    """A copy of `obj` without its carried fields (what the content hash covers)."""
    out = copy.deepcopy(obj)
    if out.get("kind") == "Deployment":
        out["spec"].pop("replicas", None)
    elif out.get("kind") == "ConfigMap":
        (out.get("data") or {}).pop(BATCHING_KEY, None)
    return out


def render_children(name: str, namespace: str, spec: GenerationClusterSpec, observed: Observed,
                    secrets: Secrets, defaults: OperatorDefaults) -> list[dict[str, Any]]:
    """Every object the spec wants, in apply order (config and secrets before their users)."""
    objs: list[dict[str, Any]] = [workload.admin_secret(name, namespace, secrets.admin_token)]
    redis_env: list[dict[str, Any]] = workload_redis_env(name, spec)
    if spec.cache.mode != "disabled":
        if secrets.redis_auth is None:
            raise ValueError("redis credentials are required when the cache is enabled")
        auth_secret = redis_auth_secret(name, secrets.redis_auth)
        auth_secret["metadata"] |= {"namespace": namespace, "labels": names.labels(name, names.CACHE_COMPONENT)}
        objs.append(auth_secret)
        objs.extend(render_redis(name, namespace, spec, names.labels(name, names.CACHE_COMPONENT),
                                 spec.cache.image or defaults.redis_image, secrets.redis_auth,
                                 statefulset_replicas=observed.redis_statefulset_replicas,
                                 operator_namespace=defaults.operator_namespace,
                                 tls_hash=observed.redis_tls_hash))
    objs.append(workload.runtime_configmap(name, namespace, spec, desired_batch_size(spec, observed)))
    # Before the pods: none ever runs with its admin port open to the namespace.
    objs.append(workload.network_policy(name, namespace, spec, defaults.operator_namespace))
    objs.append(workload.deployment(name, namespace, spec, desired_replicas(spec, observed), redis_env))
    objs.append(workload.service(name, namespace, spec))
    objs.append(workload.pod_disruption_budget(name, namespace))
    return objs
