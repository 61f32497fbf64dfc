"""The per-cluster rolling window: cumulative scrapes in, per-interval deltas and aggregates out.

Counters and histograms are cumulative on the wire; every figure the decisions use is computed
from the DELTA between two scrapes of the same pod, so a p95 describes the last seconds, not the
pod's lifetime. Counter resets (a value going down) count from zero, as Prometheus' increase()
does; a new pod uid (the pod was replaced) or the first scrape of a pod only sets a baseline.
NaN, infinite and negative values are ignored (the series keeps its previous baseline).

Beyond rates and quantiles it derives each pod's arrival rate (served + shed + backlog growth, right
even when the pod is overloaded) and, from intervals in which a pod was never idle, points of its
service curve (mean batch size, seconds per batch) for control/capacity.py.

The window is a mutable object (it holds thousands of pods' baselines and copying it per tick
would be wasteful) but it does no I/O and reads no clock: `now` comes from the caller.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from . import samples as m
from .custom import CustomValue, PodSeries, evaluate, step_sums
from .custom import key as custom_key
from .quantile import histogram_quantile, merge
from .samples import HistogramSample, PodRef, PodSample, SeriesKey

SERVICE_PER_SIZE = 16  # service points kept per batch size (rounded mean batch)
SERVICE_TTL_S = 1800.0  # a service point older than this no longer describes the pods
LATENCY_OUTCOMES = frozenset({"ok", "error"})  # cache hits skip the GPU: they'd mask saturation


# Beyond 2**53 a float can no longer count in ones, and a few such values summed over pods or
# squared overflow (inf, or OverflowError): no real queue, counter or byte gauge gets there.
MAX_VALUE = float(2**53)


def valid(x: float | None) -> bool:
    """A usable metric value: finite, not negative, and below MAX_VALUE."""
    return x is not None and math.isfinite(x) and 0.0 <= x <= MAX_VALUE


@dataclass(frozen=True, slots=True)
class WindowConfig:
    """How far back the window looks.

    latency_window_s: p95, rates and error ratios are computed over this span of deltas.
    stale_after_s: a pod whose last good scrape is older than this counts as missing.
    history_s: cluster aggregates kept for forecasts and anomaly baselines.
    floor_bucket_s: resolution of the per-pod GPU memory floor used by the leak predictor.
    """

    latency_window_s: float = 30.0
    stale_after_s: float = 45.0
    history_s: float = 900.0
    floor_bucket_s: float = 30.0

    @classmethod
    def for_interval(cls, interval_s: float) -> WindowConfig:
        """Defaults scaled to the control interval (two intervals of latency, three to go stale)."""
        return cls(latency_window_s=max(30.0, 2.0 * interval_s),
                   stale_after_s=max(15.0, 3.0 * interval_s),
                   history_s=max(900.0, 60.0 * interval_s))


@dataclass(slots=True)
class Step:
    """What one pod did between two consecutive scrapes."""

    t: float
    dt: float
    latency: dict[float, float]  # cumulative bucket deltas, seconds, outcomes ok+error
    latency_count: float = 0.0
    requests: float = 0.0
    errors: float = 0.0  # 5xx
    rejected: float = 0.0  # 429: queue full
    cache_hits: float = 0.0
    cache_lookups: float = 0.0
    ooms: float = 0.0
    batches: dict[float, float] = field(default_factory=dict)
    batch_count: float = 0.0  # batches run
    batch_items: float = 0.0  # requests in them
    backlog_delta: float = 0.0  # growth of queued + running requests
    saturated: bool = False  # requests were queued at both ends: the GPU never idled
    batch_seconds: float = 0.0  # device seconds of the forward passes timed (batch duration)
    batch_timed: float = 0.0  # forward passes timed
    queued: bool = False  # requests were queued at the end of the step
    # while custom metrics are wanted: every counter's increase and histogram's delta (during
    # the ingest only), reduced to one sum per selector (custom.step_sums) for the window
    increases: dict[SeriesKey, float] | None = None

    @property
    def arrived(self) -> float:
        """Requests that reached the GPU queue in the step: answered, shed, or still waiting."""
        return self.latency_count + self.rejected + self.backlog_delta
    hist_deltas: dict[SeriesKey, HistogramSample] | None = None
    custom_counts: dict[str, float] | None = None
    custom_hists: dict[str, HistogramSample] | None = None


@dataclass(frozen=True, slots=True)
class PodView:
    """One pod's figures at `now`. None means "no data", never zero."""

    name: str
    uid: str
    ready: bool
    fresh: bool
    age_s: float | None
    p95_ms: float | None  # over the latency window
    p95_last_ms: float | None  # over the last scrape interval only (the batch tuner's signal)
    completed_last: float  # requests completed in the last interval
    rps: float | None
    arrival_rate: float | None  # requests reaching the GPU queue per second (served + shed + backlog)
    queue_depth: float | None
    inflight: float | None
    batch_size: float | None
    batch_fill: float | None  # p90 of the batch sizes actually run in the last interval
    gpu_memory_percent: float | None
    new_ooms: float  # OOMs in the last interval
    memory_floor: tuple[tuple[float, float], ...]  # (bucket start, lowest GPU memory %)
    # The scrape ingested in this update, if any (the change detectors' increments; zero when
    # the pod was not scraped this time, so nothing is counted twice):
    updated: bool = False
    step_s: float = 0.0  # seconds the step covers
    requests_step: float = 0.0  # answers (every code)
    errors_step: float = 0.0  # 5xx answers
    batches_step: float = 0.0  # forward passes (gencluster_batch_size_observed count)
    items_step: float = 0.0  # requests in them
    batch_seconds_step: float = 0.0  # their device seconds (gencluster_batch_duration_seconds)
    batch_timed_step: float = 0.0  # forward passes timed
    stalled_s: float = 0.0  # trailing seconds with requests queued and nothing completed


