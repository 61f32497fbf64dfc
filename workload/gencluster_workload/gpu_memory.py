"""Device memory readings, pressure levels, trend and cleanup events.

Why: the operator shrinks batches and adds replicas on memory pressure, so the readings must be
real. On CUDA they come from torch's caching allocator (allocated / reserved) and NVML (device
total / used and this process's usage). With no GPU, the process's host memory is measured against
a budget (GENCLUSTER_MEMORY_BUDGET_BYTES) and labelled device="cpu", so it is never mistaken for a
GPU reading: reserved = RSS, used = RSS minus free bytes held inside glibc malloc's heap (mallinfo2),
fragmentation = that free share of the heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

log = logging.getLogger(__name__)

MIN_TREND_WINDOW_S = 30.0
PRESSURE_LEVELS = (("critical", 0.95), ("high", 0.85), ("medium", 0.70))


def pressure_level(utilisation: float) -> str:
    """low < 70 % <= medium < 85 % <= high < 95 % <= critical."""
    for name, threshold in PRESSURE_LEVELS:
        if utilisation >= threshold:
            return name
    return "low"


class DeviceOutOfMemory(MemoryError):
    """The CPU stand-in's out-of-memory: a batch would push RSS past the memory budget."""


@dataclass
class Reading:
    device: str
    total_bytes: int
    used_bytes: int
    reserved_bytes: int
    free_bytes: int
    fragmentation_ratio: float
    utilisation: float
    pressure: str
    timestamp: float
    source: str
    nvml: dict[str, Any] | None = None


@dataclass
class CleanupEvent:
    timestamp: float
    reason: str
    reserved_before: int
    reserved_after: int

    @property
    def freed_bytes(self) -> int:
        return max(0, self.reserved_before - self.reserved_after)


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def _libc() -> Any:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


_LIBC = _libc()
if _LIBC is not None and hasattr(_LIBC, "mallinfo2"):
    _LIBC.mallinfo2.restype = _MallInfo2


def process_rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def malloc_free_bytes() -> int | None:
    """Free bytes glibc keeps in its heaps (mallinfo2.fordblks); None off glibc."""
    if _LIBC is None or not hasattr(_LIBC, "mallinfo2"):
        return None
    return int(_LIBC.mallinfo2().fordblks)


def host_bytes_in_use() -> int:
    """RSS minus the free bytes malloc holds for reuse: what a new allocation competes with."""
    return max(0, process_rss_bytes() - (malloc_free_bytes() or 0))


