"""Chaos: the whole Redis tier goes down (SIGKILL) while clients are sending; every generate
request still succeeds (uncached), none fails, and the server stays fast once the breaker opens.

Real processes: the workload server serving the real model, and a real redis-server.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
from conftest import RedisProcess, ServerProcess, metric_value, shape_images
from test_server import post

CLIENTS = 6
SECONDS = 6.0


async def test_redis_killed_under_load_fails_no_request(module_tmp: Path) -> None:
    redis = RedisProcess(module_tmp, prefix="gencl:chaos:", name="redis-chaos").start()
    server = ServerProcess(module_tmp, {**redis.env(), "GENCLUSTER_REDIS_TIMEOUT_MS": "80"}, name="chaos")
    # Distinct inputs (a few repeat): every request misses L1 and goes to Redis, before and after.
    images = shape_images(400, seed=900)
    results: list[tuple[float, int, str]] = []
    try:
        server.start()
        stop_at = time.monotonic() + SECONDS
        killed_at: list[float] = []

        async def client(k: int) -> None:
            async with aiohttp.ClientSession() as session:
                i = k
                while time.monotonic() < stop_at:
                    t0 = time.monotonic()
                    status, headers, body = await post(server.url, images[i % len(images)],
                                                       params={"resolution": "16"}, session=session)
                    results.append((t0, status, headers.get("X-Cache", "")))
                    assert body or status != 200
                    i += CLIENTS

        async def killer() -> None:
            await asyncio.sleep(SECONDS / 3)
            redis.kill()
            killed_at.append(time.monotonic())

        await asyncio.gather(killer(), *(client(k) for k in range(CLIENTS)))
        before = [r for r in results if r[0] < killed_at[0]]
        after = [r for r in results if r[0] >= killed_at[0]]
        assert before and after, (len(before), len(after))
        failed = [r for r in results if r[1] != 200]
        assert failed == [], f"{len(failed)} of {len(results)} requests failed: {failed[:5]}"
        text = server.metrics_text()
        assert metric_value(text, "gencluster_cache_requests_total", {"tier": "redis", "result": "hit"}) \
            + metric_value(text, "gencluster_cache_requests_total", {"tier": "redis", "result": "miss"}) > 0
        stats = server.get_json("/api/cache/stats")["redis"]
        assert stats["errors"] + stats["timeouts"] + stats["skipped_while_open"] > 0, stats  # Redis was down
        assert stats["writes"] > 0, stats  # and up before
    finally:
        server.stop()
        redis.stop()
