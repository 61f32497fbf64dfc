"""Typed model of GenerationCluster.spec.

The CRD's OpenAPI schema is generated from these models (see `gencluster.api.crd`), so the
defaults, bounds and descriptions here are the single source of truth. Kubernetes applies the
defaults and bounds at admission; the operator parses `spec` into these models at the edge and
treats a parse failure as a permanent error reported in status.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from pydantic.alias_generators import to_camel

from ..control import custom
from ..render.names import GPU_RESOURCE, OPERATOR_ENV

NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


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
Quantity = Annotated[str, Field(pattern=QUANTITY_PATTERN, max_length=64)]


def _amount(value: int | str) -> int | str:
    if isinstance(value, str):
        custom.quantity(value)  # raises ValueError
    return value


# A number as Kubernetes writes one (HPA's targets): an integer, or a quantity string such as
# "0.5", "250m" or "2k". Integers stay integers on the wire.
# A structural schema allows int-or-string only as anyOf [integer, string] with nothing else in
# the branches; the string's syntax and length are value validations beside them (they apply to
# strings only).
Amount = Annotated[int | str, AfterValidator(_amount), WithJsonSchema({
    "x-kubernetes-int-or-string": True,
    "anyOf": [{"type": "integer"}, {"type": "string"}],
    "pattern": custom.AMOUNT_PATTERN, "maxLength": 32})]


def _selector(value: str) -> str:
    custom.parse_selector(value)  # raises ValueError (bad syntax, bad regular expression)
    return value


Selector = Annotated[str, Field(min_length=1, max_length=512, pattern=custom.SELECTOR_PATTERN),
                     AfterValidator(_selector)]


# Kubernetes' own syntax for the embedded types (k8s.io/apimachinery validation), so that a spec
# the CRD admits never renders a pod the apiserver refuses.
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
# A qualified name (label and taint keys): optional DNS subdomain prefix and '/', then a name.
# [.] rather than \. : the expression also goes into CEL string literals, where \. is not an escape
QUALIFIED_NAME = (r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                  r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
QUALIFIED_NAME_CEL = (
    "({k}.contains('/') ? ({k}.split('/').size() == 2 && {k}.split('/')[0].size() <= 253 "
    "&& {k}.split('/')[1].size() <= 63) : {k}.size() <= 63) && {k}.matches('"
    + QUALIFIED_NAME.replace("\\", "\\\\") + "')")  # a CEL string literal: backslashes doubled
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]


# Container resource names Kubernetes accepts: the standard ones, hugepages-<size>, or an
# extended resource with a domain prefix (example.com/thing).
RESOURCE_NAME_CEL = ("k in ['cpu', 'memory', 'ephemeral-storage'] || k.startsWith('hugepages-') || "
                     "(k.contains('/') && " + QUALIFIED_NAME_CEL.format(k="k") + ")")
_RESOURCE_MAP_RULES = [
    cel("self.all(k, isQuantity(self[k]))",
        "every value must be a Kubernetes quantity (for example 500m, 2, 1.5Gi)"),
    cel("self.all(k, !isQuantity(self[k]) || quantity(self[k]).isGreaterThan(quantity('0')) "
        "|| quantity(self[k]).compareTo(quantity('0')) == 0)", "quantities must not be negative"),
    cel("self.all(k, " + RESOURCE_NAME_CEL + ")",
        "resource names must be cpu, memory, ephemeral-storage, hugepages-<size> or a domain-prefixed extended resource"),
]


def _resource_map(description: str) -> Any:
    return Field(default_factory=dict, max_length=8, description=description,
                 json_schema_extra={"x-kubernetes-validations": list(_RESOURCE_MAP_RULES)})


class Resources(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel(f"!has(self.limits) || !('{GPU_RESOURCE}' in self.limits)",
            "set GPUs with workload.gpusPerReplica, not resources.limits"),
        cel(f"!has(self.requests) || !('{GPU_RESOURCE}' in self.requests)",
            "set GPUs with workload.gpusPerReplica, not resources.requests"),
        cel("!has(self.requests) || !has(self.limits) || self.requests.all(k, !(k in self.limits) "
            "|| !isQuantity(self.requests[k]) || !isQuantity(self.limits[k]) "
            "|| quantity(self.requests[k]).compareTo(quantity(self.limits[k])) <= 0)",
            "each request must be less than or equal to its limit"),
    ]})

    requests: dict[str, Quantity] = _resource_map("CPU/memory requests, as Kubernetes quantities (e.g. cpu: '500m', memory: 2Gi).")
    limits: dict[str, Quantity] = _resource_map("CPU/memory limits. nvidia.com/gpu is set from gpusPerReplica; do not set it here.")

    @model_validator(mode="after")
    def _no_gpu_here(self) -> Resources:
        if GPU_RESOURCE in self.limits or GPU_RESOURCE in self.requests:
            raise ValueError("set GPUs with workload.gpusPerReplica, not resources")
        return self




class SecretKeyRef(Model):
    name: str = Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN,
                      description="Name of a Secret in the GenerationCluster's namespace.")
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$", description="Key in that Secret.")


class EnvValueFrom(Model):
    secret_key_ref: SecretKeyRef


class EnvVar(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!(has(self.value) && has(self.valueFrom))", "set either value or valueFrom, not both"),
        cel("!(self.name in " + str(list(OPERATOR_ENV)).replace("'", '"') + ")",
            "this variable is set by the operator (see docs/operator.md); use the spec field that sets it"),
    ]})

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    value: str | None = Field(None, description="A literal value.")
    value_from: EnvValueFrom | None = Field(None, description="A value read from a Secret key.")

    @model_validator(mode="after")
    def _allowed(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set either value or valueFrom, not both")
        if self.name in OPERATOR_ENV:
            raise ValueError(f"{self.name} is set by the operator; use the spec field that sets it")
        return self


class Toleration(Model):
    """A pod toleration, validated as Kubernetes validates it."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.key) && self.key != '' || self.operator == 'Exists'",
            "a toleration without a key must use operator Exists (it tolerates every taint)"),
        cel("self.operator != 'Exists' || !has(self.value) || self.value == ''",
            "a toleration with operator Exists must not set a value"),
        cel("!has(self.tolerationSeconds) || (has(self.effect) && self.effect == 'NoExecute')",
            "tolerationSeconds applies only to effect NoExecute"),
        cel("!has(self.key) || self.key == '' || " + QUALIFIED_NAME_CEL.format(k="self.key"),
            "key must be a qualified name (an optional DNS prefix and '/', then at most 63 of [A-Za-z0-9-_.])"),
    ]})

    key: str | None = Field(None, max_length=317, description="Taint key to tolerate; empty with operator Exists tolerates every taint.")
    operator: Literal["Exists", "Equal"] = "Equal"
    value: LabelValue | None = Field(None, description="Taint value (operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0, description="With effect NoExecute: how long the pod stays bound after the taint appears.")

    @model_validator(mode="after")
    def _as_kubernetes(self) -> Toleration:
        if not self.key and self.operator != "Exists":
            raise ValueError("a toleration without a key must use operator Exists")
        if self.operator == "Exists" and self.value:
            raise ValueError("a toleration with operator Exists must not set a value")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("tolerationSeconds applies only to effect NoExecute")
        if self.key and not is_qualified_name(self.key):
            raise ValueError(f"key {self.key!r} is not a qualified name")
        return self


def is_qualified_name(key: str) -> bool:
    """Kubernetes' qualified name (label keys, taint keys): [prefix/]name."""
    prefix, _, name = key.rpartition("/")
    return (re.match(QUALIFIED_NAME, key) is not None and len(name) <= 63 and len(prefix) <= 253
            and key.count("/") <= 1)


class WorkloadSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("self.adminPort != self.port",
            "workload.adminPort must differ from workload.port"),
    ]})

    image: str = Field(min_length=1, max_length=512, pattern=r"^\S+$", description="Container image of the generation server (it must serve the gencluster metrics contract).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field("IfNotPresent", description="Image pull policy of the workload pods.")
    port: int = Field(8080, ge=1024, le=65535, description="HTTP port of the server (generate, health, metrics), open to every client.")
    admin_port: int = Field(8081, ge=1024, le=65535, description="Port of the server's admin API (/admin/*: batch sizes, readiness, faults; bearer token). The workload's NetworkPolicy admits it only from the operator's pod.")
    gpus_per_replica: int = Field(1, ge=0, le=16, description="nvidia.com/gpu per pod. 0 runs on CPU (memory readings then report device=cpu).")
    resources: Resources = Field(default=Resources(), description="CPU and memory for each workload pod.")
    model: ModelRef = Field(default=ModelRef(), description="The model the workload serves.")
    env: Annotated[list[EnvVar], Field(max_length=64)] = Field(default_factory=list, description="Extra environment for the workload container.")
    node_selector: Annotated[dict[str, LabelValue], Field(max_length=32, json_schema_extra={"x-kubernetes-validations": [
        cel("self.all(k, " + QUALIFIED_NAME_CEL.format(k="k") + ")",
            "nodeSelector keys must be label keys (an optional DNS prefix and '/', then at most 63 of [A-Za-z0-9-_.])"),
    ]})] = Field(default_factory=dict, description="Node labels the workload pods must match.")
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list, description="Tolerations of the workload pods (GPU nodes are often tainted).")
    memory_budget_mi_b: int = Field(4096, ge=64, le=1048576, alias="memoryBudgetMiB", description="On a pod without a GPU, the host-memory budget that stands in for GPU memory (MiB).")
    queue_max: int = Field(256, ge=1, le=100000, description="Requests a pod queues before answering 429.")
    shutdown_grace_seconds: int = Field(30, ge=1, le=3600, description="Time a pod has to drain its queue on shutdown.")

    @model_validator(mode="after")
    def _admin_port_apart(self) -> WorkloadSpec:
        if self.admin_port == self.port:
            raise ValueError(f"workload.adminPort must differ from workload.port ({self.port})")
        return self

    @model_validator(mode="after")
    def _node_selector_keys(self) -> WorkloadSpec:
        bad = [k for k in self.node_selector if not is_qualified_name(k)]
        if bad:
            raise ValueError(f"nodeSelector keys must be label keys: {bad}")
        return self


