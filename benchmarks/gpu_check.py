#!/usr/bin/env python3
"""One short GPU check of the workload (< 3 minutes), for a machine with CUDA:

  python benchmarks/gpu_check.py OUT.json [--budget-s 150]

1. device and torch CUDA memory readings after loading the shipped model;
2. pynvml device/process readings next to torch's (and cudaMemGetInfo), before and after work;
3. forward throughput vs batch size (1..256) with CUDA-event timing and peak memory per batch,
   against the model's own activation estimate;
4. a real CUDA out-of-memory: the process's memory fraction is capped so a big batch cannot fit,
   and the server's BatchRunner must split and retry it (results equal to unsplit ones);
5. the dynamic batcher (asyncio, one device thread) under concurrent submitters: throughput and
   p50/p95 vs max batch size;
6. optional: marching cubes (and trimesh export) timing when skimage (and trimesh) are present.

Needs only torch, numpy, pillow, nvidia-ml-py (pynvml) and prometheus-client. Run from the
repository root (it imports workload/gencluster_workload without installing it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workload"))

import numpy as np
import torch

from gencluster_workload.batcher import DynamicBatcher
from gencluster_workload.config import BatchSettings
from gencluster_workload.gpu_memory import MemoryMonitor
from gencluster_workload.inference import BatchRunner, ItemResult
from gencluster_workload.model import ShippedModel

MIB = 1024 * 1024
T0 = time.monotonic()


def elapsed() -> float:
    return round(time.monotonic() - T0, 1)


def log(msg: str) -> None:
    print(f"[{elapsed():6.1f}s] {msg}", flush=True)


def readings(mon: MemoryMonitor) -> dict[str, Any]:
    r = mon.read()
    out: dict[str, Any] = {
        "torch_allocated_mib": round(torch.cuda.memory_allocated(mon.index) / MIB, 1),
        "torch_reserved_mib": round(torch.cuda.memory_reserved(mon.index) / MIB, 1),
        "torch_max_allocated_mib": round(torch.cuda.max_memory_allocated(mon.index) / MIB, 1),
        "contract": {
            "used": r.used_bytes,
            "total": r.total_bytes,
            "reserved": r.reserved_bytes,
            "fragmentation_ratio": r.fragmentation_ratio,
            "pressure": r.pressure,
            "source": r.source,
        },
    }
    free, total = torch.cuda.mem_get_info(mon.index)
    out["cuda_mem_get_info_mib"] = {
        "free": round(free / MIB, 1),
        "total": round(total / MIB, 1),
        "used": round((total - free) / MIB, 1),
    }
    if r.nvml is not None:
        n = r.nvml
        out["nvml_mib"] = {
            "device_total": round(n["device_total_bytes"] / MIB, 1),
            "device_used": round(n["device_used_bytes"] / MIB, 1),
            "process_used": (
                round(n["process_used_bytes"] / MIB, 1) if n["process_used_bytes"] is not None else None
            ),
        }
        # What NVML sees this process hold beyond torch's cache: CUDA context, cuDNN/cuBLAS
        # workspaces, fragmentation outside the caching allocator.
        if n["process_used_bytes"] is not None:
            out["nvml_process_minus_torch_reserved_mib"] = round(
                (n["process_used_bytes"] - torch.cuda.memory_reserved(mon.index)) / MIB, 1
            )
    return out


def bench_forward(model: ShippedModel, sizes: list[int], budget_s: float) -> list[dict[str, Any]]:
    rows = []
    for b in sizes:
        if elapsed() > budget_s:
            rows.append({"batch": b, "skipped": "time budget"})
            continue
        x = torch.rand(b, 3, 64, 64)
        model.forward_batch(x)  # warm (kernels, allocator)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        times = []
        for _ in range(10):
            start = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            end = torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]
            t0 = time.perf_counter()
            start.record()
            model.forward_batch(x)  # includes host->device copy and device->host of results
            end.record()
            torch.cuda.synchronize()
            times.append((start.elapsed_time(end), (time.perf_counter() - t0) * 1000))
        gpu_ms = statistics.median(t for t, _ in times)
        wall_ms = statistics.median(w for _, w in times)
        peak = torch.cuda.max_memory_allocated() - base
        rows.append(
            {
                "batch": b,
                "gpu_ms": round(gpu_ms, 3),
                "wall_ms": round(wall_ms, 3),
                "images_per_s": round(b / (wall_ms / 1000), 1),
                "peak_extra_mib": round(peak / MIB, 2),
                "estimate_mib": round(model.estimate_batch_bytes(b) / MIB, 2),
            }
        )
        log(f"forward batch {b}: {rows[-1]}")
    return rows


def real_oom_split(model: ShippedModel, mon: MemoryMonitor) -> dict[str, Any]:
    """Cap this process's CUDA memory so a batch of 256 cannot fit; the runner must split it."""
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    allocated = torch.cuda.memory_allocated()
    per_item = model.estimate_batch_bytes(1)
    cap = allocated + 16 * per_item + 32 * MIB
    torch.cuda.set_per_process_memory_fraction(min(0.95, cap / total), 0)
    ooms: list[int] = []
    forwards: list[int] = []
    runner = BatchRunner(model, mon, on_forward=forwards.append, on_oom=ooms.append)
    rng = np.random.default_rng(0)
    xs = [torch.from_numpy(rng.random((3, 64, 64), dtype=np.float32)) for _ in range(256)]
    try:
        t0 = time.perf_counter()
        out = runner.run(xs)
        wall = time.perf_counter() - t0
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0, 0)
        torch.cuda.empty_cache()
    ok = [r for r in out if isinstance(r, ItemResult)]
    check = torch.stack(xs[:4])
    ref = model.forward_batch(check).numpy()
    # GPU kernels (cuDNN/TF32 algorithm choice) differ by batch size, so compare the occupancy
    # grids with a tolerance and report the largest difference, and the voxels whose
    # inside/outside decision (0.5) flips.
    n = min(4, len(ok))
    max_diff = max(float(np.abs(ok[i].grid - ref[i]).max()) for i in range(n))
    flips = sum(int(((ok[i].grid > 0.5) != (ref[i] > 0.5)).sum()) for i in range(n))
    same = all(np.allclose(ok[i].grid, ref[i], atol=1e-2) for i in range(n))
    return {
        "cap_mib": round(cap / MIB, 1),
        "items": len(xs),
        "succeeded": len(ok),
        "failed": [repr(r)[:200] for r in out if not isinstance(r, ItemResult)][:3],
        "oom_batch_sizes": ooms,
        "forward_batch_sizes": sorted(set(forwards)),
        "cleanup_events": len(mon.cleanups),
        "results_match_unsplit": same,
        "max_abs_diff_vs_unsplit": max_diff,
        "voxel_decisions_flipped": flips,
        "seconds": round(wall, 2),
    }


