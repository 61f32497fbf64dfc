"""Every PromQL expression the chart ships (the PrometheusRule's and every Grafana panel's and
variable's) parses and returns data in a real Prometheus (the binary hack/build-binaries.sh
builds) that scrapes the operator's /metrics (real ClusterLoops, the real DashboardServer) and
real workload processes (`python -m gencluster_workload`, CPU) on 127.0.0.0/8, under load from
the project's load tester.

The states the alerts describe are made real: a third pod that does not answer (scrape errors),
a second cluster whose loop stops ticking, fault injection (5xx) and a tiny queue (429). Rules
that compare against a threshold are also evaluated with thresholds that hold here (SLO bucket
5 ms, GPU memory 1 %, an operator job that is down), so each returns data.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from control.loopback import ADMIN_PORT_OFFSET, admin_port, workload
from control.test_autoscaler import TOKEN, Recorder
from fixtures.ports import free_port, free_port_pair
from fixtures.prometheus import PrometheusServer

from gencluster.control.samples import PodRef
from gencluster.dashboard.model import Board
from gencluster.dashboard.server import DashboardServer
from gencluster.edge.control_loop import ClusterLoop
from gencluster.edge.metrics import REGISTRY, forget_cluster, observe_tick
from gencluster.loadtest import LoadConfig, run_profile, url_target
from gencluster.metrics_source.scrape import new_session

from .chart import dashboard, render, rule_groups

ROOT = Path(__file__).resolve().parents[2]
IPS = ("127.0.8.1", "127.0.8.2")
DEAD_IP = "127.0.8.3"
PODS = ("gc-workload-5d8f7c9b4-aaaaa", "gc-workload-5d8f7c9b4-bbbbb")
JOB = "gencluster-operator-metrics"  # what the chart's default operatorJob renders to


def spec(port: int) -> dict[str, Any]:
    return {"workload": workload(port), "replicas": {"min": 1, "max": 4},
            "autoscaling": {"intervalSeconds": 1, "targets": {"latencyP95Ms": 50}},
            "batching": {"initial": 2, "max": 8, "latencySloMs": 50},
            "alerts": {"anomalyDetection": False}}


@contextlib.contextmanager
def workloads(tmp: Path, port: int) -> Iterator[list[str]]:
    procs = []
    env = dict(os.environ, GENCLUSTER_TORCH_THREADS="1", PYTHONUNBUFFERED="1",
               GENCLUSTER_ADMIN_TOKEN=TOKEN, GENCLUSTER_FAULT_INJECTION="on",
               GENCLUSTER_QUEUE_MAX="3",
               PYTHONPATH=os.pathsep.join([str(ROOT / "workload"), os.environ.get("PYTHONPATH", "")]))
    try:
        for ip in IPS:
            log = open(tmp / f"workload-{ip}.log", "wb")  # noqa: SIM115  (the child's)
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "gencluster_workload", "--host", ip, "--port", str(port),
                 "--admin-port", str(admin_port(port)), "--device", "cpu", "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
            log.close()
        urls = [f"http://{ip}:{port}" for ip in IPS]
        deadline = time.monotonic() + 120
        for url, proc in zip(urls, procs, strict=True):
            while True:
                assert proc.poll() is None, (tmp / f"workload-{url[7:].split(':')[0]}.log").read_text()[-3000:]
                with contextlib.suppress(OSError), urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
                assert time.monotonic() < deadline, "workload not ready in 120 s"
                time.sleep(0.3)
        yield urls
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


class Operator:
    """The operator's metrics side in a thread: loops for ns/gc (two live pods and a dead one)
    and stall/gc (stops ticking after three ticks), the DashboardServer serving /metrics."""

    def __init__(self, pod_port: int) -> None:
        self.pod_port, self.port = pod_port, free_port()
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.ticks = 0
        self.thread = threading.Thread(target=lambda: self.loop.run_until_complete(self.main()),
                                       daemon=True)

    async def cluster(self, session: Any, namespace: str, refs: list[PodRef], ticks: int | None) -> None:
        loop = ClusterLoop("gc", "ns", Recorder(), session, history=Board().cluster(namespace, "gc"))
        n = 0
        while ticks is None or n < ticks:
            started = time.monotonic()
            report = await loop.tick(spec(self.pod_port), 1, refs, len(refs))
            observe_tick(namespace, "gc", report.decisions, ready=len(refs),
                         scrape_errors=len(report.failed), pods_reporting=report.scraped,
                         seconds=time.monotonic() - started, finished=time.time(), interval=1.0)
            n += 1
            self.ticks += namespace == "ns"
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    async def main(self) -> None:
        self.stop_event = asyncio.Event()
        async with new_session() as session:
            server = DashboardServer(Board(), REGISTRY)
            await server.start("127.0.0.1", self.port)
            refs = [PodRef(p, f"uid-{p}", ip) for p, ip in zip(PODS, IPS, strict=True)]
            dead = [PodRef("gc-workload-5d8f7c9b4-ccccc", "uid-dead", DEAD_IP)]
            tasks = [asyncio.create_task(self.cluster(session, "ns", refs + dead, None)),
                     asyncio.create_task(self.cluster(session, "stall", refs, 3))]
            self.ready.set()
            await self.stop_event.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await server.stop()
        for ns in ("ns", "stall"):
            forget_cluster(ns, "gc")

    def __enter__(self) -> Operator:
        self.thread.start()
        self.ready.wait(30)
        return self

    def __exit__(self, *_: Any) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)


def grafana(expr: str) -> str:
    """What Grafana sends for the panel: its variables filled in."""
    return (expr.replace("$__rate_interval", "30s").replace("$__range", "5m")
            .replace("$namespace", "ns").replace("$name", "gc"))


def load(urls: list[str], seconds: float) -> Any:
    cfg = LoadConfig(target=url_target(urls), profile="load", rate=6, duration_s=seconds,
                     window_s=1.0, pool=64, zipf=1.0, resolution=32, scrape_metrics=False,
                     timeout_s=20)
    return asyncio.run(run_profile(cfg))


def faults(url: str, body: dict[str, Any]) -> None:
    """PUT /admin/faults on the admin port of the workload at `url` (its HTTP port)."""
    host, _, port = url.rpartition(":")
    req = urllib.request.Request(f"{host}:{admin_port(int(port))}/admin/faults", data=json.dumps(body).encode(), method="PUT",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200


def burst(url: str, n: int) -> None:
    """n requests at once on one pod with a queue of 3: some are shed (429)."""
    from gencluster.loadtest.images import make_pool

    bodies = make_pool(n, 64, seed=7)  # distinct images: no cache hit answers early

    async def one(s: Any, body: bytes) -> int:
        async with s.post(url + "/v1/generate?resolution=32", data=body,
                          headers={"Content-Type": "image/png"}) as r:
            return int(r.status)

    async def main() -> list[int]:
        import aiohttp
        async with aiohttp.ClientSession() as s:
            return await asyncio.gather(*(one(s, b) for b in bodies))
    codes = asyncio.run(main())
    assert 429 in codes, codes


@pytest.mark.timeout(600)
def test_every_rule_and_panel_expression_returns_data(tmp_path: Path) -> None:
    docs = render("prometheusRule.latencySLO.bucketSeconds=0.005", "prometheusRule.gpuMemoryPercent=1")
    groups = rule_groups(docs)
    dash = dashboard(docs)
    pod_port = free_port_pair(ADMIN_PORT_OFFSET)  # and the admin port, as the operator runs pods
    with workloads(tmp_path, pod_port) as urls, Operator(pod_port) as op:
        (tmp_path / "prom").mkdir()
        prom = PrometheusServer(tmp_path / "prom", {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": JOB, "honor_labels": True,
                 "static_configs": [{"targets": [f"127.0.0.1:{op.port}"]}]},
                {"job_name": "gencluster-operator-gone",  # an operator that is down
                 "static_configs": [{"targets": [f"127.0.0.1:{free_port()}"]}]},
                {"job_name": "workload", "static_configs": [
                    {"targets": [f"{ip}:{pod_port}"], "labels": {"namespace": "ns", "pod": pod}}
                    for ip, pod in zip(IPS, PODS, strict=True)]},
            ],
            "rule_files": ["rules.yml"],
        })
        (tmp_path / "prom" / "rules.yml").write_text(json.dumps(groups))
        prom.start()
        try:
            faults(urls[1], {"errorPercent": 30})
            load(urls, 12.0)
            burst(urls[0], 24)
            load(urls, 8.0)
            deadline = time.monotonic() + 60
            exprs = collect(groups, dash)
            while True:  # the stalled loop must be > 33 s behind; the rest has data by now
                missing = [e for e in exprs if not result(prom, e)]
                if not missing or time.monotonic() > deadline:
                    break
                time.sleep(2)
        finally:
            log = prom.log()
            prom.stop()
    assert op.ticks >= 10
    assert not missing, f"expressions without data: {missing}\n{log}"


def collect(groups: dict[str, Any], dash: dict[str, Any]) -> list[str]:
    exprs = [r["expr"] for g in groups["groups"] for r in g["rules"]]
    # the operator-down rule, as rendered (its job is up here: no data) and for a job that is down
    down = [e for e in exprs if "absent(up" in e]
    assert down and JOB in down[0]
    exprs.append(down[0].replace(JOB, "gencluster-operator-gone"))
    exprs.remove(down[0])
    panels = [grafana(t["expr"]) for p in dash["panels"] for t in p["targets"]]
    variables = [re.sub(r"^label_values\((.*), \w+\)$", r"\1", grafana(v["query"]["query"]))
                 for v in dash["templating"]["list"] if v["type"] == "query"]
    assert len(panels) >= 20 and len(variables) == 2
    return exprs + panels + variables


def result(prom: PrometheusServer, expr: str) -> bool:
    try:
        data = prom.query(expr)
    except urllib.error.HTTPError as err:  # 400: the expression does not parse
        raise AssertionError(f"{expr}: {err.read().decode()}") from err
    return bool(data["result"])
