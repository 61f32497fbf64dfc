"""Each pod's maximum batch size: AIMD under the latency SLO (Clipper, NSDI'17), per pod.

Additive increase of `increaseStep` while the pod's p95 over the last interval is under the SLO by
SLO_MARGIN, GPU memory is under MEMORY_HIGH and the batches actually run are full (a bigger limit
on batches that never fill changes nothing but the size of the next burst). Multiplicative
decrease by `decreasePercent` on an SLO breach, GPU memory at or over MEMORY_HIGH, or a new OOM.

Latency here is end to end, so queueing shows in it. Two cases are not the batch size's fault:
- a backlog (more queued than one batch): throughput drains it and grows with the batch size,
  so the size grows (x BACKLOG_GROWTH per interval while memory is MEMORY_HEADROOM under high);
- batches that do not fill the limit: the load, not the limit, sets their size, and a lower
  limit would only cut throughput. The batch size holds; the replica decision adds pods.
Memory pressure and OOMs always cut. Pods differ (other GPUs, fragmentation), hence one size per
pod.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..api.spec import BatchingSpec
from .window import PodView, WindowView

SLO_MARGIN = 0.10  # increase only while p95 < SLO × (1 − margin)
MEMORY_HIGH = 85.0  # GPU memory % at which batches shrink and stop growing
BACKLOG_GROWTH = 1.5  # under a backlog the size grows this much per interval
MEMORY_HEADROOM = 5.0  # under a backlog, grow only while memory is this far below MEMORY_HIGH
MIN_COMPLETED = 5  # fewer completed requests in an interval: latency says nothing, hold
FULL_FRACTION = 0.8  # a batch counts as full at this fraction of the limit
SETTLE_SECONDS = 30.0  # after a latency cut, the latency window must refill before the next


@dataclass(frozen=True, slots=True)
class BatchChange:
    pod: str
    old: int
    new: int
    reason: str


@dataclass(frozen=True, slots=True)
class BatchState:
    sizes: Mapping[str, tuple[str, int]] = field(default_factory=dict)  # pod -> (uid, size)
    default: int | None = None  # what new pods start with (persisted in the runtime ConfigMap)
    settling: Mapping[str, float] = field(default_factory=dict)  # pod -> latency-cut hold until


@dataclass(frozen=True, slots=True)
class BatchDecision:
    sizes: Mapping[str, int]
    changes: tuple[BatchChange, ...]  # AIMD moves (worth an Event)
    pushes: tuple[str, ...]  # pods whose setting must be (re)sent: changed, or drifted
    default: int
    default_changed: bool


def clamp(b: BatchingSpec, size: int) -> int:
    return max(b.min, min(b.max, size))


def aimd_step(b: BatchingSpec, size: int, pod: PodView,
              settling: bool = False) -> tuple[int, str]:
    """One AIMD step for one pod: (new size within the bounds, reason; empty when unchanged).

    settling: the size was cut for latency less than a latency window ago, so the window's p95
    still shows the old size; latency cannot cut again (memory and OOM still can).
    """
    new, why = _aimd(b, clamp(b, size), pod, settling)
    new = clamp(b, new)
    return new, why if new != size else ""


def _aimd(b: BatchingSpec, size: int, pod: PodView, settling: bool) -> tuple[int, str]:
    if b.mode == "fixed":
        return b.initial, "fixed batch size" if size != b.initial else ""
    if not pod.fresh:
        return size, ""
    slo = float(b.latency_slo_ms)
    mem = pod.gpu_memory_percent
    p95 = pod.p95_last_ms if pod.completed_last >= MIN_COMPLETED else None  # last interval
    p95_window = pod.p95_ms  # the latency window: steadier, judges breaches
    queued = pod.queue_depth or 0.0
    cut = 1.0 - b.decrease_percent / 100.0
    smaller = clamp(b, math.floor(size * cut))
    if pod.new_ooms > 0:
        return smaller, f"{pod.new_ooms:.0f} new OOM"
    if mem is not None and mem >= MEMORY_HIGH:
        return smaller, f"GPU memory {mem:.0f}% >= {MEMORY_HIGH:.0f}%"
    if queued > size:  # backlog: latency is queueing; throughput drains it, and grows with b
        if mem is None or mem < MEMORY_HIGH - MEMORY_HEADROOM:
            bigger = max(size + b.increase_step, math.ceil(size * BACKLOG_GROWTH))
            return clamp(b, bigger), f"backlog of {queued:.0f} queued"
        return size, ""
    if p95_window is not None and p95_window > slo and p95 is not None and p95 > slo:
        if settling or (pod.batch_fill is not None and pod.batch_fill < FULL_FRACTION * size):
            return size, ""  # settling, or batches not full: the limit is not what makes them slow
        return smaller, f"p95 {p95_window:.0f}ms over SLO {slo:.0f}ms"
    full = (pod.batch_fill is not None and pod.batch_fill >= FULL_FRACTION * size) or queued >= size
    calm = p95_window is None or p95_window < slo
    if p95 is not None and p95 < slo * (1.0 - SLO_MARGIN) and full and calm:
        return clamp(b, size + b.increase_step), f"p95 {p95:.0f}ms under SLO {slo:.0f}ms"
    return size, ""


def decide_batches(b: BatchingSpec, view: WindowView, state: BatchState,
                   now: float) -> tuple[BatchDecision, BatchState]:
    """Per-pod batch sizes, the changes worth pushing, and the size new pods should start with."""
    default = clamp(b, state.default if state.default is not None else b.initial)
    if b.mode == "fixed":
        default = b.initial
    sizes: dict[str, int] = {}
    kept: dict[str, tuple[str, int]] = {}
    changes: list[BatchChange] = []
    pushes: list[str] = []
    settling: dict[str, float] = {}
    serving: list[int] = []  # sizes of pods measured this interval: the default's evidence
    for pod in view.pods.values():
        known = state.sizes.get(pod.name)
        if known is not None and known[0] == pod.uid:
            size = known[1]
        elif pod.batch_size is not None and pod.batch_size >= 1:
            size = clamp(b, int(pod.batch_size))  # what the pod runs (e.g. operator restarted)
        else:
            size = default
        until = state.settling.get(pod.name, -math.inf)
        new, why = aimd_step(b, size, pod, settling=now < until)
        new = clamp(b, new)
        if new != size and why:
            changes.append(BatchChange(pod.name, size, new, why))
            if why.startswith("p95") and new < size:
                until = now + SETTLE_SECONDS
        if now < until:
            settling[pod.name] = until
        if pod.fresh and pod.ready and (new != size or pod.batch_size is None
                                        or int(pod.batch_size) != new):
            pushes.append(pod.name)
        sizes[pod.name] = new
        kept[pod.name] = (pod.uid, new)
        if pod.fresh:
            serving.append(new)
    if b.mode != "fixed" and serving:
        # Lower median of what serving pods found: new pods start conservative. Pods still
        # starting only carry the old default, so they do not hold it in place.
        ordered = sorted(serving)
        default = ordered[(len(ordered) - 1) // 2]
    decision = BatchDecision(sizes, tuple(changes), tuple(pushes), default,
                             default != state.default)
    return decision, BatchState(kept, default, settling)
