"""The Redis cache tier's children: config, StatefulSet, Services, PDB, NetworkPolicy, auth Secret.

Pure renderers. Passwords never enter a ConfigMap: the Secret `<name>-redis-auth` carries a
complete ACL file (`users.acl`, passwords as SHA-256 hashes) and `auth.conf` (the replication
credentials, plaintext because Redis must send them), both mounted read-only into the pod and
referenced from `redis.conf` with `aclfile` and `include`. See docs/cache.md.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.spec import GenerationClusterSpec
from .names import (
    CACHE_COMPONENT,
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    OPERATOR_POD_LABELS,
    REDIS_AUTH_HASH_ANNOTATION,
    REDIS_CONFIG_HASH_ANNOTATION,
    REDIS_TLS_HASH_ANNOTATION,
    TLS_CA_KEY,
    TLS_CERT_KEY,
    TLS_KEY_KEY,
    TLS_SECRET_KEYS,
    WORKLOAD_COMPONENT,
    redis_configmap_name,
    redis_headless_service_name,
    redis_key_prefix,
    redis_secret_name,
    redis_service_name,
    redis_statefulset_name,
)
from .security import container_security_context, pod_security_context

REDIS_PORT = 6379
BUS_PORT = 16379  # Redis Cluster bus: REDIS_PORT + 10000
REDIS_UID = 999  # the public redis image's user; any non-root uid works (fsGroup owns /data)
CONF_DIR = "/etc/redis/conf"
AUTH_DIR = "/etc/redis/auth"
DATA_DIR = "/data"
TLS_DIR = "/etc/redis/tls"  # spec.cache.tls: the user's Secret, read-only
WORKLOAD_TLS_DIR = "/etc/gencluster/redis-tls"  # the workload pod: ca.crt only
CLUSTER_NODE_TIMEOUT_MS = 5000

# Secret keys (the lead reads them back with redis_auth_from_secret; never regenerate).
_USER_KEYS = ("workload", "admin", "health", "replication")
ACL_FILE_KEY = "users.acl"
AUTH_CONF_KEY = "auth.conf"

# What each user may run. Documented in docs/cache.md; tests/redis checks the refusals.
WORKLOAD_COMMANDS = (
    # data path of the workload's cache layer
    "get",
    "set",
    "getex",
    "mget",
    "exists",
    "del",
    "unlink",
    "expire",
    "pexpire",
    "ttl",
    "pttl",
    # connection set-up (HELLO only with RESP3; CLIENT SETINFO, Redis 7.2+, is left out: redis-py
    # ignores its refusal, and naming it would make Redis 7.0 reject the whole ACL file)
    "ping",
    "echo",
    "hello",
    "client|setname",
    "client|getname",
    "client|id",
    # redis-py RedisCluster: slot map, key positions, replica reads
    "cluster|slots",
    "cluster|shards",
    "cluster|info",
    "cluster|myid",
    "cluster|keyslot",
    "command",
    "readonly",
    "readwrite",
)
ADMIN_COMMANDS = (
    "ping",
    "echo",
    "hello",
    "client|setname",
    "info",
    "dbsize",
    "role",
    "cluster",  # every CLUSTER subcommand: meet, addslotsrange, setslot, replicate, forget, ...
    "migrate",
    "restore-asking",
    "asking",
    "select",  # MIGRATE moves keys, authenticating as admin
    "readonly",
    "readwrite",
    "command",
    "wait",
)
HEALTH_COMMANDS = ("ping", "info", "cluster|info", "cluster|nodes")
# cluster|failover: a master's pod, stopping, asks its replica to take over (_handover_command).
REPLICATION_COMMANDS = ("ping", "psync", "sync", "replconf", "cluster|failover")


@dataclass(frozen=True)
class RedisAuth:
    """Usernames and passwords of the Redis ACL users; kept in the Secret `<name>-redis-auth`."""

    workload_username: str
    workload_password: str = field(repr=False)  # never in a repr or a log line
    admin_username: str
    admin_password: str = field(repr=False)  # never in a repr or a log line
    health_username: str
    health_password: str = field(repr=False)  # never in a repr or a log line
    replication_username: str
    replication_password: str = field(repr=False)  # never in a repr or a log line


def generate_redis_auth() -> RedisAuth:
    """Fresh random passwords (URL-safe, so they need no quoting in redis.conf or ACL files)."""
    return RedisAuth(
        workload_username="gencl-workload",
        workload_password=secrets.token_urlsafe(32),
        admin_username="gencl-admin",
        admin_password=secrets.token_urlsafe(32),
        health_username="gencl-health",
        health_password=secrets.token_urlsafe(32),
        replication_username="gencl-replication",
        replication_password=secrets.token_urlsafe(32),
    )


def redis_auth_from_secret(data: Mapping[str, str]) -> RedisAuth:
    """RedisAuth from a Secret's base64-decoded `data`, so re-reconciles keep the passwords."""
    kwargs = {
        f"{user}_{what}": str(data[f"{user}-{what}"])
        for user in _USER_KEYS
        for what in ("username", "password")
    }
    return RedisAuth(**kwargs)


