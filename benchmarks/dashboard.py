"""Dashboard benchmarks for docs/benchmarks.md ("## Dashboard").

    PYTHONPATH=operator:workload:tests .venv/bin/python benchmarks/dashboard.py \
        [--seconds 60] [--json out.json] [--screenshot docs/dashboard.png]

1. Push-to-paint latency in a real headless Chromium: from the server stamping an update
   (`stamp`, ms, just before it is sent) to the first animation frame after the page applied it
   and uPlot redrew (performance.timeOrigin + performance.now(); same machine, same clock).
   The seed's goal: under 100 ms. Scenarios: one cluster (its page), 100 clusters (one
   cluster's page, and the list).
2. Server cost: CPU of the operator-side process (real ClusterLoops on loopback fake pods, the
   DashboardServer) with 0, 1 and 10 WebSocket clients reading the all-clusters stream, and the
   time spent in the dashboard's own code (ClusterHistory.record per tick, broadcast per
   second) for 100 clusters; memory of a full 5-minute history per cluster; message sizes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the dashboard tests' fleet, browser and feeder

from dashboard.browser import chromium, wait_for  # noqa: E402
from dashboard.fleet import running  # noqa: E402
from dashboard.test_model import Feeder, loaded  # noqa: E402
from fixtures.ports import free_port  # noqa: E402

from gencluster.control.samples import PodRef  # noqa: E402
from gencluster.dashboard import model, server  # noqa: E402
from gencluster.edge.metrics import REGISTRY  # noqa: E402

SEED_GOAL_MS = 100.0


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def push_to_paint(clusters: int, page: str, seconds: float, interval: int,
                  shot: Path | None = None) -> dict[str, Any]:
    with running(clusters=clusters, pods=2, interval=interval) as fleet, chromium(1280, 1500) as d:
        fleet.wait_ticks(2, timeout=120)
        if shot is not None:  # a visible story: load arrives, the loop scales up
            fleet.call(lambda: setattr(fleet.clusters[0], "load", 30.0))
        d.get(fleet.url + page)
        wait_for(d, "window.__dash.messages >= 2", 60)
        d.execute_script("window.__dash.latencies.length = 0")  # the snapshot and warm-up out
        time.sleep(seconds)
        lat = d.execute_script("return window.__dash.latencies.slice()")
        if shot is not None:
            d.save_screenshot(str(shot))
    return {"clusters": clusters, "page": page, "interval_s": interval, "n": len(lat),
            "p50_ms": round(pct(lat, 0.5), 1), "p95_ms": round(pct(lat, 0.95), 1),
            "p99_ms": round(pct(lat, 0.99), 1), "max_ms": round(max(lat), 1) if lat else None}


CLIENTS = r"""
import asyncio, sys, aiohttp
async def one(url):
    async with aiohttp.ClientSession() as s, s.ws_connect(url, max_msg_size=0) as ws:
        async for _ in ws: pass
async def main(url, n):
    await asyncio.gather(*(one(url) for _ in range(n)))
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def server_cost(clusters: int, interval: int, seconds: float) -> dict[str, Any]:
    """Process CPU per second with k clients (in another process) reading every update."""
    spent = {"record": 0.0, "broadcast": 0.0, "records": 0, "broadcasts": 0}
    rec0, bc0 = model.ClusterHistory.record, server.DashboardServer.broadcast

    def record(self: Any, *a: Any, **k: Any) -> None:
        t = time.perf_counter()
        rec0(self, *a, **k)
        spent["record"] += time.perf_counter() - t
        spent["records"] += 1

    def broadcast(self: Any) -> None:
        t = time.perf_counter()
        bc0(self)
        spent["broadcast"] += time.perf_counter() - t
        spent["broadcasts"] += 1

    out: dict[str, Any] = {"clusters": clusters, "interval_s": interval, "by_clients": {}}
    with contextlib.ExitStack() as stack:
        model.ClusterHistory.record = record  # type: ignore[method-assign]
        server.DashboardServer.broadcast = broadcast  # type: ignore[method-assign]
        stack.callback(setattr, model.ClusterHistory, "record", rec0)
        stack.callback(setattr, server.DashboardServer, "broadcast", bc0)
        fleet = stack.enter_context(running(clusters=clusters, pods=2, interval=interval))
        fleet.wait_ticks(2, timeout=120)
        url = fleet.url.replace("http", "ws") + "/ws/metrics"
        for k in (0, 1, 10):
            proc = None
            if k:
                proc = subprocess.Popen([sys.executable, "-c", CLIENTS, url, str(k)])
                deadline = time.monotonic() + 30
                while fleet.call(lambda: len(fleet.server.clients)) < k:
                    assert time.monotonic() < deadline, "clients did not connect"
                    time.sleep(0.1)
            time.sleep(2)
            for key in spent:
                spent[key] = 0 if isinstance(spent[key], int) else 0.0
            c0, t0 = cpu_s(), time.monotonic()
            time.sleep(seconds)
            c1, t1 = cpu_s(), time.monotonic()
            wall = t1 - t0
            dropped = fleet.call(lambda: sum(c.dropped for c in fleet.server.clients))
            out["by_clients"][k] = {
                "process_cpu_ms_per_s": round(1000 * (c1 - c0) / wall, 1),
                "record_ms_per_s": round(1000 * spent["record"] / wall, 2),
                "record_us_per_tick": round(1e6 * spent["record"] / max(1, spent["records"]), 1),
                "broadcast_ms_per_s": round(1000 * spent["broadcast"] / wall, 2),
                "dropped": dropped}
            if proc is not None:
                proc.terminate()
                proc.wait(10)
        sizes = fleet.call(lambda: (
            len(server.dumps(fleet.board.ordered()[0].snapshot())),
            len(server.dumps(fleet.board.ordered()[0].update()))))
        out["snapshot_bytes_per_cluster"], out["update_bytes_per_cluster"] = sizes
    base = out["by_clients"][0]["process_cpu_ms_per_s"]
    for k in (1, 10):
        out["by_clients"][k]["cpu_ms_per_s_per_client"] = round(
            (out["by_clients"][k]["process_cpu_ms_per_s"] - base) / k, 2)
    return out


