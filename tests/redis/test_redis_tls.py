"""TLS for Redis (spec.cache.tls): the rendered configuration, then real redis-server processes
serving it on 127.0.0.1 with certificates the test makes with openssl (a CA and a server
certificate for 127.0.0.1, laid out as the user's kubernetes.io/tls Secret mounts them).

The clients are the ones that run in the cluster: the workload's RedisTier (standalone and
RedisCluster) and the operator's AdminConnector driving the planner and executor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis_fleet import (
    OPENSSL,
    REDIS_SERVER,
    TLS_SECRET,
    Fleet,
    RedisNode,
    TLSFiles,
    make_certs,
    make_spec,
    rendered_container,
    rendered_statefulset,
    settle_with,
    write_auth_dir,
)

from gencluster.rediscluster import AdminConnector
from gencluster.rediscluster.model import SLOTS
from gencluster.render import names, workload
from gencluster.render.redis import (
    TLS_DIR,
    WORKLOAD_TLS_DIR,
    RedisAuth,
    redis_conf,
    redis_key_prefix,
    workload_redis_env,
)
from gencluster_workload.redis_tier import RedisTier

PREFIX = redis_key_prefix("demo")


# --- the rendered objects (pure) ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_tls_config_serves_tls_only_with_the_secrets_files(mode: str) -> None:
    lines = redis_conf(make_spec(mode, tls=True)).splitlines()
    assert "port 0" in lines and "port 6379" not in lines
    for line in ("tls-port 6379", f"tls-cert-file {TLS_DIR}/tls.crt",
                 f"tls-key-file {TLS_DIR}/tls.key", f"tls-ca-cert-file {TLS_DIR}/ca.crt",
                 "tls-auth-clients optional"):
        assert line in lines, line
    # The ACL users and passwords stay: TLS encrypts, the passwords authenticate.
    assert any(x.startswith("aclfile ") for x in lines)
    cluster_lines = {"tls-cluster yes", "tls-replication yes"}
    assert (cluster_lines <= set(lines)) == (mode == "cluster")
    plain = redis_conf(make_spec(mode)).splitlines()
    assert "port 6379" in plain and not any(x.startswith("tls-") for x in plain)


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_statefulset_mounts_the_secret_read_only_and_probes_use_tls(
    mode: str, auth: RedisAuth
) -> None:
    sts = rendered_statefulset(make_spec(mode, tls=True), auth)
    pod = sts["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "tls"]
    assert vol["secret"]["secretName"] == TLS_SECRET
    assert [i["key"] for i in vol["secret"]["items"]] == ["tls.crt", "tls.key", "ca.crt"]
    assert vol["secret"]["defaultMode"] == 0o440 and "optional" not in vol["secret"]
    (c,) = pod["containers"]
    (mount,) = [m for m in c["volumeMounts"] if m["name"] == "tls"]
    assert mount == {"name": "tls", "mountPath": TLS_DIR, "readOnly": True}
    for probe in ("readinessProbe", "livenessProbe"):
        script = c[probe]["exec"]["command"][2]
        calls = script.split(" && ")
        assert all(f"redis-cli --no-auth-warning --tls --cacert {TLS_DIR}/ca.crt " in x
                   for x in calls), script
    if mode == "cluster":  # the preStop handover: to itself and to the replica, both over TLS
        script = c["lifecycle"]["preStop"]["exec"]["command"][2]
        assert script.count("redis-cli ") == script.count(
            f"redis-cli --no-auth-warning --tls --cacert {TLS_DIR}/ca.crt ") == 3, script
    # Without TLS nothing of it is rendered.
    plain = json.dumps(rendered_statefulset(make_spec(mode), auth))
    assert "--tls" not in plain and TLS_DIR not in plain and TLS_SECRET not in plain


@pytest.mark.parametrize("mode", ["standalone", "cluster"])
def test_turning_tls_on_or_off_rolls_the_redis_pods(mode: str, auth: RedisAuth) -> None:
    on = rendered_statefulset(make_spec(mode, tls=True), auth)["spec"]["template"]["metadata"]["annotations"]
    off = rendered_statefulset(make_spec(mode), auth)["spec"]["template"]["metadata"]["annotations"]
    assert on[names.REDIS_CONFIG_HASH_ANNOTATION] != off[names.REDIS_CONFIG_HASH_ANNOTATION]
    assert on[names.REDIS_AUTH_HASH_ANNOTATION] == off[names.REDIS_AUTH_HASH_ANNOTATION]


def test_the_workload_is_told_to_use_tls_and_gets_only_the_ca() -> None:
    spec = make_spec("cluster", tls=True)
    env = {e["name"]: e.get("value") for e in workload_redis_env("demo", spec)}
    assert env["GENCLUSTER_REDIS_URL"] == "rediss://demo-redis:6379"
    assert env["GENCLUSTER_REDIS_TLS_CA_FILE"] == f"{WORKLOAD_TLS_DIR}/ca.crt"
    assert set(env) <= set(names.OPERATOR_ENV)
    dep = workload.deployment("demo", "ns", spec, 1, workload_redis_env("demo", spec))
    pod = dep["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "redis-tls"]
    # ca.crt only (never the key); optional: a missing Secret never keeps the workload down.
    assert vol["secret"] == {"secretName": TLS_SECRET, "defaultMode": 0o444, "optional": True,
                             "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "redis-tls"]
    assert mount == {"name": "redis-tls", "mountPath": WORKLOAD_TLS_DIR, "readOnly": True}
    plain = make_spec("cluster")
    env = {e["name"]: e.get("value") for e in workload_redis_env("demo", plain)}
    assert env["GENCLUSTER_REDIS_URL"] == "redis://demo-redis:6379"
    assert "GENCLUSTER_REDIS_TLS_CA_FILE" not in env
    dep = workload.deployment("demo", "ns", plain, 1, workload_redis_env("demo", plain))
    assert "redis-tls" not in json.dumps(dep)


def test_a_disabled_cache_renders_no_tls() -> None:
    spec = make_spec("disabled", tls=True)
    env = workload_redis_env("demo", spec)
    assert "GENCLUSTER_REDIS_TLS_CA_FILE" not in {e["name"] for e in env}
    dep = workload.deployment("demo", "ns", spec, 1, env)
    assert "redis-tls" not in json.dumps(dep)


# --- real redis-server processes ----------------------------------------------------------------


def _need_tools() -> None:
    if REDIS_SERVER is None or OPENSSL is None:
        pytest.skip("redis-server and openssl are needed")


@pytest.fixture
def certs(tmp_path: Path) -> TLSFiles:
    _need_tools()
    return make_certs(tmp_path / "tls")


@pytest.fixture
def tls_standalone(tmp_path: Path, auth: RedisAuth, certs: TLSFiles) -> Iterator[RedisNode]:
    node = RedisNode("demo-redis-0", tmp_path, make_spec("standalone", tls=True),
                     write_auth_dir(tmp_path / "auth", auth), auth, 2000, tls=certs)
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def tls_fleet(tmp_path: Path, auth: RedisAuth, certs: TLSFiles) -> Iterator[Fleet]:
    f = Fleet(tmp_path, auth, make_spec("cluster", tls=True), node_timeout_ms=2000, tls=certs)
    try:
        yield f
    finally:
        f.stop_all()


def _tier(mode: str, node: RedisNode, auth: RedisAuth, ca: Path | None,
          scheme: str = "redis") -> RedisTier:
    return RedisTier(mode, f"{scheme}://127.0.0.1:{node.port}", auth.workload_username,
                     auth.workload_password, PREFIX, 60, timeout_s=1.0, connect_timeout_s=3.0,
                     tls_ca_file=str(ca) if ca else "")


def _plain_client(node: RedisNode, auth: RedisAuth, **tls: Any) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=node.port, username=auth.workload_username,
                       password=auth.workload_password, socket_timeout=2,
                       socket_connect_timeout=2, retry=Retry(NoBackoff(), 0), **tls)


def run_probe(node: RedisNode, spec: Any, auth: RedisAuth, which: str) -> int:
    """The rendered exec probe against one node (port and CA path as on this machine)."""
    return node.run_rendered(rendered_container(spec, auth)[which]["exec"]["command"])


async def test_the_workload_tier_reads_and_writes_over_tls(
    tls_standalone: RedisNode, auth: RedisAuth, certs: TLSFiles
) -> None:
    for scheme in ("redis", "rediss"):  # the CA file alone turns TLS on; rediss:// as rendered
        tier = _tier("standalone", tls_standalone, auth, certs.ca, scheme)
        try:
            assert await tier.connect(), tier.last_error
            assert await tier.set(f"k-{scheme}", b"mesh-bytes")
            assert await tier.get(f"k-{scheme}") == b"mesh-bytes"
            assert tier.stats()["tls"] is True and tier.errors == 0
        finally:
            await tier.close()
    # The ACL still applies over TLS: the workload user sees only its prefix.
    with _plain_client(tls_standalone, auth, ssl=True, ssl_ca_certs=str(certs.ca),
                       ssl_check_hostname=False) as c:
        assert c.get(f"{PREFIX}k-redis") == b"mesh-bytes"
        with pytest.raises(redis.exceptions.NoPermissionError):
            c.get("other:key")
    assert run_probe(tls_standalone, make_spec("standalone", tls=True), auth,
                     "readinessProbe") == 0
    assert run_probe(tls_standalone, make_spec("standalone", tls=True), auth,
                     "livenessProbe") == 0


async def test_a_plaintext_client_is_refused(tls_standalone: RedisNode, auth: RedisAuth) -> None:
    with _plain_client(tls_standalone, auth) as c, pytest.raises(redis.exceptions.ConnectionError):
        c.ping()
    tier = _tier("standalone", tls_standalone, auth, None)  # today's plaintext client
    try:
        assert not await tier.connect()
        assert await tier.get("k") is None  # a miss, never an error to the caller
    finally:
        await tier.close()
    # The rendered plaintext probe fails against a TLS node too.
    (c,) = rendered_statefulset(make_spec("standalone"), auth)["spec"]["template"]["spec"]["containers"]
    assert tls_standalone.run_rendered(c["readinessProbe"]["exec"]["command"]) != 0


async def test_a_client_with_another_ca_fails_verification(
    tls_standalone: RedisNode, auth: RedisAuth, tmp_path: Path
) -> None:
    other = make_certs(tmp_path / "other-ca")
    with (_plain_client(tls_standalone, auth, ssl=True, ssl_ca_certs=str(other.ca),
                        ssl_check_hostname=False) as c,
          pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed")):
        c.ping()
    tier = _tier("standalone", tls_standalone, auth, other.ca)
    try:
        assert not await tier.connect()
        assert "certificate verify failed" in tier.last_error
    finally:
        await tier.close()
    # The operator's admin connection with the wrong CA fails the same way.
    connector = AdminConnector(auth, tls_ca_pem=other.ca.read_text())
    try:
        with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
            await connector(tls_standalone.address).ping()
    finally:
        await connector.aclose()


async def test_a_redis_cluster_bootstraps_and_reshards_over_tls(
    tls_fleet: Fleet, auth: RedisAuth, certs: TLSFiles
) -> None:
    tls_fleet.add(6)
    # The operator's side: the CA as it reads it from the Secret (ca.crt's PEM text).
    connect = AdminConnector(auth, tls_ca_pem=certs.ca.read_text())
    try:
        h = (await settle_with(tls_fleet, connect, 3, 1, deadline_s=60.0)).health
        assert (h.cluster_state, h.slots_covered, h.masters_ready, h.replicas_ready) == (
            "ok", SLOTS, 3, 3)
        # Replication runs over TLS (tls-replication yes) with the replication ACL user.
        for s in h.shards:
            with tls_fleet.node(s.replica_pods[0]).admin() as c:
                assert c.info("replication")["master_link_status"] == "up"
        for n in tls_fleet.nodes:  # the rendered probes pass on every node
            assert run_probe(n, tls_fleet.spec, auth, "readinessProbe") == 0, n.pod
        # The preStop hook hands a master's slots to its replica over TLS (CLUSTER FAILOVER as
        # the replication user), then the old master is a replica.
        shard = h.shards[0]
        pre_stop = rendered_container(tls_fleet.spec, auth)["lifecycle"]["preStop"]
        assert tls_fleet.node(shard.master_pod).run_rendered(pre_stop["exec"]["command"]) == 0
        with tls_fleet.node(shard.master_pod).admin() as c:
            assert c.info("replication")["role"] == "slave"
        with tls_fleet.node(shard.replica_pods[0]).admin() as c:
            assert c.info("replication")["role"] == "master"
        h = (await settle_with(tls_fleet, connect, 3, 1, deadline_s=60.0)).health
        assert (h.slots_covered, h.masters_ready, h.replicas_ready) == (SLOTS, 3, 3)
        # The workload: RedisCluster over TLS, discovering the nodes from one address.
        tier = _tier("cluster", tls_fleet.nodes[0], auth, certs.ca, "rediss")
        try:
            assert await tier.connect(), tier.last_error
            for i in range(200):
                assert await tier.set(f"k{i}", f"v{i}".encode())
            assert [await tier.get(f"k{i}") for i in range(200)] == [
                f"v{i}".encode() for i in range(200)]
        finally:
            await tier.close()
        # A plaintext admin connection gets nothing.
        plain = AdminConnector(auth)
        try:
            with pytest.raises(redis.exceptions.ConnectionError):
                await plain(tls_fleet.nodes[0].address).ping()
        finally:
            await plain.aclose()
        # Grow to 4 masters: MIGRATE between nodes runs over TLS too (tls-cluster yes).
        tls_fleet.add(2)
        grown = (await settle_with(tls_fleet, connect, 4, 1, deadline_s=60.0)).health
        assert sorted(s.slots for s in grown.shards) == [4096] * 4
        tier = _tier("cluster", tls_fleet.nodes[0], auth, certs.ca, "rediss")
        try:
            assert await tier.connect(), tier.last_error
            assert [await tier.get(f"k{i}") for i in range(200)] == [
                f"v{i}".encode() for i in range(200)]
        finally:
            await tier.close()
    finally:
        await connect.aclose()
