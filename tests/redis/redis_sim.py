"""An in-memory Redis Cluster for planner tests: applies actions with Redis' own preconditions.

Gossip is instant among nodes that have met; a dead master with a live replica is failed over
on `tick()`. Every action the planner emits is checked against what Redis would refuse
(assigning owned slots, replicating while owning slots, migrating to a replica, ...), so the
property tests prove the planner never asks for something Redis would reject.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from gencluster.rediscluster.model import SLOTS, ClusterObservation, Member, NodeView, to_ranges
from gencluster.rediscluster.planner import (
    Action,
    AssignSlots,
    Failover,
    Forget,
    Meet,
    MigrateSlots,
    Refuse,
    Replicate,
    StableSlots,
    Wait,
    plan_cluster,
    statefulset_replicas,
)

_ids = itertools.count(1)


def new_id() -> str:
    return f"{next(_ids):040x}"


class RedisRefused(AssertionError):
    """The planner asked for something Redis would refuse."""


@dataclass
class SimNode:
    node_id: str
    address: str
    alive: bool = True
    master_id: str | None = None
    slots: set[int] = field(default_factory=set)
    keys: dict[int, int] = field(default_factory=dict)  # slot -> key count
    known: set[str] = field(default_factory=set)
    epoch: int = 0
    used_memory: int = 1_000_000


@dataclass
class Pod:
    name: str
    k8s_node: str
    node_id: str


class SimCluster:
    def __init__(self, maxmemory: int = 64 << 20) -> None:
        self.nodes: dict[str, SimNode] = {}
        self.pods: dict[str, Pod] = {}
        self.ports = itertools.count(7000)
        self.maxmemory = maxmemory
        self.lost_keys = 0

    # --- the "StatefulSet" -------------------------------------------------------------
    def add_pods(self, n: int, k8s_nodes: int = 3) -> None:
        for _ in range(n):
            i = len(self.pods)
            self.start_pod(f"demo-redis-{i}", f"node-{i % k8s_nodes}")

    def start_pod(self, pod: str, k8s_node: str) -> None:
        node = SimNode(new_id(), f"10.0.0.{next(self.ports) % 250}:{next(self.ports)}")
        node.known = {node.node_id}
        self.nodes[node.node_id] = node
        self.pods[pod] = Pod(pod, k8s_node, node.node_id)

    def kill(self, pod: str) -> None:
        self.nodes[self.pods[pod].node_id].alive = False

    def recreate_empty(self, pod: str) -> None:
        """Pod deleted and recreated with an emptyDir: new id, new address."""
        self.kill(pod)
        self.start_pod(pod, self.pods[pod].k8s_node)

    def restart_same_id(self, pod: str) -> None:
        """Pod restarted keeping nodes.conf (PVC), on a new IP."""
        n = self.nodes[self.pods[pod].node_id]
        n.alive = True
        n.address = f"10.0.1.{next(self.ports) % 250}:{next(self.ports)}"

    def remove_pods_from(self, ordinal: int) -> None:
        for pod in [p for p in self.pods if int(p.rsplit("-", 1)[1]) >= ordinal]:
            self.kill(pod)
            del self.pods[pod]

    # --- what Redis does by itself ---------------------------------------------------
    def tick(self) -> None:
        """Automatic failover of dead masters that have a live replica."""
        for n in list(self.nodes.values()):
            if n.alive or not n.slots:
                continue
            reps = sorted(
                (r for r in self.nodes.values() if r.alive and r.master_id == n.node_id),
                key=lambda r: r.node_id,
            )
            if not reps:
                continue
            new = reps[0]
            new.master_id, new.slots, new.keys = None, n.slots, dict(n.keys)
            new.epoch = max(x.epoch for x in self.nodes.values()) + 1
            n.slots, n.keys = set(), {}
            for r in reps[1:]:
                r.master_id = new.node_id

    # --- observation -------------------------------------------------------------------
    def _view(
        self, viewer: SimNode, nid: str, ranges: dict[str, tuple[tuple[int, int], ...]]
    ) -> NodeView:
        n = self.nodes[nid]
        flags = {"master" if n.master_id is None else "replica"}
        if nid == viewer.node_id:
            flags.add("myself")
        elif not n.alive:
            flags.add("fail")
        return NodeView(
            nid, n.address, frozenset(flags), n.master_id, n.epoch, n.alive, ranges[nid]
        )

    def observe(self) -> ClusterObservation:
        members = []
        ranges = {nid: to_ranges(n.slots) for nid, n in self.nodes.items()}
        for pod in sorted(self.pods.values(), key=lambda p: int(p.name.rsplit("-", 1)[1])):
            n = self.nodes[pod.node_id]
            if not n.alive:
                members.append(
                    Member(pod.name, n.address, pod.k8s_node, reachable=False, error="down")
                )
                continue
            views = tuple(self._view(n, nid, ranges) for nid in sorted(n.known))
            assigned = any(v.slots for v in views if not v.failing)
            members.append(
                Member(
                    pod.name,
                    n.address,
                    pod.k8s_node,
                    reachable=True,
                    node_id=n.node_id,
                    nodes=views,
                    cluster_state="ok" if assigned else "fail",
                    used_memory=n.used_memory,
                    maxmemory=self.maxmemory,
                    keys=sum(n.keys.values()),
                )
            )
        return ClusterObservation(tuple(members))

    # --- actions ----------------------------------------------------------------------
    def _at(self, address: str) -> SimNode:
        found = [n for n in self.nodes.values() if n.alive and n.address == address]
        if len(found) != 1:
            raise RedisRefused(f"no live node at {address}")
        return found[0]

    def _owner(self, viewer: SimNode, slot: int) -> str | None:
        for nid in viewer.known:
            if slot in self.nodes[nid].slots:
                return nid
        return None

    def apply(self, action: Action) -> None:
        if isinstance(action, Meet):
            a, b = self._at(action.via), self._at(action.address)
            group = a.known | b.known
            for nid in group:  # instant gossip through the merged component
                self.nodes[nid].known |= group
        elif isinstance(action, AssignSlots):
            n = self._at(action.node)
            if n.master_id is not None:
                raise RedisRefused("ADDSLOTS on a replica")
            for s in (x for a, b in action.slots for x in range(a, b + 1)):
                if self._owner(n, s) is not None:
                    raise RedisRefused(f"slot {s} is already busy")
                n.slots.add(s)
            if action.bump_epoch:
                n.epoch = max(x.epoch for x in self.nodes.values()) + 1
        elif isinstance(action, Replicate):
            n = self._at(action.node)
            m = self.nodes.get(action.master_id)
            if n.slots or sum(n.keys.values()):
                raise RedisRefused("REPLICATE on a master with slots or keys")
            if (
                m is None
                or action.master_id not in n.known
                or m.master_id is not None
                or not m.alive
            ):
                raise RedisRefused("REPLICATE to an unknown node or a replica")
            if m.node_id == n.node_id:
                raise RedisRefused("REPLICATE myself")
            n.master_id = m.node_id
        elif isinstance(action, MigrateSlots):
            src, dst = self._at(action.source), self._at(action.target)
            if dst.master_id is not None or src.master_id is not None:
                raise RedisRefused("migration between non-masters")
            for s in (x for a, b in action.slots for x in range(a, b + 1)):
                if s not in src.slots:
                    raise RedisRefused(f"slot {s} not owned by the source")
                src.slots.discard(s)
                dst.slots.add(s)
                if s in src.keys:
                    dst.keys[s] = dst.keys.get(s, 0) + src.keys.pop(s)
            dst.epoch = max(x.epoch for x in self.nodes.values()) + 1
        elif isinstance(action, Forget):
            for via in action.via:
                n = self._at(via)
                if action.node_id == n.node_id or n.master_id == action.node_id:
                    continue  # Redis refuses; the executor ignores it
                n.known.discard(action.node_id)
            gone = self.nodes[action.node_id]
            if (
                not any(
                    action.node_id in n.known
                    for n in self.nodes.values()
                    if n.alive and n.node_id != action.node_id
                )
                and gone.slots
            ):
                self.lost_keys += sum(gone.keys.values())
                gone.slots, gone.keys = set(), {}
        elif isinstance(action, Failover):
            r = self._at(action.node)
            if r.master_id is None:
                raise RedisRefused("FAILOVER on a master")
            m = self.nodes[r.master_id]
            r.slots, r.keys, m.slots, m.keys = m.slots, m.keys, set(), {}
            r.master_id, m.master_id = None, r.node_id
            r.epoch = max(x.epoch for x in self.nodes.values()) + 1
        elif isinstance(action, StableSlots | Wait | Refuse):
            pass

    # --- the operator's loop -----------------------------------------------------------
    def converge(self, shards: int, replicas: int, max_rounds: int = 60) -> list[Action]:
        """plan -> apply until the plan is empty (returns it) or only waits/refusals remain."""
        plan: list[Action] = []
        for _ in range(max_rounds):
            self.tick()
            obs = self.observe()
            keep = statefulset_replicas(obs, shards, replicas)
            if keep < len(self.pods):
                self.remove_pods_from(keep)
                continue
            plan = plan_cluster(obs, shards, replicas)
            if not plan or all(isinstance(a, Refuse) for a in plan):
                return plan
            for a in plan:
                self.apply(a)
        raise AssertionError(f"no convergence: last plan {plan}")

    # --- checks ------------------------------------------------------------------------
    def live_masters(self) -> list[SimNode]:
        ids = {p.node_id for p in self.pods.values()}
        return [
            self.nodes[i]
            for i in ids
            if self.nodes[i].alive and self.nodes[i].master_id is None and self.nodes[i].slots
        ]

    def total_keys(self) -> int:
        return sum(sum(n.keys.values()) for n in self.live_masters())

    def check_converged(self, shards: int, replicas: int, k8s_nodes: int) -> None:
        masters = self.live_masters()
        assert len(masters) == shards
        owned = [s for m in masters for s in m.slots]
        assert sorted(owned) == list(range(SLOTS))
        base = SLOTS // shards
        assert all(base <= len(m.slots) <= base + 1 for m in masters)
        pod_of = {p.node_id: p for p in self.pods.values()}
        for m in masters:
            reps = [
                self.nodes[p.node_id]
                for p in self.pods.values()
                if self.nodes[p.node_id].alive and self.nodes[p.node_id].master_id == m.node_id
            ]
            assert len(reps) == replicas, (m.node_id, len(reps))
            if k8s_nodes > 1:  # callers pass 1 where a perfect placement is impossible
                assert all(pod_of[r.node_id].k8s_node != pod_of[m.node_id].k8s_node for r in reps)
        ids = {p.node_id for p in self.pods.values()}
        for p in self.pods.values():  # nobody remembers nodes that are gone
            assert self.nodes[p.node_id].known <= ids | {p.node_id}, p.name
