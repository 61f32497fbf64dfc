"""The workload's children: Deployment, Service, runtime ConfigMap, admin Secret, PDB,
NetworkPolicy (the HTTP port open to all, the admin port to the operator's pod only)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from ..api.spec import GenerationClusterSpec
from . import names
from .redis import workload_redis_tls_volume
from .security import container_security_context, pod_security_context

RUNTIME_MOUNT = "/etc/gencluster/runtime"
ADMIN_MOUNT = "/var/run/secrets/gencluster/admin"
BATCHING_KEY = "batching.json"
ADMIN_TOKEN_KEY = "token"


def batching_document(batch_size: int, max_queue_delay_ms: int) -> str:
    """The JSON the workload reads at start and the admin API accepts; one format for both."""
    return json.dumps({"maxBatchSize": batch_size, "maxQueueDelayMs": max_queue_delay_ms},
                      sort_keys=True)


def runtime_configmap(name: str, namespace: str, spec: GenerationClusterSpec,
                      batch_size: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": names.runtime_configmap_name(name), "namespace": namespace,
                     "labels": names.labels(name, names.WORKLOAD_COMPONENT)},
        "data": {BATCHING_KEY: batching_document(batch_size, spec.batching.max_queue_delay_ms)},
    }


def admin_secret(name: str, namespace: str, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": names.admin_secret_name(name), "namespace": namespace,
                     "labels": names.labels(name, names.WORKLOAD_COMPONENT)},
        "stringData": {ADMIN_TOKEN_KEY: token},
    }


def _env(name: str, spec: GenerationClusterSpec, redis_env: list[dict[str, Any]]) -> list[dict[str, Any]]:
    w = spec.workload
    env: list[dict[str, Any]] = [
        {"name": "GENCLUSTER_PORT", "value": str(w.port)},
        {"name": "GENCLUSTER_ADMIN_PORT", "value": str(w.admin_port)},
        {"name": "GENCLUSTER_MODEL_NAME", "value": w.model.name},
        {"name": "GENCLUSTER_MODEL_VERSION", "value": w.model.version},
        # With GPUs: CUDA when the node has it; on nodes whose GPUs are fakes (the local cluster)
        # the server runs on the CPU and labels its memory readings device="cpu".
        {"name": "GENCLUSTER_DEVICE", "value": "auto" if w.gpus_per_replica > 0 else "cpu"},
        {"name": "GENCLUSTER_BATCH_MAX_SIZE", "value": str(spec.batching.initial)},
        {"name": "GENCLUSTER_BATCH_MAX_DELAY_MS", "value": str(spec.batching.max_queue_delay_ms)},
        {"name": "GENCLUSTER_QUEUE_MAX", "value": str(w.queue_max)},
        {"name": "GENCLUSTER_RUNTIME_CONFIG", "value": f"{RUNTIME_MOUNT}/{BATCHING_KEY}"},
        {"name": "GENCLUSTER_ADMIN_TOKEN_FILE", "value": f"{ADMIN_MOUNT}/{ADMIN_TOKEN_KEY}"},
        {"name": "GENCLUSTER_MEMORY_BUDGET_BYTES", "value": str(w.memory_budget_mi_b * names.MIB)},
        {"name": "GENCLUSTER_SHUTDOWN_GRACE_SECONDS", "value": str(w.shutdown_grace_seconds)},
        {"name": "GENCLUSTER_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ]
    if w.model.factory:
        env.append({"name": "GENCLUSTER_MODEL_FACTORY", "value": w.model.factory})
    env.extend(redis_env)
    env.extend(tracing_env(name, spec))
    for e in w.env:
        env.append(e.model_dump(by_alias=True, exclude_none=True))
    return env


def tracing_env(name: str, spec: GenerationClusterSpec) -> list[dict[str, Any]]:
    """spec.tracing as the standard OpenTelemetry variables (none when tracing is off, so a
    user's own OTEL_* in workload.env still apply). The sampler follows a caller's sampled
    flag and samples requests without one at the spec's ratio."""
    t = spec.tracing
    if not t.enabled or not t.endpoint:
        return []
    version = quote(spec.workload.model.version, safe="")  # the variable's values are %-encoded
    attrs = ",".join(("k8s.pod.name=$(GENCLUSTER_POD_NAME)", f"gencluster.cluster={name}",
                      f"gencluster.model.version={version}"))
    return [
        {"name": "OTEL_SERVICE_NAME", "value": "gencluster-workload"},
        {"name": "OTEL_RESOURCE_ATTRIBUTES", "value": attrs},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": t.endpoint.rstrip("/")},
        {"name": "OTEL_EXPORTER_OTLP_PROTOCOL", "value": "http/protobuf"},
        {"name": "OTEL_TRACES_EXPORTER", "value": "otlp"},
        {"name": "OTEL_TRACES_SAMPLER", "value": "parentbased_traceidratio"},
        {"name": "OTEL_TRACES_SAMPLER_ARG", "value": t.sampling_ratio},
        {"name": "OTEL_METRICS_EXPORTER", "value": "none"},
        {"name": "OTEL_LOGS_EXPORTER", "value": "none"},
    ]


def _resources(spec: GenerationClusterSpec) -> dict[str, Any]:
    w = spec.workload
    requests = dict(w.resources.requests)
    limits = dict(w.resources.limits)
    if w.gpus_per_replica > 0:
        limits[names.GPU_RESOURCE] = str(w.gpus_per_replica)
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _probe(path: str, port: int, period: int, failures: int) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": names.HTTP_PORT_NAME}, "periodSeconds": period,
            "timeoutSeconds": 2, "failureThreshold": failures}


