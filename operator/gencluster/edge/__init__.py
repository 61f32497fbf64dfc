"""The operator's edge: everything that talks to Kopf, the apiserver, the pods and Redis.

kopf_handlers (every Kopf decorator, one registry), reconciler (the reconcile's I/O),
control_loop (the per-cluster loop's I/O), cache_tier and redis_cluster (the cache's I/O),
events (the one path to Kubernetes Events), settings (parsed once), metrics (the operator's own
Prometheus series), main (`gencluster operator`). Tracing's set-up (gencluster.tracing) is
shared with the workload.
The decisions they act on are pure: gencluster.reconcile, gencluster.control, gencluster.render.
"""
