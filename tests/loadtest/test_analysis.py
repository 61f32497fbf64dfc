"""Profile verdicts are pure functions of recorded numbers: checked here on hand-made data."""

from __future__ import annotations

from typing import Any

import pytest

from gencluster.loadtest import ConfigError, LoadConfig, url_target
from gencluster.loadtest.analysis import soak_drift, spike_recovery, step_verdict, stress_result
from gencluster.loadtest.stats import Stats
from gencluster.loadtest.window import WindowRecord


def _window(i: int, phase: str, p95: float | None, ok: int = 10, error_rate: float = 0.0,
            memory: float | None = None, p50: float | None = None) -> WindowRecord:
    return WindowRecord(
        index=i, t_start=float(i), t_end=float(i + 1), phase=phase, target_rate=10, arrivals=10,
        offered_rate=10, throughput_rps=ok, completed=ok, ok=ok, errors=0, error_rate=error_rate,
        errors_by_code={}, p50_ms=p50 if p50 is not None else p95, p90_ms=p95, p95_ms=p95, p99_ms=p95,
        max_ms=p95, cache_hit_ratio=None, cached_p50_ms=None, uncached_p50_ms=None, inflight=0,
        memory_bytes=memory,
    )


def _stats(latencies_s: list[float], errors: dict[str, int] | None = None) -> Stats:
    s = Stats()
    for lat in latencies_s:
        s.record_arrival()
        s.record("200", lat, "miss")
    for code, n in (errors or {}).items():
        for _ in range(n):
            s.record_arrival()
            s.record(code, None if code == "dropped" else 0.001, None)
    return s


def test_step_verdicts() -> None:
    ok = step_verdict(10, _stats([0.05] * 100), 2.0, slo_ms=100, max_error_rate=0.05)
    assert not ok["broke"] and ok["throughput_rps"] == 50
    slow = step_verdict(20, _stats([0.05] * 90 + [0.5] * 10), 2.0, slo_ms=100, max_error_rate=0.05)
    assert slow["broke"] and "p95" in slow["reason"]
    errs = step_verdict(30, _stats([0.05] * 90, {"429": 10}), 2.0, slo_ms=100, max_error_rate=0.05)
    assert errs["broke"] and "error rate 10.0%" in errs["reason"] and errs["errors_by_code"] == {"429": 10}
    silent = Stats()
    silent.record_arrival()
    assert step_verdict(40, silent, 2.0, 100, 0.05)["reason"] == "no responses"
    result = stress_result([ok, slow])
    assert result["breaking_rate"] == 20 and result["max_sustained_rate"] == 10
    assert stress_result([ok])["breaking_rate"] is None


def test_spike_recovery_picks_the_first_good_window() -> None:
    windows = [_window(0, "baseline", 50), _window(1, "spike", 400), _window(2, "recovery", 300),
               _window(3, "recovery", 61, error_rate=0.2), _window(4, "recovery", 59), _window(5, "recovery", 50)]
    out = spike_recovery(windows, 50.0, spike_end_s=2.0, tolerance=1.2, max_error_rate=0.05)
    assert out["threshold_ms"] == 60 and out["recovery_s"] == 3.0 and out["recovered_at_s"] == 5.0
    never = spike_recovery(windows[:3], 50.0, 2.0, 1.2, 0.05)
    assert never["recovery_s"] is None and "not recovered" in never["recovery_note"]
    assert spike_recovery(windows, None, 2.0, 1.2, 0.05)["recovery_s"] is None


def test_soak_drift() -> None:
    windows = [_window(i, "soak", 100 + 5 * i, p50=50, memory=1e9 + 1e6 * i) for i in range(40)]
    out = soak_drift(windows)
    assert out["compared_windows"] == 4
    assert out["p50_ms"]["ratio"] == 1.0
    assert out["p95_ms"]["first"] == 107.5 and out["p95_ms"]["last"] == 287.5
    assert out["p95_slope_ms_per_hour"] == pytest.approx(5 * 3600)
    assert out["memory_bytes"]["change"] == 36e6 and out["memory_bytes"]["slope_bytes_per_hour"] == pytest.approx(3.6e9)
    bare = soak_drift([_window(i, "soak", 10) for i in range(3)])
    assert "memory_note" in bare and bare["compared_windows"] == 1


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"rate": 0}, "rate"),
    ({"rate": 100_000}, "rate"),
    ({"max_seconds": 10 * 86400}, "max_seconds"),
    ({"max_requests": 0}, "max_requests"),
    ({"profile": "chaos"}, "profile"),
    ({"fmt": "fbx"}, "format"),
    ({"concurrency": 0}, "concurrency"),
    ({"rate": 1000, "spike_factor": 10}, "spike_factor"),
    ({"recovery_s": 0.1}, "recovery_s"),
])
def test_config_is_bounded(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        LoadConfig(target=url_target(["http://127.0.0.1:1"]), **kwargs)


def test_stress_plan() -> None:
    cfg = LoadConfig(target=url_target(["http://127.0.0.1:1"]), profile="stress", start_rate=5,
                     step_rate=5, max_rate=50, step_s=10)
    assert cfg.stress_steps() == 10 and cfg.planned_seconds() == 100
