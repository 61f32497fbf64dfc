"""Bootstrap, failover, repair and resharding against real redis-server processes (loopback).

The operator's planner + executor drive everything; redis-py's RedisCluster, authenticated as
the workload ACL user, plays the workload.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from redis.asyncio import RedisCluster
from redis.crc import key_slot
from redis.exceptions import RedisClusterException, RedisError
from redis_fleet import Fleet, k8s_nodes, rendered_container, settle_with

from gencluster.rediscluster import (
    AdminConnector,
    ClusterHealth,
    ReconcileResult,
    cluster_events,
    cluster_health,
    observe_cluster,
    reconcile_cluster,
    statefulset_replicas,
)
from gencluster.rediscluster.model import SLOTS, from_ranges
from gencluster.render.redis import RedisAuth, redis_key_prefix

PREFIX = redis_key_prefix("demo")
async def settle(
    fleet: Fleet,
    auth: RedisAuth,
    shards: int,
    replicas: int,
    addresses: dict[str, str] | None = None,
    deadline_s: float = 40.0,
) -> ReconcileResult:
    """settle_with (redis_fleet.py) through a plaintext admin connection of its own."""
    connect = AdminConnector(auth)
    try:
        return await settle_with(fleet, connect, shards, replicas, addresses, deadline_s)
    finally:
        await connect.aclose()


async def health_of(
    fleet: Fleet,
    auth: RedisAuth,
    shards: int,
    replicas: int,
    addresses: dict[str, str] | None = None,
) -> ClusterHealth:
    obs = await observe_cluster(addresses or fleet.addresses(), auth, timeout_s=1.0)
    return cluster_health(obs, shards, replicas)


@asynccontextmanager
async def workload_client(fleet: Fleet, auth: RedisAuth) -> AsyncIterator[RedisCluster]:
    """The workload's view: one startup address (the Service), workload ACL user."""
    start = next(n for n in fleet.nodes if n.running)
    rc = RedisCluster(
        host="127.0.0.1",
        port=start.port,
        username=auth.workload_username,
        password=auth.workload_password,
        decode_responses=True,
        socket_timeout=1.0,
        socket_connect_timeout=1.0,
    )
    try:
        await rc.initialize()
        yield rc
    finally:
        await rc.aclose()


def probe(fleet: Fleet, auth: RedisAuth, pod: str, which: str) -> int:
    """Run the rendered readiness/liveness exec probe against one node; its exit code."""
    return fleet.node(pod).run_rendered(
        rendered_container(fleet.spec, auth)[which]["exec"]["command"])


def record(name: str, value: object) -> None:
    """Figures for docs/benchmarks.md: printed, and appended to $GENCLUSTER_BENCH_OUT if set."""
    print(f"[figure] {name}: {value}")
    out = os.environ.get("GENCLUSTER_BENCH_OUT")
    if out:
        with open(out, "a") as fh:
            fh.write(json.dumps({"name": name, "value": value}) + "\n")


async def test_bootstrap_six_nodes_from_scratch(fleet: Fleet, auth: RedisAuth) -> None:
    fleet.add(6)
    assert probe(fleet, auth, "demo-redis-0", "livenessProbe") == 0
    assert probe(fleet, auth, "demo-redis-0", "readinessProbe") == 1  # not joined yet
    t0 = time.monotonic()
    r = await settle(fleet, auth, 3, 1)
    record("bootstrap_6_nodes_s", round(time.monotonic() - t0, 2))
    h = r.health
    assert (h.cluster_state, h.slots_covered, h.masters_ready, h.replicas_ready) == (
        "ok",
        SLOTS,
        3,
        1 * 3,
    )
    assert sorted(s.slots for s in h.shards) == [5461, 5461, 5462]
    assert all(len(s.replica_ids) == 1 for s in h.shards)
    nodes = k8s_nodes(fleet)
    for s in h.shards:  # each replica on another Kubernetes node than its master
        assert nodes[s.replica_pods[0]] != nodes[s.master_pod]
    assert cluster_events(None, h) == [
        ("Normal", "CacheReady", f"Redis Cluster ready: {h.message}")
    ]
    async with workload_client(fleet, auth) as rc:
        for i in range(200):
            await rc.set(f"{PREFIX}k{i}", f"v{i}", ex=60)
        assert [await rc.get(f"{PREFIX}k{i}") for i in range(200)] == [f"v{i}" for i in range(200)]
    # Replicas sync through the replication ACL user (masteruser/masterauth from auth.conf).
    for s in h.shards:
        with fleet.node(s.replica_pods[0]).admin() as c:
            end = time.monotonic() + 10
            while c.info("replication")["master_link_status"] != "up" and time.monotonic() < end:
                await asyncio.sleep(0.1)
            assert c.info("replication")["master_link_status"] == "up"
    for n in fleet.nodes:  # the rendered probes pass on masters and synced replicas
        assert probe(fleet, auth, n.pod, "readinessProbe") == 0, n.pod


