"""SlowEchoServer: a TEST DOUBLE of the workload's POST /v1/generate, for the load tester's tests.

It is not the workload (that is tested in tests/workload/); it only mimics the contract the load
tester relies on, with knobs the tests control exactly:
- `workers` requests served at once, each uncached one taking `service_s`; up to `queue_max`
  wait for a worker, beyond that 429 with Retry-After (like the workload's full queue);
- a cache keyed by the request body: repeats answer at once with X-Cache: hit-l1, first sightings
  are X-Cache: miss (cache=False makes everything a miss);
- `stall(seconds)`: no request starts service for that long (a frozen device);
- /metrics with gencluster_gpu_memory_used_bytes, growing by `leak_bytes` per request;
- /redirect/v1/generate answers 307 to /trap, which counts visits (a client must not follow).
It runs its own event loop in a thread, so the load generator under test cannot slow it down, and
it records when each request arrived (monotonic clock) and each body's count.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter

from aiohttp import web
from fixtures.ports import free_port


class SlowEchoServer:
    def __init__(self, workers: int = 4, service_s: float = 0.05, queue_max: int = 1000,
                 cache: bool = True, leak_bytes: int = 0) -> None:
        self.workers = workers
        self.service_s = service_s
        self.queue_max = queue_max
        self.cache = cache
        self.leak_bytes = leak_bytes
        self.arrivals: list[float] = []
        self.bodies: Counter[str] = Counter()
        self.trap_visits = 0
        self.memory = 100 * 2**20
        self.port = 0
        self._seen: set[str] = set()
        self._stall_until = 0.0
        self._waiting = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def capacity_rps(self) -> float:
        return self.workers / self.service_s

    def stall(self, seconds: float) -> None:
        self._stall_until = time.monotonic() + seconds

    # -- handlers -------------------------------------------------------------------------
    async def generate(self, request: web.Request) -> web.Response:
        self.arrivals.append(time.monotonic())
        body = await request.read()
        key = hashlib.sha256(body).hexdigest()
        self.bodies[key] += 1
        self.memory += self.leak_bytes
        if self.cache and key in self._seen:
            return web.Response(body=b"mesh:" + key.encode(), headers={"X-Cache": "hit-l1"})
        if self._waiting >= self.queue_max:
            return web.json_response({"error": "queue full"}, status=429, headers={"Retry-After": "1"})
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            while (delay := self._stall_until - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            await asyncio.sleep(self.service_s)
        finally:
            self._slots.release()
        self._seen.add(key)
        return web.Response(body=b"mesh:" + key.encode() * 64, headers={"X-Cache": "miss"})

    async def metrics(self, request: web.Request) -> web.Response:
        text = ("# HELP gencluster_gpu_memory_used_bytes test double\n"
                "# TYPE gencluster_gpu_memory_used_bytes gauge\n"
                f'gencluster_gpu_memory_used_bytes{{device="cpu"}} {float(self.memory)}\n')
        return web.Response(text=text, content_type="text/plain")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location="/trap")

    async def trap(self, request: web.Request) -> web.Response:
        self.trap_visits += 1
        return web.Response(text="followed a redirect")

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> SlowEchoServer:
        self.port = free_port()
        self._thread = threading.Thread(target=self._serve, name="slow-echo", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("SlowEchoServer did not start")
        return self

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._loop.run_until_complete(self._setup())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup() if self._runner else asyncio.sleep(0))
        self._loop.close()

    async def _setup(self) -> None:
        self._slots = asyncio.Semaphore(self.workers)
        app = web.Application()
        app.router.add_post("/v1/generate", self.generate)
        app.router.add_post("/redirect/v1/generate", self.redirect)
        app.router.add_route("*", "/trap", self.trap)
        app.router.add_get("/metrics", self.metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
