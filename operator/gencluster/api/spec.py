"""Typed model of GenerationCluster.spec.

The CRD's OpenAPI schema is generated from these models (see `gencluster.api.crd`), so the
defaults, bounds and descriptions here are the single source of truth. Kubernetes applies the
defaults and bounds at admission; the operator parses `spec` into these models at the edge and
treats a parse failure as a permanent error reported in status.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
GPU_RESOURCE = "nvidia.com/gpu"


def cel(rule: str, message: str) -> dict[str, Any]:
    """One CEL validation rule, rendered into `x-kubernetes-validations` by the CRD generator."""
    return {"rule": rule, "message": message}


class Model(BaseModel):
    """Base for every spec object: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ModelRef(Model):
    name: str = Field("shape-occupancy", min_length=1, max_length=63,
                      description="Name of the model the workload serves; part of every cache key.")
    version: str = Field("v1", min_length=1, max_length=63,
                         description="Model version; part of every cache key, so a new version never serves stale meshes.")
    factory: str | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
                                description="Optional `module:callable` that builds another model inside the workload image (plug-in point).")


QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN)]


class Resources(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.limits) || !('nvidia.com/gpu' in self.limits)",
            "set GPUs with workload.gpusPerReplica, not resources.limits"),
        cel("!has(self.requests) || !('nvidia.com/gpu' in self.requests)",
            "set GPUs with workload.gpusPerReplica, not resources.requests"),
    ]})

    requests: dict[str, Quantity] = Field(default_factory=dict, description="CPU/memory requests, as Kubernetes quantities (e.g. cpu: '500m', memory: 2Gi).")
    limits: dict[str, Quantity] = Field(default_factory=dict, description="CPU/memory limits. nvidia.com/gpu is set from gpusPerReplica; do not set it here.")

    @model_validator(mode="after")
    def _no_gpu_here(self) -> Resources:
        if GPU_RESOURCE in self.limits or GPU_RESOURCE in self.requests:
            raise ValueError("set GPUs with workload.gpusPerReplica, not resources")
        return self


class SecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


class EnvValueFrom(Model):
    secret_key_ref: SecretKeyRef


class EnvVar(Model):
    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = Field(None, description="A literal value.")
    value_from: EnvValueFrom | None = Field(None, description="A value read from a Secret key.")


class Toleration(Model):
    key: str | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0)


class WorkloadSpec(Model):
    image: str = Field(min_length=1, max_length=512, description="Container image of the generation server (it must serve the gencluster metrics contract).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="Image pull policy of the workload pods.")
    port: int = Field(8080, ge=1024, le=65535, description="HTTP port of the server (generate, health, metrics, admin).")
    gpus_per_replica: int = Field(1, ge=0, le=16, description="nvidia.com/gpu per pod. 0 runs on CPU (memory readings then report device=cpu).")
    resources: Resources = Field(default=Resources(), description="CPU and memory for each workload pod.")
    model: ModelRef = Field(default=ModelRef(), description="The model the workload serves.")
    env: Annotated[list[EnvVar], Field(max_length=64)] = Field(default_factory=list, description="Extra environment for the workload container.")
    node_selector: dict[str, str] = Field(default_factory=dict, description="Node labels the workload pods must match.")
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list, description="Tolerations of the workload pods (GPU nodes are often tainted).")
    memory_budget_mi_b: int = Field(4096, ge=64, le=1048576, alias="memoryBudgetMiB", description="On a pod without a GPU, the host-memory budget that stands in for GPU memory (MiB).")
    queue_max: int = Field(256, ge=1, le=100000, description="Requests a pod queues before answering 429.")
    shutdown_grace_seconds: int = Field(30, ge=1, le=3600, description="Time a pod has to drain its queue on shutdown.")


class ReplicasSpec(Model):
    min: int = Field(1, ge=0, le=1000, description="Fewest workload pods.")
    max: int = Field(4, ge=1, le=1000, description="Most workload pods.")
    count: int | None = Field(None, ge=0, le=1000, description="Desired pods when autoscaling is disabled (what `kubectl scale` sets). Ignored while autoscaling is enabled: the operator owns the count.")


class Targets(Model):
    latency_p95_ms: int = Field(2000, ge=1, le=600000, alias="latencyP95Ms", description="Target p95 request latency (ms).")
    gpu_memory_percent: int = Field(80, ge=1, le=100, description="Target GPU memory utilisation per pod (%).")
    queue_depth_per_replica: int = Field(8, ge=1, le=100000, description="Target queued requests per pod.")


