"""`gencluster simulate`: a trace-driven model of a GenerationCluster, run under the operator's
own decisions and under HPA-, KEDA-style and fixed baselines (see docs/autoscaling.md)."""
