"""The live loop (ClusterLoop, as the Kopf daemon runs it) uses the same detectors and custom
metrics as the simulator: real loopback pods over HTTP, a recording stand-in for the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gencluster.control.samples import PodRef
from gencluster.edge.control_loop import ClusterLoop
from gencluster.metrics_source.scrape import new_session

from .loopback import serve
from .test_autoscaler import Clock, FakePod, Recorder, spec


@dataclass
class ErrorPod(FakePod):
    errors: int = 0
    jobs: float = 0.0

    def text(self) -> str:
        return (super().text() + f'gencluster_requests_total{{code="500"}} {self.errors}\n'
                + "# TYPE app_jobs_waiting gauge\n"
                + f'app_jobs_waiting{{queue="gpu"}} {self.jobs}\n'
                + 'app_jobs_waiting{queue="cpu"} 1000\n' + "other_exporter_series 5\n")


async def run_loop(raw: dict[str, Any], pods: dict[str, ErrorPod], ticks: int,
                   before_each: Callable[[int], None]) -> tuple[Recorder, ClusterLoop]:
    rec, clock = Recorder(), Clock()
    refs = [PodRef(f"p{i}", f"u{i}", ip) for i, ip in enumerate(pods)]
    async with new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        for k in range(ticks):
            before_each(k)
            clock.t += 5.0
            await loop.tick(raw, 1, refs, len(refs))
    return rec, loop


async def test_an_error_burst_fires_the_error_detector_in_the_live_loop() -> None:
    pods = {"127.0.4.1": ErrorPod(), "127.0.4.2": ErrorPod()}
    fired_at: list[int] = []

    def step(k: int) -> None:
        for p in pods.values():
            p.served += 50
            p.latencies += [0.3] * 50
            if k >= 12:
                p.errors += 5  # 10 % of the answers fail
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port:
        raw = spec(port)
        raw["alerts"] = {"anomalyDetection": True, "builtinRules": False,
                         "predictiveMemory": False}
        rec, _ = await run_loop(raw, pods, 16, step)
    for i, e in enumerate(rec.events):
        if e.reason == "AlertFiring" and "anomaly-error-rate" in e.message:
            fired_at.append(i)
    assert fired_at, [e.message for e in rec.events]
    last = rec.statuses[-1]
    assert any(a["name"] == "anomaly-error-rate" for a in last["alerts"]), last
    assert "5xx share" in next(e.message for e in rec.events if e.reason == "AlertFiring")


async def test_a_custom_gauge_target_scales_the_live_loop_and_reports_found() -> None:
    pods = {"127.0.4.3": ErrorPod(jobs=20.0)}

    def step(k: int) -> None:
        for p in pods.values():
            p.served += 10
            p.latencies += [0.3] * 10
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port:
        raw = spec(port, targets={"custom": [
            {"metric": 'app_jobs_waiting{queue="gpu"}', "aggregation": "sum", "target": 4}]})
        raw["alerts"] = {"rules": [{"name": "typo", "metric": "app_jobs_wating",
                                    "comparison": "gt", "threshold": 1}]}
        rec, _ = await run_loop(raw, pods, 3, step)
    assert rec.scales and rec.scales[0] == 5  # 20 jobs / 4 per replica (the cpu queue excluded)
    conds = {c["type"]: c for c in rec.statuses[-1]["conditions"]}
    assert conds["CustomMetricsAvailable"]["status"] == "False"
    assert "app_jobs_wating" in conds["CustomMetricsAvailable"]["message"]
    assert 'app_jobs_waiting{queue="gpu"}' not in conds["CustomMetricsAvailable"]["message"]