@dataclass
class Hammer:
    """GET/SET on keys of one shard, recording when each request finished and whether it worked."""

    keys: list[str]
    ok_times: list[float] = field(default_factory=list)
    failures: list[float] = field(default_factory=list)
    stop: bool = False

    async def run(self, rc: RedisCluster) -> None:
        i = 0
        while not self.stop:
            key = self.keys[i % len(self.keys)]
            i += 1
            try:
                await asyncio.wait_for(rc.set(key, "x", ex=60), 2.0)
                await asyncio.wait_for(rc.get(key), 2.0)
                self.ok_times.append(time.monotonic())
            except (RedisError, RedisClusterException, OSError, TimeoutError):
                self.failures.append(time.monotonic())
                await asyncio.sleep(0.01)

    def window_ms(self, t_kill: float) -> int:
        """Longest stretch without a successful request, from the kill on."""
        times = [t_kill] + [t for t in self.ok_times if t >= t_kill]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return int(max(gaps, default=float("inf")) * 1000)


def keys_in(slots: set[int], n: int) -> list[str]:
    out: list[str] = []
    i = 0
    while len(out) < n:
        k = f"{PREFIX}h{i}"
        if key_slot(k.encode()) in slots:
            out.append(k)
        i += 1
    return out


@pytest.mark.parametrize("fleet", [1000], indirect=True)
async def test_master_killed_failover_then_pod_back_empty_on_new_ip(
    fleet: Fleet, auth: RedisAuth
) -> None:
    fleet.add(6)
    before = (await settle(fleet, auth, 3, 1)).health
    victim = before.shards[0]
    obs = await observe_cluster(fleet.addresses(), auth)
    vnode = next(m for m in obs.members if m.pod == victim.master_pod)
    vslots = set(from_ranges(vnode.myself.slots)) if vnode.myself else set()
    hammer = Hammer(keys_in(vslots, 50))
    kept = keys_in(vslots, 300)[-100:]
    async with workload_client(fleet, auth) as rc:
        for k in kept:
            await rc.set(k, "kept", ex=600)
        with fleet.node(victim.master_pod).admin() as c:
            assert c.execute_command("WAIT", 1, 2000) == 1  # on the replica before the kill
        task = asyncio.create_task(hammer.run(rc))
        await asyncio.sleep(0.5)
        t_kill = fleet.node(victim.master_pod).kill()
        # Redis fails over by itself; the operator only observes.
        end = time.monotonic() + 30
        while time.monotonic() < end:
            h = await health_of(fleet, auth, 3, 1)
            if h.slots_covered == SLOTS and victim.replica_ids[0] in {
                s.master_id for s in h.shards if s.ready
            }:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        hammer.stop = True
        await task
        assert await rc.mget_nonatomic(kept) == ["kept"] * len(kept)  # the replica had them
    window = hammer.window_ms(t_kill)
    failed = len([t for t in hammer.failures if t >= t_kill])
    record("failover_window_ms_node_timeout_1000", window)
    record("failover_failed_requests", failed)
    assert window < 10_000
    events = cluster_events(before, h)
    assert "FailoverObserved" in [e[1] for e in events], events
    assert h.state == "degraded"  # serving, but a pod is down and a shard has no replica
    assert any(e[1] == "CacheDegraded" for e in events)
    # The pod comes back with a new IP and an empty emptyDir: a new node id. The operator meets
    # it, forgets the dead id and attaches it as a replica of the master that lost one.
    old_id = victim.master_id
    fleet.node(victim.master_pod).start(new_port=True, wipe=True)
    after = (await settle(fleet, auth, 3, 1)).health
    assert after.failing == () and after.replicas_ready == 3
    assert all(len(s.replica_ids) == 1 for s in after.shards)
    assert victim.master_pod in {p for s in after.shards for p in s.replica_pods}
    obs = await observe_cluster(fleet.addresses(), auth)
    assert all(old_id not in {n.node_id for n in m.nodes} for m in obs.members)
    assert ("Normal", "CacheReady", f"Redis Cluster ready: {after.message}") in cluster_events(
        h, after
    )


