"""The two cache tiers with real processes: L1 hit, Redis hit after a server restart, Redis
Cluster as L2, and a killed Redis that never fails a request (circuit breaker)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import REDIS_CLI, RedisProcess, ServerProcess, metric_value, shape_images
from test_server import post


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_l1_then_redis_after_restart_then_redis_killed(module_tmp: Path) -> None:
    redis = RedisProcess(module_tmp, prefix="gencl:restart:", name="redis-restart").start()
    server = ServerProcess(module_tmp, {**redis.env(), "GENCLUSTER_REDIS_TIMEOUT_MS": "80"}, name="restart")
    try:
        server.start()
        image = shape_images(1, seed=77)[0]
        params = {"format": "glb", "resolution": "32"}
        st, h, first = await post(server.url, image, params=params)
        assert st == 200 and h["X-Cache"] == "miss"
        wait_for(lambda: server.get_json("/api/cache/stats")["redis"]["writes"] >= 1, what="the Redis write")
        st, h, body = await post(server.url, image, params=params)
        assert st == 200 and h["X-Cache"] == "hit-l1" and body == first

        # The key lives under the ACL user's prefix (the user can touch nothing else).
        keys = redis.admin().keys("*")
        assert keys and all(k.startswith(b"gencl:restart:") for k in keys)

        assert server.terminate() == 0
        server.start()  # a new process: empty L1
        st, h, body = await post(server.url, image, params=params)
        assert st == 200 and h["X-Cache"] == "hit-redis" and body == first
        st, h, _ = await post(server.url, image, params=params)
        assert h["X-Cache"] == "hit-l1"
        text = server.metrics_text()
        assert metric_value(text, "gencluster_cache_requests_total", {"tier": "redis", "result": "hit"}) == 1

        # Redis hangs (SIGSTOP): lookups time out (80 ms) and count as misses; after three the
        # breaker opens and requests stop waiting for Redis at all.
        assert redis.proc is not None
        redis.proc.send_signal(signal.SIGSTOP)
        latencies = []
        for im in shape_images(6, seed=700):
            t0 = time.perf_counter()
            st, h, _ = await post(server.url, im, params={"resolution": "16"})
            latencies.append(time.perf_counter() - t0)
            assert st == 200 and h["X-Cache"] == "miss"
        stats = server.get_json("/api/cache/stats")["redis"]
        assert stats["timeouts"] >= 3 and stats["circuit"]["state"] in ("open", "half-open")
        assert stats["skipped_while_open"] >= 2, stats
        assert max(latencies) < 2.0, latencies

        # Redis dies: every request still succeeds.
        redis.kill()
        for im in shape_images(4, seed=750):
            st, h, _ = await post(server.url, im, params={"resolution": "16"})
            assert st == 200 and h["X-Cache"] == "miss"
        st, h, body = await post(server.url, image, params=params)  # L1 still serves
        assert st == 200 and h["X-Cache"] == "hit-l1" and body == first
        print("latencies with Redis hung:", [round(x * 1000) for x in latencies])
    finally:
        server.stop()
        redis.stop()


class RedisCluster:
    """Three real redis-server masters joined into a Redis Cluster with redis-cli."""

    def __init__(self, tmp: Path, prefix: str) -> None:
        self.nodes = [RedisProcess(tmp, prefix, cluster=True, name=f"cluster-{i}") for i in range(3)]
        # One set of credentials across the nodes, as the operator's Secret gives them.
        for n in self.nodes[1:]:
            n.password, n.admin_password = self.nodes[0].password, self.nodes[0].admin_password

    def start(self) -> RedisCluster:
        for n in self.nodes:
            n.start()
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(
            [
                REDIS_CLI,
                "--user",
                "admin",
                "--pass",
                self.nodes[0].admin_password,
                "--no-auth-warning",
                "--cluster",
                "create",
                *addrs,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def ok() -> bool:
            return all(
                b"cluster_state:ok" in n.admin().execute_command("CLUSTER", "INFO") for n in self.nodes
            )

        wait_for(ok, 30, "cluster_state:ok")
        return self

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()


@pytest.fixture(scope="module")
def redis_cluster(module_tmp: Path) -> Iterator[RedisCluster]:
    c = RedisCluster(module_tmp, prefix="gencl:cl:").start()
    try:
        yield c
    finally:
        c.stop()


async def test_redis_cluster_mode(module_tmp: Path, redis_cluster: RedisCluster) -> None:
    """GENCLUSTER_REDIS_MODE=cluster: RedisCluster client, ACL user with the operator's command
    set; with L1 off, the second identical request is served from the cluster."""
    env = {**redis_cluster.nodes[0].env("cluster"), "GENCLUSTER_L1_CACHE_BYTES": "0"}
    server = ServerProcess(module_tmp, env, name="cluster").start()
    try:
        wait_for(lambda: server.get_json("/api/cache/stats")["redis"]["connected"], 15, "cluster discovery")
        images = shape_images(6, seed=800)
        async with aiohttp.ClientSession() as s:
            first = await asyncio.gather(
                *(post(server.url, im, params={"resolution": "16"}, session=s) for im in images)
            )
        assert all(st == 200 and h["X-Cache"] == "miss" for st, h, _ in first)
        wait_for(lambda: server.get_json("/api/cache/stats")["redis"]["writes"] >= 6, what="cluster writes")
        for im, (_, _, body) in zip(images, first, strict=True):
            st, h, again = await post(server.url, im, params={"resolution": "16"})
            assert st == 200 and h["X-Cache"] == "hit-redis" and again == body
        # Keys spread over the shards, all under the prefix.
        per_node = [len(n.admin().keys("gencl:cl:*")) for n in redis_cluster.nodes]
        assert sum(per_node) == 6 and sum(1 for c in per_node if c) >= 2, per_node
        stats = server.get_json("/api/cache/stats")["redis"]
        assert stats["mode"] == "cluster" and stats["errors"] == 0
    finally:
        server.stop()
