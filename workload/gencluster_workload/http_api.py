"""HTTP routes (aiohttp): request parsing, error mapping, metrics bookkeeping.

Why aiohttp: it is already in the image (Kopf depends on it), its server is asyncio-native with
streaming request bodies and multipart, and one process serves /v1/generate, /metrics and admin
without an ASGI server and framework on top. Every client error is JSON {"error": message}.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import BodyPartReader, web
from prometheus_client import CONTENT_TYPE_LATEST

from . import meshing
from .admin import AdminAuth
from .batcher import QueueFull, ShuttingDown
from .config import ConfigError, parse_batch_update
from .imaging import RequestError
from .inference import OutOfMemory
from .service import GenerateRequest, NotReady, Service

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SERVICE: web.AppKey[Service] = web.AppKey("service", Service)
AUTH: web.AppKey[AdminAuth] = web.AppKey("auth", AdminAuth)
QUERY_PARAMS = {"resolution", "format"}


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
    try:
        response, outcome = await _generate(request, service)
    finally:
        status = response.status if response is not None else 500
        metrics.inflight.dec()
        service.inflight -= 1
        metrics.requests.labels(str(status)).inc()
        metrics.request_duration.labels(outcome).observe(time.perf_counter() - t0)
    return response


async def _generate(request: web.Request, service: Service) -> tuple[web.Response, str]:
    try:
        resolution, fmt = parse_params(request.query)
        data = await read_image_body(request)
        if not data:
            raise RequestError(400, "empty body: send a PNG or JPEG image")
        no_cache = "no-cache" in request.headers.get("Cache-Control", "").lower()
        result = await service.generate(GenerateRequest(data, resolution, fmt, not no_cache))
    except RequestError as exc:
        return error(exc.status, exc.message), "error"
    except web.HTTPRequestEntityTooLarge:
        return error(413, f"upload larger than {MAX_UPLOAD_BYTES} bytes"), "error"
    except QueueFull as exc:
        return error(429, str(exc), {"Retry-After": str(exc.retry_after_s)}), "error"
    except (NotReady, ShuttingDown) as exc:
        return error(503, str(exc), {"Retry-After": "1"}), "error"
    except OutOfMemory as exc:
        return error(503, str(exc), {"Retry-After": "1"}), "error"
    except ValueError as exc:  # raised by the model for this input
        return error(422, f"the model cannot process this image: {exc}"), "error"
    except Exception:
        log.exception("generate failed")
        return error(500, "internal error while generating the mesh"), "error"
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
    return response, ("cache_hit" if result.cache.startswith("hit") else "ok")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    if service.draining:
        return web.json_response({"ready": False, "reason": "shutting down"}, status=503)
    if not service.ready:
        return web.json_response({"ready": False, "reason": "model loading"}, status=503)
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


async def gpu_profile(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].memory.profile())


async def optimization_report(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    depth = service.batcher.depth if service.batcher is not None else 0
    report = service.memory.optimization_report(service.batch_settings.as_json(), depth)
    return web.json_response(report)


async def cache_stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[SERVICE].cache_stats())


async def index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            **request.app[SERVICE].info(),
            "endpoints": [
                "POST /v1/generate",
                "GET /healthz",
                "GET /readyz",
                "GET /metrics",
                "GET|PUT /admin/batching",
                "GET /api/gpu/profile",
                "GET /api/gpu/optimization-report",
                "GET /api/cache/stats",
            ],
        }
    )


def build_app(service: Service, auth: AdminAuth) -> web.Application:
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES)
    app[SERVICE] = service
    app[AUTH] = auth
    app.router.add_post("/v1/generate", generate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/batching", admin_only(get_batching))
    app.router.add_put("/admin/batching", admin_only(put_batching))
    app.router.add_get("/api/gpu/profile", gpu_profile)
    app.router.add_get("/api/gpu/optimization-report", optimization_report)
    app.router.add_get("/api/cache/stats", cache_stats)
    app.router.add_get("/", index)
    return app
