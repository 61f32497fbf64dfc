"""An in-memory recorder of the apiserver calls the reconcile makes (gencluster.kube.client.KubeApi).

Not an apiserver: it stores what is applied, lists it back by label selector and records every
call, so the reconcile's decisions (what it applies, deletes, reports) can be checked without a
cluster. What only a real apiserver can tell (defaulting, admission, field ownership) is tested
by the cluster-tier tests (tests/reconcile/*_live.py) against the local cluster.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

from kubernetes.client.exceptions import ApiException


def _matches(labels: dict[str, str], selector: str | None) -> bool:
    if not selector:
        return True
    for term in selector.split(","):
        k, _, v = term.partition("=")
        if labels.get(k) != v:
            return False
    return True


class FakeKube:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}  # (kind, ns, name)
        self.calls: list[tuple[str, ...]] = []
        self.status: list[dict[str, Any]] = []
        self.refuse: dict[str, tuple[int, dict[str, Any]]] = {}  # kind -> (HTTP code, Status)
        self.pods: list[dict[str, Any]] = []

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls.append(("list", kind))
        if kind == "Pod":
            return [copy.deepcopy(p) for p in self.pods
                    if _matches(p["metadata"].get("labels") or {}, label_selector)]
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                if k == kind and ns == namespace
                and _matches(o["metadata"].get("labels") or {}, label_selector)]

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> dict[str, Any] | None:
        """One object by name (None: not found), as the kube client's `get`."""
        self.calls.append(("get", kind, name))
        obj = self.objects.get((kind, namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    async def apply(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]:
        self.calls.append(("apply", obj["kind"], obj["metadata"]["name"], field_manager))
        if obj["kind"] in self.refuse:
            code, status = self.refuse[obj["kind"]]
            err = ApiException(status=code, reason="Unprocessable Entity")
            err.body = json.dumps(status)
            raise err
        stored = copy.deepcopy(obj)
        if stored["kind"] == "Secret" and "stringData" in stored:  # as the apiserver stores it
            data = stored.setdefault("data", {})
            for k, v in stored.pop("stringData").items():
                data[k] = base64.b64encode(v.encode()).decode()
        self.objects[(obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])] = stored
        return copy.deepcopy(stored)

    async def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        self.calls.append(("delete", kind, name))
        return self.objects.pop((kind, namespace or "", name), None) is not None

    async def apply_status(self, api_version: str, kind: str, name: str, namespace: str,
                           status: dict[str, Any], field_manager: str,
                           uid: str | None = None) -> dict[str, Any]:
        self.calls.append(("status", name, field_manager))
        self.status.append(copy.deepcopy(status))
        return {"status": status}

    def writes(self) -> list[tuple[str, ...]]:
        return [c for c in self.calls if c[0] in ("apply", "delete")]

    def edit(self, kind: str, name: str, namespace: str = "ns", **changes: Any) -> None:
        """Someone else changes a child (drift): merges `changes` into it."""
        obj = self.objects[(kind, namespace, name)]
        for k, v in changes.items():
            obj[k] = v
