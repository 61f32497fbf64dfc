"""Server-side apply, reads and deletes through the official client's dynamic API.

The official client is synchronous; every call runs in a worker thread so that Kopf's event
loop (and other GenerationClusters' handlers) never wait on one slow request. A Kube has its own
threads (`workers`); `lane()` gives another set over the same connections and discovery, so the
reconciles and the control loops each have theirs and neither queues behind the other's
requests (at 1,000 clusters the loops' status writes, in one shared pool, held each create's
requests back for tens of seconds: docs/reliability.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from kubernetes import client, config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError
from kubernetes.dynamic.resource import Resource

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
# Answers worth a quick retry of the same request (as client-go does) before the whole
# reconcile fails and Kopf backs off: throttling, a conflict, a server-side hiccup.
TRANSIENT = frozenset({409, 429, 500, 502, 503, 504})
RETRY_DELAYS_S = (0.2, 0.5, 1.0)
MAX_RETRY_AFTER_S = 2.0


def _plain(_client: Any, data: Any) -> Any:
    """The decoded JSON as it came: the dynamic client's default wraps every answer in
    ResourceInstance objects, and turning those back into dicts was about a sixth of the
    operator's CPU after a restart at 300 clusters (docs/reliability.md)."""
    return data


class KubeApi(Protocol):
    """The calls the reconcile and the cache edge make: `Kube` below, or a test's fake."""

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]: ...

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> dict[str, Any] | None: ...

    async def apply(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]: ...

    async def delete(self, api_version: str, kind: str, name: str,
                     namespace: str | None) -> bool: ...

    async def apply_status(self, api_version: str, kind: str, name: str, namespace: str,
                           status: dict[str, Any], field_manager: str,
                           uid: str | None = None) -> dict[str, Any]: ...


def retry_delay(status: int, headers: Any, attempt: int) -> float | None:
    """Seconds to wait before retry `attempt` (0-based), or None when the error is final."""
    if status not in TRANSIENT or attempt >= len(RETRY_DELAYS_S):
        return None
    delay = RETRY_DELAYS_S[attempt]
    if status == 429 and headers:
        with contextlib.suppress(TypeError, ValueError):  # a malformed header: the fixed step
            delay = max(delay, min(float(headers.get("Retry-After", 0)), MAX_RETRY_AFTER_S))
    return delay


def load_config(kubeconfig: str | None = None, connections: int = 0) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else a kubeconfig (KUBECONFIG or ~/.kube).

    connections: keep at least this many open connections, one per client thread of every
    lane. urllib3's pool defaults to 5 per CPU the host has (10 on 2 cores), and each thread
    beyond it threw its connection away after each request and opened a new one, with a TLS
    handshake each time (180 "Connection pool is full" warnings in 12 min at 1,000 clusters).
    """
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config(config_file=kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize or 0, connections)
    return client.ApiClient(configuration=cfg)


class _Discovery:
    """The dynamic client and its resource lookups, shared by every lane of one Kube."""

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

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one per process, lives as long
    def resource(self, api_version: str, kind: str) -> Resource:
        return self.dyn.resources.get(api_version=api_version, kind=kind)


class Kube:
    """Async facade over DynamicClient, with resource discovery cached per (apiVersion, kind)."""

    def __init__(self, api_client: client.ApiClient, workers: int = 4,
                 name: str = "kube", _discovery: _Discovery | None = None) -> None:
        self._discovery = _discovery or _Discovery(api_client)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)

    def lane(self, workers: int, name: str) -> Kube:
        """Another Kube with its own `workers` threads, over the same connections and discovery."""
        return Kube(self._discovery.api_client, workers, name, self._discovery)

    @property
    def dyn(self) -> DynamicClient:
        return self._discovery.dyn

    async def _in_thread(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """fn on one of this lane's threads, with the caller's context (the trace span), as
        asyncio.to_thread would on the shared default pool."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def _resource(self, api_version: str, kind: str) -> Resource:
        return await self._in_thread(self._discovery.resource, api_version, kind)  # I/O

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        attempt = 0
        while True:  # retry_delay ends it: None after the last of RETRY_DELAYS_S
            try:
                return await self._in_thread(fn, *args, **kwargs)
            except client.exceptions.ApiException as err:
                delay = retry_delay(int(err.status or 0), err.headers, attempt)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
                attempt += 1

    async def _request(self, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """One dynamic-client call (retried as `_run` does), answered as plain decoded JSON."""
        out: dict[str, Any] = await self._run(fn, *args, serializer=_plain, **kwargs)
        return out

    async def apply(self, obj: dict[str, Any], field_manager: str) -> dict[str, Any]:
        res = await self._resource(obj["apiVersion"], obj["kind"])
        meta = obj["metadata"]
        return await self._request(self.dyn.server_side_apply, res, body=obj, name=meta["name"],
                                   namespace=meta.get("namespace"), field_manager=field_manager,
                                   force_conflicts=True)

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
        return await self._request(self.dyn.request, "patch", path, body=body, content_type=APPLY,
                                   field_manager=field_manager, force_conflicts=True)

    async def get(self, api_version: str, kind: str, name: str,
                  namespace: str | None = None) -> dict[str, Any] | None:
        res = await self._resource(api_version, kind)
        try:
            return await self._request(res.get, name=name, namespace=namespace)
        except NotFoundError:
            return None

    async def list(self, api_version: str, kind: str, namespace: str | None,
                   label_selector: str | None = None) -> list[dict[str, Any]]:
        res = await self._resource(api_version, kind)
        out = await self._request(res.get, namespace=namespace, label_selector=label_selector)
        items: list[dict[str, Any]] = out.get("items") or []
        for item in items:  # list items carry no apiVersion/kind
            item.setdefault("apiVersion", api_version)
            item.setdefault("kind", kind)
        return items

    async def delete(self, api_version: str, kind: str, name: str, namespace: str | None) -> bool:
        res = await self._resource(api_version, kind)
        try:
            await self._request(res.delete, name=name, namespace=namespace,
                                body={"propagationPolicy": "Background"})
        except NotFoundError:
            return False
        return True

    async def patch_merge(self, api_version: str, kind: str, name: str, namespace: str | None,
                          body: dict[str, Any]) -> dict[str, Any]:
        """JSON merge patch (a None value removes a key, e.g. an annotation)."""
        res = await self._resource(api_version, kind)
        return await self._request(res.patch, body=body, name=name, namespace=namespace,
                                   content_type=MERGE)

    async def patch_scale(self, api_version: str, kind: str, name: str, namespace: str,
                          replicas: int) -> dict[str, Any]:
        res = await self._resource(api_version, kind)
        path = res.scale.path(name=name, namespace=namespace)
        return await self._request(self.dyn.request, "patch", path,
                                   body={"spec": {"replicas": replicas}}, content_type=MERGE)