@dataclass(frozen=True, slots=True)
class ClusterPoint:
    """Cluster aggregates at one tick (kept for `history_s`)."""

    t: float
    p95_ms: float | None
    gpu_memory_percent: float | None
    queue_depth: float | None
    rps: float | None
    error_rate_permille: float | None
    cache_hit_percent: float | None


@dataclass(frozen=True, slots=True)
class WindowView:
    """A read-only snapshot the decisions work from."""

    now: float
    pods: Mapping[str, PodView]
    p95_ms: float | None
    gpu_memory_percent: float | None  # highest among fresh pods
    queue_depth: float | None  # all fresh pods
    inflight: float | None
    rps: float | None
    arrival_rate: float | None  # all fresh pods (see PodView.arrival_rate)
    error_rate_permille: float | None
    cache_hit_percent: float | None
    oom_per_minute: float | None
    pods_reporting: int
    pods_known: int
    restarts: int  # pod restarts seen since the window was created
    history: Sequence[ClusterPoint]
    last_fresh: float | None  # newest good scrape of any pod
    service: Sequence[tuple[float, float]] = ()  # (mean batch, s per batch), last SERVICE_TTL_S
    service_points: Sequence[tuple[float, float, float]] = ()  # the same with their times
    custom: Mapping[str, CustomValue] = field(default_factory=dict)  # by custom.key(...)
    p50_ms: float | None = None  # over the latency window, like p95_ms (the dashboard shows them)
    p99_ms: float | None = None
    # arrivals over each fresh pod's last scrape interval alone, and the seconds they cover:
    # a step in the load shows here one interval after it starts, in arrival_rate over a window
    arrival_recent: float | None = None
    arrival_recent_s: float = 0.0

    def metric(self, name: str) -> float | None:
        """Aggregated metric by its alert-rule name (api.spec.AlertMetric)."""
        return {
            "latencyP95Ms": self.p95_ms,
            "gpuMemoryPercent": self.gpu_memory_percent,
            "queueDepth": self.queue_depth,
            "errorRatePermille": self.error_rate_permille,
            "cacheHitPercent": self.cache_hit_percent,
            "requestsPerSecond": self.rps,
            "oomPerMinute": self.oom_per_minute,
        }.get(name) if name not in self.custom else self.custom[name].value


@dataclass(slots=True)
class _Track:
    uid: str
    last_ts: float
    counters: dict[SeriesKey, float]
    histograms: dict[SeriesKey, HistogramSample]
    gauges: dict[SeriesKey, float]
    steps: deque[Step] = field(default_factory=deque)
    floor: deque[tuple[float, float]] = field(default_factory=deque)
    memory_percent: float | None = None
    custom_gauges: dict[SeriesKey, float] = field(default_factory=dict)  # non-contract gauges


