"""The one path from an EventIntent to a Kubernetes Event.

Every Event the operator posts goes through `EventRecorder`: the reconcile's intents through the
event policy's token bucket per object (gencluster.control.events; no dedupe, since each is
already one per change: a condition's transition, children applied or removed — a Ready after a
NotReady must be posted even when an earlier Ready had the same words), the control loop's
already admitted by its own decide (its policy state lives in the loop's ControlState) — one
bucket per source and object, as client-go's recorder keeps one per component and object.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from ..control.events import EventIntent, EventState, admit

Post = Callable[[Any, EventIntent], None]


def post_with_kopf(body: Any, event: EventIntent) -> None:
    """Kopf posts it (asynchronously, from the operator's loop) as `kubectl describe` shows."""
    kopf.event(body, type=event.type, reason=event.reason, message=event.message)


def _uid(body: Any) -> str:
    meta: Mapping[str, Any] = (body or {}).get("metadata") or {}
    return str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")


class EventRecorder:
    """Posts EventIntents about objects; remembers the reconcile's policy state per object."""

    def __init__(self, post: Post = post_with_kopf, clock: Callable[[], float] = time.time) -> None:
        self._post, self._clock = post, clock
        self._states: dict[str, EventState] = {}

    def emit(self, body: Any, intents: Iterable[EventIntent]) -> tuple[EventIntent, ...]:
        """Admit through the per-object policy, then post; returns what was posted."""
        uid = _uid(body)
        admitted, self._states[uid] = admit(intents, self._states.get(uid, EventState()),
                                            self._clock(), dedupe=False)
        return self.emit_admitted(body, admitted)

    def emit_admitted(self, body: Any, intents: Iterable[EventIntent]) -> tuple[EventIntent, ...]:
        """Post intents a pure decide already admitted (the control loop's)."""
        out = tuple(intents)
        for event in out:
            self._post(body, event)
        return out

    def forget(self, body: Any) -> None:
        self._states.pop(_uid(body), None)
