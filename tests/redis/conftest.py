"""Fixtures for the cache-tier tests: real redis-server processes, always torn down."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis_fleet import REDIS_SERVER, Fleet, make_spec

from gencluster.render.redis import RedisAuth, generate_redis_auth


@pytest.fixture
def auth() -> RedisAuth:
    return generate_redis_auth()


@pytest.fixture
def fleet(tmp_path: Path, auth: RedisAuth, request: pytest.FixtureRequest) -> Iterator[Fleet]:
    """An empty fleet; tests add nodes. `@pytest.mark.parametrize('fleet', [ms], indirect=True)`
    sets cluster-node-timeout."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    timeout_ms = getattr(request, "param", 2000)
    f = Fleet(tmp_path, auth, make_spec("cluster"), node_timeout_ms=timeout_ms)
    try:
        yield f
    finally:
        f.stop_all()
