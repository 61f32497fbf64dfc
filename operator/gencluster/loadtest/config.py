"""What a load test run is asked to do: one frozen, validated LoadConfig.

Why hard ceilings: every run stops by itself. `max_requests` and `max_seconds` always apply on
top of the profile's own plan, and they themselves cannot exceed the ceilings below.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from .arrivals import Arrival
from .targets import Target

Profile = Literal["load", "stress", "spike", "soak"]
PROFILES: tuple[str, ...] = ("load", "stress", "spike", "soak")
FORMATS = ("glb", "obj", "ply")

MAX_RATE = 5_000.0
MAX_CONCURRENCY = 10_000
MAX_REQUESTS_CEILING = 10_000_000
MAX_SECONDS_CEILING = 24 * 3600.0


class ConfigError(ValueError):
    """An invalid setting; the message names it."""


@dataclass(frozen=True)
class LoadConfig:
    target: Target
    profile: Profile = "load"
    # Arrivals (load and soak: the rate; spike: the baseline rate).
    rate: float = 10.0
    duration_s: float = 30.0  # load and soak
    arrival: Arrival = "constant"
    seed: int = 1
    window_s: float = 1.0
    warmup_s: float = 0.0  # a first phase at the starting rate, shown but not measured
    concurrency: int = 256  # cap on requests in flight; arrivals beyond it are dropped (errors)
    timeout_s: float = 30.0  # per request, from the moment it is sent
    # Requests.
    pool: int = 100
    zipf: float = 1.0
    image_size: int = 64
    resolution: int = 64
    fmt: str = "glb"
    # Verdicts.
    slo_ms: float = 1000.0  # stress: a step breaks when its p95 exceeds this
    max_error_rate: float = 0.05  # stress: ... or its error rate exceeds this
    # Stress: start_rate, +step_rate every step_s, up to max_rate.
    start_rate: float = 5.0
    step_rate: float = 5.0
    step_s: float = 10.0
    max_rate: float = 200.0
    # Spike: baseline_s at rate, spike_s at rate * spike_factor, then up to recovery_s at rate.
    baseline_s: float = 20.0
    spike_factor: float = 5.0
    spike_s: float = 10.0
    recovery_s: float = 30.0
    recovery_tolerance: float = 1.2  # recovered: a window's p95 <= tolerance * baseline p95
    # Soak (and any profile, when True): scrape /metrics each window. None = soak only.
    scrape_metrics: bool | None = None
    # Trace context: every request carries a W3C traceparent, marked sampled for this share
    # (decided from the trace id as OpenTelemetry's TraceIdRatioBased does); None: no header.
    trace_ratio: float | None = 1.0
    # Hard bounds.
    max_requests: int = 100_000
    max_seconds: float = 3600.0

    def __post_init__(self) -> None:
        self.validate()

    @property
    def scrape(self) -> bool:
        return self.profile == "soak" if self.scrape_metrics is None else self.scrape_metrics

    def planned_seconds(self) -> float:
        """How long the profile's plan lasts (before the hard bounds)."""
        if self.profile == "stress":
            return self.warmup_s + self.stress_steps() * self.step_s
        if self.profile == "spike":
            return self.warmup_s + self.baseline_s + self.spike_s + self.recovery_s
        return self.warmup_s + self.duration_s

    def stress_steps(self) -> int:
        return math.floor((self.max_rate - self.start_rate) / self.step_rate + 1e-9) + 1

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(message)

        need(self.profile in PROFILES, f"profile must be one of {', '.join(PROFILES)}, got {self.profile!r}")
        need(self.arrival in ("constant", "poisson"), f"arrival must be constant or poisson, got {self.arrival!r}")
        for name in ("rate", "start_rate", "max_rate"):
            value = getattr(self, name)
            need(0 < value <= MAX_RATE, f"{name} must be in (0, {MAX_RATE:g}] requests/s, got {value}")
        need(0 < self.rate * self.spike_factor <= MAX_RATE,
             f"rate x spike_factor must be <= {MAX_RATE:g}, got {self.rate * self.spike_factor:g}")
        need(self.spike_factor >= 1, f"spike_factor must be >= 1, got {self.spike_factor}")
        need(self.step_rate > 0, f"step_rate must be > 0, got {self.step_rate}")
        need(self.max_rate >= self.start_rate, "max_rate must be >= start_rate")
        for name in ("duration_s", "step_s", "spike_s", "window_s", "timeout_s"):
            value = getattr(self, name)
            need(value > 0, f"{name} must be > 0, got {value}")
        for name in ("baseline_s", "recovery_s"):
            value = getattr(self, name)
            need(value >= self.window_s, f"{name} must be >= window_s ({self.window_s}), got {value}")
        need(0 <= self.warmup_s <= 3600, f"warmup_s must be in 0..3600, got {self.warmup_s}")
        need(self.window_s <= 600, f"window_s must be <= 600, got {self.window_s}")
        need(1 <= self.concurrency <= MAX_CONCURRENCY,
             f"concurrency must be in 1..{MAX_CONCURRENCY}, got {self.concurrency}")
        need(1 <= self.pool <= 20_000, f"pool must be in 1..20000, got {self.pool}")
        need(0 <= self.zipf <= 10, f"zipf must be in 0..10, got {self.zipf}")
        need(16 <= self.image_size <= 1024, f"image_size must be in 16..1024, got {self.image_size}")
        need(16 <= self.resolution <= 128, f"resolution must be in 16..128, got {self.resolution}")
        need(self.fmt in FORMATS, f"format must be one of {', '.join(FORMATS)}, got {self.fmt!r}")
        need(self.slo_ms > 0, f"slo_ms must be > 0, got {self.slo_ms}")
        need(0 <= self.max_error_rate <= 1, f"max_error_rate must be in 0..1, got {self.max_error_rate}")
        need(self.recovery_tolerance >= 1, f"recovery_tolerance must be >= 1, got {self.recovery_tolerance}")
        need(self.trace_ratio is None or 0 <= self.trace_ratio <= 1,
             f"trace_ratio must be in 0..1, got {self.trace_ratio}")
        need(1 <= self.max_requests <= MAX_REQUESTS_CEILING,
             f"max_requests must be in 1..{MAX_REQUESTS_CEILING}, got {self.max_requests}")
        need(0 < self.max_seconds <= MAX_SECONDS_CEILING,
             f"max_seconds must be in (0, {MAX_SECONDS_CEILING:g}], got {self.max_seconds}")

    def as_dict(self) -> dict[str, Any]:
        """For the report: every setting, the target as its URLs."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "target"}
        out["target"] = {k: v for k, v in asdict(self.target).items() if k != "issuer"}
        return out
