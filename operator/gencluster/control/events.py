"""Which Events to post: client-go's policy, per object, as a pure function.

- Identical events (same type, reason and message) within DEDUPE_SECONDS are posted once; the
  repeats are counted, not posted (client-go aggregates them into one Event's count).
- A token bucket per object (client-go's spam filter): BURST tokens, one more every
  REFILL_SECONDS. Normal events may not use the last WARNING_RESERVE tokens, so a chatty
  BatchSizeChanged stream can never starve an AlertFiring.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

BURST = 25.0
REFILL_SECONDS = 300.0
DEDUPE_SECONDS = 600.0
WARNING_RESERVE = 5.0

EventType = Literal["Normal", "Warning"]


class EventIntent(NamedTuple):
    """An Event the operator means to post: the one type every part uses (the control loop, the
    reconcile, the Redis Cluster edge); a tuple, so (type, reason, message) compares equal."""

    type: EventType
    reason: str  # CamelCase
    message: str


@dataclass(frozen=True, slots=True)
class EventState:
    tokens: float = BURST
    refilled_at: float | None = None
    seen: Mapping[tuple[str, str, str], float] = field(default_factory=dict)  # key -> last post
    suppressed: int = 0  # dropped by dedupe or rate limit, since the start


def admit(intents: Iterable[EventIntent], state: EventState, now: float,
          dedupe: bool = True) -> tuple[tuple[EventIntent, ...], EventState]:
    """The intents to post now (Warnings first), and the policy's new state. Without `dedupe`
    only the token bucket applies (for intents that are already one per change, such as a
    condition's transitions: a recovery repeating an earlier message must still be posted)."""
    tokens = state.tokens
    if state.refilled_at is not None:
        tokens = min(BURST, tokens + max(0.0, now - state.refilled_at) / REFILL_SECONDS)
    seen = {k: t for k, t in state.seen.items() if now - t < DEDUPE_SECONDS}
    out: list[EventIntent] = []
    suppressed = state.suppressed
    for e in sorted(intents, key=lambda e: e.type != "Warning"):
        key = (e.type, e.reason, e.message)
        if dedupe and key in seen:
            suppressed += 1
            continue
        floor = 0.0 if e.type == "Warning" else WARNING_RESERVE
        if tokens - 1.0 < floor:
            suppressed += 1
            continue
        tokens -= 1.0
        seen[key] = now
        out.append(e)
    return tuple(out), EventState(tokens, now, seen, suppressed)
