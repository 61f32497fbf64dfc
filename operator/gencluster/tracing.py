"""OpenTelemetry tracing for the operator, the workload and the load tester: off by default.

Why the standard variables and nothing of our own: a platform team already knows them, and the
SDK reads them itself. Tracing is ON only when one of these says so:
- `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (OTLP over
  HTTP/protobuf; this is what the operator renders from `spec.tracing`), or
- `OTEL_TRACES_EXPORTER` is `otlp` or `console`;
and never when `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`. (The SDK's own default
exporter is otlp, i.e. "on"; a server that starts exporting spans because nothing was configured
would surprise people, hence the stricter rule.)

Everything else comes from the SDK as usual: `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
`OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` (default parentbased_always_on),
`OTEL_BSP_*` (the batch span processor), `OTEL_EXPORTER_OTLP_*` (endpoint, headers, timeout),
`OTEL_PROPAGATORS` (default tracecontext,baggage). Only `http/protobuf` is installed: an
`OTEL_EXPORTER_OTLP_PROTOCOL` of grpc is logged and replaced by http/protobuf.

When tracing is off no tracer provider is installed: `trace.get_tracer` returns the API's no-op
tracer, whose spans cost a function call (docs/benchmarks.md measures it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from opentelemetry import trace

log = logging.getLogger(__name__)

SDK_DISABLED = "OTEL_SDK_DISABLED"
TRACES_EXPORTER = "OTEL_TRACES_EXPORTER"
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
PROTOCOL = "OTEL_EXPORTER_OTLP_PROTOCOL"
TRACES_PROTOCOL = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
SERVICE_NAME = "OTEL_SERVICE_NAME"
SUPPORTED_PROTOCOL = "http/protobuf"


@dataclass(frozen=True)
class TracingChoice:
    """What the environment asks for: whether tracing is on, and with which exporter."""

    enabled: bool
    exporter: str  # otlp | console | none
    reason: str


def choose(env: Mapping[str, str]) -> TracingChoice:
    """Pure: read the decision from OTEL_* variables (see the module docstring)."""
    if env.get(SDK_DISABLED, "").strip().lower() == "true":
        return TracingChoice(False, "none", f"{SDK_DISABLED}=true")
    exporters = [e.strip().lower() for e in env.get(TRACES_EXPORTER, "").split(",") if e.strip()]
    if exporters == ["none"]:
        return TracingChoice(False, "none", f"{TRACES_EXPORTER}=none")
    endpoint = env.get(TRACES_ENDPOINT) or env.get(ENDPOINT)
    if exporters:
        known = [e for e in exporters if e in ("otlp", "console")]
        if not known:
            return TracingChoice(False, "none", f"{TRACES_EXPORTER}={','.join(exporters)} unsupported")
        return TracingChoice(True, known[0], f"{TRACES_EXPORTER}={known[0]}")
    if endpoint:
        return TracingChoice(True, "otlp", f"OTLP endpoint {endpoint}")
    return TracingChoice(False, "none", "no OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_TRACES_EXPORTER set")


_SHUTDOWN: Callable[[], None] | None = None


def setup(service_name: str, env: Mapping[str, str] | None = None,
          attributes: Mapping[str, str] | None = None) -> TracingChoice:
    """Install the global tracer provider when the environment turns tracing on (once per
    process; later calls return the same choice without installing another provider)."""
    global _SHUTDOWN
    env = os.environ if env is None else env
    choice = choose(env)
    if not choice.enabled or _SHUTDOWN is not None:
        return choice
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    base = {"service.name": env.get(SERVICE_NAME) or service_name, **(attributes or {})}
    # Resource.create merges OTEL_RESOURCE_ATTRIBUTES / OTEL_SERVICE_NAME over `base`.
    resource = Resource.create({k: v for k, v in base.items() if v})
    provider = TracerProvider(resource=resource)  # the sampler comes from OTEL_TRACES_SAMPLER
    exporter: SpanExporter
    if choice.exporter == "console":
        exporter = ConsoleSpanExporter()
    else:
        protocol = env.get(TRACES_PROTOCOL) or env.get(PROTOCOL) or SUPPORTED_PROTOCOL
        if protocol != SUPPORTED_PROTOCOL:
            log.warning("OTLP protocol %s is not installed; exporting with %s", protocol,
                        SUPPORTED_PROTOCOL)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _SHUTDOWN = provider.shutdown
    log.info("tracing on (%s): service %s, sampler %s", choice.reason, base["service.name"],
             provider.sampler.get_description())
    return choice


def shutdown() -> None:
    """Flush and stop the exporter (at process exit); a no-op when tracing is off."""
    global _SHUTDOWN
    if _SHUTDOWN is not None:
        try:
            _SHUTDOWN()
        except Exception as err:  # the backend is gone: nothing else to do at exit
            log.warning("tracing shutdown: %s", err)
        _SHUTDOWN = None


def trace_id_hex(span: trace.Span | None = None) -> str | None:
    """The 32-hex trace id of `span` (default: the current one), or None when not valid."""
    ctx = (span or trace.get_current_span()).get_span_context()
    return trace.format_trace_id(ctx.trace_id) if ctx.is_valid else None
