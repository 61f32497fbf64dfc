"""The autoscaling benchmarks of docs/benchmarks.md, in one command:

    python -m gencluster.simulate.bench [--quick] [--json FILE]

- step: reaction to the 5x step trace, gencluster vs the HPA baseline in the same run;
- bursty: SLO-violation minutes and GPU-seconds, gencluster vs HPA (and KEDA);
- batching: the highest steady load 4 pods sustain within the SLO (p95 <= SLO, <= 0.1 %
  dropped), adaptive batch size vs every fixed size, found by bisection;
- memory: the predictive memory alert's lead time on the leak trace and its precision over all
  shipped traces and seeds.
All runs use the bench spec (operator/gencluster/simulate/specs/bench.yaml) unless told
otherwise, and are deterministic. The loop-cost benchmark is gencluster.simulate.loopbench.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..api.spec import GenerationClusterSpec
from .cli import load_spec
from .model import ModelParams
from .policies import make
from .run import arrivals, run
from .traces import SHIPPED, Trace, load

BENCH_SPEC = Path(__file__).parent / "specs" / "bench.yaml"
FIXED_SIZES = (1, 2, 4, 6, 8, 10, 12, 14, 16, 20, 24, 32)
PODS = 4


def compare(trace_name: str, spec: GenerationClusterSpec, names: list[str],
            seed: int = 1) -> list[dict[str, Any]]:
    trace = load(trace_name)
    arr = arrivals(trace, seed)
    return [run(trace, spec, make(n, spec, ModelParams()), ModelParams(), seed, arr)
            for n in names]


def _steady(rate: float, seconds: int) -> Trace:
    import numpy as np

    rng = np.random.default_rng(11)
    reqs = rng.poisson(rate, seconds).astype(int)
    return Trace(f"steady-{rate:.1f}", tuple(int(x) for x in reqs), (0.0,) * seconds)


def sustainable(policy: str, batch: int | None, spec: GenerationClusterSpec, seconds: int,
                warmup: int, iterations: int) -> float:
    """Highest steady request rate served within the SLO (bisection)."""
    params = ModelParams()

    def ok(rate: float) -> bool:
        t = _steady(rate, seconds)
        r = run(t, spec, make(policy, spec, params, batch), params, 1, measure_from=warmup)
        slo = spec.batching.latency_slo_ms
        return (r["p95_ms"] is not None and r["p95_ms"] <= slo
                and r["dropped"] <= 0.001 * r["requests"]
                and r["slo_violation_minutes"] == 0)

    lo, hi = 0.5, PODS * params.throughput(spec.batching.max) * 1.2
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def batching(spec: GenerationClusterSpec, quick: bool) -> dict[str, Any]:
    pinned = spec.model_copy(update={"replicas": spec.replicas.model_copy(
        update={"min": PODS, "max": PODS})})
    seconds, warmup, its = (600, 240, 6) if quick else (900, 300, 8)
    fixed = {b: sustainable(f"fixed:{PODS}", b, pinned, seconds, warmup, its)
             for b in FIXED_SIZES}
    adaptive = sustainable("gencluster", None, pinned, seconds, warmup, its)
    best = max(fixed, key=lambda b: fixed[b])
    return {"pods": PODS, "adaptive_rps": round(adaptive, 2),
            "fixed_rps": {str(b): round(v, 2) for b, v in fixed.items()},
            "best_fixed_batch": best, "best_fixed_rps": round(fixed[best], 2),
            "ratio": round(adaptive / fixed[best], 3)}


def memory(spec: GenerationClusterSpec, seeds: list[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"per_trace": {}, "alerts": 0, "true": 0, "leak_leads_s": []}
    for name in SHIPPED:
        for seed in seeds:
            (r,) = compare(name, spec, ["gencluster"], seed)
            row = out["per_trace"].setdefault(name, {"alerts": 0, "true": 0, "exhaustions": 0})
            row["alerts"] += r["memory_alerts"]
            row["true"] += r["memory_alerts_true"]
            row["exhaustions"] += r["ooms"] + r["crashes"]
            out["alerts"] += r["memory_alerts"]
            out["true"] += r["memory_alerts_true"]
            if name == "leak":
                out["leak_leads_s"] += r["memory_alert_lead_s"]
    out["precision"] = round(out["true"] / out["alerts"], 3) if out["alerts"] else None
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gencluster.simulate.bench")
    p.add_argument("--spec", default=str(BENCH_SPEC))
    p.add_argument("--quick", action="store_true", help="shorter batching search, one seed")
    p.add_argument("--json", help="also write the figures to this file")
    args = p.parse_args(argv)
    spec = load_spec(args.spec)
    default_interval = spec.model_copy(update={"autoscaling": spec.autoscaling.model_copy(
        update={"interval_seconds": 15})})
    figures: dict[str, Any] = {
        "step": compare("step5x", spec, ["gencluster", "hpa", "keda"]),
        "step_15s": compare("step5x", default_interval, ["gencluster"]),
        "bursty": compare("bursty", spec, ["gencluster", "hpa", "keda",
                                           f"fixed:{spec.replicas.max}"]),
        "bursty_15s": compare("bursty", default_interval, ["gencluster"]),
        "memory": memory(spec, [1] if args.quick else [1, 2, 3]),
        "batching": batching(spec, args.quick),
    }
    text = json.dumps(figures, indent=1, sort_keys=True)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
