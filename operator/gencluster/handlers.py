"""Kopf handlers: the thin edge. Fetch, call the pure core, apply, report.

One idempotent, level-triggered reconcile serves create, update, resume and a periodic resync:
it renders every child from the spec, applies only those whose rendered form changed (a hash
annotation), deletes children the spec no longer wants, and writes status from what it observed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import secrets as pysecrets
import time
from typing import Any

import kopf
from pydantic import ValidationError

from . import GROUP, KIND, PLURAL, VERSION
from .api import conditions as cond
from .api.spec import GenerationClusterSpec, parse_spec
from .cache_cluster_edge import carried_statefulset_replicas
from .cache_cluster_edge import forget as forget_cache
from .cache_edge import observe_cache
from .health import assess, invalid_spec
from .kube.client import Kube, load_config
from .operator_metrics import APPLIED, DELETED, MANAGED, RECONCILE_SECONDS, RECONCILES, REGISTRY
from .render import names
from .render.children import (
    Observed,
    Secrets,
    carried_fields,
    desired_replicas,
    render_children,
    without_carried,
)
from .render.redis import RedisAuth, generate_redis_auth, redis_auth_from_secret, redis_secret_name
from .render.workload import ADMIN_TOKEN_KEY, BATCHING_KEY
from .settings import OperatorSettings

API_VERSION = f"{GROUP}/{VERSION}"
HASH_ANNOTATION = f"{GROUP}/applied-hash"
# Every kind the operator creates; listed by label to find what exists and what is stale.
CHILD_KINDS: list[tuple[str, str]] = [
    ("v1", "Secret"), ("v1", "ConfigMap"), ("v1", "Service"), ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"), ("policy/v1", "PodDisruptionBudget"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
]
OPTIONS = OperatorSettings.from_env()
_LOCKS: dict[tuple[str, str], asyncio.Lock] = {}


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: Any, logger: kopf.Logger,
                    **_: Any) -> None:
    """Operator settings, in one place (see docs/operator.md).

    - Kopf's bookkeeping lives in annotations under orfeas.ai, never in status (the CRD's
      structural schema would prune it): progress and the last-handled configuration.
    - Finalizer orfeas.ai/kopf-finalizer: only added if a deletion handler needs it; children
      are removed by Kubernetes' garbage collector through owner references.
    - Watches time out server-side after 10 min and are re-established, so a silently dropped
      connection costs at most that long.
    - Events are posted for INFO and above (Normal and Warning), from "gencluster-operator", as
      `kubectl describe` shows them.
    """
    settings.persistence.finalizer = f"{GROUP}/kopf-finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.watching.server_timeout = 600
    settings.watching.client_timeout = 660
    settings.watching.connect_timeout = 30
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "gencluster-operator"
    settings.batching.error_delays = [1, 2, 5, 10, 30, 60]
    memo.kube = Kube(load_config())
    from prometheus_client import start_http_server

    start_http_server(OPTIONS.metrics_port, registry=REGISTRY)
    logger.info("gencluster operator started; metrics on :%d", OPTIONS.metrics_port)


def _validation_message(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        path = ".".join(str(p) for p in ("spec", *e["loc"]))
        parts.append(f"{path}: {e['msg']}")
    return "; ".join(parts)


def _decode(secret: dict[str, Any] | None) -> dict[str, str]:
    data = (secret or {}).get("data") or {}
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def _content_hash(obj: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


async def _observe_children(kube: Kube, name: str, namespace: str) -> dict[tuple[str, str], dict[str, Any]]:
    selector = names.children_selector(name)
    lists = await asyncio.gather(*(kube.list(av, kind, namespace, selector) for av, kind in CHILD_KINDS))
    return {(o["kind"], o["metadata"]["name"]): o for items in lists for o in items}


def _ensure_secrets(name: str, spec: GenerationClusterSpec,
                    existing: dict[tuple[str, str], dict[str, Any]]) -> Secrets:
    """Reuse generated credentials; generate only what does not exist yet."""
    admin = _decode(existing.get(("Secret", names.admin_secret_name(name)))).get(ADMIN_TOKEN_KEY)
    redis_auth: RedisAuth | None = None
    if spec.cache.mode != "disabled":
        data = _decode(existing.get(("Secret", redis_secret_name(name))))
        redis_auth = redis_auth_from_secret(data) if data else generate_redis_auth()
    return Secrets(admin_token=admin or pysecrets.token_urlsafe(32), redis_auth=redis_auth)


async def _write_status(kube: Kube, name: str, namespace: str, current: dict[str, Any],
                        generation: int | None, updates: list[cond.ConditionUpdate],
                        fields: dict[str, Any], body: Any,
                        cache_events_from_edge: bool = False) -> None:
    old = current.get("conditions") or []
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    merged = cond.merge_conditions(old, updates, now, generation)
    mine = {u.type for u in updates}
    status = {**fields, "conditions": [c for c in merged if c["type"] in mine]}
    await kube.apply_status(API_VERSION, KIND, name, namespace, status, names.FIELD_MANAGER,
                            uid=body["metadata"].get("uid"))
    for t in cond.transitions(old, updates):
        if t.type == cond.CACHE_READY and cache_events_from_edge:
            continue  # the Redis Cluster edge reports CacheReady/CacheDegraded itself
        _event_for_transition(body, t, old)


def _event_for_transition(body: Any, t: cond.ConditionUpdate, old: list[dict[str, Any]]) -> None:
    was = cond.find(old, t.type)
    if t.type == cond.READY and t.status == "True":
        kopf.event(body, type="Normal", reason="Ready", message=t.message)
    elif t.type == cond.READY and was is not None and was.get("status") == "True":
        kopf.event(body, type="Warning", reason="NotReady", message=t.message)
    elif t.type == cond.DEGRADED and t.status == "True":
        kopf.event(body, type="Warning", reason=t.reason, message=t.message)
    elif t.type == cond.DEGRADED and was is not None and was.get("status") == "True":
        kopf.event(body, type="Normal", reason="Recovered", message="no problems observed")
    elif t.type == cond.CACHE_READY and t.status == "True" and t.reason != "CacheDisabled":
        kopf.event(body, type="Normal", reason="CacheReady", message=t.message)
    elif t.type == cond.CACHE_READY and was is not None and was.get("status") == "True":
        kopf.event(body, type="Warning", reason="CacheDegraded", message=t.message)


async def reconcile(body: Any, spec: dict[str, Any], meta: dict[str, Any], status: dict[str, Any],
                    name: str, namespace: str, memo: Any, logger: kopf.Logger,
                    trigger: str) -> None:
    kube: Kube = memo.kube
    lock = _LOCKS.setdefault((namespace, name), asyncio.Lock())
    async with lock:
        started = time.monotonic()
        result = "ok"
        try:
            await _reconcile(kube, body, spec, meta, status, name, namespace, logger)
        except kopf.PermanentError:
            result = "invalid"
            raise
        except Exception:
            result = "error"
            raise
        finally:
            RECONCILES.labels(trigger, result).inc()
            RECONCILE_SECONDS.observe(time.monotonic() - started)


async def _reconcile(kube: Kube, body: Any, spec: dict[str, Any], meta: dict[str, Any],
                     status: dict[str, Any], name: str, namespace: str,
                     logger: kopf.Logger) -> None:
    generation = meta.get("generation")
    try:
        parsed = parse_spec(dict(spec))
    except ValidationError as err:
        message = _validation_message(err)
        await _write_status(kube, name, namespace, dict(status), generation,
                            invalid_spec(message), {"observedGeneration": generation}, body)
        raise kopf.PermanentError(f"invalid spec: {message}") from err

    existing = await _observe_children(kube, name, namespace)
    deployment = existing.get(("Deployment", names.workload_name(name)))
    runtime_cm = existing.get(("ConfigMap", names.runtime_configmap_name(name)))
    observed = Observed(
        deployment_replicas=((deployment or {}).get("spec") or {}).get("replicas"),
        persisted_batching=((runtime_cm or {}).get("data") or {}).get(BATCHING_KEY),
        redis_statefulset_replicas=carried_statefulset_replicas(namespace, name),
    )
    secrets = _ensure_secrets(name, parsed, existing)
    desired = render_children(name, namespace, parsed, observed, secrets, OPTIONS.defaults)

    applied: list[str] = []
    for obj in desired:
        kopf.adopt(obj, owner=body)
        digest = _content_hash(without_carried(obj))
        obj["metadata"].setdefault("annotations", {})[HASH_ANNOTATION] = digest
        current = existing.get((obj["kind"], obj["metadata"]["name"]))
        if (current and (current["metadata"].get("annotations") or {}).get(HASH_ANNOTATION) == digest
                and carried_fields(current) == carried_fields(obj)):
            continue
        result = await kube.apply(obj, names.FIELD_MANAGER)
        existing[(obj["kind"], obj["metadata"]["name"])] = result
        APPLIED.labels(obj["kind"]).inc()
        applied.append(f"{obj['kind']}/{obj['metadata']['name']}")
    if applied:
        logger.info("applied %s", ", ".join(applied))
        kopf.event(body, type="Normal", reason="Applied", message="applied " + ", ".join(applied))

    wanted = {(o["kind"], o["metadata"]["name"]) for o in desired}
    stale = [o for key, o in existing.items() if key not in wanted and _owned_by(o, body)]
    for obj in stale:
        await kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], namespace)
        DELETED.labels(obj["kind"]).inc()
        existing.pop((obj["kind"], obj["metadata"]["name"]), None)
    if stale:
        removed = ", ".join(f"{o['kind']}/{o['metadata']['name']}" for o in stale)
        kopf.event(body, type="Normal", reason="Removed", message=f"removed {removed} (no longer in spec)")

    deployment = existing.get(("Deployment", names.workload_name(name)))
    pods = await kube.list("v1", "Pod", namespace, names.selector_string(name, "workload"))
    cache = await observe_cache(kube, name, namespace, parsed, existing, secrets.redis_auth)
    for type_, reason, message in cache.events:
        kopf.event(body, type=type_, reason=reason, message=message)
    want = desired_replicas(parsed, observed)
    verdict = assess(parsed, generation, want, deployment, pods, cache)
    # desiredReplicas and batchSize belong to the control loop (gencluster.autoscaler).
    fields = {**verdict.fields, "selector": names.selector_string(name, "workload")}
    await _write_status(kube, name, namespace, dict(status), generation, verdict.conditions,
                        fields, body, cache_events_from_edge=parsed.cache.mode == "cluster")


def _owned_by(obj: dict[str, Any], owner: Any) -> bool:
    uid = owner["metadata"]["uid"]
    return any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile_on_change(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta,
                              status: kopf.Status, name: str, namespace: str | None, memo: Any,
                              logger: kopf.Logger, reason: str, **_: Any) -> None:
    await reconcile(body, dict(spec), dict(meta), dict(status), name, namespace or "", memo,
                    logger, trigger=str(reason))
    MANAGED.set(len(_LOCKS))


@kopf.timer(GROUP, VERSION, PLURAL, interval=OPTIONS.resync_seconds, initial_delay=OPTIONS.resync_seconds)
async def resync(body: kopf.Body, spec: kopf.Spec, meta: kopf.Meta, status: kopf.Status,
                 name: str, namespace: str | None, memo: Any, logger: kopf.Logger,
                 **_: Any) -> None:
    """Level-triggered safety net: repairs drift (deleted or edited children) and refreshes status."""
    try:
        await reconcile(body, dict(spec), dict(meta), dict(status), name, namespace or "", memo,
                        logger, trigger="resync")
    except kopf.PermanentError:
        return  # already reported in status; wait for the user to fix the spec


@kopf.on.delete(GROUP, VERSION, PLURAL, optional=True)
async def forget(name: str, namespace: str | None, **_: Any) -> None:
    """Children go with their owner (garbage collection); only in-memory state is dropped."""
    _LOCKS.pop((namespace or "", name), None)
    await forget_cache(namespace or "", name)
    MANAGED.set(len(_LOCKS))
