"""Readiness the operator turns off before removing a pod (drop-free scale-down), against a real
server process: /readyz fails, requests still arriving are served and close their connection,
and the report counts the work left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import ServerProcess, metric_value, shape_images
from test_server import AUTH, post


@pytest.fixture(scope="module")
def slow(module_tmp: Path) -> Iterator[ServerProcess]:
    """A slow device (0.3 s per forward), batch size 1, the admin API on."""
    s = ServerProcess(
        module_tmp,
        {
            "GENCLUSTER_MODEL_FACTORY": "fake_models:faulty_gpu",
            "FAKE_FORWARD_SLEEP_S": "0.3",
            "GENCLUSTER_BATCH_MAX_SIZE": "1",
            "GENCLUSTER_BATCH_MAX_DELAY_MS": "0",
            "GENCLUSTER_L1_CACHE_BYTES": "0",
        },
        name="readiness",
    ).start()
    try:
        yield s
    finally:
        s.stop()


async def _readiness(s: aiohttp.ClientSession, url: str, ready: bool | None = None,
                     headers: dict[str, str] | None = None) -> tuple[int, dict]:
    h = AUTH if headers is None else headers
    if ready is None:
        async with s.get(url + "/admin/readiness", headers=h) as r:
            return r.status, await r.json()
    async with s.put(url + "/admin/readiness", json={"ready": ready}, headers=h) as r:
        return r.status, await r.json()


async def test_readiness_off_keeps_serving_with_connection_close_and_counts_work(
        slow: ServerProcess) -> None:
    images = shape_images(4, seed=3100)
    async with aiohttp.ClientSession() as s:
        assert (await _readiness(s, slow.url))[1] == {"ready": True, "queued": 0, "inflight": 0,
                                                     "offSeconds": 0.0}
        async with s.get(slow.url + "/readyz") as r:
            assert r.status == 200
        tasks = [asyncio.create_task(post(slow.url, im, params={"resolution": "16"}, session=s))
                 for im in images]
        deadline = time.monotonic() + 10
        while metric_value(slow.metrics_text(), "gencluster_queue_depth") < 2:
            assert time.monotonic() < deadline, "requests never queued"
            await asyncio.sleep(0.02)
        status, report = await _readiness(s, slow.url, ready=False)
        assert status == 200 and report["ready"] is False
        assert report["queued"] >= 1 and report["inflight"] >= 2  # queued ones are in flight too
        async with s.get(slow.url + "/readyz") as r:
            assert r.status == 503 and "readiness turned off" in (await r.json())["reason"]
        # A request that still arrives is served, and its connection is closed afterwards.
        async with s.post(slow.url + "/v1/generate", params={"resolution": "16"},
                          data=shape_images(1, seed=3200)[0],
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 200 and r.headers.get("Connection", "").lower() == "close"
        res = await asyncio.gather(*tasks)
        assert [st for st, _, _ in res] == [200] * len(images)
        status, report = await _readiness(s, slow.url)
        assert report["ready"] is False and report["queued"] == 0 and report["inflight"] == 0
        assert report["offSeconds"] > 0
        # Undo: ready again, keep-alive again.
        status, report = await _readiness(s, slow.url, ready=True)
        assert status == 200 and report["ready"] is True
        async with s.get(slow.url + "/readyz") as r:
            assert r.status == 200 and r.headers.get("Connection", "").lower() != "close"


async def test_readiness_endpoint_needs_the_token_and_a_valid_body(slow: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s:
        assert (await _readiness(s, slow.url, ready=False, headers={}))[0] == 401
        for body in ({"ready": "no"}, {"ready": False, "extra": 1}, [False], None,
                     {"ready": False, "leaseSeconds": 0}, {"ready": False, "leaseSeconds": 1.5}):
            async with s.put(slow.url + "/admin/readiness", json=body, headers=AUTH) as r:
                assert r.status == 400, body
        async with s.get(slow.url + "/readyz") as r:
            assert r.status == 200  # nothing was changed by the refused calls


async def test_readiness_comes_back_when_its_lease_runs_out(slow: ServerProcess) -> None:
    """An operator that stopped mid-drain cannot leave the pod unready for good."""
    async with aiohttp.ClientSession() as s:
        async with s.put(slow.url + "/admin/readiness", json={"ready": False, "leaseSeconds": 1},
                         headers=AUTH) as r:
            assert r.status == 200 and (await r.json())["ready"] is False
        async with s.get(slow.url + "/readyz") as r:
            assert r.status == 503
        deadline = time.monotonic() + 10
        while True:  # renewed by nobody: back after about a second
            async with s.get(slow.url + "/readyz") as r:
                if r.status == 200:
                    break
            assert time.monotonic() < deadline, "readiness never came back"
            await asyncio.sleep(0.1)
        assert (await _readiness(s, slow.url))[1]["ready"] is True
