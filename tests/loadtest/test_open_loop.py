"""The engine is open loop: requests leave at the intended rate however slow the server is, and
latency counts from the intended send time, so queueing (server- or client-side) is never hidden
(no coordinated omission). Also: drops, timeouts, 429s, hard bounds and windows."""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

from gencluster.loadtest import run_profile

from .conftest import config_for


async def test_rate_is_kept_when_the_server_is_slow(echo_factory: Any) -> None:
    server = echo_factory(workers=1000, service_s=0.4, cache=False)
    report = await run_profile(config_for(server, rate=50, duration_s=2.0))
    # 100 arrivals at 20 ms spacing, although each response takes 400 ms.
    assert len(server.arrivals) == 100 == report.overall["arrivals"]
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert abs(statistics.median(gaps) - 0.02) < 0.004
    assert 1.9 < server.arrivals[-1] - server.arrivals[0] < 2.1
    lat = report.overall["latency_ms"]
    assert 390 < lat["p50"] < 550
    assert report.error_rate == 0.0


async def test_stall_shows_in_latency_no_coordinated_omission(echo_factory: Any) -> None:
    """The server freezes for 1 s. Every request meant to be sent during the freeze still leaves
    on time, and its latency includes its wait: ~20 requests see 0..1 s, so p90 is high. A closed
    loop would have waited with the server and recorded a single slow request (p90 ~ 10 ms)."""
    server = echo_factory(workers=1, service_s=0.01, cache=False)
    loop = asyncio.get_running_loop()
    loop.call_later(1.0, server.stall, 1.0)
    t0 = time.monotonic()
    report = await run_profile(config_for(server, rate=20, duration_s=3.0))
    during = [t for t in server.arrivals if 1.05 < t - t0 < 1.95]
    assert len(during) >= 16  # arrivals continued while the server was frozen
    lat = report.overall["latency_ms"]
    assert report.overall["ok"] == 60
    assert lat["max"] > 850
    assert lat["p90"] > 400, lat
    assert lat["p50"] < 200, lat


async def test_client_lateness_is_counted_in_latency(echo_factory: Any) -> None:
    """If the load generator itself is blocked, the requests it owed go out late, and their
    latency still starts at their intended time."""
    server = echo_factory(workers=100, service_s=0.001, cache=False)
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, time.sleep, 0.3)  # block the client's event loop for 300 ms
    report = await run_profile(config_for(server, rate=40, duration_s=1.5))
    assert report.overall["arrivals"] == 60
    assert report.client["lag_ms"]["max"] > 250
    assert report.overall["latency_ms"]["max"] > 250
    assert report.overall["latency_ms"]["p50"] < 50


async def test_concurrency_cap_drops_count_as_errors(echo_factory: Any) -> None:
    server = echo_factory(workers=100, service_s=1.5, cache=False)
    report = await run_profile(config_for(server, rate=20, duration_s=1.0, concurrency=5, window_s=0.5))
    codes = report.overall["errors_by_code"]
    assert codes["dropped"] == 15
    assert report.overall["ok"] == 5
    assert abs(report.error_rate - 0.75) < 1e-9
    assert any("dropped" in n for n in report.notes)


async def test_timeouts_and_queue_full(echo_factory: Any) -> None:
    slow = echo_factory(workers=10, service_s=2.0, cache=False)
    report = await run_profile(config_for(slow, rate=10, duration_s=0.5, timeout_s=0.3))
    assert report.overall["errors_by_code"] == {"timeout": 5}
    full = echo_factory(workers=1, service_s=0.1, queue_max=2, cache=False)
    report = await run_profile(config_for(full, rate=40, duration_s=0.5))
    assert report.overall["errors_by_code"].get("429", 0) >= 10
    assert report.overall["ok"] >= 3


async def test_hard_bounds(echo_factory: Any) -> None:
    server = echo_factory(workers=100, service_s=0.001)
    by_count = await run_profile(config_for(server, rate=50, duration_s=10, max_requests=7))
    assert by_count.overall["arrivals"] == 7 and by_count.stopped_by == "max_requests"
    t0 = time.monotonic()
    by_time = await run_profile(config_for(server, rate=50, duration_s=10, max_seconds=1.0))
    # Bounds are far from the run they rule out (10 s here, 5 s of service below), not tight to
    # the 1 s deadline: a busy CI machine adds scheduling delay, and that is not what is tested.
    assert time.monotonic() - t0 < 4.0
    assert by_time.stopped_by == "max_seconds"
    assert 45 <= by_time.overall["arrivals"] <= 51
    slow = echo_factory(workers=100, service_s=5.0)  # in flight at the deadline: cancelled
    t0 = time.monotonic()
    cut = await run_profile(config_for(slow, rate=10, duration_s=0.5, max_seconds=1.0))
    assert time.monotonic() - t0 < 4.0
    assert cut.client["unfinished"] == 5 and cut.overall["outcomes"] == 0


async def test_stop_event_ends_the_run_with_a_report(echo_factory: Any) -> None:
    server = echo_factory(workers=100, service_s=0.001)
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.6, stop.set)
    t0 = time.monotonic()
    report = await run_profile(config_for(server, rate=20, duration_s=30), stop=stop)
    assert time.monotonic() - t0 < 10  # the run it rules out takes 30 s
    assert report.stopped_by == "stopped"
    assert 10 <= report.overall["arrivals"] <= 14
    slow = echo_factory(workers=100, service_s=5.0, cache=False)  # a stop does not wait for these
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(0.5, stop.set)
    t0 = time.monotonic()
    report = await run_profile(config_for(slow, rate=10, duration_s=30), stop=stop)
    assert time.monotonic() - t0 < 4.5  # waiting for the in-flight requests would take ≥ 5 s
    assert report.client["unfinished"] == report.overall["arrivals"] >= 4


async def test_windows_add_up_and_never_straddle_phases(echo_factory: Any) -> None:
    server = echo_factory(workers=50, service_s=0.02)
    seen: list[Any] = []
    cfg = config_for(server, profile="spike", rate=10, baseline_s=0.75, spike_factor=3, spike_s=0.75,
                     recovery_s=0.75, window_s=0.5)
    report = await run_profile(cfg, on_window=seen.append)
    assert seen == report.windows
    assert sum(w.arrivals for w in report.windows) == report.overall["arrivals"]
    assert sum(w.completed for w in report.windows) == report.overall["outcomes"]
    for phase in report.phases:
        for w in report.windows:
            if w.phase == phase["name"]:
                assert phase["t_start"] - 1e-3 <= w.t_start and w.t_end <= phase["t_end"] + 1e-3
    assert [p["name"] for p in report.phases][:3] == ["baseline", "spike", "recovery"]
    assert report.phases[1]["stats"]["arrivals"] == 23  # 0.75 s at 30/s (constant: 0, 1/30, ...)


async def test_poisson_arrivals_are_seeded(echo_factory: Any) -> None:
    server = echo_factory(workers=100, service_s=0.001)
    a = await run_profile(config_for(server, rate=100, duration_s=1.0, arrival="poisson", seed=7))
    b = await run_profile(config_for(server, rate=100, duration_s=1.0, arrival="poisson", seed=7))
    assert a.overall["arrivals"] == b.overall["arrivals"]
    assert 70 <= a.overall["arrivals"] <= 130
