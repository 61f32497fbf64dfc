"""The pure cluster planner, health summary and events, on synthetic observations (no Redis)."""

from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_sim import SimCluster

from gencluster.rediscluster.health import (
    cache_condition,
    cache_status,
    cluster_events,
    cluster_health,
)
from gencluster.rediscluster.model import (
    SLOTS,
    ClusterObservation,
    Member,
    NodeView,
    parse_cluster_nodes,
    to_ranges,
)
from gencluster.rediscluster.planner import (
    AssignSlots,
    Failover,
    Forget,
    Meet,
    MigrateSlots,
    Refuse,
    Replicate,
    StableSlots,
    Wait,
    even_ranges,
    plan_cluster,
    statefulset_replicas,
)

NODES_TEXT = """\
07c3 127.0.0.1:30004@40004 replica e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002,host-b master - 0 1426238316232 2 connected 5461-10922
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460 [93->-67ed] [77-<-292f]
292f 127.0.0.1:30003@40003 master,fail - 1426238318243 1426238317000 3 disconnected 10923-16383 7
6ec2 :0@0 master,noaddr - 0 0 0 disconnected
"""


def test_parse_cluster_nodes() -> None:
    views = {v.node_id: v for v in parse_cluster_nodes(NODES_TEXT)}
    assert views["07c3"].flags == {"replica"} and views["07c3"].master_id == "e7d1"
    assert views["67ed"].address == "127.0.0.1:30002" and views["67ed"].slots == ((5461, 10922),)
    me = views["e7d1"]
    assert (
        "myself" in me.flags and me.migrating == ((93, "67ed"),) and me.importing == ((77, "292f"),)
    )
    assert (
        views["292f"].failing
        and not views["292f"].usable
        and views["292f"].slots == ((7, 7), (10923, 16383))
    )
    assert views["6ec2"].address == "" and not views["6ec2"].usable


def test_even_ranges_cover_all_slots() -> None:
    for n in (1, 3, 4, 7, 64):
        ranges = even_ranges(n)
        sizes = [b - a + 1 for ((a, b),) in ranges]
        assert sum(sizes) == SLOTS and max(sizes) - min(sizes) <= 1
    assert even_ranges(3) == [((0, 5460),), ((5461, 10921),), ((10922, 16383),)]


def test_bootstrap_meets_then_assigns_and_places_replicas_apart() -> None:
    sim = SimCluster()
    sim.add_pods(6, k8s_nodes=3)
    first = plan_cluster(sim.observe(), 3, 1)
    assert all(isinstance(a, Meet) for a in first) and len(first) == 5
    for a in first:
        sim.apply(a)
    second = plan_cluster(sim.observe(), 3, 1)
    assigns = [a for a in second if isinstance(a, AssignSlots)]
    assert [a.slots for a in assigns] == even_ranges(3)
    assert len([a for a in second if isinstance(a, Replicate)]) == 3
    for a in second:
        sim.apply(a)
    assert plan_cluster(sim.observe(), 3, 1) == []
    sim.check_converged(3, 1, k8s_nodes=3)


def test_bootstrap_waits_for_every_pod() -> None:
    sim = SimCluster()
    sim.add_pods(6)
    sim.kill("demo-redis-5")
    for a in plan_cluster(sim.observe(), 3, 1):
        sim.apply(a)
    plan = plan_cluster(sim.observe(), 3, 1)
    assert plan == [Wait("bootstrap waits for all Redis pods: 5/6 answer")]


def test_two_k8s_nodes_replicas_never_share_a_node_with_their_master() -> None:
    sim = SimCluster()
    sim.add_pods(6, k8s_nodes=2)
    sim.converge(3, 1)
    sim.check_converged(3, 1, k8s_nodes=2)


def test_failed_master_is_not_touched_while_its_replica_can_take_over() -> None:
    sim = SimCluster()
    sim.add_pods(6)
    sim.converge(3, 1)
    master = sim.live_masters()[0]
    pod = next(p.name for p in sim.pods.values() if p.node_id == master.node_id)
    sim.kill(pod)
    plan = plan_cluster(sim.observe(), 3, 1)  # Redis has not failed over yet
    assert len(plan) == 1 and isinstance(plan[0], Wait) and "failover pending" in plan[0].reason


