"""A discrete-time model of one GenerationCluster: 1 s ticks, continuous time inside a tick.

Arrivals (the trace's count for each second, spread uniformly within it, identical for every
policy) are routed at random to ready pods, as a Service does. Each pod serves one batch at a time:
when idle it takes min(batch size, queued) requests (dynamic batching; the few-ms queue delay is
ignored). A batch of b takes t(b) = a + c·b seconds: a fixed cost per batch plus a smaller cost per
item, so bigger batches raise throughput (b / t(b)) and latency together, as on a GPU. GPU memory
is weights + leak + per-item activations × b (in % of the device); a batch that does not fit is
an OOM (its requests fail with 500); when even one item does not fit, the process crashes and
restarts (queued requests are lost, counters restart from zero, the leak is gone). A pod is ready
30-60 s after it is created; a removed pod stops getting requests, finishes its queue, then goes.
Pods hold a GPU from creation to removal (gpu_seconds). Queues hold workload.queueMax requests;
beyond that, 429.

Pods expose the same metrics contract as the real workload (`sample()` builds a PodSample), so the
gencluster policy runs the real window and decisions on them.

Faults (the trace's optional columns, set on the server each tick): `slowdown` multiplies every
batch's service time, `error_fraction` fails that share of completed requests with a 500, and a
pod whose `stuck` flag is set keeps accepting requests (and answering 429 once its queue is full)
but starts and finishes nothing until the flag clears. `service_jitter` (a lognormal sigma, 0 by
default) makes batch times noisy as on a real GPU; the incident corpus uses it.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field

from ..control import samples as m
from ..control.samples import HistogramSample, PodRef, PodSample, SeriesKey

LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0,
                  15.0, 20.0, 30.0, 60.0)
BATCH_BOUNDS = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128)
BATCH_SECONDS_BOUNDS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
GIB = 1024.0**3


@dataclass(frozen=True)
class ModelParams:
    """The simulated GPU service (docs/autoscaling.md#simulator discusses the choices)."""

    batch_base_s: float = 0.4  # a: fixed cost of one batch
    batch_item_s: float = 0.04  # c: cost of each item in it
    memory_total_gib: float = 16.0
    weights_percent: float = 50.0
    item_percent: float = 1.2  # activations per item in the running batch
    start_delay_s: tuple[float, float] = (30.0, 60.0)
    restart_delay_s: float = 20.0  # container restart after a crash
    oom_fail_s: float = 0.05  # an OOM fails the batch quickly
    service_jitter: float = 0.0  # lognormal sigma of each batch's service time (0: exact)

    def batch_seconds(self, b: int) -> float:
        return self.batch_base_s + self.batch_item_s * b

    def throughput(self, b: int) -> float:
        """Requests per second of one saturated pod at batch size b."""
        return b / self.batch_seconds(b)


@dataclass(eq=False)
class SimPod:
    name: str
    uid: str
    created: float
    ready_at: float
    batch: int
    queue: deque[float] = field(default_factory=deque)
    busy_until: float | None = None
    busy_since: float = 0.0
    running: list[float] = field(default_factory=list)
    running_ok: bool = True
    leak: float = 0.0
    draining: bool = False
    restarting_until: float | None = None
    # cumulative metrics (reset when the process restarts)
    codes: dict[str, int] = field(default_factory=dict)
    lat_ok: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    lat_err: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    lat_sum_ok: float = 0.0
    lat_sum_err: float = 0.0
    batches: list[int] = field(default_factory=lambda: [0] * (len(BATCH_BOUNDS) + 1))
    batch_sum: float = 0.0
    batch_secs: list[int] = field(default_factory=lambda: [0] * (len(BATCH_SECONDS_BOUNDS) + 1))
    batch_secs_sum: float = 0.0
    stuck: bool = False  # a fault: accepts requests, completes nothing, stays Ready
    ooms: int = 0
    busy_tick: float = 0.0  # busy seconds in the current tick
    util: deque[float] = field(default_factory=lambda: deque(maxlen=180))  # busy fraction/s

    def ready(self, t: float) -> bool:
        return t >= self.ready_at and self.restarting_until is None

    def memory_percent(self, p: ModelParams) -> float:
        return p.weights_percent + self.leak + p.item_percent * len(self.running)

    def sample(self, t: float, p: ModelParams) -> PodSample:
        """The pod's /metrics at time t, as the workload would export them."""
        counters: dict[SeriesKey, float] = {
            (m.REQUESTS_TOTAL, (("code", c),)): float(v) for c, v in self.codes.items()}
        counters[(m.OOM_TOTAL, ())] = float(self.ooms)
        hists = {
            (m.REQUEST_DURATION, (("outcome", "ok"),)): _hist(LATENCY_BOUNDS, self.lat_ok,
                                                             self.lat_sum_ok),
            (m.REQUEST_DURATION, (("outcome", "error"),)): _hist(LATENCY_BOUNDS, self.lat_err,
                                                                self.lat_sum_err),
            (m.BATCH_SIZE_OBSERVED, ()): _hist(BATCH_BOUNDS, self.batches, self.batch_sum),
            (m.BATCH_DURATION, ()): _hist(BATCH_SECONDS_BOUNDS, self.batch_secs,
                                          self.batch_secs_sum),
        }
        total = p.memory_total_gib * GIB
        dev = (("device", "cuda:0"),)
        gauges: dict[SeriesKey, float] = {
            (m.QUEUE_DEPTH, ()): float(len(self.queue)),
            (m.INFLIGHT, ()): float(len(self.running)),
            (m.BATCH_SIZE, ()): float(self.batch),
            (m.GPU_MEMORY_USED, dev): total * min(100.0, self.memory_percent(p)) / 100.0,
            (m.GPU_MEMORY_TOTAL, dev): total,
        }
        return PodSample(t, self.name, self.uid, counters, gauges, hists)

    def ref(self, t: float) -> PodRef:
        return PodRef(self.name, self.uid, f"sim/{self.name}", self.ready(t))


def _hist(bounds: tuple[float, ...], counts: list[int], total: float) -> HistogramSample:
    running = 0
    out = []
    for le, c in zip((*bounds, math.inf), counts, strict=True):
        running += c
        out.append((float(le), float(running)))
    return HistogramSample(tuple(out), float(running), total)


@dataclass
class Recorder:
    """Every request's fate, for the run's figures."""

    arrival_second: list[int] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)  # inf when dropped or failed
    ooms: int = 0
    crashes: int = 0
    exhaustions: list[float] = field(default_factory=list)  # times of OOMs and crashes

    def done(self, arrival: float, latency: float) -> None:
        self.arrival_second.append(int(arrival))
        self.latency.append(latency)


