"""Pure health summary of a Redis Cluster, and the Events its changes deserve.

`cluster_health` condenses one observation into what status shows (cluster_state, slots
covered, masters and replicas ready, failing nodes). `cluster_events` compares two summaries:
the operator keeps the previous one (in memory or from status) and emits CacheReady,
CacheDegraded and FailoverObserved only on change, so Events stay few.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..control.events import EventIntent
from .model import SLOTS, ClusterObservation, anchor, count_slots


@dataclass(frozen=True)
class ShardHealth:
    master_id: str
    master_pod: str
    slots: int
    ready: bool
    replica_ids: tuple[str, ...]
    replica_pods: tuple[str, ...]


@dataclass(frozen=True)
class ClusterHealth:
    """ok | degraded | bootstrapping | unavailable, with the figures behind it."""

    state: str
    cluster_state: str  # as the anchor node reports it: ok | fail | unknown
    slots_assigned: int
    slots_covered: int  # owned by masters that are not failing
    masters_ready: int
    replicas_ready: int
    failing: tuple[str, ...]  # pods (or node ids) flagged fail / fail?
    unreachable: tuple[str, ...]  # pods the operator could not query
    shards: tuple[ShardHealth, ...]
    message: str

    @property
    def serving(self) -> bool:
        """Every slot has a live master: clients get answers (maybe with less redundancy)."""
        return self.cluster_state == "ok" and self.slots_covered == SLOTS


def cluster_health(
    observed: ClusterObservation,
    desired_shards: int | None = None,
    replicas_per_shard: int | None = None,
) -> ClusterHealth:
    """Summary of the cluster as the best-informed node sees it."""
    unreachable = tuple(sorted(m.pod for m in observed.members if not m.reachable))
    top = anchor(observed)
    if top is None:
        return ClusterHealth(
            "unavailable",
            "unknown",
            0,
            0,
            0,
            0,
            (),
            unreachable,
            (),
            "no Redis pod answers" if observed.members else "no Redis pods",
        )
    pods = {m.node_id: m.pod for m in observed.reachable if m.node_id}
    link_down = {m.node_id for m in observed.reachable if m.master_link_up is False}
    by_addr = {m.address: m.pod for m in observed.members if m.address}
    view = {n.node_id: n for n in top.nodes}

    def pod(node_id: str) -> str:
        if node_id in pods:
            return pods[node_id]
        v = view.get(node_id)
        return by_addr.get(v.address, node_id[:8]) if v else node_id[:8]

    shards: list[ShardHealth] = []
    for v in sorted(view.values(), key=lambda v: pod(v.node_id)):
        if not (v.is_master and v.slots):
            continue
        # A replica counts once it has synced (its replication link is up), not when attached.
        reps = sorted(
            (
                r
                for r in view.values()
                if r.master_id == v.node_id
                and r.usable
                and (r.link_connected or "myself" in r.flags)
                and r.node_id not in link_down
            ),
            key=lambda r: pod(r.node_id),
        )
        shards.append(
            ShardHealth(
                v.node_id,
                pod(v.node_id),
                count_slots(v.slots),
                v.usable,
                tuple(r.node_id for r in reps),
                tuple(pod(r.node_id) for r in reps),
            )
        )
    assigned = sum(s.slots for s in shards)
    covered = sum(s.slots for s in shards if s.ready)
    masters_ready = sum(1 for s in shards if s.ready)
    replicas_ready = sum(len(s.replica_ids) for s in shards if s.ready)
    failing = tuple(sorted(pod(v.node_id) for v in view.values() if v.failing))
    cstate = top.cluster_state or "unknown"
    want_m = desired_shards if desired_shards is not None else masters_ready
    want_r = want_m * replicas_per_shard if replicas_per_shard is not None else replicas_ready
    if assigned == 0:
        state = "bootstrapping"
    elif covered == 0:
        state = "unavailable"
    elif (
        cstate == "ok"
        and covered == SLOTS
        and not failing
        and not unreachable
        and masters_ready == want_m
        and replicas_ready >= want_r
    ):
        state = "ok"
    else:
        state = "degraded"
    msg = (
        f"cluster_state {cstate}, {covered}/{SLOTS} slots covered, {masters_ready}/{want_m} "
        f"masters and {replicas_ready}/{want_r} replicas ready"
    )
    if failing:
        msg += f"; failing: {', '.join(failing)}"
    if unreachable:
        msg += f"; not answering: {', '.join(unreachable)}"
    return ClusterHealth(
        state,
        cstate,
        assigned,
        covered,
        masters_ready,
        replicas_ready,
        failing,
        unreachable,
        tuple(shards),
        msg,
    )


def cache_status(health: ClusterHealth, endpoint: str | None = None) -> dict[str, Any]:
    """status.cache (CacheStatus, camelCase) for cluster mode."""
    out: dict[str, Any] = {
        "mode": "cluster",
        "state": health.state,
        "slotsCovered": health.slots_covered,
        "mastersReady": health.masters_ready,
        "replicasReady": health.replicas_ready,
    }
    if endpoint:
        out["endpoint"] = endpoint
    return out


def cache_condition(health: ClusterHealth) -> tuple[str, str, str]:
    """(status, reason, message) of the CacheReady condition.

    True while every slot is served, even with a replica missing (reason CacheDegraded then),
    because the workload only needs answers; False when slots are lost or not yet assigned.
    """
    if health.state == "ok":
        return "True", "CacheReady", health.message
    if health.state == "bootstrapping":
        return "False", "CacheBootstrapping", health.message
    if health.state == "unavailable":
        return "False", "CacheUnavailable", health.message
    return ("True" if health.serving else "False"), "CacheDegraded", health.message


def cluster_events(previous: ClusterHealth | None, current: ClusterHealth) -> list[EventIntent]:
    """Events for what changed between two summaries (none when nothing did)."""
    events: list[EventIntent] = []
    if previous is not None:
        now_masters = {s.master_id: s for s in current.shards if s.ready}
        for old in previous.shards:
            if not old.ready or old.master_id in now_masters:
                continue
            for rid, rpod in zip(old.replica_ids, old.replica_pods, strict=True):
                if rid in now_masters:
                    events.append(
                        EventIntent(
                            "Warning",
                            "FailoverObserved",
                            f"replica {rpod} took over {now_masters[rid].slots} slots from "
                            f"master {old.master_pod}, which failed or left",
                        )
                    )
                    break
    if current.state == "ok" and (previous is None or previous.state != "ok"):
        events.append(EventIntent("Normal", "CacheReady", f"Redis Cluster ready: {current.message}"))
    elif current.state in ("degraded", "unavailable") and (
        previous is None
        or previous.state != current.state
        or previous.failing != current.failing
        or previous.unreachable != current.unreachable
    ):
        events.append(
            EventIntent("Warning", "CacheDegraded", f"Redis Cluster {current.state}: {current.message}")
        )
    return events
