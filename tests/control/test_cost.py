"""Cost accounting (control/cost.py): the ledger, the pure report, status.cost, and the loop.

Property tests drive the ledger with random fleets (pods coming and going, counters growing,
resetting, NaN) and check the invariants; example tests pin exact figures; the last test runs the
real ClusterLoop against loopback pods that export the workload's cost counters.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.api.spec import parse_spec
from gencluster.control import samples as m
from gencluster.control.cost import (
    DAY,
    HOUR,
    CostLedger,
    PodShape,
    Prices,
    Totals,
    cost_report,
    cost_status,
    quantity,
)
from gencluster.control.samples import PodRef, PodSample
from gencluster.edge.control_loop import ClusterLoop
from gencluster.edge.metrics import REGISTRY
from gencluster.metrics_source.scrape import new_session
from gencluster.simulate.cli import main as simulate

from .loopback import serve
from .test_autoscaler import Clock, FakePod, Recorder
from .test_autoscaler import spec as loop_spec


def sample(t: float, pod: str, uid: str, gpu_s: float, assets: float = 0.0,
           computed_bytes: float = 0.0, cached: float = 0.0) -> PodSample:
    return PodSample(t, pod, uid, counters={
        (m.GPU_SECONDS, (("outcome", "ok"),)): gpu_s,
        (m.ASSETS_TOTAL, (("source", "computed"),)): assets,
        (m.ASSETS_TOTAL, (("source", "l1"),)): cached,
        (m.ASSET_BYTES, (("source", "computed"),)): computed_bytes,
        (m.ASSET_BYTES, (("source", "l1"),)): 1e12,  # served from cache: not "generated"
    })


def refs(n: int) -> list[PodRef]:
    return [PodRef(f"p{i}", f"u{i}") for i in range(n)]


def spec(**extra: Any) -> Any:
    return parse_spec({"workload": {"image": "x", "gpusPerReplica": 2,
                                    "resources": {"requests": {"cpu": "4", "memory": "16Gi"}}},
                       **extra})


def test_quantities() -> None:
    assert quantity("500m") == 0.5 and quantity("2") == 2.0 and quantity("4Gi") == 4 * 1024**3
    assert quantity("1e3") == 1000.0 and quantity("1.5G") == 1.5e9
    assert quantity(None) is None and quantity("lots") is None and quantity("3Qi") is None


def test_exact_figures_for_a_steady_fleet() -> None:
    """3 pods for one hour (ticks every 5 s), each busy 25 % of the time, 1,800 requests of which
    900 computed, 0.9 GB generated; 2 GPUs per pod at 2.50, 4 cores at 0.05, 16 GiB at 0.01."""
    ledger = CostLedger()
    t0 = 1_000_020.0  # a whole minute: the hour is exactly 60 buckets
    for k in range(721):
        t = t0 + 5 * k
        ledger.observe(t, [sample(t, f"p{i}", f"u{i}", 0.25 * 5 * k, 0.25 * k, 0.25e6 * k * 1,
                                  0.25 * k) for i in range(3)], refs(3))
    cost = {"gpuHourPrice": "2.50", "cpuCoreHourPrice": "0.05", "memoryGiBHourPrice": "0.01"}
    s = spec(cost=cost)
    now = t0 + 3600
    r = cost_report(ledger.totals(now, HOUR), Prices.from_spec(s.cost), PodShape.from_spec(s))
    assert math.isclose(r.covered_seconds, 3600)
    assert math.isclose(r.gpu_hours, 6.0) and math.isclose(r.busy_gpu_hours, 1.5)
    assert math.isclose(r.utilization or 0, 0.25)
    assert math.isclose(r.requests, 1080) and math.isclose(r.computed, 540)
    per_pod_hour = 2 * 2.50 + 4 * 0.05 + 16 * 0.01
    assert math.isclose(r.cost or 0, 3 * per_pod_hour)
    assert math.isclose(r.per_thousand_requests or 0, 3 * per_pod_hour * 1000 / 1080)
    assert math.isclose(r.gigabytes_generated, 3 * 0.25e6 * 720 / 1e9)
    assert r.saving == 0.0 and r.static_peak_pods == 3  # a steady fleet is its own static twin
    status, _, _ = cost_status(s, ledger, now)
    assert status["currency"] == "USD" and status["gpuHourPrice"] == "2.50"
    assert status["utilizationPercent"] == 25 and status["savingPercent"] == 0
    assert Decimal(status["lastHour"]["cost"]) == Decimal(f"{3 * per_pod_hour:.4f}")
    assert status["lastHour"]["gpuHours"] == "6.000000" and status["lastHour"]["requests"] == 1080


def test_a_fleet_that_scales_down_saves_against_its_peak() -> None:
    """4 pods for 15 min, then 1 pod for 45 min: provisioned 1.75 pod-hours vs a static 4."""
    ledger = CostLedger()
    t0 = 1_999_980.0
    for k in range(721):
        t = t0 + 5 * k
        n = 4 if t <= t0 + 900 else 1
        ledger.observe(t, [], refs(n))
    s = spec(cost={"gpuType": "nvidia-h200", "gpuHourPrices": {"nvidia-h200": "3.00"}})
    status, hour, day = cost_status(s, ledger, t0 + 3600)
    assert hour.static_peak_pods == 4
    assert math.isclose(hour.gpu_hours, 2 * (4 * 900 + 1 * 2700) / 3600)
    assert math.isclose(hour.saving or 0, 1 - (4 * 900 + 2700) / (4 * 3600))
    assert status["savingPercent"] == round(100 * (1 - 6300 / 14400))
    # CPU/memory are not priced here: the money is GPU-hours x the H200's price
    assert math.isclose(hour.cost or 0, hour.gpu_hours * 3.00)
    assert math.isclose(hour.static_cost or 0, hour.static_gpu_hours * 3.00)
    # no requests: no cost per request, and status says nothing rather than 0 or infinity
    assert hour.per_thousand_requests is None and "perThousandRequests" not in status
    assert day.saving == hour.saving  # the ledger has seen one hour only


def test_without_prices_hours_and_ratios_but_no_money() -> None:
    ledger = CostLedger()
    for k in range(13):
        ledger.observe(100.0 + 5 * k, [sample(100.0 + 5 * k, "p0", "u0", 2.5 * k, k)], refs(1))
    status, hour, _ = cost_status(spec(), ledger, 160.0)
    assert hour.cost is None and hour.per_thousand_requests is None
    assert "currency" not in status and "cost" not in status["lastHour"]
    assert status["utilizationPercent"] == 50 and status["lastHour"]["gpuHours"] == "0.033333"


def test_resets_new_pods_gaps_and_bad_values() -> None:
    ledger = CostLedger()
    ledger.observe(0.0, [sample(0.0, "p0", "u0", 100.0, 10)], refs(1))  # baseline only
    ledger.observe(5.0, [sample(5.0, "p0", "u0", 102.0, 12)], refs(1))  # +2 s, +2
    ledger.observe(10.0, [sample(10.0, "p0", "u0", 1.0, 1)], refs(1))  # restart: +1 s, +1
    ledger.observe(15.0, [sample(15.0, "p0", "u1", 50.0, 50)], refs(1))  # new pod: baseline
    ledger.observe(20.0, [sample(20.0, "p0", "u1", float("nan"), 51)], refs(1))  # NaN ignored
    ledger.observe(25.0, [sample(25.0, "p0", "u1", 53.0, 52)], refs(1))  # +3 s, +1... +1
    ledger.observe(10_000.0, [], refs(1))  # the operator was down: the gap is not counted
    t = ledger.totals(10_000.0, DAY)
    assert t.busy_seconds == 2 + 1 + 3
    assert t.requests == 2 + 1 + 1 + 1
    assert t.seconds == 25.0 and t.pod_seconds == 25.0


def test_old_buckets_leave_the_day_and_the_hour() -> None:
    ledger = CostLedger()
    for k in range(0, 2 * 86400, 60):
        ledger.observe(float(k), [], refs(2 if k < 86340 else 1))
    now = float(2 * 86400 - 60)
    day, hour = ledger.totals(now, DAY), ledger.totals(now, HOUR)
    assert len(ledger.buckets) <= 1442
    assert day.peak_pods == 1 and hour.peak_pods == 1
    assert math.isclose(hour.seconds, 3600) and math.isclose(day.seconds, 86400)


@dataclass
class Fleet:
    """A random history: per tick, pods present and each pod's counter increments."""

    steps: list[list[tuple[int, float, float, bool]]] = field(default_factory=list)


