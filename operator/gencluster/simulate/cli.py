"""`gencluster simulate --trace FILE [--policy P] [--spec FILE] [--json]`.

Policies: gencluster | hpa | keda | kpa | oracle | fixed:N | all (gencluster, hpa, keda, kpa,
fixed:<replicas.max> and oracle), or a comma-separated list. --baseline-batch N|best: the
baselines' fixed batch size, or the best of 1, 2, 4, ... batching.max per baseline.
--json prints one JSON object per policy per line, with the alerts that fired
(`alerts: [{rule, severity, fired_at, resolved_at}]`, seconds from the trace start).

`gencluster simulate incidents [--set train|holdout|all]`: the labelled incident corpus and the
alerts' recall, precision, detection delay and lead time on it (simulate/incidents.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from ..api.spec import GenerationClusterSpec, WorkloadSpec, parse_spec
from .model import ModelParams
from .policies import make
from .run import arrivals
from .sweep import run_policy
from .traces import load

COLUMNS = ("policy", "slo_violation_minutes", "p95_ms", "p99_ms", "gpu_seconds", "cost",
           "cost_per_1k_requests", "utilization_percent", "saving_percent", "scale_events",
           "dropped", "reaction_seconds", "mean_replicas", "served_rps", "final_batch",
           "baseline_batch")


def load_spec(path: str | None) -> GenerationClusterSpec:
    """A GenerationCluster YAML (or just its spec); the CRD defaults when no file is given."""
    if path is None:
        return GenerationClusterSpec(workload=WorkloadSpec(image="simulated"))
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: not a YAML mapping")
    raw = doc.get("spec", doc) if doc.get("kind") == "GenerationCluster" or "spec" in doc else doc
    raw = dict(raw)
    raw.setdefault("workload", {"image": "simulated"})
    return parse_spec(raw)


def policies(arg: str, spec: GenerationClusterSpec) -> list[str]:
    if arg == "all":
        return ["gencluster", "hpa", "keda", "kpa", f"fixed:{spec.replicas.max}", "oracle"]
    return [p.strip() for p in arg.split(",") if p.strip()]


def _batch_arg(x: str) -> int | str:
    if x == "best":
        return x
    n = int(x)
    if n < 1:
        raise argparse.ArgumentTypeError("a batch size >= 1, or best")
    return n


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gencluster simulate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--trace", required=True,
                   help="CSV second,requests[,leak_percent_per_min], or a shipped trace name "
                        "(steady, diurnal, bursty, step5x, leak)")
    p.add_argument("--policy", default="all",
                   help="gencluster | hpa | keda | kpa | oracle | fixed:N | all, or a list")
    p.add_argument("--spec", help="GenerationCluster YAML (defaults if absent)")
    p.add_argument("--json", action="store_true", help="one JSON object per policy per line")
    p.add_argument("--seed", type=int, default=1, help="seed of arrivals, routing, start delays")
    p.add_argument("--baseline-batch", type=_batch_arg, default=None,
                   help="batch size of the baselines, or `best` (sweep 1, 2, 4, ... "
                        "batching.max per baseline; default: batching.initial)")
    return p


def main(argv: list[str]) -> int:
    if argv[:1] == ["incidents"]:  # `gencluster simulate incidents`: the alert corpus
        from .incidents import main as incidents_main

        return incidents_main(argv[1:])
    args = parser().parse_args(argv)
    try:
        spec = load_spec(args.spec)
        trace = load(args.trace)
        names = policies(args.policy, spec)
        for n in names:  # validate every name before the first (long) run
            make(n, spec, ModelParams(),
                 None if args.baseline_batch in (None, "best") else int(args.baseline_batch))
    except (OSError, ValueError) as err:
        print(f"gencluster simulate: {err}", file=sys.stderr)
        return 2
    arr = arrivals(trace, args.seed)
    results: list[dict[str, Any]] = []
    for name in names:
        res = run_policy(name, trace, spec, ModelParams(), args.seed, arr, args.baseline_batch)
        results.append(res)
        if args.json:
            print(json.dumps(res, sort_keys=True), flush=True)
    if not args.json:
        print(f"trace {trace.name}: {len(trace)} s, {sum(trace.requests)} requests, "
              f"SLO p95 {spec.batching.latency_slo_ms} ms")
        print("  ".join(f"{c:>12}" for c in COLUMNS))
        for r in results:
            print("  ".join(f"{'-' if r.get(c) is None else r[c]!s:>12}" for c in COLUMNS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