def redis_pod_count(spec: GenerationClusterSpec) -> int:
    """Pods of the Redis StatefulSet the spec asks for (0 when the cache is disabled)."""
    c = spec.cache
    if c.mode == "disabled":
        return 0
    if c.mode == "standalone":
        return 1
    return c.shards * (1 + c.replicas_per_shard)


def _hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def _rules(commands: tuple[str, ...]) -> str:
    return " ".join(f"+{c}" for c in commands)


def acl_file(name: str, auth: RedisAuth) -> str:
    """users.acl: default user off; each user with a hashed password and least privilege."""
    a = auth
    lines = [
        "user default off resetpass resetkeys resetchannels -@all",
        f"user {a.workload_username} on #{_hash(a.workload_password)} resetkeys "
        f"~{redis_key_prefix(name)}* resetchannels -@all {_rules(WORKLOAD_COMMANDS)}",
        f"user {a.admin_username} on #{_hash(a.admin_password)} ~* resetchannels -@all "
        f"{_rules(ADMIN_COMMANDS)}",
        f"user {a.health_username} on #{_hash(a.health_password)} resetkeys resetchannels -@all "
        f"{_rules(HEALTH_COMMANDS)}",
        f"user {a.replication_username} on #{_hash(a.replication_password)} resetkeys "
        f"resetchannels -@all {_rules(REPLICATION_COMMANDS)}",
    ]
    return "\n".join(lines) + "\n"


def auth_conf(auth: RedisAuth) -> str:
    """Included by redis.conf: how a replica authenticates to its master."""
    return f"masteruser {auth.replication_username}\nmasterauth {auth.replication_password}\n"


def redis_auth_secret(name: str, auth: RedisAuth) -> dict[str, Any]:
    """Secret `<name>-redis-auth`: usernames, passwords, users.acl and auth.conf (no namespace)."""
    plain = {
        f"{user}-{what}": str(getattr(auth, f"{user}_{what}"))
        for user in _USER_KEYS
        for what in ("username", "password")
    }
    plain |= {ACL_FILE_KEY: acl_file(name, auth), AUTH_CONF_KEY: auth_conf(auth)}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": redis_secret_name(name)},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in plain.items()},
    }