class ReplicasSpec(Model):
    min: int = Field(1, ge=0, le=1000, description="Fewest workload pods.")
    max: int = Field(4, ge=1, le=1000, description="Most workload pods.")
    count: int | None = Field(None, ge=0, le=1000, description="Desired pods when autoscaling is disabled or in advisory mode (what `kubectl scale` sets). Ignored while autoscaling is enabled in auto mode: the operator owns the count.")


class CustomTarget(Model):
    metric: Selector = Field(description='A series the workload pods expose: a metric name with optional PromQL label matchers (=, !=, =~, !~), e.g. app_jobs_waiting{queue="gpu"}. A counter (name ending in _total) becomes its per-second rate, a histogram its quantile (p50..p99) or per-pod mean, a gauge is read as is; the series matching in one pod are summed.')
    aggregation: Literal["avg", "max", "min", "sum", "p50", "p90", "p95", "p99"] = Field("avg", description="avg: HPA's per-pod average (desired = ceil(pods x average / target)); sum: target per replica (ceil(sum / target)); max, min: ceil(pods x value / target); p50..p99: that quantile of a histogram over all pods, scale-up only.")
    target: Amount = Field(description="Target value, in the metric's unit (per second for a counter): an integer or a quantity such as 0.5 or 250m.")

    @model_validator(mode="after")
    def _positive(self) -> CustomTarget:
        if custom.quantity(self.target) <= 0:
            raise ValueError("target must be > 0")
        return self