class ScalingRule(Model):
    stabilization_seconds: int = Field(0, ge=0, le=3600, description="Window over which the most conservative recommendation is kept before acting.")
    max_pods: int = Field(4, ge=1, le=1000, description="Most pods added/removed per period.")
    max_percent: int = Field(100, ge=1, le=1000, description="Most pods added/removed per period, as a percentage of the current count.")
    period_seconds: int = Field(15, ge=1, le=1800, description="Period the maxPods/maxPercent limits apply to.")


class ScaleUpRule(ScalingRule):
    """Scale-up is fast by default (as in HPA v2): no window, max(100 %, 4 pods) per 15 s."""


class ScaleDownRule(ScalingRule):
    """Scale-down waits by default (as in HPA v2): 300 s stabilisation window."""

    stabilization_seconds: int = Field(300, ge=0, le=3600, description="Window over which the highest recommendation is kept before scaling down.")
    max_pods: int = Field(1, ge=1, le=1000, description="Most pods removed per period.")
    period_seconds: int = Field(60, ge=1, le=1800, description="Period the maxPods/maxPercent limits apply to.")


class Predictive(Model):
    enabled: bool = Field(False, description="Add capacity ahead of a forecast (Holt's trend over the metric window). Never removes capacity.")
    horizon_seconds: int = Field(300, ge=10, le=3600, description="How far ahead the forecast looks.")


class MetricsSourceSpec(Model):
    type: Literal["pods", "prometheus"] = Field("pods", description="pods: scrape each ready pod's /metrics. prometheus: query a Prometheus server.")
    prometheus_url: str | None = Field(None, pattern=r"^https?://", description="Prometheus base URL when type is prometheus.")
    scrape_timeout_ms: int = Field(2000, ge=100, le=30000, description="Per-pod (or per-query) timeout.")


class AutoscalingSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.metrics) || self.metrics.type != 'prometheus' || has(self.metrics.prometheusUrl)",
            "autoscaling.metrics.prometheusUrl is required when autoscaling.metrics.type is prometheus"),
    ]})

    enabled: bool = Field(True, description="When true the operator owns the replica count and batch sizes.")
    interval_seconds: int = Field(5, ge=1, le=600, description="Control loop interval (scrape, decide, act). 5 s reacts within two intervals and costs under a core for 1,000 clusters (docs/benchmarks.md).")
    tolerance_percent: int = Field(10, ge=0, le=100, description="No scaling while every metric is within this band of its target.")
    targets: Targets = Field(default=Targets(), description="Per-metric targets; the largest proposal wins.")
    scale_up: ScaleUpRule = Field(default=ScaleUpRule(), description="Scale-up behaviour.")
    scale_down: ScaleDownRule = Field(default=ScaleDownRule(), description="Scale-down behaviour.")
    predictive: Predictive = Field(default=Predictive(), description="Predictive scale-up.")
    metrics: MetricsSourceSpec = Field(default=MetricsSourceSpec(), description="Where metrics come from.")


class BatchingSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.min <= self.max", "batching.min must be <= batching.max"),
        cel("self.min <= self.initial && self.initial <= self.max",
            "batching.initial must be within [batching.min, batching.max]"),
    ]})

    mode: Literal["adaptive", "fixed"] = Field("adaptive", description="adaptive: the operator tunes each pod's batch size (AIMD under the SLO). fixed: always `initial`.")
    min: int = Field(1, ge=1, le=1024, description="Smallest batch size.")
    max: int = Field(32, ge=1, le=1024, description="Largest batch size.")
    initial: int = Field(4, ge=1, le=1024, description="Batch size of new pods until tuned.")
    max_queue_delay_ms: int = Field(10, ge=0, le=10000, description="Longest a request waits for batch-mates.")
    latency_slo_ms: int = Field(2000, ge=1, le=600000, description="p95 latency the batch tuner keeps under.")
    increase_step: int = Field(1, ge=1, le=64, description="Additive increase per interval while under the SLO.")
    decrease_percent: int = Field(10, ge=1, le=90, description="Multiplicative decrease on SLO breach, memory pressure or OOM.")


class Persistence(Model):
    enabled: bool = Field(False, description="Keep Redis data on a PersistentVolumeClaim.")
    size_mi_b: int = Field(1024, ge=64, le=10485760, alias="sizeMiB", description="Volume size (MiB).")
    storage_class_name: str | None = Field(None, description="StorageClass; the cluster default when empty.")


class CacheSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.mode != 'cluster' || self.shards >= 3", "cache.shards must be at least 3 in cluster mode"),
    ]})

    mode: Annotated[Literal["standalone", "cluster", "disabled"], Field(json_schema_extra={"x-kubernetes-validations": [
        cel("self == oldSelf || self == 'disabled' || oldSelf == 'disabled'",
            "cache.mode can only change to or from disabled: switching between standalone and cluster needs a new GenerationCluster")]})] = Field(
        "standalone", description="standalone: one Redis. cluster: a Redis Cluster of `shards` masters with `replicasPerShard` replicas each. disabled: in-process cache only. Between standalone and cluster it is immutable; turning the cache on or off is allowed.")
    shards: int = Field(3, ge=1, le=64, description="Redis Cluster masters (cluster mode).")
    replicas_per_shard: Annotated[int, Field(json_schema_extra={"x-kubernetes-validations": [
        cel("self == oldSelf", "cache.replicasPerShard is immutable")]})] = Field(1, ge=0, le=5, description="Replicas of each master (cluster mode). Immutable.")
    max_memory_mi_b: int = Field(256, ge=16, le=1048576, alias="maxMemoryMiB", description="Redis maxmemory per node (MiB); keys are evicted allkeys-lru beyond it.")
    ttl_seconds: int = Field(3600, ge=1, le=2592000, description="TTL the workload sets on cached meshes.")
    image: str | None = Field(None, min_length=1, description="Redis image; the operator's default (Helm value) when empty.")
    persistence: Annotated[Persistence, Field(json_schema_extra={"x-kubernetes-validations": [
        cel("self == oldSelf", "cache.persistence is immutable (StatefulSet volume claims cannot change)")]})] = Field(
        default=Persistence(), description="Redis persistence. Immutable.")


AlertMetric = Literal[
    "latencyP95Ms", "gpuMemoryPercent", "queueDepth", "errorRatePermille",
    "cacheHitPercent", "requestsPerSecond", "oomPerMinute",
]


class AlertRule(Model):
    name: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN, description="Rule name (unique); used in Event messages.")
    metric: AlertMetric = Field(description="Aggregated metric the rule watches.")
    comparison: Literal["gt", "ge", "lt", "le"] = Field(description="How the metric is compared with the threshold.")
    threshold: int = Field(description="Threshold, in the metric's unit.")
    for_seconds: int = Field(60, ge=0, le=86400, description="The condition must hold this long before the alert fires.")
    severity: Literal["warning", "critical"] = Field("warning", description="warning or critical.")


class AlertsSpec(Model):
    builtin_rules: bool = Field(True, description="Built-in rules: GPU memory > 85 % warning and > 95 % critical, p95 over the SLO, error rate > 1 %, cache hit ratio < 50 %, queue saturated.")
    anomaly_detection: bool = Field(True, description="Robust z-score anomaly detection on the metric streams.")
    predictive_memory: bool = Field(True, description="Warn when the GPU memory trend reaches exhaustion within 10 minutes.")
    rules: Annotated[list[AlertRule], Field(max_length=50, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})] = Field(
        default_factory=list, description="User rules, evaluated with the built-in ones.")


class GenerationClusterSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.replicas.min <= self.replicas.max", "replicas.min must be <= replicas.max"),
        cel("!has(self.replicas.count) || (self.replicas.count >= self.replicas.min && self.replicas.count <= self.replicas.max)",
            "replicas.count must be within [replicas.min, replicas.max]"),
    ]})

    workload: WorkloadSpec = Field(description="The generation server pods.")
    replicas: ReplicasSpec = Field(default=ReplicasSpec(), description="Replica bounds, and the count when autoscaling is off.")
    autoscaling: AutoscalingSpec = Field(default=AutoscalingSpec(), description="Replica autoscaling.")
    batching: BatchingSpec = Field(default=BatchingSpec(), description="Dynamic batching and its tuning.")
    cache: CacheSpec = Field(default=CacheSpec(), description="Redis cache tier.")
    alerts: AlertsSpec = Field(default=AlertsSpec(), description="Alert rules; firing and resolving are Kubernetes Events.")


def parse_spec(raw: dict[str, Any]) -> GenerationClusterSpec:
    """Parse a GenerationCluster's spec; raises pydantic.ValidationError with field paths."""
    return GenerationClusterSpec.model_validate(raw)