fleets = st.lists(
    st.lists(st.tuples(st.integers(0, 5), st.floats(0, 10), st.floats(0, 100), st.booleans()),
             min_size=0, max_size=6),
    min_size=2, max_size=40)


@settings(max_examples=150, deadline=None)
@given(fleets, st.integers(1, 30), st.sampled_from(["0", "1.25", "999.999999"]))
def test_invariants_on_random_fleets(steps: list[list[tuple[int, float, float, bool]]],
                                     dt: int, gpu_price: str) -> None:
    ledger = CostLedger()
    counters: dict[str, tuple[float, float]] = {}
    expected_busy = expected_requests = 0.0
    seen: set[str] = set()
    for k, step in enumerate(steps):
        t = 1000.0 + k * dt
        present = sorted({f"p{i}" for i, *_ in step})
        batch = []
        for name in present:
            inc_busy, inc_req, reset = next((b, r, x) for i, b, r, x in step if f"p{i}" == name)
            busy, req = counters.get(name, (0.0, 0.0))
            if name in seen:  # a scraped pod with a baseline: its increase counts
                if reset and busy > 0 and req > 0:
                    # restarted: counts from zero, and (as for Prometheus' rate) a reset is
                    # only visible when the new value is below the old one
                    busy, req = min(inc_busy, busy / 2), min(inc_req, req / 2)
                    expected_busy += busy
                    expected_requests += req
                else:
                    busy, req = busy + inc_busy, req + inc_req
                    expected_busy += inc_busy
                    expected_requests += inc_req
            counters[name] = (busy, req)
            batch.append(sample(t, name, "u", busy, req))
        for gone in [n for n in seen if n not in present]:
            counters.pop(gone, None)
        seen = set(present)
        ledger.observe(t, batch, [PodRef(n, "u") for n in present])
    now = 1000.0 + (len(steps) - 1) * dt
    totals = ledger.totals(now, DAY)
    s = spec(cost={"gpuHourPrice": gpu_price})
    r = cost_report(totals, Prices.from_spec(s.cost), PodShape(gpus=1))
    assert math.isclose(totals.busy_seconds, expected_busy, rel_tol=1e-9, abs_tol=1e-6)
    assert math.isclose(totals.requests, expected_requests, rel_tol=1e-9, abs_tol=1e-6)
    assert totals.seconds == (len(steps) - 1) * dt
    assert totals.pod_seconds <= totals.peak_pods * totals.seconds + 1e-9
    assert r.gpu_hours <= r.static_gpu_hours + 1e-9
    if r.saving is not None:
        assert 0.0 <= r.saving <= 1.0
    assert r.cost is not None and math.isclose(r.cost, r.gpu_hours * float(gpu_price),
                                               rel_tol=1e-9, abs_tol=1e-12)
    if r.per_thousand_requests is not None:
        assert math.isclose(r.per_thousand_requests * r.requests / 1000, r.cost, rel_tol=1e-9)
    status, _, _ = cost_status(s, ledger, now)
    for key in ("gpuHours", "busyGpuHours", "staticGpuHours", "cost"):
        assert Decimal(status["lastDay"][key]) >= 0  # decimal strings, never NaN or negative


