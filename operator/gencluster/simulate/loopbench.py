"""Loop cost: one process running N GenerationClusters' control loops against a farm of fake pods.

    python -m gencluster.simulate.loopbench --clusters 1000 --pods-per-cluster 5 --interval 5

The farm (a separate process, so its CPU is not counted) serves /metrics in the workload's
format (prometheus_client's exposition, about 110 lines per pod) from a minimal HTTP/1.1
responder listening on its own 127.10.x.y address per pod, all on one port, as pods have their
own IPs (and on the next port, the admin port, where the batch-size PUTs go).
The measured process runs gencluster.edge.control_loop.ClusterLoop for every cluster, each on its own
interval as the per-cluster Kopf daemons do: scrape, parse, window, all decisions, status diff.
The Kubernetes calls are no-ops (they are I/O the API server pays for). It reports CPU seconds
per wall second, peak RSS and tick durations over the measured span (after a warm-up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import resource
import subprocess
import sys
import time
from typing import Any

from ..control.samples import PodRef
from ..edge.control_loop import ClusterLoop, NullKubeOps
from ..metrics_source.scrape import new_session

ADMIN_PORT_OFFSET = 1  # the farm's admin port: spec.workload.adminPort = --port + 1


def pod_ip(i: int) -> str:
    return f"127.10.{i // 250}.{1 + i % 250}"


TEMPLATE = """# HELP gencluster_request_duration_seconds Request latency.
# TYPE gencluster_request_duration_seconds histogram
{hist}
# HELP gencluster_requests_total Requests by HTTP code.
# TYPE gencluster_requests_total counter
gencluster_requests_total{{code="200"}} {ok}
gencluster_requests_total{{code="429"}} 0.0
gencluster_requests_total{{code="500"}} {err}
gencluster_requests_created{{code="200"}} 1.7e9
# HELP gencluster_queue_depth Queued requests.
# TYPE gencluster_queue_depth gauge
gencluster_queue_depth {queue}
# TYPE gencluster_inflight_requests gauge
gencluster_inflight_requests {inflight}
# TYPE gencluster_batch_size gauge
gencluster_batch_size {batch_size}
# TYPE gencluster_batch_size_observed histogram
{batch}
# TYPE gencluster_gpu_memory_used_bytes gauge
gencluster_gpu_memory_used_bytes{{device="cuda:0"}} {used}
# TYPE gencluster_gpu_memory_total_bytes gauge
gencluster_gpu_memory_total_bytes{{device="cuda:0"}} 1.7179869184e+10
# TYPE gencluster_gpu_memory_reserved_bytes gauge
gencluster_gpu_memory_reserved_bytes{{device="cuda:0"}} 1.2e+10
# TYPE gencluster_gpu_memory_fragmentation_ratio gauge
gencluster_gpu_memory_fragmentation_ratio{{device="cuda:0"}} 0.08
# TYPE gencluster_oom_total counter
gencluster_oom_total 0.0
# TYPE gencluster_cache_requests_total counter
gencluster_cache_requests_total{{tier="l1",result="hit"}} {hit}
gencluster_cache_requests_total{{tier="l1",result="miss"}} {miss}
gencluster_cache_requests_total{{tier="redis",result="hit"}} {hit}
gencluster_cache_requests_total{{tier="redis",result="miss"}} {miss}
# TYPE python_gc_objects_collected_total counter
python_gc_objects_collected_total{{generation="0"}} 12345.0
python_gc_objects_collected_total{{generation="1"}} 234.0
python_info{{implementation="CPython",major="3",minor="11",patchlevel="9",version="3.11.9"}} 1.0
process_resident_memory_bytes 2.1e+09
process_cpu_seconds_total 1234.5
"""
LAT = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 7.5, 10.0, 15.0, 20.0)
BATCH = (1, 2, 4, 8, 16, 32, 64)


def render(i: int, t: float, batch: int = 8) -> str:
    """Pod i's exposition at time t: counters grow at a steady rate, gauges wobble."""
    n = int(t * (5 + i % 7))
    lines = []
    for outcome, share in (("ok", 0.7), ("error", 0.01), ("cache_hit", 0.29)):
        total = int(n * share)
        for le in LAT:
            frac = min(1.0, le / 2.0)
            lines.append(f'gencluster_request_duration_seconds_bucket{{le="{le}",outcome="{outcome}"}}'
                         f" {float(int(total * frac))}")
        lines += [f'gencluster_request_duration_seconds_bucket{{le="+Inf",outcome="{outcome}"}}'
                  f" {float(total)}",
                  f'gencluster_request_duration_seconds_count{{outcome="{outcome}"}} {float(total)}',
                  f'gencluster_request_duration_seconds_sum{{outcome="{outcome}"}} {total * 0.9}',
                  f'gencluster_request_duration_seconds_created{{outcome="{outcome}"}} 1.7e9']
    batches = n // 8
    bl = [f'gencluster_batch_size_observed_bucket{{le="{le}"}} {float(batches if le >= 8 else 0)}'
          for le in BATCH]
    bl += [f'gencluster_batch_size_observed_bucket{{le="+Inf"}} {float(batches)}',
           f"gencluster_batch_size_observed_count {float(batches)}",
           f"gencluster_batch_size_observed_sum {float(batches * 8)}"]
    wobble = (i * 7919 + int(t)) % 10
    return TEMPLATE.format(hist="\n".join(lines), ok=float(n), err=float(n // 100),
                           queue=float(wobble), inflight=float(wobble % 8),
                           batch="\n".join(bl), used=8.0e9 + wobble * 1e8,
                           batch_size=float(batch),
                           hit=float(n // 3), miss=float(n // 3))


def custom_lines(i: int, t: float, n: int) -> str:
    """n series beyond the contract (the --custom-series benchmark): half gauges
    app_custom_gauge{series="k"}, half counters app_custom_events_total{series="k"}."""
    if n <= 0:
        return ""
    g, c = n // 2, n - n // 2
    base = int(t * (1 + i % 3))
    out = ["# TYPE app_custom_gauge gauge"]
    out += [f'app_custom_gauge{{series="{k}"}} {float((i + k) % 17)}' for k in range(g)]
    out.append("# TYPE app_custom_events_total counter")
    out += [f'app_custom_events_total{{series="{k}"}} {float(base + k)}' for k in range(c)]
    return "\n".join(out) + "\n"


def custom_spec() -> dict[str, Any]:
    """What the --custom-series spec adds: a target over every gauge series (a regex matcher)
    and a rule on the rate of every counter series; thresholds the figures never reach."""
    return {
        "targets": {"custom": [{"metric": 'app_custom_gauge{series=~".+"}', "aggregation": "avg",
                                "target": 1_000_000_000}]},
        "rules": [{"name": "custom-events", "metric": "app_custom_events_total",
                   "aggregation": "max", "comparison": "gt", "threshold": 1_000_000_000,
                   "forSeconds": 0}],
    }


class _FarmPod(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive pod: GET /metrics, and PUT /admin/batching sets the batch
    gauge as the workload would (so the loop only pushes on changes). The farm must cost far
    less than the loop it feeds, hence no web framework."""

    def __init__(self, index: int, custom: int = 0, batch: list[int] | None = None) -> None:
        self.index = index
        self.custom = custom
        self._batch = batch if batch is not None else [8]  # the pod's, shared by its connections
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    @property
    def batch(self) -> int:
        return self._batch[0]

    @batch.setter
    def batch(self, value: int) -> None:
        self._batch[0] = value

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, rest = self.buf.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if len(rest) < length:
                return  # wait for the body
            body_in, self.buf = rest[:length], rest[length:]
            if head.startswith(b"PUT"):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.batch = int(json.loads(body_in)["maxBatchSize"])
                body = b"{}"
            else:
                now = time.time()
                body = (render(self.index, now, self.batch)
                        + custom_lines(self.index, now, self.custom)).encode()
            out = (f"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode()
            assert self.transport is not None
            self.transport.write(out + body)


async def farm(pods: int, port: int, custom: int = 0) -> None:
    loop = asyncio.get_running_loop()
    servers = []
    for i in range(pods):
        batch = [8]  # one pod: its /metrics and its admin port see the same batch size
        for p in (port, port + ADMIN_PORT_OFFSET):
            servers.append(await loop.create_server(functools.partial(_FarmPod, i, custom, batch),
                                                    pod_ip(i), p, backlog=16))
    print("ready", flush=True)
    await asyncio.Event().wait()


def rss_mib(pid: int | str = "self") -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), in MiB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":")
                vals[k] = int(v.split()[0]) / 1024.0
    return vals.get("VmRSS", 0.0), vals.get("VmHWM", 0.0)


async def measure(clusters: int, per: int, interval: float, port: int, warmup: float,
                  duration: float, custom: int = 0, timeout_ms: int = 2000) -> dict[str, Any]:
    # Kubernetes calls are no-ops (NullKubeOps); batch-size PUTs do go to the farm's pods.
    spec: dict[str, Any] = {"workload": {"image": "x", "port": port,
                                         "adminPort": port + ADMIN_PORT_OFFSET},
                            "replicas": {"min": 1, "max": 20},
                            "autoscaling": {"intervalSeconds": int(interval),
                                            "metrics": {"scrapeTimeoutMs": timeout_ms}}}
    if custom > 0:
        extra = custom_spec()
        spec["autoscaling"]["targets"] = extra["targets"]
        spec["alerts"] = {"rules": extra["rules"]}
    session = new_session()
    ticks: list[float] = []
    loops: list[ClusterLoop] = []
    late = 0
    errors = 0
    measuring = False
    stop = asyncio.Event()

    async def run_cluster(c: int) -> None:
        nonlocal late, errors
        loop = ClusterLoop(f"gc{c}", "bench", NullKubeOps(), session)
        loops.append(loop)
        pods = [PodRef(f"gc{c}-{k}", f"u{c}-{k}", pod_ip(c * per + k)) for k in range(per)]
        await asyncio.sleep(random.Random(c).uniform(0, interval))  # daemons start spread out
        next_at = time.monotonic()
        while not stop.is_set():
            started = time.monotonic()
            if started - next_at > 1.0 and measuring:
                late += 1
            report = await loop.tick(spec, 1, pods, per)
            if measuring:
                ticks.append(time.monotonic() - started)
                errors += len(report.failed)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    tasks = [asyncio.create_task(run_cluster(c)) for c in range(clusters)]
    await asyncio.sleep(warmup)
    measuring = True
    cpu0 = time.process_time()
    wall0 = time.monotonic()
    await asyncio.sleep(duration)
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    measuring = False
    stop.set()
    rss, hwm = rss_mib()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await session.close()
    found = sum(1 for lp in loops if lp.state is not None and any(
        c.type == "CustomMetricsAvailable" and c.status == "True" for c in lp.state.conditions))
    ticks.sort()
    expected = clusters * duration / interval

    def pct(q: float) -> float:
        return round(1000 * ticks[min(len(ticks) - 1, int(q * len(ticks)))], 1) if ticks else 0.0

    return {"clusters": clusters, "pods": clusters * per, "interval_s": interval,
            "measured_s": round(wall, 1), "cpu_cores": round(cpu / wall, 3),
            "rss_mib": round(rss, 1), "peak_rss_mib": round(hwm, 1),
            "cpu_ms_per_tick": round(1000 * cpu / max(1, len(ticks)), 2),
            "cores_at_full_rate": round(cpu / max(1, len(ticks)) * clusters / interval, 3),
            "load_average": os.getloadavg()[0],
            "ticks": len(ticks), "ticks_expected": int(expected), "late_ticks": late,
            "scrape_errors": errors, "tick_p50_ms": pct(0.5), "tick_p99_ms": pct(0.99),
            "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            "clusters_with_custom_series_found": found}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gencluster.simulate.loopbench")
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--pods-per-cluster", type=int, default=5)
    p.add_argument("--interval", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=20.0)
    p.add_argument("--duration", type=float, default=60.0)
    p.add_argument("--port", type=int, default=18080)
    p.add_argument("--custom-series", type=int, default=0,
                   help="series per pod beyond the contract, named by a custom target and rule")
    p.add_argument("--scrape-timeout-ms", type=int, default=2000,
                   help="autoscaling.metrics.scrapeTimeoutMs (raise it on a loaded machine)")
    p.add_argument("--farm", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    pods = args.clusters * args.pods_per_cluster
    if args.farm:
        asyncio.run(farm(pods, args.port, args.custom_series))
        return 0
    child = subprocess.Popen(
        [sys.executable, "-m", "gencluster.simulate.loopbench", "--farm", "--clusters",
         str(args.clusters), "--pods-per-cluster", str(args.pods_per_cluster), "--port",
         str(args.port), "--custom-series", str(args.custom_series)], stdout=subprocess.PIPE,
        env=os.environ.copy())
    try:
        assert child.stdout is not None
        if child.stdout.readline().strip() != b"ready":
            print("farm failed to start", file=sys.stderr)
            return 1
        out = asyncio.run(measure(args.clusters, args.pods_per_cluster, args.interval,
                                  args.port, args.warmup, args.duration, args.custom_series,
                                  args.scrape_timeout_ms))
        out["custom_series_per_pod"] = args.custom_series
    finally:
        child.terminate()
        child.wait(timeout=10)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
