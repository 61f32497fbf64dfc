"""Convergence of a namespace of GenerationClusters, as the chaos tests define it.

Converged: every GenerationCluster's status.observedGeneration equals its generation, its children
are exactly the (kind, name) set the renderers want for its spec, each applied by the operator
(applied-hash annotation) and owned by it; no child of a deleted or foreign owner remains.
"""
from __future__ import annotations

import time
from typing import Any

from fixtures.kube import get_json

from gencluster.api.spec import parse_spec
from gencluster.render.children import Observed, OperatorDefaults, Secrets, render_children
from gencluster.render.redis import generate_redis_auth

CHILD_KINDS = "deployments,statefulsets,services,configmaps,secrets,poddisruptionbudgets,networkpolicies"
HASH = "orfeas.ai/applied-hash"
AUTH = generate_redis_auth()


def gencl_spec(count: int, cache: str, batch: int) -> dict[str, Any]:
    return {"workload": {"image": "localhost/gencluster-workload:dev", "imagePullPolicy": "Never",
                         "memoryBudgetMiB": 1024},
            "replicas": {"min": 0, "max": 2, "count": count}, "autoscaling": {"enabled": False},
            "batching": {"initial": batch, "max": 16}, "cache": {"mode": cache}}


def _expected(name: str, ns: str, spec: dict[str, Any]) -> set[tuple[str, str]]:
    objs = render_children(name, ns, parse_spec(spec), Observed(), Secrets("x", AUTH), OperatorDefaults())
    return {(o["kind"], o["metadata"]["name"]) for o in objs}


def _children(cluster, ns: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, CHILD_KINDS, "-n", ns, "-l", "app.kubernetes.io/managed-by=gencluster-operator")
    return (out or {}).get("items", [])


def problems(cluster, ns: str, specs: dict[str, dict[str, Any]]) -> list[str]:  # type: ignore[no-untyped-def]
    """What keeps the namespace from being converged (empty when it is)."""
    found = []
    live = {o["metadata"]["name"]: o for o in (get_json(cluster, "gencl", "-n", ns) or {}).get("items", [])}
    children = _children(cluster, ns)
    by_owner: dict[str, set[tuple[str, str]]] = {}
    for c in children:
        inst = c["metadata"]["labels"].get("app.kubernetes.io/instance", "?")
        by_owner.setdefault(inst, set()).add((c["kind"], c["metadata"]["name"]))
        owners = {r["uid"] for r in c["metadata"].get("ownerReferences") or []}
        if inst not in live or live[inst]["metadata"]["uid"] not in owners:
            found.append(f"orphan {c['kind']}/{c['metadata']['name']}")
        elif HASH not in (c["metadata"].get("annotations") or {}):
            found.append(f"{c['kind']}/{c['metadata']['name']} not applied by the operator")
    for name, spec in specs.items():
        obj = live.get(name)
        if obj is None:
            found.append(f"{name} missing")
            continue
        if (obj.get("status") or {}).get("observedGeneration") != obj["metadata"]["generation"]:
            found.append(f"{name} status not at generation {obj['metadata']['generation']}")
        want, have = _expected(name, ns, spec), by_owner.get(name, set())
        if want != have:
            found.append(f"{name}: missing {sorted(want - have)}, extra {sorted(have - want)}")
    for name in set(by_owner) - set(specs):
        found.append(f"children of deleted {name}: {sorted(by_owner[name])}")
    return found


def converge(cluster, ns: str, specs: dict[str, dict[str, Any]], timeout: float = 90) -> float:  # type: ignore[no-untyped-def]
    """Seconds until the namespace converges; AssertionError with what is left after `timeout`."""
    t0 = time.monotonic()
    found: list[str] = []
    while time.monotonic() - t0 < timeout:
        found = problems(cluster, ns, specs)
        if not found:
            return time.monotonic() - t0
        time.sleep(0.25)
    raise AssertionError(f"not converged after {timeout} s: {found}")