def _increase(cur: float, prev: float | None) -> float:
    """Counter increase since the previous scrape; a decrease means a reset (count from zero)."""
    if prev is None:
        return cur  # the series appeared since the previous scrape of a known pod
    return cur - prev if cur >= prev else cur


def _hist_delta(cur: HistogramSample, prev: HistogramSample | None) -> HistogramSample:
    if prev is None:
        return cur
    prev_b = dict(prev.buckets)
    if cur.count < prev.count or len(prev_b) != len(cur.buckets) or any(
            le not in prev_b or c < prev_b[le] for le, c in cur.buckets):
        return cur  # reset, or new bucket layout: count from zero
    return HistogramSample(tuple((le, c - prev_b[le]) for le, c in cur.buckets),
                           cur.count - prev.count, max(0.0, cur.sum - prev.sum))


def _valid_hist(h: HistogramSample) -> bool:
    return valid(h.count) and all(valid(c) for _, c in h.buckets) and (
        math.isnan(h.sum) is False)


def memory_percent(gauges: Mapping[SeriesKey, float]) -> float | None:
    """Highest GPU memory use among a pod's devices (%), from the contract or dcgm-exporter.

    Per device the largest of torch's allocated bytes (`used`), the allocator's reserve and
    NVML's per-process figure where the workload exports them: memory the caching allocator
    holds, or the CUDA context holds, is as unavailable to the next batch as allocated memory.
    """
    used: dict[str, float] = {}
    total: dict[str, float] = {}
    dcgm_used: dict[str, float] = {}
    dcgm_free: dict[str, float] = {}
    for (name, labels), v in gauges.items():
        if not valid(v):
            continue
        if name in (m.GPU_MEMORY_USED, m.GPU_MEMORY_RESERVED, m.GPU_MEMORY_PROCESS):
            dev = m.label(labels, "device") or ""
            used[dev] = max(used.get(dev, 0.0), v)
        elif name == m.GPU_MEMORY_TOTAL:
            total[m.label(labels, "device") or ""] = v
        elif name == m.DCGM_FB_USED:
            dcgm_used[m.label(labels, "gpu") or m.label(labels, "UUID") or ""] = v
        elif name == m.DCGM_FB_FREE:
            dcgm_free[m.label(labels, "gpu") or m.label(labels, "UUID") or ""] = v
    best: float | None = None
    for dev, u in used.items():
        t = total.get(dev)
        if t is not None and t > 0.0:
            best = max(best or 0.0, 100.0 * u / t)
    if best is None:
        for dev, u in dcgm_used.items():
            f = dcgm_free.get(dev)
            if f is not None and u + f > 0.0:
                best = max(best or 0.0, 100.0 * u / (u + f))
    return None if best is None else min(best, 1000.0)


def _gauge_sum(gauges: Mapping[SeriesKey, float], name: str) -> float | None:
    vals = [v for (n, _), v in gauges.items() if n == name and valid(v)]
    return sum(vals) if vals else None


