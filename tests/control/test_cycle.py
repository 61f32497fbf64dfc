"""One interval end to end through the pure core: status shape, events, conditions."""

from __future__ import annotations

from gencluster.api.status import GenerationClusterStatus
from gencluster.control.cycle import ControlState, decide

from .helpers import pod_view, spec, view

S = spec(replicas={"min": 1, "max": 10}, alerts={"anomalyDetection": False})


def test_status_fits_the_status_model_and_events_name_the_change():
    v = view([pod_view(f"p{i}", uid=f"u{i}", queue=40, mem=97) for i in range(2)], p95_ms=900,
             rps=20.0, error_rate=0.0)
    state = ControlState()
    d, state = decide(S, v, 2, state, 1000.0, generation=3)
    assert d.replicas.desired > 2
    status = GenerationClusterStatus.model_validate(d.status)
    assert status.desired_replicas == d.replicas.desired and status.metrics is not None
    assert status.metrics.gpu_memory_percent == 97 and status.metrics.pods_reporting == 2
    assert status.last_scale is not None and status.last_scale.from_ == 2
    assert {c.type for c in status.conditions} == {"Alerting", "MetricsAvailable"}
    assert [e.reason for e in d.events] == ["ScaledUp"]
    # 30 s later the critical memory rule has held long enough
    d, state = decide(S, v, d.replicas.desired, state, 1030.0, generation=3)
    firing = [e for e in d.events if e.reason == "AlertFiring"]
    assert firing and firing[0].type == "Warning" and "gpu-memory-critical" in firing[0].message
    assert "threshold 95" in firing[0].message
    alerting = next(c for c in d.status["conditions"] if c["type"] == "Alerting")
    assert alerting["status"] == "True" and d.status["alertCount"] >= 1


def test_condition_transition_time_is_kept_while_status_is_unchanged():
    v = view([pod_view()])
    d1, st1 = decide(S, v, 1, ControlState(), 1000.0)
    d2, _ = decide(S, v, 1, st1, 2000.0)
    t1 = {c["type"]: c["lastTransitionTime"] for c in d1.status["conditions"]}
    t2 = {c["type"]: c["lastTransitionTime"] for c in d2.status["conditions"]}
    assert t1 == t2


def test_metrics_missing_for_long_sets_the_condition():
    v = view([pod_view(fresh=False)])
    state = ControlState()
    for t in (0.0, 30.0, 61.0):
        d, state = decide(S, v, 1, state, t)
    cond = next(c for c in d.status["conditions"] if c["type"] == "MetricsAvailable")
    assert cond["status"] == "False" and cond["reason"] == "MetricsMissing"
    assert d.replicas.desired == 1


def test_autoscaling_disabled_observes_but_does_not_act():
    s = spec(autoscaling={"enabled": False})
    v = view([pod_view(queue=500, p95_last_ms=100, completed_last=50, fill=4)])
    d, _ = decide(s, v, 1, ControlState(), 0.0)
    assert d.replicas.desired == 1 and d.batches.pushes == () and d.status["metrics"]


def test_resumed_state_reads_the_loops_conditions_and_last_scale_and_skips_the_unreadable() -> None:
    from gencluster.control.batching import BatchState
    from gencluster.control.cycle import LastScale, resumed_state

    status = {"conditions": [
        {"type": "Alerting", "status": "False", "reason": "NoAlerts", "message": "none",
         "lastTransitionTime": "2026-03-01T10:00:00Z"},
        {"type": "MetricsAvailable", "status": "True", "reason": "PodsReporting",
         "lastTransitionTime": "not a time"},  # unreadable: left out, starts afresh
        {"type": "Ready", "status": "True", "reason": "Ready",  # the reconcile's: not the loop's
         "lastTransitionTime": "2026-03-01T10:00:00Z"},
        {"type": "CustomMetricsAvailable", "status": "Maybe",  # no such status
         "lastTransitionTime": "2026-03-01T10:00:00Z"},
        "garbage"],
        "lastScale": {"time": "2026-03-01T09:00:00Z", "from": "3", "to": 5, "reason": "load"}}
    state = resumed_state(status, BatchState(default=8))
    assert [(c.type, c.status, c.since) for c in state.conditions] == [
        ("Alerting", "False", 1772359200.0)]
    assert state.last_scale == LastScale(1772355600.0, 3, 5, "load")
    assert state.batches.default == 8
    for bad in ({"time": "2026-03-01T09:00:00Z", "from": "x", "to": 5}, {"from": 1, "to": 2},
                "text", None):
        assert resumed_state({"lastScale": bad}, BatchState()).last_scale is None
    assert resumed_state({}, BatchState()).conditions == ()
