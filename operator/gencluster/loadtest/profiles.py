"""The four profiles as phase plans on one Engine, and `run_profile`, the Python entry point.

Each may start with an unmeasured warm-up phase (`warmup_s`, at the first rate): it warms caches
and connections, shows in the windows, and stays out of the overall numbers and the verdicts.

load:   one phase at `rate` for `duration_s`.
stress: steps from start_rate by +step_rate every step_s up to max_rate, stopping at the first
        step that breaks (see analysis.step_verdict); reports the breaking point.
spike:  baseline (rate) -> spike (rate x spike_factor) -> recovery (rate); reports recovery time.
soak:   one long phase (still bounded by max_seconds / max_requests); reports latency and memory
        drift, memory scraped from the target's /metrics each window.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from .analysis import soak_drift, spike_recovery, step_verdict, stress_result
from .config import LoadConfig
from .engine import Engine, Phase, WindowCallback
from .report import Report

LAG_WARN_MS = 10.0


async def run_profile(config: LoadConfig, on_window: WindowCallback | None = None,
                      stop: asyncio.Event | None = None) -> Report:
    """Run the configured profile against config.target; on_window(WindowRecord) is called (and
    awaited, if it returns an awaitable) once per window; setting `stop` ends the run early with
    a report of what happened so far."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    engine = Engine(config, on_window, stop)
    result: dict[str, Any] = {}
    async with engine:
        if config.warmup_s > 0:
            first = config.start_rate if config.profile == "stress" else config.rate
            await engine.run_phase("warmup", first, config.warmup_s, measured=False)
        if config.profile == "load":
            await engine.run_phase("load", config.rate, config.duration_s)
        elif config.profile == "soak":
            await engine.run_phase("soak", config.rate, config.duration_s)
        elif config.profile == "stress":
            steps = []
            for i in range(config.stress_steps()):
                rate = float(round(config.start_rate + i * config.step_rate, 6))
                phase = await engine.run_phase(f"step{i + 1}", rate, config.step_s)
                seconds = engine.now() - phase.t_start
                steps.append(step_verdict(rate, phase.stats, seconds, config.slo_ms, config.max_error_rate))
                if steps[-1]["broke"] or engine.stopping:
                    break
            result = stress_result(steps)
            if result["breaking_rate"] is not None and engine.stopped_by is None:
                engine.stop("breaking_point")
        elif config.profile == "spike":
            await engine.run_phase("baseline", config.rate, config.baseline_s)
            await engine.run_phase("spike", config.rate * config.spike_factor, config.spike_s)
            await engine.run_phase("recovery", config.rate, config.recovery_s)
    if config.profile == "spike":
        result = _spike_result(config, engine)
    elif config.profile == "soak":
        result = soak_drift(engine.windows)
    elif config.profile == "load":
        p95 = engine.overall.ok.percentiles_ms((95.0,)).get(95.0)
        result = {"meets_slo": p95 is not None and p95 <= config.slo_ms
                  and engine.overall.error_rate() <= config.max_error_rate}
    return _report(config, engine, started, result)


def _phase(engine: Engine, name: str) -> Phase | None:
    return next((p for p in engine.phases if p.name == name), None)


def _spike_result(config: LoadConfig, engine: Engine) -> dict[str, Any]:
    baseline, spike = _phase(engine, "baseline"), _phase(engine, "spike")
    base_p95 = baseline.stats.ok.percentiles_ms((95.0,)).get(95.0) if baseline else None
    spike_end = spike.t_end if spike and spike.t_end is not None else engine.t_end
    out = spike_recovery(engine.windows, base_p95, spike_end, config.recovery_tolerance,
                         config.max_error_rate)
    out["spike_end_s"] = round(spike_end, 3)
    if spike is not None:
        out["spike_p95_ms"] = spike.stats.ok.percentiles_ms((95.0,)).get(95.0)
        out["spike_error_rate"] = round(spike.stats.error_rate(), 5)
    peak = [w.p95_ms for w in engine.windows if w.phase in ("spike", "recovery") and w.p95_ms is not None]
    out["peak_window_p95_ms"] = max(peak, default=None)
    return out


def _report(config: LoadConfig, engine: Engine, started: str, profile: dict[str, Any]) -> Report:
    t0 = engine.t_measure_start or 0.0  # after the warm-up
    send_s = max(engine.t_send_end - t0, 1e-9)
    total_s = max(engine.t_end - t0, send_s)
    overall = engine.overall.summary(total_s)
    overall["offered_rate"] = round(engine.overall.arrivals / send_s, 3)
    lag = engine.client_lag.summary_ms()
    notes: list[str] = []
    if lag["p99"] is not None and lag["p99"] > LAG_WARN_MS:
        notes.append(f"the load generator ran late (send lag p99 {lag['p99']:.1f} ms): the offered rate "
                     "was delivered in bursts; latencies still count from the intended times")
    dropped = engine.overall.codes.get("dropped", 0)
    if dropped:
        notes.append(f"{dropped} arrivals were dropped (counted as errors) because {config.concurrency} "
                     "requests were already in flight (--concurrency)")
    if engine.unfinished:
        notes.append(f"{engine.unfinished} requests were still in flight at the end and were cancelled "
                     "(not counted in latencies or errors)")
    if engine.stopped_by in ("max_requests", "max_seconds"):
        notes.append(f"the run was cut short by --{engine.stopped_by.replace('_', '-')}")
    if overall["ok"] == 0 and overall["outcomes"]:
        notes.append("no request succeeded; see errors_by_code")
    if config.profile == "stress" and profile.get("breaking_rate") is None:
        notes.append("stress never broke: raise --max-rate to find the breaking point")
    phases = [{
        "name": p.name, "rate": p.rate, "measured": p.measured, "t_start": round(p.t_start, 3),
        "t_end": round(p.t_end if p.t_end is not None else engine.t_end, 3),
        "stats": p.stats.summary((p.t_end if p.t_end is not None else engine.t_end) - p.t_start),
    } for p in engine.phases]
    return Report(
        config=config.as_dict(),
        target=config.target.description or ", ".join(config.target.urls),
        started_at=started,
        duration_s=round(total_s, 3),
        send_seconds=round(send_s, 3),
        stopped_by=engine.stopped_by or "completed",
        overall=overall,
        phases=phases,
        windows=engine.windows,
        profile=profile,
        client={"lag_ms": lag, "unfinished": engine.unfinished, "bytes_received": engine.bytes_received,
                "issued": engine.issued, "concurrency_cap": config.concurrency},
        notes=notes,
        overall_hdr=engine.overall.ok.encode(),
        slowest=engine.slowest(),
    )
