"""Run one policy over one trace and compute the figures the benchmarks compare.

Deterministic: arrivals come from `seed` and are identical for every policy of a run; routing
and pod start delays come from their own seeded generators.

Figures:
- slo_violation_minutes: minutes (by arrival) whose p95 latency, counting dropped or failed
  requests as infinitely slow, exceeds batching.latencySloMs;
- p95_ms / p99_ms: latency of the requests served (dropped ones are counted in `dropped`);
- gpu_seconds: pods × seconds they held a GPU (from creation, while starting, until drained);
- scale_events: replica count changes; reaction_seconds: from the first second the offered load
  (5 s average) exceeds the ready pods' capacity to the first scale-up decision after it;
- memory alert figures (gencluster): each gpu-memory-exhaustion firing is a true positive if an
  OOM or crash follows within MEMORY_ALERT_WINDOW_S; its lead time is the time to that event;
- cost (control/cost.run_cost, the figures of status.cost): gpu_hours, busy_gpu_hours,
  utilization_percent, cost and cost_per_1k_requests (spec.cost, else 2.50 per GPU-hour),
  static_peak_replicas / static_cost (a fixed deployment at the run's peak pod count) and
  saving_percent against it; over the whole run, warm-up included, as gpu_seconds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..api.spec import GenerationClusterSpec
from ..control.alerts import MEMORY_RULE
from ..control.cost import run_cost
from .model import ModelParams, PodServer, Recorder, SimPod
from .policies import Policy
from .traces import Trace

MEMORY_ALERT_WINDOW_S = 1260.0  # 2 × the 10 min horizon + the 1 min confirmation


def arrivals(trace: Trace, seed: int) -> list[np.ndarray]:
    """Each second's arrival times, uniform within the second, sorted (same for all policies)."""
    rng = np.random.default_rng(seed)
    return [np.sort(s + rng.random(n)) if n else np.empty(0) for s, n in enumerate(trace.requests)]


@dataclass
class _Cluster:
    pods: list[SimPod]
    counter: int = 0

    def live(self) -> list[SimPod]:
        return [p for p in self.pods if not p.draining]


