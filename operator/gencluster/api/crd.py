"""Generate the GenerationCluster CRD from the pydantic models.

Run `gencluster crds` (or `make crds`) after changing `spec.py`/`status.py`; a test fails when the
committed crds/ file or the chart's copy differs from what this module generates.
Pydantic's JSON Schema is turned into a Kubernetes structural schema: `$ref`s inlined, titles
dropped, `X | None` made optional, object defaults reduced to `{}` so that nested defaults apply.
"""

from __future__ import annotations

import copy
from typing import Any

from .. import GROUP, KIND, PLURAL, VERSION
from ..render.names import CLUSTER_NAME_PATTERN, MAX_CLUSTER_NAME_LENGTH
from .spec import GenerationClusterSpec
from .status import GenerationClusterStatus

JsonObj = dict[str, Any]

_DROP = {"title", "additionalProperties"}


def _structural(node: Any, defs: JsonObj) -> Any:
    if isinstance(node, list):
        return [_structural(n, defs) for n in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = copy.deepcopy(defs[node.pop("$ref").split("/")[-1]])
        merged = {**target, **node}
        if "x-kubernetes-validations" in target and "x-kubernetes-validations" in node:
            merged["x-kubernetes-validations"] = (
                target["x-kubernetes-validations"] + node["x-kubernetes-validations"])
        return _structural(merged, defs)
    if "anyOf" in node and not node.get("x-kubernetes-int-or-string"):  # `X | None`: optional X
        options = [o for o in node.pop("anyOf") if o.get("type") != "null"]
        (only,) = options
        node = {**_structural(only, defs), **{k: v for k, v in node.items()}}
        if node.get("default", 0) is None:
            del node["default"]
        return _structural(node, defs)
    out: JsonObj = {}
    for key, value in node.items():
        if key in _DROP and not (key == "additionalProperties" and isinstance(value, dict)):
            continue
        if key == "properties":
            out[key] = {k: _structural(v, defs) for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = _structural(value, defs)
        elif key == "$defs":
            continue
        else:
            out[key] = value
    if isinstance(out.get("default"), dict):
        # Complete object defaults (CEL rules are checked against them), without nulls.
        out["default"] = _without_nulls(out["default"])
    if out.get("type") == "array" and out.get("default") == []:
        del out["default"]  # an absent list is an empty list; keeps manifests short
    if out.get("type") == "object" and out.get("default") == {} and not out.get("properties"):
        del out["default"]  # maps
    return out


def _schema(model: type, mode: str) -> JsonObj:
    raw = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[attr-defined]
    return _structural(raw, raw.get("$defs", {}))  # type: ignore[no-any-return]


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    return value


def spec_schema() -> JsonObj:
    return _schema(GenerationClusterSpec, "validation")


def status_schema() -> JsonObj:
    schema = _schema(GenerationClusterStatus, "serialization")
    conditions = schema["properties"]["conditions"]
    conditions["x-kubernetes-list-type"] = "map"
    conditions["x-kubernetes-list-map-keys"] = ["type"]
    return schema


def _column(name: str, path: str, type_: str = "string", priority: int = 0, desc: str = "") -> JsonObj:
    col: JsonObj = {"name": name, "type": type_, "jsonPath": path}
    if priority:
        col["priority"] = priority
    if desc:
        col["description"] = desc
    return col


PRINTER_COLUMNS = [
    _column("Ready", '.status.conditions[?(@.type=="Ready")].status', desc="Ready condition"),
    _column("Replicas", ".status.readyReplicas", "integer", desc="Ready workload pods"),
    _column("Desired", ".status.desiredReplicas", "integer", desc="Desired workload pods"),
    _column("Batch", ".status.batchSize", "integer", desc="Batch size of new pods"),
    _column("P95", ".status.metrics.p95Ms", "integer", desc="p95 latency (ms)"),
    _column("GPU Mem", ".status.metrics.gpuMemoryPercent", "integer", desc="GPU memory (%)"),
    _column("Alerts", ".status.alertCount", "integer", desc="Firing alerts"),
    _column("Cache", ".status.cache.state", priority=1, desc="Cache state"),
    _column("Cost/1k", ".status.cost.perThousandRequests", desc="Cost per 1,000 requests over the last hour (spec.cost.currency)"),
    _column("Age", ".metadata.creationTimestamp", "date"),
]


# metadata.name is checked at the schema's root (the only place CEL can see it): every child
# name derived from it must be valid, or the children would be refused after admission.
NAME_RULES = [
    {"rule": f"self.metadata.name.size() <= {MAX_CLUSTER_NAME_LENGTH}",
     "message": f"metadata.name must be at most {MAX_CLUSTER_NAME_LENGTH} characters: the operator's "
                "children (<name>-redis, <name>-redis-headless, ...) must fit Kubernetes' 63-character limits"},
    {"rule": f"self.metadata.name.matches('{CLUSTER_NAME_PATTERN}')",
     "message": "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', starting with a "
                "letter, no dots): it names the cluster's Services"},
]


def build_crd() -> JsonObj:
    """The CustomResourceDefinition object, ready to serialise as YAML."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": KIND.lower(),
                "shortNames": ["gencl"],
                "categories": ["all", "orfeas"],
            },
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas.count",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
                "additionalPrinterColumns": PRINTER_COLUMNS,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "description": "A GPU generation service: workload pods, a Redis cache, autoscaling, batch tuning and alerts, run by the gencluster operator.",
                    "required": ["spec"],
                    "x-kubernetes-validations": NAME_RULES,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec_schema(),
                        "status": status_schema(),
                    },
                }},
            }],
        },
    }


def render_yaml() -> str:
    import yaml

    header = ("# Generated by `make crds` from operator/gencluster/api/{spec,status}.py. Do not edit.\n")
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
