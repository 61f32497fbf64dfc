"""`--baseline-batch best`: each baseline at every batch size 1, 2, 4, ... up to batching.max,
keeping the one with the fewest SLO-violation minutes (ties: fewer GPU-seconds, then fewer
dropped requests). The chosen size is the record's `baseline_batch`; `batch_sweep` lists what
every size scored, so the choice can be checked."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..api.spec import GenerationClusterSpec
from .model import ModelParams, Recorder
from .policies import make
from .traces import Trace

BASELINES = ("hpa", "keda", "kpa")


def is_baseline(name: str) -> bool:
    return name in BASELINES or name.startswith("fixed:")


def batch_sizes(spec: GenerationClusterSpec) -> list[int]:
    """1, 2, 4, ... up to batching.max (and batching.max itself), within batching.min."""
    b, out = 1, []
    while b < spec.batching.max:
        if b >= spec.batching.min:
            out.append(b)
        b *= 2
    out.append(spec.batching.max)
    return out


def key(r: dict[str, Any]) -> tuple[int, int, int]:
    return (r["slo_violation_minutes"], r["gpu_seconds"], r["dropped"])


def run_policy(name: str, trace: Trace, spec: GenerationClusterSpec, params: ModelParams,
               seed: int, arrivals: Sequence[np.ndarray],
               baseline_batch: int | str | None) -> dict[str, Any]:
    """One policy's record: baselines at `baseline_batch` (a size, `best`, or None for
    batching.initial), the oracle by its own search, gencluster as configured."""
    from .oracle import best as oracle_best
    from .run import run

    if name == "oracle":
        return oracle_best(trace, spec, params, seed, arrivals)
    if not is_baseline(name):
        return run(trace, spec, make(name, spec, params), params, seed, arrivals)
    if baseline_batch != "best":
        b = spec.batching.initial if baseline_batch is None else int(baseline_batch)
        res = run(trace, spec, make(name, spec, params, b), params, seed, arrivals)
        res["baseline_batch"] = b
        return res
    tried: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    for b in reversed(batch_sizes(spec)):  # big batches first: they usually win, and bound
        bound = None if best is None else LostCause(trace, best["slo_violation_minutes"])
        res = run(trace, spec, make(name, spec, params, b), params, seed, arrivals, stop=bound)
        res["baseline_batch"] = b
        tried.append(res)
        if not res.get("aborted") and (best is None or key(res) < key(best)):
            best = res
    assert best is not None
    best["batch_sweep"] = {str(r["baseline_batch"]): "worse (stopped)" if r.get("aborted") else
                           [r["slo_violation_minutes"], r["gpu_seconds"], r["dropped"]]
                           for r in sorted(tried, key=lambda r: r["baseline_batch"])}
    return best


class LostCause:
    """Stops a sweep run once it has more certain SLO-violation minutes than the best so far:
    a minute in which more than 5 % of the arrivals were already dropped or failed has its p95
    infinite whatever happens next, so the run cannot win (minutes only add up)."""

    def __init__(self, trace: Trace, best_minutes: int) -> None:
        self.best = best_minutes
        self.arrivals: dict[int, int] = {}
        for s, n in enumerate(trace.requests):
            self.arrivals[s // 60] = self.arrivals.get(s // 60, 0) + int(n)
        self.seen = 0
        self.failed: dict[int, int] = {}
        self.certain: set[int] = set()

    def __call__(self, rec: Recorder) -> bool:
        lat, sec = rec.latency, rec.arrival_second
        for i in range(self.seen, len(lat)):
            if lat[i] == math.inf:
                m = sec[i] // 60
                self.failed[m] = self.failed.get(m, 0) + 1
                n = self.arrivals.get(m, 0)
                # p95 ("higher") is the element at ceil(0.95 (n - 1)): more failures than the
                # n - that index elements above it make it infinite (one more, for float safety)
                if n and self.failed[m] > n - math.ceil(0.95 * (n - 1)):
                    self.certain.add(m)
        self.seen = len(lat)
        return len(self.certain) > self.best
