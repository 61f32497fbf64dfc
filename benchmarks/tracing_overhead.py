"""Tracing overhead, side by side in one run: one `gencluster serve` process on loopback with
tracing off, on at 100 % sampling, and on at 1 %, exporting to a real Jaeger all-in-one (host
process), under `gencluster loadtest` near saturation (p95) and above it (throughput).

    python benchmarks/tracing_overhead.py --over 150 --near-share 0.8 --duration 20 --rounds 2

Every request is uncached (L1 off, no Redis, 20 000 distinct images), so each one runs the
whole device path and, traced, makes 7 spans (the server span, preprocess, queue.wait, batch,
forward, meshing, export). The load tester sends no traceparent (--no-trace), so the server's
own sampler decides. Configurations are interleaved round by round (off, 100 %, 1 %, off, ...)
so the shared machine's drift falls on all of them alike; each run gets a fresh server.
Results: a table on stdout and JSON (--out).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the Jaeger process helper of the tracing tests

from fixtures.jaeger import JaegerProcess  # noqa: E402

from gencluster.loadtest import LoadConfig, url_target  # noqa: E402
from gencluster.loadtest.profiles import run_profile  # noqa: E402

CONFIGS = {"off": None, "on 100 %": "1", "on 1 %": "0.01"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(ratio: str | None, jaeger: JaegerProcess, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update({"GENCLUSTER_L1_CACHE_BYTES": "0", "GENCLUSTER_REDIS_MODE": "disabled",
                "PYTHONPATH": str(ROOT / "workload")})
    if ratio is not None:
        env.update({"OTEL_EXPORTER_OTLP_ENDPOINT": jaeger.otlp_url,
                    "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
                    "OTEL_TRACES_SAMPLER_ARG": ratio})
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gencluster_workload", "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--torch-threads", "1", "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server not ready; see {log}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process, all its threads (exporter included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def spans_received(jaeger: JaegerProcess) -> float:
    """Spans Jaeger's collector stored so far (its own Prometheus counter)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{jaeger.ports['admin']}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("jaeger_collector_spans_saved_by_svc_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_load(url: str, rate: float, duration: float, seed: int) -> dict[str, Any]:
    config = LoadConfig(target=url_target([url]), rate=rate, duration_s=duration, warmup_s=5.0,
                        pool=20000, zipf=0.0, seed=seed, resolution=64, concurrency=512,
                        trace_ratio=None, max_seconds=duration + 60)
    report = asyncio.run(run_profile(config))
    o = report.overall
    return {"throughput_rps": o["throughput_rps"], "p50_ms": o["latency_ms"]["p50"],
            "p95_ms": o["latency_ms"]["p95"], "p99_ms": o["latency_ms"]["p99"],
            "error_rate": o["error_rate"], "client_lag_p99_ms": report.client["lag_ms"].get("p99"),
            "issued": report.client["issued"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--over", type=float, default=150.0, help="req/s above saturation (throughput)")
    ap.add_argument("--near-share", type=float, default=0.8,
                    help="the near-saturation rate, as a share of the capacity measured first "
                         "(tracing off, --over offered, 10 s): the machine decides it, not a guess")
    ap.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tracing-overhead-"))
    jaeger = JaegerProcess(tmp).start()
    runs: list[dict[str, Any]] = []
    try:
        proc, url = start_server(None, jaeger, tmp / "server.log")
        try:
            capacity = run_load(url, args.over, 10.0, seed=99)["throughput_rps"]
        finally:
            proc.terminate()
            proc.wait(30)
        args.near = round(args.near_share * capacity, 1)
        print(json.dumps({"capacity_rps": capacity, "near_rate": args.near}), flush=True)
        for rnd in range(args.rounds):
            for name, ratio in CONFIGS.items():
                for load, rate in (("near", args.near), ("over", args.over)):
                    proc, url = start_server(ratio, jaeger, tmp / "server.log")
                    try:
                        before, cpu0 = spans_received(jaeger), cpu_seconds(proc.pid)
                        result = run_load(url, rate, args.duration, seed=rnd + 1)
                        time.sleep(6.0)  # the batch span processor exports every 5 s
                        result["spans_exported"] = spans_received(jaeger) - before
                        # CPU per request: what tracing costs, whatever else the machine runs
                        result["server_cpu_ms_per_request"] = round(
                            1000.0 * (cpu_seconds(proc.pid) - cpu0) / max(1, result["issued"]), 3)
                    finally:
                        proc.terminate()
                        proc.wait(30)
                    runs.append({"round": rnd, "config": name, "load": load, "rate": rate, **result})
                    print(json.dumps(runs[-1]), flush=True)
    finally:
        jaeger.stop()
    summary = summarize(runs)
    print(table(summary, args))
    if args.out:
        args.out.write_text(json.dumps({"capacity_rps": capacity, "near_rate": args.near,
                                        "runs": runs, "summary": summary,
                                        "load_average": os.getloadavg()}, indent=1) + "\n")
    return 0


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name in CONFIGS:
        near = [r for r in runs if r["config"] == name and r["load"] == "near"]
        over = [r for r in runs if r["config"] == name and r["load"] == "over"]
        out[name] = {
            "near_p95_ms": statistics.median(r["p95_ms"] for r in near),
            "near_p50_ms": statistics.median(r["p50_ms"] for r in near),
            "near_throughput_rps": statistics.median(r["throughput_rps"] for r in near),
            "over_throughput_rps": statistics.median(r["throughput_rps"] for r in over),
            "spans_per_request": statistics.median(
                r["spans_exported"] / max(1, r["issued"]) for r in near),
            "cpu_ms_per_request": statistics.median(r["server_cpu_ms_per_request"] for r in near),
        }
    return out


def table(summary: dict[str, dict[str, float]], args: argparse.Namespace) -> str:
    base = summary["off"]
    lines = [f"| tracing | p95 at {args.near:g}/s (ms) | vs off | p50 (ms) | max throughput at "
             f"{args.over:g}/s offered (2xx/s) | vs off | server CPU per request (ms) | vs off "
             "| spans exported per request |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, s in summary.items():
        dp = 100.0 * (s["near_p95_ms"] / base["near_p95_ms"] - 1.0)
        dt = 100.0 * (s["over_throughput_rps"] / base["over_throughput_rps"] - 1.0)
        dc = 100.0 * (s["cpu_ms_per_request"] / base["cpu_ms_per_request"] - 1.0)
        lines.append(f"| {name} | {s['near_p95_ms']:.1f} | {dp:+.1f} % | {s['near_p50_ms']:.1f} | "
                     f"{s['over_throughput_rps']:.1f} | {dt:+.1f} % | "
                     f"{s['cpu_ms_per_request']:.2f} | {dc:+.1f} % | {s['spans_per_request']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
