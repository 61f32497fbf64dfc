"""Reading the target's memory while it is under load (soak's memory drift).

Why from the target itself: the workload exports `gencluster_gpu_memory_used_bytes` (label
`device`; on CPU, host memory stands in) at /metrics, so a slow leak shows as a rising line across
windows without any other monitoring. Per target, the devices are summed.
"""

from __future__ import annotations

import asyncio

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

METRIC = "gencluster_gpu_memory_used_bytes"
SCRAPE_TIMEOUT_S = 2.0


def memory_used(text: str) -> float | None:
    """Sum of METRIC's samples in a Prometheus text exposition; None when absent."""
    total, seen = 0.0, False
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == METRIC:
                total += float(sample.value)
                seen = True
    return total if seen else None


async def scrape_memory(session: aiohttp.ClientSession, urls: tuple[str, ...]) -> dict[str, float]:
    """{base url: bytes} for the targets that answered with the metric (concurrently, bounded)."""

    async def one(url: str) -> tuple[str, float | None]:
        try:
            timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_S)
            async with session.get(f"{url}/metrics", timeout=timeout, allow_redirects=False) as resp:
                if resp.status != 200:
                    return url, None
                return url, memory_used(await resp.text())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return url, None

    results = await asyncio.gather(*(one(u) for u in urls))
    return {url: value for url, value in results if value is not None}
