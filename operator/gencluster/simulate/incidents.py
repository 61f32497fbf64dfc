"""The labelled incident corpus, and how well the alerts find its incidents.

    gencluster simulate incidents [--set train|holdout|all] [--jobs N] [--json] [--write DIR]

Every corpus trace is generated here from a seed (`corpus()`), so the corpus is the code plus
`operator/gencluster/simulate/incidents.json` (the label manifest, regenerated and compared by
the tests), not megabytes of CSV; `--write DIR` writes the traces as CSV
(`second,requests,leak_percent_per_min,slowdown,error_percent,stuck_pods`).

A trace is 2 hours of one load shape: a 10-minute warm-up, three step faults (a slowdown, an
error burst, stuck pods: 2-7 min each, in a seeded order, 14-16 min apart) with healthy load
spikes between them, then a GPU memory leak (1-2.2 % of the device a minute) to the end (at
least 39 minutes). Shapes: `steady`,
`diurnal`, `spiky` (training set: seeds 1-50, one shape per seed in turn) and `ramp`, `waves`
(held out: seeds 1001-1020, never used while tuning). Four `healthy-*` traces carry spikes only.

Definitions (docs/alerts.md):
- an incident is a maximal run of seconds with a fault active (traces.incidents);
- it is detected when some alert fires inside it and, except for leaks, within 300 s of its
  onset; the detection delay is from the onset to that first firing;
- a firing is true when it starts inside some incident or within 300 s after one ends, or during
  a minute whose p95 (dropped and failed requests counting as infinitely slow) breaks the SLO;
  precision = true firings / all firings, over every rule;
- predictive lead time: for a leak, from the first gpu-memory-exhaustion firing inside it to
  the first OOM or crash; a leak is warned in time when that lead is >= 10 min. Predictive
  precision = gpu-memory-exhaustion firings that start inside a leak (or within 300 s after) /
  all of them. For the step faults, the lead is from the first firing to the start of the
  breach: the first SLO-breaking minute in the incident, or the onset if that minute began
  before it (negative: the alert came after the breach began);
- a healthy spike is absorbed when no minute from its start to 2 min after its end breaks the
  SLO; any firing starting in that span (outside incidents) is a firing on an absorbed spike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..api.spec import GenerationClusterSpec
from ..control.alerts import MEMORY_RULE
from .cli import load_spec
from .model import ModelParams
from .policies import make
from .run import run
from .traces import KINDS, Trace, incidents, write_trace

SPEC = Path(__file__).parent / "specs" / "bench.yaml"
MANIFEST = Path(__file__).parent / "incidents.json"
DURATION_S = 7200
WARMUP_S = 600
DETECT_WITHIN_S = 300.0
AFTER_S = 300.0
LEAD_TARGET_S = 600.0
SPIKE_TAIL_S = 120.0
JITTER = 0.1  # lognormal sigma of batch service times in the corpus
TRAIN_SHAPES = ("steady", "diurnal", "spiky")
HOLDOUT_SHAPES = ("ramp", "waves")
TARGETS = {"recall": 0.95, "precision": 0.80, "median_delay_s": 30.0, "leak_warned": 0.80,
           "predictive_precision": 0.80}


@dataclass(frozen=True)
class CorpusTrace:
    name: str
    set: str  # train | holdout
    shape: str
    seed: int
    trace: Trace
    spikes: tuple[tuple[int, int], ...]  # healthy load spikes [start, end)


def _base_rate(shape: str, rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n, dtype=float)
    level = float(rng.uniform(12.0, 45.0))
    if shape in ("steady", "spiky"):
        return np.full(n, level)
    if shape == "diurnal":  # a day in 110 min: level/3 -> level*1.3 -> level/3
        lo, hi = level / 3.0, level * 1.3
        return lo + (hi - lo) * (1 - np.cos(2 * np.pi * t / n)) / 2
    if shape == "ramp":  # from level/2 up to level*1.5 and back
        half = n / 2
        return level * (0.5 + np.where(t < half, t / half, (n - t) / half))
    if shape == "waves":  # 15-min waves of +-40 %
        return level * (1.0 + 0.4 * np.sin(2 * np.pi * t / 900.0))
    raise ValueError(f"unknown shape {shape!r}")


def build(name: str, set_: str, shape: str, seed: int, faults: bool = True) -> CorpusTrace:
    """One corpus trace: deterministic in (shape, seed)."""
    rng = np.random.default_rng(seed)
    n = DURATION_S
    rate = _base_rate(shape, rng, n)
    slowdown = np.ones(n)
    errors = np.zeros(n)
    stuck = np.zeros(n, dtype=int)
    leak = np.zeros(n)
    busy: list[tuple[int, int]] = []
    if faults:
        t = WARMUP_S + int(rng.integers(0, 240))
        for kind in rng.permutation(["slowdown", "errors", "stuck"]):
            d = int(rng.integers(120, 421))
            if kind == "slowdown":
                slowdown[t:t + d] = float(rng.uniform(1.25, 3.0))
            elif kind == "errors":
                errors[t:t + d] = float(rng.uniform(1.5, 20.0))
            else:
                stuck[t:t + d] = 1
            busy.append((t - 60, t + d + 360))
            t += d + 840 + int(rng.integers(0, 120))
        leak[t:] = float(rng.uniform(1.0, 2.2))
        busy.append((t - 60, n))
    # healthy spikes in the gaps: x1.3-2.0 for 60-180 s, ramping over 20 s as real crowds do
    spikes: list[tuple[int, int]] = []
    spike_rng = np.random.default_rng(seed + 100_000)
    wanted = 2 if faults else 6
    for _ in range(200):
        if len(spikes) >= wanted:
            break
        d = int(spike_rng.integers(60, 181))
        s = int(spike_rng.integers(WARMUP_S, n - d - 300))
        span = (s - 60, s + d + 180)
        if any(a < span[1] and span[0] < b for a, b in busy):
            continue
        factor = float(spike_rng.uniform(1.3, 2.0))
        ramp = np.minimum(1.0, np.minimum(np.arange(d) + 1, d - np.arange(d)) / 20.0)
        rate[s:s + d] *= 1.0 + (factor - 1.0) * ramp
        spikes.append((s, s + d))
        busy.append(span)
    if shape == "spiky":  # short bursts of load throughout (sub-minute, +50 %), fault or not
        for s in spike_rng.integers(WARMUP_S, n - 30, size=12):
            rate[s:s + 20] *= 1.5
    reqs = rng.poisson(np.maximum(rate, 0.0)).astype(int)
    trace = Trace(name, tuple(int(x) for x in reqs), tuple(float(x) for x in leak),
                  tuple(float(round(x, 3)) for x in slowdown),
                  tuple(float(round(x, 2)) for x in errors), tuple(int(x) for x in stuck))
    return CorpusTrace(name, set_, shape, seed, trace, tuple(sorted(spikes)))


def corpus(which: str = "all") -> list[CorpusTrace]:
    out: list[CorpusTrace] = []
    if which in ("train", "all"):
        for i in range(50):
            shape = TRAIN_SHAPES[i % len(TRAIN_SHAPES)]
            out.append(build(f"train-{shape}-{i + 1}", "train", shape, i + 1))
        for i, shape in enumerate(("steady", "diurnal")):
            out.append(build(f"healthy-{shape}-{i + 1}", "train", shape, 500 + i, faults=False))
    if which in ("holdout", "all"):
        for i in range(20):
            shape = HOLDOUT_SHAPES[i % len(HOLDOUT_SHAPES)]
            out.append(build(f"holdout-{shape}-{i + 1001}", "holdout", shape, i + 1001))
        for i, shape in enumerate(HOLDOUT_SHAPES):
            out.append(build(f"healthy-{shape}-{i + 1}", "holdout", shape, 600 + i, faults=False))
    return out


def manifest(traces: Sequence[CorpusTrace]) -> list[dict[str, Any]]:
    """The labels: every trace's incidents and healthy spikes (what incidents.json holds)."""
    return [{"trace": c.name, "set": c.set, "shape": c.shape, "seed": c.seed,
             "requests": sum(c.trace.requests),
             "incidents": [{"kind": i.kind, "start": i.start, "end": i.end}
                           for i in incidents(c.trace)],
             "spikes": [list(s) for s in c.spikes]} for c in traces]


