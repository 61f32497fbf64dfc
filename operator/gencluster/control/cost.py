"""What a GenerationCluster costs: GPU-hours, money, cost per 1,000 requests and per GB generated,
utilisation, and the saving against a static deployment sized for the observed peak.

Two halves, both without I/O or clocks (`now` comes from the caller):
- `CostLedger` accumulates, tick by tick, what was *provisioned* (pods that existed × GPUs per
  pod × seconds, whether starting, serving or idle: a pod holds its GPU from creation) and what
  was *used*, from the workload's cost counters (docs/workload.md, "Cost accounting"):
  busy device seconds (`gencluster_gpu_seconds_total`), 200s (`gencluster_assets_total`) and
  bytes generated (`gencluster_asset_bytes_total{source="computed"}`), as deltas between scrapes
  of the same pod (a counter reset counts from zero, a new pod uid only sets a baseline, as in the
  metric window). It keeps one-minute buckets for a day.
- `cost_report(totals, prices, per-pod resources)` turns one span of those buckets into the
  figures; `cost_status` formats the last hour and the last day for `status.cost`.

The static deployment compared against has, for the whole span, as many pods as the most that
existed at any tick of it: what a team would run without an autoscaler to survive the same peak.
saving = 1 - provisioned / static. Both sides are priced alike (GPU, and CPU/memory requests
when priced), so the saving is the same in GPU-hours and in money.

The operator's own restarts start the ledger afresh (`coveredSeconds` says how much of the span
was seen); the simulator feeds the same ledger, so `gencluster simulate` reports cost the same way.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ..api.spec import CostSpec, GenerationClusterSpec
from . import samples as m
from .samples import PodRef, PodSample, SeriesKey
from .window import _increase, valid

HOUR = 3600.0
DAY = 86400.0
BUCKET_S = 60.0
GIB = 1024.0**3
GB = 1e9  # "per GB generated": decimal gigabytes, as storage and egress are billed

_QUANTITY = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_SUFFIX = {"": 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "Ki": 1024.0, "Mi": 1024.0**2, "Gi": 1024.0**3, "Ti": 1024.0**4,
           "Pi": 1024.0**5}


def quantity(text: str | None) -> float | None:
    """A Kubernetes quantity ('500m', '2', '4Gi', '1e3') as a number; None when absent or odd."""
    if not text:
        return None
    match = _QUANTITY.match(text.strip())
    if match is None:
        return None
    number, suffix = match.groups()
    try:
        value = float(number)
    except ValueError:
        return None
    if suffix.startswith(("e", "E")):
        try:
            return value * 10.0 ** int(suffix[1:])
        except ValueError:
            return None
    scale = _SUFFIX.get(suffix)
    return None if scale is None or not math.isfinite(value) else value * scale


def price(text: str | None) -> float | None:
    """A decimal price string from the spec (already pattern-checked at admission)."""
    if text is None:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return float(value) if value.is_finite() and value >= 0 else None


@dataclass(slots=True)
class Bucket:
    """One minute of observation."""

    start: float
    seconds: float = 0.0  # wall time observed
    pod_seconds: float = 0.0  # pods that existed × seconds
    busy_seconds: float = 0.0  # device seconds the pods reported busy
    requests: float = 0.0  # 200s (gencluster_assets_total, every source)
    computed: float = 0.0  # of which computed (not cache hits or coalesced)
    bytes_generated: float = 0.0  # gencluster_asset_bytes_total{source="computed"}
    peak_pods: int = 0


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over a span of buckets."""

    seconds: float = 0.0
    pod_seconds: float = 0.0
    busy_seconds: float = 0.0
    requests: float = 0.0
    computed: float = 0.0
    bytes_generated: float = 0.0
    peak_pods: int = 0


@dataclass(slots=True)
class _Baseline:
    uid: str
    counters: dict[SeriesKey, float]


