"""Drop-free scale-down: which pods go, drained before the replica count falls.

A ReplicaSet that shrinks deletes pods in its own order (not-ready pods first, then the lowest
`controller.kubernetes.io/pod-deletion-cost`, then the youngest). Left alone it may delete the
pod with the deepest queue, and the pod's SIGTERM drain races the Service's endpoint update:
requests routed to it in that gap are refused. So a scale-down from N to M runs in steps:

1. choose the victims: the N - M ready pods with the least work (queued + in flight), fewer by
   the pods that are not ready (the ReplicaSet removes those first and they serve nothing);
2. drain them: deletion cost VICTIM_COST on each (so the ReplicaSet picks exactly them), then
   readiness off (`PUT /admin/readiness {"ready": false}`): the pod keeps serving what reaches
   it but its readiness probe fails, the Service stops sending it new connections, and its
   responses close their keep-alive connections;
3. once every victim is not Ready for SETTLE_SECONDS (kube-proxy has synced) and reports an
   empty queue and nothing in flight, or `workload.shutdownGraceSeconds` has passed, set the
   replica count to M. The ReplicaSet deletes the victims; they exit idle.

A decision that wants more pods during a drain cancels it (victims get readiness back: the
cheapest scale-up there is); one that wants fewer adds victims. A victim the ReplicaSet did not
delete (someone else changed the count) gets its readiness back after REMOVAL_TIMEOUT_SECONDS.
Pure: the loop brings the pods, their reports and the clock, and does what the plan says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from .samples import PodRef

VICTIM_COST = "-1000"  # below every pod without the annotation (cost 0)
SETTLE_SECONDS = 3.0  # not Ready this long before removal: endpoints and kube-proxy have caught up
REMOVAL_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class DrainReport:
    """What a victim said about itself this tick (GET /admin/readiness)."""

    queued: int
    inflight: int
    supported: bool = True  # False: the server has no readiness endpoint (404); nothing to wait for

    @property
    def idle(self) -> bool:
        return not self.supported or (self.queued <= 0 and self.inflight <= 0)


@dataclass(frozen=True, slots=True)
class Victim:
    name: str
    uid: str
    since: float  # drain started
    unready_at: float | None = None  # first tick it was seen not Ready


@dataclass(frozen=True, slots=True)
class DrainState:
    phase: Literal["draining", "removing"]
    from_: int  # the Deployment's replicas when the drain began
    target: int
    victims: tuple[Victim, ...]
    changed_at: float  # the phase's start


@dataclass(frozen=True, slots=True)
class DrainPlan:
    drain: tuple[str, ...] = ()  # new victims: deletion cost, then readiness off
    undrain: tuple[str, ...] = ()  # readiness back on, deletion cost removed
    scale_to: int | None = None
    state: DrainState | None = None
    note: str = ""


def effective_replicas(deployment: int, state: DrainState | None) -> int:
    """The count the replica decision should start from: a drain in progress has decided already."""
    if state is not None and state.phase == "draining" and state.from_ == deployment:
        return state.target
    return deployment


def choose_victims(pods: Sequence[PodRef], load: Mapping[str, float | None], n: int,
                   exclude: frozenset[str] = frozenset()) -> list[PodRef]:
    """The n ready pods with the least work; a pod without a reading counts as busy (it may be)."""
    if n <= 0:
        return []
    ready = [p for p in pods if p.ready and p.name not in exclude]

    def key(p: PodRef) -> tuple[int, float, str]:
        value = load.get(p.name)
        return (1, 0.0, p.name) if value is None else (0, value, p.name)

    return sorted(ready, key=key)[:n]


def _victim_done(v: Victim, ref: PodRef | None, report: DrainReport | None, now: float,
                 grace_s: float) -> bool:
    if ref is None:
        return True  # gone already
    if now - v.since >= grace_s:
        return True  # out of time: the pod's own SIGTERM drain takes it from here
    settled = v.unready_at is not None and now - v.unready_at >= SETTLE_SECONDS
    return settled and report is not None and report.idle


def plan_scale_down(state: DrainState | None, deployment: int, desired: int,
                    pods: Sequence[PodRef], load: Mapping[str, float | None],
                    reports: Mapping[str, DrainReport], now: float, grace_s: float) -> DrainPlan:
    """One tick of the scale-down state machine (see the module docstring).

    deployment: the Deployment's replicas now; desired: the replica decision, made against
    effective_replicas(deployment, state); load: queued + in flight per pod (None: unknown);
    reports: the victims' own reports this tick.
    """
    by_name = {p.name: p for p in pods}
    if state is not None and state.phase == "removing":
        left = [v for v in state.victims if (r := by_name.get(v.name)) is not None
                and r.uid == v.uid]
        if not left:
            state = None
        elif now - state.changed_at >= REMOVAL_TIMEOUT_SECONDS:
            stuck = tuple(v.name for v in left)
            return DrainPlan(undrain=stuck, scale_to=desired if desired > deployment else None,
                             note=f"{', '.join(stuck)} not removed: readiness restored")
        else:
            if desired > deployment:
                return DrainPlan(scale_to=desired, state=replace(state, victims=tuple(left)))
            return DrainPlan(state=replace(state, victims=tuple(left)),
                             note="waiting for the drained pods to be removed")
    if state is not None and state.from_ != deployment:
        # The count changed under us (kubectl scale, a rollout): start again from what is there.
        return DrainPlan(undrain=tuple(v.name for v in state.victims),
                         note="replica count changed during the drain: cancelled")
    if state is None:
        if desired >= deployment:
            return DrainPlan(scale_to=desired if desired != deployment else None)
        state = DrainState("draining", deployment, desired, (), now)
    from_ = state.from_
    if desired >= from_:
        return DrainPlan(undrain=tuple(v.name for v in state.victims),
                         scale_to=desired if desired > from_ else None,
                         note="more pods wanted: drain cancelled")
    victims = [v for v in state.victims if (r := by_name.get(v.name)) is not None
               and r.uid == v.uid]
    names = {v.name for v in victims}
    unready_others = sum(1 for p in pods if not p.ready and p.name not in names)
    need = max(0, (from_ - desired) - unready_others)
    undrain: list[str] = []
    if len(victims) > need:  # fewer to remove now: the latest victims get readiness back
        undrain = [v.name for v in victims[need:]]
        victims = victims[:need]
    added = choose_victims(pods, load, need - len(victims), frozenset(names))
    victims += [Victim(p.name, p.uid, now) for p in added]
    victims = [v if v.unready_at is not None or by_name[v.name].ready
               else replace(v, unready_at=now) for v in victims]
    if all(_victim_done(v, by_name.get(v.name), reports.get(v.name), now, grace_s)
           for v in victims) and not added:
        removing = DrainState("removing", desired, desired, tuple(victims), now)
        return DrainPlan(undrain=tuple(undrain), scale_to=desired,
                         state=removing if victims else None,
                         note=f"drained {', '.join(v.name for v in victims) or 'nothing'}")
    new = DrainState("draining", from_, desired, tuple(victims), state.changed_at)
    return DrainPlan(drain=tuple(p.name for p in added), undrain=tuple(undrain), state=new,
                     note=f"draining {', '.join(v.name for v in victims)}")
