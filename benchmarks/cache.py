"""Cache-tier benchmarks for docs/benchmarks.md ("## Cache").

    PYTHONPATH=operator:workload python benchmarks/cache.py [--quick] [--json out.json]

1. GET/SET latency (p50/p99, one client, sequential) against a standalone Redis and a 3-master
   Redis Cluster (3 + 3 replicas), through redis-py as the workload ACL user, with the rendered
   configuration. 2. Failover window (longest gap without a successful request on the killed
   master's keys) at cluster-node-timeout 1000 ms and 5000 ms (the rendered default).
3. Hit ratio of a Zipf(1.0) request mix against an exact LRU of N entries in front of M keys,
   and against a real Redis with allkeys-lru (sampled LRU) sized to about N entries.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from redis.asyncio import Redis, RedisCluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tests' fixtures
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "redis"))  # Redis fleet
from redis_fleet import Fleet, RedisNode, make_spec, write_auth_dir
from test_redis_cluster_live import Hammer, keys_in, settle

from gencluster.rediscluster import observe_cluster
from gencluster.rediscluster.model import from_ranges
from gencluster.render.redis import RedisAuth, generate_redis_auth, redis_key_prefix

PREFIX = redis_key_prefix("demo")


def pct(samples: list[float], q: float) -> float:
    return float(np.percentile(np.array(samples) * 1000.0, q))


async def latency(client: Redis | RedisCluster, n: int, size: int) -> dict[str, float]:
    value = b"x" * size
    keys = [f"{PREFIX}lat:{i}" for i in range(n)]
    sets, gets = [], []
    for k in keys:
        t = time.perf_counter()
        await client.set(k, value, ex=600)
        sets.append(time.perf_counter() - t)
    for k in keys:
        t = time.perf_counter()
        await client.get(k)
        gets.append(time.perf_counter() - t)
    return {
        "set_p50_ms": pct(sets, 50),
        "set_p99_ms": pct(sets, 99),
        "get_p50_ms": pct(gets, 50),
        "get_p99_ms": pct(gets, 99),
    }


async def bench_standalone(auth: RedisAuth, root: Path, n: int) -> dict[str, Any]:
    node = RedisNode(
        "demo-redis-0",
        root,
        make_spec("standalone", 256),
        write_auth_dir(root / "auth", auth),
        auth,
        2000,
    )
    node.start()
    try:
        c = Redis(
            host="127.0.0.1",
            port=node.port,
            username=auth.workload_username,
            password=auth.workload_password,
        )
        out = {f"{size}B": await latency(c, n, size) for size in (1024, 102400)}
        await c.aclose()
        return out
    finally:
        node.stop()


async def bench_cluster(auth: RedisAuth, root: Path, n: int) -> dict[str, Any]:
    fleet = Fleet(root, auth, make_spec("cluster", 256), node_timeout_ms=5000)
    try:
        fleet.add(6)
        await settle(fleet, auth, 3, 1)
        rc = RedisCluster(
            host="127.0.0.1",
            port=fleet.nodes[0].port,
            username=auth.workload_username,
            password=auth.workload_password,
        )
        await rc.initialize()
        out = {f"{size}B": await latency(rc, n, size) for size in (1024, 102400)}
        await rc.aclose()
        return out
    finally:
        fleet.stop_all()


async def bench_failover(auth: RedisAuth, root: Path, timeout_ms: int) -> dict[str, Any]:
    fleet = Fleet(root, auth, make_spec("cluster", 64), node_timeout_ms=timeout_ms)
    try:
        fleet.add(6)
        h = (await settle(fleet, auth, 3, 1)).health
        victim = h.shards[0]
        obs = await observe_cluster(fleet.addresses(), auth)
        me = next(m for m in obs.members if m.pod == victim.master_pod).myself
        assert me
        hammer = Hammer(keys_in(set(from_ranges(me.slots)), 50))
        rc = RedisCluster(
            host="127.0.0.1",
            port=fleet.node(victim.replica_pods[0]).port,
            username=auth.workload_username,
            password=auth.workload_password,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
        )
        await rc.initialize()
        task = asyncio.create_task(hammer.run(rc))
        await asyncio.sleep(0.5)
        t_kill = fleet.node(victim.master_pod).kill()
        end = time.monotonic() + 60
        while time.monotonic() < end and not [t for t in hammer.ok_times if t > t_kill + 0.05]:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        hammer.stop = True
        await task
        await rc.aclose()
        return {
            "node_timeout_ms": timeout_ms,
            "window_ms": hammer.window_ms(t_kill),
            "failed_requests": len([t for t in hammer.failures if t >= t_kill]),
            "ok_requests": len(hammer.ok_times),
        }
    finally:
        fleet.stop_all()


def zipf_requests(m: int, r: int, s: float = 1.0, seed: int = 1) -> np.ndarray:
    ranks = np.arange(1, m + 1, dtype=np.float64)
    p = ranks**-s
    p /= p.sum()
    rng = np.random.default_rng(seed)
    keys: np.ndarray = rng.permutation(m)[rng.choice(m, size=r, p=p)]  # hot keys anywhere
    return keys


def lru_hit_ratio(requests: np.ndarray, n: int, warmup: int) -> float:
    cache: OrderedDict[int, None] = OrderedDict()
    hits = 0
    for i, k in enumerate(requests.tolist()):
        if k in cache:
            cache.move_to_end(k)
            if i >= warmup:
                hits += 1
        else:
            cache[k] = None
            if len(cache) > n:
                cache.popitem(last=False)
    return hits / (len(requests) - warmup)


def che_hit_ratio(m: int, n: int, s: float = 1.0) -> float:
    """Che's approximation of LRU's steady-state hit ratio under Zipf(s) (exact within ~1 %)."""
    p = np.arange(1, m + 1, dtype=np.float64) ** -s
    p /= p.sum()
    lo, hi = 0.0, 1.0
    while np.sum(1 - np.exp(-p * hi)) < n:
        hi *= 2
    for _ in range(60):  # characteristic time T: expected distinct keys in T requests = n
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.sum(1 - np.exp(-p * mid)) < n else (lo, mid)
    return float(np.sum(p * (1 - np.exp(-p * hi))))


def entries_for(m: int, target: float) -> int:
    lo, hi = 1, m
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if che_hit_ratio(m, mid) < target else (lo, mid)
    return lo


def bench_che() -> list[dict[str, Any]]:
    rows = []
    for m in (10_000, 100_000, 1_000_000):
        row: dict[str, Any] = {"universe": m}
        for target in (0.80, 0.90, 0.95):
            n = entries_for(m, target)
            row[f"entries_for_{int(target * 100)}pct"] = n
            row[f"fraction_for_{int(target * 100)}pct"] = round(n / m, 3)
        rows.append(row)
    return rows


def bench_zipf(quick: bool) -> list[dict[str, Any]]:
    rows = []
    for m in (10_000,) if quick else (10_000, 100_000):
        reqs = zipf_requests(m, 20 * m if quick or m > 10_000 else 100 * m)
        warm = len(reqs) // 4
        for frac in (0.01, 0.05, 0.10, 0.25, 0.50, 0.60, 0.75):
            n = int(m * frac)
            rows.append(
                {
                    "universe": m,
                    "cache_entries": n,
                    "fraction": frac,
                    "lru_hit_percent": round(100 * lru_hit_ratio(reqs, n, warm), 1),
                    "che_percent": round(100 * che_hit_ratio(m, n), 1),
                }
            )
    return rows


async def bench_redis_lru(auth: RedisAuth, root: Path, quick: bool) -> list[dict[str, Any]]:
    """Replay a Zipf(1.0) mix on a real Redis (allkeys-lru, samples 10) with small maxmemory."""
    m = 10_000
    reqs = zipf_requests(m, 100_000 if quick else 200_000, seed=2)
    rows = []
    for maxmem_mib in (16, 32):
        node = RedisNode(
            f"lru-{maxmem_mib}",
            root,
            make_spec("standalone", maxmem_mib),
            write_auth_dir(root / "auth", auth),
            auth,
            2000,
        )
        node.start()
        try:
            c = Redis(
                host="127.0.0.1",
                port=node.port,
                username=auth.workload_username,
                password=auth.workload_password,
            )
            admin = Redis(
                host="127.0.0.1",
                port=node.port,
                username=auth.admin_username,
                password=auth.admin_password,
            )
            value = b"v" * 4096
            hits = total = 0
            warm = len(reqs) // 4
            sizes = []
            batch = 200
            for i in range(0, len(reqs), batch):
                chunk = reqs[i : i + batch].tolist()
                got = await c.mget([f"{PREFIX}z{k}" for k in chunk])
                async with c.pipeline(transaction=False) as p:
                    for k, v in zip(chunk, got, strict=True):
                        if v is None:
                            p.set(f"{PREFIX}z{k}", value, ex=3600)
                    await p.execute()
                if i >= warm:
                    hits += sum(v is not None for v in got)
                    total += len(got)
                    if i % 20_000 == 0:
                        sizes.append(await admin.dbsize())
            await c.aclose()
            await admin.aclose()
        finally:
            node.stop()
        entries = int(np.median(sizes)) if sizes else 0
        rows.append(
            {
                "maxmemory_mib": maxmem_mib,
                "entries_held": entries,
                "redis_hit_percent": round(100 * hits / total, 1),
                "exact_lru_hit_percent_same_n": round(100 * lru_hit_ratio(reqs, entries, warm), 1),
            }
        )
    return rows


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--skip", nargs="*", default=[], choices=["latency", "failover", "zipf", "lru"])
    args = ap.parse_args()
    auth = generate_redis_auth()
    n = 1000 if args.quick else 5000
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "latency" not in args.skip:
            out["standalone"] = await bench_standalone(auth, root / "sa", n)
            out["cluster"] = await bench_cluster(auth, root / "cl", n)
        if "failover" not in args.skip:
            out["failover"] = [await bench_failover(auth, root / f"fo{t}", t) for t in (1000, 5000)]
        if "lru" not in args.skip:
            out["redis_lru"] = await bench_redis_lru(auth, root / "lru", args.quick)
    if "zipf" not in args.skip:
        out["zipf"] = bench_zipf(args.quick)
        out["che_entries_needed"] = bench_che()
    text = json.dumps(out, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
