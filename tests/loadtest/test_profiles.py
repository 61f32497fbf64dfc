"""The profiles against the SlowEchoServer test double, whose capacity is known exactly:
workers / service time requests per second."""

from __future__ import annotations

from typing import Any

from gencluster.loadtest import run_profile

from .conftest import config_for


async def test_stress_finds_the_breaking_point_near_capacity(echo_factory: Any) -> None:
    server = echo_factory(workers=2, service_s=0.05, queue_max=30, cache=False)  # 40 rps
    cfg = config_for(server, profile="stress", start_rate=10, step_rate=10, step_s=2.0, max_rate=100,
                     slo_ms=250)
    report = await run_profile(cfg)
    result = report.profile
    assert 40 <= result["breaking_rate"] <= 60, result
    assert 30 <= result["max_sustained_rate"] <= 50
    assert 30 <= result["peak_throughput_rps"] <= 45
    assert report.stopped_by == "breaking_point"
    assert result["steps"][-1]["broke"] and not any(s["broke"] for s in result["steps"][:-1])
    assert "p95" in result["breaking_reason"] or "error rate" in result["breaking_reason"]


async def test_stress_reports_when_it_never_breaks(echo_factory: Any) -> None:
    server = echo_factory(workers=50, service_s=0.01, cache=False)
    cfg = config_for(server, profile="stress", start_rate=10, step_rate=10, step_s=0.5, max_rate=20)
    report = await run_profile(cfg)
    assert report.profile["breaking_rate"] is None
    assert report.profile["max_sustained_rate"] == 20
    assert len(report.profile["steps"]) == 2
    assert any("never broke" in n for n in report.notes)


async def test_spike_recovery_time_matches_the_queue_drain(echo_factory: Any) -> None:
    """Capacity 40 rps; 60 rps for 2 s queues ~40 requests, which drain at 40 - 10 = 30/s:
    latency is back to normal ~1.3 s after the spike (plus the window's resolution)."""
    server = echo_factory(workers=4, service_s=0.1, cache=False)
    cfg = config_for(server, profile="spike", rate=10, baseline_s=3.0, spike_factor=6, spike_s=2.0,
                     recovery_s=5.0, window_s=0.5)
    report = await run_profile(cfg)
    p = report.profile
    assert 95 <= p["baseline_p95_ms"] <= 140, p
    assert p["spike_p95_ms"] > 2 * p["threshold_ms"]
    assert p["recovery_s"] is not None, p
    assert 0.9 <= p["recovery_s"] <= 3.5, p
    first_after = next(w for w in report.windows if w.phase == "recovery")
    assert first_after.p95_ms is not None and first_after.p95_ms > p["threshold_ms"]


async def test_soak_reports_latency_and_memory_drift(echo_factory: Any) -> None:
    server = echo_factory(workers=10, service_s=0.01, leak_bytes=64 * 1024)
    cfg = config_for(server, profile="soak", rate=40, duration_s=3.0, window_s=0.5)
    report = await run_profile(cfg)
    p = report.profile
    assert p["windows"] == 6
    assert p["p50_ms"]["first"] > 0 and p["p95_ms"]["ratio"] is not None
    mem = p["memory_bytes"]
    # ~20 requests per window x 64 KiB: memory rises about 1.25 MiB a window.
    assert mem["change"] > 3 * 2**20
    assert mem["slope_bytes_per_hour"] > 0
    assert all(w.memory_bytes is not None for w in report.windows)


async def test_load_profile_meets_slo_and_splits_cache(echo_factory: Any) -> None:
    server = echo_factory(workers=20, service_s=0.05)
    report = await run_profile(config_for(server, rate=40, duration_s=2.0, pool=10, zipf=1.0))
    cache = report.overall["cache"]
    assert report.profile["meets_slo"] is True
    assert cache["responses"]["miss"] >= 10 and cache["responses"]["hit-l1"] > 40
    assert cache["cached_latency_ms"]["p50"] < 20 < cache["uncached_latency_ms"]["p50"]


async def test_warmup_is_shown_but_not_measured(echo_factory: Any) -> None:
    server = echo_factory(workers=20, service_s=0.01)
    report = await run_profile(config_for(server, rate=20, duration_s=1.0, warmup_s=0.5))
    assert report.overall["arrivals"] == 20
    assert sum(w.arrivals for w in report.windows) == 30
    assert report.windows[0].phase == "warmup"
    assert report.phases[0]["name"] == "warmup" and report.phases[0]["measured"] is False
    assert 0.95 <= report.send_seconds <= 1.1
    assert abs(report.overall["offered_rate"] - 20) < 1.5
