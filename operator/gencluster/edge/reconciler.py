"""The reconcile at the edge: fetch, call the pure core, apply, report.

One idempotent, level-triggered reconcile serves create, update, resume and the periodic resync:
it renders every child from the spec (gencluster.render), plans what to apply and delete
(gencluster.reconcile.plan), applies, observes the workload and the cache, assesses
(gencluster.reconcile.assess), writes status and posts the Events the changes deserve
(gencluster.reconcile.transitions) through the one event path (edge/events.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException
from opentelemetry import trace
from pydantic import ValidationError

from .. import API_VERSION, KIND
from ..api import conditions as cond
from ..api.spec import parse_spec
from ..control.events import EventIntent
from ..kube.client import KubeApi
from ..reconcile import pacing, plan, transitions
from ..reconcile.assess import Refusal, assess, invalid_spec, refusal
from ..render import names
from ..render.children import OperatorDefaults, desired_replicas, render_children
from .cache_tier import CacheTier
from .events import EventRecorder
from .metrics import APPLIED, DELETED, RECONCILE_SECONDS, RECONCILES, STATUS_UNCHANGED

tracer = trace.get_tracer("gencluster.operator")

# Reconciles in flight at once, operator-wide. After a restart every GenerationCluster resumes at
# the same moment; unbounded, their ~9 requests each interleave in the client's thread pool and
# all finish together at the end (at 1,000 clusters nothing was reconciled for the first minute).
# Bounded, they finish in turn from the first seconds; the work in all is the same (the pool has
# min(32, cores + 4) threads, so more slots than this would only queue there).
MAX_CONCURRENT_RECONCILES = 8


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Reconciler:
    """Reconciles GenerationClusters, one at a time per object (a lock each), at most
    `max_concurrent` at once in all."""

    def __init__(self, kube: KubeApi, events: EventRecorder, cache: CacheTier,
                 defaults: OperatorDefaults,
                 logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
                 resync_seconds: float = 15.0, resync_budget: float = 0.0,
                 max_concurrent: int = MAX_CONCURRENT_RECONCILES) -> None:
        self.kube, self.events, self.cache, self.defaults = kube, events, cache, defaults
        self._slots = asyncio.Semaphore(max_concurrent)
        self.log = logger or logging.getLogger(__name__)
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self.resync_seconds, self.resync_budget = resync_seconds, resync_budget
        # when each one's last reconcile ended, and the jitter its next paced wait uses
        self._last: dict[tuple[str, str], tuple[float, float]] = {}
        self._changed: set[tuple[str, str]] = set()  # a child moved since the last reconcile

    @property
    def managed(self) -> int:
        return len(self._locks)

    async def forget(self, body: Any, namespace: str, name: str) -> None:
        """Deleted: its children go with it (garbage collection); drop what is held in memory."""
        self._locks.pop((namespace, name), None)
        self._last.pop((namespace, name), None)
        self._changed.discard((namespace, name))
        self.events.forget(body)
        await self.cache.forget(namespace, name)

    async def reconcile(self, body: Any, spec: dict[str, Any], meta: dict[str, Any],
                        status: dict[str, Any], name: str, namespace: str,
                        trigger: str) -> None:
        lock = self._locks.setdefault((namespace, name), asyncio.Lock())
        async with lock, self._slots:  # its own turn first, then one of the operator's slots
            self._changed.discard((namespace, name))  # what changes from here on is seen next time
            started = time.monotonic()
            result = "ok"
            try:
                with tracer.start_as_current_span("reconcile", attributes={
                        "k8s.namespace.name": namespace, "gencluster.cluster": name,
                        "gencluster.trigger": trigger}):
                    await self._reconcile(body, spec, meta, status, name, namespace)
            except kopf.PermanentError:
                result = "invalid"
                raise
            except Exception:
                result = "error"
                raise
            finally:
                RECONCILES.labels(trigger, result).inc()
                RECONCILE_SECONDS.observe(time.monotonic() - started)
                self._last[(namespace, name)] = (time.monotonic(), random.random())

    def child_changed(self, namespace: str, name: str) -> None:
        """A child's state moved (pods became ready, a rollout, a crash): the next resync of its
        GenerationCluster is due whatever the budget, so conditions follow within one period."""
        self._changed.add((namespace, name))

    def resync_due(self, namespace: str, name: str) -> bool:
        """Whether the periodic resync should reconcile this one now: a child changed, or its
        paced turn came (reconcile/pacing.py)."""
        last, jitter = self._last.get((namespace, name), (None, 0.0))
        return pacing.resync_due(last, time.monotonic(), self.resync_seconds, self.managed,
                                 self.resync_budget, jitter, (namespace, name) in self._changed)

    async def _list_children(self, name: str, namespace: str) -> dict[plan.ChildKey, dict[str, Any]]:
        selector = names.children_selector(name)
        lists = await asyncio.gather(*(self.kube.list(av, kind, namespace, selector)
                                       for av, kind in plan.CHILD_KINDS))
        return {plan.key(o): o for items in lists for o in items}

    async def _write_status(self, body: Any, name: str, namespace: str, old: dict[str, Any],
                            generation: int | None, updates: list[cond.ConditionUpdate],
                            fields: dict[str, Any]) -> None:
        merged = cond.merge_conditions(old.get("conditions") or [], updates, _now(), generation)
        mine = {u.type for u in updates}
        status = {**fields, "conditions": [c for c in merged if c["type"] in mine]}
        if cond.already_applied(old, status):
            STATUS_UNCHANGED.inc()
            return
        await self.kube.apply_status(API_VERSION, KIND, name, namespace, status,
                                     names.FIELD_MANAGER, uid=body["metadata"].get("uid"))

    async def _reconcile(self, body: Any, spec: dict[str, Any], meta: dict[str, Any],
                         status: dict[str, Any], name: str, namespace: str) -> None:
        generation = meta.get("generation")
        old_conditions = list(status.get("conditions") or [])
        try:
            parsed = parse_spec(dict(spec))
        except ValidationError as err:
            message = plan.validation_message(err)
            updates = invalid_spec(message)
            await self._write_status(body, name, namespace, status, generation, updates,
                                     {"observedGeneration": generation})
            self.events.emit(body, transitions.condition_events(old_conditions, updates))
            raise kopf.PermanentError(f"invalid spec: {message}") from err

        existing = await self._list_children(name, namespace)
        tls = None
        if parsed.cache.tls is not None and parsed.cache.mode != "disabled":
            # The user's Secret is no child of ours (not labelled as one): read it by name.
            tls = plan.redis_tls(parsed, namespace, await self.kube.get(
                "v1", "Secret", parsed.cache.tls.secret_name, namespace))
        observed = plan.observed(name, existing,
                                 self.cache.carried_statefulset_replicas(namespace, name), tls)
        secrets = plan.ensure_secrets(name, parsed, existing)
        desired = render_children(name, namespace, parsed, observed, secrets, self.defaults)
        for obj in desired:
            kopf.adopt(obj, owner=body)
        child_plan = plan.plan_children(desired, existing, body["metadata"]["uid"])

        applied: list[str] = []
        refusals: list[Refusal] = []
        for obj in child_plan.apply:
            try:
                result = await self.kube.apply(obj, names.FIELD_MANAGER)
            except ApiException as err:
                # A child the apiserver refuses is the user's to fix: report it, go on.
                refused = refusal(plan.describe(obj), int(err.status or 0), err.body)
                if refused is None:
                    raise
                self.log.warning("%s", refused.describe())
                refusals.append(refused)
                continue
            existing[plan.key(obj)] = result
            APPLIED.labels(obj["kind"]).inc()
            applied.append(plan.describe(obj))
        for obj in child_plan.delete:
            await self.kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], namespace)
            DELETED.labels(obj["kind"]).inc()
            existing.pop(plan.key(obj), None)
        if applied:
            self.log.info("applied %s", ", ".join(applied))
        intents: list[EventIntent] = transitions.applied_events(
            applied, [plan.describe(o) for o in child_plan.delete])

        deployment = existing.get(("Deployment", names.workload_name(name)))
        pods = await self.kube.list("v1", "Pod", namespace,
                                    names.selector_string(name, names.WORKLOAD_COMPONENT))
        cache = await self.cache.observe(self.kube, name, namespace, parsed, existing,
                                         secrets.redis_auth, tls)
        intents += cache.events
        verdict = assess(parsed, generation, desired_replicas(parsed, observed), deployment, pods,
                         cache, refusals)
        trace.get_current_span().set_attributes({  # the reconcile's decision and its reason
            f"gencluster.condition.{u.type}": f"{u.status} {u.reason}" for u in verdict.conditions})
        intents += transitions.refusal_events(refusals, old_conditions, verdict)
        # desiredReplicas and batchSize belong to the control loop (edge/control_loop.py).
        fields = {**verdict.fields,
                  "selector": names.selector_string(name, names.WORKLOAD_COMPONENT)}
        await self._write_status(body, name, namespace, status, generation,
                                 verdict.conditions, fields)
        intents += transitions.condition_events(
            old_conditions, verdict.conditions, cache_events_from_edge=parsed.cache.mode == "cluster")
        self.events.emit(body, intents)
