"""The admin fault switch on a real server process: off by default, token-guarded, and each fault
(5xx share, slowdown, a stuck device) visible in the metrics the operator's detectors read."""

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
def faulty_on(module_tmp: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(module_tmp, {"GENCLUSTER_FAULT_INJECTION": "on",
                                   "GENCLUSTER_BATCH_MAX_SIZE": "4",
                                   "GENCLUSTER_BATCH_MAX_DELAY_MS": "5"}, name="faults-on").start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def faults_off(module_tmp: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(module_tmp, {}, name="faults-off").start()
    try:
        yield s
    finally:
        s.stop()


async def put(url: str, body: object, headers: dict[str, str] | None = None) -> tuple[int, object]:
    async with aiohttp.ClientSession() as s, s.put(url + "/admin/faults", json=body,
                                                   headers=headers or {}) as r:
        return r.status, await r.json()


async def test_fault_switch_is_off_by_default(faults_off: ServerProcess) -> None:
    status, body = await put(faults_off.url, {"errorPercent": 100}, AUTH)
    assert status == 404 and "GENCLUSTER_FAULT_INJECTION" in str(body)
    images = shape_images(2, seed=4100)
    for img in images:
        code, _, _ = await post(faults_off.url, img)
        assert code == 200


async def test_fault_switch_needs_the_admin_token(faulty_on: ServerProcess) -> None:
    assert (await put(faulty_on.url, {"errorPercent": 100}))[0] == 401
    assert (await put(faulty_on.url, {"errorPercent": 100},
                      {"Authorization": "Bearer wrong"}))[0] == 401
    status, body = await put(faulty_on.url, {"errorPercent": 101}, AUTH)
    assert status == 400 and "errorPercent" in str(body)
    status, body = await put(faulty_on.url, {"bogus": 1}, AUTH)
    assert status == 400 and "JSON object" in str(body)


async def test_injected_errors_are_counted_as_5xx(faulty_on: ServerProcess) -> None:
    before = metric_value(faulty_on.metrics_text(), "gencluster_requests_total", {"code": "500"})
    status, body = await put(faulty_on.url, {"errorPercent": 100}, AUTH)
    assert status == 200 and body["errorPercent"] == 100
    try:
        for img in shape_images(3, seed=4200):
            code, _, _ = await post(faulty_on.url, img)
            assert code == 500
    finally:
        await put(faulty_on.url, {"errorPercent": 0}, AUTH)
    after = metric_value(faulty_on.metrics_text(), "gencluster_requests_total", {"code": "500"})
    assert after - before == 3
    code, _, _ = await post(faulty_on.url, shape_images(1, seed=4201)[0])
    assert code == 200


def _duration(text: str) -> tuple[float, float]:
    return (metric_value(text, "gencluster_batch_duration_seconds_sum"),
            metric_value(text, "gencluster_batch_duration_seconds_count"))


async def test_slowdown_stretches_forward_passes(faulty_on: ServerProcess) -> None:
    images = shape_images(6, seed=4300)

    async def mean_pass(batch: list[bytes]) -> float:
        s0, n0 = _duration(faulty_on.metrics_text())
        for img in batch:
            code, _, _ = await post(faulty_on.url, img, headers={"Cache-Control": "no-cache"})
            assert code == 200
        s1, n1 = _duration(faulty_on.metrics_text())
        assert n1 > n0
        return (s1 - s0) / (n1 - n0)

    normal = await mean_pass(images[:3])
    await put(faulty_on.url, {"slowdown": 4}, AUTH)
    try:
        slow = await mean_pass(images[3:])
    finally:
        await put(faulty_on.url, {"slowdown": 1}, AUTH)
    assert slow > 2.0 * normal  # 4x, with room for a noisy CPU


async def test_stuck_device_queues_requests_while_staying_ready(faulty_on: ServerProcess) -> None:
    await put(faulty_on.url, {"stuck": True}, AUTH)
    images = shape_images(3, seed=4400)
    try:
        tasks = [asyncio.create_task(post(faulty_on.url, img)) for img in images]
        await asyncio.sleep(1.5)
        assert not any(t.done() for t in tasks)
        async with aiohttp.ClientSession() as s, s.get(faulty_on.url + "/readyz") as r:
            assert r.status == 200  # it still looks Ready
        text = faulty_on.metrics_text()
        assert metric_value(text, "gencluster_queue_depth") + metric_value(
            text, "gencluster_inflight_requests") >= 2
    finally:
        await put(faulty_on.url, {"stuck": False}, AUTH)
    t0 = time.monotonic()
    codes = [c for c, _, _ in await asyncio.gather(*tasks)]
    assert codes == [200, 200, 200] and time.monotonic() - t0 < 60


@pytest.fixture(scope="module")
def watched(module_tmp: Path) -> Iterator[ServerProcess]:
    s = ServerProcess(module_tmp, {"GENCLUSTER_FAULT_INJECTION": "on", "GENCLUSTER_HANG_AFTER_SECONDS": "2",
                                   "GENCLUSTER_BATCH_MAX_SIZE": "4",
                                   "GENCLUSTER_BATCH_MAX_DELAY_MS": "5"}, name="watched").start()
    try:
        yield s
    finally:
        s.stop()


async def get_status(url: str) -> tuple[int, dict[str, object]]:
    async with aiohttp.ClientSession() as s, s.get(url) as r:
        return r.status, await r.json()


async def test_hung_device_fails_waiting_requests_fast_and_fails_liveness(watched: ServerProcess) -> None:
    """With the watchdog (2 s here): the stuck device's requests are answered 503 soon after the
    limit, not held; /readyz and /healthz fail (the kubelet would restart the container); new
    requests get 503 at once; once the pass returns, the pod serves again."""
    assert (await get_status(watched.url + "/healthz"))[0] == 200
    await put(watched.url, {"stuck": True}, AUTH)
    try:
        t0 = time.monotonic()
        answers = await asyncio.wait_for(asyncio.gather(*(post(watched.url, img) for img in
                                                          shape_images(6, seed=4500))), 30)
        waited = time.monotonic() - t0
        assert [a[0] for a in answers] == [503] * 6, answers
        assert all("device hung" in str(a[2]) for a in answers), answers
        assert waited < 15  # held until the 2 s limit (+ the watchdog's period), not forever
        health, body = await get_status(watched.url + "/healthz")
        assert health == 503 and body["status"] == "device hung", body
        ready, body = await get_status(watched.url + "/readyz")
        assert ready == 503 and "device hung" in str(body["reason"]), body
        code, _, text = await post(watched.url, shape_images(1, seed=4600)[0])
        assert code == 503 and "device hung" in str(text)
        assert metric_value(watched.metrics_text(), "gencluster_requests_total", {"code": "503"}) >= 7
    finally:
        await put(watched.url, {"stuck": False}, AUTH)
    end = time.monotonic() + 20
    while (await get_status(watched.url + "/healthz"))[0] != 200 and time.monotonic() < end:
        await asyncio.sleep(0.1)
    assert (await get_status(watched.url + "/readyz"))[0] == 200
    code, _, _ = await post(watched.url, shape_images(1, seed=4700)[0])
    assert code == 200


async def test_sigterm_with_a_hung_device_exits_with_code_3(module_tmp: Path) -> None:
    """The kubelet's restart after failed liveness: the process leaves within the grace period
    with exit code 3 (what `kubectl describe pod` shows as the last state)."""
    s = ServerProcess(module_tmp, {"GENCLUSTER_FAULT_INJECTION": "on", "GENCLUSTER_HANG_AFTER_SECONDS": "1",
                                   "GENCLUSTER_SHUTDOWN_GRACE_SECONDS": "3"}, name="hung-exit").start()
    try:
        await put(s.url, {"stuck": True}, AUTH)
        code, _, _ = await post(s.url, shape_images(1, seed=4800)[0])
        assert code == 503
        assert s.proc is not None
        t0 = time.monotonic()
        s.proc.send_signal(15)
        assert await asyncio.to_thread(s.proc.wait, 20) == 3
        assert time.monotonic() - t0 < 10
        assert "exiting with a hung device" in s.log()
    finally:
        s.stop()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def test_allocate_holds_resident_memory_until_freed(faulty_on: ServerProcess) -> None:
    """The memory hog the OOM chaos test uses: the pages are really resident, and 0 frees them."""
    assert faulty_on.proc is not None
    pid = faulty_on.proc.pid
    for bad in (-1, 65537, 1.5, True, "64"):
        status, body = await put(faulty_on.url, {"allocateMiB": bad}, AUTH)
        assert status == 400 and "allocateMiB" in str(body), (bad, body)
    before = rss_mib(pid)
    status, body = await put(faulty_on.url, {"allocateMiB": 256}, AUTH)
    try:
        assert status == 200 and body["allocateMiB"] == 256  # type: ignore[index]
        assert rss_mib(pid) - before > 240
        code, _, _ = await post(faulty_on.url, shape_images(1, seed=4900)[0])
        assert code == 200  # still serving
    finally:
        status, body = await put(faulty_on.url, {"allocateMiB": 0}, AUTH)
    assert status == 200 and body["allocateMiB"] == 0  # type: ignore[index]
    assert rss_mib(pid) - before < 64