@dataclass
class CostPod(FakePod):
    """A fake pod that also exports the cost counters."""

    gpu_seconds: float = 0.0
    computed: int = 0
    generated_bytes: int = 0

    def text(self) -> str:
        return super().text() + "".join((
            f'gencluster_gpu_seconds_total{{outcome="ok"}} {self.gpu_seconds}\n',
            'gencluster_gpu_seconds_total{outcome="error"} 0\n',
            f'gencluster_assets_total{{source="computed"}} {self.computed}\n',
            f'gencluster_asset_bytes_total{{source="computed"}} {self.generated_bytes}\n'))


async def test_the_loop_writes_status_cost_and_operator_metrics() -> None:
    pods = {"127.0.3.71": CostPod(), "127.0.3.72": CostPod()}
    prefs = [PodRef(f"gc-workload-{i}", f"uid-{i}", ip) for i, ip in enumerate(pods)]
    rec, clock = Recorder(), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        raw = {**loop_spec(port), "cost": {"gpuHourPrice": "3.60", "currency": "EUR"}}
        for _ in range(13):  # one minute, ticks every 5 s
            await loop.tick(raw, 1, prefs, 2)
            for p in pods.values():
                p.gpu_seconds += 2.5  # half busy
                p.computed += 10
                p.generated_bytes += 10_000_000
                p.served += 10
            clock.t += 5
    status = rec.statuses[-1]["cost"]
    # 2 pods x 1 GPU x 60 s at 3.60/h = 0.12; 240 requests; 0.24 GB generated
    assert status["currency"] == "EUR" and status["utilizationPercent"] == 50
    assert status["lastHour"]["cost"] == "0.1200" and status["lastHour"]["requests"] == 240
    assert status["perThousandRequests"] == "0.5000" and status["perGigabyte"] == "0.5000"
    value = REGISTRY.get_sample_value("gencluster_operator_cost_per_thousand_requests",
                                      {"namespace": "ns", "name": "gc", "window": "1h",
                                       "currency": "EUR"})
    assert value is not None and math.isclose(value, 0.5)
    util = REGISTRY.get_sample_value("gencluster_operator_gpu_utilization_ratio",
                                     {"namespace": "ns", "name": "gc", "window": "24h"})
    assert util is not None and math.isclose(util, 0.5)