def test_master_and_replica_lost_slots_reassigned_to_recreated_pod() -> None:
    sim = SimCluster()
    sim.add_pods(3)
    sim.converge(3, 0)
    for m in sim.live_masters():
        m.keys = {min(m.slots): 10}
    pod = "demo-redis-1"
    sim.recreate_empty(pod)  # no replica: its slots and keys are gone
    plan = sim.converge(3, 0)
    assert plan == []
    sim.check_converged(3, 0, k8s_nodes=3)
    assert sim.lost_keys == 10 and sim.total_keys() == 20


def test_forget_waits_while_a_pod_is_unreachable() -> None:
    sim = SimCluster()
    sim.add_pods(3)
    sim.converge(3, 0)
    sim.recreate_empty("demo-redis-1")
    sim.kill("demo-redis-2")  # could come back with its slots: do not hand out anything
    obs = sim.observe()
    plan = plan_cluster(obs, 3, 0)
    assert not any(isinstance(a, AssignSlots) for a in plan)
    assert not any(
        isinstance(a, Forget) and a.node_id == sim.pods["demo-redis-2"].node_id for a in plan
    )


def test_restart_with_new_ip_is_met_again() -> None:
    sim = SimCluster()
    sim.add_pods(6)
    sim.converge(3, 1)
    node = sim.nodes[sim.pods["demo-redis-4"].node_id]
    sim.kill("demo-redis-4")
    sim.restart_same_id("demo-redis-4")
    # Others still have it at the old address in this model until a MEET.
    for n in sim.nodes.values():
        if n.node_id != node.node_id:
            n.known.discard(node.node_id)
    plan = plan_cluster(sim.observe(), 3, 1)
    assert any(isinstance(a, Meet) and a.address == node.address for a in plan)
    sim.converge(3, 1)
    sim.check_converged(3, 1, k8s_nodes=3)


def test_grow_moves_slots_with_keys_and_rebalances() -> None:
    sim = SimCluster()
    sim.add_pods(6)
    sim.converge(3, 1)
    for m in sim.live_masters():
        m.keys = {s: 1 for s in m.slots}
    sim.add_pods(2)
    plan = plan_cluster(sim.observe(), 4, 1)
    assert plan and all(isinstance(a, Meet) for a in plan)
    sim.converge(4, 1)
    sim.check_converged(4, 1, k8s_nodes=3)
    assert sorted(len(m.slots) for m in sim.live_masters()) == [4096] * 4
    assert sim.total_keys() == SLOTS


def test_shrink_drains_departing_pods_before_the_statefulset_shrinks() -> None:
    sim = SimCluster()
    sim.add_pods(8)
    sim.converge(4, 1)
    for m in sim.live_masters():
        m.keys = {s: 1 for s in m.slots}
    obs = sim.observe()
    assert statefulset_replicas(obs, 3, 1) == 8  # not drained yet
    assert statefulset_replicas(obs, 5, 1) == 10  # growing applies at once
    sim.converge(3, 1)
    assert len(sim.pods) == 6
    sim.converge(3, 1)
    sim.check_converged(3, 1, k8s_nodes=3)
    assert sim.total_keys() == SLOTS and sim.lost_keys == 0


def test_shrink_promotes_a_staying_replica_of_a_departing_master() -> None:
    sim = SimCluster()
    sim.add_pods(8)
    sim.converge(4, 1)
    # Make the departing pods 6 and 7 masters whose replicas stay (as after failovers).
    for pod in ("demo-redis-6", "demo-redis-7"):
        n = sim.nodes[sim.pods[pod].node_id]
        if n.master_id is not None:
            sim.apply(Failover(n.address))
    plan = plan_cluster(sim.observe(), 3, 1)
    assert len(plan) == 1 and isinstance(plan[0], Failover)  # 2 staying masters + 1 promotion
    promoted = sim._at(plan[0].node)
    assert promoted.master_id in {
        sim.pods["demo-redis-6"].node_id,
        sim.pods["demo-redis-7"].node_id,
    }
    sim.converge(3, 1)
    sim.converge(3, 1)
    sim.check_converged(3, 1, k8s_nodes=3)


def test_shrink_refused_when_data_would_not_fit() -> None:
    sim = SimCluster(maxmemory=64 << 20)
    sim.add_pods(8)
    sim.converge(4, 1)
    for m in sim.live_masters():
        m.used_memory = 60 << 20  # 240 MiB of data, 3 x 64 MiB of room
    plan = plan_cluster(sim.observe(), 3, 1)
    assert len(plan) == 1 and isinstance(plan[0], Refuse)
    assert "cannot shrink to 3 shards" in plan[0].reason and "maxMemoryMiB" in plan[0].reason
    assert statefulset_replicas(sim.observe(), 3, 1) == 8


