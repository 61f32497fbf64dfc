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

CONTRACT_NAMES = (
    "gencluster_request_duration_seconds",
    "gencluster_requests_total",
    "gencluster_queue_depth",
    "gencluster_inflight_requests",
    "gencluster_batch_size",
    "gencluster_batch_size_observed",
    "gencluster_gpu_memory_used_bytes",
    "gencluster_gpu_memory_total_bytes",
    "gencluster_gpu_memory_reserved_bytes",
    "gencluster_gpu_memory_fragmentation_ratio",
    "gencluster_oom_total",
    "gencluster_cache_requests_total",
)


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
        for outcome in ("ok", "error", "cache_hit"):
            self.request_duration.labels(outcome)
        self.requests.labels("200")
        for tier in ("l1", "redis"):
            for result in ("hit", "miss"):
                self.cache_requests.labels(tier, result)
        for g in (self.gpu_used, self.gpu_total, self.gpu_reserved, self.gpu_fragmentation):
            g.labels(device_label)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
