"""The Prometheus-server source against a real Prometheus (the binary built from its Go module),
scraping real HTTP endpoints on loopback through file_sd targets labelled as kubernetes_sd
relabelling labels pods (namespace, pod).

What a stand-in server cannot show and these do: samples carry Prometheus' scrape time, so a
value read twice between two scrapes is not a second scrape, rates span the real scrape interval,
the source learns the scrape interval, and a pod Prometheus stopped scraping goes stale by the
time of its last scrape.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from fixtures.prometheus import PrometheusServer

from gencluster.control.samples import PodRef
from gencluster.control.window import Window, WindowConfig
from gencluster.metrics_source.prometheus import (
    PrometheusError,
    PrometheusSource,
    promql,
    samples_from_result,
    scrape_interval,
)
from gencluster.metrics_source.scrape import new_session

from .loopback import serve

RATE = 20.0  # requests per second each clock pod reports


class ClockPod:
    """An exposition whose counters are a function of the time it is scraped: served = RATE x t,
    so any rate computed between two scrapes, over their real timestamps, is RATE."""

    def __init__(self, queue: int) -> None:
        self.t0 = time.time()
        self.queue = queue
        self.scrapes = 0

    def text(self) -> str:
        self.scrapes += 1
        served = RATE * (time.time() - self.t0)
        return "\n".join([
            f'gencluster_requests_total{{code="200"}} {served}',
            f"gencluster_queue_depth {self.queue}",
            "gencluster_inflight_requests 1",
            'gencluster_gpu_memory_used_bytes{device="cuda:0"} 6e9',
            'gencluster_gpu_memory_total_bytes{device="cuda:0"} 8e9',
            f'gencluster_request_duration_seconds_bucket{{outcome="ok",le="0.5"}} {served}',
            f'gencluster_request_duration_seconds_bucket{{outcome="ok",le="+Inf"}} {served}',
            f'gencluster_request_duration_seconds_count{{outcome="ok"}} {served}',
            f'gencluster_request_duration_seconds_sum{{outcome="ok"}} {served * 0.2}',
        ]) + "\n"

    def routes(self) -> list[tuple[str, str, object]]:
        async def metrics(_: web.Request) -> web.Response:
            return web.Response(body=self.text().encode(), headers={
                "Content-Type": "text/plain; version=0.0.4; charset=utf-8"})
        return [("GET", "/metrics", metrics)]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    server = PrometheusServer(tmp_path, {
        "global": {"scrape_interval": "1s", "scrape_timeout": "900ms"},
        "scrape_configs": [{"job_name": "pods", "file_sd_configs": [
            {"files": [str(tmp_path / "targets.json")], "refresh_interval": "1s"}]}],
    })
    server.write_targets([])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def targets(port: int, pods: dict[str, str]) -> list[dict[str, object]]:
    """file_sd groups: one target per pod IP, labelled like kubernetes_sd relabelling does."""
    return [{"targets": [f"{ip}:{port}"], "labels": {"namespace": "ns", "pod": name}}
            for name, ip in pods.items()]


@pytest.fixture
async def pods() -> AsyncIterator[tuple[int, dict[str, ClockPod]]]:
    fleet = {"127.0.4.1": ClockPod(queue=3), "127.0.4.2": ClockPod(queue=5)}
    async with serve({ip: p.routes() for ip, p in fleet.items()}) as port:  # type: ignore[dict-item]
        yield port, fleet


async def until(what: str, fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


async def test_real_prometheus_gives_scrape_times_rates_and_staleness(
        prometheus: PrometheusServer, pods: tuple[int, dict[str, ClockPod]]) -> None:
    port, fleet = pods
    refs = [PodRef("w-1", "uid-1", "127.0.4.1"), PodRef("w-2", "uid-2", "127.0.4.2")]
    prometheus.write_targets(targets(port, {"w-1": "127.0.4.1", "w-2": "127.0.4.2"}))
    async with new_session() as session:
        src = PrometheusSource(session, prometheus.url, lookback_s=30)

        async def both() -> list:  # type: ignore[type-arg]
            out = await src.fetch("ns", refs, 2.0)
            return out if len(out) == 2 else []

        await until("both pods in Prometheus", both)
        # Each sample is stamped with its scrape time: two reads within one scrape interval give
        # the same stamp, a later read a newer one, and never the query's own evaluation time.
        first = {s.pod: s.timestamp for s in await src.fetch("ns", refs, 2.0)}
        again = {s.pod: s.timestamp for s in await src.fetch("ns", refs, 2.0)}
        asked = time.time()
        assert all(again[p] >= first[p] for p in first)
        assert all(t <= asked and asked - t < 5.0 for t in again.values())
        stamps: list[float] = []
        window = Window(WindowConfig(latency_window_s=30.0, stale_after_s=4.0))
        view = None
        for _ in range(12):  # the loop ticks faster (0.4 s) than Prometheus scrapes (1 s)
            samples = await src.fetch("ns", refs, 2.0)
            stamps += [s.timestamp for s in samples if s.pod == "w-1"]
            view = window.update(time.time(), samples, refs)
            await asyncio.sleep(0.4)
        assert view is not None
        assert len(set(stamps)) < len(stamps), "some ticks re-read the same scrape"
        distinct = sorted(set(stamps))
        gaps = [b - a for a, b in itertools.pairwise(distinct)]
        assert gaps and min(gaps) >= 0.8, f"stamps are scrape times, 1 s apart: {gaps}"
        assert src.scrape_interval_s == pytest.approx(1.0, abs=0.2)
        assert view.pods_reporting == 2 and view.queue_depth == 8.0
        # Deltas over real scrape intervals: each pod's rate is RATE, whatever the tick timing.
        for name in ("w-1", "w-2"):
            assert view.pods[name].rps == pytest.approx(RATE, rel=0.1), view.pods[name]
        assert view.rps == pytest.approx(2 * RATE, rel=0.1)
        assert view.gpu_memory_percent == pytest.approx(75.0)
        assert view.p95_ms is not None and view.p95_ms <= 500.0

        # Prometheus stops seeing w-2 (its target is gone); the pod itself still exists.
        prometheus.write_targets(targets(port, {"w-1": "127.0.4.1"}))
        await until("w-2 dropped from Prometheus' targets", lambda: asyncio.to_thread(
            lambda: all(t["labels"].get("pod") != "w-2" for t in prometheus.active_targets())))
        scrapes = fleet["127.0.4.2"].scrapes
        gone_at = time.time()
        for _ in range(15):
            samples = await src.fetch("ns", refs, 2.0)
            view = window.update(time.time(), samples, refs)
            if not view.pods["w-2"].fresh:
                break
            await asyncio.sleep(0.5)
        assert fleet["127.0.4.2"].scrapes <= scrapes + 1
        w2 = [s for s in await src.fetch("ns", refs, 2.0) if s.pod == "w-2"]
        assert all(s.timestamp <= gone_at for s in w2), "no scrape of w-2 after its target went"
        assert not view.pods["w-2"].fresh and view.pods["w-2"].queue_depth is None
        assert view.pods_reporting == 1 and view.queue_depth == 3.0
        assert view.pods["w-1"].fresh and view.pods["w-1"].rps == pytest.approx(RATE, rel=0.1)


async def test_a_query_prometheus_refuses_is_an_error(prometheus: PrometheusServer) -> None:
    async with new_session() as session:
        with pytest.raises(PrometheusError, match=r"parse error|unexpected|invalid"):
            await PrometheusSource(session, prometheus.url, pod_label="not a label").fetch(
                "ns", [PodRef("w-1", "u", "x")], 2.0)


def test_matrix_keeps_each_series_newest_sample_and_drops_vanished_series():
    def series(name: str, points: list[tuple[float, float]], job: str = "pods", **labels: str):
        return {"metric": {"__name__": name, "namespace": "ns", "pod": "w-1", "job": job,
                           "instance": f"{job}:1", **labels},
                "values": [[t, str(v)] for t, v in points]}

    result = [
        series("gencluster_queue_depth", [(10.0, 1), (12.0, 4)]),
        series("gencluster_inflight_requests", [(10.0, 2)]),  # vanished after the 10 s scrape
        series("DCGM_FI_DEV_FB_USED", [(11.5, 6000)], job="dcgm", gpu="0"),  # its own target
        series("DCGM_FI_DEV_FB_FREE", [(11.5, 2000)], job="dcgm", gpu="0"),
        {"metric": {"__name__": "gencluster_queue_depth", "pod": "someone-else"},
         "values": [[12.0, "99"]]},
    ]
    (s,) = samples_from_result(result, [PodRef("w-1", "uid-1", "10.0.0.1")])
    assert s.timestamp == 12.0 and s.uid == "uid-1"
    gauges = {name: v for (name, _), v in s.gauges.items()}
    assert gauges == {"gencluster_queue_depth": 4.0, "DCGM_FI_DEV_FB_USED": 6000.0,
                      "DCGM_FI_DEV_FB_FREE": 2000.0}
    assert scrape_interval(result) == 2.0


def test_promql_names_every_contract_series():
    q = promql("ns", ["a", "b"])
    assert "gencluster_request_duration_seconds_bucket" in q and "DCGM_FI_DEV_FB_USED" in q
    assert q.endswith('pod=~"a|b"}[60s]')
