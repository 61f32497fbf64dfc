"""The autoscaling scorecard: every policy on every published trace, side by side, in one run.

    python -m gencluster.simulate.scorecard [--json FILE] [--markdown FILE] [--jobs N]
        [--traces a,b] [--spec FILE]
    python -m gencluster.simulate.scorecard --predictive [--json FILE]   # prediction on vs off

Policies: gencluster (specs/scorecard.yaml: CRD defaults, replicas 1..32, 5 s interval,
predictive on), hpa, keda,
kpa and fixed:<replicas.max> each at its best batch size (`--baseline-batch best`), and the
oracle. Per trace, the best tuned baseline is the baseline with the fewest SLO-violation minutes,
then the fewest GPU-seconds: of all of them (fixed:N included, "best"), and of the autoscalers
hpa, keda and kpa ("best autoscaler"; the verdict's `autoscalers`). The targets (issue 11):
- per trace: gencluster has no more SLO-violation minutes, no more dropped requests and no more
  GPU-seconds than the best tuned baseline;
- summed over the traces: at most half the best baselines' violation minutes;
- GPU-seconds within 1.3x the oracle's (per trace and summed).
Each run is deterministic (seed 1). Traces run in parallel over --jobs processes (default 2).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from .cli import load_spec
from .model import ModelParams
from .run import arrivals
from .shapes import PUBLISHED
from .sweep import is_baseline, run_policy
from .traces import load

KEEP = ("policy", "trace", "slo_violation_minutes", "gpu_seconds", "dropped", "p95_ms",
        "reaction_seconds", "mean_replicas", "baseline_batch", "final_batch", "requests",
        "oracle_utilisation", "batch_sweep", "cost", "cost_per_1k_requests", "currency",
        "utilization_percent", "saving_percent")
ORACLE_FACTOR = 1.3
SCORECARD_SPEC = Path(__file__).parent / "specs" / "scorecard.yaml"


def policies(spec_path: str) -> list[str]:
    spec = load_spec(spec_path)
    return ["gencluster", "hpa", "keda", "kpa", f"fixed:{spec.replicas.max}", "oracle"]


def one(args: tuple[str, str, str, int]) -> dict[str, Any]:
    trace_name, policy, spec_path, seed = args
    spec = load_spec(spec_path)
    trace = load(trace_name)
    t0 = time.process_time()
    res = run_policy(policy, trace, spec, ModelParams(), seed, arrivals(trace, seed), "best")
    out = {k: res[k] for k in KEEP if k in res}
    out["cpu_s"] = round(time.process_time() - t0, 1)
    return out


AUTOSCALERS = ("hpa", "keda", "kpa")


def judge(rows: list[dict[str, Any]], pool: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Per trace the best baseline (of `pool`, default every baseline, fixed:N included) and
    the targets; then the sums."""
    by_trace: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        by_trace.setdefault(r["trace"], {})[r["policy"]] = r
    verdicts: dict[str, Any] = {}
    sums: dict[str, Any] = {"ours_min": 0, "best_min": 0, "ours_gpu": 0, "oracle_gpu": 0,
                            "best_gpu": 0}
    for trace, pols in by_trace.items():
        ours, oracle = pols.get("gencluster"), pols.get("oracle")
        bases = [r for p, r in pols.items() if is_baseline(p) and (pool is None or p in pool)]
        if ours is None or not bases:
            continue
        best = min(bases, key=lambda r: (r["slo_violation_minutes"], r["gpu_seconds"]))
        v = {"best_baseline": best["policy"],
             "slo_minutes": [ours["slo_violation_minutes"], best["slo_violation_minutes"]],
             "dropped": [ours["dropped"], best["dropped"]],
             "gpu_seconds": [ours["gpu_seconds"], best["gpu_seconds"]]}
        v["met_slo"] = ours["slo_violation_minutes"] <= best["slo_violation_minutes"]
        v["met_dropped"] = ours["dropped"] <= best["dropped"]
        v["met_gpu"] = ours["gpu_seconds"] <= best["gpu_seconds"]
        if oracle is not None:
            v["vs_oracle"] = round(ours["gpu_seconds"] / max(1, oracle["gpu_seconds"]), 2)
            v["met_oracle"] = v["vs_oracle"] <= ORACLE_FACTOR
            sums["oracle_gpu"] += oracle["gpu_seconds"]
        verdicts[trace] = v
        sums["ours_min"] += ours["slo_violation_minutes"]
        sums["best_min"] += best["slo_violation_minutes"]
        sums["ours_gpu"] += ours["gpu_seconds"]
        sums["best_gpu"] += best["gpu_seconds"]
    sums["met_half"] = sums["ours_min"] * 2 <= sums["best_min"]
    if sums["oracle_gpu"]:
        sums["vs_oracle"] = round(sums["ours_gpu"] / sums["oracle_gpu"], 2)
    return {"traces": verdicts, "sums": sums}