class Targets(Model):
    latency_p95_ms: int = Field(2000, ge=1, le=600000, alias="latencyP95Ms", description="Target p95 request latency (ms).")
    gpu_memory_percent: int = Field(80, ge=1, le=100, description="Target GPU memory utilisation per pod (%).")
    queue_depth_per_replica: int = Field(8, ge=1, le=100000, description="Target queued requests per pod.")
    custom: Annotated[list[CustomTarget], Field(max_length=20)] = Field(default_factory=list, description="Targets on any series the pods expose (the largest proposal of all targets wins). A series that never appears is reported by the CustomMetricsAvailable condition.")


class ScalingRule(Model):
    stabilization_seconds: int = Field(0, ge=0, le=3600, description="Window over which the most conservative recommendation is kept before acting.")
    max_pods: int = Field(4, ge=1, le=1000, description="Pods that may be added/removed per period (one of the two rate policies; selectPolicy says how they combine).")
    max_percent: int = Field(100, ge=1, le=1000, description="Percentage of the current count that may be added/removed per period (the other rate policy).")
    period_seconds: int = Field(15, ge=1, le=1800, description="Period the maxPods/maxPercent limits apply to.")
    select_policy: Literal["Max", "Min"] = Field("Max", description="Max: the policy allowing the larger change applies (HPA's default); Min: the smaller.")


class ScaleUpRule(ScalingRule):
    """Scale-up is fast by default (as in HPA v2): no window, the larger of 4 pods and 100 % per
    15 s."""


