"""The two-tier mesh cache (L1 in process, L2 Redis), its key, and single flight.

Why this key: the same image bytes with the same parameters through the same model version give
the same mesh, so sha256(model name, version, canonical params, image bytes) identifies it;
a new model version never serves an old mesh. Single flight makes N identical concurrent requests
cost one computation: the first leads, the rest await its result.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from opentelemetry import trace

from .lru import ByteLRU
from .metrics import Metrics
from .redis_tier import RedisTier

log = logging.getLogger(__name__)
tracer = trace.get_tracer("gencluster_workload")
T = TypeVar("T")
TIER, HIT = "gencluster.cache.tier", "gencluster.cache.hit"


def cache_key(image: bytes, params: dict[str, Any], model_name: str, model_version: str) -> str:
    h = hashlib.sha256()
    for part in (
        b"gencluster-mesh-v1",
        model_name.encode(),
        model_version.encode(),
        json.dumps(params, sort_keys=True, separators=(",", ":")).encode(),
    ):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    h.update(image)
    return h.hexdigest()


class TieredCache:
    """get: L1, then Redis (filling L1 on a Redis hit). put: L1 now, Redis in the background."""

    def __init__(self, l1: ByteLRU | None, l2: RedisTier | None, metrics: Metrics) -> None:
        self.l1, self.l2, self.metrics = l1, l2, metrics
        self._writes: set[asyncio.Task[bool]] = set()

    async def get(self, key: str) -> tuple[bytes | None, str]:
        """(value, tier) with tier "l1" or "redis" on a hit, (None, "") on a miss.
        Each tier consulted is a span `cache.<tier>` (attributes: tier, hit)."""
        if self.l1 is not None:
            with tracer.start_as_current_span("cache.l1", attributes={TIER: "l1"}) as span:
                value = self.l1.get(key)
                span.set_attribute(HIT, value is not None)
            self.metrics.cache_requests.labels("l1", "hit" if value is not None else "miss").inc()
            if value is not None:
                return value, "l1"
        if self.l2 is not None:
            with tracer.start_as_current_span("cache.redis", attributes={TIER: "redis"}) as span:
                value = await self.l2.get(key)
                span.set_attribute(HIT, value is not None)
            self.metrics.cache_requests.labels("redis", "hit" if value is not None else "miss").inc()
            if value is not None:
                if self.l1 is not None:
                    self.l1.put(key, value)
                return value, "redis"
        return None, ""

    def put(self, key: str, value: bytes) -> None:
        if self.l1 is not None:
            self.l1.put(key, value)
        if self.l2 is not None:
            task = asyncio.get_running_loop().create_task(self.l2.set(key, value))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def flush(self, timeout_s: float) -> None:
        """Wait (bounded) for background Redis writes, e.g. before exiting."""
        if self._writes:
            await asyncio.wait(list(self._writes), timeout=timeout_s)

    async def close(self) -> None:
        if self.l2 is not None:
            await self.l2.close()

    def stats(self) -> dict[str, Any]:
        return {
            "l1": self.l1.stats() if self.l1 is not None else {"enabled": False},
            "redis": self.l2.stats() if self.l2 is not None else {"enabled": False},
            "pending_writes": len(self._writes),
        }


class SingleFlight:
    """Concurrent calls with the same key share one execution of `fn`."""

    def __init__(self) -> None:
        self._calls: dict[str, asyncio.Future[Any]] = {}
        self.coalesced = 0

    async def do(self, key: str, fn: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """(result, leader): leader is False for callers that joined an existing call."""
        existing = self._calls.get(key)
        if existing is not None:
            self.coalesced += 1
            return await asyncio.shield(existing), False
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._calls[key] = future
        try:
            result = await fn()
        except BaseException as exc:
            if not future.done():
                if isinstance(exc, asyncio.CancelledError):
                    future.set_exception(RuntimeError("the computation was cancelled"))
                else:
                    future.set_exception(exc)
                future.exception()  # followers read it; mark it retrieved for the leader too
            raise
        else:
            future.set_result(result)
            return result, True
        finally:
            self._calls.pop(key, None)

    def __len__(self) -> int:
        return len(self._calls)
