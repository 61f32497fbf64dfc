"""The patch to Kopf's ToggleSet (edge/kopf_startup.py): the same waiters wake at the same
moments, without a notify_all for every toggle added or dropped."""

from __future__ import annotations

import asyncio

from kopf._cogs.aiokits import aiotoggles

from gencluster.edge.kopf_startup import quiet_toggle_sets


class CountingCondition(asyncio.Condition):
    def __init__(self) -> None:
        super().__init__()
        self.notified = 0

    def notify_all(self) -> None:
        self.notified += 1
        super().notify_all()


def counting_set() -> tuple[aiotoggles.ToggleSet, CountingCondition]:
    s = aiotoggles.ToggleSet(all)
    s._condition = CountingCondition()
    return s, s._condition


async def test_index_readiness_wakes_its_waiters_once_when_the_last_toggle_goes() -> None:
    assert quiet_toggle_sets()
    assert quiet_toggle_sets()  # idempotent
    ready, cond = counting_set()
    blocker = await ready.make_toggle(name="orchestration blocker")
    toggles = [await ready.make_toggle(name=f"pod {i}") for i in range(500)]
    await ready.drop_toggle(blocker)
    woke: list[int] = []

    async def worker(i: int) -> None:  # as every object's worker waits in Kopf
        await ready.wait_for(True)
        woke.append(i)

    tasks = [asyncio.create_task(worker(i)) for i in range(200)]
    await asyncio.sleep(0)
    for t in toggles[:-1]:
        await ready.drop_toggle(t)
    await asyncio.sleep(0.01)
    assert woke == [] and ready.is_off()  # one toggle still off: nobody may go on
    await ready.drop_toggles([toggles[-1]])
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert sorted(woke) == list(range(200)) and ready.is_on()
    # two state changes (off with the first toggle, on with the last): two notifications,
    # where unpatched every one of the 1,002 adds and drops notified every waiter
    assert cond.notified == 2


async def test_a_single_toggles_waiters_still_wake_when_it_turns() -> None:
    quiet_toggle_sets()
    paused, _ = counting_set()
    toggle = await paused.make_toggle(False, name="peering")
    other = await paused.make_toggle(False, name="other")
    waiter = asyncio.create_task(toggle.wait_for(True))
    await asyncio.sleep(0)
    await paused.drop_toggle(other)  # the set's state is unchanged: toggle's waiter keeps waiting
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await toggle.turn_to(True)
    await asyncio.wait_for(waiter, 5)
    assert paused.is_on()
    # the set, any() of its toggles, flips with an add as before
    anyset = aiotoggles.ToggleSet(any)
    seen = asyncio.create_task(anyset.wait_for(True))
    await asyncio.sleep(0)
    await anyset.make_toggle(True, name="on")
    await asyncio.wait_for(seen, 5)
