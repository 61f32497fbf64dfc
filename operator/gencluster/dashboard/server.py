"""The operator's HTTP edge on its metrics port: /metrics, the dashboard, its JSON and WebSocket.

Runs on Kopf's own event loop (aiohttp), next to the control loops it shows. It reads the
in-memory Board the loops record into (gencluster.dashboard.model) and never scrapes anything.

- GET /metrics                      Prometheus exposition of the operator's registry
- GET /                             the cluster list; GET /clusters/{ns}/{name}: one cluster
- GET /api/clusters                 every cluster's summary row
- GET /api/clusters/{ns}/{name}     one cluster: state and its 5-minute history
- GET /ws/metrics                   WebSocket: a snapshot at once (with history unless
                                    ?history=0), then an update every PUSH_SECONDS;
                                    ?cluster=ns/name narrows it to one cluster, ?view=summary
                                    sends the list's summary rows only
- GET /static/...                   the page's scripts and styles (uPlot built from npm)

Read-only: no route changes anything. Access: a request from loopback (what `kubectl
port-forward` delivers inside the pod) needs nothing; any other peer (the Service, an Ingress)
must present the dashboard token (Authorization: Bearer, or ?token= once, which sets an HttpOnly
cookie). Without a configured token only loopback is served. /metrics stays open for Prometheus.

Slow browsers: every client has a one-message mailbox and its own sender task. The broadcaster
serialises each update once and offers it to every mailbox; a client still sending the previous
one has that message replaced (counted as dropped), so nothing queues and the broadcaster never
waits on a socket. A client stuck longer than SEND_TIMEOUT_S is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from ..edge.metrics import DASHBOARD_CLIENTS, DASHBOARD_DROPPED
from .model import Board

PUSH_SECONDS = 1.0
SEND_TIMEOUT_S = 10.0
MAX_CLIENTS = 64
COOKIE = "gencluster_dashboard"
WEB = Path(__file__).resolve().parent / "web"
VENDOR = WEB / "vendor"
PAGES = {"index": WEB / "index.html", "cluster": WEB / "cluster.html"}
CONTENT_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html",
                 ".png": "image/png", ".svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

log = logging.getLogger(__name__)


def now_ms() -> float:
    return time.time() * 1000.0


def dumps(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False)


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    cluster: tuple[str, str] | None
    summary_only: bool = False  # the cluster list: summary rows, no points, events or decisions
    pending: str | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    sent: int = 0
    dropped: int = 0

    def offer(self, message: str) -> None:
        if self.pending is not None:
            self.dropped += 1  # the previous update never left: replace it, don't queue
            DASHBOARD_DROPPED.inc()
        self.pending = message
        self.wake.set()


class DashboardServer:
    def __init__(self, board: Board, registry: CollectorRegistry, token: str | None = None,
                 push_seconds: float = PUSH_SECONDS) -> None:
        self.board, self.registry, self.token = board, registry, token or None
        self.push_seconds = push_seconds
        self.clients: set[Client] = set()
        self.broadcasts = 0
        self.dropped = 0
        self._snap_cache: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self._update_cache: dict[tuple[str, str], tuple[int, str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self.clients_gauge = DASHBOARD_CLIENTS

    # -- access ---------------------------------------------------------------------------------
    def _allowed(self, request: web.Request) -> bool:
        peer = request.remote or ""
        with contextlib.suppress(ValueError):
            if ipaddress.ip_address(peer.split("%")[0]).is_loopback:
                return True
        if self.token is None:
            return False
        given = request.cookies.get(COOKIE) or request.query.get("token") or ""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), self.token.encode())

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != "/metrics" and not self._allowed(request):
            return web.json_response({"error": "dashboard token required"}, status=401,
                                     headers={"WWW-Authenticate": "Bearer"})
        if request.method not in ("GET", "HEAD"):
            return web.json_response({"error": "read-only"}, status=405)
        resp: web.StreamResponse = await handler(request)
        if request.path != "/metrics":
            for k, v in SECURITY_HEADERS.items():
                resp.headers.setdefault(k, v)
        if "token" in request.query and self.token and not request.path.startswith("/ws"):
            resp.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict", path="/")
        return resp

    # -- routes ---------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/", self.page_index)
        app.router.add_get("/clusters/{ns}/{name}", self.page_cluster)
        app.router.add_get("/api/clusters", self.api_clusters)
        app.router.add_get("/api/clusters/{ns}/{name}", self.api_cluster)
        app.router.add_get("/ws/metrics", self.websocket)
        app.router.add_get("/static/{path:.+}", self.static)
        return app

    async def metrics(self, _: web.Request) -> web.Response:
        # Rendered on a thread: at 1,000 clusters it is about a second of work, which on the
        # event loop would hold every control loop and watch for that long (docs/reliability.md).
        body = await asyncio.to_thread(generate_latest, self.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def page_index(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(PAGES["index"], headers={"Content-Type": "text/html"})

    async def page_cluster(self, _: web.Request) -> web.StreamResponse:
        return web.FileResponse(PAGES["cluster"], headers={"Content-Type": "text/html"})

    async def static(self, request: web.Request) -> web.StreamResponse:
        rel = request.match_info["path"]
        path = (WEB / rel).resolve()
        if WEB not in path.parents or not path.is_file() or path.suffix not in CONTENT_TYPES:
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Content-Type": CONTENT_TYPES[path.suffix]})

    async def api_clusters(self, _: web.Request) -> web.Response:
        return web.Response(text=dumps({"stamp": now_ms(), "clusters": self.board.summaries()}),
                            content_type="application/json")

    async def api_cluster(self, request: web.Request) -> web.Response:
        key = (request.match_info["ns"], request.match_info["name"])
        if self.board.get(*key) is None:
            return web.json_response({"error": "no such GenerationCluster"}, status=404)
        return web.Response(text=dumps({"stamp": now_ms(), **self.snapshot(key)}),
                            content_type="application/json")

    def snapshot(self, key: tuple[str, str]) -> dict[str, Any]:
        """One cluster's snapshot, built once per recorded tick however many browsers ask."""
        h = self.board.get(*key)
        if h is None:
            return {}
        cached = self._snap_cache.get(key)
        if cached is None or cached[0] != h.seq:
            cached = (h.seq, h.snapshot())
            self._snap_cache[key] = cached
        return cached[1]

    def _keys(self, cluster: tuple[str, str] | None) -> list[tuple[str, str]]:
        if cluster is not None:
            return [cluster] if self.board.get(*cluster) is not None else []
        return sorted(self.board.clusters)

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            return web.json_response({"error": "cross-origin WebSocket refused"}, status=403)
        if len(self.clients) >= MAX_CLIENTS:
            return web.json_response({"error": "too many dashboard clients"}, status=503)
        cluster = None
        if "cluster" in request.query:
            ns, _, name = request.query["cluster"].partition("/")
            cluster = (ns, name)
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
        await ws.prepare(request)
        client = Client(ws, cluster, summary_only=request.query.get("view") == "summary")
        history = request.query.get("history", "1") != "0"
        keys = self._keys(cluster)
        clusters = ([self.snapshot(k) for k in keys] if history
                    else [h.summary() for h in (self.board.get(*k) for k in keys) if h])
        client.offer(dumps({"type": "snapshot", "stamp": now_ms(), "history": history,
                            "pushSeconds": self.push_seconds, "clusters": clusters}))
        self.clients.add(client)
        self.clients_gauge.set(len(self.clients))
        sender = asyncio.create_task(self._sender(client))
        try:
            async for msg in ws:  # the page sends nothing that matters; read to see it close
                if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            self.clients.discard(client)
            self.clients_gauge.set(len(self.clients))
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
            self.dropped += client.dropped
        return ws

    async def _sender(self, client: Client) -> None:
        while not client.ws.closed:
            await client.wake.wait()
            client.wake.clear()
            message, client.pending = client.pending, None
            if message is None:
                continue
            try:
                await asyncio.wait_for(client.ws.send_str(message), SEND_TIMEOUT_S)
                client.sent += 1
            except (TimeoutError, ConnectionError, RuntimeError):
                log.info("dashboard client stalled or gone: closing it")
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.ws.close(), 1.0)
                return

    # -- pushing --------------------------------------------------------------------------------
    def _update_json(self, key: tuple[str, str]) -> str | None:
        """One cluster's update, serialised once per recorded tick (it changes only then)."""
        h = self.board.get(*key)
        if h is None:
            return None
        cached = self._update_cache.get(key)
        if cached is None or cached[0] != h.seq:
            cached = (h.seq, dumps(h.update()))
            self._update_cache[key] = cached
        return cached[1]

    def broadcast(self) -> None:
        """Offer this second's update to every client: one string per distinct view, built from
        per-cluster parts serialised once per tick; stamped now, just before it is sent."""
        if not self.clients:
            return
        self.broadcasts += 1
        stamp = now_ms()
        per: dict[tuple[tuple[str, str] | None, bool], str] = {}
        for client in list(self.clients):
            view = (client.cluster, client.summary_only)
            msg = per.get(view)
            if msg is None:
                keys = self._keys(client.cluster)
                if client.summary_only:
                    body = dumps([h.summary() for h in (self.board.get(*k) for k in keys) if h])
                else:
                    body = "[" + ",".join(p for p in map(self._update_json, keys) if p) + "]"
                msg = per[view] = f'{{"type":"update","stamp":{stamp:.1f},"clusters":{body}}}'
            client.offer(msg)

    async def _pusher(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += self.push_seconds
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            try:
                self.broadcast()
            except Exception as err:  # one bad push must not end the pushes
                log.warning("dashboard push failed: %s: %s", type(err).__name__, err)
            for cache in (self._snap_cache, self._update_cache):
                for k in [k for k in cache if self.board.get(*k) is None]:
                    del cache[k]

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._task = asyncio.create_task(self._pusher())
        if not (VENDOR / "uPlot.iife.min.js").is_file():
            log.warning("dashboard charts missing (%s): run hack/dashboard-assets.sh", VENDOR)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for client in list(self.clients):
            with contextlib.suppress(Exception):
                await client.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
