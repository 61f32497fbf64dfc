"""The operator's decisions as Prometheus series: what a tick sets, bounded per cluster, gone
with the cluster."""

from __future__ import annotations

from control.helpers import sample, spec
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gencluster.control.cycle import ControlState, decide
from gencluster.control.samples import PodRef
from gencluster.control.window import Window
from gencluster.edge.metrics import MAX_PODS_LABELLED, REGISTRY, forget_cluster, observe_tick

SPEC = spec(replicas={"min": 1, "max": 200}, autoscaling={"intervalSeconds": 1})


def series(namespace: str) -> list[tuple[str, dict[str, str], float]]:
    text = generate_latest(REGISTRY).decode()
    return [(s.name, s.labels, s.value) for f in text_string_to_metric_families(text)
            for s in f.samples if s.labels.get("namespace") == namespace]


def tick(window: Window, state: ControlState, t: float, pods: int, uid: str, current: int):  # type: ignore[no-untyped-def]
    refs = [PodRef(f"gc-workload-{uid}-{k}", f"{uid}{k}") for k in range(pods)]
    view = window.update(t, [sample(t, r.name, r.uid, latencies=[0.3] * int(t), queue=9.0)
                             for r in refs], refs)
    return decide(SPEC, view, current, state, t)


def test_a_tick_sets_every_series_and_churn_stays_bounded() -> None:
    w, state = Window(), ControlState()
    for i in range(6):  # pods replaced every tick, 150 of them: batch series stay capped
        decisions, state = tick(w, state, 1000.0 + i, 150, f"r{i}", 150)
        observe_tick("metrics-test", "gc", decisions, ready=150, scrape_errors=i % 2,
                     pods_reporting=150, seconds=0.02, finished=1000.0 + i, interval=1.0)
    got = series("metrics-test")
    names = {n for n, _, _ in got}
    assert {"gencluster_operator_desired_replicas", "gencluster_operator_current_replicas",
            "gencluster_operator_ready_replicas", "gencluster_operator_batch_size",
            "gencluster_operator_target_value", "gencluster_operator_target_ratio",
            "gencluster_operator_target", "gencluster_operator_alerts_firing",
            "gencluster_operator_decisions_total", "gencluster_operator_scrape_errors_total",
            "gencluster_operator_loop_duration_seconds",
            "gencluster_operator_loop_last_tick_timestamp_seconds"} <= names
    batch = [lab["pod"] for n, lab, _ in got if n == "gencluster_operator_batch_size"]
    assert len(batch) == MAX_PODS_LABELLED + 1 and all(p.startswith("gc-workload-r5") for p in batch if p)
    ratio = {lab["target"]: v for n, lab, v in got if n == "gencluster_operator_target_ratio"}
    assert abs(ratio["queueDepthPerReplica"] - 9.0 / SPEC.autoscaling.targets.queue_depth_per_replica) < 1e-9
    errors = [v for n, lab, v in got if n == "gencluster_operator_scrape_errors_total"]
    assert errors == [3.0]
    decided = sum(v for n, _, v in got if n == "gencluster_operator_decisions_total")
    assert decided == 6.0
    assert len(got) < 200  # one cluster with 150 pods: bounded
    forget_cluster("metrics-test", "gc")
    assert series("metrics-test") == []


def test_no_decision_sets_only_the_loop_series() -> None:
    observe_tick("metrics-idle", "gc", None, ready=0, scrape_errors=0, pods_reporting=0,
                 seconds=0.001, finished=5.0, interval=5.0)
    names = {n for n, _, _ in series("metrics-idle")}
    assert "gencluster_operator_desired_replicas" not in names
    assert "gencluster_operator_loop_last_tick_timestamp_seconds" in names
    forget_cluster("metrics-idle", "gc")
    assert series("metrics-idle") == []
