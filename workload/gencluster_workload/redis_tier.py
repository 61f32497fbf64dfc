"""L2 cache: Redis (standalone or Cluster) through redis-py asyncio, never on the failure path.

Why so defensive: the cache is an optimisation. Every call has a short deadline; an error or a
timeout is a miss; and a circuit breaker stops calling a dead Redis for a back-off period (0.5 s
doubling to 30 s, one probe at a time), so an outage costs each request nothing rather than the
timeout. Cluster mode uses redis.asyncio.RedisCluster (slot-aware; it follows MOVED/ASK).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger(__name__)


class CircuitBreaker:
    """closed -> (threshold consecutive failures) -> open -> (back-off) -> half-open probe."""

    def __init__(
        self,
        threshold: int = 3,
        base_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.base = base_backoff_s
        self.max = max_backoff_s
        self._clock = clock
        self.state = "closed"
        self.failures = 0
        self.backoff = base_backoff_s
        self.open_until = 0.0
        self.opened = 0

    def allow(self) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and self._clock() >= self.open_until:
            self.state = "half-open"  # let exactly this caller probe
            return True
        return False

    def success(self) -> None:
        self.state, self.failures, self.backoff = "closed", 0, self.base

    def failure(self) -> None:
        self.failures += 1
        if self.state == "half-open" or self.failures >= self.threshold:
            if self.state != "open":
                self.opened += 1
            self.state = "open"
            self.open_until = self._clock() + self.backoff
            self.backoff = min(self.backoff * 2, self.max)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


class RedisTier:
    """get/set of byte values under `prefix`, each under `timeout_s`; failures are misses."""

    def __init__(
        self,
        mode: str,
        url: str,
        username: str = "",
        password: str = "",
        prefix: str = "gencluster:",
        ttl_seconds: int = 3600,
        timeout_s: float = 0.1,
        connect_timeout_s: float = 2.0,
        *,
        tls_ca_file: str = "",
    ) -> None:
        if mode not in ("standalone", "cluster"):
            raise ValueError(f"redis mode must be standalone or cluster, got {mode!r}")
        self.mode, self.url, self.prefix = mode, url, prefix
        self.ttl, self.timeout = ttl_seconds, timeout_s
        self.connect_timeout = connect_timeout_s
        kwargs: dict[str, Any] = {
            "username": username or None,
            "password": password or None,
            "socket_timeout": max(timeout_s, 0.05) * 5,
            "socket_connect_timeout": connect_timeout_s,
            "retry": Retry(NoBackoff(), 0),
            "decode_responses": False,
        }
        # TLS with a rediss:// URL or a CA file (the operator renders both). The chain is
        # verified against the CA; the host name is not: a Redis Cluster's nodes are pod IPs,
        # which no certificate names. The file is read when a connection opens, so a CA that
        # is not there yet (its Secret missing) is a failed connection, i.e. a miss.
        self.tls = url.startswith("rediss://") or bool(tls_ca_file)
        if self.tls:
            if url.startswith("redis://"):
                url = "rediss://" + url[len("redis://"):]
                self.url = url
            kwargs |= {"ssl_cert_reqs": "required", "ssl_check_hostname": False}
            if tls_ca_file:
                kwargs["ssl_ca_certs"] = tls_ca_file
        self.client: Any
        if mode == "cluster":
            # Discover through the URL's address (the operator's Service name) every time, not
            # only through the pod IPs found last time, as redis-py's docs advise for a DNS
            # startup node: after a rolling restart every pod has a new IP, and none of the
            # old ones answers (tests/redis/test_redis_tier_rediscovery.py).
            self.client = aioredis.RedisCluster.from_url(url, dynamic_startup_nodes=False, **kwargs)
        else:
            self.client = aioredis.Redis.from_url(url, **kwargs)
        self.breaker = CircuitBreaker()
        self._ready = mode == "standalone"
        self._connecting: asyncio.Task[bool] | None = None
        self.hits = self.misses = self.errors = self.timeouts = self.skipped = 0
        self.writes = self.write_failures = 0
        self.last_error = ""

    # -- connection --------------------------------------------------------------------
    async def connect(self) -> bool:
        """Discover the cluster (or ping standalone) with a longer deadline; True on success."""
        try:
            if self.mode == "cluster":
                # Forget the node map of a cluster found before (a no-op the first time), so
                # initialize() asks the URL's address again.
                await self.client.aclose()
                await asyncio.wait_for(self.client.initialize(), self.connect_timeout)
            else:
                await asyncio.wait_for(self.client.ping(), self.connect_timeout)
        except Exception as exc:
            self._note_error(exc)
            return False
        self._ready = True
        self.breaker.success()
        log.info("redis (%s) reachable at %s", self.mode, redact_url(self.url))
        return True

    async def keep_connecting(self, max_backoff_s: float = 5.0) -> None:
        """Connect at start, and keep trying in the background until it works.

        A Redis Cluster is often still forming when the workload starts (the operator joins
        the pods once they run); waiting for a request to retry would make the first requests
        of every pod misses for no reason.
        """
        backoff = 0.25
        while not self._ready:
            if await self.connect():
                return
            await asyncio.sleep(backoff)
            backoff = min(max_backoff_s, backoff * 2)

    def _ensure_connecting(self) -> None:
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.get_running_loop().create_task(self.connect())

    def _note_error(self, exc: BaseException) -> None:
        if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
            self.timeouts += 1
            self.last_error = f"timeout after {self.timeout * 1000:.0f} ms"
        else:
            self.errors += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
        self.breaker.failure()
        if self.breaker.state == "open" and self.mode == "cluster" and self._ready:
            # Find the cluster again off the request path, under the connect deadline: left to
            # redis-py, the rediscovery runs inside a request's short deadline (100 ms by
            # default), which TLS handshakes with every new node could outlast each time.
            self._ready = False
        if self.breaker.state == "open":
            log.warning(
                "redis unavailable (%s); circuit open for %.1fs",
                self.last_error,
                self.breaker.open_until - time.monotonic(),
            )

    def _usable(self) -> bool:
        if not self._ready:
            # Cluster discovery happens in the background; until then every lookup is a miss.
            if self.breaker.allow():
                self._ensure_connecting()
            return False
        return self.breaker.allow()

    # -- operations --------------------------------------------------------------------
    async def get(self, key: str) -> bytes | None:
        if not self._usable():
            self.skipped += 1
            self.misses += 1
            return None
        try:
            value = await asyncio.wait_for(self.client.get(self.prefix + key), self.timeout)
        except Exception as exc:
            self._note_error(exc)
            self.misses += 1
            return None
        self.breaker.success()
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        return bytes(value)

    async def set(self, key: str, value: bytes) -> bool:
        if not self._usable():
            self.skipped += 1
            return False
        try:
            await asyncio.wait_for(
                self.client.set(self.prefix + key, value, ex=self.ttl or None),
                max(self.timeout, 0.05) * 5,  # writes are off the request path: allow more
            )
        except Exception as exc:
            self._note_error(exc)
            self.write_failures += 1
            return False
        self.breaker.success()
        self.writes += 1
        return True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.aclose(), 1.0)

    def stats(self) -> dict[str, Any]:
        lookups = self.hits + self.misses
        return {
            "mode": self.mode,
            "url": redact_url(self.url),
            "tls": self.tls,
            "key_prefix": self.prefix,
            "ttl_seconds": self.ttl,
            "timeout_ms": round(self.timeout * 1000),
            "connected": self._ready,
            "hits": self.hits,
            "misses": self.misses,
            "hit_ratio": round(self.hits / lookups, 4) if lookups else 0.0,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "skipped_while_open": self.skipped,
            "writes": self.writes,
            "write_failures": self.write_failures,
            "circuit": {
                "state": self.breaker.state,
                "consecutive_failures": self.breaker.failures,
                "times_opened": self.breaker.opened,
                "next_backoff_s": self.breaker.backoff,
            },
            "last_error": self.last_error,
        }
