"""Tracing against a real backend: the workload as a real process on 127.0.0.1 exporting OTLP
to Jaeger all-in-one (a host process), a real redis-server behind it, traces read back by id
through Jaeger's HTTP API. The same spans are asserted on the local cluster by
tests/edge/test_tracing_live.py."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import RedisProcess, ServerProcess, shape_images
from fixtures.jaeger import JaegerProcess, Span, get_trace, wait_trace
from test_server import post, set_batching

from gencluster.loadtest import LoadConfig, url_target
from gencluster.loadtest.profiles import run_profile

REQUEST_SPANS = ("POST /v1/generate", "cache.l1", "cache.redis", "preprocess", "queue.wait",
                 "batch", "forward", "meshing", "export")


@pytest.fixture(scope="module")
def jaeger(module_tmp: Path) -> Iterator[JaegerProcess]:
    j = JaegerProcess(module_tmp).start()
    try:
        yield j
    finally:
        j.stop()


def traced_env(jaeger: JaegerProcess, ratio: str = "1") -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_url,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": ratio,
            "OTEL_BSP_SCHEDULE_DELAY": "200", "GENCLUSTER_POD_NAME": "tracing-pod-0"}


@pytest.fixture(scope="module")
def server(module_tmp: Path, redis_standalone: RedisProcess,
           jaeger: JaegerProcess) -> Iterator[ServerProcess]:
    s = ServerProcess(module_tmp, {**redis_standalone.env(), **traced_env(jaeger),
                                   "GENCLUSTER_BATCH_MAX_SIZE": "8",
                                   "GENCLUSTER_BATCH_MAX_DELAY_MS": "20"}, name="traced")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def caller() -> tuple[str, str, str]:
    """(trace id, parent span id, traceparent) of a sampled caller."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-01"


def by_name(spans: list[Span]) -> dict[str, list[Span]]:
    out: dict[str, list[Span]] = {}
    for s in spans:
        out.setdefault(s.name, []).append(s)
    return out


async def test_one_request_is_one_trace_with_every_stage(server: ServerProcess,
                                                         jaeger: JaegerProcess) -> None:
    trace_id, parent_id, header = caller()
    code, headers, _ = await post(server.url, shape_images(1, seed=31)[0],
                                  params={"resolution": "24"}, headers={"traceparent": header})
    assert code == 200 and headers["X-Cache"] == "miss"
    spans = wait_trace(jaeger.api_url, trace_id, REQUEST_SPANS)
    assert {s.trace_id for s in spans} == {trace_id}  # one trace, the caller's
    named = by_name(spans)
    assert all(len(named[n]) == 1 for n in REQUEST_SPANS), sorted(named)
    root = named["POST /v1/generate"][0]
    assert root.parent == parent_id  # W3C trace context from the caller
    assert root.service == "gencluster-workload"
    assert root.tags["http.response.status_code"] == 200
    assert root.tags["gencluster.pod"] == "tracing-pod-0"
    assert root.tags["gencluster.model.version"] == headers["X-Model-Version"]
    assert root.tags["gencluster.cache.result"] == "miss"
    assert float(root.tags["gencluster.gpu_seconds"]) > 0
    for child in ("cache.l1", "cache.redis", "preprocess", "queue.wait", "meshing", "export"):
        assert named[child][0].parent == root.span_id, child
    assert named["cache.l1"][0].tags["gencluster.cache.tier"] == "l1"
    assert named["cache.redis"][0].tags["gencluster.cache.hit"] is False
    batch, forward = named["batch"][0], named["forward"][0]
    # its parent is the request (Jaeger's first reference; FOLLOWS_FROM, since it is a link too)
    assert batch.follows[0] == (trace_id, root.span_id) and forward.parent == batch.span_id
    assert batch.tags["gencluster.batch.size"] == 1
    assert (trace_id, root.span_id) in batch.follows  # linked to the request it served
    assert named["export"][0].tags["gencluster.mesh.format"] == "glb"
    # the stages are in order in time
    start = {n: named[n][0].start_us for n in REQUEST_SPANS}
    assert start["cache.l1"] <= start["preprocess"] <= start["queue.wait"] <= start["batch"]
    assert start["batch"] <= start["forward"] and start["forward"] <= start["meshing"] <= start["export"]

    # the same image again: an L1 hit, whose trace has no device work at all
    hit_id, _, header = caller()
    code, headers, _ = await post(server.url, shape_images(1, seed=31)[0],
                                  params={"resolution": "24"}, headers={"traceparent": header})
    assert code == 200 and headers["X-Cache"] == "hit-l1"
    spans = wait_trace(jaeger.api_url, hit_id, ("POST /v1/generate", "cache.l1"))
    names = {s.name for s in spans}
    assert "batch" not in names and "forward" not in names and "cache.redis" not in names
    assert by_name(spans)["cache.l1"][0].tags["gencluster.cache.hit"] is True


