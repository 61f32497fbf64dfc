"""Child names derived from a GenerationCluster's name fit Kubernetes' limits at the CRD's bound.

The CRD admits names up to MAX_CLUSTER_NAME_LENGTH matching CLUSTER_NAME_PATTERN; every child the
renderers make from such a name (and every name Kubernetes derives from a child) must be valid,
and one character more must break something, so the bound is neither loose nor too strict.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from gencluster.api.spec import parse_spec
from gencluster.reconcile.assess import Refusal, refusal, refused_condition
from gencluster.render.children import Observed, OperatorDefaults, Secrets, render_children
from gencluster.render.names import CLUSTER_NAME_PATTERN, MAX_CLUSTER_NAME_LENGTH, OPERATOR_ENV
from gencluster.render.redis import RedisAuth

ROOT = Path(__file__).resolve().parents[2]
DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
AUTH = RedisAuth(**{f: f"{f}-x" for f in RedisAuth.__dataclass_fields__})
REVISION_HASH = 11  # "-" + the controller-revision-hash suffix Kubernetes appends (up to 10 chars)


def _specs() -> list[Any]:
    full = yaml.safe_load((ROOT / "examples" / "full.yaml").read_text())["spec"]
    out = []
    for cache in ({"mode": "standalone"}, {"mode": "cluster", "shards": 3, "replicasPerShard": 1},
                  {"mode": "disabled"}):
        spec = copy.deepcopy(full)
        spec["cache"] = {**{k: v for k, v in spec.get("cache", {}).items() if k not in ("mode", "shards")},
                         **cache}
        out.append(parse_spec(spec))
    return out


def _render(name: str, spec: Any) -> list[dict[str, Any]]:
    return render_children(name, "ns", spec, Observed(), Secrets("tok", AUTH), OperatorDefaults())


def problems(name: str) -> list[str]:
    """Names Kubernetes would refuse among the children of a cluster called `name`."""
    found = []
    for spec in _specs():
        for obj in _render(name, spec):
            kind, child = obj["kind"], obj["metadata"]["name"]
            if not DNS1123_SUBDOMAIN.match(child) or len(child) > 253:
                found.append(f"{kind} {child}: not a DNS-1123 subdomain")
            if kind == "Service" and (len(child) > 63 or not DNS1035.match(child)):
                found.append(f"Service {child}: not a DNS-1035 label")
            if kind == "StatefulSet" and len(child) + REVISION_HASH > 63:
                found.append(f"StatefulSet {child}: its pods' controller-revision-hash label is over 63")
            for key, value in (obj["metadata"].get("labels") or {}).items():
                if len(value) > 63:
                    found.append(f"{kind} {child}: label {key} over 63")
    return found


def test_every_child_name_is_valid_at_the_bound() -> None:
    assert problems("a" * MAX_CLUSTER_NAME_LENGTH) == []
    assert problems("a" + "-b" * ((MAX_CLUSTER_NAME_LENGTH - 1) // 2)) == []


def test_the_bound_is_tight() -> None:
    assert problems("a" * (MAX_CLUSTER_NAME_LENGTH + 1)), "the CRD could admit longer names"


@pytest.mark.parametrize("name", ["1abc", "a.b", "9-lives", "x.y.z"])
def test_the_pattern_refuses_names_a_service_cannot_carry(name: str) -> None:
    assert not re.match(CLUSTER_NAME_PATTERN, name)
    assert problems(name)


def test_every_variable_the_operator_sets_is_reserved() -> None:
    for spec in _specs():
        for obj in _render("demo", spec):
            if obj["kind"] != "Deployment":
                continue
            for c in obj["spec"]["template"]["spec"]["containers"]:
                if not c["name"].startswith("workload"):
                    continue
                user = {e.name for e in spec.workload.env}
                set_by_operator = {e["name"] for e in c.get("env", [])} - user
                assert set_by_operator <= set(OPERATOR_ENV), set_by_operator - set(OPERATOR_ENV)


def test_refusal_reads_the_apiserver_status() -> None:
    body = ('{"kind":"Status","status":"Failure","reason":"Invalid","code":422,'
            '"message":"Service \\"x-workload\\" is invalid: metadata.name: Invalid value",'
            '"details":{"causes":[{"field":"metadata.name","message":"Invalid value"},'
            '{"field":"metadata.name","message":"again"}]}}')
    r = refusal("Service/x-workload", 422, body)
    assert r == Refusal("Service/x-workload", ("metadata.name",),
                        'Service "x-workload" is invalid: metadata.name: Invalid value')
    assert "Service/x-workload refused by the apiserver (field metadata.name)" in r.describe()
    assert refusal("Service/x", 403, b"forbidden: exceeded quota").message == "forbidden: exceeded quota"
    for transient in (409, 429, 500, 503, 0):
        assert refusal("Service/x", transient, "{}") is None


def test_refused_condition_names_every_child() -> None:
    rs = [Refusal(f"Service/s{i}", ("spec.ports",), "bad") for i in range(5)]
    c = refused_condition(rs)
    assert (c.type, c.status, c.reason) == ("Degraded", "True", "ChildRejected")
    assert "Service/s0" in c.message and "Service/s2" in c.message and "(and 2 more)" in c.message
