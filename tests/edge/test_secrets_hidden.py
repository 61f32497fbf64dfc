"""Secrets never appear in a repr (and so never in a log line or a traceback's locals)."""
from __future__ import annotations

from gencluster.render.children import Secrets
from gencluster.render.redis import generate_redis_auth
from gencluster_workload.config import Settings


def test_credentials_are_not_in_reprs() -> None:
    auth = generate_redis_auth()
    secrets = Secrets(admin_token="tok-" + "x" * 20, redis_auth=auth)
    passwords = [auth.workload_password, auth.admin_password, auth.health_password,
                 auth.replication_password, secrets.admin_token]
    for text in (repr(auth), str(auth), repr(secrets), f"{secrets}"):
        for p in passwords:
            assert p not in text, text
    assert auth.workload_username in repr(auth)  # names still help debugging

    s = Settings(admin_token="admin-secret-1", redis_password="redis-secret-2", redis_username="u")
    assert "admin-secret-1" not in repr(s) and "redis-secret-2" not in repr(s)
    assert s.redacted()["admin_token"] == "***" and s.redacted()["redis_password"] == "***"
