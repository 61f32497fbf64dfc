"""Real HTTP servers on 127.0.0.0/8 standing in for pods (and for a Prometheus server).

Each fake pod gets its own loopback address on one shared port, as pods get their own IPs on one
container port, so the code under test builds URLs exactly as it does in a cluster.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serve(routes: dict[str, list[tuple[str, str, Handler]]], port: int | None = None) -> Any:
    """routes: {ip: [(method, path, handler)]}; yields the shared port."""
    port = port or free_port()
    runners = []
    try:
        for ip, handlers in routes.items():
            app = web.Application()
            for method, path, h in handlers:
                app.router.add_route(method, path, h)
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
            await runner.setup()
            await web.TCPSite(runner, ip, port).start()
            runners.append(runner)
        yield port
    finally:
        for r in runners:
            await r.cleanup()
