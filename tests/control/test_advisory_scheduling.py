"""Advisory mode and the unschedulable-pods hold, through the pure core (control/cycle.decide)."""

from __future__ import annotations

from gencluster.api.status import GenerationClusterStatus
from gencluster.control.cycle import ControlState, decide
from gencluster.control.replicas import ReplicaDecision
from gencluster.control.scheduling import HELD, RESUMED, hold_scale_up, summary

from .helpers import pod_view, spec, view

AUTO = spec(replicas={"min": 1, "max": 10}, alerts={"anomalyDetection": False})
ADVISORY = spec(replicas={"min": 1, "max": 10}, alerts={"anomalyDetection": False},
                autoscaling={"mode": "advisory"})
MSG = "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."


def loaded(n: int = 2, **kw: object):  # type: ignore[no-untyped-def]
    """Deep queues and full, fast batches: auto mode would add pods and grow the batches."""
    return view([pod_view(f"p{i}", uid=f"u{i}", queue=40, p95_last_ms=100, completed_last=50,
                          fill=4, **kw) for i in range(n)], p95_ms=300, rps=20.0)  # type: ignore[arg-type]


def test_advisory_decides_what_auto_would_do_and_changes_nothing():
    auto, _ = decide(AUTO, loaded(), 2, ControlState(), 1000.0)
    adv, state = decide(ADVISORY, loaded(), 2, ControlState(), 1000.0)
    assert auto.replicas.desired > 2 and auto.batches.pushes
    # nothing happens: same count, no pushes, nothing persisted, no ScaledUp
    assert adv.replicas.desired == 2 and adv.batches.pushes == ()
    assert not adv.batches.default_changed and adv.batches.changes == ()
    assert "ScaledUp" not in [e.reason for e in adv.events] and "lastScale" not in adv.status
    assert adv.status["desiredReplicas"] == 2
    # ... but it says what it would do, with the same numbers auto did
    rec = GenerationClusterStatus.model_validate(adv.status).recommendation
    assert rec is not None and rec.replicas == auto.replicas.desired and rec.current_replicas == 2
    assert rec.reason.startswith("queueDepthPerReplica")
    assert {p.pod: p.batch_size for p in rec.pod_batch_sizes} == dict(auto.batches.sizes)
    reasons = [e.reason for e in adv.events]
    assert "WouldScaleUp" in reasons and "WouldChangeBatchSize" in reasons
    would = next(e for e in adv.events if e.reason == "WouldScaleUp")
    assert would.message.startswith(f"advisory: would scale 2 -> {auto.replicas.desired}")
    # the state did not record a scale that did not happen (rate limits stay as they were)
    assert state.replicas.scales == () and state.batches.sizes == {}

    # The same recommendation next tick: no new Events, the same status (no rewrite per tick).
    adv2, state2 = decide(ADVISORY, loaded(), 2, state, 1005.0)
    assert [e.reason for e in adv2.events if e.reason.startswith("Would")] == []
    assert adv2.status["recommendation"] == adv.status["recommendation"]
    # Load gone, scale-down window not over yet: the recommendation changes to "hold"
    calm = view([pod_view(f"p{i}", uid=f"u{i}", queue=8) for i in range(2)], rps=5.0)
    adv3, _ = decide(ADVISORY, calm, 2, state2, 1010.0)
    assert adv3.status["recommendation"]["replicas"] == 2
    assert adv3.status["recommendation"]["time"] != adv.status["recommendation"]["time"]


def test_auto_mode_writes_no_recommendation():
    d, _ = decide(AUTO, loaded(), 2, ControlState(), 1000.0)
    assert "recommendation" not in d.status
    assert not [e for e in d.events if e.reason.startswith("Would")]


def test_advisory_scale_down_is_announced_once():
    idle = view([pod_view(f"p{i}", uid=f"u{i}", queue=0) for i in range(6)], rps=1.0)
    s = spec(replicas={"min": 1, "max": 10}, alerts={"anomalyDetection": False},
             autoscaling={"mode": "advisory", "scaleDown": {"stabilizationSeconds": 0}})
    state = ControlState()
    seen = []
    for t in (1000.0, 1005.0, 1010.0):
        d, state = decide(s, idle, 6, state, t)
        seen += [e.reason for e in d.events]
        assert d.replicas.desired == 6
    assert seen.count("WouldScaleDown") == 1
    assert d.status["recommendation"]["replicas"] < 6


def test_hold_scale_up_only_removes_growth():
    up = ReplicaDecision(3, 6, "queue", ())
    down = ReplicaDecision(3, 2, "idle", ())
    assert hold_scale_up(up, {}).decision == up
    h = hold_scale_up(up, {"p4": MSG, "p3": "other"})
    assert h.clamped and h.decision.desired == 3 and "held" in h.decision.reason
    assert h.summary == "2 pods cannot be scheduled (p3: other)"
    h = hold_scale_up(down, {"p4": MSG})
    assert h.held and not h.clamped and h.decision == down
    assert summary({"p1": MSG}) == f"1 pod cannot be scheduled (p1: {MSG})"


def test_unschedulable_pods_hold_the_scale_up_report_it_and_resume():
    state = ControlState()
    d, state = decide(AUTO, loaded(), 3, state, 1000.0, unschedulable={"p2": MSG})
    assert d.replicas.desired == 3 and "scale-up to" in d.replicas.reason
    held = [e for e in d.events if e.reason == HELD]
    assert held and held[0].type == "Warning" and MSG in held[0].message
    assert "ScaledUp" not in [e.reason for e in d.events]
    assert state.replicas.scales == ()  # the held scale-up was not recorded as a change
    # still pending: no repeat of the Event, still no growth
    d, state = decide(AUTO, loaded(), 3, state, 1005.0, unschedulable={"p2": MSG})
    assert d.replicas.desired == 3 and not [e for e in d.events if e.reason == HELD]
    # scheduled: resume, and scale up at once
    d, state = decide(AUTO, loaded(), 3, state, 1010.0)
    reasons = [e.reason for e in d.events]
    assert RESUMED in reasons and "ScaledUp" in reasons and d.replicas.desired > 3