class Window:
    """Rolling per-cluster window of pod scrapes. Feed it once per control interval."""

    def __init__(self, config: WindowConfig | None = None) -> None:
        self.config = config or WindowConfig()
        self._tracks: dict[str, _Track] = {}
        self._history: deque[ClusterPoint] = deque()
        self._restarts = 0
        self._last_fresh: float | None = None
        # (mean batch size, seconds per batch) seen while pods were saturated: the service model
        self._service = ServicePoints()
        self._updated: set[str] = set()  # pods whose scrape this update ingested as a step
        self._custom: tuple[tuple[str, str], ...] = ()  # (selector, aggregation) wanted
        self._custom_seen: set[str] = set()

    # -- ingest ---------------------------------------------------------------------------------
    def _ingest(self, s: PodSample) -> None:
        tr = self._tracks.get(s.pod)
        counters = {k: v for k, v in s.counters.items() if valid(v)}
        hists = {k: h for k, h in s.histograms.items() if _valid_hist(h)}
        gauges = {k: v for k, v in s.gauges.items() if valid(v)}
        extra: dict[SeriesKey, float] = {}
        if len(gauges) > len(m.GAUGES):  # custom gauges: kept apart, the contract scans stay short
            extra = {k: v for k, v in gauges.items() if k[0] not in m.GAUGES}
            gauges = {k: v for k, v in gauges.items() if k[0] in m.GAUGES}
        if tr is None or tr.uid != s.uid:
            if tr is not None:
                self._restarts += 1  # same name, new pod object: its counters start afresh
            self._tracks[s.pod] = _Track(s.uid, s.timestamp, counters, hists, gauges,
                                         memory_percent=memory_percent(gauges),
                                         custom_gauges=extra)
            self._note_floor(self._tracks[s.pod], s.timestamp)
            self._last_fresh = max(self._last_fresh or s.timestamp, s.timestamp)
            return
        if s.timestamp <= tr.last_ts:
            return  # duplicate or out of order
        step = Step(t=s.timestamp, dt=s.timestamp - tr.last_ts, latency={})
        reset_seen = False
        for key, cur in counters.items():
            prev = tr.counters.get(key)
            if prev is not None and cur < prev:
                reset_seen = True
            inc = _increase(cur, prev)
            name, labels = key
            if self._custom:
                if step.increases is None:
                    step.increases = {}
                step.increases[key] = inc
            if name == m.REQUESTS_TOTAL:
                step.requests += inc
                code = m.label(labels, "code") or ""
                if code.startswith("5"):
                    step.errors += inc
                elif code == "429":
                    step.rejected += inc
            elif name == m.OOM_TOTAL:
                step.ooms += inc
            elif name == m.CACHE_REQUESTS:
                result = m.label(labels, "result")
                if result == "hit":
                    step.cache_hits += inc
        step.cache_lookups = step.cache_hits + self._final_misses(counters, tr.counters)
        for key, h in hists.items():
            name, labels = key
            d = _hist_delta(h, tr.histograms.get(key))
            if self._custom:
                if step.hist_deltas is None:
                    step.hist_deltas = {}
                step.hist_deltas[key] = d
            if name == m.REQUEST_DURATION and m.label(labels, "outcome") in LATENCY_OUTCOMES:
                merge(step.latency, d.buckets)
                step.latency_count += d.count
            elif name == m.BATCH_DURATION:
                step.batch_seconds += d.sum
                step.batch_timed += d.count
            elif name == m.BATCH_SIZE_OBSERVED:
                merge(step.batches, d.buckets)
                step.batch_count += d.count
                step.batch_items += d.sum
        q0, q1 = _gauge_sum(tr.gauges, m.QUEUE_DEPTH), _gauge_sum(gauges, m.QUEUE_DEPTH)
        i0, i1 = _gauge_sum(tr.gauges, m.INFLIGHT), _gauge_sum(gauges, m.INFLIGHT)
        if q0 is not None and q1 is not None:
            step.backlog_delta = (q1 - q0) + ((i1 or 0.0) - (i0 or 0.0))
            step.saturated = q0 >= 1.0 and q1 >= 1.0
        if q1 is not None:
            step.queued = q1 >= 1.0
        if step.batch_timed >= 2.0 and step.batch_count >= 2.0 and step.batch_items > 0.0 \
                and step.batch_seconds > 0.0:
            # the pod times its forward passes: a point at any load, not only when saturated
            self._service.append((s.timestamp, step.batch_items / step.batch_count,
                                  step.batch_seconds / step.batch_timed))
        elif step.saturated and step.batch_count >= 2.0 and step.batch_items > 0.0:
            self._service.append((s.timestamp, step.batch_items / step.batch_count,
                                  step.dt / step.batch_count))
        if reset_seen:
            self._restarts += 1  # the process restarted inside the same pod
        tr.counters.update(counters)
        tr.histograms.update(hists)
        tr.gauges = gauges
        tr.custom_gauges = extra
        tr.last_ts = s.timestamp
        tr.memory_percent = memory_percent(gauges)
        if self._custom:
            step.custom_counts, step.custom_hists = step_sums(
                {metric for metric, _ in self._custom}, step.increases or {},
                step.hist_deltas or {})
            step.increases = step.hist_deltas = None
        tr.steps.append(step)
        self._updated.add(s.pod)
        self._note_floor(tr, s.timestamp)
        self._last_fresh = max(self._last_fresh or s.timestamp, s.timestamp)

    @staticmethod
    def _final_misses(cur: Mapping[SeriesKey, float], prev: Mapping[SeriesKey, float]) -> float:
        """Misses of the last cache tier consulted (redis when present, else l1)."""
        by_tier: dict[str, float] = {}
        for key, v in cur.items():
            name, labels = key
            if name == m.CACHE_REQUESTS and m.label(labels, "result") == "miss":
                tier = m.label(labels, "tier") or "l1"
                by_tier[tier] = by_tier.get(tier, 0.0) + _increase(v, prev.get(key))
        if not by_tier:
            return 0.0
        return by_tier.get("redis", by_tier.get("l1", max(by_tier.values())))

    def _note_floor(self, tr: _Track, t: float) -> None:
        if tr.memory_percent is None:
            return
        start = math.floor(t / self.config.floor_bucket_s) * self.config.floor_bucket_s
        if tr.floor and tr.floor[-1][0] == start:
            tr.floor[-1] = (start, min(tr.floor[-1][1], tr.memory_percent))
        else:
            tr.floor.append((start, tr.memory_percent))
        while tr.floor and tr.floor[0][0] < t - self.config.history_s:
            tr.floor.popleft()

    def _custom_values(self, now: float, pods: Sequence[PodRef]) -> dict[str, CustomValue]:
        fresh = []
        for ref in pods:
            tr = self._tracks.get(ref.name)
            if tr is None or (tr.uid != ref.uid and ref.uid) or \
                    now - tr.last_ts > self.config.stale_after_s:
                continue
            gauges = {**tr.gauges, **tr.custom_gauges} if tr.custom_gauges else tr.gauges
            fresh.append(PodSeries(ref.name, gauges, tr.counters, tr.histograms,
                                   tuple(st.custom_counts or {} for st in tr.steps),
                                   tuple(st.custom_hists or {} for st in tr.steps),
                                   sum(st.dt for st in tr.steps)))
        out = {}
        for metric, aggregation in self._custom:
            k = custom_key(metric, aggregation)
            v = evaluate(metric, aggregation, fresh, k in self._custom_seen)
            if v.kind != "absent":
                self._custom_seen.add(k)
            out[k] = v
        return out

    # -- the one entry point ---------------------------------------------------------------------
    def update(self, now: float, samples: Iterable[PodSample], pods: Sequence[PodRef],
               custom: Sequence[tuple[str, str]] = ()) -> WindowView:
        """Ingest this interval's scrapes; forget pods that no longer exist; return the view.
        `custom`: the (selector, aggregation) pairs of the spec's custom targets and rules."""
        self._updated = set()
        self._custom = tuple(custom)
        for s in samples:
            self._ingest(s)
        present = {p.name for p in pods}
        for gone in [n for n in self._tracks if n not in present]:
            del self._tracks[gone]
        horizon = now - self.config.latency_window_s
        for tr in self._tracks.values():
            while tr.steps and tr.steps[0].t <= horizon:
                tr.steps.popleft()
        view = self._view(now, pods)
        if self._custom:
            view = replace(view, custom=self._custom_values(now, pods))
        self._history.append(ClusterPoint(now, view.p95_ms, view.gpu_memory_percent,
                                          view.queue_depth, view.rps, view.error_rate_permille,
                                          view.cache_hit_percent))
        while self._history and self._history[0].t < now - self.config.history_s:
            self._history.popleft()
        return view

    def _view(self, now: float, pods: Sequence[PodRef]) -> WindowView:
        cfg = self.config
        views: dict[str, PodView] = {}
        lat: dict[float, float] = {}
        reqs = errs = hits = lookups = ooms = 0.0
        rps_sum: float | None = None
        arrival_sum: float | None = None
        recent_sum = recent_s = 0.0
        queue: float | None = None
        inflight: float | None = None
        mem: float | None = None
        fresh_n = 0
        for ref in pods:
            tr = self._tracks.get(ref.name)
            if tr is None or (tr.uid != ref.uid and ref.uid):
                views[ref.name] = PodView(ref.name, ref.uid, ref.ready, False, None, None, None,
                                          0.0, None, None, None, None, None, None, None, 0.0, ())
                continue
            age = now - tr.last_ts
            fresh = age <= cfg.stale_after_s
            steps = tr.steps if fresh else ()
            pod_lat: dict[float, float] = {}
            p_reqs = p_dt = p_arr = 0.0
            for st in steps:
                merge(pod_lat, st.latency.items())
                p_reqs += st.requests
                p_dt += st.dt
                p_arr += st.arrived
                errs += st.errors
                hits += st.cache_hits
                lookups += st.cache_lookups
                ooms += st.ooms
            last = steps[-1] if steps else None
            stalled = 0.0
            for st in reversed(steps):
                if st.latency_count > 0.0 or not st.queued:
                    break
                stalled += st.dt
            new = last if last is not None and ref.name in self._updated else None
            p95 = histogram_quantile(0.95, pod_lat)
            p95_last = histogram_quantile(0.95, last.latency) if last else None
            fill = histogram_quantile(0.9, last.batches) if last else None
            rps = p_reqs / p_dt if p_dt > 0.0 else None
            arrival = max(0.0, p_arr / p_dt) if p_dt > 0.0 else None
            q = _gauge_sum(tr.gauges, m.QUEUE_DEPTH) if fresh else None
            inf = _gauge_sum(tr.gauges, m.INFLIGHT) if fresh else None
            b = _gauge_sum(tr.gauges, m.BATCH_SIZE) if fresh else None
            mp = tr.memory_percent if fresh else None
            views[ref.name] = PodView(
                ref.name, tr.uid, ref.ready, fresh, age,
                None if p95 is None else p95 * 1000.0,
                None if p95_last is None else p95_last * 1000.0,
                last.latency_count if last else 0.0, rps, arrival, q, inf, b, fill, mp,
                last.ooms if last else 0.0, tuple(tr.floor),
                new is not None, new.dt if new else 0.0, new.requests if new else 0.0,
                new.errors if new else 0.0, new.batch_count if new else 0.0,
                new.batch_items if new else 0.0, new.batch_seconds if new else 0.0,
                new.batch_timed if new else 0.0, stalled)
            if not fresh:
                continue
            fresh_n += 1
            merge(lat, pod_lat.items())
            reqs += p_reqs
            if rps is not None:
                rps_sum = (rps_sum or 0.0) + rps
            if arrival is not None:
                arrival_sum = (arrival_sum or 0.0) + arrival
            if last is not None and last.dt > 0.0:
                recent_sum += max(0.0, last.arrived) / last.dt
                recent_s = max(recent_s, last.dt)
            if q is not None:
                queue = (queue or 0.0) + q
            if inf is not None:
                inflight = (inflight or 0.0) + inf
            if mp is not None:
                mem = mp if mem is None else max(mem, mp)
        p95_all = histogram_quantile(0.95, lat)
        service = self._service.live(now - SERVICE_TTL_S)
        minutes = cfg.latency_window_s / 60.0
        return WindowView(
            now=now, pods=views,
            p95_ms=None if p95_all is None else p95_all * 1000.0,
            gpu_memory_percent=mem, queue_depth=queue, inflight=inflight,
            rps=rps_sum if fresh_n else None,
            arrival_rate=arrival_sum if fresh_n else None,
            error_rate_permille=1000.0 * errs / reqs if reqs > 0.0 else None,
            cache_hit_percent=100.0 * hits / lookups if lookups > 0.0 else None,
            oom_per_minute=ooms / minutes if fresh_n else None,
            pods_reporting=fresh_n, pods_known=len(pods), restarts=self._restarts,
            history=tuple(self._history), last_fresh=self._last_fresh,
            service=tuple((b, sec) for _, b, sec in service),
            service_points=service,
            p50_ms=_ms(histogram_quantile(0.5, lat)), p99_ms=_ms(histogram_quantile(0.99, lat)),
            arrival_recent=recent_sum if recent_s > 0.0 else None, arrival_recent_s=recent_s)


class ServicePoints:
    """(time, mean batch, seconds per batch) points, the newest SERVICE_PER_SIZE per batch size:
    a long lull at small batches must not push out what the pods showed at large ones (the
    capacity model would forget every batch size but the lull's)."""

    def __init__(self) -> None:
        self.bins: dict[int, deque[tuple[float, float, float]]] = {}

    def append(self, point: tuple[float, float, float]) -> None:
        self.bins.setdefault(round(point[1]), deque(maxlen=SERVICE_PER_SIZE)).append(point)

    def live(self, since: float) -> tuple[tuple[float, float, float], ...]:
        """The points from `since` on, oldest first (older ones are dropped)."""
        for k in [k for k, d in self.bins.items() if d and d[-1][0] < since]:
            del self.bins[k]
        return tuple(sorted(x for d in self.bins.values() for x in d if x[0] >= since))


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1000.0