def test_open_slots_are_resumed_or_cleared() -> None:
    me = NodeView(
        "a" * 40,
        "10.0.0.1:6379",
        frozenset({"myself", "master"}),
        None,
        1,
        True,
        ((0, 8191),),
        migrating=((5, "b" * 40),),
    )
    other = NodeView(
        "b" * 40, "10.0.0.2:6379", frozenset({"master"}), None, 2, True, ((8192, 16383),)
    )
    stale = NodeView(
        "b" * 40,
        "10.0.0.2:6379",
        frozenset({"myself", "master"}),
        None,
        2,
        True,
        ((8192, 16383),),
        importing=((9000, "a" * 40),),
    )
    obs = ClusterObservation(
        (
            Member(
                "r-0",
                me.address,
                reachable=True,
                node_id=me.node_id,
                nodes=(me, other),
                cluster_state="ok",
            ),
            Member(
                "r-1",
                other.address,
                reachable=True,
                node_id=other.node_id,
                nodes=(
                    stale,
                    NodeView(
                        me.node_id, me.address, frozenset({"master"}), None, 1, True, ((0, 8191),)
                    ),
                ),
                cluster_state="ok",
            ),
        )
    )
    plan = plan_cluster(obs, 2, 0)
    assert StableSlots("10.0.0.2:6379", ((9000, 9000),)) in plan
    assert MigrateSlots("10.0.0.1:6379", "a" * 40, "10.0.0.2:6379", "b" * 40, ((5, 5),), ()) in plan


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shards=st.integers(3, 6),
    replicas=st.integers(0, 2),
    k8s=st.integers(1, 4),
    events=st.lists(
        st.tuples(
            st.sampled_from(["recreate", "restart", "grow", "shrink", "kill_master"]),
            st.integers(0, 100),
        ),
        max_size=4,
    ),
)
def test_converges_after_any_sequence_of_disruptions(
    shards: int, replicas: int, k8s: int, events: list[tuple[str, int]]
) -> None:
    """From scratch and after pod losses, restarts, grows and shrinks: always converged, slots
    whole and balanced, replicas placed, no node forgotten wrongly, no key lost except where
    a master died with no replica."""
    sim = SimCluster(maxmemory=1 << 40)
    sim.add_pods(shards * (1 + replicas), k8s_nodes=k8s)
    sim.converge(shards, replicas)
    sim.check_converged(shards, replicas, k8s if replicas == 1 and k8s > 1 else 1)
    for m in sim.live_masters():
        m.keys = {s: 1 for s in list(m.slots)[:50]}
    for kind, n in events:
        keys_before = sim.total_keys()
        pods = sorted(sim.pods)
        pod = pods[n % len(pods)]
        if kind == "recreate":
            sim.recreate_empty(pod)
        elif kind == "restart":
            sim.kill(pod)
            sim.restart_same_id(pod)
        elif kind == "kill_master":
            m = sim.live_masters()[n % len(sim.live_masters())]
            victim = next(p.name for p in sim.pods.values() if p.node_id == m.node_id)
            sim.recreate_empty(victim)
        elif kind == "grow" and shards < 8:
            shards += 1
            sim.add_pods(1 + replicas, k8s_nodes=k8s)
        elif kind == "shrink" and shards > 3:
            shards -= 1
        assert sim.converge(shards, replicas) == []
        sim.converge(shards, replicas)
        sim.check_converged(shards, replicas, 1)  # placement apart: see the dedicated tests
        lost = keys_before - sim.total_keys()
        if replicas:
            assert lost == 0  # with replicas nothing is ever lost
        elif kind not in ("recreate", "kill_master"):
            assert lost == 0


