"""Status conditions as the Kubernetes API conventions describe them.

Pure helpers: a condition keeps its lastTransitionTime unless its status changes, so that
`kubectl describe` shows when something became true, not when the operator last looked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
CACHE_READY = "CacheReady"
ALERTING = "Alerting"


@dataclass(frozen=True)
class ConditionUpdate:
    """What the operator concluded about one condition type in this pass."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""


@dataclass(frozen=True, slots=True)
class Condition:
    """A condition as a writer remembers it between passes: with the time (epoch seconds) its
    status last changed. The control loop keeps these; the reconcile merges into status."""

    type: str
    status: str
    reason: str
    message: str
    since: float


def _keeps_time(old_status: object, new_status: str) -> bool:
    """The one rule: lastTransitionTime moves only when the status does."""
    return old_status == new_status


def carry(old: Iterable[Condition], update: ConditionUpdate, now: float) -> Condition:
    """The condition after `update`, keeping its transition time unless the status changed."""
    prev = next((c for c in old if c.type == update.type), None)
    since = prev.since if prev is not None and _keeps_time(prev.status, update.status) else now
    return Condition(update.type, update.status, update.reason, update.message, since)


def merge_conditions(
    current: Iterable[dict[str, object]],
    updates: Iterable[ConditionUpdate],
    now: str,
    generation: int | None,
) -> list[dict[str, object]]:
    """Apply updates to a conditions list, keeping lastTransitionTime where status is unchanged.

    Conditions of types not in `updates` are kept as they are (another writer owns them).
    """
    by_type = {str(c.get("type")): dict(c) for c in current}
    for u in updates:
        old = by_type.get(u.type)
        changed = old is None or not _keeps_time(old.get("status"), u.status)
        by_type[u.type] = {
            "type": u.type,
            "status": u.status,
            "reason": u.reason,
            "message": u.message,
            "lastTransitionTime": now if changed or old is None else old.get("lastTransitionTime", now),
            "observedGeneration": generation,
        }
    order = [READY, PROGRESSING, DEGRADED, CACHE_READY, ALERTING]
    return sorted(by_type.values(), key=lambda c: (order.index(str(c["type"])) if c["type"] in order else len(order), str(c["type"])))


def already_applied(current: Mapping[str, Any], status: Mapping[str, Any]) -> bool:
    """Whether the status holds every field and condition of `status` (what one writer applies)
    as it is: applying it would change nothing, so the request, and the watch event it sends
    every watcher, can be saved. A resume after an operator restart finds most clusters so."""
    for key, value in status.items():
        if key != "conditions":
            if current.get(key) != value:
                return False
            continue
        have = {c.get("type"): c for c in current.get("conditions") or [] if isinstance(c, Mapping)}
        if any(have.get(c.get("type")) != c for c in value):
            return False
    return True


def transitions(
    current: Iterable[dict[str, object]], updates: Iterable[ConditionUpdate]
) -> list[ConditionUpdate]:
    """The updates that change a condition's status (the ones worth an Event)."""
    old = {str(c.get("type")): c.get("status") for c in current}
    return [u for u in updates if old.get(u.type) != u.status]


def find(conditions: Iterable[dict[str, object]], type_: str) -> dict[str, object] | None:
    for c in conditions:
        if c.get("type") == type_:
            return c
    return None
