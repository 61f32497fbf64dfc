"""HTTP routes (aiohttp): request parsing, error mapping, metrics bookkeeping.

Why aiohttp: it is already in the image (Kopf depends on it), its server is asyncio-native with
streaming request bodies and multipart, and one process serves /v1/generate, /metrics and admin
without an ASGI server and framework on top. Every client error is JSON {"error": message}.
The admin API (/admin/*) is its own app when GENCLUSTER_ADMIN_PORT is set (build_admin_app: the
operator reaches it on a port the workload's NetworkPolicy admits only from the operator's pod);
the main port then has no /admin/* routes (404).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import CONTENT_TYPE_LATEST

from . import meshing
from .admin import AdminAuth
from .batcher import DeviceHung, QueueFull, ShuttingDown
from .config import ConfigError, parse_batch_update
from .faults import FaultError
from .imaging import RequestError
from .inference import OutOfMemory
from .service import Charge, GenerateRequest, GenerateResult, NotReady, Service

log = logging.getLogger(__name__)
tracer = trace.get_tracer("gencluster_workload")

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SERVICE: web.AppKey[Service] = web.AppKey("service", Service)
AUTH: web.AppKey[AdminAuth] = web.AppKey("auth", AdminAuth)
QUERY_PARAMS = {"resolution", "format"}


@dataclass
class Readiness:
    """Readiness the operator turned off (PUT /admin/readiness) before removing this pod: /readyz
    answers 503 so the Service stops routing here, while requests that still arrive are served
    (with Connection: close, so keep-alive clients reconnect through the Service elsewhere)."""

    turned_off: bool = False
    since: float = 0.0
    until: float | None = None  # a lease: readiness comes back by itself (monotonic time)

    @property
    def off(self) -> bool:
        """Off, and the lease (if any) not run out: an operator that stopped mid-drain cannot
        leave the pod unready for good."""
        return self.turned_off and (self.until is None or time.monotonic() < self.until)


READINESS: web.AppKey[Readiness] = web.AppKey("readiness", Readiness)


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def parse_params(query: Any) -> tuple[int, str]:
    unknown = sorted(set(query) - QUERY_PARAMS)
    if unknown:
        raise RequestError(
            400, f"unknown query parameter(s): {', '.join(unknown)}; allowed: resolution, format"
        )
    raw = query.get("resolution", str(meshing.DEFAULT_RESOLUTION))
    lo, hi = meshing.MIN_RESOLUTION, meshing.MAX_RESOLUTION
    try:
        resolution = int(raw)
    except ValueError:
        raise RequestError(400, f"resolution must be an integer in {lo}..{hi}, got {raw!r}") from None
    if not lo <= resolution <= hi:
        raise RequestError(400, f"resolution must be in {lo}..{hi}, got {resolution}")
    fmt = query.get("format", "glb").lower()
    if fmt not in meshing.FORMATS:
        raise RequestError(
            400, f"format must be one of {', '.join(meshing.FORMATS)}, got {query.get('format')!r}"
        )
    return resolution, fmt


async def read_image_body(request: web.Request) -> bytes:
    """Raw image/* body, or the image part of a multipart/form-data upload."""
    ctype = request.content_type
    if ctype.startswith("image/"):
        return await request.read()  # client_max_size bounds it (413)
    if ctype == "multipart/form-data":
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue  # a nested multipart: not an image
            if part.name not in ("image", "file") and not part.filename:
                continue
            pctype = part.headers.get("Content-Type", "application/octet-stream")
            if not (pctype.startswith("image/") or pctype == "application/octet-stream"):
                raise RequestError(
                    415, f"multipart image part has Content-Type {pctype}; expected image/png or image/jpeg"
                )
            data = bytearray()
            while chunk := await part.read_chunk(1 << 16):
                data += chunk
                if len(data) > MAX_UPLOAD_BYTES:
                    raise RequestError(413, f"upload larger than {MAX_UPLOAD_BYTES} bytes")
            return bytes(data)
        raise RequestError(400, "multipart body has no 'image' (or 'file') part")
    shown = ctype or "none"
    raise RequestError(
        415,
        f"Content-Type {shown} not supported: send the image as image/png, image/jpeg or multipart/form-data",
    )


async def generate(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    metrics = service.metrics
    t0 = time.perf_counter()
    metrics.inflight.inc()
    service.inflight += 1
    outcome, response = "error", None
    charge = Charge()
    # W3C trace context from the caller (traceparent / tracestate), as OTEL_PROPAGATORS says.
    with tracer.start_as_current_span(
        "POST /v1/generate", context=propagate.extract(request.headers), kind=SpanKind.SERVER,
        attributes={"http.request.method": "POST", "url.path": request.path,
                    "gencluster.model.version": service.model_version,
                    "gencluster.pod": service.pod},
    ) as span:
        try:
            response, outcome, source = await _generate(request, service, charge)
        finally:
            status = response.status if response is not None else 500
            metrics.inflight.dec()
            service.inflight -= 1
            metrics.requests.labels(str(status)).inc()
            metrics.request_duration.labels(outcome).observe(time.perf_counter() - t0)
            charged = "ok" if outcome == "ok" else "error"  # a cache hit was charged nothing
            if charge.gpu_seconds:
                metrics.gpu_seconds.labels(charged).inc(charge.gpu_seconds)
            if charge.cpu_seconds:
                metrics.cpu_seconds.labels(charged).inc(charge.cpu_seconds)
            span.set_attribute("http.response.status_code", status)
            span.set_attribute("gencluster.gpu_seconds", charge.gpu_seconds)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
        if response is not None and status == 200 and source:
            metrics.assets.labels(source).inc()
            metrics.asset_bytes.labels(source).inc(response.content_length or 0)
            span.set_attribute("gencluster.cache.result", response.headers.get("X-Cache", ""))
    return response


async def _generate(request: web.Request, service: Service,
                    charge: Charge) -> tuple[web.Response, str, str]:
    """(response, outcome for the duration histogram, asset source or "")."""
    response, outcome, result = await _answer(request, service, charge)
    if result is None:
        return response, outcome, ""
    if result.cache.startswith("hit-"):
        source = result.cache.removeprefix("hit-")
    else:
        source = "coalesced" if result.coalesced else "computed"
    return response, outcome, source


async def _answer(request: web.Request, service: Service,
                  charge: Charge) -> tuple[web.Response, str, GenerateResult | None]:
    if service.faults.should_fail():
        return error(500, "injected fault (admin fault switch)"), "error", None
    try:
        resolution, fmt = parse_params(request.query)
        data = await read_image_body(request)
        if not data:
            raise RequestError(400, "empty body: send a PNG or JPEG image")
        no_cache = "no-cache" in request.headers.get("Cache-Control", "").lower()
        result = await service.generate(GenerateRequest(data, resolution, fmt, not no_cache, charge))
    except RequestError as exc:
        return error(exc.status, exc.message), "error", None
    except web.HTTPRequestEntityTooLarge:
        return error(413, f"upload larger than {MAX_UPLOAD_BYTES} bytes"), "error", None
    except QueueFull as exc:
        return error(429, str(exc), {"Retry-After": str(exc.retry_after_s)}), "error", None
    except (NotReady, ShuttingDown, DeviceHung) as exc:
        return error(503, str(exc), {"Retry-After": "1"}), "error", None
    except OutOfMemory as exc:
        return error(503, str(exc), {"Retry-After": "1"}), "error", None
    except ValueError as exc:  # raised by the model for this input
        return error(422, f"the model cannot process this image: {exc}"), "error", None
    except Exception:
        log.exception("generate failed")
        return error(500, "internal error while generating the mesh"), "error", None
    headers = {
        "X-Cache": result.cache,
        "X-Model": service.model_name,
        "X-Model-Version": service.model_version,
        "Content-Disposition": f'inline; filename="mesh.{fmt}"',
    }
    if result.batch_size is not None:
        headers["X-Batch-Size"] = str(result.batch_size)
        headers["X-Forward-Ms"] = str(result.forward_ms)
    if result.coalesced:
        headers["X-Coalesced"] = "true"
    response = web.Response(body=result.body, content_type=result.content_type, headers=headers)
    return response, ("cache_hit" if result.cache.startswith("hit") else "ok"), result


async def healthz(request: web.Request) -> web.Response:
    """Liveness: fails only for what a restart cures, a hung device."""
    hung = request.app[SERVICE].device_hung
    if hung is not None:
        return web.json_response({"status": "device hung", "reason": str(hung)}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if service.draining:
        return web.json_response({"ready": False, "reason": "shutting down"}, status=503)
    if request.app[READINESS].off:
        return web.json_response({"ready": False, "reason": "readiness turned off (draining before removal)"},
                                 status=503)
    if not service.ready:
        return web.json_response({"ready": False, "reason": "model loading"}, status=503)
    if service.device_hung is not None:
        return web.json_response({"ready": False, "reason": str(service.device_hung)}, status=503)
    return web.json_response({"ready": True, "model": service.model_name, "version": service.model_version})


async def metrics(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    service.publish(service.memory.sample())
    return web.Response(body=service.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def admin_only(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        denied = request.app[AUTH].check(request.headers.get("Authorization"))
        if denied is not None:
            status, message = denied
            headers = {"WWW-Authenticate": 'Bearer realm="gencluster"'} if status == 401 else None
            return error(status, message, headers)
        return await handler(request)

    return guarded


async def get_batching(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].batch_settings.as_json())


async def put_batching(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    try:
        body = json.loads(await request.text() or "null")
    except json.JSONDecodeError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    try:
        new = parse_batch_update(body, service.batch_settings)
    except ConfigError as exc:
        return error(400, str(exc))
    service.set_batching(new)
    return web.json_response(new.as_json())


def _readiness_report(request: web.Request) -> dict[str, Any]:
    service, state = request.app[SERVICE], request.app[READINESS]
    return {
        "ready": not state.off,
        "queued": service.batcher.depth if service.batcher is not None else 0,
        "inflight": service.inflight,
        "offSeconds": round(time.monotonic() - state.since, 1) if state.off else 0.0,
    }


async def get_faults(request: web.Request) -> web.Response:
    faults = request.app[SERVICE].faults
    if not faults.enabled:
        return error(404, "fault injection is off (start with GENCLUSTER_FAULT_INJECTION=on)")
    return web.json_response(faults.as_json())


async def put_faults(request: web.Request) -> web.Response:
    """{slowdown?, errorPercent?, stuck?, allocateMiB?}: inject faults into this pod (docs/alerts.md)."""
    faults = request.app[SERVICE].faults
    if not faults.enabled:
        return error(404, "fault injection is off (start with GENCLUSTER_FAULT_INJECTION=on)")
    try:
        body = json.loads(await request.text() or "null")
        state = faults.update(body)
    except json.JSONDecodeError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    except FaultError as exc:
        return error(400, str(exc))
    log.warning("fault switch set by an admin: %s", state)
    return web.json_response(state)


async def get_readiness(request: web.Request) -> web.Response:
    return web.json_response(_readiness_report(request))


MAX_LEASE_SECONDS = 86400


async def put_readiness(request: web.Request) -> web.Response:
    """{"ready": false[, "leaseSeconds": n]}: stop taking new connections from the Service, keep
    serving (for n seconds, renewable by another PUT; without a lease until undone);
    {"ready": true}: undo."""
    try:
        body = json.loads(await request.text() or "null")
    except json.JSONDecodeError as exc:
        return error(400, f"body is not valid JSON: {exc}")
    lease = body.get("leaseSeconds") if isinstance(body, dict) else None
    if (not isinstance(body, dict) or not isinstance(body.get("ready"), bool)
            or not set(body) <= {"ready", "leaseSeconds"}
            or (lease is not None and (isinstance(lease, bool) or not isinstance(lease, int)
                                       or not 1 <= lease <= MAX_LEASE_SECONDS))):
        return error(400, 'body must be {"ready": true|false, "leaseSeconds": 1..86400 (optional)}')
    state = request.app[READINESS]
    now = time.monotonic()
    want_off = not body["ready"]
    if state.off != want_off:
        state.since = now
        log.info("readiness turned %s by the operator", "off" if want_off else "on")
    state.turned_off = want_off
    state.until = now + lease if want_off and lease is not None else None
    return web.json_response(_readiness_report(request))


@web.middleware
async def close_when_leaving(request: web.Request, handler: Handler) -> web.StreamResponse:
    """While readiness is off or the server drains, every response closes its connection."""
    response = await handler(request)
    if (request.app[READINESS].off or request.app[SERVICE].draining) and not response.prepared:
        response.force_close()
    return response


async def gpu_profile(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].memory.profile())


async def optimization_report(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    depth = service.batcher.depth if service.batcher is not None else 0
    report = service.memory.optimization_report(service.batch_settings.as_json(), depth)
    return web.json_response(report)


async def cache_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].cache_stats())


ADMIN_ENDPOINTS = ("GET|PUT /admin/batching", "GET|PUT /admin/readiness", "GET|PUT /admin/faults")
ADMIN_PORT: web.AppKey[int] = web.AppKey("admin_port", int)  # 0: /admin/* on this app's port


async def index(request: web.Request) -> web.Response:
    admin_port = request.app[ADMIN_PORT]
    endpoints = [
        "POST /v1/generate",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        *(() if admin_port else ADMIN_ENDPOINTS),
        "GET /api/gpu/profile",
        "GET /api/gpu/optimization-report",
        "GET /api/cache/stats",
    ]
    info: dict[str, Any] = {**request.app[SERVICE].info(), "endpoints": endpoints}
    if admin_port:
        info["admin"] = {"port": admin_port, "endpoints": list(ADMIN_ENDPOINTS)}
    return web.json_response(info)


def _add_admin_routes(app: web.Application) -> None:
    app.router.add_get("/admin/batching", admin_only(get_batching))
    app.router.add_put("/admin/batching", admin_only(put_batching))
    app.router.add_get("/admin/readiness", admin_only(get_readiness))
    app.router.add_put("/admin/readiness", admin_only(put_readiness))
    app.router.add_get("/admin/faults", admin_only(get_faults))
    app.router.add_put("/admin/faults", admin_only(put_faults))


def build_app(service: Service, auth: AdminAuth, readiness: Readiness | None = None,
              admin_port: int = 0) -> web.Application:
    """The main port's app. With `admin_port` (the admin API is served by build_admin_app on
    that port) /admin/* is not routed here: 404, whatever the token."""
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES, middlewares=[close_when_leaving])
    app[SERVICE] = service
    app[AUTH] = auth
    app[READINESS] = readiness if readiness is not None else Readiness()
    app[ADMIN_PORT] = admin_port
    app.router.add_post("/v1/generate", generate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    if not admin_port:
        _add_admin_routes(app)
    app.router.add_get("/api/gpu/profile", gpu_profile)
    app.router.add_get("/api/gpu/optimization-report", optimization_report)
    app.router.add_get("/api/cache/stats", cache_stats)
    app.router.add_get("/", index)
    return app


def build_admin_app(service: Service, auth: AdminAuth, readiness: Readiness) -> web.Application:
    """The admin port's app: /admin/* only (bearer token still required), sharing the service
    and the readiness state with the main app (PUT /admin/readiness turns the main /readyz)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[SERVICE] = service
    app[AUTH] = auth
    app[READINESS] = readiness
    _add_admin_routes(app)
    return app