@dataclass
class CostLedger:
    """Per-cluster accumulator; feed it once per control tick."""

    keep_s: float = DAY
    bucket_s: float = BUCKET_S
    max_gap_s: float = 120.0  # a longer gap between ticks (the operator was down) is not counted
    buckets: deque[Bucket] = field(default_factory=deque)
    started: float | None = None
    _last_tick: float | None = None
    _pods: dict[str, _Baseline] = field(default_factory=dict)

    def observe(self, now: float, samples: Iterable[PodSample], pods: Sequence[PodRef]) -> None:
        """One tick: the pods that exist now were provisioned since the previous tick, and
        their scrapes say what they did meanwhile. Both go to the bucket of the interval's
        start (the previous tick), so a span [a, b] holds exactly the intervals that began in it."""
        if self.started is None:
            self.started = now
        if self._last_tick is not None and now <= self._last_tick:
            return  # duplicate or out of order
        acc = self.buckets[-1] if self.buckets and self._last_tick is not None else None
        if acc is not None and self._last_tick is not None:
            dt = now - self._last_tick
            if dt <= self.max_gap_s:
                acc.seconds += dt
                acc.pod_seconds += len(pods) * dt
            else:
                acc = None  # the operator was away: neither time nor work is counted
        for s in samples:
            self._ingest(acc, s)
        present = {p.name for p in pods}
        for gone in [n for n in self._pods if n not in present]:
            del self._pods[gone]
        bucket = self._bucket(now)
        bucket.peak_pods = max(bucket.peak_pods, len(pods))
        self._last_tick = now
        while self.buckets and self.buckets[0].start < now - self.keep_s - self.bucket_s:
            self.buckets.popleft()

    def _bucket(self, now: float) -> Bucket:
        start = math.floor(now / self.bucket_s) * self.bucket_s
        if not self.buckets or self.buckets[-1].start < start:
            self.buckets.append(Bucket(start))
        return self.buckets[-1]

    def _ingest(self, bucket: Bucket | None, s: PodSample) -> None:
        counters = {k: v for k, v in s.counters.items()
                    if k[0] in (m.GPU_SECONDS, m.ASSETS_TOTAL, m.ASSET_BYTES) and valid(v)}
        base = self._pods.get(s.pod)
        if base is None or base.uid != s.uid:
            self._pods[s.pod] = _Baseline(s.uid, counters)  # first sight: a baseline only
            return
        if bucket is None:  # after a gap: a new baseline, no work counted
            base.counters.update(counters)
            return
        for key, cur in counters.items():
            inc = _increase(cur, base.counters.get(key))
            name, labels = key
            if name == m.GPU_SECONDS:
                bucket.busy_seconds += inc
            elif name == m.ASSETS_TOTAL:
                bucket.requests += inc
                if m.label(labels, "source") == "computed":
                    bucket.computed += inc
            elif name == m.ASSET_BYTES and m.label(labels, "source") == "computed":
                bucket.bytes_generated += inc
        base.counters.update(counters)

    def totals(self, now: float, span_s: float) -> Totals:
        """Sums over the buckets that start within [now - span_s, now]."""
        picked = [b for b in self.buckets if now - span_s - 1e-9 <= b.start <= now]
        return Totals(
            seconds=sum(b.seconds for b in picked),
            pod_seconds=sum(b.pod_seconds for b in picked),
            busy_seconds=sum(b.busy_seconds for b in picked),
            requests=sum(b.requests for b in picked),
            computed=sum(b.computed for b in picked),
            bytes_generated=sum(b.bytes_generated for b in picked),
            peak_pods=max((b.peak_pods for b in picked), default=0),
        )


@dataclass(frozen=True, slots=True)
class Prices:
    """Per-hour prices that apply to one pod's resources (None: not priced)."""

    currency: str | None = None
    gpu_hour: float | None = None
    cpu_core_hour: float | None = None
    memory_gib_hour: float | None = None

    @classmethod
    def from_spec(cls, cost: CostSpec | None) -> Prices:
        if cost is None:
            return cls()
        return cls(cost.currency, price(cost.gpu_price()), price(cost.cpu_core_hour_price),
                   price(cost.memory_gi_b_hour_price))


@dataclass(frozen=True, slots=True)
class PodShape:
    """What one workload pod holds: GPUs, CPU cores and GiB of memory requested."""

    gpus: int = 1
    cpu_cores: float = 0.0
    memory_gib: float = 0.0

    @classmethod
    def from_spec(cls, spec: GenerationClusterSpec) -> PodShape:
        req = spec.workload.resources.requests
        mem = quantity(req.get("memory"))
        return cls(spec.workload.gpus_per_replica, quantity(req.get("cpu")) or 0.0,
                   (mem or 0.0) / GIB)

    def hourly(self, prices: Prices) -> float | None:
        """Price of one pod for one hour; None without a GPU price (or, with no GPU, any price)."""
        parts = [(self.gpus, prices.gpu_hour), (self.cpu_cores, prices.cpu_core_hour),
                 (self.memory_gib, prices.memory_gib_hour)]
        if prices.gpu_hour is None and not any(q and p is not None for q, p in parts[1:]):
            return None
        return sum(q * p for q, p in parts if p is not None and q)


@dataclass(frozen=True, slots=True)
class CostReport:
    """The figures of one span; money is None without prices, ratios None without data."""

    covered_seconds: float
    gpu_hours: float  # provisioned
    busy_gpu_hours: float
    utilization: float | None  # busy / provisioned, 0..1 (can exceed 1 only through bad data)
    requests: float
    computed: float
    gigabytes_generated: float
    cost: float | None
    per_thousand_requests: float | None
    per_gigabyte: float | None
    static_peak_pods: int
    static_gpu_hours: float
    static_cost: float | None
    saving: float | None  # 1 - provisioned / static, 0..1


