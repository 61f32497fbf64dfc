"""Pure planner: from one observation of the Redis pods to the next actions that converge them.

`plan_cluster` is level-triggered and idempotent: it looks at the cluster as it is and returns
the first phase of work still to do, in this order —

1. meet:     every reachable pod joins the anchor's cluster (bootstrap; a pod back with a new IP);
2. forget:   entries for nodes that are gone (pod deleted/recreated, failed, address reused);
3. settle:   wait until every node sees every other one and they agree on the slot map, and
             until Redis has failed over any failing master that still has a replica;
4. resume:   finish (or abort) slot migrations left open by an interrupted run;
5. cover:    assign unowned slots (bootstrap: 16384 spread evenly over the first masters);
6. shards:   grow (add masters, move slots to them) or shrink (drain masters, keys kept), or
             rebalance when a master is outside [floor, ceil] of 16384 / shards;
7. replicas: give every master `replicas_per_shard` replicas, on another Kubernetes node when
             there is one.

Only one phase is returned at a time; the executor applies it and the next reconcile observes
again, so a crash at any point is repaired by simply planning again. An empty plan means the
cluster is converged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..render.names import MIB
from .model import (
    SLOTS,
    ClusterObservation,
    Member,
    NodeView,
    SlotRanges,
    anchor,
    count_slots,
    format_ranges,
    from_ranges,
    to_ranges,
)

# Keep this much memory free on the remaining masters when shrinking (percent of maxmemory).
SHRINK_MEMORY_HEADROOM_PERCENT = 10


@dataclass(frozen=True)
class Meet:
    """CLUSTER MEET sent to `via` (a node of the cluster) for the node at `address`."""

    via: str
    address: str


@dataclass(frozen=True)
class AssignSlots:
    """CLUSTER ADDSLOTSRANGE on `node`; `bump_epoch` when taking over slots after a loss."""

    node: str
    node_id: str
    slots: SlotRanges
    bump_epoch: bool = False


@dataclass(frozen=True)
class Replicate:
    """CLUSTER REPLICATE on `node` (an empty master or a replica): follow `master_id`."""

    node: str
    master_id: str


@dataclass(frozen=True)
class MigrateSlots:
    """Move `slots` with their keys: IMPORTING/MIGRATING, MIGRATE the keys, SETSLOT NODE."""

    source: str
    source_id: str
    target: str
    target_id: str
    slots: SlotRanges
    notify: tuple[str, ...] = ()  # the other masters, told the new owner too


@dataclass(frozen=True)
class StableSlots:
    """CLUSTER SETSLOT <slot> STABLE: clear an open slot whose migration cannot be finished."""

    node: str
    slots: SlotRanges


@dataclass(frozen=True)
class Forget:
    """CLUSTER FORGET `node_id` on every node in `via` (all of them, within Redis' 60 s ban)."""

    node_id: str
    via: tuple[str, ...]
    reason: str = ""


@dataclass(frozen=True)
class Failover:
    """CLUSTER FAILOVER on the replica at `node`: a safe, coordinated promotion (no data loss)."""

    node: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do now, but not converged: observe again later."""

    reason: str


@dataclass(frozen=True)
class Refuse:
    """The spec asks for something unsafe; a person must change it. Nothing is done."""

    reason: str


Action = (
    Meet | AssignSlots | Replicate | MigrateSlots | StableSlots | Forget | Failover | Wait | Refuse
)


def is_work(action: Action) -> bool:
    """True for actions the executor performs (not Wait / Refuse)."""
    return not isinstance(action, Wait | Refuse)


@dataclass
class _Ctx:
    observed: ClusterObservation
    shards: int
    replicas: int
    anchor: Member
    view: dict[str, NodeView] = field(default_factory=dict)
    by_id: dict[str, Member] = field(default_factory=dict)

    @property
    def total_pods(self) -> int:
        return self.shards * (1 + self.replicas)

    def staying(self, m: Member) -> bool:
        """False for pods a shrink will remove (StatefulSets remove the highest ordinals)."""
        return m.ordinal is None or m.ordinal < self.total_pods

    @property
    def all_reachable(self) -> bool:
        return len(self.observed.reachable) == len(self.observed.members)

    def pod(self, node_id: str) -> str:
        m = self.by_id.get(node_id)
        if m:
            return m.pod
        v = self.view.get(node_id)
        return f"{node_id[:8]}@{v.address}" if v and v.address else node_id[:8]

    def masters(self) -> list[NodeView]:
        """Masters that own slots and are not failing, in the anchor's view."""
        return [v for v in self.view.values() if v.is_master and v.slots and v.usable]

    def free(self) -> list[Member]:
        """Staying, reachable, usable empty masters: candidates for new masters or replicas."""
        out = []
        for m in self.observed.reachable:
            v = self.view.get(m.node_id or "")
            if v and v.is_master and not v.slots and v.usable and self.staying(m):
                out.append(m)
        return sorted(out, key=_order)


def _order(m: Member) -> tuple[int, str]:
    return (m.ordinal if m.ordinal is not None else 1 << 30, m.pod)


def even_ranges(n: int) -> list[SlotRanges]:
    """16384 slots in n contiguous ranges whose sizes differ by at most one."""
    return [((i * SLOTS // n, (i + 1) * SLOTS // n - 1),) for i in range(n)]


def _chunks(slots: list[int], n: int) -> list[list[int]]:
    return [slots[i * len(slots) // n : (i + 1) * len(slots) // n] for i in range(n)]


def _pick_masters(
    candidates: Sequence[Member], k: int, existing: Sequence[str | None]
) -> list[Member]:
    """k candidates spread over Kubernetes nodes (fewest masters first), then by ordinal."""
    per_node: dict[str | None, int] = {}
    for node in existing:
        per_node[node] = per_node.get(node, 0) + 1
    left = sorted(candidates, key=_order)
    chosen: list[Member] = []
    while left and len(chosen) < k:
        best = min(left, key=lambda m: (per_node.get(m.k8s_node, 0), _order(m)))
        chosen.append(best)
        left.remove(best)
        per_node[best.k8s_node] = per_node.get(best.k8s_node, 0) + 1
    return chosen


def _meet(ctx: _Ctx) -> list[Action]:
    out: list[Action] = []
    for m in sorted(ctx.observed.reachable, key=_order):
        if m is ctx.anchor or not m.address:
            continue
        v = ctx.view.get(m.node_id or "")
        if v is None or v.address != m.address or "noaddr" in v.flags:
            out.append(Meet(ctx.anchor.address, m.address))
    return out


def _forget(ctx: _Ctx) -> list[Action]:
    members = ctx.observed.members
    reachable_ids = set(ctx.by_id)
    member_addrs = {m.address for m in members if m.address}
    unreachable_addrs = {m.address for m in members if not m.reachable and m.address}
    # Entries from every view, the anchor's version first: a node may linger in one view only
    # (a replica that could not forget its own master at the time).
    seen: dict[str, NodeView] = {}
    for m in (ctx.anchor, *ctx.observed.reachable):
        for n in m.nodes:
            seen.setdefault(n.node_id, n)
    out: list[Action] = []
    for v in sorted(seen.values(), key=lambda v: v.node_id):
        if v.node_id in reachable_ids or "myself" in v.flags:
            continue
        if v.address and v.address in unreachable_addrs:
            continue  # may be that pod, restarting: keep it
        reused = bool(v.address) and v.address in member_addrs  # another node id lives there now
        if not (reused or "fail" in v.flags or "noaddr" in v.flags):
            continue  # not yet known to be gone (pfail, handshake): wait for Redis to decide
        if v.slots:
            if not ctx.all_reachable:
                continue  # never give away slots while a pod could still come back with them
            if any(o.master_id == v.node_id and o.usable for o in ctx.view.values()):
                continue  # Redis will fail over to this replica; do not interfere
        via = tuple(
            sorted(
                m.address
                for m in ctx.observed.reachable
                if any(n.node_id == v.node_id for n in m.nodes)
                and (m.myself is None or m.myself.master_id != v.node_id)
            )
        )
        if via:
            why = "address reused" if reused else ("failed" if "fail" in v.flags else "no address")
            lost = f", losing slots {format_ranges(v.slots)}" if v.slots else ""
            out.append(Forget(v.node_id, via, f"node {ctx.pod(v.node_id)} {why}{lost}"))
    return out


def _slot_map(nodes: Sequence[NodeView]) -> dict[str, SlotRanges]:
    return {n.node_id: n.slots for n in nodes if n.is_master and n.slots}


def _settle(ctx: _Ctx) -> list[Action]:
    reach = ctx.observed.reachable
    anchor_map = _slot_map(list(ctx.view.values()))
    for m in reach:
        known = {n.node_id: n for n in m.nodes}
        for o in reach:
            k = known.get(o.node_id or "")
            if k is None or not k.usable or k.address != o.address:
                return [Wait(f"gossip: {m.pod} does not see {o.pod} yet")]
        if any("handshake" in n.flags for n in m.nodes):
            return [Wait(f"gossip: {m.pod} is still in handshake with a node")]
        if _slot_map(m.nodes) != anchor_map:
            return [Wait(f"gossip: {m.pod} does not agree on the slot map yet")]
    for v in ctx.view.values():
        if v.is_master and v.slots and v.failing:
            return [
                Wait(
                    f"failover pending: master {ctx.pod(v.node_id)} is failing "
                    f"({count_slots(v.slots)} slots)"
                )
            ]
    return []


def _owner(ctx: _Ctx) -> dict[int, str]:
    owner: dict[int, str] = {}
    for v in ctx.view.values():
        if v.is_master:
            for s in from_ranges(v.slots):
                owner[s] = v.node_id
    return owner


def _other_masters(ctx: _Ctx, *exclude: str) -> tuple[str, ...]:
    return tuple(sorted(v.address for v in ctx.masters() if v.node_id not in exclude and v.address))


def _states_ok(ctx: _Ctx) -> list[Action]:
    """Slot moves need every node serving: a node that just joined reports cluster_state fail
    for a rejoin delay (about cluster-node-timeout) and refuses RESTORE-ASKING meanwhile."""
    for m in sorted(ctx.observed.reachable, key=_order):
        if m.cluster_state != "ok":
            return [Wait(f"{m.pod} reports cluster_state {m.cluster_state}")]
    return []


def _resume(ctx: _Ctx) -> list[Action]:
    owner = _owner(ctx)
    moves: dict[tuple[str, str], list[int]] = {}
    stable: dict[str, list[int]] = {}
    for m in ctx.observed.reachable:
        me = m.myself
        if me is None or m.node_id is None:
            continue
        for slot, target in me.migrating:
            if owner.get(slot) == m.node_id and target in ctx.by_id:
                moves.setdefault((m.node_id, target), []).append(slot)
            else:
                stable.setdefault(m.address, []).append(slot)
        for slot, source in me.importing:
            if owner.get(slot) == source and source in ctx.by_id and source != m.node_id:
                moves.setdefault((source, m.node_id), []).append(slot)
            else:
                stable.setdefault(m.address, []).append(slot)
    out: list[Action] = [StableSlots(addr, to_ranges(s)) for addr, s in sorted(stable.items())]
    if moves and (wait := _states_ok(ctx)):
        return out + wait
    for (src, dst), slots in sorted(moves.items()):
        out.append(
            MigrateSlots(
                ctx.by_id[src].address,
                src,
                ctx.by_id[dst].address,
                dst,
                to_ranges(slots),
                _other_masters(ctx, src, dst),
            )
        )
    return out


def _cover(ctx: _Ctx) -> list[Action]:
    owner = _owner(ctx)
    uncovered = [s for s in range(SLOTS) if s not in owner]
    if not uncovered:
        return []
    masters = [v for v in ctx.masters() if v.node_id in ctx.by_id]
    if not masters and len(uncovered) == SLOTS:
        return _bootstrap(ctx)
    need = ctx.shards - len(masters)
    existing_nodes = [ctx.by_id[v.node_id].k8s_node for v in masters]
    takers = _pick_masters(ctx.free(), need, existing_nodes) if need > 0 else []
    if takers:
        targets = [(t.address, t.node_id or "") for t in takers]
    else:
        fewest = sorted(masters, key=lambda v: (count_slots(v.slots), v.node_id))
        targets = [(v.address, v.node_id) for v in fewest]
    chunks = _chunks(uncovered, len(targets))
    return [
        AssignSlots(addr, nid, to_ranges(chunk), bump_epoch=True)
        for (addr, nid), chunk in zip(targets, chunks, strict=True)
        if chunk
    ]


def _bootstrap(ctx: _Ctx) -> list[Action]:
    members = ctx.observed.members
    if not ctx.all_reachable:
        return [
            Wait(
                f"bootstrap waits for all Redis pods: {len(ctx.observed.reachable)}/"
                f"{len(members)} answer"
            )
        ]
    candidates = ctx.free()
    if len(candidates) < ctx.shards:
        return [Wait(f"bootstrap needs {ctx.shards} empty Redis pods, has {len(candidates)}")]
    chosen = _pick_masters(candidates, ctx.shards, [])
    out: list[Action] = [
        AssignSlots(m.address, m.node_id or "", r)
        for m, r in zip(chosen, even_ranges(ctx.shards), strict=True)
    ]
    rest = [m for m in candidates if m not in chosen]
    out.extend(_attach(ctx, {m.node_id or "": [] for m in chosen}, rest))
    return out


def _rebalance(
    ctx: _Ctx, keep: list[tuple[str, str]], drain: list[str], owned: dict[str, list[int]]
) -> list[Action]:
    """Slot moves so that every kept master ends within one slot of 16384 / len(keep).

    `keep` is (node id, address); drained masters give away everything. Donors give their
    highest slots, so ranges stay contiguous.
    """
    n = len(keep)
    base, extra = divmod(SLOTS, n)
    counts = {nid: len(owned.get(nid, [])) for nid, _ in keep}
    hi = base + (1 if extra else 0)
    if not drain and all(base <= c <= hi for c in counts.values()):
        return []
    order = sorted(keep, key=lambda k: (-counts[k[0]], k[0]))
    target = {nid: base + (1 if i < extra else 0) for i, (nid, _) in enumerate(order)}
    addr = dict(keep) | {d: ctx.view[d].address for d in drain}
    donors: list[tuple[str, list[int]]] = [(d, sorted(owned.get(d, []))) for d in drain]
    for nid, _ in keep:
        excess = counts[nid] - target[nid]
        if excess > 0:
            donors.append((nid, sorted(owned[nid])[-excess:]))
    recipients = [
        (nid, target[nid] - counts[nid])
        for nid, _ in sorted(keep, key=lambda k: (ctx.pod(k[0]), k[0]))
        if counts[nid] < target[nid]
    ]
    moves: dict[tuple[str, str], list[int]] = {}
    ri = 0
    left = recipients[0][1] if recipients else 0
    for donor, slots in donors:
        for s in slots:
            while ri < len(recipients) and left == 0:
                ri += 1
                left = recipients[ri][1] if ri < len(recipients) else 0
            if ri >= len(recipients):
                break
            moves.setdefault((donor, recipients[ri][0]), []).append(s)
            left -= 1
    everyone = set(addr)
    return [
        MigrateSlots(
            addr[src],
            src,
            addr[dst],
            dst,
            to_ranges(slots),
            tuple(sorted(addr[o] for o in everyone - {src, dst})),
        )
        for (src, dst), slots in moves.items()
    ]


def _shards(ctx: _Ctx) -> list[Action]:
    masters = ctx.masters()
    stray = [v for v in masters if v.node_id not in ctx.by_id]
    owned = {v.node_id: from_ranges(v.slots) for v in masters}
    n = len(masters)
    keep: list[tuple[str, str]]
    drain: list[str] = []
    if n < ctx.shards:
        free = ctx.free()
        need = ctx.shards - n
        if len(free) < need:
            return [
                Wait(
                    f"growing to {ctx.shards} shards waits for {need - len(free)} more "
                    f"empty Redis pod(s)"
                )
            ]
        nodes = [ctx.by_id[v.node_id].k8s_node for v in masters if v.node_id in ctx.by_id]
        new = _pick_masters(free, need, nodes)
        keep = [(v.node_id, v.address) for v in masters] + [
            (m.node_id or "", m.address) for m in new
        ]
    elif n > ctx.shards:
        plan = _shrink(ctx, masters)
        if isinstance(plan, list):
            return plan
        keep, drain = plan
    else:
        keep = [(v.node_id, v.address) for v in masters]
    moves = _rebalance(ctx, keep, drain, owned)
    if moves and (stray or not ctx.all_reachable):
        who = ", ".join(ctx.pod(v.node_id) for v in stray) or "some Redis pods"
        return [Wait(f"moving slots waits until {who} answer the operator")]
    return (_states_ok(ctx) or moves) if moves else []


def _shrink(
    ctx: _Ctx, masters: list[NodeView]
) -> list[Action] | tuple[list[tuple[str, str]], list[str]]:
    """Which masters keep their slots and which are drained; or promotions / a refusal first."""
    used = sum(ctx.by_id[v.node_id].used_memory or 0 for v in masters if v.node_id in ctx.by_id)
    limits = [m.maxmemory for m in ctx.observed.reachable if m.maxmemory]
    if limits:
        room = ctx.shards * min(limits) * (100 - SHRINK_MEMORY_HEADROOM_PERCENT) // 100
        if used > room:
            mib = MIB
            return [
                Refuse(
                    f"cannot shrink to {ctx.shards} shards: the masters hold {used // mib} MiB, "
                    f"more than {ctx.shards} x maxMemoryMiB ({min(limits) // mib}) less "
                    f"{SHRINK_MEMORY_HEADROOM_PERCENT} % headroom; raise cache.maxMemoryMiB "
                    f"or keep cache.shards at {len(masters)}"
                )
            ]

    def member(v: NodeView) -> Member | None:
        return ctx.by_id.get(v.node_id)

    staying = [v for v in masters if (m := member(v)) is not None and ctx.staying(m)]
    if len(staying) < ctx.shards:
        # Prefer promoting a staying replica of a departing master: no key has to move.
        promotions: list[Action] = []
        for v in sorted(masters, key=lambda v: ctx.pod(v.node_id)):
            m = member(v)
            if m is None or ctx.staying(m):
                continue
            reps = sorted(
                (
                    r
                    for r in ctx.observed.reachable
                    if ctx.staying(r) and r.myself and r.myself.master_id == v.node_id
                ),
                key=_order,
            )
            if reps and len(staying) + len(promotions) < ctx.shards:
                promotions.append(Failover(reps[0].address))
        if promotions:
            return promotions
    keep_views = sorted(staying, key=lambda v: (-count_slots(v.slots), ctx.pod(v.node_id)))[
        : ctx.shards
    ]
    keep = [(v.node_id, v.address) for v in keep_views]
    if len(keep) < ctx.shards:
        nodes = [ctx.by_id[v.node_id].k8s_node for v in keep_views]
        new = _pick_masters(ctx.free(), ctx.shards - len(keep), nodes)
        keep += [(m.node_id or "", m.address) for m in new]
    if len(keep) < ctx.shards:
        return [
            Refuse(
                f"cannot shrink to {ctx.shards} shards safely: only {len(keep)} of the pods "
                f"that remain can hold slots; restore cache.shards to {len(masters)}"
            )
        ]
    kept = {nid for nid, _ in keep}
    drain = [v.node_id for v in masters if v.node_id not in kept]
    if any(v.node_id not in ctx.by_id for v in masters if v.node_id in drain):
        return [Wait("shrink waits until every master to drain answers the operator")]
    return keep, drain


def _attach(
    ctx: _Ctx, replicas_of: dict[str, list[Member]], candidates: Sequence[Member]
) -> list[Action]:
    """Replicate actions giving each master up to `replicas` replicas, on another k8s node if any.

    A bipartite matching (augmenting paths) of candidates to open replica places, so that as
    many replicas as possible land on a node other than their master's; the rest fill what is
    left. Places are listed round-robin over masters, so an uneven supply is spread evenly.
    """
    k8s_nodes = {m.k8s_node for m in ctx.observed.members if m.k8s_node}
    master_node = {
        mid: (ctx.by_id[mid].k8s_node if mid in ctx.by_id else None) for mid in replicas_of
    }
    need = {mid: ctx.replicas - len(reps) for mid, reps in replicas_of.items()}
    masters = sorted(replicas_of, key=lambda mid: (ctx.pod(mid), mid))
    places = [
        mid for rnd in range(max(need.values(), default=0)) for mid in masters if need[mid] > rnd
    ]

    def apart(c: Member, mid: str) -> bool:
        return len(k8s_nodes) <= 1 or c.k8s_node is None or master_node[mid] != c.k8s_node

    owner: dict[int, int] = {}  # place -> candidate index

    def augment(ci: int, seen: set[int]) -> bool:
        for pi, mid in enumerate(places):
            if pi in seen or not apart(candidates[ci], mid):
                continue
            seen.add(pi)
            if pi not in owner or augment(owner[pi], seen):
                owner[pi] = ci
                return True
        return False

    for ci in range(len(candidates)):
        if len(owner) < len(places):
            augment(ci, set())
    placed = {ci: pi for pi, ci in owner.items()}
    free_places = [pi for pi in range(len(places)) if pi not in owner]
    for ci in range(len(candidates)):
        if ci not in placed and free_places:
            placed[ci] = free_places.pop(0)
    return [Replicate(candidates[ci].address, places[pi]) for ci, pi in sorted(placed.items())]


def _relink(ctx: _Ctx) -> list[Action]:
    """Replicas still replicating from their master's old address.

    Redis updates a node's address from gossip without re-pointing replication at it (seen
    after every pod restarted on a new IP): CLUSTER REPLICATE on the same master re-points it.
    """
    out: list[Action] = []
    for m in sorted(ctx.observed.reachable, key=_order):
        me = m.myself
        if me is None or me.is_master or me.master_id is None or m.master_link_up:
            continue
        master = ctx.view.get(me.master_id)
        if (
            master is not None
            and master.usable
            and master.address
            and m.replicating_from not in (None, master.address)
        ):
            out.append(Replicate(m.address, me.master_id))
    return out


def _replicas(ctx: _Ctx) -> list[Action]:
    if relink := _relink(ctx):
        return relink
    masters = {v.node_id for v in ctx.masters()}
    replicas_of: dict[str, list[Member]] = {mid: [] for mid in masters}
    candidates: list[Member] = []
    free_masters = ctx.free()
    for m in sorted(ctx.observed.reachable, key=_order):
        v = ctx.view.get(m.node_id or "")
        if v is None or not v.usable or not ctx.staying(m) or v.is_master:
            continue
        if v.master_id in replicas_of:
            replicas_of[v.master_id].append(m)
        elif v.master_id is None or (mv := ctx.view.get(v.master_id)) is None or not mv.slots:
            candidates.append(m)  # follows a drained/empty or forgotten master
    # Surplus replicas (after a failover dance) move to masters that lack one.
    for mid, reps in replicas_of.items():
        if len(reps) > ctx.replicas:
            mnode = ctx.by_id[mid].k8s_node if mid in ctx.by_id else None
            reps.sort(key=lambda r: (r.k8s_node != mnode, _order(r)))
            surplus = reps[: len(reps) - ctx.replicas]
            del reps[: len(reps) - ctx.replicas]
            candidates.extend(surplus)
    if ctx.replicas == 0:
        return []
    # A surplus replica moves only where a master lacks one (_attach fills needs only).
    return _attach(ctx, replicas_of, candidates + free_masters)


def plan_cluster(
    observed: ClusterObservation, desired_shards: int, replicas_per_shard: int
) -> list[Action]:
    """The next actions towards `desired_shards` masters with `replicas_per_shard` replicas each."""
    if desired_shards < 1 or replicas_per_shard < 0:
        return [
            Refuse(
                f"invalid cluster shape: {desired_shards} shards, {replicas_per_shard} "
                f"replicas per shard"
            )
        ]
    if not observed.members:
        return [Wait("no Redis pods yet")]
    top = anchor(observed)
    if top is None:
        return [Wait("no Redis pod answers yet")]
    ctx = _Ctx(
        observed,
        desired_shards,
        replicas_per_shard,
        top,
        view={n.node_id: n for n in top.nodes},
        by_id=observed.by_id(),
    )
    steps: tuple[Callable[[_Ctx], list[Action]], ...] = (
        _meet,
        _forget,
        _settle,
        _resume,
        _cover,
        _shards,
        _replicas,
    )
    for step in steps:
        actions = step(ctx)
        if actions:
            return actions
    return []


def statefulset_replicas(
    observed: ClusterObservation, desired_shards: int, replicas_per_shard: int
) -> int:
    """Pods the Redis StatefulSet may have now: the new count once a shrink has drained.

    Growing applies at once. Shrinking keeps the current pods until the plan is empty, i.e. the
    departing (highest-ordinal) pods own no slots and every master has its staying replicas.
    """
    total = desired_shards * (1 + replicas_per_shard)
    current = len(observed.members)
    if total >= current:
        return total
    return total if not plan_cluster(observed, desired_shards, replicas_per_shard) else current
