"""The generation service: wires model, batcher, cache, memory and metrics; owns the lifecycle.

Why apart from HTTP: the pipeline (cache -> single flight -> decode -> batch -> mesh -> cache) and
the lifecycle (load, warm up, ready, drain) are what the tests and benchmarks exercise; the HTTP
layer only maps requests and errors onto it.

Threads: one "device" thread runs every forward pass (batches run serially on the device, as on a
GPU stream); a small "cpu" pool decodes images and builds meshes, so neither blocks the event loop.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from opentelemetry import trace
from PIL import Image

from . import meshing
from .batcher import DeviceHung, DynamicBatcher, ShuttingDown
from .cache import SingleFlight, TieredCache, cache_key
from .config import BatchSettings, Settings, initial_batch_settings
from .faults import FaultSwitch
from .gpu_memory import MemoryMonitor, Reading
from .imaging import RequestError, decode_image
from .inference import BatchRunner, ItemResult, is_oom
from .lru import ByteLRU
from .metrics import Metrics
from .model import GenerationModel, build_model
from .redis_tier import RedisTier

log = logging.getLogger(__name__)
tracer = trace.get_tracer("gencluster_workload")

SAMPLE_INTERVAL_S = 1.0
PRESSURE_CLEANUP_INTERVAL_S = 30.0


class NotReady(Exception):
    """The model is still loading, or the server is draining."""


@dataclass
class Charge:
    """What one request cost, filled in as it goes (so a request that fails late still reports
    the device and CPU time it used): its share of every forward pass it was in, and the CPU
    thread time of its decoding, meshing and export."""

    gpu_seconds: float = 0.0
    cpu_seconds: float = 0.0


@dataclass(frozen=True)
class GenerateRequest:
    image: bytes
    resolution: int = meshing.DEFAULT_RESOLUTION
    fmt: str = "glb"
    use_cache: bool = True
    charge: Charge = field(default_factory=Charge, compare=False)


@dataclass(eq=False)
class DeviceJob:
    """One request's place in a batch: its input, the span to link the batch to, and what the
    device thread reports back (times in ns since the epoch, for spans; the device charge)."""

    tensor: torch.Tensor
    parent: trace.SpanContext
    enqueued_ns: int = field(default_factory=time.time_ns)
    started_ns: int = 0
    gpu_seconds: float = 0.0


@dataclass(frozen=True)
class GenerateResult:
    body: bytes
    content_type: str
    cache: str  # hit-l1 | hit-redis | miss
    batch_size: int | None = None
    forward_ms: float | None = None
    coalesced: bool = False


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"GENCLUSTER_DEVICE={name} but CUDA is not available")
        return torch.device("cuda:0" if name == "cuda" else name)
    return torch.device("cpu")


def cpu_quota() -> int:
    """CPUs this container may use: cgroup v2 cpu.max quota, else the affinity mask."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()
        if quota != "max":
            return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, len(os.sched_getaffinity(0)))