def cost_report(t: Totals, prices: Prices, shape: PodShape) -> CostReport:
    """Pure: the figures of one span of totals."""
    gpus = max(0, shape.gpus)
    gpu_hours = t.pod_seconds * gpus / HOUR
    busy_gpu_hours = t.busy_seconds * gpus / HOUR
    pod_hours = t.pod_seconds / HOUR
    static_pod_hours = t.peak_pods * t.seconds / HOUR
    utilization = (t.busy_seconds / t.pod_seconds) if t.pod_seconds > 0 else None
    hourly = shape.hourly(prices)
    cost = None if hourly is None else pod_hours * hourly
    static_cost = None if hourly is None else static_pod_hours * hourly
    # Per request / per GB only once there is at least one of them (a count below one is noise).
    per_k = cost * 1000.0 / t.requests if cost is not None and t.requests >= 1.0 else None
    gigabytes = t.bytes_generated / GB
    per_gb = cost / gigabytes if cost is not None and t.bytes_generated >= 1.0 else None
    saving = 1.0 - pod_hours / static_pod_hours if static_pod_hours > 0 else None
    return CostReport(t.seconds, gpu_hours, busy_gpu_hours, utilization, t.requests, t.computed,
                      gigabytes, cost, per_k, per_gb, t.peak_pods, static_pod_hours * gpus,
                      static_cost, None if saving is None else max(0.0, saving))


def _money(x: float | None) -> str | None:
    return None if x is None else f"{x:.4f}"


def _hours(x: float) -> str:
    return f"{x:.6f}"  # one 20 ms forward pass is 5.6e-6 GPU-hours


def _percent(x: float | None) -> int | None:
    return None if x is None else round(100.0 * x)


def window_status(r: CostReport) -> dict[str, Any]:
    """One span as status.cost.lastHour / lastDay (integers and decimal strings only)."""
    out: dict[str, Any] = {
        "coveredSeconds": round(r.covered_seconds),
        "gpuHours": _hours(r.gpu_hours),
        "busyGpuHours": _hours(r.busy_gpu_hours),
        "utilizationPercent": _percent(r.utilization),
        "requests": round(r.requests),
        "computedRequests": round(r.computed),
        "gigabytesGenerated": f"{r.gigabytes_generated:.6f}",
        "cost": _money(r.cost),
        "perThousandRequests": _money(r.per_thousand_requests),
        "perGigabyte": _money(r.per_gigabyte),
        "staticPeakReplicas": r.static_peak_pods,
        "staticGpuHours": _hours(r.static_gpu_hours),
        "staticCost": _money(r.static_cost),
        "savingPercent": _percent(r.saving),
    }
    return {k: v for k, v in out.items() if v is not None}


def cost_status(spec: GenerationClusterSpec, ledger: CostLedger,
                now: float) -> tuple[dict[str, Any], CostReport, CostReport]:
    """status.cost for the last hour and the last day, and the two reports (for metrics)."""
    prices = Prices.from_spec(spec.cost)
    shape = PodShape.from_spec(spec)
    hour = cost_report(ledger.totals(now, HOUR), prices, shape)
    day = cost_report(ledger.totals(now, DAY), prices, shape)
    status: dict[str, Any] = {
        "lastHour": window_status(hour),
        "lastDay": window_status(day),
    }
    headline = {
        "currency": prices.currency if prices.gpu_hour is not None else None,
        "gpuHourPrice": spec.cost.gpu_price() if spec.cost is not None else None,
        "perThousandRequests": _money(hour.per_thousand_requests),
        "perGigabyte": _money(hour.per_gigabyte),
        "utilizationPercent": _percent(hour.utilization),
        "savingPercent": _percent(day.saving),
    }
    status.update({k: v for k, v in headline.items() if v is not None})
    return status, hour, day



SIM_GPU_HOUR_PRICE = "2.50"  # the simulator's price when the spec has no spec.cost (illustrative)


def run_cost(spec: GenerationClusterSpec, seconds: float, pod_seconds: float,
             busy_seconds: float, peak_pods: int, requests: float) -> dict[str, Any]:
    """The cost fields of one `gencluster simulate` result, by the same report as status.cost:
    the spec's prices, or SIM_GPU_HOUR_PRICE per GPU-hour when it has none."""
    cost = spec.cost or CostSpec(gpu_hour_price=SIM_GPU_HOUR_PRICE)
    r = cost_report(Totals(seconds=seconds, pod_seconds=pod_seconds, busy_seconds=busy_seconds,
                           requests=requests, computed=requests, peak_pods=peak_pods),
                    Prices.from_spec(cost), PodShape.from_spec(spec))
    return {
        "currency": cost.currency,
        "gpu_hour_price": cost.gpu_price(),
        "gpu_hours": round(r.gpu_hours, 3),
        "busy_gpu_hours": round(r.busy_gpu_hours, 3),
        "utilization_percent": _percent(r.utilization),
        "cost": None if r.cost is None else round(r.cost, 4),
        "cost_per_1k_requests": None if r.per_thousand_requests is None
        else round(r.per_thousand_requests, 4),
        "static_peak_replicas": r.static_peak_pods,
        "static_cost": None if r.static_cost is None else round(r.static_cost, 4),
        "saving_percent": _percent(r.saving),
    }