def run(trace: Trace, spec: GenerationClusterSpec, policy: Policy, params: ModelParams,
        seed: int = 1, arrivals_by_second: Sequence[np.ndarray] | None = None,
        measure_from: float = 0.0,
        stop: Callable[[Recorder], bool] | None = None) -> dict[str, Any]:
    """Simulate `policy` over `trace`; latency figures count requests arriving from
    `measure_from` on (a warm-up is excluded from them, not from gpu_seconds). `stop`, asked
    once a simulated minute, ends the run early when it answers True (the result then has
    "aborted": True; the batch sweep uses it to drop sizes that can no longer win)."""
    arr = arrivals_by_second if arrivals_by_second is not None else arrivals(trace, seed)
    route = np.random.default_rng(seed + 1)
    delays = random.Random(seed + 2)
    rec = Recorder()
    server = PodServer(params, spec.workload.queue_max, rec, seed + 3)
    cl = _Cluster([])
    default_batch = policy.default_batch(spec)

    def create(t: float, ready_now: bool) -> None:
        cl.counter += 1
        lo, hi = params.start_delay_s
        ready_at = t if ready_now else t + delays.uniform(lo, hi)
        cl.pods.append(SimPod(f"{policy.name.replace(':', '-')}-{cl.counter}",
                              f"uid-{cl.counter}", t, ready_at, default_batch))

    for _ in range(policy.initial(spec, trace, params)):
        create(0.0, True)

    gpu_seconds = 0.0
    pod_seconds = busy_seconds = 0.0  # for the cost fields (control/cost.py)
    peak_pods = len(cl.pods)
    scale_events = 0
    replicas_sum = 0.0
    max_replicas = len(cl.pods)
    load5: list[int] = []
    overload_at: float | None = None
    reaction: float | None = None
    fired: list[tuple[float, str, str]] = []
    alert_log: list[tuple[float, str, str, str]] = []  # (t, rule, state, severity)
    batch_changes = 0
    aborted = False
    for second in range(len(trace)):
        if stop is not None and second % 60 == 59 and stop(rec):
            aborted = True
            break
        t = float(second)
        live = cl.live()
        if second % policy.interval == 0 and second > 0:
            act = policy.act(t, cl.pods, len(live))
            if act.default_batch is not None:
                default_batch = act.default_batch
            for p in live:
                b = act.batches.get(p.name)
                if b is not None and b != p.batch:
                    p.batch = b
                    batch_changes += 1
            for tr in act.transitions:
                fired.append((t, tr.name, tr.state))
                alert_log.append((t, tr.name, tr.state, tr.severity))
            want = act.replicas if act.replicas is not None else len(live)
            if want != len(live):
                scale_events += 1
                if want > len(live):
                    if overload_at is not None and reaction is None:
                        reaction = t - overload_at
                    for _ in range(want - len(live)):
                        create(t, False)
                else:
                    # like a ReplicaSet: not-ready pods first, then the newest
                    victims = sorted(live, key=lambda p: (p.ready(t), -p.created))
                    for p in victims[: len(live) - want]:
                        p.draining = True
            live = cl.live()
        serving = [p for p in live if p.ready(t)]
        times = arr[second]
        per_pod: list[list[float]] = [[] for _ in serving]
        if serving:
            picks = route.integers(0, len(serving), size=len(times))
            for a, i in zip(times.tolist(), picks.tolist(), strict=True):
                per_pod[i].append(a)
        else:
            for a in times.tolist():
                rec.done(a, math.inf)
        leak = trace.leak[second] / 60.0
        server.slowdown = trace.slow(second)
        server.error_fraction = trace.errors(second) / 100.0
        stuck = trace.stuck(second)
        for i, p in enumerate(sorted(serving, key=lambda p: p.created)):
            p.stuck = i < stuck  # the oldest serving pods hang
        for p, got in zip(serving, per_pod, strict=True):
            server.tick(p, t, got, leak)
        serving_ids = {id(p) for p in serving}
        for p in cl.pods:
            if id(p) in serving_ids:
                continue
            if p.draining and p.ready(t):
                server.tick(p, t, [], leak)
            elif not p.ready(t):
                if p.restarting_until is not None:
                    server.tick(p, t, [], 0.0)
                else:
                    p.util.append(0.0)
        busy_seconds += sum(p.util[-1] for p in cl.pods if p.util)  # this second's busy share
        cl.pods = [p for p in cl.pods if not (p.draining and not p.queue and p.busy_until is None
                                              and p.restarting_until is None)]
        policy.observe(t, cl.pods)  # the end of second t, as per-second collectors see it
        gpu_seconds += len(cl.pods) * max(1, spec.workload.gpus_per_replica)
        pod_seconds += len(cl.pods)
        peak_pods = max(peak_pods, len(cl.pods))
        replicas_sum += len(cl.live())
        max_replicas = max(max_replicas, len(cl.live()))
        load5.append(int(trace.requests[second]))
        if overload_at is None and len(load5) >= 5:
            capacity = sum(params.throughput(p.batch) for p in cl.live() if p.ready(t))
            if sum(load5[-5:]) / 5.0 > capacity:
                overload_at = t
    unfinished = sum(len(p.queue) + len(p.running) for p in cl.pods)
    res = summarize(trace, spec, policy, rec, gpu_seconds, scale_events, reaction,
                    replicas_sum, max_replicas, fired, batch_changes, default_batch, unfinished,
                    measure_from)
    served = int(np.isfinite(np.asarray(rec.latency, dtype=float)).sum())
    res.update(run_cost(spec, float(len(trace)), pod_seconds, busy_seconds, peak_pods, served))
    res["alerts"] = alert_list(alert_log)
    res["slo_violation_at"] = violation_minutes(rec, spec.batching.latency_slo_ms / 1000.0)
    res["exhaustions_at"] = sorted({int(e) for e in rec.exhaustions})
    if aborted:
        res["aborted"] = True
    return res


