"""Events policy: dedupe identical events, token bucket per object, Warnings never starved."""

from __future__ import annotations

from gencluster.control.events import BURST, REFILL_SECONDS, EventIntent, EventState, admit


def normal(i: int) -> EventIntent:
    return EventIntent("Normal", "ScaledUp", f"{i} -> {i + 1}")


def test_identical_events_are_posted_once_within_the_window():
    e = EventIntent("Warning", "AlertFiring", "gpu-memory-high")
    out, st = admit([e], EventState(), 0.0)
    assert out == (e,)
    out, st = admit([e], st, 60.0)
    assert out == () and st.suppressed == 1
    out, _ = admit([e], st, 700.0)
    assert out == (e,)


def test_burst_then_refill():
    st = EventState()
    posted = 0
    for i in range(40):
        out, st = admit([EventIntent("Warning", "AlertFiring", f"rule {i}")], st, 0.0)
        posted += len(out)
    assert posted == BURST
    out, st = admit([EventIntent("Warning", "AlertFiring", "late")], st, REFILL_SECONDS / 2)
    assert out == ()
    out, st = admit([EventIntent("Warning", "AlertFiring", "later")], st, REFILL_SECONDS + 1)
    assert len(out) == 1


def test_normal_events_cannot_starve_warnings():
    st = EventState()
    for i in range(100):
        _, st = admit([normal(i)], st, 0.0)
    out, _ = admit([EventIntent("Warning", "AlertFiring", "x")] + [normal(1000 + i)
                                                                  for i in range(5)], st, 0.0)
    assert [e.type for e in out] == ["Warning"]
