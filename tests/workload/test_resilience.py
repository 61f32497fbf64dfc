"""Failure behaviour with real server processes: GPU out-of-memory (split and retry), a poisonous
input among batch-mates, a full queue (429), and SIGTERM with requests queued.

The GPU itself cannot exist here, so its failures come from fake_models.faulty_gpu (the real model
wrapped by a fake device that runs out of memory above a batch size, or is slow)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from conftest import ServerProcess, free_port, metric_value, png, shape_images
from test_server import AUTH, post


@pytest.fixture(scope="module")
def faulty(module_tmp: Path) -> Iterator[ServerProcess]:
    """A fake GPU that runs out of memory above batch 2. Its batching comes from the runtime
    config file (as the operator's ConfigMap provides it), which overrides the env values."""
    runtime = module_tmp / "batching.json"
    runtime.write_text(json.dumps({"maxBatchSize": 8, "maxQueueDelayMs": 300}))
    s = ServerProcess(
        module_tmp,
        {
            "GENCLUSTER_MODEL_FACTORY": "fake_models:faulty_gpu",
            "FAKE_OOM_ABOVE_BATCH": "2",
            "FAKE_POISON_RED": "1",
            "GENCLUSTER_BATCH_MAX_SIZE": "3",
            "GENCLUSTER_BATCH_MAX_DELAY_MS": "1",
            "GENCLUSTER_RUNTIME_CONFIG": str(runtime),
        },
        name="faulty",
    ).start()
    try:
        yield s
    finally:
        s.stop()


async def test_runtime_config_file_sets_batching_at_start(faulty: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s, s.get(faulty.url + "/admin/batching", headers=AUTH) as r:
        assert await r.json() == {"maxBatchSize": 8, "maxQueueDelayMs": 300}
    assert metric_value(faulty.metrics_text(), "gencluster_batch_size") == 8
    # Warm-up at batch 8 ran out of memory on this fake GPU: counted, not fatal.
    assert metric_value(faulty.metrics_text(), "gencluster_oom_total") >= 1
    assert "warm-up: batch 8 does not fit" in faulty.log()


async def test_oom_batches_are_split_retried_and_counted(faulty: ServerProcess) -> None:
    before = faulty.metrics_text()
    images = shape_images(8, seed=2000)
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(post(faulty.url, im, params={"resolution": "16"}, session=s) for im in images)
        )
    assert [st for st, _, _ in res] == [200] * 8
    assert max(int(h["X-Batch-Size"]) for _, h, _ in res) <= 2
    after = faulty.metrics_text()
    ooms = metric_value(after, "gencluster_oom_total") - metric_value(before, "gencluster_oom_total")
    assert ooms >= 3  # 8 -> 4 + 4 -> 2 + 2 + 2 + 2: at least the 8 and both 4s failed
    report = faulty.get_json("/api/gpu/optimization-report")
    assert any(e["reason"].startswith("oom at batch size") for e in report["cleanup_events"])
    assert report["oom_events_last_10m"] >= 3
    assert any(r["id"] == "reduce-batch-after-oom" for r in report["recommendations"])


async def test_a_poisonous_input_fails_alone(faulty: ServerProcess) -> None:
    red = np.zeros((64, 64, 3), np.uint8)
    red[..., 0] = 255
    images = [*shape_images(2, seed=2100), png(red)]
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(post(faulty.url, im, params={"resolution": "16"}, session=s) for im in images)
        )
    assert [st for st, _, _ in res] == [200, 200, 422]
    assert b"poisoned input" in res[2][2]


@pytest.fixture(scope="module")
def slow(module_tmp: Path) -> Iterator[ServerProcess]:
    """A slow device (0.25 s per forward), batch size 1, room for 3 queued requests."""
    s = ServerProcess(
        module_tmp,
        {
            "GENCLUSTER_MODEL_FACTORY": "fake_models:faulty_gpu",
            "FAKE_FORWARD_SLEEP_S": "0.25",
            "GENCLUSTER_BATCH_MAX_SIZE": "1",
            "GENCLUSTER_BATCH_MAX_DELAY_MS": "0",
            "GENCLUSTER_QUEUE_MAX": "3",
            "GENCLUSTER_SHUTDOWN_GRACE_SECONDS": "20",
            "GENCLUSTER_L1_CACHE_BYTES": "0",
            "GENCLUSTER_ADMIN_TOKEN": "",
        },
        name="slow",
    ).start()
    try:
        yield s
    finally:
        s.stop()


async def test_admin_api_is_disabled_without_a_token(slow: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s, s.get(slow.url + "/admin/batching", headers=AUTH) as r:
        assert r.status == 403 and "disabled" in (await r.json())["error"]


async def test_full_queue_answers_429_with_retry_after(slow: ServerProcess) -> None:
    images = shape_images(9, seed=2200)
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(post(slow.url, im, params={"resolution": "16"}, session=s) for im in images)
        )
    codes = [st for st, _, _ in res]
    # The queue holds 3 (plus the one on the device): at least 3 are served, the burst's
    # overflow is refused at once rather than queued.
    assert codes.count(200) >= 3 and codes.count(429) >= 2, codes
    assert codes.count(200) + codes.count(429) == len(codes), codes
    for st, h, body in res:
        if st == 429:
            assert int(h["Retry-After"]) >= 1 and b"queue full" in body
    st, _, _ = await post(slow.url, images[0], params={"resolution": "16"})
    assert st == 200  # still serving


async def test_sigterm_answers_every_queued_request_then_exits(slow: ServerProcess) -> None:
    images = shape_images(3, seed=2300)  # within the queue's capacity (3) in any arrival order
    async with aiohttp.ClientSession() as s:
        tasks = [
            asyncio.create_task(post(slow.url, im, params={"resolution": "16"}, session=s)) for im in images
        ]
        deadline = time.monotonic() + 10
        while metric_value(slow.metrics_text(), "gencluster_queue_depth") < 2:
            assert time.monotonic() < deadline, "requests never queued"
            await asyncio.sleep(0.02)
        t0 = time.monotonic()
        assert slow.proc is not None
        slow.proc.send_signal(15)
        await asyncio.sleep(0.1)
        async with s.get(slow.url + "/readyz") as r:
            assert r.status == 503 and (await r.json())["reason"] == "shutting down"
        st, _, body = await post(slow.url, shape_images(1, seed=2400)[0], session=s)
        assert st == 503 and b"shutting down" in body
        res = await asyncio.gather(*tasks)
    assert [st for st, _, _ in res] == [200] * 3
    code = await asyncio.to_thread(slow.proc.wait, 20)
    assert code == 0 and time.monotonic() - t0 < 20
    assert "drained in" in slow.log()


def test_a_broken_model_factory_fails_the_start(module_tmp: Path) -> None:
    server = ServerProcess(module_tmp, {"GENCLUSTER_MODEL_FACTORY": "fake_models:not_a_model"}, name="broken")
    proc = subprocess.run(
        [sys.executable, "-m", "gencluster_workload", "--port", str(free_port())],
        env=server.environ(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "model failed to start" in proc.stderr and "lacks name, version" in proc.stderr
