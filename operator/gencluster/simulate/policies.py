"""The policies a simulation compares: gencluster (the operator's own decisions) and baselines.

- gencluster: scrape -> Window -> control.cycle.decide, every spec.autoscaling.intervalSeconds,
  exactly as the operator's daemon does; batch sizes tuned per pod.
- hpa: Kubernetes' HPA v2 as it runs by default (15 s sync, 10 % tolerance, scaleUp
  max(4 pods, 100 %) per 15 s, scaleDown 100 % per 15 s after a 300 s stabilisation window,
  the replica calculator's rules: pods not yet running are ignored and count as 0 on a scale-up,
  running pods without a sample count as 0 on a scale-up and as the target on a scale-down,
  no change when those rules flip the direction) on the custom metric users give it for an
  inference server: requests in flight + queued per pod (a Pods metric, AverageValue target),
  through Prometheus (scraped every PROM_SCRAPE_S) and the adapter, so the HPA reads a sample up
  to PROM_SCRAPE_S old.
- keda: a ScaledObject with the prometheus scaler, query sum(queued + running) over the pods,
  `threshold` per pod (the HPA's External AverageValue: desired = ceil(total / threshold) once
  the ratio to the current replicas leaves the tolerance), the same HPA behaviour defaults,
  pollingInterval 30 s for activation and cooldownPeriod 300 s before scaling to zero (both only
  matter with replicas.min 0), activationThreshold 0.
- kpa: Knative's KPA decider (pkg/autoscaler/scaling/autoscaler.go): concurrency (in flight +
  queued) summed over ready pods every second; stable window 60 s and panic window 6 s
  averages; desired = ceil(average / (target x 70 %)) within [ready / 2, ready x 1000] per 2 s
  tick; panic once the panic desire reaches 2x the ready pods, during which it never scales
  down, ending 60 s after the last over-threshold tick; a new autoscaler over more than one
  pod starts in panic.
- fixed:N: N pods.
Baselines run a fixed batch size (batching.initial, or --baseline-batch; `best` sweeps it, see
simulate/sweep.py) and their per-pod target is one full batch: `threshold` / AverageValue /
container concurrency target = that batch size.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from ..api.spec import GenerationClusterSpec, ScaleDownRule, ScaleUpRule, custom_series
from ..control.alerts import Transition
from ..control.batching import BatchState
from ..control.cycle import ControlState, decide
from ..control.replicas import ReplicaState, behave, pod_metric_proposal
from ..control.window import Window, WindowConfig
from .model import ModelParams, SimPod
from .traces import Trace

HPA_SYNC_S = 15
HPA_TOLERANCE = 0.10
PROM_SCRAPE_S = 15
PROM_SCRAPE_OFFSET_S = 7  # scrapes at 7, 22, 37 ... s; the HPA syncs at 0, 15, 30 ...
KEDA_POLLING_S = 30
KEDA_COOLDOWN_S = 300
KEDA_ACTIVATION = 0.0
HPA_UP = ScaleUpRule(stabilization_seconds=0, max_pods=4, max_percent=100, period_seconds=15)
HPA_DOWN = ScaleDownRule(stabilization_seconds=300, max_pods=1000, max_percent=100,
                         period_seconds=15)
KPA_TICK_S = 2
KPA_STABLE_S = 60
KPA_PANIC_S = 6
KPA_PANIC_THRESHOLD = 2.0  # 200 %
KPA_UTILISATION = 0.7
KPA_MAX_UP_RATE = 1000.0
KPA_MAX_DOWN_RATE = 2.0


@dataclass
class Action:
    replicas: int | None = None
    batches: dict[str, int] = field(default_factory=dict)
    default_batch: int | None = None
    transitions: tuple[Transition, ...] = ()


class Policy:
    name = "policy"
    interval = 15

    def initial(self, spec: GenerationClusterSpec, trace: Trace, params: ModelParams) -> int:
        """Warm start: the pods the first minute's load needs at the policy's starting batch
        size, 75 % busy."""
        first = trace.requests[:60]
        rate = sum(first) / max(1, len(first))
        need = math.ceil(rate / (0.75 * params.throughput(self.default_batch(spec))))
        return max(spec.replicas.min, min(spec.replicas.max, need))

    def default_batch(self, spec: GenerationClusterSpec) -> int:
        return spec.batching.initial

    def observe(self, t: float, pods: list[SimPod]) -> None:
        """Called at the end of every simulated second (per-second metric collectors)."""

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        raise NotImplementedError


class Gencluster(Policy):
    name = "gencluster"

    def __init__(self, spec: GenerationClusterSpec, params: ModelParams) -> None:
        self.spec, self.params = spec, params
        self.interval = spec.autoscaling.interval_seconds
        self.window = Window(WindowConfig.for_interval(self.interval))
        self.state = ControlState(batches=BatchState(default=spec.batching.initial))

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        live = [p for p in pods if not p.draining]
        samples = [p.sample(t, self.params) for p in live if p.ready(t)]
        view = self.window.update(t, samples, [p.ref(t) for p in live], custom_series(self.spec))
        d, self.state = decide(self.spec, view, current, self.state, t)
        return Action(d.replicas.desired, dict(d.batches.sizes), d.batches.default,
                      d.alerts.transitions)


def concurrency(p: SimPod) -> int:
    """Requests in a pod: queued + running (what queue-proxy and the in-flight gauges count)."""
    return len(p.queue) + len(p.running)


class _HpaLike(Policy):
    interval = HPA_SYNC_S

    def __init__(self, spec: GenerationClusterSpec, batch: int | None) -> None:
        self.spec = spec
        self.batch = batch if batch is not None else spec.batching.initial
        self.target = float(self.batch)
        self.state = ReplicaState()
        self.scraped: dict[str, int] = {}  # Prometheus' latest sample per ready pod

    def default_batch(self, spec: GenerationClusterSpec) -> int:
        return self.batch

    def observe(self, t: float, pods: list[SimPod]) -> None:
        if int(t) % PROM_SCRAPE_S == PROM_SCRAPE_OFFSET_S:
            # kubernetes_sd scrapes running pods; a pod still starting exports nothing yet
            self.scraped = {p.name: concurrency(p) for p in pods
                            if not p.draining and p.ready(t + 1.0)}

    def _behave(self, t: float, current: int, raw: int) -> int:
        r = self.spec.replicas
        raw = max(r.min, min(r.max, raw))
        desired, _, self.state = behave(current, raw, "", self.state, t, HPA_UP, HPA_DOWN,
                                        r.min, r.max)
        return desired


class Hpa(_HpaLike):
    name = "hpa"

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        live = [p for p in pods if not p.draining]
        ready = [p.name for p in live if p.ready(t)]
        values: dict[str, float | None] = {n: float(self.scraped[n]) if n in self.scraped
                                           else None for n in ready}
        unready = max(0, current - len(ready))
        prop = pod_metric_proposal("inflightPerPod", values, ready, unready, self.target,
                                   HPA_TOLERANCE, current)
        if prop.replicas is None:  # no pod has a sample: the HPA skips this sync
            return Action(current)
        return Action(self._behave(t, current, prop.replicas))


class Keda(_HpaLike):
    name = "keda"

    def __init__(self, spec: GenerationClusterSpec, batch: int | None) -> None:
        super().__init__(spec, batch)
        self.polled_at = -math.inf
        self.active_at = 0.0  # last poll that found the trigger active

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        total = float(sum(self.scraped.values()))  # the query, answered from Prometheus
        r = self.spec.replicas
        if t - self.polled_at >= KEDA_POLLING_S:  # the operator's activation loop
            self.polled_at = t
            if total > KEDA_ACTIVATION:
                self.active_at = t
                if current == 0:
                    return Action(max(1, r.min))
            elif r.min == 0 and current > 0 and t - self.active_at >= KEDA_COOLDOWN_S:
                return Action(0)
        if current == 0:
            return Action(0)
        ratio = total / (self.target * current)
        raw = current if abs(ratio - 1.0) <= HPA_TOLERANCE else math.ceil(total / self.target)
        return Action(self._behave(t, current, max(1, raw)))


class Kpa(Policy):
    name = "kpa"
    interval = KPA_TICK_S

    def __init__(self, spec: GenerationClusterSpec, batch: int | None) -> None:
        self.spec = spec
        self.batch = batch if batch is not None else spec.batching.initial
        self.target_value = self.batch * KPA_UTILISATION
        self.window: deque[float] = deque(maxlen=KPA_STABLE_S)  # total concurrency per second
        self.panic_since: float | None = None
        self.max_panic_pods = 0
        self.started = False

    def default_batch(self, spec: GenerationClusterSpec) -> int:
        return self.batch

    def observe(self, t: float, pods: list[SimPod]) -> None:
        self.window.append(float(sum(concurrency(p) for p in pods
                                     if not p.draining and p.ready(t))))

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        ready_n = sum(1 for p in pods if not p.draining and p.ready(t))
        if not self.started:  # newAutoscaler: over one pod, it starts panicking
            self.started = True
            if ready_n > 1:
                self.panic_since, self.max_panic_pods = t, ready_n
        if not self.window:
            return Action(current)
        ready = float(max(1, ready_n))
        stable = sum(self.window) / len(self.window)
        recent = list(self.window)[-KPA_PANIC_S:]
        panic = sum(recent) / len(recent)
        up = math.ceil(KPA_MAX_UP_RATE * ready)
        down = math.floor(ready / KPA_MAX_DOWN_RATE)
        dspc = math.ceil(stable / self.target_value)
        dppc = math.ceil(panic / self.target_value)
        want_stable = int(min(max(dspc, down), up))
        want_panic = int(min(max(dppc, down), up))
        over = dppc / ready >= KPA_PANIC_THRESHOLD
        if over:
            self.panic_since = t
        elif self.panic_since is not None and t - self.panic_since > KPA_STABLE_S:
            self.panic_since, self.max_panic_pods = None, 0
        desired = want_stable
        if self.panic_since is not None:
            desired = max(desired, want_panic, self.max_panic_pods)
            self.max_panic_pods = desired
        r = self.spec.replicas
        return Action(max(r.min, min(r.max, desired)))


class Fixed(Policy):
    def __init__(self, spec: GenerationClusterSpec, n: int, batch: int | None) -> None:
        self.name = f"fixed:{n}"
        self.n = n
        self.batch = batch if batch is not None else spec.batching.initial
        self.interval = HPA_SYNC_S

    def initial(self, spec: GenerationClusterSpec, trace: Trace, params: ModelParams) -> int:
        return self.n

    def default_batch(self, spec: GenerationClusterSpec) -> int:
        return self.batch

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        return Action(self.n)


def make(name: str, spec: GenerationClusterSpec, params: ModelParams,
         baseline_batch: int | None = None) -> Policy:
    if name == "gencluster":
        return Gencluster(spec, params)
    if name == "hpa":
        return Hpa(spec, baseline_batch)
    if name == "keda":
        return Keda(spec, baseline_batch)
    if name == "kpa":
        return Kpa(spec, baseline_batch)
    if name == "oracle":
        from .oracle import Oracle

        return Oracle(spec, params)
    if name.startswith("fixed:"):
        n = int(name.split(":", 1)[1])
        if n < 1:
            raise ValueError("fixed:N needs N >= 1")
        return Fixed(spec, n, baseline_batch)
    raise ValueError(f"unknown policy {name!r} (gencluster, hpa, keda, kpa, oracle, fixed:N, all)")
