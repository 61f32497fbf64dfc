"""Scrape ready pods' /metrics concurrently: bounded concurrency, a timeout per pod.

A slow or dead pod costs at most its timeout and one concurrency slot; the others are parsed as
they arrive. One Scraper (and its semaphore) per GenerationCluster, one HTTP session for the
process: a cluster full of dead pods cannot take another cluster's slots.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aiohttp

from ..control.samples import PodRef, PodSample
from .parse import parse_fast

MAX_BODY = 4 * 1024 * 1024
DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    pod: str
    sample: PodSample | None
    error: str | None
    seconds: float


def new_session(limit: int = 0) -> aiohttp.ClientSession:
    """One session per process; keep-alive connections to each pod survive between intervals."""
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=4, keepalive_timeout=60,
                                     ttl_dns_cache=None, use_dns_cache=False)
    return aiohttp.ClientSession(connector=connector, auto_decompress=True,
                                 headers={"Accept": "text/plain;version=0.0.4"})


class Scraper:
    """Scrapes a set of pods; `clock` stamps samples (seconds; time.time by default)."""

    def __init__(self, session: aiohttp.ClientSession, concurrency: int = DEFAULT_CONCURRENCY,
                 clock: Callable[[], float] = time.time) -> None:
        self.session = session
        self.semaphore = asyncio.Semaphore(concurrency)
        self.clock = clock

    async def scrape_one(self, pod: PodRef, port: int, timeout_s: float,
                         path: str = "/metrics",
                         keep: frozenset[str] = frozenset()) -> ScrapeResult:
        started = time.monotonic()
        if not pod.ip:
            return ScrapeResult(pod.name, None, "no pod IP", 0.0)
        url = f"http://{pod.ip}:{port}{path}"
        try:
            async with self.semaphore:
                async with asyncio.timeout(timeout_s):
                    async with self.session.get(url) as resp:
                        if resp.status != 200:
                            return ScrapeResult(pod.name, None, f"HTTP {resp.status}",
                                                time.monotonic() - started)
                        body = await resp.content.read(MAX_BODY + 1)
                if len(body) > MAX_BODY:
                    return ScrapeResult(pod.name, None, "response too large",
                                        time.monotonic() - started)
                sample = parse_fast(body.decode("utf-8", "replace"), self.clock(), pod.name,
                                    pod.uid, keep)
        except TimeoutError:
            return ScrapeResult(pod.name, None, f"timeout after {timeout_s:.1f}s",
                                time.monotonic() - started)
        except (aiohttp.ClientError, OSError, ValueError) as err:
            return ScrapeResult(pod.name, None, f"{type(err).__name__}: {err}"[:200],
                                time.monotonic() - started)
        return ScrapeResult(pod.name, sample, None, time.monotonic() - started)

    async def scrape(self, pods: Sequence[PodRef], port: int, timeout_s: float,
                     keep: frozenset[str] = frozenset()) -> list[ScrapeResult]:
        """Scrape every ready pod; never raises; takes at most ceil(pods / concurrency) timeouts.
        `keep`: metric names kept beyond the contract (custom metrics)."""
        ready = [p for p in pods if p.ready]
        return list(await asyncio.gather(*(self.scrape_one(p, port, timeout_s, keep=keep)
                                           for p in ready)))
