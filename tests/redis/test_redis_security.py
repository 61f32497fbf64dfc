"""Auth and ACLs of the rendered configuration, against a real redis-server (standalone mode)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.exceptions import NoPermissionError
from redis.retry import Retry
from redis_fleet import REDIS_SERVER, RedisNode, make_spec, write_auth_dir

from gencluster.render.redis import RedisAuth, redis_key_prefix

PREFIX = redis_key_prefix("demo")


@pytest.fixture
def standalone(tmp_path: Path, auth: RedisAuth) -> Iterator[RedisNode]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    node = RedisNode(
        "demo-redis-0",
        tmp_path,
        make_spec("standalone"),
        write_auth_dir(tmp_path / "auth", auth),
        auth,
        2000,
    )
    node.start()
    try:
        yield node
    finally:
        node.stop()


def client(
    node: RedisNode, username: str | None = None, password: str | None = None, protocol: int = 3
) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1",
        port=node.port,
        username=username,
        password=password,
        socket_timeout=2,
        decode_responses=True,
        driver_info=None,
        protocol=protocol,
        retry=Retry(NoBackoff(), 0),
    )


def refused(fn: object, *args: object, match: str) -> None:
    """The call fails; NOPERM is the ACL refusal (redis-py drops the prefix from the text)."""
    err = NoPermissionError if match == "NOPERM" else redis.RedisError
    with pytest.raises(err, match=None if match == "NOPERM" else match):
        fn(*args)  # type: ignore[operator]


def test_no_auth_is_refused(standalone: RedisNode) -> None:
    with client(standalone, protocol=2) as c:
        refused(c.ping, match="Authentication required")  # the server's NOAUTH error
        refused(c.get, f"{PREFIX}x", match="Authentication required")
    with client(standalone, protocol=3) as c:
        refused(c.ping, match="HELLO must be called with the client already authenticated")


def test_default_user_is_off(standalone: RedisNode) -> None:
    for password in ("", "nopass", "default"):
        with client(standalone, "default", password) as c:
            refused(c.ping, match="(?i)WRONGPASS|invalid username-password|disabled")


def test_wrong_password_is_refused(standalone: RedisNode, auth: RedisAuth) -> None:
    with client(standalone, auth.workload_username, auth.admin_password) as c:
        refused(c.ping, match="(?i)WRONGPASS|invalid username-password")


def test_workload_user_is_least_privilege(standalone: RedisNode, auth: RedisAuth) -> None:
    with client(standalone, auth.workload_username, auth.workload_password) as c:
        assert c.ping()
        assert c.set(f"{PREFIX}mesh:abc", "v", ex=60)
        assert c.get(f"{PREFIX}mesh:abc") == "v"
        assert 0 < c.ttl(f"{PREFIX}mesh:abc") <= 60
        refused(c.flushall, match="NOPERM")
        refused(c.flushdb, match="NOPERM")
        refused(c.config_get, "maxmemory", match="NOPERM")
        refused(c.config_set, "maxmemory", "1", match="NOPERM")
        refused(c.keys, "*", match="NOPERM")
        refused(c.scan, match="NOPERM")
        refused(c.info, match="NOPERM")
        refused(c.execute_command, "DEBUG", "SLEEP", "0", match="DEBUG command not allowed")
        refused(c.execute_command, "SHUTDOWN", match="NOPERM")
        refused(c.execute_command, "ACL", "LIST", match="NOPERM")
        refused(c.eval, "return 1", 0, match="NOPERM")
        refused(c.execute_command, "CLUSTER", "RESET", match="NOPERM")
        refused(c.execute_command, "REPLICAOF", "127.0.0.1", "1", match="NOPERM")
        # Keys outside its prefix: neither written nor read.
        refused(c.set, "other:key", "v", match="NOPERM")
        refused(c.get, "gencl:another-cluster:key", match="NOPERM")
        refused(c.delete, "other:key", match="NOPERM")


def test_health_user_can_only_ping(standalone: RedisNode, auth: RedisAuth) -> None:
    with client(standalone, auth.health_username, auth.health_password) as c:
        assert c.ping()
        refused(c.get, f"{PREFIX}x", match="NOPERM")
        refused(c.set, f"{PREFIX}x", "v", match="NOPERM")
        # The readiness probe reads CLUSTER NODES (past the ACL, refused by a standalone node)
        refused(c.execute_command, "CLUSTER", "NODES", match="cluster support disabled")
        refused(c.execute_command, "CLUSTER", "RESET", match="NOPERM")
        refused(c.execute_command, "CLUSTER", "FAILOVER", match="NOPERM")


def test_admin_user_cannot_wipe_data(standalone: RedisNode, auth: RedisAuth) -> None:
    with client(standalone, auth.admin_username, auth.admin_password) as c:
        assert c.info("memory")["maxmemory"] == 64 * 1024 * 1024
        refused(c.flushall, match="NOPERM")
        refused(c.config_set, "maxmemory", "1", match="NOPERM")
        refused(c.get, f"{PREFIX}x", match="NOPERM")


def test_replication_user_can_only_replicate(standalone: RedisNode, auth: RedisAuth) -> None:
    with client(standalone, auth.replication_username, auth.replication_password) as c:
        assert c.ping()
        refused(c.get, f"{PREFIX}x", match="NOPERM")
        # CLUSTER FAILOVER (a stopping master's preStop hands over) passes the ACL; no other
        refused(c.execute_command, "CLUSTER", "FAILOVER", match="cluster support disabled")
        refused(c.execute_command, "CLUSTER", "NODES", match="NOPERM")
        refused(c.execute_command, "CLUSTER", "RESET", match="NOPERM")


def test_rendered_config_is_in_effect(standalone: RedisNode, auth: RedisAuth) -> None:
    with client(standalone, auth.admin_username, auth.admin_password) as c:
        mem = c.info("memory")
        assert mem["maxmemory_policy"] == "allkeys-lru"
    acl = (standalone.root.parent / "auth" / "users.acl").read_text()
    for secret in (
        auth.workload_password,
        auth.admin_password,
        auth.health_password,
        auth.replication_password,
    ):
        assert secret not in acl  # only SHA-256 hashes in the ACL file
