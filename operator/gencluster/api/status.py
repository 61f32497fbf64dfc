"""Typed model of GenerationCluster.status: what the operator observed, never what it wants.

Quantities are integers in named units (ms, percent, permille) as the API conventions advise.
The CRD's status schema is generated from these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class StatusModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class Condition(StatusModel):
    type: str = Field(description="Ready, Progressing, Degraded, CacheReady or Alerting.")
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(description="CamelCase reason.")
    message: str = ""
    last_transition_time: str = Field(description="RFC 3339 time the status last changed.")
    observed_generation: int | None = None


class MetricsSummary(StatusModel):
    p95_ms: int | None = Field(None, alias="p95Ms", description="p95 request latency over the window (ms).")
    gpu_memory_percent: int | None = Field(None, description="Highest GPU memory utilisation among pods (%).")
    queue_depth: int | None = Field(None, description="Queued requests, all pods.")
    requests_per_second: int | None = Field(None, description="Request rate, all pods.")
    error_rate_permille: int | None = Field(None, description="Errors per 1000 requests.")
    cache_hit_percent: int | None = Field(None, description="Cache hit ratio (%).")
    pods_reporting: int | None = Field(None, description="Pods whose metrics are fresh.")


class LastScale(StatusModel):
    time: str
    from_: int = Field(alias="from")
    to: int
    reason: str


class ActiveAlert(StatusModel):
    name: str
    severity: Literal["warning", "critical"]
    value: int | None = None
    threshold: int | None = None
    since: str
    message: str = ""


class CacheStatus(StatusModel):
    mode: str
    state: str = Field(description="ok, degraded, bootstrapping, unavailable or disabled.")
    slots_covered: int | None = None
    masters_ready: int | None = None
    replicas_ready: int | None = None
    endpoint: str | None = Field(None, description="Service address the workload uses.")


class PodBatchSize(StatusModel):
    pod: str
    batch_size: int


class Recommendation(StatusModel):
    """What the control loop would do (autoscaling.mode advisory); it did none of it."""

    time: str = Field(description="RFC 3339 time of the decision.")
    current_replicas: int = Field(description="Replicas the workload Deployment has.")
    replicas: int = Field(description="Replicas the loop would set.")
    batch_size: int | None = Field(None, description="Batch size new pods would start with.")
    pod_batch_sizes: list[PodBatchSize] = Field(default_factory=list, description="Per-pod batch sizes the loop would push, where they differ from what the pod runs.")
    reason: str = Field("", description="Why, as the ScaledUp/ScaledDown Event would say it.")


class CostWindowStatus(StatusModel):
    """One span (the last hour or the last day) of cost accounting (control/cost.py)."""

    covered_seconds: int = Field(description="Seconds of the span the operator observed (it starts afresh when the operator restarts).")
    gpu_hours: str = Field(description="GPU-hours provisioned: pods that existed × GPUs per pod × hours (decimal string).")
    busy_gpu_hours: str = Field(description="GPU-hours the pods reported busy (gencluster_gpu_seconds_total).")
    utilization_percent: int | None = Field(None, description="Busy GPU time ÷ provisioned GPU time (%).")
    requests: int = Field(0, description="Meshes answered with 200 (cache hits included).")
    computed_requests: int = Field(0, description="Of which computed on the device.")
    gigabytes_generated: str = Field("0", description="GB (10^9 bytes) of meshes computed.")
    cost: str | None = Field(None, description="Money spent: provisioned hours × prices (needs spec.cost).")
    per_thousand_requests: str | None = Field(None, description="Cost per 1,000 requests answered with 200.")
    per_gigabyte: str | None = Field(None, description="Cost per GB generated.")
    static_peak_replicas: int = Field(0, description="The most pods that existed at once in the span: the size of the static deployment compared against.")
    static_gpu_hours: str = Field("0", description="GPU-hours of that static deployment over the same time.")
    static_cost: str | None = Field(None, description="Its money.")
    saving_percent: int | None = Field(None, description="1 - provisioned ÷ static (%), in GPU-hours and money alike.")


class CostStatus(StatusModel):
    currency: str | None = Field(None, description="Currency of the money figures (spec.cost.currency).")
    gpu_hour_price: str | None = Field(None, description="The GPU-hour price applied.")
    per_thousand_requests: str | None = Field(None, description="Cost per 1,000 requests over the last hour.")
    per_gigabyte: str | None = Field(None, description="Cost per GB generated over the last hour.")
    utilization_percent: int | None = Field(None, description="GPU utilisation over the last hour (%).")
    saving_percent: int | None = Field(None, description="Saving against a static deployment sized for the observed peak, over the last day (%).")
    last_hour: CostWindowStatus | None = None
    last_day: CostWindowStatus | None = None


class GenerationClusterStatus(StatusModel):
    observed_generation: int | None = None
    replicas: int | None = Field(None, description="Workload pods that exist (scale subresource).")
    ready_replicas: int | None = None
    desired_replicas: int | None = None
    selector: str | None = Field(None, description="Label selector of the workload pods (scale subresource).")
    batch_size: int | None = Field(None, description="Batch size of new pods (pods may differ while tuning).")
    alert_count: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    metrics: MetricsSummary | None = None
    last_scale: LastScale | None = None
    recommendation: Recommendation | None = Field(None, description="Advisory mode: what the loop would do.")
    alerts: list[ActiveAlert] = Field(default_factory=list)
    cache: CacheStatus | None = None
    cost: CostStatus | None = Field(None, description="What the cluster costs (control loop, every interval).")