async def bench_batcher(
    model: ShippedModel, mon: MemoryMonitor, sizes: list[int], requests: int, concurrency: int
) -> list[dict[str, Any]]:
    runner = BatchRunner(model, mon)
    rng = np.random.default_rng(1)
    xs = [torch.from_numpy(rng.random((3, 64, 64), dtype=np.float32)) for _ in range(64)]
    rows = []
    with ThreadPoolExecutor(1, thread_name_prefix="device") as pool:
        batcher: DynamicBatcher[torch.Tensor, ItemResult] = DynamicBatcher(
            runner.run, pool, BatchSettings(1, 2), queue_max=100_000
        )
        batcher.start()
        for b in sizes:
            batcher.update(BatchSettings(b, 2))
            row = await _closed_loop(batcher, xs, requests, concurrency)
            rows.append({"max_batch": b, **row})
            log(f"batcher max {b}: {rows[-1]}")
        await batcher.stop()
    return rows


async def _closed_loop(
    batcher: DynamicBatcher[torch.Tensor, ItemResult], xs: list[torch.Tensor], requests: int, concurrency: int
) -> dict[str, Any]:
    lat: list[float] = []
    seen: list[int] = []
    counter = iter(range(requests))

    async def client() -> None:
        for i in counter:
            t0 = time.perf_counter()
            res = await batcher.submit(xs[i % len(xs)])
            lat.append(time.perf_counter() - t0)
            seen.append(res.batch_size)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    return {
        "requests": requests,
        "concurrency": concurrency,
        "throughput_rps": round(requests / wall, 1),
        "p50_ms": round(float(np.percentile(lat, 50)) * 1000, 2),
        "p95_ms": round(float(np.percentile(lat, 95)) * 1000, 2),
        "mean_batch": round(statistics.mean(seen), 2),
    }