class ScaleDownRule(ScalingRule):
    """Scale-down waits by default (as in HPA v2): a 300 s stabilisation window, then the larger
    of 1 pod and 50 % of the current count per 60 s."""

    stabilization_seconds: int = Field(300, ge=0, le=3600, description="Window over which the highest recommendation is kept before scaling down.")
    max_pods: int = Field(1, ge=1, le=1000, description="Pods that may be removed per period. With selectPolicy Max (the default) the larger of this and maxPercent applies, so 1 pod is the least a period may remove; set selectPolicy Min to make it the most.")
    max_percent: int = Field(50, ge=1, le=100, description="Percentage of the current count that may be removed per period (with the default selectPolicy Max, the most a period removes once that exceeds maxPods).")
    period_seconds: int = Field(60, ge=1, le=1800, description="Period the maxPods/maxPercent limits apply to.")


class Predictive(Model):
    enabled: bool = Field(False, description="Add capacity ahead of a forecast of the arrival rate (Holt's trend, or Holt-Winters when the last 3 h show a season), sized by the learnt per-pod capacity at the forecast's lower 90 % bound. Never removes capacity, and is not held by the scale-down window once the forecast falls.")
    horizon_seconds: int = Field(300, ge=10, le=3600, description="How far ahead the forecast looks (the highest need within it counts).")


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
    mode: Literal["auto", "advisory"] = Field("auto", description="auto: the loop scales the workload and tunes batch sizes. advisory: the loop runs and decides as in auto, but only reports what it would do (status.recommendation, Events WouldScaleUp, WouldScaleDown, WouldChangeBatchSize) and changes nothing; the replica count is replicas.count when set, else left as it is.")
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


class CacheTLS(Model):
    secret_name: str = Field(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN, description="A Secret in the GenerationCluster's namespace, of type kubernetes.io/tls, with the keys tls.crt, tls.key and ca.crt (what cert-manager writes). Redis serves TLS only (port 6379, plaintext off) with tls.crt/tls.key; the workload, the probes and the operator verify it against ca.crt. The Secret is the user's: the operator reads it, never writes it; a renewed certificate in it rolls the Redis pods (within a resync period).")


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
    tls: CacheTLS | None = Field(None, description="TLS for every connection to Redis (clients, replication and, in cluster mode, the cluster bus). Absent: plaintext inside the cluster network.")


AlertMetric = Literal[
    "latencyP95Ms", "gpuMemoryPercent", "queueDepth", "errorRatePermille",
    "cacheHitPercent", "requestsPerSecond", "oomPerMinute",
]
BUILTIN_METRICS: tuple[str, ...] = AlertMetric.__args__  # type: ignore[attr-defined]


class AlertRule(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!has(self.aggregation) || !(self.aggregation in ['p50', 'p90', 'p95', 'p99']) || !(self.metric in "
            + str(list(BUILTIN_METRICS)).replace("'", '"') + ")",
            "quantile aggregations apply to custom (histogram) metrics, not to the built-in aggregates"),
    ]})

    name: str = Field(min_length=1, max_length=63, pattern=NAME_PATTERN, description="Rule name (unique); used in Event messages.")
    metric: Selector = Field(description="A built-in aggregate (latencyP95Ms, gpuMemoryPercent, queueDepth, errorRatePermille, cacheHitPercent, requestsPerSecond, oomPerMinute) or any series the pods expose, as for autoscaling.targets.custom (name and PromQL label matchers; counter -> rate, histogram -> quantile).")
    aggregation: Literal["avg", "max", "min", "sum", "p50", "p90", "p95", "p99"] = Field("max", description="How a custom metric's per-pod values combine (ignored for the built-in aggregates): max (the worst pod, the default), min, avg, sum, or a histogram quantile p50..p99 over all pods.")
    comparison: Literal["gt", "ge", "lt", "le"] = Field(description="How the metric is compared with the threshold.")
    threshold: Amount = Field(description="Threshold, in the metric's unit: an integer or a quantity such as 0.25 or 250m.")
    for_seconds: int = Field(60, ge=0, le=86400, description="The condition must hold this long before the alert fires.")
    severity: Literal["warning", "critical"] = Field("warning", description="warning or critical.")

    @model_validator(mode="after")
    def _quantile_of_custom(self) -> AlertRule:
        if self.aggregation in custom.QUANTILES and self.metric in BUILTIN_METRICS:
            raise ValueError("quantile aggregations apply to custom (histogram) metrics, not to "
                             "the built-in aggregates")
        return self