def test_totals_default_is_empty() -> None:
    r = cost_report(Totals(), Prices(gpu_hour=1.0), PodShape())
    assert r.utilization is None and r.saving is None and r.cost == 0.0


def test_the_simulator_reports_cost_the_same_way_for_every_policy(tmp_path: Any) -> None:
    trace = tmp_path / "t.csv"
    trace.write_text("second,requests\n" + "".join(
        f"{s},{10 if s < 200 or s >= 400 else 60}\n" for s in range(600)))
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert simulate(["--trace", str(trace), "--policy", "all", "--json"]) == 0
    rows = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(rows) >= 3
    for r in rows:
        # the same report as status.cost: money = GPU-hours x price, per 1k from served requests
        assert r["currency"] == "USD" and r["gpu_hour_price"] == "2.50"
        assert math.isclose(r["gpu_hours"], r["gpu_seconds"] / 3600, abs_tol=1e-3)
        assert math.isclose(r["cost"], r["gpu_hours"] * 2.5, rel_tol=1e-3, abs_tol=1e-3)
        assert 0 <= r["utilization_percent"] <= 100 and 0 <= r["saving_percent"] <= 100
        assert r["static_cost"] >= r["cost"] - 1e-3
        if r["policy"].startswith("fixed:"):
            assert r["saving_percent"] == 0  # a fixed fleet is its own static deployment
    scaled = [r for r in rows if r["policy"] == "gencluster"]
    assert scaled and scaled[0]["cost_per_1k_requests"] > 0
