"""Benchmarks of the workload, side by side in one run:

1. the model's forward pass alone, batch size 1..32 (images/s, ms per batch);
2. the real server over HTTP on 127.0.0.1: throughput and p50/p95 latency with the batcher's max
   batch size set to 1..32 through the admin API, same closed-loop load for each;
3. cache latency: L1 hit, Redis hit (a second server with L1 off, same Redis), and miss.

    python -m gencluster_workload.bench --out bench.json

Why end to end: the operator sees the server, not the network; batching pays off only if
queueing, HTTP and meshing leave room for it. Needs redis-server on PATH for (3).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import synthetic
from .model import ShippedModel

BATCH_SIZES = (1, 2, 4, 8, 16, 32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def make_images(n: int, seed: int = 11, size: int = 96) -> list[bytes]:
    from PIL import Image

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = synthetic.random_shape(rng, synthetic.KINDS[i % len(synthetic.KINDS)])
        buf = io.BytesIO()
        arr = (synthetic.render(shape.sdf, rng, size) * 255).astype(np.uint8)
        Image.fromarray(arr).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


# -- 1. the model alone ----------------------------------------------------------------
def bench_forward(threads: int, repeats: int = 10) -> list[dict[str, Any]]:
    torch.set_num_threads(threads)
    model = ShippedModel(torch.device("cpu"))
    rows = []
    for b in BATCH_SIZES:
        x = torch.rand(b, 3, 64, 64)
        model.forward_batch(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model.forward_batch(x)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append({"batch": b, "ms_per_batch": round(med * 1000, 2), "images_per_s": round(b / med, 1)})
    return rows


# -- processes ---------------------------------------------------------------------------
class Proc:
    def __init__(self, args: list[str], env: dict[str, str] | None = None, log: Path | None = None):
        self.log = log
        out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
        self.p = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(30)
            except subprocess.TimeoutExpired:
                self.p.kill()


def start_redis(tmp: Path, password: str) -> tuple[Proc, int] | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    port = free_port()
    acl = tmp / "users.acl"
    acl.write_text(f"user default off\nuser bench on >{password} ~gencl:bench:* +@all\n")
    proc = Proc(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--aclfile",
            str(acl),
            "--dir",
            str(tmp),
        ]
    )
    time.sleep(0.3)
    return proc, port


async def wait_ready(url: str, timeout: float = 120) -> None:
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            try:
                async with s.get(url + "/readyz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


def start_server(tmp: Path, name: str, env_extra: dict[str, str], threads: int) -> tuple[Proc, str]:
    port = free_port()
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH", "")) if p)
    env.update(
        {
            "GENCLUSTER_HOST": "127.0.0.1",
            "GENCLUSTER_PORT": str(port),
            "GENCLUSTER_DEVICE": "cpu",
            "GENCLUSTER_TORCH_THREADS": str(threads),
            "GENCLUSTER_QUEUE_MAX": "1024",
            "GENCLUSTER_LOG_LEVEL": "warning",
            **env_extra,
        }
    )
    proc = Proc([sys.executable, "-m", "gencluster_workload"], env, tmp / f"{name}.log")
    return proc, f"http://127.0.0.1:{port}"


# -- 2. the server under load -------------------------------------------------------------
async def closed_loop(
    url: str,
    images: list[bytes],
    total: int,
    concurrency: int,
    params: dict[str, str],
    headers: dict[str, str],
) -> dict[str, Any]:
    import aiohttp

    latencies: list[float] = []
    batch_sizes: list[int] = []
    errors = 0
    counter = iter(range(total))
    conn = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=conn) as s:

        async def worker() -> None:
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                async with s.post(
                    url + "/v1/generate",
                    data=images[i % len(images)],
                    params=params,
                    headers={"Content-Type": "image/png", **headers},
                ) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                        continue
                    batch_sizes.append(int(r.headers.get("X-Batch-Size", "0")))
                latencies.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    return {
        "requests": total,
        "errors": errors,
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
        "mean_batch": round(statistics.mean(batch_sizes), 2) if batch_sizes else 0,
    }


async def bench_server(
    url: str, token: str, images: list[bytes], total: int, concurrency: int, resolution: int, delay_ms: int
) -> list[dict[str, Any]]:
    import aiohttp

    rows = []
    params = {"resolution": str(resolution), "format": "glb"}
    nocache = {"Cache-Control": "no-cache"}
    async with aiohttp.ClientSession() as s:
        for b in BATCH_SIZES:
            async with s.put(
                url + "/admin/batching",
                json={"maxBatchSize": b, "maxQueueDelayMs": delay_ms},
                headers={"Authorization": f"Bearer {token}"},
            ) as r:
                r.raise_for_status()
            await closed_loop(url, images, concurrency, concurrency, params, nocache)  # warm
            row = await closed_loop(url, images, total, concurrency, params, nocache)
            rows.append({"max_batch": b, **row})
            print(f"  max batch {b:>2}: {row}", flush=True)
    return rows


# -- 3. cache tiers ---------------------------------------------------------------------
async def timed_requests(url: str, images: list[bytes], params: dict[str, str], expect: str) -> list[float]:
    import aiohttp

    out = []
    async with aiohttp.ClientSession() as s:
        for im in images:
            t0 = time.perf_counter()
            async with s.post(
                url + "/v1/generate", data=im, params=params, headers={"Content-Type": "image/png"}
            ) as r:
                await r.read()
                assert r.status == 200, r.status
                got = r.headers["X-Cache"]
            out.append(time.perf_counter() - t0)
            if got != expect:
                raise RuntimeError(f"expected X-Cache {expect}, got {got}")
    return out


def summarise(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p95_ms": round(percentile(values, 95) * 1000, 2),
    }


async def bench_cache(url_a: str, url_b: str | None, images: list[bytes], resolution: int) -> dict[str, Any]:
    params = {"resolution": str(resolution), "format": "glb"}
    result: dict[str, Any] = {"resolution": resolution}
    result["miss"] = summarise(await timed_requests(url_a, images, params, "miss"))
    result["hit_l1"] = summarise(await timed_requests(url_a, images * 3, params, "hit-l1"))
    if url_b is not None:
        await asyncio.sleep(1.0)  # background Redis writes of the misses
        result["hit_redis"] = summarise(await timed_requests(url_b, images, params, "hit-redis"))
    return result


# -- main -------------------------------------------------------------------------------
async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="gencluster-bench-"))
    token = secrets.token_hex(8)
    procs: list[Proc] = []
    try:
        print("forward pass alone:", flush=True)
        forward = bench_forward(args.threads)
        for row in forward:
            print(f"  {row}", flush=True)
        images = make_images(args.images)
        redis_pw = secrets.token_hex(8)
        redis = start_redis(tmp, redis_pw)
        redis_env: dict[str, str] = {}
        if redis is not None:
            procs.append(redis[0])
            redis_env = {
                "GENCLUSTER_REDIS_MODE": "standalone",
                "GENCLUSTER_REDIS_URL": f"redis://127.0.0.1:{redis[1]}",
                "GENCLUSTER_REDIS_USERNAME": "bench",
                "GENCLUSTER_REDIS_PASSWORD": redis_pw,
                "GENCLUSTER_REDIS_KEY_PREFIX": "gencl:bench:",
            }
        a, url_a = start_server(tmp, "a", {**redis_env, "GENCLUSTER_ADMIN_TOKEN": token}, args.threads)
        procs.append(a)
        await wait_ready(url_a)
        print(
            f"server, closed loop of {args.concurrency} clients, {args.requests} requests, "
            f"resolution {args.resolution}:",
            flush=True,
        )
        server_rows = await bench_server(
            url_a, token, images, args.requests, args.concurrency, args.resolution, args.delay_ms
        )
        url_b = None
        if redis is not None:
            b, url_b = start_server(tmp, "b", {**redis_env, "GENCLUSTER_L1_CACHE_BYTES": "0"}, args.threads)
            procs.append(b)
            await wait_ready(url_b)
        fresh = make_images(args.cache_images, seed=99)
        cache = await bench_cache(url_a, url_b, fresh, args.resolution)
        print(f"cache: {cache}", flush=True)
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": str(torch.__version__),
            "torch_threads": args.threads,
            "loadavg_at_end": os.getloadavg(),
        },
        "settings": {
            "requests": args.requests,
            "concurrency": args.concurrency,
            "resolution": args.resolution,
            "max_queue_delay_ms": args.delay_ms,
        },
        "forward": forward,
        "server": server_rows,
        "cache": cache,
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        "| batch | forward ms/batch | forward images/s | server max batch | mean batch | "
        "throughput req/s | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for f, s in zip(result["forward"], result["server"], strict=True):
        lines.append(
            f"| {f['batch']} | {f['ms_per_batch']} | {f['images_per_s']} | "
            f"{s['max_batch']} | {s['mean_batch']} | {s['throughput_rps']} | "
            f"{s['p50_ms']} | {s['p95_ms']} |"
        )
    c = result["cache"]
    lines += ["", "| path | n | p50 ms | p95 ms |", "|---|---|---|---|"]
    for k in ("miss", "hit_redis", "hit_l1"):
        if k in c:
            lines.append(f"| {k} | {c[k]['n']} | {c[k]['p50_ms']} | {c[k]['p95_ms']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m gencluster_workload.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--requests", type=int, default=600, help="requests per batch size")
    p.add_argument("--concurrency", type=int, default=32, help="closed-loop clients")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--delay-ms", type=int, default=5, help="max queue delay for every run")
    p.add_argument("--threads", type=int, default=1, help="torch threads (server and forward)")
    p.add_argument("--images", type=int, default=64, help="distinct input images")
    p.add_argument("--cache-images", type=int, default=20)
    p.add_argument("--out", default="", help="write the JSON result here")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    result = asyncio.run(run(args))
    print(markdown(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
