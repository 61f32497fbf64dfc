"""The metrics contract (workload -> operator), on a dedicated registry.

Why a dedicated CollectorRegistry: /metrics must carry exactly the contract names of
shared/DESIGN.md ("The metrics contract"), nothing from prometheus_client's default process and
platform collectors, so the operator never depends on something we did not promise.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# No `*_created` series: they are not in the contract (process-wide prometheus_client switch).
disable_created_metrics()  # type: ignore[no-untyped-call]

DURATION_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.35,
    0.5,
    0.75,
    1.0,
    1.5,
    2.5,
    5.0,
    10.0,
    30.0,
)
BATCH_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 128, 256)
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

CONTRACT_NAMES = (
    "gencluster_request_duration_seconds",
    "gencluster_requests_total",
    "gencluster_queue_depth",
    "gencluster_inflight_requests",
    "gencluster_batch_size",
    "gencluster_batch_size_observed",
    "gencluster_batch_duration_seconds",
    "gencluster_gpu_memory_used_bytes",
    "gencluster_gpu_memory_total_bytes",
    "gencluster_gpu_memory_reserved_bytes",
    "gencluster_gpu_memory_process_bytes",
    "gencluster_gpu_memory_fragmentation_ratio",
    "gencluster_oom_total",
    "gencluster_cache_requests_total",
    # Cost accounting (docs/workload.md, "Cost accounting").
    "gencluster_gpu_seconds_total",
    "gencluster_cpu_seconds_total",
    "gencluster_assets_total",
    "gencluster_asset_bytes_total",
)
OUTCOMES = ("ok", "error", "cache_hit")
CHARGED_OUTCOMES = ("ok", "error")  # a cache hit is charged nothing
ASSET_SOURCES = ("computed", "coalesced", "l1", "redis")


class Metrics:
    """Every contract metric; label values that exist from the start are pre-set to zero."""

    def __init__(self, device_label: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.device_label = device_label
        self.request_duration = Histogram(
            "gencluster_request_duration_seconds",
            "Time to answer POST /v1/generate, by outcome (ok, error, cache_hit).",
            ["outcome"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.requests = Counter(
            "gencluster_requests_total",
            "POST /v1/generate answers by HTTP status code.",
            ["code"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "gencluster_queue_depth",
            "Requests waiting for a batch slot on the device.",
            registry=r,
        )
        self.inflight = Gauge(
            "gencluster_inflight_requests",
            "POST /v1/generate requests being handled now.",
            registry=r,
        )
        self.batch_size = Gauge("gencluster_batch_size", "Current maximum batch size setting.", registry=r)
        self.batch_size_observed = Histogram(
            "gencluster_batch_size_observed",
            "Size of each forward pass that completed.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.batch_duration = Histogram(
            "gencluster_batch_duration_seconds",
            "Device time of each forward pass that completed (the slowdown detector's signal).",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.gpu_used = Gauge(
            "gencluster_gpu_memory_used_bytes",
            "Device memory in use (CUDA: torch allocated; cpu: process RSS minus free heap).",
            ["device"],
            registry=r,
        )
        self.gpu_total = Gauge(
            "gencluster_gpu_memory_total_bytes",
            "Device memory size (CUDA: NVML total; cpu: GENCLUSTER_MEMORY_BUDGET_BYTES).",
            ["device"],
            registry=r,
        )
        self.gpu_reserved = Gauge(
            "gencluster_gpu_memory_reserved_bytes",
            "Memory held by the allocator (CUDA: torch reserved; cpu: process RSS).",
            ["device"],
            registry=r,
        )
        self.gpu_process = Gauge(
            "gencluster_gpu_memory_process_bytes",
            "Device memory NVML attributes to this process (CUDA with NVML only: torch's "
            "reserve plus the CUDA context and other libraries' allocations).",
            ["device"],
            registry=r,
        )
        self.gpu_fragmentation = Gauge(
            "gencluster_gpu_memory_fragmentation_ratio",
            "Share of reserved memory not in use, 0..1.",
            ["device"],
            registry=r,
        )
        self.oom = Counter(
            "gencluster_oom_total", "Forward passes that ran out of device memory.", registry=r
        )
        self.cache_requests = Counter(
            "gencluster_cache_requests_total",
            "Cache lookups by tier (l1, redis) and result.",
            ["tier", "result"],
            registry=r,
        )
        self.gpu_seconds = Counter(
            "gencluster_gpu_seconds_total",
            "Device time charged to requests: each forward pass's time split equally among the "
            "requests in it (OOM'd and retried passes included), by the request's outcome.",
            ["outcome"],
            registry=r,
        )
        self.cpu_seconds = Counter(
            "gencluster_cpu_seconds_total",
            "CPU thread time charged to requests for decoding, meshing and export, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.assets = Counter(
            "gencluster_assets_total",
            "Meshes answered with 200, by source: computed, coalesced (shared a computation), "
            "l1 or redis (cache hits, which cost no device time).",
            ["source"],
            registry=r,
        )
        self.asset_bytes = Counter(
            "gencluster_asset_bytes_total",
            "Bytes of the meshes answered with 200, by source (computed = generated).",
            ["source"],
            registry=r,
        )
        for outcome in OUTCOMES:
            self.request_duration.labels(outcome)
        for outcome in CHARGED_OUTCOMES:
            self.gpu_seconds.labels(outcome)
            self.cpu_seconds.labels(outcome)
        for source in ASSET_SOURCES:
            self.assets.labels(source)
            self.asset_bytes.labels(source)
        self.requests.labels("200")
        for tier in ("l1", "redis"):
            for result in ("hit", "miss"):
                self.cache_requests.labels(tier, result)
        for g in (self.gpu_used, self.gpu_total, self.gpu_reserved, self.gpu_fragmentation):
            g.labels(device_label)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