def redis_conf(
    spec: GenerationClusterSpec,
    *,
    auth_dir: str = AUTH_DIR,
    data_dir: str = DATA_DIR,
    tls_dir: str = TLS_DIR,
    cluster_node_timeout_ms: int = CLUSTER_NODE_TIMEOUT_MS,
) -> str:
    """redis.conf for the spec. Holds no secret; paths are parameters so tests run it as is."""
    c = spec.cache
    persistent = c.persistence.enabled
    if c.tls is None:
        listen = [f"port {REDIS_PORT}"]
    else:
        # TLS only: no plaintext port. Clients need no certificate of their own (the ACL
        # passwords still authenticate them); they verify the server against ca.crt.
        listen = [
            "port 0",
            f"tls-port {REDIS_PORT}",
            f"tls-cert-file {tls_dir}/{TLS_CERT_KEY}",
            f"tls-key-file {tls_dir}/{TLS_KEY_KEY}",
            f"tls-ca-cert-file {tls_dir}/{TLS_CA_KEY}",
            "tls-auth-clients optional",
        ]
        if c.mode == "cluster":
            listen += ["tls-replication yes", "tls-cluster yes"]  # MIGRATE and the bus too
    lines = [
        "# Rendered by the gencluster operator. Credentials: aclfile + include from the Secret.",
        "bind * -::*",
        *listen,
        "protected-mode yes",
        "daemonize no",
        'logfile ""',
        "loglevel notice",
        "tcp-keepalive 60",
        "databases 1",
        f"dir {data_dir}",
        f"aclfile {auth_dir}/{ACL_FILE_KEY}",
        f"include {auth_dir}/{AUTH_CONF_KEY}",
        f"maxmemory {c.max_memory_mi_b}mb",
        "maxmemory-policy allkeys-lru",
        "maxmemory-samples 10",
        "lazyfree-lazy-eviction yes",
        "lazyfree-lazy-expire yes",
        "replica-read-only yes",
        "repl-diskless-sync yes",
        "repl-diskless-sync-delay 0",  # a replica that joins (repair) syncs at once
    ]
    if persistent:
        lines += ["appendonly yes", "appendfsync everysec", 'save ""']
    else:
        lines += ["appendonly no", 'save ""', "repl-diskless-load on-empty-db"]
    if c.mode == "cluster":
        lines += [
            "cluster-enabled yes",
            f"cluster-config-file {data_dir}/nodes.conf",
            f"cluster-node-timeout {cluster_node_timeout_ms}",
            # A cache keeps serving the slots it still has rather than stopping entirely.
            "cluster-require-full-coverage no",
            "cluster-allow-reads-when-down no",
            # Availability over freshness: any replica may take over, however stale.
            "cluster-replica-validity-factor 0",
            "cluster-migration-barrier 1",
            "cluster-allow-replica-migration yes",
        ]
    return "\n".join(lines) + "\n"


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _selector(name: str, labels: Mapping[str, str]) -> dict[str, str]:
    return {
        INSTANCE_LABEL: labels.get(INSTANCE_LABEL, name),
        COMPONENT_LABEL: labels.get(COMPONENT_LABEL, CACHE_COMPONENT),
    }


def _meta(name: str, namespace: str, labels: Mapping[str, str]) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": dict(labels)}


def _redis_cli(user: str, tls: bool, host: str = "127.0.0.1", port: str = str(REDIS_PORT)) -> str:
    """redis-cli as the pod's hooks run it; the password comes from REDISCLI_AUTH (env, from the
    Secret), which keeps it off the command line."""
    tls_flags = f"--tls --cacert {TLS_DIR}/{TLS_CA_KEY} " if tls else ""
    return f"redis-cli --no-auth-warning {tls_flags}--user {user} -h {host} -p {port}"


def _cli(auth: RedisAuth, command: str, expect: str, tls: bool = False) -> str:
    # redis-cli exits 0 on error replies (NOAUTH, LOADING), hence the grep on the reply.
    return f"{_redis_cli(auth.health_username, tls)} {command} | grep -Eq '{expect}'"


def _probe_command(auth: RedisAuth, command: str, expect: str, tls: bool = False) -> list[str]:
    return ["sh", "-c", _cli(auth, command, expect, tls)]


def _cluster_ready_command(auth: RedisAuth, tls: bool = False) -> list[str]:
    """Ready = joined (cluster_state ok) and either a master serving slots or a replica synced
    with its master, so a rollout never moves on while its replacement is still empty. (A new
    node reads cluster_state ok as soon as it is met, as a master without slots: with
    cluster-require-full-coverage no, that state says nothing about slots.)"""
    return [
        "sh",
        "-c",
        f"{_cli(auth, 'cluster info', '^cluster_state:ok', tls)} && "
        f"{{ {_cli(auth, 'info replication', '^master_link_status:up', tls)} || "
        f"{_cli(auth, 'cluster nodes', 'myself,master - [0-9]+ [0-9]+ [0-9]+ connected [0-9]', tls)}; }}",
    ]


HANDOVER_WAIT_S = 10  # a manual failover gives up after 5 s (CLUSTER_MF_TIMEOUT); margin


