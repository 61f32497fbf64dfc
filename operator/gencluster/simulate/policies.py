"""The policies a simulation compares: gencluster (the operator's own decisions) and baselines.

- gencluster: scrape -> Window -> control.cycle.decide, every spec.autoscaling.intervalSeconds,
  exactly as the operator's daemon does; batch sizes tuned per pod.
- hpa: the HPA v2 algorithm with its defaults (15 s sync, 10 % tolerance, scale-down
  stabilisation 300 s and 100 % per 15 s, scale-up max(100 %, 4 pods) per 15 s, pods without
  metrics at 0 % when scaling up and 100 % when scaling down) on GPU utilisation (busy fraction),
  target HPA_TARGET_UTILISATION %. The metric lags as a dcgm-exporter + Prometheus pipeline does:
  an average over DCGM_COLLECTION_S, published every DCGM_COLLECTION_S, read SCRAPE_LAG_S later.
- keda: a queue-length scaler: every KEDA_POLLING_S the cluster's total queue, AverageValue
  target autoscaling.targets.queueDepthPerReplica, through an HPA with the same defaults.
- fixed:N: N pods.
Baselines run a fixed batch size (batching.initial, or --baseline-batch): they do not tune it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..api.spec import GenerationClusterSpec, ScaleDownRule, ScaleUpRule
from ..control.alerts import Transition
from ..control.batching import BatchState
from ..control.cycle import ControlState, decide
from ..control.replicas import ReplicaState, behave, pod_metric_proposal
from ..control.window import Window, WindowConfig
from .model import ModelParams, SimPod
from .traces import Trace

HPA_SYNC_S = 15
HPA_TOLERANCE = 0.10
HPA_TARGET_UTILISATION = 75.0
DCGM_COLLECTION_S = 30
SCRAPE_LAG_S = 15
KEDA_POLLING_S = 30
HPA_UP = ScaleUpRule(stabilization_seconds=0, max_pods=4, max_percent=100, period_seconds=15)
HPA_DOWN = ScaleDownRule(stabilization_seconds=300, max_pods=1000, max_percent=100,
                         period_seconds=15)


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
        """Warm start: the pods the first minute's load needs at the initial batch size, at 75 %."""
        first = trace.requests[:60]
        rate = sum(first) / max(1, len(first))
        need = math.ceil(rate / (0.75 * params.throughput(spec.batching.initial)))
        return max(spec.replicas.min, min(spec.replicas.max, need))

    def default_batch(self, spec: GenerationClusterSpec) -> int:
        return spec.batching.initial

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
        view = self.window.update(t, samples, [p.ref(t) for p in live])
        d, self.state = decide(self.spec, view, current, self.state, t)
        return Action(d.replicas.desired, dict(d.batches.sizes), d.batches.default,
                      d.alerts.transitions)


class _HpaLike(Policy):
    interval = HPA_SYNC_S

    def __init__(self, spec: GenerationClusterSpec, batch: int | None) -> None:
        self.spec = spec
        self.batch = batch if batch is not None else spec.batching.initial
        self.state = ReplicaState()

    def default_batch(self, spec: GenerationClusterSpec) -> int:
        return self.batch

    def _behave(self, t: float, current: int, raw: int) -> int:
        r = self.spec.replicas
        raw = max(r.min, min(r.max, raw))
        desired, _, self.state = behave(current, raw, "", self.state, t, HPA_UP, HPA_DOWN,
                                        r.min, r.max)
        return desired


class Hpa(_HpaLike):
    name = "hpa"

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        collected = math.floor((t - SCRAPE_LAG_S) / DCGM_COLLECTION_S) * DCGM_COLLECTION_S
        live = [p for p in pods if not p.draining]
        ready = [p.name for p in live if p.ready(t)]
        values: dict[str, float | None] = {}
        for p in live:
            if not p.ready(t):
                continue
            # p.util[-1] is second t-1; the published average covers [collected-30, collected)
            back = int(t - collected)
            span = [p.util[-(back + 1 + i)] for i in range(DCGM_COLLECTION_S)
                    if back + 1 + i <= len(p.util)]
            values[p.name] = 100.0 * sum(span) / len(span) if (
                collected - DCGM_COLLECTION_S >= p.ready_at and span) else None
        unready = max(0, current - len(ready))
        prop = pod_metric_proposal("gpuUtilisation", values, ready, unready,
                                   HPA_TARGET_UTILISATION, HPA_TOLERANCE, current)
        raw = prop.replicas if prop.replicas is not None else current
        return Action(self._behave(t, current, raw))


class Keda(_HpaLike):
    name = "keda"

    def __init__(self, spec: GenerationClusterSpec, batch: int | None) -> None:
        super().__init__(spec, batch)
        self.cached: float | None = None
        self.polled_at = -math.inf

    def act(self, t: float, pods: list[SimPod], current: int) -> Action:
        if t - self.polled_at >= KEDA_POLLING_S:
            self.polled_at = t
            self.cached = float(sum(len(p.queue) for p in pods if not p.draining and p.ready(t)))
        if self.cached is None or current == 0:
            return Action(current)
        target = float(self.spec.autoscaling.targets.queue_depth_per_replica)
        ratio = self.cached / (target * current)
        raw = current if abs(ratio - 1.0) <= HPA_TOLERANCE else math.ceil(self.cached / target)
        return Action(self._behave(t, current, raw))


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
    if name.startswith("fixed:"):
        n = int(name.split(":", 1)[1])
        if n < 1:
            raise ValueError("fixed:N needs N >= 1")
        return Fixed(spec, n, baseline_batch)
    raise ValueError(f"unknown policy {name!r} (gencluster, hpa, keda, fixed:N, all)")