class Service:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.device = resolve_device(settings.device)
        self.memory = MemoryMonitor(self.device, settings.memory_budget_bytes)
        self.metrics = Metrics(self.memory.label)
        self.batch_settings: BatchSettings = initial_batch_settings(settings)
        self.metrics.batch_size.set(self.batch_settings.max_batch_size)
        l1 = (
            ByteLRU(settings.l1_cache_bytes, settings.cache_ttl_seconds)
            if settings.l1_cache_bytes > 0
            else None
        )
        l2 = None
        if settings.redis_mode != "disabled":
            l2 = RedisTier(
                settings.redis_mode,
                settings.redis_url,
                settings.redis_username,
                settings.redis_password,
                settings.redis_key_prefix,
                settings.cache_ttl_seconds,
                settings.redis_timeout_ms / 1000,
                tls_ca_file=settings.redis_tls_ca_file,
            )
        self.cache = TieredCache(l1, l2, self.metrics)
        self.flight = SingleFlight()
        self.device_pool = ThreadPoolExecutor(1, thread_name_prefix="device")
        self.cpu_pool = ThreadPoolExecutor(2, thread_name_prefix="cpu")
        self.model: GenerationModel | None = None
        self.model_name = ""
        self.model_version = ""
        self.runner: BatchRunner | None = None
        self.faults = FaultSwitch(settings.fault_injection == "on")
        self.batcher: DynamicBatcher[DeviceJob, ItemResult] | None = None
        self.pod = os.environ.get("GENCLUSTER_POD_NAME") or socket.gethostname()
        self.ready = False
        self.draining = False
        self.inflight = 0
        self.started_at = time.time()
        self._tasks: list[asyncio.Task[Any]] = []
        self._last_pressure_cleanup = 0.0

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Load and warm the model on the device thread; then ready."""
        loop = asyncio.get_running_loop()
        t0 = time.monotonic()
        self.publish(self.memory.sample())
        if self.cache.l2 is not None:
            self._tasks.append(loop.create_task(self.cache.l2.keep_connecting()))
        model = await loop.run_in_executor(
            self.device_pool, build_model, self.settings.model_factory, self.device
        )
        self.model = model
        self.model_name = self.settings.model_name or str(model.name)
        self.model_version = self.settings.model_version or str(model.version)
        self.runner = BatchRunner(
            model,
            self.memory,
            on_forward=self.metrics.batch_size_observed.observe,
            on_oom=lambda n: self.metrics.oom.inc(),
            on_forward_seconds=self.metrics.batch_duration.observe,
            faults=self.faults,
        )
        await loop.run_in_executor(self.device_pool, self._warm_up, model)
        await loop.run_in_executor(self.cpu_pool, _warm_meshing)
        self.batcher = DynamicBatcher(
            self._run_batch,
            self.device_pool,
            self.batch_settings,
            self.settings.queue_max,
            on_depth=self.metrics.queue_depth.set,
            hang_after_s=self.settings.hang_after_seconds,
        )
        self.batcher.start()
        self._tasks.append(loop.create_task(self._sample_memory(), name="memory-sampler"))
        self.ready = True
        log.info(
            "model %s %s ready on %s in %.1fs (batching %s)",
            self.model_name,
            self.model_version,
            self.device,
            time.monotonic() - t0,
            self.batch_settings.as_json(),
        )

    def _warm_up(self, model: GenerationModel) -> None:
        """One pass at batch 1 and at the max batch size (allocator pools, kernels, lazy init).

        If the max batch does not fit, that is an OOM like any other (counted, memory released)
        and warm-up halves the batch; only a model that cannot run one image fails the start.
        """
        blank = model.preprocess(Image.new("RGB", (64, 64), (200, 200, 200)))
        model.forward_batch(blank[None])
        n = self.batch_settings.max_batch_size
        while n > 1:
            try:
                self.memory.check_batch(model.estimate_batch_bytes(n))
                model.forward_batch(torch.stack([blank] * n))
                break
            except Exception as exc:
                if not is_oom(exc):
                    raise
                log.warning("warm-up: batch %d does not fit (%s); trying %d", n, exc, n // 2)
            self.metrics.oom.inc()
            self.memory.record_oom()
            self.memory.release(f"oom at batch size {n} (warm-up)")
            n //= 2
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @property
    def device_hung(self) -> DeviceHung | None:
        """Set while the batcher's watchdog finds the device hung (see batcher.py)."""
        return self.batcher.hung if self.batcher is not None else None

    def begin_drain(self) -> None:
        """SIGTERM: report not ready and refuse new requests; requests already accepted (even
        those still being decoded, not yet queued) run to the end, without batching delays."""
        self.draining = True
        if self.batcher is not None:
            self.batcher.flush()

    async def wait_drained(self) -> None:
        while self.inflight > 0 or (self.batcher is not None and self.batcher.depth > 0):
            await asyncio.sleep(0.01)
        if self.batcher is not None:
            self.batcher.close()
            await self.batcher.wait_idle()

    def abandon_queue(self) -> int:
        if self.batcher is None:
            return 0
        self.batcher.close()
        return self.batcher.fail_pending(ShuttingDown("shutdown grace period ran out"))

    async def close(self, flush_s: float = 0.5) -> None:
        self.faults.release()
        await self.cache.flush(flush_s)
        for task in self._tasks:
            task.cancel()
        if self.batcher is not None:
            await self.batcher.stop()
        await self.cache.close()
        self.device_pool.shutdown(wait=False, cancel_futures=True)
        self.cpu_pool.shutdown(wait=False, cancel_futures=True)

    # -- batching knobs ----------------------------------------------------------------
    def set_batching(self, settings: BatchSettings) -> None:
        self.batch_settings = settings
        self.metrics.batch_size.set(settings.max_batch_size)
        if self.batcher is not None:
            self.batcher.update(settings)
        log.info("batching set to %s", settings.as_json())

    # -- memory ------------------------------------------------------------------------
    def publish(self, r: Reading) -> None:
        d = r.device
        self.metrics.gpu_used.labels(d).set(r.used_bytes)
        self.metrics.gpu_total.labels(d).set(r.total_bytes)
        self.metrics.gpu_reserved.labels(d).set(r.reserved_bytes)
        self.metrics.gpu_fragmentation.labels(d).set(r.fragmentation_ratio)
        process = (r.nvml or {}).get("process_used_bytes")
        if process is not None:  # exported only where NVML reports it (never on the CPU stand-in)
            self.metrics.gpu_process.labels(d).set(process)

    async def _sample_memory(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            reading = self.memory.sample()
            self.publish(reading)
            now = time.monotonic()
            if (
                reading.pressure in ("high", "critical")
                and now - self._last_pressure_cleanup > PRESSURE_CLEANUP_INTERVAL_S
            ):
                self._last_pressure_cleanup = now
                await loop.run_in_executor(
                    self.device_pool, self.memory.release, f"pressure {reading.pressure}"
                )
            await asyncio.sleep(SAMPLE_INTERVAL_S)

    # -- the pipeline ------------------------------------------------------------------
    async def generate(self, req: GenerateRequest) -> GenerateResult:
        if self.draining:
            raise NotReady("server is shutting down")
        if not self.ready:
            raise NotReady("model is loading")
        params = {"resolution": req.resolution, "format": req.fmt}
        if len(req.image) > 1 << 20:
            loop = asyncio.get_running_loop()
            key = await loop.run_in_executor(
                self.cpu_pool, cache_key, req.image, params, self.model_name, self.model_version
            )
        else:
            key = cache_key(req.image, params, self.model_name, self.model_version)
        if not req.use_cache:
            return await self._compute(req, key)
        value, tier = await self.cache.get(key)
        if value is not None:
            return GenerateResult(value, meshing.FORMATS[req.fmt], f"hit-{tier}")
        result, leader = await self.flight.do(key, lambda: self._compute(req, key))
        if not leader:
            trace.get_current_span().set_attribute("gencluster.coalesced", True)
        return result if leader else replace(result, coalesced=True)

    def _prepare(self, data: bytes) -> torch.Tensor:
        assert self.model is not None
        image = decode_image(data)
        try:
            return self.model.preprocess(image)
        except ValueError as exc:
            raise RequestError(422, f"the model cannot use this image: {exc}") from None

    def _prepare_timed(self, data: bytes) -> tuple[torch.Tensor | Exception, float]:
        """(input tensor or the reason there is none, CPU seconds spent), on a cpu thread."""
        t0 = time.thread_time()
        try:
            out: torch.Tensor | Exception = self._prepare(data)
        except Exception as exc:
            out = exc
        return out, time.thread_time() - t0

    async def _compute(self, req: GenerateRequest, key: str) -> GenerateResult:
        assert self.batcher is not None
        loop = asyncio.get_running_loop()
        with tracer.start_as_current_span("preprocess"):
            tensor, cpu = await loop.run_in_executor(self.cpu_pool, self._prepare_timed, req.image)
            req.charge.cpu_seconds += cpu
            if isinstance(tensor, Exception):
                raise tensor
        job = DeviceJob(tensor, trace.get_current_span().get_span_context())
        try:
            item = await self.batcher.submit(job)
        finally:
            req.charge.gpu_seconds += job.gpu_seconds
            if job.started_ns:
                tracer.start_span("queue.wait", start_time=job.enqueued_ns).end(job.started_ns)
        mesh = await loop.run_in_executor(
            self.cpu_pool, _mesh_and_export, item.grid, req.resolution, req.fmt
        )
        req.charge.cpu_seconds += mesh.cpu_seconds
        mesh.spans(req.resolution, req.fmt)
        if mesh.error is not None:
            raise RequestError(422, str(mesh.error))
        assert mesh.body is not None
        self.cache.put(key, mesh.body)
        return GenerateResult(
            mesh.body, meshing.FORMATS[req.fmt], "miss", item.batch_size, round(item.forward_ms, 2)
        )

    def _run_batch(self, jobs: list[DeviceJob]) -> list[ItemResult | BaseException]:
        """On the device thread: one batch, its span (a child of the first sampled request,
        linked to every request in it) with the forward pass inside, and each job's charge."""
        assert self.runner is not None
        started = time.time_ns()
        for job in jobs:
            job.started_ns = started
        sampled = [j.parent for j in jobs if j.parent.is_valid and j.parent.trace_flags.sampled]
        parent = sampled[0] if sampled else jobs[0].parent
        attrs: dict[str, str | int] = {"gencluster.batch.size": len(jobs), "gencluster.model.version": self.model_version,
                 "gencluster.pod": self.pod}
        batch = tracer.start_span(
            "batch",
            context=trace.set_span_in_context(trace.NonRecordingSpan(parent)),
            links=[trace.Link(j.parent) for j in jobs if j.parent.is_valid],
            attributes=attrs,
            start_time=started,
        )
        try:
            with tracer.start_span("forward", context=trace.set_span_in_context(batch),
                                   attributes=attrs) as forward:
                results, charges = self.runner.run_charged([j.tensor for j in jobs])
                forward.set_attribute("gencluster.batch.failed",
                                      sum(isinstance(r, BaseException) for r in results))
            for job, seconds in zip(jobs, charges, strict=True):
                job.gpu_seconds = seconds
            return results
        finally:
            batch.end()

    # -- reports -----------------------------------------------------------------------
    def cache_stats(self) -> dict[str, Any]:
        return {
            **self.cache.stats(),
            "single_flight": {"in_flight": len(self.flight), "coalesced": self.flight.coalesced},
            "key": "sha256(model name, model version, resolution, format, image bytes)",
        }

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "version": self.model_version,
            "device": str(self.device),
            "ready": self.ready and not self.draining,
            "batching": self.batch_settings.as_json(),
            "queue_max": self.settings.queue_max,
            "resolution": {
                "min": meshing.MIN_RESOLUTION,
                "max": meshing.MAX_RESOLUTION,
                "default": meshing.DEFAULT_RESOLUTION,
            },
            "formats": sorted(meshing.FORMATS),
            "uptime_seconds": round(time.time() - self.started_at, 1),
        }


