"""Names and labels of a GenerationCluster's children, in one place."""

from __future__ import annotations

MANAGED_BY = "gencluster-operator"
FIELD_MANAGER = "gencluster-operator"


def workload_name(cluster: str) -> str:
    return f"{cluster}-workload"


def runtime_configmap_name(cluster: str) -> str:
    return f"{cluster}-runtime"


def admin_secret_name(cluster: str) -> str:
    return f"{cluster}-admin"


def labels(cluster: str, component: str) -> dict[str, str]:
    """Recommended labels; `instance` + `component` select a component's pods."""
    return {
        "app.kubernetes.io/name": "generationcluster",
        "app.kubernetes.io/instance": cluster,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": "gencluster",
    }


def selector(cluster: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/instance": cluster, "app.kubernetes.io/component": component}


def selector_string(cluster: str, component: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(cluster, component).items())


def children_selector(cluster: str) -> str:
    """Selects every child the operator made for one GenerationCluster."""
    return f"app.kubernetes.io/instance={cluster},app.kubernetes.io/managed-by={MANAGED_BY}"