def alert_list(log: Sequence[tuple[float, str, str, str]]) -> list[dict[str, Any]]:
    """Each firing as {rule, severity, fired_at, resolved_at} (seconds from the trace start;
    resolved_at None when still firing at the end), in firing order."""
    out: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    for t, name, state, severity in log:
        if state == "firing":
            open_[name] = {"rule": name, "severity": severity, "fired_at": round(t, 1),
                           "resolved_at": None}
            out.append(open_[name])
        elif name in open_:
            open_.pop(name)["resolved_at"] = round(t, 1)
    return out


def violation_minutes(rec: Recorder, slo_s: float, measure_from: float = 0.0) -> list[int]:
    """Minutes (by arrival, from the trace start) whose p95, counting dropped and failed
    requests as infinitely slow, exceeds the SLO."""
    lat = np.asarray(rec.latency, dtype=float)
    sec = np.asarray(rec.arrival_second, dtype=int)
    if measure_from > 0:
        keep = sec >= measure_from
        lat, sec = lat[keep], sec[keep]
    out: list[int] = []
    if not len(lat):
        return out
    minutes = sec // 60
    order = np.argsort(minutes, kind="stable")
    ms, ls = minutes[order], lat[order]
    bounds = np.flatnonzero(np.diff(ms)) + 1
    for m0, chunk in zip(np.split(ms, bounds), np.split(ls, bounds), strict=True):
        if len(chunk) and np.quantile(chunk, 0.95, method="higher") > slo_s:
            out.append(int(m0[0]))
    return out


def summarize(trace: Trace, spec: GenerationClusterSpec, policy: Policy, rec: Recorder,
              gpu_seconds: float, scale_events: int, reaction: float | None,
              replicas_sum: float, max_replicas: int, fired: list[tuple[float, str, str]],
              batch_changes: int, final_batch: int, unfinished: int = 0,
              measure_from: float = 0.0) -> dict[str, Any]:
    lat = np.asarray(rec.latency, dtype=float)
    sec = np.asarray(rec.arrival_second, dtype=int)
    if measure_from > 0:
        keep = sec >= measure_from
        lat, sec = lat[keep], sec[keep]
    served = lat[np.isfinite(lat)]
    violations = len(violation_minutes(rec, spec.batching.latency_slo_ms / 1000.0, measure_from))
    mem_fired = [t for t, name, state in fired if name == MEMORY_RULE and state == "firing"]
    leads: list[float] = []
    true_pos = 0
    for t in mem_fired:
        after = [e for e in rec.exhaustions if t <= e <= t + MEMORY_ALERT_WINDOW_S]
        if after:
            true_pos += 1
            leads.append(min(after) - t)
    counts: dict[str, int] = {}
    for _, name, state in fired:
        if state == "firing":
            counts[name] = counts.get(name, 0) + 1
    duration = max(1, len(trace))
    return {
        "policy": policy.name,
        "trace": trace.name,
        "slo_violation_minutes": violations,
        "p95_ms": _ms(np.quantile(served, 0.95)) if len(served) else None,
        "p99_ms": _ms(np.quantile(served, 0.99)) if len(served) else None,
        "gpu_seconds": round(gpu_seconds),
        "scale_events": scale_events,
        "dropped": int(len(lat) - len(served)),
        "reaction_seconds": None if reaction is None else round(reaction, 1),
        "requests": len(lat) + unfinished,
        "unfinished": unfinished,  # still queued or running when the trace ended
        "served_rps": round(len(served) / max(1.0, duration - measure_from), 2),
        "mean_replicas": round(replicas_sum / duration, 2),
        "max_replicas": max_replicas,
        "ooms": rec.ooms,
        "crashes": rec.crashes,
        "batch_changes": batch_changes,
        "final_batch": final_batch,
        "alerts_fired": counts,
        "memory_alerts": len(mem_fired),
        "memory_alerts_true": true_pos,
        "memory_alert_lead_s": [round(x) for x in leads],
    }


def _ms(x: float) -> int:
    return round(float(x) * 1000.0)
