"""Faults in the simulator, the alerts list of `simulate --json`, and the labelled incident corpus
(its labels, its definitions of detected / true / lead)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.simulate import incidents as inc
from gencluster.simulate.cli import load_spec, main
from gencluster.simulate.model import ModelParams, PodServer, Recorder, SimPod
from gencluster.simulate.run import alert_list
from gencluster.simulate.traces import Incident, Trace, incidents, load, write_trace


def trace(n: int, **cols: list[float] | list[int]) -> Trace:
    return Trace("t", tuple([10] * n), tuple(cols.get("leak", [0.0] * n)),  # type: ignore[arg-type]
                 tuple(cols.get("slowdown", ())), tuple(cols.get("errors", ())),  # type: ignore[arg-type]
                 tuple(cols.get("stuck", ())))  # type: ignore[arg-type]


def test_incidents_follow_the_issue_definition() -> None:
    t = trace(12, slowdown=[1.0, 1.2, 1.3, 1.3, 1.0, 1, 1, 1, 1, 1, 1, 1],
              errors=[0, 0, 0, 0, 0, 1.0, 1.5, 0, 0, 0, 0, 0],
              stuck=[0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1])
    assert incidents(t) == [Incident("slowdown", 2, 4), Incident("errors", 6, 7),
                            Incident("stuck", 8, 9), Incident("stuck", 11, 12)]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0.0, 0.5]), st.sampled_from([1.0, 1.1, 2.0]),
                          st.sampled_from([0.0, 1.0, 5.0]), st.sampled_from([0, 1])),
                min_size=1, max_size=80))
def test_incidents_are_disjoint_maximal_runs_of_active_seconds(rows) -> None:  # type: ignore[no-untyped-def]
    t = Trace("t", tuple([1] * len(rows)), tuple(r[0] for r in rows),
              tuple(r[1] for r in rows), tuple(r[2] for r in rows), tuple(r[3] for r in rows))
    incs = incidents(t)
    covered = {s for i in incs for s in range(i.start, i.end)}
    assert covered == {s for s in range(len(t)) if t.active(s)}
    for a, b in itertools.pairwise(incs):
        assert a.end < b.start  # a gap of at least one healthy second between incidents
    for i in incs:
        kinds = {k for s in range(i.start, i.end) for k in t.active(s)}
        assert set(i.kind.split("+")) == kinds


def test_trace_csv_round_trip_with_fault_columns(tmp_path: Path) -> None:
    t = Trace("x", (5, 6, 7), (0.0, 0.5, 0.0), (1.0, 2.5, 1.0), (0.0, 0.0, 10.0), (0, 1, 0))
    path = write_trace(t, tmp_path / "x.csv")
    assert path.read_text().splitlines()[0] == \
        "second,requests,leak_percent_per_min,slowdown,error_percent,stuck_pods"
    assert load(str(path)) == t
    (tmp_path / "bad.csv").write_text("second,requests,slowdown\n0,1,-2\n")
    with pytest.raises(ValueError):
        load(str(tmp_path / "bad.csv"))
    (tmp_path / "unknown.csv").write_text("second,requests,colour\n0,1,red\n")
    with pytest.raises(ValueError, match="unknown columns"):
        load(str(tmp_path / "unknown.csv"))
    (tmp_path / "old.csv").write_text("second,requests\n0,3\n1,4\n")
    old = load(str(tmp_path / "old.csv"))
    assert old.slow(1) == 1.0 and old.errors(1) == 0.0 and old.stuck(1) == 0 and not incidents(old)


def serve(pod: SimPod, server: PodServer, seconds: int, rate: int) -> None:
    """`seconds` more seconds of `rate` arrivals a second, after what the pod has served."""
    start = int(getattr(pod, "_test_clock", 0))
    for s in range(start, start + seconds):
        server.tick(pod, float(s), [s + (k + 0.5) / rate for k in range(rate)], 0.0)
    pod._test_clock = start + seconds  # type: ignore[attr-defined]


def test_model_faults() -> None:
    p = ModelParams()
    rec = Recorder()
    server = PodServer(p, 256, rec, seed=1)
    pod = SimPod("a", "u", 0.0, 0.0, 4)
    serve(pod, server, 30, 4)
    normal = pod.batch_secs_sum / sum(pod.batch_secs)
    server.slowdown = 2.0
    before_s, before_n = pod.batch_secs_sum, sum(pod.batch_secs)
    serve(pod, server, 30, 4)
    slow = (pod.batch_secs_sum - before_s) / (sum(pod.batch_secs) - before_n)
    assert slow == pytest.approx(2.0 * normal, rel=0.2)
    server.slowdown, server.error_fraction = 1.0, 0.5
    ok0, err0 = pod.codes.get("200", 0), pod.codes.get("500", 0)
    serve(pod, server, 60, 4)
    ok, err = pod.codes.get("200", 0) - ok0, pod.codes.get("500", 0) - err0
    assert 0.35 < err / (ok + err) < 0.65
    server.error_fraction = 0.0
    pod.stuck = True
    done = len(rec.latency)
    serve(pod, server, 20, 4)
    assert len(rec.latency) == done and len(pod.queue) >= 70  # nothing completes, requests queue
    pod.stuck = False
    serve(pod, server, 60, 1)
    assert len(rec.latency) > done + 70 and not pod.queue


def test_alert_list_pairs_firings_and_resolutions() -> None:
    log = [(10.0, "a", "firing", "warning"), (12.0, "b", "firing", "critical"),
           (30.0, "a", "resolved", "warning"), (40.0, "a", "firing", "warning")]
    assert alert_list(log) == [
        {"rule": "a", "severity": "warning", "fired_at": 10.0, "resolved_at": 30.0},
        {"rule": "b", "severity": "critical", "fired_at": 12.0, "resolved_at": None},
        {"rule": "a", "severity": "warning", "fired_at": 40.0, "resolved_at": None}]


def test_simulate_json_lists_the_alerts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    n = 900
    rows = ["second,requests,error_percent"] + [
        f"{s},20,{30 if 400 <= s < 600 else 0}" for s in range(n)]
    (tmp_path / "e.csv").write_text("\n".join(rows) + "\n")
    assert main(["--trace", str(tmp_path / "e.csv"), "--policy", "gencluster", "--json"]) == 0
    res = json.loads(capsys.readouterr().out.splitlines()[0])
    fired = [a for a in res["alerts"] if 400 <= a["fired_at"] < 600]
    assert {"rule", "severity", "fired_at", "resolved_at"} == set(res["alerts"][0])
    assert any(a["rule"] == "anomaly-error-rate" and a["fired_at"] - 400 <= 30 for a in fired)


def test_the_corpus_is_labelled_as_the_committed_manifest_says() -> None:
    traces = inc.corpus("all")
    assert inc.manifest(traces) == json.loads(inc.MANIFEST.read_text())
    for which in ("train", "holdout"):
        rows = [i for t in traces if t.set == which for i in incidents(t.trace)]
        counts = {k: sum(1 for i in rows if i.kind == k) for k in ("leak", "slowdown", "errors",
                                                                     "stuck")}
        assert len(counts) == 4 and set(i.kind for i in rows) == set(counts)
        if which == "train":
            assert min(counts.values()) >= 50
    spikes = [s for t in traces for s in t.spikes]
    assert len(spikes) >= 50 and len({t.shape for t in traces}) == 5


def test_scoring_definitions() -> None:
    c = inc.CorpusTrace("t", "train", "steady", 1, trace(
        3000, slowdown=[2.0 if 100 <= s < 400 else 1.0 for s in range(3000)],
        leak=[1.0 if s >= 1500 else 0.0 for s in range(3000)]), ((900, 1000),))
    sim = {"alerts": [
        {"rule": "anomaly-slowdown", "severity": "warning", "fired_at": 120.0, "resolved_at": 500},
        {"rule": "latency-slo", "severity": "warning", "fired_at": 650.0, "resolved_at": 700},
        {"rule": "anomaly-error-rate", "severity": "warning", "fired_at": 930.0,
         "resolved_at": 990},
        {"rule": "latency-slo", "severity": "warning", "fired_at": 1210.0, "resolved_at": 1300},
        {"rule": "gpu-memory-exhaustion", "severity": "warning", "fired_at": 1800.0,
         "resolved_at": None}],
        "slo_violation_at": [20], "exhaustions_at": [2500, 2501]}
    s = inc.score_trace(c, sim)
    slow, leak = s["incidents"]
    assert slow["detected"] and slow["delay_s"] == 20.0 and slow["by"] == "anomaly-slowdown"
    assert leak["detected"] and leak["lead_s"] == 700.0
    truth = [f["true"] for f in s["firings"]]
    # in the incident; within 300 s after it; on a healthy spike; in an SLO-breaking minute (20);
    # in the leak
    assert truth == [True, True, False, True, True]
    assert s["spikes"] == [{"start": 900, "end": 1000, "absorbed": True,
                            "firings": ["anomaly-error-rate"]}]
    summ = inc.summarize([s])
    assert summ["precision"] == 0.8 and summ["kinds"]["leak"]["warned_10min"] == 1
    assert summ["firings_on_absorbed_spikes"] == 1
    assert math.isclose(summ["kinds"]["slowdown"]["median_delay_s"], 20.0)


def test_a_corpus_trace_is_deterministic_and_scored_end_to_end() -> None:
    a = inc.build("x", "train", "steady", 7)
    assert a == inc.build("x", "train", "steady", 7)
    short = inc.CorpusTrace("x", "train", "steady", 7, Trace(
        "x", a.trace.requests[:1500], a.trace.leak[:1500], a.trace.slowdown[:1500],
        a.trace.error_percent[:1500], a.trace.stuck_pods[:1500]), ())
    scored = inc.score_trace(short, inc.simulate(short, load_spec(str(inc.SPEC))))
    assert [r["kind"] for r in scored["incidents"]] == [i.kind for i in incidents(short.trace)]
    assert all(r["detected"] for r in scored["incidents"])
