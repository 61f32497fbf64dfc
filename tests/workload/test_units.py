"""In-process tests of the workload's parts: settings, cache tiers, breaker, batcher, batch
runner (OOM split, isolation), memory readings, image validation, meshing, admin auth."""

from __future__ import annotations

import asyncio
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import png
from PIL import Image

from gencluster_workload import meshing
from gencluster_workload.admin import AdminAuth
from gencluster_workload.batcher import DynamicBatcher, QueueFull, ShuttingDown
from gencluster_workload.cache import SingleFlight, cache_key
from gencluster_workload.config import (
    OPTIONS,
    BatchSettings,
    ConfigError,
    initial_batch_settings,
    parse_batch_update,
    parse_settings,
)
from gencluster_workload.gpu_memory import (
    DeviceOutOfMemory,
    MemoryMonitor,
    host_bytes_in_use,
    pressure_level,
    process_rss_bytes,
)
from gencluster_workload.imaging import RequestError, decode_image
from gencluster_workload.inference import BatchRunner, ItemResult, OutOfMemory, is_oom
from gencluster_workload.lru import ByteLRU
from gencluster_workload.redis_tier import CircuitBreaker, redact_url

# -- settings ------------------------------------------------------------------------------


def test_every_option_has_env_and_flag_and_flag_beats_env() -> None:
    assert len({o.env for o in OPTIONS}) == len(OPTIONS)
    assert all(o.env.startswith("GENCLUSTER_") and o.flag.startswith("--") for o in OPTIONS)
    s = parse_settings(["--port", "9000"], {"GENCLUSTER_PORT": "9100", "GENCLUSTER_QUEUE_MAX": "7"})
    assert s.port == 9000 and s.queue_max == 7
    assert parse_settings([], {}).port == 8080


def test_admin_port_defaults_to_the_http_port_and_is_a_flag_and_an_env_var() -> None:
    assert parse_settings([], {}).admin_port == 0  # 0: /admin/* on the HTTP port, as before
    assert parse_settings([], {"GENCLUSTER_ADMIN_PORT": "8081"}).admin_port == 8081
    assert parse_settings(["--admin-port", "9001"], {"GENCLUSTER_ADMIN_PORT": "8081"}).admin_port == 9001


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"GENCLUSTER_BATCH_MAX_SIZE": "0"}, "GENCLUSTER_BATCH_MAX_SIZE"),
        ({"GENCLUSTER_BATCH_MAX_SIZE": "lots"}, "GENCLUSTER_BATCH_MAX_SIZE"),
        ({"GENCLUSTER_DEVICE": "tpu"}, "GENCLUSTER_DEVICE"),
        ({"GENCLUSTER_REDIS_MODE": "sentinel"}, "GENCLUSTER_REDIS_MODE"),
        ({"GENCLUSTER_REDIS_MODE": "cluster"}, "GENCLUSTER_REDIS_URL is required"),
        ({"GENCLUSTER_ADMIN_PORT": "-1"}, "GENCLUSTER_ADMIN_PORT"),
        ({"GENCLUSTER_ADMIN_PORT": "65536"}, "GENCLUSTER_ADMIN_PORT"),
        ({"GENCLUSTER_PORT": "9000", "GENCLUSTER_ADMIN_PORT": "9000"}, "must differ from GENCLUSTER_PORT"),
    ],
)
def test_invalid_settings_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_settings([], env)