# --- scoring ------------------------------------------------------------------------------------

def simulate(c: CorpusTrace, spec: GenerationClusterSpec) -> dict[str, Any]:
    params = ModelParams(service_jitter=JITTER)
    res = run(c.trace, spec, make("gencluster", spec, params), params, seed=c.seed)
    return {"trace": c.name, "alerts": res["alerts"], "slo_violation_at": res["slo_violation_at"],
            "exhaustions_at": res["exhaustions_at"]}


def score_trace(c: CorpusTrace, sim: dict[str, Any]) -> dict[str, Any]:
    """Per incident: detected, delay, lead; per firing: true or false; spikes: absorbed, hit."""
    incs = incidents(c.trace)
    slo = set(sim["slo_violation_at"])
    fired = sorted(sim["alerts"], key=lambda a: a["fired_at"])
    rows = []
    for inc in incs:
        inside = [a for a in fired if inc.start <= a["fired_at"] < inc.end]
        if inc.kind != "leak":
            inside = [a for a in inside if a["fired_at"] - inc.start <= DETECT_WITHIN_S]
        first = inside[0] if inside else None
        row: dict[str, Any] = {"kind": inc.kind, "start": inc.start, "end": inc.end,
                               "detected": first is not None,
                               "delay_s": None if first is None else first["fired_at"] - inc.start,
                               "by": None if first is None else first["rule"]}
        if inc.kind == "leak":
            ex = [e for e in sim["exhaustions_at"] if inc.start <= e <= inc.end + AFTER_S]
            warn = [a for a in fired if a["rule"] == MEMORY_RULE
                    and inc.start <= a["fired_at"] < inc.end]
            row["exhausted_at"] = ex[0] if ex else None
            row["lead_s"] = (ex[0] - warn[0]["fired_at"]) if ex and warn else None
        else:
            breach = [max(inc.start, 60 * m) for m in sorted(slo)
                      if inc.start <= 60 * m + 59 and 60 * m < inc.end]
            row["lead_s"] = (breach[0] - first["fired_at"]) if breach and first else None
        rows.append(row)
    firings = []
    for a in fired:
        t = a["fired_at"]
        near = any(i.start <= t <= i.end + AFTER_S for i in incs)
        true = near or int(t // 60) in slo
        firings.append({"rule": a["rule"], "fired_at": t, "true": true,
                        "in_leak": any(i.kind == "leak" and i.start <= t <= i.end + AFTER_S
                                       for i in incs)})
    spikes = []
    for s, e in c.spikes:
        absorbed = not any(s // 60 <= m <= (e + SPIKE_TAIL_S) // 60 for m in slo)
        hits = [f["rule"] for f in firings if s <= f["fired_at"] <= e + SPIKE_TAIL_S
                and not any(i.start <= f["fired_at"] <= i.end + AFTER_S for i in incs)]
        spikes.append({"start": s, "end": e, "absorbed": absorbed, "firings": hits})
    return {"trace": c.name, "set": c.set, "incidents": rows, "firings": firings,
            "spikes": spikes}


def _median(xs: Sequence[float]) -> float | None:
    return round(statistics.median(xs), 1) if xs else None


def summarize(scored: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Recall, delay and lead per kind; precision over all firings and per rule; spikes."""
    kinds: dict[str, Any] = {}
    for kind in KINDS:
        rows = [r for s in scored for r in s["incidents"] if r["kind"] == kind]
        if not rows:
            continue
        det = [r for r in rows if r["detected"]]
        delays = [float(r["delay_s"]) for r in det]
        leads = [float(r["lead_s"]) for r in rows if r.get("lead_s") is not None]
        entry: dict[str, Any] = {
            "incidents": len(rows), "detected": len(det),
            "recall": round(len(det) / len(rows), 3),
            "median_delay_s": _median(delays),
            "p90_delay_s": round(float(np.quantile(delays, 0.9)), 1) if delays else None,
            "median_lead_s": _median(leads), "leads": len(leads)}
        if kind == "leak":
            exhausted = [r for r in rows if r.get("exhausted_at") is not None]
            warned = [r for r in exhausted if (r.get("lead_s") or -1) >= LEAD_TARGET_S]
            entry["exhausted"] = len(exhausted)
            entry["warned_10min"] = len(warned)
            entry["warned_share"] = round(len(warned) / len(exhausted), 3) if exhausted else None
        kinds[kind] = entry
    firings = [f for s in scored for f in s["firings"]]
    rules: dict[str, dict[str, int]] = {}
    for f in firings:
        r = rules.setdefault(f["rule"], {"firings": 0, "true": 0})
        r["firings"] += 1
        r["true"] += int(f["true"])
    mem = [f for f in firings if f["rule"] == MEMORY_RULE]
    spikes = [sp for s in scored for sp in s["spikes"]]
    absorbed = [sp for sp in spikes if sp["absorbed"]]
    all_rows = [r for s in scored for r in s["incidents"]]
    step_delays = [float(r["delay_s"]) for r in all_rows if r["detected"] and r["kind"] != "leak"]
    return {
        "traces": len(scored), "kinds": kinds,
        "recall": round(sum(r["detected"] for r in all_rows) / max(1, len(all_rows)), 3),
        "step_median_delay_s": _median(step_delays),
        "firings": len(firings), "true_firings": sum(f["true"] for f in firings),
        "precision": round(sum(f["true"] for f in firings) / len(firings), 3) if firings else None,
        "predictive_firings": len(mem),
        "predictive_precision": round(sum(f["in_leak"] for f in mem) / len(mem), 3) if mem else None,
        "rules": dict(sorted(rules.items())),
        "spikes": len(spikes), "spikes_absorbed": len(absorbed),
        "firings_on_absorbed_spikes": sum(len(sp["firings"]) for sp in absorbed),
    }


def _work(args: tuple[str, str, str, int, bool, str]) -> dict[str, Any]:
    name, set_, shape, seed, faults, spec_path = args
    c = build(name, set_, shape, seed, faults)
    return score_trace(c, simulate(c, load_spec(spec_path)))


def evaluate(traces: Sequence[CorpusTrace], spec_path: str, jobs: int) -> list[dict[str, Any]]:
    work = [(c.name, c.set, c.shape, c.seed, bool(incidents(c.trace)), spec_path)
            for c in traces]
    if jobs <= 1:
        return [_work(w) for w in work]
    with ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_work, work))


def _fmt(x: Any) -> str:
    return "-" if x is None else str(x)


def table(summary: dict[str, Any], title: str) -> str:
    lines = [f"{title}: {summary['traces']} traces, {summary['firings']} firings, precision "
             f"{_fmt(summary['precision'])} (target >= {TARGETS['precision']}), recall "
             f"{summary['recall']} (target >= {TARGETS['recall']})",
             f"{'kind':>9} {'incidents':>9} {'detected':>8} {'recall':>7} {'med delay s':>11} "
             f"{'p90 delay s':>11} {'med lead s':>10} {'warned>=10min':>13}"]
    for kind, k in summary["kinds"].items():
        warned = (f"{k['warned_10min']}/{k['exhausted']}" if kind == "leak" else "")
        lines.append(f"{kind:>9} {k['incidents']:>9} {k['detected']:>8} {k['recall']:>7} "
                     f"{_fmt(k['median_delay_s']):>11} {_fmt(k['p90_delay_s']):>11} "
                     f"{_fmt(k['median_lead_s']):>10} {warned:>13}")
    lines.append(f"step faults: median delay {_fmt(summary['step_median_delay_s'])} s (target < "
                 f"{TARGETS['median_delay_s']:.0f}); predictive precision "
                 f"{_fmt(summary['predictive_precision'])} over {summary['predictive_firings']} "
                 f"firings; healthy spikes {summary['spikes']} ({summary['spikes_absorbed']} "
                 f"absorbed), firings on absorbed spikes {summary['firings_on_absorbed_spikes']}")
    lines.append("rules: " + ", ".join(f"{r} {v['true']}/{v['firings']}"
                                       for r, v in summary["rules"].items()))
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="gencluster simulate incidents", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--set", choices=("train", "holdout", "all"), default="all")
    p.add_argument("--spec", default=str(SPEC), help="GenerationCluster YAML (default bench.yaml)")
    p.add_argument("--jobs", type=int, default=2, help="worker processes")
    p.add_argument("--json", action="store_true", help="the summaries (and per-trace detail) as JSON")
    p.add_argument("--write", metavar="DIR", help="write the corpus as CSV and exit")
    p.add_argument("--manifest", action="store_true", help="print the label manifest and exit")
    args = p.parse_args(list(argv))
    traces = corpus(args.set)
    if args.write:
        for c in traces:
            write_trace(c.trace, Path(args.write) / f"{c.name}.csv")
        print(f"{len(traces)} traces written to {args.write}")
        return 0
    if args.manifest:
        print(json.dumps(manifest(traces), indent=1))
        return 0
    scored = evaluate(traces, args.spec, args.jobs)
    sets = [s for s in ("train", "holdout") if any(x["set"] == s for x in scored)]
    summaries = {s: summarize([x for x in scored if x["set"] == s]) for s in sets}
    if args.json:
        print(json.dumps({"summaries": summaries, "traces": scored}, sort_keys=True))
    else:
        for s in sets:
            print(table(summaries[s], s))
            print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
