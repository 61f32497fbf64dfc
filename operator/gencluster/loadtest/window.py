"""One time window of a run, as plain numbers: what the live line prints and the report plots."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .stats import Stats


@dataclass
class WindowRecord:
    index: int
    t_start: float  # seconds since the run started
    t_end: float
    phase: str
    target_rate: float  # the rate the profile asked for in this window
    arrivals: int
    offered_rate: float  # arrivals / duration (what was actually scheduled)
    throughput_rps: float  # 2xx responses / duration
    completed: int
    ok: int
    errors: int
    error_rate: float
    errors_by_code: dict[str, int]
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    cache_hit_ratio: float | None
    cached_p50_ms: float | None
    uncached_p50_ms: float | None
    inflight: int
    memory_bytes: float | None = None  # sum of gencluster_gpu_memory_used_bytes over scraped pods
    memory_by_target: dict[str, float] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return max(self.t_end - self.t_start, 1e-9)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stats(cls, index: int, t_start: float, t_end: float, phase: str, target_rate: float,
                   stats: Stats, inflight: int) -> WindowRecord:
        seconds = max(t_end - t_start, 1e-9)
        pct = stats.ok.percentiles_ms()
        hit = stats.cache_hit_ratio()
        cached = stats.cached.percentiles_ms((50.0,))
        uncached = stats.uncached.percentiles_ms((50.0,))
        return cls(
            index=index, t_start=round(t_start, 4), t_end=round(t_end, 4), phase=phase,
            target_rate=target_rate, arrivals=stats.arrivals,
            offered_rate=round(stats.arrivals / seconds, 3),
            throughput_rps=round(stats.ok_count / seconds, 3),
            completed=stats.outcomes, ok=stats.ok_count, errors=stats.errors,
            error_rate=round(stats.error_rate(), 5), errors_by_code=stats.errors_by_code(),
            p50_ms=pct.get(50.0), p90_ms=pct.get(90.0), p95_ms=pct.get(95.0), p99_ms=pct.get(99.0),
            max_ms=stats.ok.max_ms(), cache_hit_ratio=None if hit is None else round(hit, 4),
            cached_p50_ms=cached.get(50.0), uncached_p50_ms=uncached.get(50.0), inflight=inflight,
        )