def _shard_health(*, ok: bool = True, failing: tuple[str, ...] = ()) -> ClusterObservation:
    nodes = []
    ids = ["m0", "m1", "m2", "r0", "r1", "r2"]
    ranges = even_ranges(3)
    for i in range(3):
        nodes.append(
            NodeView(
                ids[i].ljust(40, "0"),
                f"10.0.0.{i}:6379",
                frozenset({"master"}),
                None,
                i,
                True,
                ranges[i],
            )
        )
    for i in range(3):
        flags = {"replica"} | ({"fail"} if ids[3 + i] in failing else set())
        nodes.append(
            NodeView(
                ids[3 + i].ljust(40, "0"),
                f"10.0.0.{3 + i}:6379",
                frozenset(flags),
                ids[i].ljust(40, "0"),
                i,
                ids[3 + i] not in failing,
                (),
            )
        )
    members = []
    for i, n in enumerate(nodes):
        if n.node_id.startswith(failing):
            members.append(Member(f"r-{i}", n.address))
            continue
        view = tuple(
            v
            if v.node_id != n.node_id
            else NodeView(
                v.node_id,
                v.address,
                v.flags | {"myself"},
                v.master_id,
                v.config_epoch,
                True,
                v.slots,
            )
            for v in nodes
        )
        members.append(
            Member(
                f"r-{i}",
                n.address,
                reachable=True,
                node_id=n.node_id,
                nodes=view,
                cluster_state="ok" if ok else "fail",
            )
        )
    return ClusterObservation(tuple(members))


def test_health_ok_and_degraded() -> None:
    h = cluster_health(_shard_health(), 3, 1)
    assert (h.state, h.slots_covered, h.masters_ready, h.replicas_ready) == ("ok", SLOTS, 3, 3)
    assert cache_condition(h)[:2] == ("True", "CacheReady")
    assert cache_status(h, "demo-redis:6379") == {
        "mode": "cluster",
        "state": "ok",
        "slotsCovered": SLOTS,
        "mastersReady": 3,
        "replicasReady": 3,
        "endpoint": "demo-redis:6379",
    }
    d = cluster_health(_shard_health(failing=("r1",)), 3, 1)
    assert d.state == "degraded" and d.replicas_ready == 2 and d.serving
    assert d.failing == ("r-4",) and d.unreachable == ("r-4",)
    assert cache_condition(d)[:2] == ("True", "CacheDegraded")
    ev = cluster_events(h, d)
    assert [e[:2] for e in ev] == [("Warning", "CacheDegraded")]
    assert cluster_events(d, d) == []  # nothing changed: no new Event
    assert [e[:2] for e in cluster_events(d, h)] == [("Normal", "CacheReady")]


def test_health_bootstrapping_and_unavailable() -> None:
    assert cluster_health(ClusterObservation(()), 3, 1).state == "unavailable"
    sim = SimCluster()
    sim.add_pods(6)
    h = cluster_health(sim.observe(), 3, 1)
    assert h.state == "bootstrapping" and cache_condition(h)[1] == "CacheBootstrapping"


def test_failover_observed_event() -> None:
    sim = SimCluster()
    sim.add_pods(6)
    sim.converge(3, 1)
    before = cluster_health(sim.observe(), 3, 1)
    victim = before.shards[0]
    sim.kill(victim.master_pod)
    sim.tick()
    after = cluster_health(sim.observe(), 3, 1)
    events = cluster_events(before, after)
    assert (
        "Warning",
        "FailoverObserved",
        f"replica {victim.replica_pods[0]} took over {victim.slots} slots from master "
        f"{victim.master_pod}, which failed or left",
    ) in events
    assert any(e[1] == "CacheDegraded" for e in events)


def test_to_ranges_roundtrip() -> None:
    assert to_ranges([5, 1, 2, 3, 9, 10]) == ((1, 3), (5, 5), (9, 10))


def test_replica_still_pointing_at_old_master_address_is_relinked() -> None:
    sim = SimCluster()
    sim.add_pods(6)
    sim.converge(3, 1)
    obs = sim.observe()
    replica = next(m for m in obs.members if m.myself and not m.myself.is_master)
    assert replica.myself is not None and replica.myself.master_id is not None
    stale = dataclasses.replace(replica, master_link_up=False, replicating_from="10.9.9.9:6379")
    members = tuple(stale if m.pod == replica.pod else m for m in obs.members)
    plan = plan_cluster(ClusterObservation(members), 3, 1)
    assert plan == [Replicate(replica.address, replica.myself.master_id)]
    synced = dataclasses.replace(replica, master_link_up=True, replicating_from="10.9.9.9:6379")
    members = tuple(synced if m.pod == replica.pod else m for m in obs.members)
    assert plan_cluster(ClusterObservation(members), 3, 1) == []