class AlertsSpec(Model):
    builtin_rules: bool = Field(True, description="Built-in rules: GPU memory > 85 % warning and > 95 % critical, p95 over the SLO, error rate > 1 %, cache hit ratio < 50 %, queue saturated.")
    anomaly_detection: bool = Field(True, description="Change detectors that a healthy load change does not trip (docs/alerts.md): a CUSUM on the 5xx share (anomaly-error-rate), a CUSUM on device time per forward pass against the pods' own service curve (anomaly-slowdown), and pods with queued requests that complete nothing (pod-stuck).")
    predictive_memory: bool = Field(True, description="Warn when the GPU memory trend reaches exhaustion within 10 minutes.")
    rules: Annotated[list[AlertRule], Field(max_length=50, json_schema_extra={
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})] = Field(
        default_factory=list, description="User rules, evaluated with the built-in ones.")


PRICE_PATTERN = r"^[0-9]{1,9}(\.[0-9]{1,6})?$"
Price = Annotated[str, Field(pattern=PRICE_PATTERN, max_length=16)]


class CostSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("has(self.gpuHourPrice) || (has(self.gpuType) && has(self.gpuHourPrices) && self.gpuType in self.gpuHourPrices)",
            "cost needs gpuHourPrice, or a gpuType with an entry in gpuHourPrices"),
    ]})

    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of every price here and of the money in status.cost.")
    gpu_type: str | None = Field(None, min_length=1, max_length=63, description="GPU type of the workload's nodes (e.g. nvidia-h100); picks its price from gpuHourPrices.")
    gpu_hour_price: Price | None = Field(None, description="Price of one GPU for one hour, as a decimal string (e.g. '2.50'); used when gpuType has no entry in gpuHourPrices.")
    gpu_hour_prices: Annotated[dict[str, Price], Field(max_length=32)] = Field(default_factory=dict, description="GPU-hour price by GPU type (e.g. nvidia-h100: '2.99', nvidia-h200: '3.50').")
    cpu_core_hour_price: Price | None = Field(None, description="Optional price of one CPU core for one hour, charged on each pod's CPU request.")
    memory_gi_b_hour_price: Price | None = Field(None, alias="memoryGiBHourPrice", description="Optional price of one GiB of memory for one hour, charged on each pod's memory request.")

    @model_validator(mode="after")
    def _has_gpu_price(self) -> CostSpec:
        if self.gpu_hour_price is None and (self.gpu_type is None or self.gpu_type not in self.gpu_hour_prices):
            raise ValueError("cost needs gpuHourPrice, or a gpuType with an entry in gpuHourPrices")
        return self

    def gpu_price(self) -> str:
        """The GPU-hour price that applies: gpuHourPrices[gpuType], else gpuHourPrice."""
        if self.gpu_type is not None and self.gpu_type in self.gpu_hour_prices:
            return self.gpu_hour_prices[self.gpu_type]
        assert self.gpu_hour_price is not None  # the validator guarantees one of the two
        return self.gpu_hour_price


class TracingSpec(Model):
    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        cel("!self.enabled || has(self.endpoint)", "tracing.endpoint is required when tracing.enabled is true"),
    ]})

    enabled: bool = Field(False, description="Export OpenTelemetry traces from the workload pods (rendered as the standard OTEL_* environment variables).")
    endpoint: str | None = Field(None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=512, description="OTLP/HTTP base URL of the collector or backend (e.g. http://jaeger.observability:4318); spans go to <endpoint>/v1/traces.")
    sampling_ratio: str = Field("1", pattern=r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$", description="Share of requests traced when the caller sent no sampling decision (0..1, decimal string; e.g. '0.01' = 1 %). A caller's sampled traceparent is always followed.")

    @model_validator(mode="after")
    def _endpoint_when_enabled(self) -> TracingSpec:
        if self.enabled and not self.endpoint:
            raise ValueError("tracing.endpoint is required when tracing.enabled is true")
        return self


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
    cost: CostSpec | None = Field(None, description="Prices, for status.cost (GPU-hours, utilisation and the saving against a static deployment are reported without them; money needs them).")
    tracing: TracingSpec = Field(default=TracingSpec(), description="OpenTelemetry tracing of the workload pods.")


def custom_series(spec: GenerationClusterSpec) -> list[tuple[str, str]]:
    """The (selector, aggregation) pairs the spec's custom targets and rules name, in order."""
    out = [(t.metric, t.aggregation) for t in spec.autoscaling.targets.custom]
    out += [(r.metric, r.aggregation) for r in spec.alerts.rules
            if r.metric not in BUILTIN_METRICS]
    return list(dict.fromkeys(out))


def parse_spec(raw: dict[str, Any]) -> GenerationClusterSpec:
    """Parse a GenerationCluster's spec; raises pydantic.ValidationError with field paths."""
    return GenerationClusterSpec.model_validate(raw)
