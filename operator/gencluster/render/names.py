"""Every name the operator writes, in one place: children's names, label and annotation keys,
field managers, resource names and units. Other modules import these; none spells them again."""

from __future__ import annotations

from .. import GROUP

# --- field managers (server-side apply) ------------------------------------------------------
FIELD_MANAGER = "gencluster-operator"  # the reconcile: children and its status fields
CONTROL_FIELD_MANAGER = "gencluster-control"  # the control loop: scale, runtime config, status

# --- label keys and values -------------------------------------------------------------------
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"  # the GenerationCluster's name
COMPONENT_LABEL = "app.kubernetes.io/component"  # workload | cache
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
PART_OF_LABEL = "app.kubernetes.io/part-of"
MANAGED_BY = "gencluster-operator"
WORKLOAD_COMPONENT = "workload"
CACHE_COMPONENT = "cache"
OPERATOR_POD_LABELS = {NAME_LABEL: "gencluster-operator"}  # the chart's operator pod

# --- annotation keys (one prefix: the API group) ---------------------------------------------
ANNOTATION_PREFIX = GROUP
HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/applied-hash"  # a child's rendered-form digest
REDIS_CONFIG_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/redis-config-hash"  # rolls Redis pods
REDIS_AUTH_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/redis-auth-hash"
# spec.cache.tls's Secret, digested: a renewed certificate rolls the Redis pods (Redis reads the
# files at start; the workload re-reads its mounted ca.crt at each new connection).
REDIS_TLS_HASH_ANNOTATION = f"{ANNOTATION_PREFIX}/redis-tls-hash"
KOPF_FINALIZER = f"{ANNOTATION_PREFIX}/kopf-finalizer"
KOPF_DIFFBASE_KEY = "last-handled-configuration"  # Kopf's bookkeeping, under the prefix
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"  # Kubernetes' own

# --- the workload container's named ports (probes and the Service use "http") --------------
HTTP_PORT_NAME = "http"  # generate, probes, /metrics: open to every client
ADMIN_PORT_NAME = "admin"  # /admin/*: only the operator's pod (the workload's NetworkPolicy)

# --- resources and units ---------------------------------------------------------------------
GPU_RESOURCE = "nvidia.com/gpu"
MIB = 1024 * 1024

# A GenerationCluster's name becomes part of every child's name, and Kubernetes derives more
# names from those: Services must be DNS-1035 labels (a letter first, no dots), and a
# StatefulSet's name plus "-" and a 10-character hash is its pods' controller-revision-hash
# label (63 at most), so `<name>-redis` may be 52 long. The CRD refuses longer or other names at
# admission (tests/render/test_name_limits.py renders every child at this length and one more).
CLUSTER_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
MAX_CLUSTER_NAME_LENGTH = 46

# Environment variables the operator sets on the workload container (render/workload.py,
# render/redis.py). A user's workload.env may not set them: the pod would carry two values and
# the server would read one the operator did not mean. tests/render/test_name_limits.py checks
# that every variable the renderers set is listed here.
OPERATOR_ENV = (
    "GENCLUSTER_PORT", "GENCLUSTER_ADMIN_PORT", "GENCLUSTER_MODEL_NAME", "GENCLUSTER_MODEL_VERSION", "GENCLUSTER_MODEL_FACTORY",
    "GENCLUSTER_DEVICE", "GENCLUSTER_BATCH_MAX_SIZE", "GENCLUSTER_BATCH_MAX_DELAY_MS",
    "GENCLUSTER_QUEUE_MAX", "GENCLUSTER_RUNTIME_CONFIG", "GENCLUSTER_ADMIN_TOKEN_FILE",
    "GENCLUSTER_MEMORY_BUDGET_BYTES", "GENCLUSTER_SHUTDOWN_GRACE_SECONDS", "GENCLUSTER_POD_NAME",
    "GENCLUSTER_REDIS_MODE", "GENCLUSTER_CACHE_TTL_SECONDS", "GENCLUSTER_REDIS_URL",
    "GENCLUSTER_REDIS_USERNAME", "GENCLUSTER_REDIS_PASSWORD", "GENCLUSTER_REDIS_KEY_PREFIX",
    "GENCLUSTER_REDIS_TLS_CA_FILE",
)


def workload_name(cluster: str) -> str:
    return f"{cluster}-workload"


def workload_network_policy_name(cluster: str) -> str:
    return f"{cluster}-workload"


def runtime_configmap_name(cluster: str) -> str:
    return f"{cluster}-runtime"


def admin_secret_name(cluster: str) -> str:
    return f"{cluster}-admin"


def labels(cluster: str, component: str) -> dict[str, str]:
    """Recommended labels; `instance` + `component` select a component's pods."""
    return {
        NAME_LABEL: "generationcluster",
        INSTANCE_LABEL: cluster,
        COMPONENT_LABEL: component,
        MANAGED_BY_LABEL: MANAGED_BY,
        PART_OF_LABEL: "gencluster",
    }


def selector(cluster: str, component: str) -> dict[str, str]:
    return {INSTANCE_LABEL: cluster, COMPONENT_LABEL: component}


def selector_string(cluster: str, component: str) -> str:
    return ",".join(f"{k}={v}" for k, v in selector(cluster, component).items())


def children_selector(cluster: str) -> str:
    """Selects every child the operator made for one GenerationCluster."""
    return f"{INSTANCE_LABEL}={cluster},{MANAGED_BY_LABEL}={MANAGED_BY}"


# --- the Redis tier's children ---------------------------------------------------------------


def redis_secret_name(cluster: str) -> str:
    return f"{cluster}-redis-auth"


def redis_service_name(cluster: str) -> str:
    return f"{cluster}-redis"


def redis_headless_service_name(cluster: str) -> str:
    return f"{cluster}-redis-headless"


def redis_statefulset_name(cluster: str) -> str:
    return f"{cluster}-redis"


def redis_configmap_name(cluster: str) -> str:
    return f"{cluster}-redis-config"


# --- Redis TLS (spec.cache.tls): the keys of the user's kubernetes.io/tls Secret ------------
TLS_CERT_KEY = "tls.crt"
TLS_KEY_KEY = "tls.key"
TLS_CA_KEY = "ca.crt"
TLS_SECRET_KEYS = (TLS_CERT_KEY, TLS_KEY_KEY, TLS_CA_KEY)


def redis_key_prefix(cluster: str) -> str:
    """Every key the workload writes starts with this; its ACL user may touch nothing else."""
    return f"gencl:{cluster}:"