def host_memory_limit() -> int:
    """The container's memory limit (cgroup v2, then v1), else the host's MemTotal."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 1 << 60:
            return int(text)
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("cannot find the host memory size")


class _Nvml:
    """NVML handle of the torch device, matched by UUID (CUDA_VISIBLE_DEVICES renumbers)."""

    def __init__(self, index: int) -> None:
        self.handle: Any = None
        self.error = ""
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
            try:
                self.handle = pynvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
            except pynvml.NVMLError:  # no UUID (old torch) or a MIG instance: best effort
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:  # no driver library, no permission: torch readings still work
            self.error = f"{type(exc).__name__}: {exc}"

    def read(self) -> dict[str, Any] | None:
        if self.handle is None:
            return None
        n = self.nvml
        info = n.nvmlDeviceGetMemoryInfo(self.handle)
        process_used = None
        try:
            for proc in n.nvmlDeviceGetComputeRunningProcesses(self.handle):
                if proc.pid == os.getpid():
                    process_used = int(proc.usedGpuMemory or 0)
        except n.NVMLError:
            pass
        return {
            "device_total_bytes": int(info.total),
            "device_used_bytes": int(info.used),
            "device_free_bytes": int(info.free),
            "process_used_bytes": process_used,
        }


class MemoryMonitor:
    """Reads memory, keeps a short history for the trend, and releases cached memory."""

    def __init__(self, device: torch.device, budget_bytes: int = 0, history: int = 600) -> None:
        self.device = device
        self.is_cuda = device.type == "cuda"
        self.index = (device.index or 0) if self.is_cuda else None
        self.label = f"cuda:{self.index}" if self.is_cuda else "cpu"
        self.budget = budget_bytes or (0 if self.is_cuda else host_memory_limit())
        self._nvml = _Nvml(self.index or 0) if self.is_cuda else None
        self.history: deque[Reading] = deque(maxlen=history)
        self.cleanups: deque[CleanupEvent] = deque(maxlen=50)
        self.oom_events: deque[float] = deque(maxlen=200)
        self._lock = threading.Lock()

    def read(self) -> Reading:
        now = time.time()
        if self.is_cuda:
            assert self.index is not None
            allocated = torch.cuda.memory_allocated(self.index)
            reserved = torch.cuda.memory_reserved(self.index)
            nvml = self._nvml.read() if self._nvml else None
            if nvml is not None:
                total, device_used, source = (
                    nvml["device_total_bytes"],
                    nvml["device_used_bytes"],
                    "torch+nvml",
                )
            else:
                free, total = torch.cuda.mem_get_info(self.index)
                device_used, source = total - free, "torch"
            used = allocated
            frag = (reserved - allocated) / reserved if reserved else 0.0
            utilisation = device_used / total if total else 0.0
            free_bytes = max(0, total - device_used)
        else:
            rss = process_rss_bytes()
            heap_free = malloc_free_bytes()  # the two reads are microseconds apart
            reserved, total, nvml = rss, self.budget, None
            used = max(0, rss - (heap_free or 0))
            frag = (heap_free or 0) / rss if rss else 0.0
            utilisation = rss / total if total else 0.0
            free_bytes = max(0, total - rss)
            source = "rss+mallinfo2" if heap_free is not None else "rss"
        reading = Reading(
            device=self.label,
            total_bytes=int(total),
            used_bytes=int(used),
            reserved_bytes=int(reserved),
            free_bytes=int(free_bytes),
            fragmentation_ratio=round(min(max(frag, 0.0), 1.0), 4),
            utilisation=round(utilisation, 4),
            pressure=pressure_level(utilisation),
            timestamp=now,
            source=source,
            nvml=nvml,
        )
        return reading

    def sample(self) -> Reading:
        reading = self.read()
        with self._lock:
            self.history.append(reading)
        return reading

    def check_batch(self, needed_bytes: int) -> None:
        """CPU stand-in for a CUDA OOM: refuse a batch that would push RSS past the budget."""
        if self.is_cuda:
            return
        in_use = host_bytes_in_use()
        if in_use + needed_bytes > self.budget:
            raise DeviceOutOfMemory(
                f"batch needs ~{needed_bytes} B; {in_use} B in use + that exceeds the budget {self.budget} B"
            )

    def release(self, reason: str) -> CleanupEvent:
        """Give cached memory back: gc, then torch's CUDA cache or glibc's malloc_trim."""
        before = self.read().reserved_bytes
        gc.collect()
        if self.is_cuda:
            torch.cuda.empty_cache()
        elif _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
            _LIBC.malloc_trim(0)
        event = CleanupEvent(time.time(), reason, before, self.read().reserved_bytes)
        with self._lock:
            self.cleanups.append(event)
        log.info("memory cleanup (%s): freed %d bytes", reason, event.freed_bytes)
        return event

    def record_oom(self) -> None:
        with self._lock:
            self.oom_events.append(time.time())

    def trend(self, window_s: float = 120.0) -> dict[str, Any]:
        """Least-squares slope of used memory over the window, and where it is heading."""
        with self._lock:
            points = [r for r in self.history if r.timestamp >= time.time() - window_s]
        span = points[-1].timestamp - points[0].timestamp if points else 0.0
        if len(points) < 10 or span < MIN_TREND_WINDOW_S:
            return {
                "direction": "unknown",
                "slope_bytes_per_s": 0.0,
                "samples": len(points),
                "window_seconds": round(span, 1),
                "note": f"needs {MIN_TREND_WINDOW_S:.0f}s of samples",
            }
        t0 = points[0].timestamp
        xs = [p.timestamp - t0 for p in points]
        ys = [float(p.used_bytes) for p in points]
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
        total = points[-1].total_bytes or 1
        per_minute = slope * 60 / total
        direction = "rising" if per_minute > 0.01 else "falling" if per_minute < -0.01 else "stable"
        result: dict[str, Any] = {
            "direction": direction,
            "slope_bytes_per_s": round(slope, 1),
            "window_seconds": round(xs[-1], 1),
            "samples": len(points),
            "min_used_bytes": int(min(ys)),
            "max_used_bytes": int(max(ys)),
        }
        if slope > 0:
            headroom = 0.95 * total - points[-1].used_bytes
            result["seconds_to_critical"] = round(max(headroom, 0) / slope, 1)
        return result

    def profile(self) -> dict[str, Any]:
        r = self.sample()
        out = asdict(r)
        out["pressure_thresholds"] = {"medium": 0.70, "high": 0.85, "critical": 0.95}
        if self.is_cuda:
            out["torch_allocated_bytes"] = r.used_bytes
            out["torch_reserved_bytes"] = r.reserved_bytes
            if self._nvml is not None and self._nvml.error:
                out["nvml_error"] = self._nvml.error
        else:
            out["budget_bytes"] = self.budget
            out["note"] = "no GPU: host memory of this process against the configured budget"
        return out

    def optimization_report(self, batch: dict[str, int], queue_depth: int) -> dict[str, Any]:
        reading = self.sample()
        trend = self.trend()
        now = time.time()
        with self._lock:
            recent_ooms = sum(1 for t in self.oom_events if t > now - 600)
            cleanups = [{**asdict(c), "freed_bytes": c.freed_bytes} for c in list(self.cleanups)[-20:]]
        recs = recommendations(reading, trend, recent_ooms, batch, queue_depth)
        return {
            "current": asdict(reading),
            "trend": trend,
            "oom_events_last_10m": recent_ooms,
            "cleanup_events": cleanups,
            "batching": batch,
            "queue_depth": queue_depth,
            "recommendations": recs,
        }


@dataclass
class Recommendation:
    id: str
    severity: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def recommendations(
    r: Reading, trend: dict[str, Any], recent_ooms: int, batch: dict[str, int], queue: int
) -> list[dict[str, Any]]:
    """Plain rules over the readings; the operator acts on metrics, people read these."""
    size = batch.get("maxBatchSize", 1)
    out: list[Recommendation] = []
    if recent_ooms:
        out.append(
            Recommendation(
                "reduce-batch-after-oom",
                "warning",
                f"{recent_ooms} out-of-memory event(s) in 10 minutes: lower maxBatchSize "
                f"(now {size}) to about {max(1, size // 2)}.",
            )
        )
    if r.pressure in ("high", "critical"):
        out.append(
            Recommendation(
                "memory-pressure",
                "critical" if r.pressure == "critical" else "warning",
                f"memory {r.utilisation:.0%} used ({r.pressure}): reduce maxBatchSize or add replicas.",
            )
        )
    if r.fragmentation_ratio > 0.3 and r.reserved_bytes > 256 * 1024 * 1024:
        hint = (
            "set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True"
            if r.device != "cpu"
            else "set MALLOC_ARENA_MAX=2 or MALLOC_TRIM_THRESHOLD_"
        )
        out.append(
            Recommendation(
                "fragmentation",
                "info",
                f"{r.fragmentation_ratio:.0%} of reserved memory is free but held: {hint}.",
            )
        )
    if trend.get("direction") == "rising" and "seconds_to_critical" in trend:
        out.append(
            Recommendation(
                "memory-rising",
                "warning",
                f"used memory rising {trend['slope_bytes_per_s'] / 1e6:.1f} MB/s; critical in "
                f"~{trend['seconds_to_critical']:.0f}s if it continues (leak or growing batches?).",
            )
        )
    if r.pressure == "low" and not recent_ooms and queue > size:
        out.append(
            Recommendation(
                "grow-batch",
                "info",
                f"memory headroom and {queue} queued requests: maxBatchSize (now {size}) can grow.",
            )
        )
    if not out:
        out.append(Recommendation("none", "info", "no action needed"))
    return [asdict(x) for x in out]