def markdown(rows: list[dict[str, Any]], verdict: dict[str, Any]) -> str:
    head = ("| Trace | Policy | SLO-viol. min | dropped | GPU-s | × oracle | cost | per 1k req "
            "| GPU util % | saving vs static % | p95 ms | mean pods | reaction s | batch |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    oracle_gpu = {r["trace"]: r["gpu_seconds"] for r in rows if r["policy"] == "oracle"}
    for r in rows:
        og = oracle_gpu.get(r["trace"])
        batch = r.get("baseline_batch") if is_baseline(r["policy"]) else r.get("final_batch")
        tags = [tag for tag, v in (("best", verdict), ("best autoscaler",
                                                       verdict.get("autoscalers", {})))
                if v.get("traces", {}).get(r["trace"], {}).get("best_baseline") == r["policy"]]
        name = f"{r['policy']} ({', '.join(tags)})" if tags else r["policy"]
        lines.append("| " + " | ".join(str(x) for x in (
            r["trace"], f"**{name}**" if r["policy"] == "gencluster" else name,
            r["slo_violation_minutes"], f"{r['dropped']:,}", f"{r['gpu_seconds']:,}",
            f"{r['gpu_seconds'] / og:.2f}" if og else "–",
            _cell(r.get("cost"), ".2f"), _cell(r.get("cost_per_1k_requests"), ".4f"),
            _cell(r.get("utilization_percent"), "d"), _cell(r.get("saving_percent"), "d"),
            "–" if r["p95_ms"] is None else f"{r['p95_ms']:,}", r["mean_replicas"],
            "–" if r.get("reaction_seconds") is None else r["reaction_seconds"],
            batch if batch is not None else "–")) + " |")
    return "\n".join(lines) + "\n"


def _cell(x: float | int | None, fmt: str) -> str:
    """A cost cell (control/cost.run_cost via run.py); – where it cannot be computed."""
    return "–" if x is None else format(x, fmt)


PREDICTIVE_TRACES = ("noisy_flat", "steady", "periodic", "ramps")


def predictive_one(args: tuple[str, str, bool, int]) -> dict[str, Any]:
    trace_name, spec_path, on, seed = args
    spec = load_spec(spec_path)
    a = spec.autoscaling
    spec = spec.model_copy(update={"autoscaling": a.model_copy(update={
        "predictive": a.predictive.model_copy(update={"enabled": on})})})
    trace = load(trace_name)
    res = run_policy("gencluster", trace, spec, ModelParams(), seed, arrivals(trace, seed), None)
    return {"trace": trace_name, "predictive": on, **{k: res[k] for k in (
        "slo_violation_minutes", "gpu_seconds", "dropped", "mean_replicas", "max_replicas")}}


def predictive_check(spec_path: str, jobs: int, seed: int) -> dict[str, Any]:
    """Issue 11's predictive targets: on a flat noisy load at most 1.05x the GPU-seconds of
    prediction off; on a periodic one no more SLO-violation minutes at most 1.1x its GPU-s."""
    work = [(t, spec_path, on, seed) for t in PREDICTIVE_TRACES for on in (False, True)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as ex:
            rows = list(ex.map(predictive_one, work))
    else:
        rows = [predictive_one(w) for w in work]
    out: dict[str, Any] = {"rows": rows}
    for t in PREDICTIVE_TRACES:
        off = next(r for r in rows if r["trace"] == t and not r["predictive"])
        on_ = next(r for r in rows if r["trace"] == t and r["predictive"])
        out[t] = {"gpu_ratio": round(on_["gpu_seconds"] / max(1, off["gpu_seconds"]), 3),
                  "replicas_ratio": round(on_["mean_replicas"] / max(0.01, off["mean_replicas"]),
                                          3),
                  "slo_minutes": [on_["slo_violation_minutes"], off["slo_violation_minutes"]]}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gencluster.simulate.scorecard")
    p.add_argument("--spec", default=str(SCORECARD_SPEC))
    p.add_argument("--traces", default=",".join(PUBLISHED))
    p.add_argument("--policies", default=None, help="default: all six")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", help="write rows and verdicts to this file")
    p.add_argument("--markdown", help="write the table to this file")
    p.add_argument("--rows", help="judge the rows of an earlier --json file instead of running")
    p.add_argument("--predictive", action="store_true",
                   help="instead: gencluster with prediction on vs off (issue 11's item 2)")
    args = p.parse_args(argv)
    if args.predictive:
        res = predictive_check(args.spec, args.jobs, args.seed)
        if args.json:
            Path(args.json).write_text(json.dumps(res, indent=1) + "\n")
        print(json.dumps(res, indent=1))
        return 0
    names = args.policies.split(",") if args.policies else policies(args.spec)
    traces = [t for t in args.traces.split(",") if t]
    jobs = [(t, n, args.spec, args.seed) for t in traces for n in names]
    start = time.monotonic()
    if args.rows:  # judge saved rows again (no simulation)
        rows = json.loads(Path(args.rows).read_text())["rows"]
    elif args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as ex:
            rows = list(ex.map(one, jobs))
    else:
        rows = [one(j) for j in jobs]
    verdict = judge(rows)
    verdict["autoscalers"] = judge(rows, AUTOSCALERS)
    verdict["wall_s"] = round(time.monotonic() - start, 1)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "verdict": verdict}, indent=1) + "\n")
    table = markdown(rows, verdict)
    if args.markdown:
        Path(args.markdown).write_text(table)
    print(table)
    print(json.dumps(verdict, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