async def test_the_batch_span_links_every_request_in_it(server: ServerProcess,
                                                        jaeger: JaegerProcess) -> None:
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 400})
    callers = [caller() for _ in range(4)]
    images = shape_images(4, seed=4040)
    async with aiohttp.ClientSession() as session:
        res = await asyncio.gather(*(
            post(server.url, img, params={"resolution": "20"}, session=session,
                 headers={"traceparent": c[2]}) for img, c in zip(images, callers, strict=True)))
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 20})
    assert [r[0] for r in res] == [200] * 4 and {r[1]["X-Batch-Size"] for r in res} == {"4"}
    roots = {}
    batches = []
    for trace_id, _, _ in callers:
        spans = wait_trace(jaeger.api_url, trace_id, ("POST /v1/generate", "queue.wait"))
        named = by_name(spans)
        roots[trace_id] = named["POST /v1/generate"][0].span_id
        batches += named.get("batch", [])
    assert len(batches) == 1  # one batch, in the trace of one of its requests
    assert set(batches[0].follows) >= {(t, s) for t, s in roots.items()}
    assert batches[0].tags["gencluster.batch.size"] == 4


async def test_the_slowest_requests_of_a_load_test_are_in_the_backend(
        server: ServerProcess, jaeger: JaegerProcess) -> None:
    config = LoadConfig(target=url_target([server.url]), rate=15, duration_s=2.0, pool=12,
                        resolution=20, window_s=0.5, trace_ratio=1.0)
    report = await run_profile(config)
    assert report.slowest and all(s["sampled"] for s in report.slowest)
    slowest = report.slowest[0]
    spans = wait_trace(jaeger.api_url, slowest["trace_id"], ("POST /v1/generate",))
    root = by_name(spans)["POST /v1/generate"][0]
    # the server's span of the slowest request: as long as the client saw, at most
    assert root.duration_us / 1000 <= slowest["latency_ms"] + 1.0


async def test_unsampled_callers_and_untraced_servers_send_nothing(
        server: ServerProcess, jaeger: JaegerProcess, module_tmp: Path) -> None:
    trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
    code, _, _ = await post(server.url, shape_images(1, seed=55)[0], params={"resolution": "16"},
                            headers={"traceparent": f"00-{trace_id}-{parent_id}-00"})
    assert code == 200
    plain = ServerProcess(module_tmp, {"OTEL_EXPORTER_OTLP_ENDPOINT": "",
                                       "OTEL_TRACES_EXPORTER": ""}, name="untraced").start()
    try:
        other, _, header = caller()
        code, _, _ = await post(plain.url, shape_images(1, seed=56)[0],
                                params={"resolution": "16"}, headers={"traceparent": header})
        assert code == 200
        assert "tracing off" in plain.log()
    finally:
        plain.stop()
    # a sampled request sent afterwards arrives: the batches above had time to be exported too
    marker, _, header = caller()
    await post(server.url, shape_images(1, seed=57)[0], params={"resolution": "16"},
               headers={"traceparent": header})
    wait_trace(jaeger.api_url, marker, ("POST /v1/generate",))
    assert get_trace(jaeger.api_url, trace_id) is None  # the caller said "not sampled"
    assert get_trace(jaeger.api_url, other) is None  # tracing off: nothing exported