def _handover_command(auth: RedisAuth, tls: bool = False) -> list[str]:
    """preStop of a Redis Cluster pod: a master hands its slots to an online replica (CLUSTER
    FAILOVER, sent to the replica as the replication user) and waits until it is a replica
    itself. Without it a roll deletes masters and leaves the failover to the node timeout; a
    roll that moves on before that failover (a fresh pod is Ready within seconds) takes a second
    master away and leaves a minority that can elect nobody. Best effort: a replica, or a
    master with no online replica, stops at once."""
    me = _redis_cli(auth.health_username, tls)
    replica = _redis_cli('"$user"', tls, host='"$1"', port='"$2"')
    conf = f"{AUTH_DIR}/{AUTH_CONF_KEY}"
    script = (
        f"info=$({me} info replication) || exit 0; "
        "echo \"$info\" | grep -q '^role:master' || exit 0; "
        # INFO replication lists replicas as slave<n>:ip=<ip>,port=<port>,state=online,...
        "to=$(echo \"$info\" | sed -n "
        "'s/^slave[0-9]*:ip=\\([^,]*\\),port=\\([0-9]*\\),state=online.*/\\1 \\2/p' | head -n 1); "
        "[ -n \"$to\" ] || exit 0; "
        "set -- $to; "
        f"user=$(sed -n 's/^masteruser //p' {conf}); "
        f"REDISCLI_AUTH=$(sed -n 's/^masterauth //p' {conf}) "
        f"{replica} "
        "cluster failover | grep -q '^OK' || exit 0; "
        f"i=0; while [ $i -lt {HANDOVER_WAIT_S * 4} ]; do "
        f"{me} info replication | grep -q '^role:slave' && exit 0; "
        "sleep 0.25; i=$((i+1)); done"
    )
    return ["sh", "-c", script]


def _container(
    name: str, spec: GenerationClusterSpec, image: str, auth: RedisAuth
) -> dict[str, Any]:
    c = spec.cache
    cluster = c.mode == "cluster"
    args = [f"{CONF_DIR}/redis.conf"]
    env: list[dict[str, Any]] = [
        {
            "name": "REDISCLI_AUTH",
            "valueFrom": {
                "secretKeyRef": {"name": redis_secret_name(name), "key": "health-password"}
            },
        },
    ]
    ports = [{"name": "redis", "containerPort": REDIS_PORT, "protocol": "TCP"}]
    if cluster:
        env.insert(0, {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        args += ["--cluster-announce-ip", "$(POD_IP)"]
        ports.append({"name": "bus", "containerPort": BUS_PORT, "protocol": "TCP"})
    tls = c.tls is not None
    ready = (_cluster_ready_command(auth, tls) if cluster
             else _probe_command(auth, "ping", "^PONG", tls))
    # LOADING means alive (an AOF is being replayed): never kill a pod for that.
    alive = _probe_command(auth, "ping", "^(PONG|LOADING)", tls)
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONF_DIR, "readOnly": True},
        {"name": "auth", "mountPath": AUTH_DIR, "readOnly": True},
        {"name": "data", "mountPath": DATA_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if tls:
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
    mem = c.max_memory_mi_b
    return {
        "name": "redis",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["redis-server"],
        "args": args,
        "env": env,
        "ports": ports,
        **({"lifecycle": {"preStop": {"exec": {"command": _handover_command(auth, tls)}}}}
           if cluster else {}),
        "readinessProbe": {
            "exec": {"command": ready},
            "initialDelaySeconds": 2,
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "livenessProbe": {
            "exec": {"command": alive},
            "initialDelaySeconds": 15,
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 6,
        },
        # maxmemory bounds the data; forks (AOF rewrite, full sync) and buffers need headroom.
        "resources": {
            "requests": {"cpu": "100m", "memory": f"{mem + 64}Mi"},
            "limits": {"memory": f"{2 * mem + 64}Mi"},
        },
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }


def _statefulset(
    name: str,
    namespace: str,
    spec: GenerationClusterSpec,
    labels: Mapping[str, str],
    image: str,
    auth: RedisAuth,
    replicas: int,
    tls_hash: str | None = None,
) -> dict[str, Any]:
    c = spec.cache
    cluster = c.mode == "cluster"
    sel = _selector(name, labels)
    conf = redis_conf(spec)
    volumes: list[dict[str, Any]] = [
        {
            "name": "config",
            "configMap": {
                "name": redis_configmap_name(name),
                "defaultMode": 0o444,
                "items": [{"key": "redis.conf", "path": "redis.conf"}],
            },
        },
        {
            "name": "auth",
            "secret": {
                "secretName": redis_secret_name(name),
                "defaultMode": 0o440,
                "items": [
                    {"key": ACL_FILE_KEY, "path": ACL_FILE_KEY},
                    {"key": AUTH_CONF_KEY, "path": AUTH_CONF_KEY},
                ],
            },
        },
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
    ]
    if c.tls is not None:
        # The user's kubernetes.io/tls Secret (or cert-manager's); the pod waits until it exists.
        volumes.append(
            {
                "name": "tls",
                "secret": {
                    "secretName": c.tls.secret_name,
                    "defaultMode": 0o440,
                    "items": [{"key": k, "path": k} for k in TLS_SECRET_KEYS],
                },
            }
        )
    sts_spec: dict[str, Any] = {
        "replicas": replicas,
        "serviceName": redis_headless_service_name(name) if cluster else redis_service_name(name),
        "selector": {"matchLabels": sel},
        "podManagementPolicy": "Parallel" if cluster else "OrderedReady",
        "updateStrategy": {"type": "RollingUpdate"},
    }
    if c.persistence.enabled:
        pvc_spec: dict[str, Any] = {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{c.persistence.size_mi_b}Mi"}},
        }
        if c.persistence.storage_class_name:
            pvc_spec["storageClassName"] = c.persistence.storage_class_name
        sts_spec["volumeClaimTemplates"] = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "labels": dict(sel)},
                "spec": pvc_spec,
            }
        ]
        # It is a cache: a shrink or a delete must not leave stale nodes.conf files behind.
        sts_spec["persistentVolumeClaimRetentionPolicy"] = {
            "whenDeleted": "Delete",
            "whenScaled": "Delete",
        }
    else:
        # Holds nodes.conf (cluster identity, lives as long as the pod) and a full-sync RDB.
        volumes.append(
            {"name": "data", "emptyDir": {"sizeLimit": f"{2 * c.max_memory_mi_b + 64}Mi"}}
        )
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(REDIS_UID),
        "terminationGracePeriodSeconds": 30,
        "containers": [_container(name, spec, image, auth)],
        "volumes": volumes,
    }
    if cluster:
        pod_spec["affinity"] = {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 100,
                        "podAffinityTerm": {
                            "labelSelector": {"matchLabels": sel},
                            "topologyKey": "kubernetes.io/hostname",
                        },
                    }
                ]
            }
        }
    sts_spec["template"] = {
        "metadata": {
            "labels": dict(labels) | sel,
            # A changed config or password rolls the pods (readiness gates each step).
            "annotations": {
                REDIS_CONFIG_HASH_ANNOTATION: _digest(conf),
                REDIS_AUTH_HASH_ANNOTATION: _digest(
                    acl_file(name, auth), auth_conf(auth)
                ),
            } | ({REDIS_TLS_HASH_ANNOTATION: tls_hash} if c.tls is not None and tls_hash else {}),
        },
        "spec": pod_spec,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta(redis_statefulset_name(name), namespace, labels),
        "spec": sts_spec,
    }


