"""The kube client keeps one connection per client thread against the real apiserver: both lanes
busy at once (6 + 6 threads, the operator's setting) reuse their connections, where urllib3's
default pool (5 per host CPU: 10 on 2 cores) discarded one after each request beyond it and
opened a new one, a TLS handshake each time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gencluster.kube.client import Kube, load_config

pytestmark = pytest.mark.cluster
WORKERS = 6


def test_both_lanes_busy_reuse_their_connections(cluster, caplog) -> None:  # type: ignore[no-untyped-def]
    api = load_config(str(cluster.kubeconfig), connections=2 * WORKERS)
    pool = api.rest_client.pool_manager.connection_pool_kw["maxsize"]
    assert pool >= 2 * WORKERS
    reconcile = Kube(api, workers=WORKERS, name="reconcile")
    loops = reconcile.lane(WORKERS, "loops")

    async def storm() -> list[int]:
        calls = [lane.list("v1", "Namespace", None) for _ in range(60) for lane in (reconcile, loops)]
        return [len(items) for items in await asyncio.gather(*calls)]

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        sizes = asyncio.run(storm())
    assert len(sizes) == 120 and min(sizes) >= 1  # every list answered (kube-system at least)
    discarded = [r for r in caplog.records if "Connection pool is full" in r.getMessage()]
    assert not discarded, f"{len(discarded)} connections thrown away with a pool of {pool}"
