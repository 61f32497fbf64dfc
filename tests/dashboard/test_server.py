"""The dashboard's HTTP edge against real ClusterLoops (tests/dashboard/fleet.py): JSON routes,
the WebSocket's snapshot and per-second updates, read-only access rules, and slow clients that
get dropped messages instead of holding anything up."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any
from unittest import mock

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from gencluster.dashboard.model import Board
from gencluster.dashboard.server import COOKIE, DashboardServer
from gencluster.edge.metrics import REGISTRY

from .fleet import running


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return r.status, json.loads(body) if r.headers.get_content_type() == "application/json" else body
    except urllib.error.HTTPError as err:
        body = err.read()
        return err.code, json.loads(body) if err.headers.get_content_type() == "application/json" else body


def test_routes_serve_the_loops_state_and_metrics() -> None:
    with running(clusters=2, pods=2) as fleet:
        fleet.wait_ticks(3)
        status, body = get(fleet.url + "/api/clusters")
        assert status == 200 and [c["namespace"] for c in body["clusters"]] == ["ns000", "ns001"]
        row = body["clusters"][0]
        assert row["ready"] == "True" and row["replicas"]["ready"] == 2 and row["sloMs"] == 800
        status, one = get(fleet.url + "/api/clusters/ns000/gc")
        assert status == 200 and len(one["history"]["series"]["t"]) >= 2
        assert set(one["history"]["pods"]) == {"gc-workload-0", "gc-workload-1"}
        assert one["decision"]["proposals"]
        assert get(fleet.url + "/api/clusters/nope/gc")[0] == 404
        status, page = get(fleet.url + "/")
        assert status == 200 and b"/static/dashboard.js" in page
        assert get(fleet.url + "/clusters/ns000/gc")[0] == 200
        assert get(fleet.url + "/static/../server.py")[0] == 404
        assert get(fleet.url + "/static/vendor/uPlot.iife.min.js")[0] == 200
        with urllib.request.urlopen(fleet.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    desired = [s for s in families["gencluster_operator_desired_replicas"].samples
               if s.labels["namespace"] == "ns000"]
    assert desired and desired[0].labels["name"] == "gc"
    ratios = {s.labels["target"] for s in families["gencluster_operator_target_ratio"].samples
              if s.labels["namespace"] == "ns000"}
    assert {"queueDepthPerReplica", "gpuMemoryPercent"} <= ratios
    batch = {s.labels["pod"] for s in families["gencluster_operator_batch_size"].samples
             if s.labels["namespace"] == "ns000"}
    assert batch == {"", "gc-workload-0", "gc-workload-1"}
    assert any(s.value > 0 for s in families["gencluster_operator_decisions"].samples
               if s.labels["namespace"] == "ns000")
    # the clusters are gone (loops stopped): so are their series
    after = REGISTRY.get_sample_value("gencluster_operator_desired_replicas",
                                      {"namespace": "ns000", "name": "gc"})
    assert after is None


async def test_websocket_snapshot_then_updates_every_second() -> None:
    def run() -> list[dict[str, Any]]:
        with running(clusters=1, pods=1) as fleet:
            fleet.wait_ticks(2)
            return asyncio.run(read_ws(fleet.url, "?cluster=ns000/gc", 4))
    msgs = await asyncio.to_thread(run)
    assert msgs[0]["type"] == "snapshot" and msgs[0]["history"]
    snap = msgs[0]["clusters"][0]
    assert snap["summary"]["name"] == "gc" and snap["history"]["series"]["t"]
    ups = msgs[1:]
    assert all(m["type"] == "update" and m["clusters"][0]["point"] for m in ups)
    stamps = [m["stamp"] for m in ups]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 1500  # one a second, not a flood
    ts = [m["clusters"][0]["point"]["t"] for m in ups]
    assert ts[-1] > ts[0]  # the loop ticked meanwhile: new points arrived


async def read_ws(url: str, query: str, n: int) -> list[dict[str, Any]]:
    out = []
    async with aiohttp.ClientSession() as s, s.ws_connect(url.replace("http", "ws") + "/ws/metrics" + query) as ws:
        while len(out) < n:
            msg = await ws.receive(timeout=10)
            out.append(json.loads(msg.data))
    return out


def test_index_websocket_without_history_lists_summaries() -> None:
    with running(clusters=3, pods=1) as fleet:
        fleet.wait_ticks(1)
        msgs = asyncio.run(read_ws(fleet.url, "?history=0&view=summary", 2))
        full = asyncio.run(read_ws(fleet.url, "?history=0", 2))
    assert msgs[0]["type"] == "snapshot" and not msgs[0]["history"]
    assert [c["namespace"] for c in msgs[0]["clusters"]] == ["ns000", "ns001", "ns002"]
    assert "history" not in msgs[0]["clusters"][0]
    rows = msgs[1]["clusters"]
    assert len(rows) == 3 and rows[0]["name"] == "gc" and "point" not in rows[0]
    assert full[1]["clusters"][0]["point"] and full[1]["clusters"][0]["summary"]["name"] == "gc"


def request_from(peer: str, path: str = "/api/clusters", headers: dict[str, str] | None = None,
                 method: str = "GET") -> Any:
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda k, d=None: (peer, 4711) if k == "peername" else d
    return make_mocked_request(method, path, headers=headers or {}, transport=transport)


async def test_access_loopback_free_others_need_the_token_and_nothing_writes() -> None:
    token = base64.urlsafe_b64encode(os.urandom(24)).decode()
    srv = DashboardServer(Board(), REGISTRY, token=token)
    closed = DashboardServer(Board(), REGISTRY, token=None)

    async def ok(_: Any) -> Any:
        from aiohttp import web
        return web.Response(text="ok")

    async def status(server: DashboardServer, req: Any) -> int:
        return int((await server._guard(req, ok)).status)

    assert await status(srv, request_from("127.0.0.1")) == 200  # kubectl port-forward
    assert await status(srv, request_from("::1")) == 200
    assert await status(srv, request_from("10.244.0.7")) == 401  # through the Service
    assert await status(srv, request_from("10.244.0.7", headers={"Authorization": "Bearer nope"})) == 401
    assert await status(srv, request_from("10.244.0.7", headers={"Authorization": f"Bearer {token}"})) == 200
    assert await status(srv, request_from("10.244.0.7", f"/?token={token}")) == 200
    assert await status(srv, request_from("10.244.0.7", headers={"Cookie": f"{COOKIE}={token}"})) == 200
    assert await status(srv, request_from("10.244.0.7", "/metrics")) == 200  # Prometheus
    assert await status(closed, request_from("10.244.0.7", headers={"Authorization": "Bearer "})) == 401
    assert await status(srv, request_from("127.0.0.1", method="POST")) == 405
    resp = await srv._guard(request_from("10.244.0.7", f"/?token={token}"), ok)
    cookie = resp.cookies[COOKIE]
    assert cookie.value == token and cookie["httponly"] and cookie["samesite"] == "Strict"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]


def test_cross_origin_websocket_is_refused() -> None:
    with running(clusters=1, pods=1) as fleet:
        req = urllib.request.Request(fleet.url + "/ws/metrics", headers={
            "Origin": "http://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
    assert err.value.code == 403


def stalled_client(port: int) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads again."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET /ws/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
              b"Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
    assert s.recv(12) == b"HTTP/1.1 101"
    return s


def test_stalled_browsers_hold_up_neither_the_loops_nor_other_browsers() -> None:
    """Clients that never read (real sockets, tiny receive buffers) next to a healthy one with
    40 clusters' updates: the healthy one gets every second's update, the loops tick on."""
    with running(clusters=40, pods=2) as fleet:
        fleet.wait_ticks(2)
        stuck = [stalled_client(fleet.port) for _ in range(3)]
        before = min(c.ticks for c in fleet.clusters)
        msgs = asyncio.run(read_ws(fleet.url, "", 7))
        after = min(c.ticks for c in fleet.clusters)
        connected = fleet.call(lambda: len(fleet.server.clients))
        for s in stuck:
            s.close()
    assert [m["type"] for m in msgs] == ["snapshot"] + ["update"] * 6
    assert all(len(m["clusters"]) == 40 for m in msgs)
    assert connected == 3  # the stalled ones are still there, costing one mailbox each
    assert after - before >= 4  # the loops kept ticking (1 s interval) during ~6 s of pushes


class BlockedSocket:
    """A WebSocketResponse whose peer never reads: send_str never completes."""

    def __init__(self) -> None:
        self.closed = False
        self.started = 0

    async def send_str(self, _: str) -> None:
        self.started += 1
        await asyncio.Event().wait()

    async def close(self) -> None:
        self.closed = True


async def test_a_blocked_client_has_its_updates_replaced_not_queued_then_is_closed() -> None:
    from gencluster.dashboard import server as srv_mod
    from gencluster.dashboard.server import Client

    srv = DashboardServer(Board(), REGISTRY)
    ws, fine = BlockedSocket(), mock.AsyncMock()
    fine.closed = False
    blocked, healthy = Client(ws, None), Client(fine, None)  # type: ignore[arg-type]
    srv.clients |= {blocked, healthy}
    with mock.patch.object(srv_mod, "SEND_TIMEOUT_S", 0.5):
        tasks = [asyncio.create_task(srv._sender(c)) for c in (blocked, healthy)]
        for _ in range(5):
            srv.broadcast()
            await asyncio.sleep(0.01)  # each push is taken by the healthy sender at once
        assert ws.started == 1 and blocked.pending is not None  # one in flight, one waiting
        assert blocked.dropped == 3 and fine.send_str.await_count == 5
        await asyncio.wait_for(tasks[0], 5)  # past SEND_TIMEOUT_S: closed
    assert ws.closed
    tasks[1].cancel()


async def test_rendering_metrics_does_not_hold_the_event_loop() -> None:
    """A slow /metrics render (1,000 clusters' series take about a second) runs beside the
    event loop, not on it: a 10 ms ticker keeps ticking meanwhile."""
    import time

    from prometheus_client import CollectorRegistry
    from prometheus_client.core import GaugeMetricFamily

    class Slow:
        def collect(self) -> Any:
            time.sleep(0.8)  # a large render, holding whichever thread runs it
            yield GaugeMetricFamily("slow_render", "a large registry", value=1.0)

    registry = CollectorRegistry()
    registry.register(Slow())  # type: ignore[arg-type]
    srv = DashboardServer(Board(), registry)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    await srv.start("127.0.0.1", port)
    gaps: list[float] = []

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    task = asyncio.create_task(ticker())
    try:
        async with aiohttp.ClientSession() as session, \
                session.get(f"http://127.0.0.1:{port}/metrics") as r:
            text = await r.text()
    finally:
        task.cancel()
        await srv.stop()
    assert "slow_render 1.0" in text
    assert len(gaps) > 20 and max(gaps) < 0.5  # on the loop it would be one gap of >= 0.8 s
