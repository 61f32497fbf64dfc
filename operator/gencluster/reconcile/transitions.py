"""Which Events one reconcile deserves: what it applied and removed, children refused, and
condition transitions (pure; the edge posts them through the event policy)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ..api import conditions as cond
from ..control.events import EventIntent
from .assess import Assessment, Refusal


def condition_events(old: Sequence[dict[str, object]], updates: Iterable[cond.ConditionUpdate],
                     cache_events_from_edge: bool = False) -> list[EventIntent]:
    """An Event per condition whose status changed: Ready/NotReady, a Degraded reason and
    Recovered, CacheReady/CacheDegraded (unless the Redis Cluster edge reports those itself)."""
    out: list[EventIntent] = []
    for t in cond.transitions(old, updates):
        if t.type == cond.CACHE_READY and cache_events_from_edge:
            continue
        was = cond.find(old, t.type)
        was_true = was is not None and was.get("status") == "True"
        if t.type == cond.READY and t.status == "True":
            out.append(EventIntent("Normal", "Ready", t.message))
        elif t.type == cond.READY and was_true:
            out.append(EventIntent("Warning", "NotReady", t.message))
        elif t.type == cond.DEGRADED and t.status == "True":
            out.append(EventIntent("Warning", t.reason, t.message))
        elif t.type == cond.DEGRADED and was_true:
            out.append(EventIntent("Normal", "Recovered", "no problems observed"))
        elif t.type == cond.CACHE_READY and t.status == "True" and t.reason != "CacheDisabled":
            out.append(EventIntent("Normal", "CacheReady", t.message))
        elif t.type == cond.CACHE_READY and was_true:
            out.append(EventIntent("Warning", "CacheDegraded", t.message))
    return out


def applied_events(applied: Sequence[str], removed: Sequence[str]) -> list[EventIntent]:
    out = []
    if applied:
        out.append(EventIntent("Normal", "Applied", "applied " + ", ".join(applied)))
    if removed:
        out.append(EventIntent("Normal", "Removed", f"removed {', '.join(removed)} (no longer in spec)"))
    return out


def refusal_events(refusals: Sequence[Refusal], old: Sequence[dict[str, object]],
                   verdict: Assessment) -> list[EventIntent]:
    """A Warning per refused child, once per new set of refusals (a resync repeats none): the
    set is new when the Degraded message it produces differs from the one in status."""
    if not refusals:
        return []
    was = cond.find(old, cond.DEGRADED) or {}
    now = next((c.message for c in verdict.conditions if c.type == cond.DEGRADED), None)
    if was.get("message") == now:
        return []
    return [EventIntent("Warning", "ChildRejected", r.describe()) for r in refusals]
