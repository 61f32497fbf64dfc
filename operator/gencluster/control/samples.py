"""One scrape of one pod, as typed data: what the metrics sources produce and the window eats.

Series are keyed by (metric name, sorted label pairs). Only the names of the workload metrics
contract (and dcgm-exporter's frame-buffer gauges) are kept; everything else is dropped at parse
time so that a pod exporting thousands of series costs nothing downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]

# The workload metrics contract (docs/autoscaling.md lists units and labels).
REQUEST_DURATION = "gencluster_request_duration_seconds"
REQUESTS_TOTAL = "gencluster_requests_total"
QUEUE_DEPTH = "gencluster_queue_depth"
INFLIGHT = "gencluster_inflight_requests"
BATCH_SIZE = "gencluster_batch_size"
BATCH_SIZE_OBSERVED = "gencluster_batch_size_observed"
BATCH_DURATION = "gencluster_batch_duration_seconds"  # device time of each forward pass
GPU_MEMORY_USED = "gencluster_gpu_memory_used_bytes"
GPU_MEMORY_TOTAL = "gencluster_gpu_memory_total_bytes"
GPU_MEMORY_RESERVED = "gencluster_gpu_memory_reserved_bytes"
GPU_MEMORY_FRAGMENTATION = "gencluster_gpu_memory_fragmentation_ratio"
GPU_MEMORY_PROCESS = "gencluster_gpu_memory_process_bytes"  # NVML, this process (optional)
OOM_TOTAL = "gencluster_oom_total"
CACHE_REQUESTS = "gencluster_cache_requests_total"
# Cost accounting (docs/workload.md, "Cost accounting"): control/cost.py reads them.
GPU_SECONDS = "gencluster_gpu_seconds_total"
ASSETS_TOTAL = "gencluster_assets_total"
ASSET_BYTES = "gencluster_asset_bytes_total"
# NVIDIA dcgm-exporter frame buffer gauges, in MiB, label `gpu` (and pod/namespace when mapped).
DCGM_FB_USED = "DCGM_FI_DEV_FB_USED"
DCGM_FB_FREE = "DCGM_FI_DEV_FB_FREE"

COUNTERS = frozenset({REQUESTS_TOTAL, OOM_TOTAL, CACHE_REQUESTS, GPU_SECONDS, ASSETS_TOTAL,
                      ASSET_BYTES})
GAUGES = frozenset({
    QUEUE_DEPTH, INFLIGHT, BATCH_SIZE, GPU_MEMORY_USED, GPU_MEMORY_TOTAL, GPU_MEMORY_RESERVED,
    GPU_MEMORY_FRAGMENTATION, GPU_MEMORY_PROCESS, DCGM_FB_USED, DCGM_FB_FREE,
})
HISTOGRAMS = frozenset({REQUEST_DURATION, BATCH_SIZE_OBSERVED, BATCH_DURATION})
KNOWN = COUNTERS | GAUGES | HISTOGRAMS


@dataclass(frozen=True, slots=True)
class HistogramSample:
    """A cumulative histogram: (upper bound, cumulative count) sorted by bound, +Inf last."""

    buckets: tuple[tuple[float, float], ...]
    count: float
    sum: float


@dataclass(frozen=True, slots=True)
class PodSample:
    """What one pod reported at `timestamp` (seconds, the caller's clock)."""

    timestamp: float
    pod: str
    uid: str
    counters: Mapping[SeriesKey, float] = field(default_factory=dict)
    gauges: Mapping[SeriesKey, float] = field(default_factory=dict)
    histograms: Mapping[SeriesKey, HistogramSample] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PodRef:
    """A workload pod the cluster says exists; `ready` as its Ready condition says."""

    name: str
    uid: str
    ip: str | None = None
    ready: bool = True
    unschedulable: str | None = None  # PodScheduled=False/Unschedulable: the scheduler's message


def label(labels: Labels, name: str) -> str | None:
    for k, v in labels:
        if k == name:
            return v
    return None
