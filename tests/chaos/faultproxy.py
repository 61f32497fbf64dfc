"""A fault-injecting HTTP proxy in front of the real kube-apiserver (loopback only).

Clients (the operator under test) talk plain HTTP to 127.0.0.1:<port>; the proxy forwards every
request to the apiserver over TLS with the admin client certificate, streams the answer back
(watches included), and on the way injects the faults a real control plane produces:
- 429 Too Many Requests with Retry-After (API priority and fairness),
- 500 Internal Server Error,
- 409 Conflict on writes (PATCH/PUT/POST),
- 410 Gone on watches: an ERROR event "too old resource version" and the stream closed, as the
  apiserver does when a watch's resourceVersion has been compacted.
It records every request's time, method and path, so a test can bound the request rate (no hot
loop while faults last).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import random
import ssl
import threading
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

HOP_BY_HOP = {"host", "content-length", "transfer-encoding", "connection", "keep-alive",
              "accept-encoding"}


@dataclass
class Faults:
    """Probabilities (0..1) of each fault per request of its kind."""

    throttle: float = 0.0       # 429 on any request
    error: float = 0.0          # 500 on any request
    conflict: float = 0.0       # 409 on writes
    expire_watch: float = 0.0   # 410 on watch requests
    expire_first_watch: bool = True  # and always on the first watch of each path (watches are few)
    seed: int = 1
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


class FaultProxy:
    def __init__(self, upstream: str, context: ssl.SSLContext, faults: Faults | None = None) -> None:
        self.upstream, self.context = upstream.rstrip("/"), context
        self.faults = faults or Faults()
        self.requests: list[tuple[float, str, str, int]] = []  # (time, method, path, status)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._watched: set[str] = set()

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(20):
            raise RuntimeError("fault proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop:
            # Forwarded watches can outlive their client by minutes: cancel them, don't wait.
            with contextlib.suppress(concurrent.futures.TimeoutError):
                asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(20)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._serve())
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self) -> None:
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.context, limit=0),
                                              timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _shutdown(self) -> None:
        if self._runner:
            await self._runner.cleanup()
        if self._session:
            await self._session.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- the figures ----------------------------------------------------------------------------
    def peak_rate(self, since: float, window_s: float = 10.0) -> float:
        """The most requests per second in any window of window_s seconds after `since`."""
        ts = sorted(t for t, *_ in self.requests if t >= since)
        best, j = 0, 0
        for i, t in enumerate(ts):
            while ts[j] < t - window_s:
                j += 1
            best = max(best, i - j + 1)
        return best / window_s

    def injected(self, since: float) -> dict[int, int]:
        out: dict[int, int] = {}
        for t, _, _, status in self.requests:
            if t >= since and status in (409, 410, 429, 500):
                out[status] = out.get(status, 0) + 1
        return out

    # -- the proxy ------------------------------------------------------------------------------
    def _status(self, code: int, reason: str, message: str) -> web.Response:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "code": code}
        headers = {"Retry-After": "1"} if code == 429 else {}
        return web.json_response(body, status=code, headers=headers)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        f = self.faults
        watch = request.query.get("watch") in ("true", "1")
        write = request.method in ("POST", "PUT", "PATCH")
        now = time.time()
        fault: web.StreamResponse | None = None
        if f.rng.random() < f.throttle:
            fault = self._status(429, "TooManyRequests", "injected: the server has received too many requests")
        elif f.rng.random() < f.error:
            fault = self._status(500, "InternalError", "injected: internal error")
        elif write and f.rng.random() < f.conflict:
            fault = self._status(409, "Conflict", "injected: the object has been modified")
        if fault is not None:
            self.requests.append((now, request.method, request.path, fault.status))
            return fault
        first = watch and f.expire_first_watch and request.path not in self._watched
        if watch:
            self._watched.add(request.path)
        if watch and (first or f.rng.random() < f.expire_watch):
            self.requests.append((now, request.method, request.path, 410))
            resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
            await resp.prepare(request)
            event = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                 "message": "injected: too old resource version",
                                                 "reason": "Expired", "code": 410}}
            await resp.write(json.dumps(event).encode() + b"\n")
            await resp.write_eof()
            return resp
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        body = await request.read()
        try:
            upstream = await self._session.request(request.method, self.upstream + request.rel_url.path_qs,
                                                   headers=headers, data=body or None)
        except aiohttp.ClientError as err:
            self.requests.append((now, request.method, request.path, 502))
            return self._status(503, "ServiceUnavailable", f"upstream unreachable: {err}")
        self.requests.append((now, request.method, request.path, upstream.status))
        resp = web.StreamResponse(status=upstream.status, headers={
            k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP})
        await resp.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
        except (aiohttp.ClientError, ConnectionResetError):
            pass  # either side went away mid-stream (a watch ending): nothing to forward
        finally:
            upstream.release()
        with contextlib.suppress(ConnectionResetError):
            await resp.write_eof()
        return resp
