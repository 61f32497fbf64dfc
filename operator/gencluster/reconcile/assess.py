"""Assessment: what the observed children mean, as status fields and conditions (pure).

Given what the edge observed (the workload Deployment, its pods, the cache's state), decide
Ready / Progressing / Degraded / CacheReady with CamelCase reasons and messages a user can act on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..api.conditions import CACHE_READY, DEGRADED, PROGRESSING, READY, ConditionUpdate
from ..api.spec import GenerationClusterSpec
from ..control.events import EventIntent

_IMAGE_REASONS = {"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"}
_HINTS = {
    "Unschedulable": "check workload.gpusPerReplica, resources, nodeSelector and tolerations against the nodes",
    "ImagePullFailed": "check workload.image and workload.imagePullPolicy",
    "CrashLoopBackOff": "see `kubectl logs` of the pod",
    "ContainerConfigError": "check workload.env secret references",
}


@dataclass(frozen=True)
class CacheObservation:
    """The cache tier as observed: mode, and whether it serves (None = not yet known)."""

    mode: str
    ready: bool | None = None
    reason: str = ""
    message: str = ""
    status: dict[str, Any] = field(default_factory=dict)
    # Events the cache edge observed (failovers, degradations, a refused shrink).
    events: list[EventIntent] = field(default_factory=list)


@dataclass(frozen=True)
class Assessment:
    conditions: list[ConditionUpdate]
    fields: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """A child the apiserver refused to accept: which one, which fields, and its words."""

    child: str  # Kind/name
    fields: tuple[str, ...]
    message: str

    def describe(self) -> str:
        where = f" (field {', '.join(self.fields)})" if self.fields else ""
        return f"{self.child} refused by the apiserver{where}: {self.message}"


# Refusals are the user's to fix (invalid field, quota, admission policy); anything else
# (429, 5xx, timeouts) is transient and retried by Kopf with backoff.
REFUSAL_CODES = frozenset({400, 403, 404, 422})


def refusal(child: str, code: int, body: str | bytes | None) -> Refusal | None:
    """Reads the apiserver's Status body (JSON) of a failed write; None if it is transient."""
    if code not in REFUSAL_CODES:
        return None
    try:
        status = json.loads(body or "{}")
    except ValueError:
        status = {}
    if not isinstance(status, dict):
        status = {}
    causes = ((status.get("details") or {}).get("causes")) or []
    fields = tuple(dict.fromkeys(str(c["field"]) for c in causes if isinstance(c, dict) and c.get("field")))
    text = str(status.get("message") or (body.decode(errors="replace") if isinstance(body, bytes) else body) or f"HTTP {code}")
    return Refusal(child, fields, text[:1000])


def refused_condition(refusals: list[Refusal]) -> ConditionUpdate:
    """Degraded, naming every refused child, its fields and the apiserver's message."""
    more = f" (and {len(refusals) - 3} more)" if len(refusals) > 3 else ""
    return ConditionUpdate(DEGRADED, "True", "ChildRejected",
                           "; ".join(r.describe() for r in refusals[:3]) + more
                           + " (fix the GenerationCluster's spec; the rest is reconciled)")


def _pod_problem(pods: list[dict[str, Any]]) -> tuple[str, str] | None:
    """The first problem among the workload pods that a user must fix, as (reason, message)."""
    for pod in pods:
        name = pod.get("metadata", {}).get("name", "?")
        status = pod.get("status") or {}
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False" \
                    and cond.get("reason") == "Unschedulable":
                return "Unschedulable", f"pod {name} cannot be scheduled: {cond.get('message', '')}".strip()
        for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
            waiting = ((cs.get("state") or {}).get("waiting")) or {}
            reason = waiting.get("reason")
            if reason in _IMAGE_REASONS:
                return "ImagePullFailed", f"pod {name}: {reason}: {waiting.get('message', '')}".strip()
            if reason == "CrashLoopBackOff":
                return "CrashLoopBackOff", f"pod {name} container {cs.get('name')} keeps crashing"
            if reason == "CreateContainerConfigError":
                return "ContainerConfigError", f"pod {name}: {waiting.get('message', '')}".strip()
    return None


