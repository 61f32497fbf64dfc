"""The workload's Redis Cluster client after every pod restarted on a new address, as after a
rolling restart of the StatefulSet (a new certificate, a new image, a changed config).

Real redis-server processes on 127.0.0.1 stand in for the pods; a small TCP forwarder on a fixed
port stands in for the Service (the workload's GENCLUSTER_REDIS_URL names the Service, which
always leads to some live pod). The tier must find the cluster again through it by itself, and
the cache must work again, with no restart of the workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from redis_fleet import Fleet
from test_redis_cluster_live import PREFIX, settle

from gencluster.render.redis import RedisAuth
from gencluster_workload.redis_tier import RedisTier


class ServiceStandIn:
    """Forwards each TCP connection to the first live node of `fleet` (a ClusterIP Service's
    job, minus the load balancing)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for node in self.fleet.nodes:
            if node.proc is None or node.proc.poll() is not None:
                continue
            try:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", node.port)
            except OSError:
                continue
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
            return
        writer.close()

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        with contextlib.suppress(OSError, ConnectionError):
            dst.close()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


async def works(tier: RedisTier, key: str) -> bool:
    return await tier.set(key, b"mesh") and await tier.get(key) == b"mesh"


@pytest.mark.timeout(180)
async def test_the_tier_finds_the_cluster_again_after_every_pod_moved(
        fleet: Fleet, auth: RedisAuth) -> None:
    fleet.add(6)
    await settle(fleet, auth, 3, 1)
    service = ServiceStandIn(fleet)
    await service.start()
    tier = RedisTier("cluster", f"redis://127.0.0.1:{service.port}", auth.workload_username,
                     auth.workload_password, PREFIX, 60, timeout_s=0.1, connect_timeout_s=2.0)
    try:
        assert await tier.connect()
        assert all([await works(tier, f"k{i}") for i in range(20)])  # every shard's slots

        # Every pod restarts at once on a new address (the operator's MEETs rejoin them).
        for n in fleet.nodes:
            n.kill()
        for n in fleet.nodes:
            n.start(new_port=True)
        await settle(fleet, auth, 3, 1)

        t0 = time.monotonic()
        ok, i = False, 0
        while time.monotonic() - t0 < 60 and not ok:
            ok = await works(tier, f"after{i}")  # the request path: misses until it recovers
            i += 1
            await asyncio.sleep(0.1)
        took = time.monotonic() - t0
        print(f"\nrediscovered after {took:.1f}s ({i} calls); stats {tier.stats()}")
        assert ok, tier.stats()
        assert all([await works(tier, f"again{j}") for j in range(20)])
    finally:
        await tier.close()
        await service.stop()