def test_runtime_config_overrides_env_batching(tmp_path: Path) -> None:
    path = tmp_path / "batching.json"
    env = {"GENCLUSTER_BATCH_MAX_SIZE": "4", "GENCLUSTER_RUNTIME_CONFIG": str(path)}
    assert initial_batch_settings(parse_settings([], env)) == BatchSettings(4, 10)  # absent
    path.write_text(json.dumps({"maxBatchSize": 12, "maxQueueDelayMs": 3}))
    assert initial_batch_settings(parse_settings([], env)) == BatchSettings(12, 3)
    path.write_text('{"maxBatchSize": -1}')  # broken: keep env values, do not crash
    assert initial_batch_settings(parse_settings([], env)) == BatchSettings(4, 10)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"maxBatchSize": 0}, "1..256"),
        ({"maxBatchSize": 10_000}, "1..256"),
        ({"maxBatchSize": "8"}, "integer"),
        ({"maxBatchSize": True}, "integer"),
        ({"maxQueueDelayMs": -5}, "0..10000"),
        ({"batch": 3}, "unknown field"),
        ({}, "give maxBatchSize"),
        ([8], "JSON object"),
    ],
)
def test_batch_update_validation(body: object, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        parse_batch_update(body, BatchSettings(8, 10))


def test_batch_update_partial() -> None:
    assert parse_batch_update({"maxQueueDelayMs": 25}, BatchSettings(8, 10)) == BatchSettings(8, 25)


# -- admin ---------------------------------------------------------------------------------


def test_admin_auth_env_file_rotation_and_disabled(tmp_path: Path) -> None:
    disabled = AdminAuth().check("Bearer x")
    assert disabled is not None and disabled[0] == 403 and "disabled" in disabled[1]
    auth = AdminAuth(token="env-token")
    assert auth.check("Bearer env-token") is None
    assert auth.check("Bearer nope")[0] == 401  # type: ignore[index]
    assert auth.check(None)[0] == 401  # type: ignore[index]
    assert auth.check("Basic env-token")[0] == 401  # type: ignore[index]
    f = tmp_path / "token"
    f.write_text("file-token\n")
    auth = AdminAuth(token="env-token", token_file=str(f))
    assert auth.check("Bearer file-token") is None
    assert auth.check("Bearer env-token")[0] == 401  # type: ignore[index]
    time.sleep(0.01)
    f.write_text("rotated")
    import os

    os.utime(f, (time.time() + 5, time.time() + 5))
    assert auth.check("Bearer rotated") is None


# -- L1, breaker, key, single flight -------------------------------------------------------


def test_byte_lru_bounds_bytes_and_expires() -> None:
    now = [0.0]
    lru = ByteLRU(max_bytes=100, ttl_seconds=10, clock=lambda: now[0])
    lru.put("a", b"x" * 40)
    lru.put("b", b"y" * 40)
    assert lru.get("a") == b"x" * 40  # a is now most recent
    lru.put("c", b"z" * 40)  # 120 > 100: evicts b (least recently used)
    assert lru.get("b") is None and lru.get("a") is not None and lru.bytes == 80
    assert lru.put("huge", b"h" * 101) is False
    now[0] = 11
    assert lru.get("a") is None and lru.stats()["expirations"] == 1


def test_circuit_breaker_opens_backs_off_and_probes() -> None:
    now = [0.0]
    br = CircuitBreaker(threshold=3, base_backoff_s=1, max_backoff_s=4, clock=lambda: now[0])
    for _ in range(3):
        assert br.allow()
        br.failure()
    assert br.state == "open" and not br.allow()
    now[0] = 1.01
    assert br.allow() and br.state == "half-open"
    assert not br.allow()  # only one probe at a time
    br.failure()  # probe failed: open again, longer
    assert br.state == "open" and br.open_until == pytest.approx(3.01)
    now[0] = 3.02
    assert br.allow()
    br.success()
    assert br.state == "closed" and br.allow()


def test_cache_key_covers_image_params_and_model_version() -> None:
    base = cache_key(b"img", {"resolution": 64, "format": "glb"}, "m", "v1")
    assert base == cache_key(b"img", {"format": "glb", "resolution": 64}, "m", "v1")
    assert base != cache_key(b"img2", {"resolution": 64, "format": "glb"}, "m", "v1")
    assert base != cache_key(b"img", {"resolution": 32, "format": "glb"}, "m", "v1")
    assert base != cache_key(b"img", {"resolution": 64, "format": "glb"}, "m", "v2")
    assert redact_url("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"


async def test_single_flight_runs_once_and_shares_errors() -> None:
    flight = SingleFlight()
    calls = 0

    async def work() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return 42

    results = await asyncio.gather(*(flight.do("k", work) for _ in range(5)))
    assert calls == 1 and [r for r, _ in results] == [42] * 5
    assert sum(leader for _, leader in results) == 1 and flight.coalesced == 4

    async def boom() -> int:
        await asyncio.sleep(0.02)
        raise ValueError("bad")

    outcomes = await asyncio.gather(*(flight.do("e", boom) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, ValueError) for o in outcomes) and len(flight) == 0


# -- batcher -------------------------------------------------------------------------------


class Recorder:
    """A device stand-in that records the batches it was given."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    def __call__(self, items: list[int]) -> list[int | BaseException]:
        self.batches.append(list(items))
        time.sleep(self.delay)
        return [ValueError(f"bad {i}") if i < 0 else i * 10 for i in items]


async def test_batcher_batches_by_size_and_delay_and_isolates_errors() -> None:
    rec = Recorder()
    with ThreadPoolExecutor(1) as pool:
        b: DynamicBatcher[int, int] = DynamicBatcher(rec, pool, BatchSettings(4, 200), 100)
        b.start()
        t0 = time.monotonic()
        res = await asyncio.gather(*(b.submit(i) for i in (1, 2, 3, 4, -5, 6)), return_exceptions=True)
        assert res[:4] == [10, 20, 30, 40] and isinstance(res[4], ValueError) and res[5] == 60
        assert [len(x) for x in rec.batches] == [4, 2]  # full batch at once, the rest after delay
        assert time.monotonic() - t0 >= 0.19
        # A runtime change applies to the next batch.
        b.update(BatchSettings(2, 0))
        rec.batches.clear()
        await asyncio.gather(*(b.submit(i) for i in range(5)))
        assert max(len(x) for x in rec.batches) <= 2
        await b.stop()


async def test_batcher_bounded_queue_and_drain() -> None:
    rec = Recorder(delay=0.1)
    with ThreadPoolExecutor(1) as pool:
        b: DynamicBatcher[int, int] = DynamicBatcher(rec, pool, BatchSettings(1, 0), 2)
        b.start()
        tasks = [asyncio.create_task(b.submit(i)) for i in range(6)]
        res = await asyncio.gather(*tasks, return_exceptions=True)
        full = [r for r in res if isinstance(r, QueueFull)]
        assert full and all(f.retry_after_s >= 1 for f in full)
        assert len([r for r in res if isinstance(r, int)]) >= 2
        # Drain: queued work finishes, new work is refused.
        b.update(BatchSettings(4, 5_000))
        tasks = [asyncio.create_task(b.submit(i)) for i in range(2)]
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        b.close()
        with pytest.raises(ShuttingDown):
            await b.submit(99)
        await asyncio.wait_for(b.wait_idle(), 2)
        assert sorted(await asyncio.gather(*tasks)) == [0, 10]
        assert time.monotonic() - t0 < 3.0  # closing does not wait out the 5 s queue delay
        await b.stop()


# -- batch runner: OOM split and isolation -------------------------------------------------


class ToyModel:
    """A model stand-in whose device 'runs out of memory' above a batch size (GPU fake)."""

    name, version = "toy", "1"

    def __init__(self, oom_above: int = 0, poison: float | None = None) -> None:
        self.oom_above, self.poison = oom_above, poison
        self.calls: list[int] = []

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return torch.zeros(1)

    def estimate_batch_bytes(self, n: int) -> int:
        return 0

    def forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls.append(batch.shape[0])
        if self.oom_above and batch.shape[0] > self.oom_above:
            raise torch.OutOfMemoryError("CUDA out of memory (toy)")
        if self.poison is not None and bool((batch == self.poison).any()):
            raise RuntimeError("poison")
        return batch.view(-1, 1, 1, 1).expand(-1, 2, 2, 2).clone()


def test_runner_splits_oom_batches_and_counts() -> None:
    model = ToyModel(oom_above=2)
    ooms: list[int] = []
    runner = BatchRunner(model, MemoryMonitor(torch.device("cpu"), 1 << 40), on_oom=ooms.append)
    out = runner.run([torch.tensor([float(i)]) for i in range(8)])
    assert [float(r.grid[0, 0, 0]) for r in out if isinstance(r, ItemResult)] == list(range(8))
    assert model.calls[0] == 8 and max(r.batch_size for r in out if isinstance(r, ItemResult)) <= 2
    assert ooms == [8, 4, 4]
    assert "oom" in runner.memory.cleanups[-1].reason


def test_runner_isolates_a_failing_item() -> None:
    model = ToyModel(poison=3.0)
    runner = BatchRunner(model, MemoryMonitor(torch.device("cpu"), 1 << 40))
    out = runner.run([torch.tensor([float(i)]) for i in range(5)])
    assert isinstance(out[3], RuntimeError)
    assert [float(r.grid[0, 0, 0]) for r in out if isinstance(r, ItemResult)] == [0, 1, 2, 4]


def test_runner_single_item_oom_is_out_of_memory() -> None:
    class HostOOM(ToyModel):
        def forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
            raise MemoryError()

    runner = BatchRunner(HostOOM(), MemoryMonitor(torch.device("cpu"), 1 << 40))
    assert isinstance(runner.run([torch.zeros(1)])[0], OutOfMemory)
    assert is_oom(RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert not is_oom(RuntimeError("shape mismatch"))


def test_cpu_budget_guard_splits_real_model_batches() -> None:
    """The CPU stand-in for GPU memory, with the real model: a budget with room for about four
    images' activations above what is in use makes a batch of 8 run split, and all succeed.
    (The process's own memory moves by a megabyte or two, hence the loose bounds.)"""
    from gencluster_workload.model import ShippedModel

    model = ShippedModel(torch.device("cpu"))
    x = model.preprocess(Image.new("RGB", (64, 64), (120, 130, 140)))
    for n in (8, 4, 2, 1):  # warm up as the server does: allocator and kernel caches settle
        model.forward_batch(torch.stack([x] * n))
    per_item = model.estimate_batch_bytes(1)
    budget = host_bytes_in_use() + 4 * per_item
    monitor = MemoryMonitor(torch.device("cpu"), budget)
    with pytest.raises(DeviceOutOfMemory):
        monitor.check_batch(per_item * 8)
    monitor.check_batch(per_item)
    runner = BatchRunner(model, monitor)
    out = runner.run([x] * 8)
    sizes = [r.batch_size if isinstance(r, ItemResult) else r for r in out]
    assert all(isinstance(s, int) and s <= 4 for s in sizes), sizes
    assert len(monitor.oom_events) >= 1 and "oom" in monitor.cleanups[-1].reason


# -- memory --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("u", "level"),
    [(0.1, "low"), (0.6999, "low"), (0.70, "medium"), (0.85, "high"), (0.9499, "high"), (0.95, "critical")],
)
def test_pressure_levels(u: float, level: str) -> None:
    assert pressure_level(u) == level


def test_cpu_memory_reading_is_labelled_cpu_and_real() -> None:
    rss = process_rss_bytes()
    mon = MemoryMonitor(torch.device("cpu"), budget_bytes=rss * 2)
    r = mon.sample()
    assert r.device == "cpu" and r.total_bytes == rss * 2
    assert 0.3 < r.utilisation < 0.8 and r.reserved_bytes >= r.used_bytes > 0
    assert 0.0 <= r.fragmentation_ratio <= 1.0
    blob = np.ones(64 * 1024 * 1024, dtype=np.uint8)  # RSS grows by 64 MiB
    assert mon.read().reserved_bytes >= r.reserved_bytes + 50 * 1024 * 1024
    del blob
    report = mon.optimization_report({"maxBatchSize": 8}, 0)
    assert {"current", "trend", "cleanup_events", "recommendations"} <= set(report)


# -- images and meshes ---------------------------------------------------------------------


def test_decode_image_rejections() -> None:
    good = png(np.full((32, 32, 3), 128, np.uint8))
    assert decode_image(good).size == (32, 32)
    cases = [
        (b"", 400, "empty"),
        (b"hello, not an image", 400, "not a recognisable image"),
        (good[: len(good) // 2], 400, "truncated"),
        (png(np.zeros((4, 4, 3), np.uint8)), 400, "too small"),
    ]
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, format="GIF")
    cases.append((buf.getvalue(), 415, "GIF"))
    for data, status, needle in cases:
        with pytest.raises(RequestError) as info:
            decode_image(data)
        assert info.value.status == status and needle in info.value.message


def test_mesh_of_a_sphere_field_in_every_format() -> None:
    import trimesh

    axis = (np.arange(32) + 0.5) / 16 - 1
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    field = np.clip(0.5 - (np.sqrt(x**2 + y**2 + z**2) - 0.6) / (2 / 32), 0, 1).astype(np.float32)
    for res in (16, 64):
        verts, _ = meshing.grid_to_arrays(field, res)
        radius = np.linalg.norm(verts, axis=1)
        assert abs(radius.mean() - 0.6) < 0.03 and radius.std() < 0.03
    for fmt in meshing.FORMATS:
        data = meshing.grid_to_mesh_bytes(field, 48, fmt)
        mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
        assert (
            isinstance(mesh, trimesh.Trimesh)
            and mesh.is_watertight
            and abs(mesh.volume - 4 / 3 * np.pi * 0.6**3) < 0.06
        )
    with pytest.raises(meshing.EmptyShape):
        meshing.grid_to_arrays(np.zeros((32, 32, 32), np.float32), 32)
