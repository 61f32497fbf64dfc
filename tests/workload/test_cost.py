"""Cost accounting of a real server process: what each request was charged, in its counters.

Invariants checked (docs/workload.md, "Cost accounting"):
- a computed request is charged its share of the forward pass: the sum over responses of
  X-Forward-Ms / X-Batch-Size equals the growth of gencluster_gpu_seconds_total{outcome="ok"}
  (the headers are rounded to 0.01 ms, hence the tolerance);
- the charges of one batch sum to its forward time, so concurrent requests in one batch cost less
  each than the batch;
- cache hits and coalesced followers are charged nothing, and are counted by source;
- bytes are counted per source and equal the bodies sent;
- a request that fails (a corrupt image) is charged its CPU time under outcome="error".
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import ServerProcess, metric_value, shape_images
from test_server import post, set_batching


@pytest.fixture(scope="module")
def server(module_tmp: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(module_tmp, {"GENCLUSTER_BATCH_MAX_SIZE": "8",
                                   "GENCLUSTER_BATCH_MAX_DELAY_MS": "200"}, name="cost")
    s.start()
    try:
        yield s
    finally:
        s.stop()


def snapshot(server: ServerProcess) -> dict[str, float]:
    text = server.metrics_text()
    out = {}
    for outcome in ("ok", "error"):
        out[f"gpu_{outcome}"] = metric_value(text, "gencluster_gpu_seconds_total", {"outcome": outcome})
        out[f"cpu_{outcome}"] = metric_value(text, "gencluster_cpu_seconds_total", {"outcome": outcome})
    for source in ("computed", "coalesced", "l1", "redis"):
        out[f"assets_{source}"] = metric_value(text, "gencluster_assets_total", {"source": source})
        out[f"bytes_{source}"] = metric_value(text, "gencluster_asset_bytes_total", {"source": source})
    out["passes"] = metric_value(text, "gencluster_batch_size_observed_count")
    out["forward_sum"] = metric_value(text, "gencluster_batch_size_observed_sum")
    return out


def delta(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: b[k] - a[k] for k in a}


async def test_computed_requests_are_charged_their_share_of_the_forward_pass(
    server: ServerProcess,
) -> None:
    images = shape_images(6, seed=777)
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 300})
    before = snapshot(server)
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(post(server.url, img, params={"resolution": "20"}, session=s) for img in images)
        )
    d = delta(before, snapshot(server))
    assert all(code == 200 for code, _, _ in res)
    assert all(h["X-Cache"] == "miss" for _, h, _ in res)
    expected = sum(float(h["X-Forward-Ms"]) / int(h["X-Batch-Size"]) for _, h, _ in res) / 1000
    assert d["gpu_ok"] == pytest.approx(expected, rel=0.02, abs=6 * 0.01e-3)
    assert d["gpu_error"] == 0
    # Six requests in fewer passes than six: each was charged less than its pass took.
    assert d["passes"] < 6
    per_request = [float(h["X-Forward-Ms"]) / int(h["X-Batch-Size"]) for _, h, _ in res]
    assert any(int(h["X-Batch-Size"]) > 1 for _, h, _ in res)
    assert max(per_request) < max(float(h["X-Forward-Ms"]) for _, h, _ in res)
    assert d["cpu_ok"] > 0  # decoding, meshing and export
    assert d["assets_computed"] == 6
    assert d["bytes_computed"] == sum(len(b) for _, _, b in res)
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 200})


async def test_cache_hits_and_coalesced_requests_cost_nothing(server: ServerProcess) -> None:
    image = shape_images(1, seed=9090)[0]
    code, _, body = await post(server.url, image, params={"resolution": "18"})
    assert code == 200
    before = snapshot(server)
    for _ in range(3):
        code, headers, again = await post(server.url, image, params={"resolution": "18"})
        assert code == 200 and headers["X-Cache"] == "hit-l1" and again == body
    d = delta(before, snapshot(server))
    assert d["gpu_ok"] == 0 and d["cpu_ok"] == 0 and d["passes"] == 0
    assert d["assets_l1"] == 3 and d["bytes_l1"] == 3 * len(body)
    assert d["assets_computed"] == 0

    other = shape_images(1, seed=9191)[0]
    before = snapshot(server)
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(post(server.url, other, params={"resolution": "18"}, session=s) for _ in range(4))
        )
    d = delta(before, snapshot(server))
    assert [c for c, _, _ in res] == [200] * 4
    assert d["passes"] == 1 and d["assets_computed"] == 1 and d["assets_coalesced"] == 3
    leader = [h for _, h, _ in res if h.get("X-Coalesced") != "true"]
    assert len(leader) == 1
    # Only the leader paid: the whole pass (a batch of one).
    assert d["gpu_ok"] == pytest.approx(float(leader[0]["X-Forward-Ms"]) / 1000, rel=0.02, abs=1e-5)


async def test_a_failed_request_is_charged_under_error(server: ServerProcess) -> None:
    before = snapshot(server)
    code, _, _ = await post(server.url, b"\x89PNG\r\n\x1a\n" + b"\x00" * 4000)
    assert code == 400
    d = delta(before, snapshot(server))
    assert d["cpu_error"] > 0  # it was decoded (and refused) on a cpu thread
    assert d["gpu_error"] == 0 and d["gpu_ok"] == 0  # it never reached the device
    assert sum(d[k] for k in d if k.startswith("assets_")) == 0
