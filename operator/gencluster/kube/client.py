"""Server-side apply, reads and deletes through the official client's dynamic API.

The official client is synchronous; every call runs in a worker thread so that Kopf's event
loop (and other GenerationClusters' handlers) never wait on one slow request.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from typing import Any

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from kubernetes.dynamic.resource import Resource

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"


def load_config(kubeconfig: str | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else a kubeconfig (KUBECONFIG or ~/.kube)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig)
    return client.ApiClient()


class Kube:
    """Async facade over DynamicClient, with resource discovery cached per (apiVersion, kind)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.api_client = api_client
        self._dyn: DynamicClient | None = None
        self._lock = threading.Lock()

    @property
    def dyn(self) -> DynamicClient:
        with self._lock:
            if self._dyn is None:
                self._dyn = DynamicClient(self.api_client)
            return self._dyn

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one Kube per process
    def resource(self, api_version: str, kind: str) -> Resource:
        return self.dyn.resources.get(api_version=api_version, kind=kind)

    async def _resource(self, api_version: str, kind: str) -> Resource:
        return await asyncio.to_thread(self.resource, api_version, kind)  # discovery is I/O

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def apply(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]:
        res = await self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]

        def call() -> Any:
            return self.dyn.server_side_apply(
                res, body=obj, name=meta["name"], namespace=meta.get("namespace"),
                field_manager=field_manager, force_conflicts=True)

        out = await self._run(call)
        return out.to_dict()

    async def apply_status(self, api_version: str, kind: str, name: str, namespace: str,
                           status: dict[str, Any], field_manager: str,
                           uid: str | None = None) -> dict[str, Any]:
        """Server-side apply of `status` only; other managers' fields (conditions by type) stay.

        With `uid`, the write is refused (409) if the object was meanwhile deleted and recreated
        under the same name, so a late pass never reports on its successor.
        """
        res = await self._resource(api_version, kind)
        meta: dict[str, Any] = {"name": name, "namespace": namespace}
        if uid:
            meta["uid"] = uid
        body = {"apiVersion": api_version, "kind": kind, "metadata": meta, "status": status}
        path = res.status.path(name=name, namespace=namespace)

        def call() -> Any:
            return self.dyn.request("patch", path, body=body, content_type=APPLY,
                                    field_manager=field_manager, force_conflicts=True)

        out = await self._run(call)
        return out.to_dict()

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> dict[str, Any] | None:
        res = await self._resource(api_version, kind)
        try:
            out = await self._run(res.get, name=name, namespace=namespace)
        except NotFoundError:
            return None
        return out.to_dict()

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        res = await self._resource(api_version, kind)
        out = await self._run(res.get, namespace=namespace, label_selector=label_selector)
        items = out.to_dict().get("items", [])
        for item in items:  # list items carry no apiVersion/kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    async def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        res = await self._resource(api_version, kind)
        try:
            await self._run(res.delete, name=name, namespace=namespace,
                            body={"propagationPolicy": "Background"})
        except NotFoundError:
            return False
        return True

    async def patch_scale(self, api_version: str, kind: str, name: str, namespace: str,
                          replicas: int) -> dict[str, Any]:
        res = await self._resource(api_version, kind)
        path = res.scale.path(name=name, namespace=namespace)

        def call() -> Any:
            return self.dyn.request("patch", path, body={"spec": {"replicas": replicas}},
                                    content_type=MERGE)

        out = await self._run(call)
        return out.to_dict()