def quiet_cost(clusters: int, seconds: float, counts: tuple[int, ...] = (0, 1, 10, 30)) -> dict[str, Any]:
    """The server alone: `clusters` full histories (no loops ticking), k clients reading the
    all-clusters stream; process CPU per second is then the dashboard's pushing and sending."""
    import threading

    board = model.Board()
    for c in range(clusters):
        h = board.cluster(f"ns{c:03d}", "gc")
        f = Feeder(h)
        refs = [PodRef(f"p{k}", f"u{k}") for k in range(2)]
        for i in range(1, model.HISTORY_SECONDS + 1):
            f.tick(1000.0 + i, [loaded(1000.0 + i, i, r.name, r.uid) for r in refs], refs)
    loop = asyncio.new_event_loop()
    port = free_port()
    srv = server.DashboardServer(board, REGISTRY)
    started = threading.Event()

    async def main() -> None:
        await srv.start("127.0.0.1", port)
        started.set()
        await asyncio.Event().wait()

    threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True).start()
    started.wait(30)
    url = f"ws://127.0.0.1:{port}/ws/metrics"
    out: dict[str, Any] = {"clusters": clusters, "message_bytes": None, "by_clients": {}}
    for k in counts:
        proc = subprocess.Popen([sys.executable, "-c", CLIENTS, url, str(k)]) if k else None
        deadline = time.monotonic() + 30
        while len(srv.clients) < k:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(3)  # the snapshots are out
        c0, t0 = cpu_s(), time.monotonic()
        time.sleep(seconds)
        cpu = 1000 * (cpu_s() - c0) / (time.monotonic() - t0)
        out["by_clients"][k] = {"process_cpu_ms_per_s": round(cpu, 2),
                                "dropped": sum(c.dropped for c in list(srv.clients))}
        if proc is not None:
            proc.terminate()
            proc.wait(10)
            deadline = time.monotonic() + 10
            while srv.clients and time.monotonic() < deadline:
                time.sleep(0.1)
    base = out["by_clients"][counts[0]]["process_cpu_ms_per_s"]
    for k in counts[1:]:
        row = out["by_clients"][k]
        row["per_client_ms_per_s"] = round((row["process_cpu_ms_per_s"] - base) / k, 2)
    out["message_bytes"] = len(",".join(filter(None, map(srv._update_json, sorted(board.clusters)))))
    return out


def memory_per_cluster(pods: int = 4) -> dict[str, Any]:
    """Bytes held by one cluster's full 5-minute history (300 points, `pods` pods, events)."""
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    h = model.ClusterHistory("ns", "gc")
    f = Feeder(h)
    refs = [PodRef(f"p{k}", f"u{k}") for k in range(pods)]
    for i in range(1, model.HISTORY_SECONDS + 60):
        t = 1000.0 + i
        f.tick(t, [loaded(t, i, r.name, r.uid) for r in refs], refs)
    after = tracemalloc.take_snapshot()
    held = sum(s.size_diff for s in after.compare_to(before, "filename")
               if "dashboard/model.py" in s.traceback[0].filename)
    tracemalloc.stop()
    return {"pods": pods, "points": len(h.points), "events": len(h.events), "bytes": held,
            "snapshot_json_bytes": len(server.dumps(h.snapshot()))}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--cost-seconds", type=float, default=20.0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--screenshot", type=Path)
    args = ap.parse_args()
    res: dict[str, Any] = {"cpus": os.cpu_count(), "seed_goal_ms": SEED_GOAL_MS}
    res["latency"] = [
        push_to_paint(1, "/clusters/ns000/gc", args.seconds, 1, args.screenshot),
        push_to_paint(100, "/clusters/ns050/gc", args.seconds, 5),
        push_to_paint(100, "/", args.seconds, 5),
    ]
    res["cost"] = [server_cost(10, 1, args.cost_seconds), server_cost(100, 5, args.cost_seconds)]
    res["quiet"] = [quiet_cost(100, args.cost_seconds)]
    res["memory"] = memory_per_cluster()
    if args.screenshot is not None:
        shrink(args.screenshot)
        res["screenshot_bytes"] = args.screenshot.stat().st_size
    text = json.dumps(res, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text)


def shrink(path: Path) -> None:
    """A small PNG for the docs: 64-colour palette, optimised."""
    from PIL import Image
    img = Image.open(path).convert("RGB")
    img.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


if __name__ == "__main__":
    main()
