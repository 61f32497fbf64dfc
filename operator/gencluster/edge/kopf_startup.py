"""A fix to Kopf's start-up cost with indexes, applied before Kopf runs (`quiet_toggle_sets`).

Kopf (1.45) holds every handler back until the indexes are filled: each pod and Deployment it
lists adds a toggle to one ToggleSet and drops it once indexed, and every object's worker waits
on that set's condition. Each add and each drop calls notify_all, which wakes every waiting
worker to re-check the set, though the set's state (all toggles on, or not) has not changed: with
N listed objects that is about 4 x N x N wake-ups. At 1,000 GenerationClusters, 1,000 pods and
1,000 Deployments the restarted operator spent 10.8 s of the first 40 s in them (py-spy, 538 of
1,552 samples of its main thread, docs/reliability.md) and nothing was reconciled for 24 s.

The fix notifies only when an add or a drop changes the set's state, the one thing a waiter on
the set waits for (`ToggleSet.wait_for`); a waiter on one toggle waits for that toggle's own
state, which adding or dropping another never changes (`Toggle.turn_to` still notifies as
before). So the same waiters wake at the same moments, once each.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)


def quiet_toggle_sets() -> bool:
    """Patch kopf's ToggleSet in place (once); False if this Kopf's ToggleSet is not the shape
    the patch knows (then Kopf runs unpatched, only slower to start)."""
    from kopf._cogs.aiokits import aiotoggles

    cls: Any = aiotoggles.ToggleSet
    if getattr(cls, "_gencluster_quiet", False):
        return True
    probe = cls(all)
    if not all(hasattr(probe, a) for a in ("_condition", "_toggles", "_fn", "is_on")):
        log.warning("kopf's ToggleSet has changed shape; start-up not patched")
        return False

    async def make_toggle(self: Any, __val: bool = False, *, name: str | None = None) -> Any:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            if self.is_on() != before:
                self._condition.notify_all()
        return toggle

    async def drop_toggles(self: Any, toggles: Iterable[Any]) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            if self.is_on() != before:
                self._condition.notify_all()

    async def drop_toggle(self: Any, toggle: Any) -> None:
        await drop_toggles(self, (toggle,))

    cls.make_toggle, cls.drop_toggle, cls.drop_toggles = make_toggle, drop_toggle, drop_toggles
    cls._gencluster_quiet = True
    return True
