"""An event flood: 1,000 alert flips in a row stay within the event policy's budget per object.

The loop's Events all pass through one policy (control/events.admit: dedupe + token bucket), so a
flapping metric can never flood `kubectl describe` or the apiserver, and Warnings keep a reserve
that chatty Normal events cannot use.
"""
from __future__ import annotations

from control.helpers import pod_view, spec, view

from gencluster.control.cycle import ControlState, decide
from gencluster.control.events import BURST, REFILL_SECONDS

SPEC = spec(replicas={"min": 1, "max": 1}, autoscaling={"intervalSeconds": 1},
            alerts={"anomalyDetection": False, "builtinRules": False,
                    "rules": [{"name": "flappy", "metric": "queueDepth", "comparison": "gt",
                               "threshold": 5, "forSeconds": 0, "severity": "warning"}]})


def test_a_thousand_flips_post_a_bounded_number_of_events() -> None:
    state, posted, flips = ControlState(), [], 0
    t, i = 10_000.0, 0
    while flips < 1000:
        # Above the threshold for one tick (fires: forSeconds 0), then clear for 90 s (resolves
        # after the 60 s resolve delay); a different value each time, so dedupe alone cannot
        # absorb the messages.
        for queue in (100.0 + i, 0.0, 0.0, 0.0):
            d, state = decide(SPEC, view([pod_view(queue=queue)]), 1, state, t)
            flips += len(d.alerts.transitions)
            posted += list(d.events)
            t += 30.0
        i += 1
    duration = t - 10_000.0
    budget = BURST + duration / REFILL_SECONDS + 1
    alert_events = [e for e in posted if e.reason in ("AlertFiring", "AlertResolved")]
    assert len(posted) <= budget, f"{len(posted)} events posted for {flips} flips (budget {budget:.0f})"
    assert len(alert_events) < flips / 2, "the policy let most flips through"
    assert alert_events[0].reason == "AlertFiring" and "flappy" in alert_events[0].message
    assert state.events.suppressed >= flips - len(posted)
