"""The Prometheus-server source, against a stand-in server on loopback speaking /api/v1/query."""

from __future__ import annotations

import pytest
from aiohttp import web

from gencluster.control.samples import PodRef
from gencluster.control.window import Window
from gencluster.metrics_source.prometheus import PrometheusError, PrometheusSource, promql
from gencluster.metrics_source.scrape import new_session

from .loopback import serve


def vector(t: float, served: float) -> dict:
    def item(name: str, value: float, **labels: str) -> dict:
        return {"metric": {"__name__": name, "namespace": "ns", "pod": "w-1", "job": "x",
                           "instance": "10.0.0.1:8080", **labels}, "value": [t, str(value)]}
    return {"status": "success", "data": {"resultType": "vector", "result": [
        item("gencluster_requests_total", served, code="200"),
        item("gencluster_queue_depth", 3),
        item("gencluster_request_duration_seconds_bucket", served, outcome="ok", le="0.5"),
        item("gencluster_request_duration_seconds_bucket", served, outcome="ok", le="+Inf"),
        item("gencluster_request_duration_seconds_count", served, outcome="ok"),
        item("gencluster_request_duration_seconds_sum", served * 0.2, outcome="ok"),
        item("DCGM_FI_DEV_FB_USED", 12000, gpu="0"),
        item("DCGM_FI_DEV_FB_FREE", 4000, gpu="0"),
        {"metric": {"__name__": "gencluster_queue_depth", "pod": "someone-else"},
         "value": [t, "99"]},
    ]}}


async def test_prometheus_stand_in_feeds_the_same_window():
    """A loopback stand-in for a Prometheus server (not Prometheus itself)."""
    queries: list[str] = []
    answers = [vector(100.0, 1000), vector(110.0, 1100)]

    async def query(request: web.Request) -> web.Response:
        queries.append((await request.post())["query"])
        return web.json_response(answers[len(queries) - 1])

    pods = [PodRef("w-1", "uid-1", "10.0.0.1")]
    async with serve({"127.0.0.1": [("POST", "/api/v1/query", query)]}) as port, \
            new_session() as session:
        src = PrometheusSource(session, f"http://127.0.0.1:{port}")
        window = Window()
        window.update(100.0, await src.fetch("ns", pods, 1.0), pods)
        v = window.update(110.0, await src.fetch("ns", pods, 1.0), pods)
    assert 'pod=~"w\\\\-1"' in queries[0] and 'namespace="ns"' in queries[0]
    assert v.rps == pytest.approx(10.0) and v.queue_depth == 3.0
    assert v.gpu_memory_percent == pytest.approx(75.0)
    assert v.p95_ms is not None and v.p95_ms <= 500.0


async def test_prometheus_error_is_raised():
    async def query(_: web.Request) -> web.Response:
        return web.json_response({"status": "error", "error": "bad query"}, status=400)

    async with serve({"127.0.0.1": [("POST", "/api/v1/query", query)]}) as port, \
            new_session() as session:
        with pytest.raises(PrometheusError):
            await PrometheusSource(session, f"http://127.0.0.1:{port}").fetch(
                "ns", [PodRef("w-1", "u", "x")], 1.0)


def test_promql_names_every_contract_series():
    q = promql("ns", ["a", "b"])
    assert "gencluster_request_duration_seconds_bucket" in q and "DCGM_FI_DEV_FB_USED" in q
    assert q.endswith('pod=~"a|b"}')
