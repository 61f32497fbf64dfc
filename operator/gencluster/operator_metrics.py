"""Prometheus metrics of the operator itself (not of the workloads it runs)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
MANAGED = Gauge("gencluster_operator_managed_clusters",
                "GenerationClusters this operator reconciles.", registry=REGISTRY)
