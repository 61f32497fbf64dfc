"""The load tester's trace context: W3C traceparent on every request, the sampling rule shared
with OpenTelemetry's TraceIdRatioBased, and the slowest requests reported with their trace ids."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased

from gencluster.loadtest.engine import SLOWEST_KEPT, traceparent
from gencluster.loadtest.profiles import run_profile
from gencluster.loadtest.summary import summary_text

from .conftest import config_for

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$")


@settings(max_examples=300, deadline=None)
@given(st.integers(1, (1 << 128) - 1), st.integers(1, (1 << 64) - 1),
       st.sampled_from([0.0, 0.01, 0.1, 0.5, 0.999, 1.0]))
def test_the_sampled_flag_agrees_with_the_sdk_sampler(trace_id: int, span_id: int,
                                                      ratio: float) -> None:
    header, sampled = traceparent(trace_id, span_id, ratio)
    match = TRACEPARENT.match(header)
    assert match is not None and int(match.group(1), 16) == trace_id
    assert header.endswith("-01") == sampled
    sdk = TraceIdRatioBased(ratio).should_sample(None, trace_id, "x").decision
    assert sampled == (sdk == Decision.RECORD_AND_SAMPLE)


async def test_slowest_requests_carry_their_trace_ids(echo_factory: Any) -> None:
    server = echo_factory(workers=2, service_s=0.02, cache=False)
    report = await run_profile(config_for(server, rate=60, duration_s=1.0, trace_ratio=0.5))
    slow = report.slowest
    assert len(slow) == SLOWEST_KEPT
    latencies = [s["latency_ms"] for s in slow]
    assert latencies == sorted(latencies, reverse=True)
    # they are the slowest: nothing in the overall histogram is slower than the last kept one
    assert report.overall["latency_ms"]["max"] <= latencies[0] + 1.0
    ids = [s["trace_id"] for s in slow]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids) and len(set(ids)) == len(ids)
    assert {s["sampled"] for s in slow} <= {True, False}
    assert report.to_dict()["slowest"] == slow
    assert ids[0] in summary_text(report)
    none = await run_profile(config_for(server, rate=20, duration_s=0.5, trace_ratio=None))
    assert all(s["trace_id"] is None for s in none.slowest)
