"""Profile verdicts as pure functions of recorded numbers, so they are testable without a server.

- stress: a step breaks when its error rate exceeds max_error_rate or its p95 exceeds the SLO
  (or nothing came back at all); the breaking point is the first such step's offered rate.
- spike: recovery time = from the end of the spike to the end of the first later window whose
  p95 is within tolerance x the pre-spike p95 (and whose error rate is acceptable); an upper bound
  with the window length as resolution.
- soak: drift = the median over the last k windows against the median over the first k
  (k = a tenth of the windows, 1..60), for p50, p95 and scraped memory, plus a least-squares slope.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from .stats import Stats
from .window import WindowRecord


def step_verdict(rate: float, stats: Stats, seconds: float, slo_ms: float,
                 max_error_rate: float) -> dict[str, Any]:
    """One stress step: its numbers and whether it broke (and why)."""
    p95 = stats.ok.percentiles_ms((95.0,)).get(95.0)
    error_rate = stats.error_rate()
    reasons = []
    if stats.outcomes == 0 and stats.arrivals > 0:
        reasons.append("no responses")
    if error_rate > max_error_rate:
        reasons.append(f"error rate {error_rate:.1%} > {max_error_rate:.1%}")
    if p95 is not None and p95 > slo_ms:
        reasons.append(f"p95 {p95:.0f} ms > SLO {slo_ms:.0f} ms")
    return {
        "rate": rate,
        "seconds": round(seconds, 3),
        "arrivals": stats.arrivals,
        "throughput_rps": round(stats.ok_count / seconds, 3) if seconds > 0 else 0.0,
        "p50_ms": stats.ok.percentiles_ms((50.0,)).get(50.0),
        "p95_ms": p95,
        "p99_ms": stats.ok.percentiles_ms((99.0,)).get(99.0),
        "error_rate": round(error_rate, 5),
        "errors_by_code": stats.errors_by_code(),
        "broke": bool(reasons),
        "reason": "; ".join(reasons),
    }


def stress_result(steps: Sequence[dict[str, Any]]) -> dict[str, Any]:
    broken = next((s for s in steps if s["broke"]), None)
    passed = [s for s in steps if not s["broke"]]
    return {
        "breaking_rate": broken["rate"] if broken else None,
        "breaking_reason": broken["reason"] if broken else "not reached: every step passed",
        "max_sustained_rate": passed[-1]["rate"] if passed else None,  # steps stop at the first break
        "peak_throughput_rps": max((s["throughput_rps"] for s in steps), default=0.0),
        "steps": list(steps),
    }


def spike_recovery(windows: Sequence[WindowRecord], baseline_p95_ms: float | None, spike_end_s: float,
                   tolerance: float, max_error_rate: float, phase: str = "recovery") -> dict[str, Any]:
    """Recovery time after a spike, from the windows of the recovery phase."""
    out: dict[str, Any] = {
        "baseline_p95_ms": baseline_p95_ms,
        "threshold_ms": None if baseline_p95_ms is None else round(baseline_p95_ms * tolerance, 3),
        "recovery_s": None,
        "recovered_at_s": None,
    }
    if baseline_p95_ms is None:
        out["recovery_note"] = "no successful responses before the spike: no baseline"
        return out
    after = [w for w in windows if w.phase == phase]
    for w in after:
        if w.ok > 0 and w.p95_ms is not None and w.p95_ms <= baseline_p95_ms * tolerance \
                and w.error_rate <= max_error_rate:
            out["recovery_s"] = round(max(0.0, w.t_end - spike_end_s), 3)
            out["recovered_at_s"] = w.t_end
            out["recovery_note"] = "upper bound: end of the first recovered window"
            return out
    out["recovery_note"] = f"not recovered within the {len(after)} windows after the spike"
    return out


def _k(n: int) -> int:
    return max(1, min(60, n // 10))


def _slope_per_hour(points: Sequence[tuple[float, float]]) -> float | None:
    if len(points) < 2:
        return None
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in points) / var * 3600.0


def _drift(values: Sequence[float], k: int) -> dict[str, float | None]:
    first, last = statistics.median(values[:k]), statistics.median(values[-k:])
    return {
        "first": round(first, 3),
        "last": round(last, 3),
        "change": round(last - first, 3),
        "ratio": round(last / first, 4) if first else None,
    }


def soak_drift(windows: Sequence[WindowRecord], phase: str = "soak") -> dict[str, Any]:
    """Latency and memory drift across the soak's windows."""
    ws = [w for w in windows if w.phase == phase]
    out: dict[str, Any] = {"windows": len(ws)}
    lat = [w for w in ws if w.p50_ms is not None and w.p95_ms is not None]
    if lat:
        k = _k(len(lat))
        out["compared_windows"] = k
        out["p50_ms"] = _drift([w.p50_ms for w in lat if w.p50_ms is not None], k)
        out["p95_ms"] = _drift([w.p95_ms for w in lat if w.p95_ms is not None], k)
        out["p95_slope_ms_per_hour"] = _round(_slope_per_hour(
            [((w.t_start + w.t_end) / 2, w.p95_ms) for w in lat if w.p95_ms is not None]))
    else:
        out["latency_note"] = "no successful responses"
    mem = [w for w in ws if w.memory_bytes is not None]
    if mem:
        k = _k(len(mem))
        drift = _drift([w.memory_bytes for w in mem if w.memory_bytes is not None], k)
        first = drift["first"] or 0.0
        drift["percent"] = round(100.0 * (drift["change"] or 0.0) / first, 3) if first else None
        drift["slope_bytes_per_hour"] = _round(_slope_per_hour(
            [((w.t_start + w.t_end) / 2, w.memory_bytes) for w in mem if w.memory_bytes is not None]))
        drift["samples"] = len(mem)
        out["memory_bytes"] = drift
    else:
        out["memory_note"] = "the target exposed no gencluster_gpu_memory_used_bytes at /metrics"
    return out


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