def _deployment_problem(deployment: dict[str, Any] | None) -> tuple[str, str] | None:
    for cond in ((deployment or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            return "ReplicaFailure", str(cond.get("message", ""))
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return "ProgressDeadlineExceeded", str(cond.get("message", ""))
    return None


def assess(spec: GenerationClusterSpec, generation: int | None, desired_replicas: int,
           deployment: dict[str, Any] | None, pods: list[dict[str, Any]],
           cache: CacheObservation, refusals: list[Refusal] | None = None) -> Assessment:
    dstatus = (deployment or {}).get("status") or {}
    dgen = (deployment or {}).get("metadata", {}).get("generation")
    replicas = int(dstatus.get("replicas") or 0)
    ready = int(dstatus.get("readyReplicas") or 0)
    updated = int(dstatus.get("updatedReplicas") or 0)
    rolled_out = (deployment is not None and dstatus.get("observedGeneration") == dgen
                  and updated >= desired_replicas and replicas == updated
                  and ready >= desired_replicas)
    # Ready means serving (as a Deployment's Available): at least one ready pod, or none wanted.
    # A scale-up in flight is Progressing, not NotReady, so autoscaling never flaps Ready.
    workload_ready = deployment is not None and (ready >= 1 or desired_replicas == 0)

    conds: list[ConditionUpdate] = []
    problem = _pod_problem(pods) or _deployment_problem(deployment)
    if refusals:
        conds.append(refused_condition(refusals))
    elif problem:
        reason, message = problem
        hint = _HINTS.get(reason)
        conds.append(ConditionUpdate(DEGRADED, "True", reason, f"{message} ({hint})" if hint else message))
    elif cache.mode != "disabled" and cache.reason in ("CacheDegraded", "CacheShrinkRefused",
                                                           "CacheTLSSecretInvalid"):
        conds.append(ConditionUpdate(DEGRADED, "True", cache.reason, cache.message))
    else:
        conds.append(ConditionUpdate(DEGRADED, "False", "AsExpected", "no problems observed"))

    if rolled_out:
        conds.append(ConditionUpdate(PROGRESSING, "False", "RolloutComplete",
                                     f"{updated} workload pods run the current spec"))
    elif problem and problem[0] == "Unschedulable":
        # No node has room (GPUs): the control loop holds further scale-up until they schedule.
        conds.append(ConditionUpdate(PROGRESSING, "True", "PodsUnschedulable",
                                     f"{updated}/{desired_replicas} workload pods updated, {ready} ready;"
                                     f" {problem[1]}; scale-up held until they are scheduled"))
    else:
        conds.append(ConditionUpdate(PROGRESSING, "True", "RollingOut",
                                     f"{updated}/{desired_replicas} workload pods updated, {ready} ready"))

    if cache.mode == "disabled":
        conds.append(ConditionUpdate(CACHE_READY, "True", "CacheDisabled", "in-process cache only"))
        cache_ok = True
    elif cache.ready:
        conds.append(ConditionUpdate(CACHE_READY, "True", cache.reason or "CacheReady", cache.message or "cache serving"))
        cache_ok = True
    else:
        conds.append(ConditionUpdate(CACHE_READY, "False", cache.reason or "CacheNotReady",
                                     cache.message or "waiting for the cache pods"))
        cache_ok = False

    if workload_ready and cache_ok:
        conds.insert(0, ConditionUpdate(READY, "True", "Ready",
                                        f"{ready}/{desired_replicas} workload pods ready, cache ready"))
    elif not workload_ready:
        if refusals:
            why = refusals[0].describe()
        else:
            why = problem[1] if problem else f"{ready}/{desired_replicas} workload pods ready"
        conds.insert(0, ConditionUpdate(READY, "False", "WorkloadNotReady", why))
    else:
        conds.insert(0, ConditionUpdate(READY, "False", "CacheNotReady", "the cache is not ready"))

    fields: dict[str, Any] = {
        "observedGeneration": generation,
        "replicas": replicas,
        "readyReplicas": ready,
    }
    if cache.status:
        fields["cache"] = cache.status
    return Assessment(conds, fields)


def invalid_spec(message: str) -> list[ConditionUpdate]:
    """Conditions for a spec the operator cannot act on; children are left as they are."""
    return [
        ConditionUpdate(READY, "False", "InvalidSpec", message),
        ConditionUpdate(DEGRADED, "True", "InvalidSpec", message),
    ]
