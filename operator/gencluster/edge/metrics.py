"""Prometheus metrics of the operator itself (not of the workloads it runs)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..control.cost import CostReport
from ..control.cycle import Decisions
from ..dashboard.model import classify

REGISTRY = CollectorRegistry(auto_describe=True)

RECONCILES = Counter("gencluster_operator_reconciles_total",
                     "Reconcile passes, by trigger and result.", ["trigger", "result"],
                     registry=REGISTRY)
RECONCILE_SECONDS = Histogram("gencluster_operator_reconcile_duration_seconds",
                              "Time of one reconcile pass.", registry=REGISTRY,
                              buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
APPLIED = Counter("gencluster_operator_applied_objects_total",
                  "Child objects written with server-side apply, by kind.", ["kind"],
                  registry=REGISTRY)
DELETED = Counter("gencluster_operator_deleted_objects_total",
                  "Child objects deleted because the spec no longer wants them, by kind.", ["kind"],
                  registry=REGISTRY)
STATUS_UNCHANGED = Counter("gencluster_operator_status_writes_skipped_total",
                           "Reconcile status writes not sent: the status held them already.",
                           registry=REGISTRY)
MANAGED = Gauge("gencluster_operator_managed_clusters",
                "GenerationClusters this operator reconciles.", registry=REGISTRY)

# -- the control loop's decisions, per GenerationCluster (labels namespace, name) -------------
# Cardinality: per cluster, a fixed set of series (the targets of control/replicas.py, two
# severities, direction x reason class from dashboard.model.REASON_CLASSES) plus one batch-size
# series per pod, at most MAX_PODS_LABELLED; series of a deleted cluster or a gone pod are removed.
MAX_PODS_LABELLED = 64
CLUSTER = ["namespace", "name"]
SEVERITIES = ("warning", "critical")

DESIRED = Gauge("gencluster_operator_desired_replicas",
                "Replicas the control loop decided for the workload.", CLUSTER, registry=REGISTRY)
CURRENT = Gauge("gencluster_operator_current_replicas",
                "The workload Deployment's spec.replicas when the loop decided.", CLUSTER,
                registry=REGISTRY)
READY = Gauge("gencluster_operator_ready_replicas", "Workload pods that are Ready.", CLUSTER,
              registry=REGISTRY)
BATCH = Gauge("gencluster_operator_batch_size",
              "Batch size the loop set for each pod (pod=\"\" : what new pods start with).",
              [*CLUSTER, "pod"], registry=REGISTRY)
TARGET_VALUE = Gauge("gencluster_operator_target_value",
                     "Each autoscaling target's observed value (ms, %, queued per replica).",
                     [*CLUSTER, "target"], registry=REGISTRY)
TARGET_SETTING = Gauge("gencluster_operator_target",
                       "Each autoscaling target's configured value.", [*CLUSTER, "target"],
                       registry=REGISTRY)
TARGET_RATIO = Gauge("gencluster_operator_target_ratio",
                     "Observed value / target (above 1: the target asks for more replicas).",
                     [*CLUSTER, "target"], registry=REGISTRY)
TARGET_REPLICAS = Gauge("gencluster_operator_target_replicas",
                        "Replicas each target proposed (absent while it abstains).",
                        [*CLUSTER, "target"], registry=REGISTRY)
ALERTS = Gauge("gencluster_operator_alerts_firing", "Alert rules firing, by severity.",
               [*CLUSTER, "severity"], registry=REGISTRY)
DECISIONS = Counter("gencluster_operator_decisions_total",
                    "Replica decisions by direction (up, down, hold) and reason class.",
                    [*CLUSTER, "direction", "reason"], registry=REGISTRY)
SCRAPE_ERRORS = Counter("gencluster_operator_scrape_errors_total",
                        "Pod scrapes (or Prometheus queries) that failed.", CLUSTER,
                        registry=REGISTRY)
SCRAPED = Gauge("gencluster_operator_pods_reporting",
                "Workload pods whose metrics the last tick read.", CLUSTER, registry=REGISTRY)
TICK_SECONDS = Gauge("gencluster_operator_loop_duration_seconds",
                     "Time of the cluster's last control-loop tick (scrape, decide, act).",
                     CLUSTER, registry=REGISTRY)
TICK_LAST = Gauge("gencluster_operator_loop_last_tick_timestamp_seconds",
                  "Unix time the cluster's last control-loop tick finished.", CLUSTER,
                  registry=REGISTRY)
TICK_INTERVAL = Gauge("gencluster_operator_loop_interval_seconds",
                      "The cluster's spec.autoscaling.intervalSeconds.", CLUSTER,
                      registry=REGISTRY)
TICKS = Histogram("gencluster_operator_loop_tick_duration_seconds",
                  "Control-loop tick time, all clusters together.", registry=REGISTRY,
                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))

DASHBOARD_CLIENTS = Gauge("gencluster_operator_dashboard_clients",
                          "Dashboard WebSocket clients connected.", registry=REGISTRY)
DASHBOARD_DROPPED = Counter("gencluster_operator_dashboard_dropped_updates_total",
                            "Dashboard updates replaced before a slow client took them.",
                            registry=REGISTRY)

# -- cost (control/cost.py), per cluster and window (1h, 24h) --------------------------------
WINDOWS = ("1h", "24h")
COST_GPU_HOURS = Gauge("gencluster_operator_cost_gpu_hours",
                       "GPU-hours over the window: provisioned (pods x GPUs x hours), busy, or "
                       "static (a fixed deployment sized for the window's peak).",
                       [*CLUSTER, "window", "kind"], registry=REGISTRY)
COST_MONEY = Gauge("gencluster_operator_cost", "Money spent over the window (spec.cost prices).",
                   [*CLUSTER, "window", "currency"], registry=REGISTRY)
COST_PER_1K = Gauge("gencluster_operator_cost_per_thousand_requests",
                    "Cost per 1,000 requests answered with 200 over the window.",
                    [*CLUSTER, "window", "currency"], registry=REGISTRY)
COST_PER_GB = Gauge("gencluster_operator_cost_per_gigabyte",
                    "Cost per GB (1e9 bytes) of meshes generated over the window.",
                    [*CLUSTER, "window", "currency"], registry=REGISTRY)
GPU_UTILIZATION = Gauge("gencluster_operator_gpu_utilization_ratio",
                        "Busy GPU time / provisioned GPU time over the window.",
                        [*CLUSTER, "window"], registry=REGISTRY)
COST_SAVING = Gauge("gencluster_operator_cost_saving_ratio",
                    "1 - provisioned / static GPU time over the window (the static deployment "
                    "is sized for the window's peak).", [*CLUSTER, "window"], registry=REGISTRY)
_COST_SERIES: dict[tuple[str, str], set[tuple[Gauge, tuple[str, ...]]]] = {}


def observe_cost(namespace: str, name: str, reports: Mapping[str, CostReport],
                 currency: str | None) -> None:
    """Set a cluster's cost series from control/cost.py reports keyed by window (1h, 24h);
    a figure that cannot be computed (no prices, no requests) has no series."""
    c = (namespace, name)
    wanted: dict[tuple[Gauge, tuple[str, ...]], float] = {}
    for window, r in reports.items():
        for kind, hours in (("provisioned", r.gpu_hours), ("busy", r.busy_gpu_hours),
                            ("static", r.static_gpu_hours)):
            wanted[(COST_GPU_HOURS, (*c, window, kind))] = hours
        if r.utilization is not None:
            wanted[(GPU_UTILIZATION, (*c, window))] = r.utilization
        if r.saving is not None:
            wanted[(COST_SAVING, (*c, window))] = r.saving
        cur = currency or ""
        for gauge, value in ((COST_MONEY, r.cost), (COST_PER_1K, r.per_thousand_requests),
                             (COST_PER_GB, r.per_gigabyte)):
            if value is not None:
                wanted[(gauge, (*c, window, cur))] = value
    for gauge, labels in _COST_SERIES.get(c, set()) - set(wanted):
        _remove(gauge, labels)
    for (gauge, labels), value in wanted.items():
        gauge.labels(*labels).set(value)
    _COST_SERIES[c] = set(wanted)


_PER_CLUSTER = (DESIRED, CURRENT, READY, SCRAPE_ERRORS, SCRAPED, TICK_SECONDS, TICK_LAST,
                TICK_INTERVAL)
_PER_TARGET = (TARGET_VALUE, TARGET_SETTING, TARGET_RATIO, TARGET_REPLICAS)
_PODS: dict[tuple[str, str], set[str]] = {}
_TARGETS: dict[tuple[str, str], set[str]] = {}
_DECIDED: dict[tuple[str, str], set[tuple[str, str]]] = {}


def observe_tick(namespace: str, name: str, decisions: Decisions | None, *, ready: int,
                 scrape_errors: int, pods_reporting: int, seconds: float, finished: float,
                 interval: float) -> None:
    """Set one cluster's series from one control-loop tick (decisions None: nothing decided)."""
    c = (namespace, name)
    TICK_SECONDS.labels(*c).set(seconds)
    TICK_LAST.labels(*c).set(finished)
    TICK_INTERVAL.labels(*c).set(interval)
    TICKS.observe(seconds)
    if scrape_errors:
        SCRAPE_ERRORS.labels(*c).inc(scrape_errors)
    else:
        SCRAPE_ERRORS.labels(*c)  # present at 0, so rate() has a series to work on
    SCRAPED.labels(*c).set(pods_reporting)
    if decisions is None:
        return
    rep = decisions.replicas
    DESIRED.labels(*c).set(rep.desired)
    CURRENT.labels(*c).set(rep.current)
    READY.labels(*c).set(ready)
    shown = dict(sorted(decisions.batches.sizes.items())[:MAX_PODS_LABELLED])
    for gone in _PODS.get(c, set()) - set(shown):
        _remove(BATCH, (*c, gone))
    for pod, size in shown.items():
        BATCH.labels(*c, pod).set(size)
    BATCH.labels(*c, "").set(decisions.batches.default)
    _PODS[c] = set(shown)
    proposals = {p.metric: p for p in rep.proposals}  # metric names from the code: bounded
    for t in _TARGETS.get(c, set()) - set(proposals):
        for g in _PER_TARGET:
            _remove(g, (*c, t))
    _TARGETS[c] = set(proposals)
    for t, p in proposals.items():
        TARGET_SETTING.labels(*c, t).set(p.target)
        if p.value is None:
            _remove(TARGET_VALUE, (*c, t))
            _remove(TARGET_RATIO, (*c, t))
        else:
            TARGET_VALUE.labels(*c, t).set(p.value)
            if p.target:
                TARGET_RATIO.labels(*c, t).set(p.value / p.target)
        if p.replicas is None:
            _remove(TARGET_REPLICAS, (*c, t))
        else:
            TARGET_REPLICAS.labels(*c, t).set(p.replicas)
    firing: list[str] = [a.severity for a in decisions.alerts.active]
    for sev in SEVERITIES:
        ALERTS.labels(*c, sev).set(firing.count(sev))
    direction, reason = rep.direction or "hold", classify(rep)
    DECISIONS.labels(*c, direction, reason).inc()
    _DECIDED.setdefault(c, set()).add((direction, reason))


def forget_cluster(namespace: str, name: str) -> None:
    """Remove every series of a cluster that no longer exists (bounded cardinality)."""
    c = (namespace, name)
    for g in _PER_CLUSTER:
        _remove(g, c)
    for pod in _PODS.pop(c, set()) | {""}:
        _remove(BATCH, (*c, pod))
    for t in _TARGETS.pop(c, set()):
        for g in _PER_TARGET:
            _remove(g, (*c, t))
    for sev in SEVERITIES:
        _remove(ALERTS, (*c, sev))
    for direction, reason in _DECIDED.pop(c, set()):
        _remove(DECISIONS, (*c, direction, reason))
    for gauge, labels in _COST_SERIES.pop(c, set()):
        _remove(gauge, labels)


def _remove(metric: Gauge | Counter, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
