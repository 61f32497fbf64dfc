"""The scraper against real loopback HTTP servers: slow and dead pods cost only their timeout."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from gencluster.control.samples import PodRef
from gencluster.metrics_source.scrape import Scraper, new_session

from .loopback import serve

METRICS = ("# TYPE gencluster_queue_depth gauge\ngencluster_queue_depth 7\n"
           'gencluster_requests_total{code="200"} 42\n')


async def ok(_: web.Request) -> web.Response:
    return web.Response(text=METRICS)


async def slow(_: web.Request) -> web.Response:
    await asyncio.sleep(10)
    return web.Response(text=METRICS)


async def broken(_: web.Request) -> web.Response:
    return web.Response(status=500, text="boom")


async def test_slow_and_dead_pods_do_not_delay_the_result():
    routes = {"127.0.0.2": [("GET", "/metrics", ok)], "127.0.0.3": [("GET", "/metrics", slow)],
              "127.0.0.4": [("GET", "/metrics", broken)]}
    async with serve(routes) as port, new_session() as session:
        pods = [PodRef("good", "u1", "127.0.0.2"), PodRef("slow", "u2", "127.0.0.3"),
                PodRef("err", "u3", "127.0.0.4"), PodRef("dead", "u4", "127.0.0.5"),
                PodRef("starting", "u5", "127.0.0.2", ready=False),
                PodRef("no-ip", "u6", None)]
        started = time.monotonic()
        results = await Scraper(session).scrape(pods, port, timeout_s=0.5)
        elapsed = time.monotonic() - started
    by = {r.pod: r for r in results}
    assert elapsed < 4.0  # the slow pod alone would take 10 s: the timeout, not the pod, decides
    assert set(by) == {"good", "slow", "err", "dead", "no-ip"}  # unready pods are not scraped
    assert by["good"].sample is not None and by["good"].error is None
    assert by["good"].sample.gauges[("gencluster_queue_depth", ())] == 7.0
    assert by["good"].sample.uid == "u1"
    assert "timeout" in (by["slow"].error or "")
    assert by["err"].error == "HTTP 500"
    assert by["dead"].sample is None and by["dead"].error
    assert by["no-ip"].error == "no pod IP"


async def test_concurrency_is_bounded():
    active = peak = 0

    async def counted(_: web.Request) -> web.Response:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return web.Response(text=METRICS)

    ips = [f"127.0.1.{i}" for i in range(1, 21)]
    async with serve({ip: [("GET", "/metrics", counted)] for ip in ips}) as port, \
            new_session() as session:
        pods = [PodRef(f"p{i}", f"u{i}", ip) for i, ip in enumerate(ips)]
        results = await Scraper(session, concurrency=4).scrape(pods, port, timeout_s=2.0)
    assert all(r.sample is not None for r in results) and len(results) == 20
    assert peak <= 4


async def test_one_clusters_dead_pods_do_not_slow_another_cluster():
    routes = {"127.0.2.1": [("GET", "/metrics", ok)]}
    routes |= {f"127.0.2.{i}": [("GET", "/metrics", slow)] for i in range(2, 8)}
    async with serve(routes) as port, new_session() as session:
        bad = [PodRef(f"b{i}", f"u{i}", f"127.0.2.{i}") for i in range(2, 8)]
        good = [PodRef("g", "ug", "127.0.2.1")]
        a, b = Scraper(session, concurrency=2), Scraper(session, concurrency=2)
        started = time.monotonic()
        slow_task = asyncio.create_task(a.scrape(bad, port, timeout_s=0.5))
        fast = await b.scrape(good, port, timeout_s=0.5)
        fast_elapsed = time.monotonic() - started
        await slow_task
    # Queued behind the other cluster's six dead pods (2 at a time, 0.5 s each) it would take ≥ 1.5 s.
    assert fast[0].sample is not None and fast_elapsed < 1.0