async def test_node_restarted_on_new_ip_keeps_identity_and_is_repaired(
    fleet: Fleet, auth: RedisAuth
) -> None:
    fleet.add(6)
    before = (await settle(fleet, auth, 3, 1)).health
    pod = before.shards[1].replica_pods[0]
    node = fleet.node(pod)
    node.kill()
    node.start(new_port=True)  # nodes.conf kept (same pod, or a PVC): same id, new address
    after = (await settle(fleet, auth, 3, 1)).health
    assert {s.master_id for s in after.shards} == {s.master_id for s in before.shards}
    assert after.shards[1].replica_ids == before.shards[1].replica_ids
    obs = await observe_cluster(fleet.addresses(), auth)
    for m in obs.members:  # every node knows it at its new address
        assert (
            next(n for n in m.nodes if n.node_id == before.shards[1].replica_ids[0]).address
            == node.address
        )
    # Every pod restarts at once on a new IP (a full restart with PVCs): nobody can reach the
    # addresses in its nodes.conf; the operator's MEETs reconnect them, slots and ids unchanged.
    for n in fleet.nodes:
        n.kill()
    for n in fleet.nodes:
        n.start(new_port=True)
    t0 = time.monotonic()
    again = (await settle(fleet, auth, 3, 1)).health
    record("full_restart_new_ips_repair_s", round(time.monotonic() - t0, 2))
    assert [(s.master_id, s.slots) for s in again.shards] == [
        (s.master_id, s.slots) for s in after.shards
    ]


async def test_grow_three_to_four_then_shrink_back_keeps_data(
    fleet: Fleet, auth: RedisAuth
) -> None:
    fleet.add(6)
    await settle(fleet, auth, 3, 1)
    n_keys = 3000
    async with workload_client(fleet, auth) as rc:
        for i in range(0, n_keys, 100):
            async with rc.pipeline() as p:
                for j in range(i, i + 100):
                    p.set(f"{PREFIX}g{j}", str(j), ex=3600)
                await p.execute()
    # Grow: the StatefulSet gets two more pods; the operator makes one a master, moves slots.
    fleet.add(2)
    t0 = time.monotonic()
    grown = (await settle(fleet, auth, 4, 1)).health
    record("grow_3_to_4_masters_s", round(time.monotonic() - t0, 2))
    assert sorted(s.slots for s in grown.shards) == [4096] * 4
    assert grown.replicas_ready == 4
    async with workload_client(fleet, auth) as rc:
        assert await rc.mget_nonatomic([f"{PREFIX}g{j}" for j in range(n_keys)]) == [
            str(j) for j in range(n_keys)
        ]
    # Shrink: the two highest ordinals leave. Until drained, the StatefulSet keeps 8 pods.
    obs = await observe_cluster(fleet.addresses(), auth)
    assert statefulset_replicas(obs, 3, 1) == 8
    t0 = time.monotonic()
    await settle(fleet, auth, 3, 1)
    record("shrink_4_to_3_masters_s", round(time.monotonic() - t0, 2))
    obs = await observe_cluster(fleet.addresses(), auth)
    assert statefulset_replicas(obs, 3, 1) == 6
    for m in obs.members:
        if m.ordinal is not None and m.ordinal >= 6:
            assert m.myself is not None and not m.myself.slots
    for n in fleet.nodes[6:]:
        n.kill()  # the StatefulSet scales down
    shrunk = (await settle(fleet, auth, 3, 1, addresses=fleet.addresses(6))).health
    assert sorted(s.slots for s in shrunk.shards) == [5461, 5461, 5462]
    assert shrunk.replicas_ready == 3 and shrunk.failing == ()
    async with workload_client(fleet, auth) as rc:
        assert await rc.mget_nonatomic([f"{PREFIX}g{j}" for j in range(n_keys)]) == [
            str(j) for j in range(n_keys)
        ]