def _service(
    svc_name: str, namespace: str, labels: Mapping[str, str], sel: dict[str, str], *, headless: bool
) -> dict[str, Any]:
    ports: list[dict[str, Any]] = [
        {"name": "redis", "port": REDIS_PORT, "targetPort": "redis", "protocol": "TCP"}
    ]
    spec: dict[str, Any] = {"selector": sel, "ports": ports}
    if headless:
        ports.append({"name": "bus", "port": BUS_PORT, "targetPort": "bus", "protocol": "TCP"})
        spec |= {"clusterIP": "None", "publishNotReadyAddresses": True}
    else:
        spec["type"] = "ClusterIP"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(svc_name, namespace, labels),
        "spec": spec,
    }


def _network_policy(
    name: str, namespace: str, labels: Mapping[str, str], sel: dict[str, str], cluster: bool,
    operator_namespace: str,
) -> dict[str, Any]:
    """Ingress to Redis: this cluster's workload pods (same namespace), the operator's own pod
    (in its namespace only: a pod elsewhere wearing its labels gets nothing), and in cluster mode
    the Redis pods among themselves."""
    redis_port = [{"protocol": "TCP", "port": REDIS_PORT}]
    ingress: list[dict[str, Any]] = [
        {
            "from": [
                {
                    "podSelector": {
                        "matchLabels": {
                            INSTANCE_LABEL: sel[INSTANCE_LABEL],
                            COMPONENT_LABEL: WORKLOAD_COMPONENT,
                        }
                    }
                }
            ],
            "ports": redis_port,
        },
        {
            "from": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": operator_namespace}},
                 "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)}}
            ],
            "ports": redis_port,
        },
    ]
    if cluster:
        # Replication (6379) and the cluster bus (16379, which has no auth) between Redis pods.
        ingress.append(
            {
                "from": [{"podSelector": {"matchLabels": dict(sel)}}],
                "ports": [*redis_port, {"protocol": "TCP", "port": BUS_PORT}],
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(f"{name}-redis", namespace, labels),
        "spec": {
            "podSelector": {"matchLabels": dict(sel)},
            "policyTypes": ["Ingress"],
            "ingress": ingress,
        },
    }


def render_redis(
    name: str,
    namespace: str,
    spec: GenerationClusterSpec,
    labels: dict[str, str],
    default_image: str,
    acl: RedisAuth,
    *,
    statefulset_replicas: int | None = None,
    operator_namespace: str = "gencluster-system",
    tls_hash: str | None = None,
) -> list[dict[str, Any]]:
    """Desired Redis children (no owner references), config before its users; [] when disabled.

    `statefulset_replicas` overrides the pod count while a cluster shrink is still draining
    (see `gencluster.rediscluster.statefulset_replicas`). `tls_hash`: the digest of
    spec.cache.tls's Secret; a new one (a renewed certificate) rolls the pods.
    """
    c = spec.cache
    if c.mode == "disabled":
        return []
    cluster = c.mode == "cluster"
    image = c.image or default_image
    sel = _selector(name, labels)
    replicas = redis_pod_count(spec) if statefulset_replicas is None else statefulset_replicas
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(redis_configmap_name(name), namespace, labels),
            "data": {"redis.conf": redis_conf(spec)},
        }
    ]
    if cluster:
        objs.append(
            _service(redis_headless_service_name(name), namespace, labels, sel, headless=True)
        )
    objs.append(_service(redis_service_name(name), namespace, labels, sel, headless=False))
    objs.append(_statefulset(name, namespace, spec, labels, image, acl, replicas, tls_hash))
    if cluster:
        objs.append(
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": _meta(f"{name}-redis", namespace, labels),
                "spec": {
                    "maxUnavailable": 1,
                    "selector": {"matchLabels": sel},
                    "unhealthyPodEvictionPolicy": "AlwaysAllow",
                },
            }
        )
    objs.append(_network_policy(name, namespace, labels, sel, cluster, operator_namespace))
    return objs


