"""The drop-free scale-down with real parts and no cluster: three real workload server processes
(one loopback address each, one port, as pods), the real ClusterLoop deciding and draining, open
load spread over the pods the "Service" routes to, and a ReplicaSet stand-in that deletes (SIGTERM)
the pods of lowest deletion cost when the count falls. Every request must succeed.

The stand-ins, and what they do as Kubernetes does: the endpoint list is the pods whose /readyz
answered 200 at the last probe round (the kubelet's readiness probe + EndpointSlice + kube-proxy,
every 0.5 s); the ReplicaSet deletes not-ready pods first, then the lowest
controller.kubernetes.io/pod-deletion-cost. The e2e test (tests/control/test_loop_live.py) runs the
same scale-down on the local cluster through a real Service.
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
from fixtures.ports import free_port
from PIL import Image

from gencluster.control.events import EventIntent
from gencluster.control.samples import PodRef
from gencluster.edge.control_loop import ClusterLoop, NullKubeOps
from gencluster.metrics_source.scrape import new_session
from gencluster.render.names import DELETION_COST_ANNOTATION

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "drain-test-token"
IPS = ["127.0.6.1", "127.0.6.2", "127.0.6.3"]


def images(n: int) -> list[bytes]:
    from gencluster_workload import synthetic

    rng = np.random.default_rng(7)
    out = []
    for i in range(n):
        shape = synthetic.random_shape(rng, synthetic.KINDS[i % 4])
        buf = io.BytesIO()
        Image.fromarray((synthetic.render(shape.sdf, rng, 64) * 255).astype(np.uint8)).save(
            buf, format="PNG")
        out.append(buf.getvalue())
    return out


@dataclass
class Pod:
    name: str
    ip: str
    proc: subprocess.Popen[bytes]
    ready: bool = False
    annotations: dict[str, str] = field(default_factory=dict)
    deleted: bool = False


@dataclass
class Fleet(NullKubeOps):
    """The ReplicaSet and the kubelet, for three processes."""

    pods: dict[str, Pod]
    port: int
    scales: list[int] = field(default_factory=list)
    events: list[EventIntent] = field(default_factory=list)

    def refs(self) -> list[PodRef]:
        return [PodRef(p.name, p.name, p.ip, p.ready) for p in self.pods.values() if not p.deleted]

    def endpoints(self) -> list[str]:
        return [p.ip for p in self.pods.values() if p.ready and not p.deleted]

    async def probe(self, session: aiohttp.ClientSession) -> None:
        for p in self.pods.values():
            if p.deleted:
                continue
            try:
                async with session.get(f"http://{p.ip}:{self.port}/readyz",
                                       timeout=aiohttp.ClientTimeout(total=1)) as r:
                    p.ready = r.status == 200
            except (aiohttp.ClientError, TimeoutError):
                p.ready = False

    # KubeOps
    async def scale(self, namespace: str, deployment: str, replicas: int) -> None:
        self.scales.append(replicas)
        alive = [p for p in self.pods.values() if not p.deleted]
        rank = sorted(alive, key=lambda p: (p.ready, int(p.annotations.get(
            DELETION_COST_ANNOTATION, "0")), p.name))
        for p in rank[:max(0, len(alive) - replicas)]:
            p.deleted = True  # gone from endpoints at once (terminating), then SIGTERM
            p.proc.send_signal(signal.SIGTERM)

    async def read_token(self, namespace: str, secret: str) -> str | None:
        return TOKEN

    async def annotate_pod(self, namespace: str, pod: str, annotations: Any) -> None:
        for k, v in annotations.items():
            if v is None:
                self.pods[pod].annotations.pop(k, None)
            else:
                self.pods[pod].annotations[k] = v

    def emit(self, event: EventIntent) -> None:
        self.events.append(event)


def start(tmp: Path, port: int) -> Fleet:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "workload"),
                                                         os.environ.get("PYTHONPATH", "")]),
           "PYTHONUNBUFFERED": "1", "GENCLUSTER_PORT": str(port), "GENCLUSTER_DEVICE": "cpu",
           "GENCLUSTER_TORCH_THREADS": "1", "GENCLUSTER_ADMIN_TOKEN": TOKEN,
           "GENCLUSTER_BATCH_MAX_SIZE": "4", "GENCLUSTER_SHUTDOWN_GRACE_SECONDS": "10",
           "GENCLUSTER_L1_CACHE_BYTES": "0"}
    pods = {}
    for i, ip in enumerate(IPS):
        log = open(tmp / f"pod-{i}.log", "ab")  # noqa: SIM115  (the child keeps it)
        proc = subprocess.Popen([sys.executable, "-m", "gencluster_workload"],
                                env={**env, "GENCLUSTER_HOST": ip}, stdout=log,
                                stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
        log.close()
        pods[f"w-{i}"] = Pod(f"w-{i}", ip, proc)
    return Fleet(pods, port)


async def test_scale_down_under_load_with_real_servers_fails_no_request(tmp_path: Path) -> None:
    port = free_port()
    fleet = start(tmp_path, port)
    spec = {"workload": {"image": "x", "port": port, "shutdownGraceSeconds": 10},
            "replicas": {"min": 1, "max": 3},
            "autoscaling": {"intervalSeconds": 1, "scaleDown": {
                "stabilizationSeconds": 0, "maxPods": 1, "maxPercent": 1, "periodSeconds": 4}},
            "alerts": {"anomalyDetection": False}}
    pool = images(64)
    results: list[int | str] = []
    try:
        async with new_session() as session, aiohttp.ClientSession() as client:
            deadline = time.monotonic() + 120
            while len(fleet.endpoints()) < 3:
                assert time.monotonic() < deadline, "servers did not become ready"
                assert all(p.proc.poll() is None for p in fleet.pods.values())
                await fleet.probe(session)
                await asyncio.sleep(0.5)
            stop = asyncio.Event()

            async def one(data: bytes) -> None:
                ip = random.choice(fleet.endpoints())
                try:
                    async with client.post(f"http://{ip}:{port}/v1/generate",
                                           params={"resolution": "16"}, data=data,
                                           headers={"Content-Type": "image/png"},
                                           timeout=aiohttp.ClientTimeout(total=30)) as r:
                        await r.read()
                        results.append(r.status)
                except (aiohttp.ClientError, TimeoutError) as err:
                    results.append(type(err).__name__)

            async def offered_load() -> None:  # open loop, 6 req/s, keep-alive client
                tasks = []
                i = 0
                while not stop.is_set():
                    tasks.append(asyncio.create_task(one(pool[i % len(pool)])))
                    i += 1
                    await asyncio.sleep(1 / 6)
                await asyncio.gather(*tasks)

            async def endpoints() -> None:
                while not stop.is_set():
                    await fleet.probe(session)
                    await asyncio.sleep(0.5)

            runners = [asyncio.create_task(offered_load()), asyncio.create_task(endpoints())]
            loop = ClusterLoop("gc", "ns", fleet, session)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and (not fleet.scales or fleet.scales[-1] > 1):
                await loop.tick(spec, 1, fleet.refs(), len(fleet.refs()))
                await asyncio.sleep(1.0)
            await asyncio.sleep(3)  # the load goes on after the last removal
            stop.set()
            await asyncio.gather(*runners)
        gone = [p for p in fleet.pods.values() if p.deleted]
        codes = [p.proc.wait(20) for p in gone]
    finally:
        for p in fleet.pods.values():
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait(5)
    # It scaled down under load (a decision for fewer pods during a drain adds victims, so
    # 3 -> 2 -> 1 may reach the Deployment as one change).
    assert fleet.scales and fleet.scales[-1] < 3, fleet.scales
    assert fleet.scales == sorted(fleet.scales, reverse=True)
    assert len(results) > 60 and all(r == 200 for r in results), (
        {r: results.count(r) for r in set(results)})
    # The removed pods were the ones the loop drained (deletion cost) and exited cleanly.
    assert len(gone) == 3 - fleet.scales[-1]
    assert all(p.annotations.get(DELETION_COST_ANNOTATION) == "-1000" for p in gone)
    assert codes == [0] * len(gone)
    assert [e.reason for e in fleet.events].count("ScaledDown") == 3 - fleet.scales[-1]