def deployment(name: str, namespace: str, spec: GenerationClusterSpec, replicas: int,
               redis_env: list[dict[str, Any]]) -> dict[str, Any]:
    w = spec.workload
    labels = names.labels(name, names.WORKLOAD_COMPONENT)
    pod_spec: dict[str, Any] = {
        "securityContext": pod_security_context(),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": w.shutdown_grace_seconds + 5,
        "containers": [{
            "name": "server",
            "image": w.image,
            "imagePullPolicy": w.image_pull_policy,
            "ports": [{"name": names.HTTP_PORT_NAME, "containerPort": w.port, "protocol": "TCP"},
                      {"name": names.ADMIN_PORT_NAME, "containerPort": w.admin_port, "protocol": "TCP"}],
            "env": _env(name, spec, redis_env),
            "resources": _resources(spec),
            "securityContext": container_security_context(),
            "startupProbe": _probe("/healthz", w.port, 2, 90),
            "readinessProbe": _probe("/readyz", w.port, 3, 2),
            "livenessProbe": _probe("/healthz", w.port, 10, 3),
            "volumeMounts": [
                {"name": "tmp", "mountPath": "/tmp"},
                {"name": "runtime", "mountPath": RUNTIME_MOUNT, "readOnly": True},
                {"name": "admin", "mountPath": ADMIN_MOUNT, "readOnly": True},
            ],
        }],
        "volumes": [
            {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "runtime", "configMap": {"name": names.runtime_configmap_name(name)}},
            {"name": "admin", "secret": {"secretName": names.admin_secret_name(name),
                                         "defaultMode": 0o440}},
        ],
    }
    tls_volumes, tls_mounts = workload_redis_tls_volume(spec)
    if tls_volumes:
        pod_spec["containers"][0]["volumeMounts"].extend(tls_mounts)
        pod_spec["volumes"].extend(tls_volumes)
    if w.node_selector:
        pod_spec["nodeSelector"] = dict(w.node_selector)
    if w.tolerations:
        pod_spec["tolerations"] = [t.model_dump(by_alias=True, exclude_none=True) for t in w.tolerations]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names.workload_name(name), "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": names.selector(name, names.WORKLOAD_COMPONENT)},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": labels, "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(w.port),
                    "prometheus.io/path": "/metrics",
                }},
                "spec": pod_spec,
            },
        },
    }


def service(name: str, namespace: str, spec: GenerationClusterSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.workload_name(name), "namespace": namespace,
                     "labels": names.labels(name, names.WORKLOAD_COMPONENT)},
        "spec": {
            "type": "ClusterIP",
            "selector": names.selector(name, names.WORKLOAD_COMPONENT),
            "ports": [{"name": names.HTTP_PORT_NAME, "port": 80, "targetPort": names.HTTP_PORT_NAME,
                       "protocol": "TCP"}],
        },
    }


def pod_disruption_budget(name: str, namespace: str) -> dict[str, Any]:
    """At most one workload pod down at a time for voluntary disruptions (node drains)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": names.workload_name(name), "namespace": namespace,
                     "labels": names.labels(name, names.WORKLOAD_COMPONENT)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": names.selector(name, names.WORKLOAD_COMPONENT)}},
    }


def network_policy(name: str, namespace: str, spec: GenerationClusterSpec,
                   operator_namespace: str) -> dict[str, Any]:
    """Ingress to the workload pods: the HTTP port from anywhere (clients through the Service,
    Prometheus, the kubelet's probes), the admin port only from the operator's pod in the
    operator's namespace (a pod elsewhere wearing its labels gets nothing). Egress is not
    restricted (Redis, the tracing collector, the model's own downloads)."""
    w = spec.workload
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": names.workload_network_policy_name(name), "namespace": namespace,
                     "labels": names.labels(name, names.WORKLOAD_COMPONENT)},
        "spec": {
            "podSelector": {"matchLabels": names.selector(name, names.WORKLOAD_COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": w.port}]},
                {
                    "from": [{
                        "namespaceSelector": {"matchLabels": {
                            "kubernetes.io/metadata.name": operator_namespace}},
                        "podSelector": {"matchLabels": dict(names.OPERATOR_POD_LABELS)},
                    }],
                    "ports": [{"protocol": "TCP", "port": w.admin_port}],
                },
            ],
        },
    }
