"""Golden-ish checks of the rendered Redis objects (pure; no cluster)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from gencluster.api.spec import GenerationClusterSpec, parse_spec
from gencluster.render.redis import (
    RedisAuth,
    generate_redis_auth,
    redis_auth_from_secret,
    redis_auth_secret,
    redis_conf,
    redis_key_prefix,
    render_redis,
    workload_redis_env,
)

NAME, NS = "demo", "team-a"
LABELS = {
    "app.kubernetes.io/name": "generationcluster",
    "app.kubernetes.io/instance": NAME,
    "app.kubernetes.io/component": "cache",
    "app.kubernetes.io/managed-by": "gencluster-operator",
}
IMAGE = "docker.io/library/redis:7.2-bookworm"


def spec(**cache: Any) -> GenerationClusterSpec:
    return parse_spec({"workload": {"image": "example/workload:1"}, "cache": cache})


def by_kind(objs: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objs}


@pytest.fixture
def auth() -> RedisAuth:
    return generate_redis_auth()


def test_disabled_renders_nothing(auth: RedisAuth) -> None:
    assert render_redis(NAME, NS, spec(mode="disabled"), LABELS, IMAGE, auth) == []
    env = {e["name"]: e for e in workload_redis_env(NAME, spec(mode="disabled"))}
    assert env["GENCLUSTER_REDIS_MODE"]["value"] == "disabled"
    assert "GENCLUSTER_REDIS_URL" not in env


def test_standalone_objects(auth: RedisAuth) -> None:
    objs = render_redis(NAME, NS, spec(mode="standalone", maxMemoryMiB=512), LABELS, IMAGE, auth)
    kinds = by_kind(objs)
    assert list(kinds) == [
        ("ConfigMap", "demo-redis-config"),
        ("Service", "demo-redis"),
        ("StatefulSet", "demo-redis"),
        ("NetworkPolicy", "demo-redis"),
    ]
    assert all(
        o["metadata"]["namespace"] == NS and "ownerReferences" not in o["metadata"] for o in objs
    )
    conf = kinds[("ConfigMap", "demo-redis-config")]["data"]["redis.conf"]
    for line in (
        "maxmemory 512mb",
        "maxmemory-policy allkeys-lru",
        "protected-mode yes",
        "aclfile /etc/redis/auth/users.acl",
        "include /etc/redis/auth/auth.conf",
        'save ""',
    ):
        assert line in conf.splitlines()
    assert "cluster-enabled" not in conf
    svc = kinds[("Service", "demo-redis")]["spec"]
    assert svc["ports"][0]["port"] == 6379 and svc["type"] == "ClusterIP"
    sts = kinds[("StatefulSet", "demo-redis")]["spec"]
    assert sts["replicas"] == 1 and "volumeClaimTemplates" not in sts
    assert sts["selector"]["matchLabels"] == {
        "app.kubernetes.io/instance": NAME,
        "app.kubernetes.io/component": "cache",
    }
    vols = {v["name"]: v for v in sts["template"]["spec"]["volumes"]}
    assert "emptyDir" in vols["data"]


def test_pod_meets_restricted_pod_security(auth: RedisAuth) -> None:
    for mode in ("standalone", "cluster"):
        sts = by_kind(render_redis(NAME, NS, spec(mode=mode), LABELS, IMAGE, auth))[
            ("StatefulSet", "demo-redis")
        ]
        pod = sts["spec"]["template"]["spec"]
        psc = pod["securityContext"]
        assert (
            psc["runAsNonRoot"] is True
            and isinstance(psc["runAsUser"], int)
            and psc["runAsUser"] > 0
        )
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        (c,) = pod["containers"]
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
        assert not mounts["/data"].get("readOnly") and mounts["/etc/redis/auth"]["readOnly"]
        assert c["command"] == ["redis-server"]  # bypasses the public image's root entrypoint
        assert "hostNetwork" not in pod and "privileged" not in sc


def test_probes_authenticate_as_health_user_without_password_on_the_command_line(
    auth: RedisAuth,
) -> None:
    for mode, ready_expect in (("standalone", "PONG"), ("cluster", "cluster_state:ok")):
        sts = by_kind(render_redis(NAME, NS, spec(mode=mode), LABELS, IMAGE, auth))[
            ("StatefulSet", "demo-redis")
        ]
        (c,) = sts["spec"]["template"]["spec"]["containers"]
        ready = " ".join(c["readinessProbe"]["exec"]["command"])
        live = " ".join(c["livenessProbe"]["exec"]["command"])
        assert f"--user {auth.health_username}" in ready and ready_expect in ready
        assert "PONG|LOADING" in live  # loading an AOF is alive, not dead
        assert auth.health_password not in ready + live
        env = {e["name"]: e for e in c["env"]}
        assert env["REDISCLI_AUTH"]["valueFrom"]["secretKeyRef"] == {
            "name": "demo-redis-auth",
            "key": "health-password",
        }


def test_cluster_objects(auth: RedisAuth) -> None:
    s = spec(mode="cluster", shards=4, replicasPerShard=2)
    kinds = by_kind(render_redis(NAME, NS, s, LABELS, IMAGE, auth))
    assert set(kinds) == {
        ("ConfigMap", "demo-redis-config"),
        ("Service", "demo-redis-headless"),
        ("Service", "demo-redis"),
        ("StatefulSet", "demo-redis"),
        ("PodDisruptionBudget", "demo-redis"),
        ("NetworkPolicy", "demo-redis"),
    }
    headless = kinds[("Service", "demo-redis-headless")]["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} == {6379, 16379}
    sts = kinds[("StatefulSet", "demo-redis")]["spec"]
    assert sts["replicas"] == 12 and sts["serviceName"] == "demo-redis-headless"
    assert sts["podManagementPolicy"] == "Parallel"
    (c,) = sts["template"]["spec"]["containers"]
    assert c["args"][-2:] == ["--cluster-announce-ip", "$(POD_IP)"]
    assert {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in c["env"]
    conf = kinds[("ConfigMap", "demo-redis-config")]["data"]["redis.conf"].splitlines()
    assert "cluster-enabled yes" in conf and "cluster-config-file /data/nodes.conf" in conf
    assert "cluster-require-full-coverage no" in conf
    pdb = kinds[("PodDisruptionBudget", "demo-redis")]["spec"]
    assert pdb["maxUnavailable"] == 1
    anti = sts["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert (
        anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]
        == "kubernetes.io/hostname"
    )
    # A shrink still draining keeps the old pod count.
    sts2 = by_kind(render_redis(NAME, NS, s, LABELS, IMAGE, auth, statefulset_replicas=14))[
        ("StatefulSet", "demo-redis")
    ]
    assert sts2["spec"]["replicas"] == 14


def test_network_policy_admits_only_workload_operator_and_peers(auth: RedisAuth) -> None:
    for mode in ("standalone", "cluster"):
        np = by_kind(render_redis(NAME, NS, spec(mode=mode), LABELS, IMAGE, auth))[
            ("NetworkPolicy", "demo-redis")
        ]["spec"]
        assert np["podSelector"]["matchLabels"] == {
            "app.kubernetes.io/instance": NAME,
            "app.kubernetes.io/component": "cache",
        }
        assert np["policyTypes"] == ["Ingress"]
        rules = np["ingress"]
        assert rules[0]["from"] == [
            {
                "podSelector": {
                    "matchLabels": {
                        "app.kubernetes.io/instance": NAME,
                        "app.kubernetes.io/component": "workload",
                    }
                }
            }
        ]
        assert rules[0]["ports"] == [{"protocol": "TCP", "port": 6379}]
        # The operator in its own namespace only, never a look-alike pod elsewhere.
        assert rules[1]["from"] == [
            {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gencluster-system"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "gencluster-operator"}},
            }
        ]
        other = render_redis(NAME, NS, spec(mode=mode), LABELS, IMAGE, auth, operator_namespace="ops")
        ops = by_kind(other)[("NetworkPolicy", "demo-redis")]["spec"]["ingress"][1]["from"][0]
        assert ops["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ops"}
        if mode == "cluster":
            assert {p["port"] for p in rules[2]["ports"]} == {6379, 16379}
            assert (
                rules[2]["from"][0]["podSelector"]["matchLabels"]
                == np["podSelector"]["matchLabels"]
            )
        else:
            assert len(rules) == 2


def test_persistence_uses_volume_claims(auth: RedisAuth) -> None:
    s = spec(
        mode="cluster", persistence={"enabled": True, "sizeMiB": 2048, "storageClassName": "fast"}
    )
    sts = by_kind(render_redis(NAME, NS, s, LABELS, IMAGE, auth))[("StatefulSet", "demo-redis")][
        "spec"
    ]
    (vct,) = sts["volumeClaimTemplates"]
    assert vct["metadata"]["name"] == "data"
    assert vct["spec"]["resources"]["requests"]["storage"] == "2048Mi"
    assert vct["spec"]["storageClassName"] == "fast"
    assert "data" not in {v["name"] for v in sts["template"]["spec"]["volumes"]}
    assert "appendonly yes" in redis_conf(s).splitlines()


def test_secrets_never_in_configmaps_or_pod_specs(auth: RedisAuth) -> None:
    passwords = [
        auth.workload_password,
        auth.admin_password,
        auth.health_password,
        auth.replication_password,
    ]
    for mode in ("standalone", "cluster"):
        objs = render_redis(NAME, NS, spec(mode=mode), LABELS, IMAGE, auth)
        text = json.dumps(objs)
        assert not any(p in text for p in passwords)
    env_text = json.dumps(workload_redis_env(NAME, spec(mode="cluster")))
    assert not any(p in env_text for p in passwords)


def test_auth_secret_roundtrip_and_acl(auth: RedisAuth) -> None:
    secret = redis_auth_secret(NAME, auth)
    assert secret["metadata"]["name"] == "demo-redis-auth" and secret["type"] == "Opaque"
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert redis_auth_from_secret(decoded) == auth
    assert redis_auth_secret(NAME, redis_auth_from_secret(decoded)) == secret  # stable re-render
    acl = decoded["users.acl"].splitlines()
    assert acl[0].startswith("user default off")
    workload = next(line for line in acl if line.startswith(f"user {auth.workload_username} "))
    assert f"~{redis_key_prefix(NAME)}*" in workload and "-@all" in workload
    for denied in ("+@all", "+flushall", "+keys", "+config", "+@admin", "+@dangerous"):
        assert denied not in workload.split()
    assert auth.workload_password not in decoded["users.acl"]  # hashes only
    assert decoded["auth.conf"] == (
        f"masteruser {auth.replication_username}\nmasterauth {auth.replication_password}\n"
    )
    assert generate_redis_auth() != auth


def test_workload_env(auth: RedisAuth) -> None:
    for mode in ("standalone", "cluster"):
        env = {e["name"]: e for e in workload_redis_env(NAME, spec(mode=mode, ttlSeconds=600))}
        assert env["GENCLUSTER_REDIS_MODE"]["value"] == mode
        assert env["GENCLUSTER_REDIS_URL"]["value"] == "redis://demo-redis:6379"
        assert env["GENCLUSTER_REDIS_KEY_PREFIX"]["value"] == "gencl:demo:"
        assert env["GENCLUSTER_CACHE_TTL_SECONDS"]["value"] == "600"
        assert env["GENCLUSTER_REDIS_USERNAME"]["valueFrom"]["secretKeyRef"] == {
            "name": "demo-redis-auth",
            "key": "workload-username",
        }
        assert env["GENCLUSTER_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": "demo-redis-auth",
            "key": "workload-password",
        }


def test_config_or_password_change_rolls_pods(auth: RedisAuth) -> None:
    def ann(s: GenerationClusterSpec, a: RedisAuth) -> dict[str, str]:
        sts = by_kind(render_redis(NAME, NS, s, LABELS, IMAGE, a))[("StatefulSet", "demo-redis")]
        return dict(sts["spec"]["template"]["metadata"]["annotations"])

    base = ann(spec(mode="cluster"), auth)
    assert base == ann(spec(mode="cluster"), auth)  # deterministic
    assert base != ann(spec(mode="cluster", maxMemoryMiB=1024), auth)
    assert base != ann(spec(mode="cluster"), generate_redis_auth())
