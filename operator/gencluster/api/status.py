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
    alerts: list[ActiveAlert] = Field(default_factory=list)
    cache: CacheStatus | None = None