async def roll(fleet: Fleet, auth: RedisAuth, *, handover: bool = True) -> None:
    """Every pod replaced as a StatefulSet RollingUpdate does it (highest ordinal first; the
    next only once the new pod passes the rendered readiness probe), a new IP and an empty
    emptyDir each, with the operator's reconcile running every second meanwhile. `handover`
    runs the rendered preStop hook before each stop (docs/cache.md's "before" rows skip it)."""
    container = rendered_container(fleet.spec, auth)
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    ready = container["readinessProbe"]["exec"]["command"]
    connect = AdminConnector(auth)
    done = False

    async def operator() -> None:
        while not done:
            with contextlib.suppress(RedisError, OSError):
                await reconcile_cluster(fleet.addresses(), connect, 3, 1, k8s_nodes=k8s_nodes(fleet))
            await asyncio.sleep(1.0)

    task = asyncio.create_task(operator())
    try:
        for node in reversed(fleet.nodes):
            if handover:
                assert await asyncio.to_thread(node.run_rendered, pre_stop) == 0
            node.kill()
            node.start(new_port=True, wipe=True)
            end = time.monotonic() + 60
            while await asyncio.to_thread(node.run_rendered, ready) != 0:
                assert time.monotonic() < end, f"{node.pod} never turned Ready"
                await asyncio.sleep(1.0)  # the probe's period is 5 s; 1 s is harsher
    finally:
        done = True
        await task
        await connect.aclose()


async def test_rolling_restart_hands_every_master_over_and_keeps_every_key(
    fleet: Fleet, auth: RedisAuth
) -> None:
    """A certificate renewal or an image change rolls all six pods. Each master's preStop hands
    its slots to its replica first, so no stop waits for the node timeout and the roll never
    takes a second master while the first one's failover is pending (which, with three masters,
    leaves a minority that can promote nobody: the cluster stays down)."""
    fleet.add(6)
    before = (await settle(fleet, auth, 3, 1)).health
    kept = keys_in(set(range(SLOTS)), 300)
    hammer = Hammer(keys_in(set(range(SLOTS)), 400)[300:])
    async with workload_client(fleet, auth) as rc:
        for k in kept:
            await rc.set(k, "kept", ex=600)
        for s in before.shards:
            with fleet.node(s.master_pod).admin() as c:
                assert c.execute_command("WAIT", 1, 2000) == 1
        task = asyncio.create_task(hammer.run(rc))
        t0 = time.monotonic()
        await roll(fleet, auth)
        rolled = time.monotonic() - t0
        after = (await settle(fleet, auth, 3, 1)).health
        hammer.stop = True
        await task
        assert await rc.mget_nonatomic(kept) == ["kept"] * len(kept)
    window = hammer.window_ms(t0)
    record("rolling_restart_6_pods_s", round(rolled, 1))
    record("rolling_restart_longest_gap_ms", window)
    record("rolling_restart_failed_requests", len(hammer.failures))
    assert (after.cluster_state, after.slots_covered, after.masters_ready, after.replicas_ready) \
        == ("ok", SLOTS, 3, 3)
    assert after.failing == ()
    assert {s.master_id for s in after.shards}.isdisjoint({s.master_id for s in before.shards})
    assert window < fleet.node_timeout_ms, window  # no stop waited for a failure detection
    assert hammer.failures == []
