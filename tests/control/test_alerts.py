"""Alerts: for-duration, hysteresis, built-in and user rules, anomalies, leak prediction."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.control.alerts import (
    MEMORY_HORIZON_S,
    MEMORY_RULE,
    AlertState,
    Track,
    decide_alerts,
    memory_eta,
    step,
)
from gencluster.control.window import ClusterPoint

from .helpers import pod_view, spec, view

ONLY_RULES = {"anomalyDetection": False, "predictiveMemory": False}


def run(s, values, dt=15.0, metric="mem"):
    """Feed one value per interval; return (time, name, state) transitions."""
    state, out = AlertState(), []
    for i, x in enumerate(values):
        t = dt * i
        p = pod_view(mem=x) if metric == "mem" else pod_view()
        v = view([p], now=t, error_rate=x if metric == "err" else None)
        d, state = decide_alerts(s, v, state, t)
        out += [(t, tr.name, tr.state) for tr in d.transitions]
    return out, d


def test_fires_after_for_duration_and_resolves_with_hysteresis():
    s = spec(alerts=ONLY_RULES)
    # 90 % for 2 minutes, then 84 % (inside the 85 - 4.25 margin), then 70 %
    values = [90.0] * 8 + [84.0] * 8 + [70.0] * 8
    out, _ = run(s, values)
    high = [(t, state) for t, name, state in out if name == "gpu-memory-high"]
    assert high == [(60.0, "firing"), (240.0 + 60.0, "resolved")]


def test_critical_rule_and_severity():
    out, d = run(spec(alerts=ONLY_RULES), [97.0] * 4)
    assert (30.0, "gpu-memory-critical", "firing") in out
    assert {a.name: a.severity for a in d.active}["gpu-memory-critical"] == "critical"


def test_flapping_value_never_fires():
    out, _ = run(spec(alerts=ONLY_RULES), [90.0, 80.0] * 20)
    assert out == []


def test_user_rules_replace_and_extend_builtins():
    s = spec(alerts={**ONLY_RULES, "builtinRules": False, "rules": [
        {"name": "errors", "metric": "errorRatePermille", "comparison": "ge", "threshold": 50,
         "forSeconds": 0, "severity": "critical"}]})
    out, d = run(s, [10.0, 60.0, 60.0], metric="err")
    assert out == [(15.0, "errors", "firing")]
    assert d.active[0].value == 60.0 and d.active[0].threshold == 50.0


def test_removed_rule_resolves():
    s1 = spec(alerts={**ONLY_RULES, "builtinRules": False, "rules": [
        {"name": "errors", "metric": "errorRatePermille", "comparison": "gt", "threshold": 1,
         "forSeconds": 0}]})
    d, st1 = decide_alerts(s1, view([pod_view()], error_rate=5.0), AlertState(), 0.0)
    assert d.transitions[0].state == "firing"
    d, _ = decide_alerts(spec(alerts={**ONLY_RULES, "builtinRules": False}),
                         view([pod_view()], error_rate=5.0), st1, 15.0)
    assert [(t.name, t.state) for t in d.transitions] == [("errors", "resolved")]


def test_no_data_changes_nothing():
    firing = Track(firing_since=0.0)
    new, what = step(firing, None, None, 100.0, 60.0, 60.0)
    assert what is None and new.firing_since == 0.0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.booleans()), max_size=60), st.floats(0, 120))
def test_transitions_alternate(seq, for_s):
    track, last = Track(), "resolved"
    for i, bad in enumerate(seq):
        track, what = step(track, bad, None if bad is None else not bad, 15.0 * i, for_s, 60.0)
        if what is not None:
            assert what != last
            last = what


def history(values, dt=15.0):
    return tuple(ClusterPoint(dt * i, v, None, None, None, None, None) for i, v in enumerate(values))


def test_a_latency_and_load_spike_alone_fires_no_anomaly():
    """The anomaly detectors watch load-independent signals: a p95 and request-rate spike from
    more load (no errors, batches as fast as usual, nothing stuck) is not an anomaly."""
    s = spec(alerts={"builtinRules": False, "predictiveMemory": False})
    base = [1000.0 + (i % 5) * 20 for i in range(40)]
    state, fired = AlertState(), []
    seq = [1000.0] * 3 + [4000.0] * 4 + [1000.0] * 8
    for i, x in enumerate(seq):
        t = 15.0 * (40 + i)
        h = history(base + seq[: i + 1])
        d, state = decide_alerts(s, view([pod_view(rps=40.0 if x < 2000 else 160.0)], now=t,
                                         p95_ms=x, rps=40.0 if x < 2000 else 160.0, history=h),
                                 state, t)
        fired += [(tr.name, tr.state) for tr in d.transitions]
    assert fired == []


def leak_floor(now, slope_per_s, start=50.0, span=900.0, step_s=30.0):
    n = int(span / step_s)
    return tuple((now - span + step_s * i, start + slope_per_s * step_s * i) for i in range(n))


def test_memory_eta_on_a_leak_and_none_on_noise():
    floor = leak_floor(1800.0, 0.5 / 60.0)  # 0.5 % a minute from 50 %
    eta = memory_eta(floor, 1800.0)
    assert eta is not None and abs(eta - 4500.0) < 1.0  # 57.5 % now, 0.5 %/min to 95 %
    noisy = tuple((t, 50.0 + (10.0 if i % 2 else -10.0)) for i, (t, _) in enumerate(floor))
    assert memory_eta(noisy, 1800.0) is None


def test_predictive_memory_alert_leads_exhaustion():
    s = spec(alerts={"builtinRules": False, "anomalyDetection": False})
    slope = 0.5 / 60.0
    state, fired_at = AlertState(), None
    for k in range(0, 400):
        now = 900.0 + 15.0 * k
        level = 50.0 + slope * now
        if level >= 95.0:
            exhausted_at = now
            break
        floor = tuple((t, 50.0 + slope * t) for t in range(int(now) - 900, int(now), 30))
        d, state = decide_alerts(s, view([pod_view(mem=level, floor=floor)], now=now), state, now)
        if any(tr.name == MEMORY_RULE and tr.state == "firing" for tr in d.transitions):
            fired_at = fired_at or now
    assert fired_at is not None and exhausted_at - fired_at >= MEMORY_HORIZON_S


def test_a_firing_alerts_message_is_true_of_its_latest_reading():
    from gencluster.control.alerts import rule_message
    assert rule_message("errorRatePermille", 12.0, "gt", 10, True) == "errorRatePermille 12 > 10"
    assert rule_message("errorRatePermille", 9.66, "gt", 10, False) == \
        "errorRatePermille 9.66 (fires at > 10)"