class PodServer:
    """Advances one pod through one tick."""

    def __init__(self, params: ModelParams, queue_max: int, rec: Recorder, seed: int = 0) -> None:
        self.p = params
        self.queue_max = queue_max
        self.rec = rec
        self.rng = random.Random(seed)
        self.slowdown = 1.0  # faults of the current tick (set by the run loop)
        self.error_fraction = 0.0

    def _start(self, pod: SimPod, s: float) -> None:
        p = self.p
        k = min(pod.batch, len(pod.queue))
        if k <= 0:
            pod.busy_until = None
            return
        if p.weights_percent + pod.leak + p.item_percent > 100.0:
            self._crash(pod, s)
            return
        items = [pod.queue.popleft() for _ in range(k)]
        pod.running = items
        pod.busy_since = s
        if p.weights_percent + pod.leak + p.item_percent * k > 100.0:
            pod.ooms += 1
            self.rec.ooms += 1
            self.rec.exhaustions.append(s)
            pod.running_ok = False
            pod.busy_until = s + p.oom_fail_s
        else:
            pod.running_ok = True
            secs = p.batch_seconds(k) * self.slowdown
            if p.service_jitter > 0.0:
                secs *= math.exp(self.rng.gauss(0.0, p.service_jitter))
            pod.busy_until = s + secs
            pod.batches[bisect_left(BATCH_BOUNDS, k)] += 1
            pod.batch_sum += k
            pod.batch_secs[bisect_left(BATCH_SECONDS_BOUNDS, secs)] += 1
            pod.batch_secs_sum += secs

    def _finish(self, pod: SimPod, e: float, tick: float) -> None:
        pod.busy_tick += e - max(pod.busy_since, tick)
        ok_batch = pod.running_ok
        fail_p = self.error_fraction if ok_batch else 0.0
        for a in pod.running:
            ok = ok_batch and not (fail_p > 0.0 and self.rng.random() < fail_p)
            code = "200" if ok else "500"
            lat = e - a
            i = bisect_left(LATENCY_BOUNDS, lat)
            if ok:
                pod.lat_ok[i] += 1
                pod.lat_sum_ok += lat
                self.rec.done(a, lat)
            else:
                pod.lat_err[i] += 1
                pod.lat_sum_err += lat
                self.rec.done(a, math.inf)
            pod.codes[code] = pod.codes.get(code, 0) + 1
        pod.running = []
        pod.busy_until = None

    def _crash(self, pod: SimPod, s: float) -> None:
        self.rec.crashes += 1
        self.rec.exhaustions.append(s)
        for a in (*pod.running, *pod.queue):
            self.rec.done(a, math.inf)
        pod.queue.clear()
        pod.running = []
        pod.busy_until = None
        pod.leak = 0.0
        pod.restarting_until = s + self.p.restart_delay_s
        pod.codes = {}
        pod.lat_ok = [0] * (len(LATENCY_BOUNDS) + 1)
        pod.lat_err = [0] * (len(LATENCY_BOUNDS) + 1)
        pod.lat_sum_ok = pod.lat_sum_err = 0.0
        pod.batches = [0] * (len(BATCH_BOUNDS) + 1)
        pod.batch_sum = 0.0
        pod.batch_secs = [0] * (len(BATCH_SECONDS_BOUNDS) + 1)
        pod.batch_secs_sum = 0.0
        pod.ooms = 0

    def tick(self, pod: SimPod, t: float, arrivals: list[float], leak_per_s: float) -> None:
        """Serve [t, t+1): arrivals (sorted) join the queue, batches start and finish."""
        end = t + 1.0
        pod.busy_tick = 0.0
        if pod.restarting_until is not None:
            for a in arrivals:
                self.rec.done(a, math.inf)
            if pod.restarting_until <= end:
                pod.restarting_until = None
            pod.util.append(0.0)
            return
        pod.leak += leak_per_s
        if pod.stuck:  # hung: requests queue (429 once full), nothing starts or finishes
            for a in arrivals:
                if len(pod.queue) >= self.queue_max:
                    pod.codes["429"] = pod.codes.get("429", 0) + 1
                    self.rec.done(a, math.inf)
                else:
                    pod.queue.append(a)
            if pod.busy_until is not None:
                pod.busy_until += 1.0
            pod.util.append(1.0 if pod.busy_until is not None else 0.0)
            return
        i, n = 0, len(arrivals)
        while True:
            done = pod.busy_until if pod.busy_until is not None else math.inf
            nxt = arrivals[i] if i < n else math.inf
            if done >= end and nxt >= end:
                break
            if done <= nxt:
                self._finish(pod, done, t)
                if pod.queue:
                    self._start(pod, done)
                    if pod.restarting_until is not None:
                        break
            else:
                i += 1
                if len(pod.queue) >= self.queue_max:
                    pod.codes["429"] = pod.codes.get("429", 0) + 1
                    self.rec.done(nxt, math.inf)
                    continue
                pod.queue.append(nxt)
                if pod.busy_until is None:
                    self._start(pod, nxt)
                    if pod.restarting_until is not None:
                        break
        for a in arrivals[i:]:  # crashed mid-tick: the rest are refused
            self.rec.done(a, math.inf)
        if pod.busy_until is not None:
            pod.busy_tick += end - max(pod.busy_since, t)
        pod.util.append(min(1.0, pod.busy_tick))