@dataclass
class MeshResult:
    """What the cpu thread returns for one mesh: bytes (or the reason there are none), its CPU
    time, and the wall-clock bounds of its two stages for the meshing and export spans."""

    body: bytes | None
    error: Exception | None
    cpu_seconds: float
    t0_ns: int
    t1_ns: int
    t2_ns: int

    def spans(self, resolution: int, fmt: str) -> None:
        """Record the meshing and export spans under the current span (on the event loop)."""
        attrs = {"gencluster.mesh.resolution": resolution}
        span = tracer.start_span("meshing", start_time=self.t0_ns, attributes=attrs)
        if self.error is not None:
            span.set_attribute("gencluster.mesh.empty", True)
        span.end(self.t1_ns)
        if self.body is not None:
            export = tracer.start_span("export", start_time=self.t1_ns,
                                       attributes={"gencluster.mesh.format": fmt,
                                                   "gencluster.mesh.bytes": len(self.body)})
            export.end(self.t2_ns)


def _mesh_and_export(grid: np.ndarray, resolution: int, fmt: str) -> MeshResult:
    """Marching cubes, then export; timed per stage (a cpu thread)."""
    c0, t0 = time.thread_time(), time.time_ns()
    try:
        verts, faces = meshing.grid_to_arrays(grid, resolution)
    except meshing.EmptyShape as exc:
        t1 = time.time_ns()
        return MeshResult(None, exc, time.thread_time() - c0, t0, t1, t1)
    t1 = time.time_ns()
    body = meshing.export(verts, faces, fmt)
    return MeshResult(body, None, time.thread_time() - c0, t0, t1, time.time_ns())


def _warm_meshing() -> None:
    """Import skimage/trimesh and run one small mesh so the first request does not pay for it."""
    axis = (np.arange(16) + 0.5) / 8 - 1
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    grid = (np.sqrt(x**2 + y**2 + z**2) < 0.5).astype(np.float32)
    for fmt in meshing.FORMATS:
        meshing.grid_to_mesh_bytes(grid, 16, fmt)
