"""The operator's spans: one `control.tick` per interval with `scrape`, `decide` and `act`
inside and the decision and its reason as attributes (the real ClusterLoop against loopback pods,
recorded by the OpenTelemetry SDK's in-memory exporter), and the OTEL_* rule that turns tracing
on or off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gencluster.control.samples import PodRef
from gencluster.edge.control_loop import ClusterLoop
from gencluster.metrics_source.scrape import new_session
from gencluster.tracing import choose

from .loopback import serve
from .test_autoscaler import Clock, FakePod, Recorder, spec

EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):  # once per process: the global provider
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
        trace.set_tracer_provider(provider)
    EXPORTER.clear()
    yield EXPORTER
    EXPORTER.clear()


async def test_a_tick_is_one_span_with_scrape_decide_act(spans: InMemorySpanExporter) -> None:
    pods = {"127.0.3.81": FakePod(queue=40, served=100, latencies=[0.3] * 100, batches=[4] * 25)}
    refs = [PodRef("gc-workload-0", "uid-0", "127.0.3.81")]
    rec, clock = Recorder(), Clock()
    async with serve({ip: p.routes() for ip, p in pods.items()}) as port, \
            new_session() as session:
        loop = ClusterLoop("gc", "ns", rec, session, clock=clock)
        await loop.tick(spec(port), 1, refs, 1)
        for p in pods.values():
            p.served += 100
            p.latencies += [0.3] * 100
            p.batches += [4] * 25
        clock.t += 5
        report = await loop.tick(spec(port), 1, refs, 1)
    assert report.decisions is not None
    finished = spans.get_finished_spans()
    ticks = [s for s in finished if s.name == "control.tick"]
    assert len(ticks) == 2
    last = ticks[-1]
    children = {s.name: s for s in finished
                if s.parent is not None and s.parent.span_id == last.context.span_id}
    assert set(children) == {"scrape", "decide", "act"}
    assert all(c.context.trace_id == last.context.trace_id for c in children.values())
    order = sorted(children.values(), key=lambda s: s.start_time or 0)
    assert [s.name for s in order] == ["scrape", "decide", "act"]
    attrs = last.attributes or {}
    assert attrs["gencluster.replicas.desired"] == report.decisions.replicas.desired
    assert attrs["gencluster.replicas.reason"] == report.decisions.replicas.reason
    assert attrs["gencluster.cluster"] == "gc" and attrs["k8s.namespace.name"] == "ns"
    assert (children["decide"].attributes or {})["gencluster.replicas.desired"] == \
        report.decisions.replicas.desired
    assert (children["scrape"].attributes or {})["gencluster.pods.scraped"] == 1
    # the first tick saw the backlog and scaled up: its act span says to what
    first = ticks[0]
    first_act = next(s for s in finished if s.name == "act" and s.parent is not None
                     and s.parent.span_id == first.context.span_id)
    assert rec.scales and (first.attributes or {})["gencluster.replicas.desired"] == rec.scales[0]
    assert (first_act.attributes or {})["gencluster.scaled_to"] == rec.scales[0] > 1
    assert "queueDepthPerReplica" in str((first.attributes or {})["gencluster.replicas.reason"])


@pytest.mark.parametrize(("env", "enabled", "exporter"), [
    ({}, False, "none"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True, "otlp"),
    ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True, "otlp"),
    ({"OTEL_TRACES_EXPORTER": "console"}, True, "console"),
    ({"OTEL_TRACES_EXPORTER": "otlp,console"}, True, "otlp"),
    ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4318"}, False, "none"),
    ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, False, "none"),
    ({"OTEL_TRACES_EXPORTER": "zipkin"}, False, "none"),
    ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False, "none"),
])
def test_tracing_is_off_unless_otel_variables_turn_it_on(env: dict[str, str], enabled: bool,
                                                         exporter: str) -> None:
    choice = choose(env)
    assert (choice.enabled, choice.exporter) == (enabled, exporter), choice.reason