def workload_redis_env(name: str, spec: GenerationClusterSpec) -> list[dict[str, Any]]:
    """Workload container env: the Service URL (never pod IPs), user and password by reference."""
    c = spec.cache
    env: list[dict[str, Any]] = [
        {"name": "GENCLUSTER_REDIS_MODE", "value": c.mode},
        {"name": "GENCLUSTER_CACHE_TTL_SECONDS", "value": str(c.ttl_seconds)},
    ]
    if c.mode == "disabled":
        return env

    def ref(key: str) -> dict[str, Any]:
        return {"secretKeyRef": {"name": redis_secret_name(name), "key": key}}

    scheme = "redis" if c.tls is None else "rediss"
    env += [
        {
            "name": "GENCLUSTER_REDIS_URL",
            "value": f"{scheme}://{redis_service_name(name)}:{REDIS_PORT}",
        },
        {"name": "GENCLUSTER_REDIS_USERNAME", "valueFrom": ref("workload-username")},
        {"name": "GENCLUSTER_REDIS_PASSWORD", "valueFrom": ref("workload-password")},
        {"name": "GENCLUSTER_REDIS_KEY_PREFIX", "value": redis_key_prefix(name)},
    ]
    if c.tls is not None:
        env.append(
            {"name": "GENCLUSTER_REDIS_TLS_CA_FILE", "value": f"{WORKLOAD_TLS_DIR}/{TLS_CA_KEY}"}
        )
    return env


def workload_redis_tls_volume(
    spec: GenerationClusterSpec,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, volumeMounts) of the workload pod for spec.cache.tls: the Secret's ca.crt only,
    read-only. Optional, so a missing Secret never keeps the workload from starting: the cache
    is an optimisation (its connections fail, every lookup is a miss, CacheReady says why)."""
    c = spec.cache
    if c.mode == "disabled" or c.tls is None:
        return [], []
    volume = {
        "name": "redis-tls",
        "secret": {
            "secretName": c.tls.secret_name,
            "defaultMode": 0o444,
            "optional": True,
            "items": [{"key": TLS_CA_KEY, "path": TLS_CA_KEY}],
        },
    }
    mount = {"name": "redis-tls", "mountPath": WORKLOAD_TLS_DIR, "readOnly": True}
    return [volume], [mount]
