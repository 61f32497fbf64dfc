"""Custom metrics: selectors, quantities, parsing the named series, values through the window,
replica proposals, rules and the CustomMetricsAvailable condition; spec validation."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gencluster.api.spec import custom_series
from gencluster.control import custom
from gencluster.control.alerts import AlertState, decide_alerts
from gencluster.control.cycle import CUSTOM_METRICS_AVAILABLE, ControlState, decide
from gencluster.control.replicas import ReplicaState, decide_replicas
from gencluster.control.window import Window, WindowConfig
from gencluster.metrics_source.parse import parse_fast, parse_reference

from .helpers import ref, spec


def test_selectors_parse_and_match_like_promql() -> None:
    s = custom.parse_selector('app_jobs{queue="gpu", stage!~"warm.*",zone=~"eu|us"}')
    assert s.name == "app_jobs" and [m.op for m in s.matchers] == ["=", "!~", "=~"]
    assert s.matches((("queue", "gpu"), ("stage", "run"), ("zone", "eu")))
    assert not s.matches((("queue", "gpu"), ("stage", "warmup"), ("zone", "eu")))
    assert not s.matches((("queue", "gpu"), ("stage", "run"), ("zone", "eur")))  # anchored
    assert not s.matches((("stage", "run"), ("zone", "eu")))  # absent label is ""
    assert custom.parse_selector('x{a!=""}').matches((("a", "1"),))
    assert custom.parse_selector('x{a=~"a\\\\.b"}').matches((("a", "a.b"),))
    for bad in ("", "1abc", "a{b=c}", 'a{b="c"', 'a{="c"}', 'a{b=~"("}', "a b"):
        with pytest.raises(ValueError):
            custom.parse_selector(bad)


def test_quantities() -> None:
    assert [custom.quantity(x) for x in ("500m", "2", "0.25", "1e3", "4Ki", ".5", 7)] == [
        0.5, 2.0, 0.25, 1000.0, 4096.0, 0.5, 7.0]
    for bad in ("", "abc", "1.2.3", "5 m"):
        with pytest.raises(ValueError):
            custom.quantity(bad)


EXPOSITION = """# TYPE app_jobs gauge
app_jobs{{queue="gpu"}} {jobs}
app_jobs{{queue="cpu"}} 100
# TYPE app_done_total counter
app_done_total{{kind="a"}} {done}
app_done_total{{kind="b"}} {done}
app_done_created{{kind="a"}} 1.7e9
# TYPE app_wait_seconds histogram
app_wait_seconds_bucket{{le="0.1"}} {w1}
app_wait_seconds_bucket{{le="1.0"}} {w2}
app_wait_seconds_bucket{{le="+Inf"}} {w2}
app_wait_seconds_count {w2}
app_wait_seconds_sum {wsum}
other_series{{x="1"}} 5
gencluster_queue_depth 3
"""
KEEP = custom.base_names(['app_jobs{queue="gpu"}', "app_done_total", "app_wait_seconds"])


def text(t: float, rate: float = 2.0) -> str:
    n = int(rate * t)
    return EXPOSITION.format(jobs=7, done=n, w1=n // 2, w2=n, wsum=0.3 * n)


def test_fast_parser_keeps_exactly_the_named_series_like_the_reference() -> None:
    fast = parse_fast(text(100.0), 100.0, "p", "u", KEEP)
    ref_ = parse_reference(text(100.0), 100.0, "p", "u", KEEP)
    assert fast == ref_
    names = {k[0] for k in (*fast.counters, *fast.gauges, *fast.histograms)}
    assert names == {"app_jobs", "app_done_total", "app_wait_seconds", "gencluster_queue_depth"}
    assert not any(k[0] == "app_jobs" for k in parse_fast(text(100.0), 100.0, "p", "u").gauges)


def run_window(metric: str, aggregation: str, rates: list[float],
               steps: int = 12) -> custom.CustomValue:
    w = Window(WindowConfig.for_interval(5.0))
    pods = [ref(f"p{i}", f"u{i}") for i in range(len(rates))]
    keep = custom.base_names([metric])
    v = None
    for k in range(steps):
        t = 5.0 * (k + 1)
        samples = [parse_fast(text(t, r), t, f"p{i}", f"u{i}", keep) for i, r in enumerate(rates)]
        v = w.update(t, samples, pods, [(metric, aggregation)])
    assert v is not None
    return v.custom[custom.key(metric, aggregation)]


def test_gauge_counter_and_histogram_values_through_the_window() -> None:
    g = run_window('app_jobs{queue="gpu"}', "sum", [1.0, 2.0])
    assert g.kind == "gauge" and g.value == 14.0  # 7 per pod, the cpu series excluded
    c = run_window("app_done_total", "avg", [2.0, 4.0])
    assert c.kind == "counter" and c.value == pytest.approx(6.0, rel=0.05)  # 2 series x rate
    assert c.per_pod["p1"] == pytest.approx(8.0, rel=0.05)
    h = run_window("app_wait_seconds", "p90", [2.0, 2.0])
    assert h.kind == "histogram" and 0.1 < (h.value or 0.0) <= 1.0
    mean = run_window("app_wait_seconds", "max", [2.0])
    assert mean.value == pytest.approx(0.3, rel=0.05)
    absent = run_window("nothing_here", "avg", [1.0], steps=2)
    assert absent.kind == "absent" and absent.value is None and not absent.seen


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.0, 1e6, allow_nan=False), min_size=1, max_size=20),
       st.sampled_from(["avg", "max", "min", "sum"]))
def test_aggregate_is_within_bounds(values: list[float], aggregation: str) -> None:
    v = custom.aggregate(values, aggregation)
    assert v is not None
    if aggregation == "sum":
        assert math.isclose(v, sum(values), rel_tol=1e-9, abs_tol=1e-6)
    else:
        assert min(values) - 1e-6 <= v <= max(values) + 1e-6


def custom_spec(**alerts: object) -> object:
    return spec(replicas={"min": 1, "max": 20},
                autoscaling={"targets": {"custom": [
                    {"metric": "app_done_total", "aggregation": "avg", "target": "500m"}]}},
                alerts={"builtinRules": False, "anomalyDetection": False,
                        "predictiveMemory": False, **alerts})


def test_a_custom_counter_target_scales_up() -> None:
    s = custom_spec()
    w = Window(WindowConfig.for_interval(5.0))
    pods = [ref("p0", "u0"), ref("p1", "u1")]
    keep = custom.base_names([m for m, _ in custom_series(s)])  # type: ignore[arg-type]
    for k in range(8):
        t = 5.0 * (k + 1)
        view = w.update(t, [parse_fast(text(t, 1.0), t, p.name, p.uid, keep) for p in pods],
                        pods, custom_series(s))  # type: ignore[arg-type]
    d, _ = decide_replicas(s, view, 2, ReplicaState(), 40.0)  # type: ignore[arg-type]
    # 2 req/s per pod (two series at 1/s) against 0.5: 4x the pods, then scaleUp's 4-pod limit
    prop = next(p for p in d.proposals if p.metric == "avg(app_done_total)")
    assert prop.replicas == 8 and prop.value == pytest.approx(2.0, rel=0.05)
    assert d.desired == 6 and "app_done_total" in d.reason


def test_a_rule_on_a_custom_series_fires_and_a_missing_series_is_a_condition() -> None:
    s = custom_spec(rules=[
        {"name": "waits", "metric": "app_wait_seconds", "aggregation": "p90", "comparison": "gt",
         "threshold": "100m", "forSeconds": 0},
        {"name": "typo", "metric": "app_jbos", "comparison": "gt", "threshold": 1}])
    w = Window(WindowConfig.for_interval(5.0))
    pods = [ref("p0", "u0")]
    pairs = custom_series(s)  # type: ignore[arg-type]
    keep = custom.base_names([m for m, _ in pairs])
    state, astate, fired = ControlState(), AlertState(), []
    for k in range(6):
        t = 5.0 * (k + 1)
        view = w.update(t, [parse_fast(text(t), t, "p0", "u0", keep)], pods, pairs)
        d, astate = decide_alerts(s, view, astate, t)  # type: ignore[arg-type]
        fired += [(tr.name, tr.state) for tr in d.transitions]
        decisions, state = decide(s, view, 1, state, t)  # type: ignore[arg-type]
    assert ("waits", "firing") in fired and ("typo", "firing") not in fired
    cond = next(c for c in decisions.status["conditions"] if c["type"] == CUSTOM_METRICS_AVAILABLE)
    assert cond["status"] == "False" and cond["reason"] == "SeriesMissing"
    assert "app_jbos" in cond["message"] and "app_wait_seconds" not in cond["message"]


def test_no_custom_metrics_no_condition() -> None:
    w = Window(WindowConfig.for_interval(5.0))
    view = w.update(5.0, [], [ref()])
    decisions, _ = decide(spec(), view, 1, ControlState(), 5.0)
    assert all(c["type"] != CUSTOM_METRICS_AVAILABLE for c in decisions.status["conditions"])


@pytest.mark.parametrize("bad", [
    {"autoscaling": {"targets": {"custom": [{"metric": "a{b=c}", "target": 1}]}}},
    {"autoscaling": {"targets": {"custom": [{"metric": 'a{b=~"("}', "target": 1}]}}},
    {"autoscaling": {"targets": {"custom": [{"metric": "a", "target": "0"}]}}},
    {"autoscaling": {"targets": {"custom": [{"metric": "a", "target": "fast"}]}}},
    {"alerts": {"rules": [{"name": "x", "metric": "latencyP95Ms", "aggregation": "p95",
                           "comparison": "gt", "threshold": 1}]}},
    {"alerts": {"rules": [{"name": "x", "metric": "a", "comparison": "gt",
                           "threshold": "1.2.3"}]}},
])
def test_invalid_custom_specs_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        spec(**bad)


def test_builtin_rules_still_take_integers() -> None:
    s = spec(alerts={"rules": [{"name": "x", "metric": "queueDepth", "comparison": "gt",
                                "threshold": 5}]})
    assert custom_series(s) == []
