"""GPU availability: no more pods while the ones already added cannot be scheduled.

A scale-up that asks for GPUs no node has leaves pods Pending with PodScheduled=False, reason
Unschedulable. Asking for more then only storms the scheduler (and a cluster autoscaler) with
pods nobody can place, and the queue-per-pod signal keeps saying "more". So while any workload
pod is unschedulable the replica decision may hold or shrink, never grow; the loop says so once
(Warning ScaleUpHeld, with the scheduler's message) and once more when the pods are placed
(Normal ScaleUpResumed). The reconcile reports the same pods in the Degraded condition
(reason Unschedulable) and in Progressing (reason PodsUnschedulable).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .events import EventIntent
from .replicas import ReplicaDecision

HELD = "ScaleUpHeld"
RESUMED = "ScaleUpResumed"


@dataclass(frozen=True, slots=True)
class Hold:
    decision: ReplicaDecision
    held: bool  # unschedulable pods exist (the hold is in force)
    clamped: bool  # a scale-up was turned into a hold this tick
    summary: str  # "<n> pods cannot be scheduled: <message>"


def summary(unschedulable: Mapping[str, str]) -> str:
    """One line: how many pods, and the scheduler's message (the first pod's, by name)."""
    if not unschedulable:
        return ""
    first = sorted(unschedulable)[0]
    n = len(unschedulable)
    what = f"{n} pod{'s' if n != 1 else ''} cannot be scheduled"
    message = unschedulable[first].strip()
    return f"{what} ({first}: {message})" if message else what


def hold_scale_up(decision: ReplicaDecision, unschedulable: Mapping[str, str]) -> Hold:
    """The decision with any growth removed while pods are unschedulable (pod name -> message)."""
    if not unschedulable:
        return Hold(decision, False, False, "")
    line = summary(unschedulable)
    if decision.desired <= decision.current:
        return Hold(decision, True, False, line)
    held = ReplicaDecision(decision.current, decision.current,
                           f"{decision.reason}; scale-up to {decision.desired} held: {line}",
                           decision.proposals)
    return Hold(held, True, True, line)


def transition_events(was_held: bool, hold: Hold) -> list[EventIntent]:
    """ScaleUpHeld when unschedulable pods appear, ScaleUpResumed when the last one is placed."""
    if hold.held and not was_held:
        return [EventIntent("Warning", HELD, f"{hold.summary}; no more replicas until they are "
                                             "scheduled")]
    if was_held and not hold.held:
        return [EventIntent("Normal", RESUMED, "the pending workload pods are scheduled; "
                                               "scale-up allowed again")]
    return []
