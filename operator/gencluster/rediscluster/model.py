"""What the operator observed of a Redis Cluster, as plain immutable values (no I/O).

A `ClusterObservation` is one snapshot: for every Redis pod (stable StatefulSet pod name →
current address), whether it answered, its node id and its own `CLUSTER NODES` view. The
planner and the health summary are pure functions of it, so they are tested without Redis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

SLOTS = 16384
SlotRanges = tuple[tuple[int, int], ...]  # inclusive (start, end) pairs, sorted

FAILING_FLAGS = frozenset({"fail", "fail?"})


def to_ranges(slots: Iterable[int]) -> SlotRanges:
    """Compress slot numbers into sorted inclusive ranges."""
    out: list[tuple[int, int]] = []
    for s in sorted(set(slots)):
        if out and out[-1][1] == s - 1:
            out[-1] = (out[-1][0], s)
        else:
            out.append((s, s))
    return tuple(out)


def from_ranges(ranges: SlotRanges) -> list[int]:
    return [s for a, b in ranges for s in range(a, b + 1)]


def count_slots(ranges: SlotRanges) -> int:
    return sum(b - a + 1 for a, b in ranges)


def format_ranges(ranges: SlotRanges) -> str:
    return ",".join(f"{a}-{b}" if a != b else str(a) for a, b in ranges) or "none"


@dataclass(frozen=True)
class NodeView:
    """One line of `CLUSTER NODES`, as one node sees another (or itself: `myself`)."""

    node_id: str
    address: str  # "host:port" ("" when unknown: noaddr, or a node still in handshake)
    flags: frozenset[str]
    master_id: str | None
    config_epoch: int
    link_connected: bool
    slots: SlotRanges = ()
    migrating: tuple[tuple[int, str], ...] = ()  # (slot, target id); only on `myself` lines
    importing: tuple[tuple[int, str], ...] = ()  # (slot, source id); only on `myself` lines

    @property
    def is_master(self) -> bool:
        return "master" in self.flags

    @property
    def failing(self) -> bool:
        return bool(self.flags & FAILING_FLAGS)

    @property
    def usable(self) -> bool:
        """Known, addressable and not suspected of failure."""
        return not (self.failing or self.flags & {"handshake", "noaddr"})


_SLOT_OPEN = re.compile(r"^\[(\d+)-([<>])-([0-9a-f]+)\]$")


def parse_cluster_nodes(text: str) -> tuple[NodeView, ...]:
    """Parse `CLUSTER NODES` output (Redis 7 format)."""
    views: list[NodeView] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 8:
            continue
        node_id, addr, flags_s, master, _ping, _pong, epoch, link = parts[:8]
        hostport = addr.split("@", 1)[0].split(",", 1)[0]
        flags = frozenset(f for f in flags_s.split(",") if f and f != "noflags")
        if "slave" in flags:
            flags = (flags - {"slave"}) | {"replica"}
        slots: list[int] = []
        migrating: list[tuple[int, str]] = []
        importing: list[tuple[int, str]] = []
        for tok in parts[8:]:
            m = _SLOT_OPEN.match(tok)
            if m:
                slot, arrow, other = int(m.group(1)), m.group(2), m.group(3)
                (migrating if arrow == ">" else importing).append((slot, other))
            elif "-" in tok:
                a, b = tok.split("-", 1)
                slots.extend(range(int(a), int(b) + 1))
            else:
                slots.append(int(tok))
        views.append(
            NodeView(
                node_id=node_id,
                address="" if hostport.startswith(":") else hostport,
                flags=flags,
                master_id=None if master == "-" else master,
                config_epoch=int(epoch),
                link_connected=link == "connected",
                slots=to_ranges(slots),
                migrating=tuple(migrating),
                importing=tuple(importing),
            )
        )
    return tuple(views)


@dataclass(frozen=True)
class Member:
    """One Redis pod as observed: its stable name, where it is now, and what it said."""

    pod: str
    address: str  # "host:port" ("" while the pod has no IP)
    k8s_node: str | None = None
    reachable: bool = False
    error: str | None = None
    node_id: str | None = None
    nodes: tuple[NodeView, ...] = ()  # its CLUSTER NODES, `myself` included
    cluster_state: str | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    keys: int | None = None
    master_link_up: bool | None = None  # replicas: INFO replication master_link_status is up
    replicating_from: str | None = None  # replicas: INFO replication master_host:master_port

    @property
    def myself(self) -> NodeView | None:
        for n in self.nodes:
            if "myself" in n.flags:
                return n
        return None

    @property
    def ordinal(self) -> int | None:
        """StatefulSet ordinal from the pod name (`<sts>-<n>`); None if it has none."""
        tail = self.pod.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class ClusterObservation:
    members: tuple[Member, ...] = field(default_factory=tuple)

    @property
    def reachable(self) -> tuple[Member, ...]:
        return tuple(m for m in self.members if m.reachable and m.node_id)

    def by_id(self) -> dict[str, Member]:
        return {m.node_id: m for m in self.reachable if m.node_id}


def assigned_slots(view: Iterable[NodeView]) -> int:
    return sum(count_slots(n.slots) for n in view if n.is_master)


def anchor(observed: ClusterObservation) -> Member | None:
    """The member whose view is taken as the cluster's truth.

    Most assigned slots first (the partition that serves data), then the member most other
    members know at its current address (the majority, not a node that alone remembers
    everyone after a restart), then the lowest ordinal, so the choice is stable.
    """
    reach = observed.reachable
    if not reach:
        return None
    known_by: dict[str, int] = {}
    for m in reach:
        for n in m.nodes:
            known_by[f"{n.node_id}@{n.address}"] = known_by.get(f"{n.node_id}@{n.address}", 0) + 1
    return min(
        reach,
        key=lambda m: (
            -assigned_slots(m.nodes),
            -known_by.get(f"{m.node_id}@{m.address}", 0),
            m.ordinal if m.ordinal is not None else 1 << 30,
            m.pod,
        ),
    )
