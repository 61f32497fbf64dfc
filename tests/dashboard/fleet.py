"""A live stand-in for the operator's inside, for the dashboard tests: real ClusterLoops (the
operator's own class) ticking on the wall clock against fake pods on 127.0.0.0/8 (real HTTP
/metrics and /admin/batching, from tests/control), recording into a real Board that a real
DashboardServer serves. Only the Kubernetes API is a recorder."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from control.loopback import ADMIN_PORT_OFFSET, serve, workload
from control.test_autoscaler import FakePod, Recorder
from fixtures.ports import free_port, free_port_pair

from gencluster.control.samples import PodRef
from gencluster.dashboard.model import Board
from gencluster.dashboard.server import DashboardServer
from gencluster.edge.control_loop import ClusterLoop
from gencluster.edge.metrics import REGISTRY, forget_cluster, observe_tick
from gencluster.metrics_source.scrape import new_session


def cluster_spec(port: int, interval: int = 1, max_replicas: int = 8) -> dict[str, Any]:
    return {"workload": workload(port),
            "replicas": {"min": 1, "max": max_replicas},
            "autoscaling": {"intervalSeconds": interval,
                            "targets": {"queueDepthPerReplica": 4, "latencyP95Ms": 800}},
            "batching": {"initial": 4, "max": 16, "latencySloMs": 800},
            "alerts": {"anomalyDetection": False, "rules": [
                {"name": "queue-building", "metric": "queueDepth", "comparison": "gt",
                 "threshold": 20, "forSeconds": 2, "severity": "warning"}]}}


@dataclass
class FakeCluster:
    """One GenerationCluster named `gc` (the Recorder expects ns/gc) with its fake pods."""

    namespace: str
    pods: dict[str, FakePod]
    load: float = 0.0  # queued requests per pod while loaded
    ticks: int = 0
    refs: list[PodRef] = field(default_factory=list)

    def advance(self) -> None:
        """One second of work at the current load."""
        for p in self.pods.values():
            n = 10 + int(self.load)
            p.served += n
            p.latencies += [0.2 if self.load < 10 else 1.2] * n
            p.batches += [p.batch] * max(1, n // max(1, p.batch))
            p.queue = self.load


class Fleet:
    """Clusters, their loops and the dashboard, on one asyncio loop in a background thread."""

    def __init__(self, clusters: int = 1, pods: int = 2, interval: int = 1,
                 token: str | None = None, base_ip: int = 40) -> None:
        self.n, self.npods, self.interval, self.token, self.base_ip = (
            clusters, pods, interval, token, base_ip)
        self.board = Board()
        self.clusters: list[FakeCluster] = []
        self.server: DashboardServer | None = None
        self.port = free_port()
        self.pod_port = free_port_pair(ADMIN_PORT_OFFSET)  # and its admin port
        self.loop = asyncio.new_event_loop()
        self.tick_seconds: list[float] = []
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        except BaseException as err:  # surfaced by start()/stop()
            self.error = err
            self._ready.set()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        routes = {}
        for c in range(self.n):
            pods = {f"127.0.{self.base_ip + c // 50}.{(c % 50) * 5 + k + 1}": FakePod()
                    for k in range(self.npods)}
            fc = FakeCluster(f"ns{c:03d}", pods)
            fc.refs = [PodRef(f"gc-workload-{k}", f"uid-{c}-{k}", ip, True)
                       for k, ip in enumerate(pods)]
            self.clusters.append(fc)
            routes.update({ip: p.routes() for ip, p in pods.items()})
        async with serve(routes, self.pod_port), new_session() as session:
            self.server = DashboardServer(self.board, REGISTRY, token=self.token)
            await self.server.start("127.0.0.1", self.port)
            loops = [asyncio.create_task(self._cluster(fc, session)) for fc in self.clusters]
            self._ready.set()
            await self._stop.wait()
            for t in loops:
                t.cancel()
            for t in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
            await self.server.stop()

    async def _cluster(self, fc: FakeCluster, session: Any) -> None:
        rec = Recorder(persisted='{"maxBatchSize": 4, "maxQueueDelayMs": 10}')
        rec.scale = self._scaler(fc)  # type: ignore[method-assign]
        hist = self.board.cluster(fc.namespace, "gc")
        hist.observe_object({"conditions": [{"type": "Ready", "status": "True",
                                             "reason": "Available"}]})
        loop = ClusterLoop("gc", "ns", rec, session, history=hist)
        spec = cluster_spec(self.pod_port, self.interval)
        current = len(fc.refs)
        try:
            while True:
                started = time.monotonic()
                fc.advance()
                report = await loop.tick(spec, 1, fc.refs, current)
                if report.scaled_to is not None:
                    current = report.scaled_to
                fc.ticks += 1
                seconds = time.monotonic() - started
                self.tick_seconds.append(seconds)
                observe_tick(fc.namespace, "gc", report.decisions, ready=len(fc.refs),
                             scrape_errors=len(report.failed), pods_reporting=report.scraped,
                             seconds=seconds, finished=time.time(), interval=self.interval)
                await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
        finally:
            forget_cluster(fc.namespace, "gc")

    @staticmethod
    def _scaler(fc: FakeCluster) -> Any:
        async def scale(namespace: str, deployment: str, replicas: int) -> None:
            pass  # the Deployment's count; the fake pods stay as they are
        return scale

    def call(self, fn: Any) -> Any:
        """Run fn() on the fleet's loop (state is only touched there) and return its result."""
        async def run() -> Any:
            return fn()
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def start(self) -> Fleet:
        self._thread.start()
        self._ready.wait(30)
        if self.error is not None:
            raise self.error
        return self

    def wait_ticks(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while min((c.ticks for c in self.clusters), default=0) < n:
            assert time.monotonic() < deadline, "the loops did not tick"
            time.sleep(0.1)

    def stop(self) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@contextlib.contextmanager
def running(**kw: Any) -> Iterator[Fleet]:
    fleet = Fleet(**kw).start()
    try:
        yield fleet
    finally:
        fleet.stop()