def bench_meshing(model: ShippedModel) -> dict[str, Any]:
    try:
        from gencluster_workload import meshing
    except Exception as exc:  # pragma: no cover - depends on the machine
        return {"skipped": f"meshing import failed: {exc}"}
    try:
        import skimage  # noqa: F401
    except ImportError:
        return {"skipped": "scikit-image not installed"}
    grid = model.forward_batch(torch.rand(1, 3, 64, 64))[0].numpy()
    grid = np.maximum(grid, 0.0)
    out: dict[str, Any] = {}
    for res in (32, 64, 128):
        t0 = time.perf_counter()
        try:
            verts, faces = meshing.grid_to_arrays(grid, res)
        except meshing.EmptyShape:
            out[str(res)] = {"skipped": "empty prediction for random input"}
            continue
        mc = time.perf_counter() - t0
        entry: dict[str, Any] = {"marching_cubes_ms": round(mc * 1000, 1), "faces": len(faces)}
        try:
            t0 = time.perf_counter()
            entry["glb_bytes"] = len(meshing.export(verts, faces, "glb"))
            entry["export_glb_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        except ImportError:
            entry["export"] = "trimesh not installed"
        out[str(res)] = entry
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="write the JSON result here")
    p.add_argument("--budget-s", type=float, default=150.0, help="stop optional parts after this")
    args = p.parse_args()
    result: dict[str, Any] = {
        "ok": False,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": str(torch.__version__),
    }
    try:
        if not torch.cuda.is_available():
            raise SystemExit("CUDA is not available: this check needs a GPU")
        props = torch.cuda.get_device_properties(0)
        result["device"] = {
            "name": props.name,
            "capability": f"{props.major}.{props.minor}",
            "total_mib": round(props.total_memory / MIB, 1),
            "cuda": torch.version.cuda,
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES", ""),
        }
        torch.set_num_threads(4)
        device = torch.device("cuda:0")
        mon = MemoryMonitor(device)
        result["nvml_error"] = mon._nvml.error if mon._nvml else "no nvml"
        result["memory_before_model"] = readings(mon)
        model = ShippedModel(device)
        torch.cuda.synchronize()
        result["memory_after_model"] = readings(mon)
        log(f"model loaded on {props.name}: {result['memory_after_model']}")

        def section(name: str, fn: Any) -> None:
            """Run one part; a failure is recorded and the next part still runs."""
            try:
                result[name] = fn()
            except Exception:
                result.setdefault("section_errors", {})[name] = traceback.format_exc()
                print(result["section_errors"][name], file=sys.stderr)

        section(
            "forward", lambda: bench_forward(model, [1, 2, 4, 8, 16, 32, 64, 128, 256], args.budget_s * 0.4)
        )
        section("memory_after_forward", lambda: readings(mon))
        section("profile", mon.profile)
        section("oom_split", lambda: real_oom_split(model, mon))
        log(f"real OOM split: {result.get('oom_split')}")
        section("memory_after_oom", lambda: readings(mon))
        section(
            "batcher",
            lambda: asyncio.run(
                bench_batcher(model, mon, [1, 2, 4, 8, 16, 32], requests=1024, concurrency=64)
            ),
        )
        if elapsed() < args.budget_s:
            section("meshing", lambda: bench_meshing(model))
        section("optimization_report", lambda: mon.optimization_report({"maxBatchSize": 32}, 0))
        result["sections_failed"] = sorted(result.get("section_errors", {}))
        result["ok"] = not result["sections_failed"]
    except SystemExit as exc:
        result["error"] = str(exc)
    except Exception:
        result["error"] = traceback.format_exc()
        print(result["error"], file=sys.stderr)
    result["seconds"] = elapsed()
    Path(args.out).write_text(json.dumps(result, indent=2, default=str) + "\n")
    log(f"wrote {args.out} (ok={result['ok']})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
