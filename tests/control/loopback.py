"""Real HTTP servers on 127.0.0.0/8 standing in for pods (and for a Prometheus server).

Each fake pod gets its own loopback address on one shared port, as pods get their own IPs on one
container port, so the code under test builds URLs exactly as it does in a cluster. Routes under
/admin/ are served on the next port only (`admin_port(port)`, what a spec's workload.adminPort
must say), as the workload serves its admin API on its own port: the main port answers 404 there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from fixtures.ports import free_port_pair

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


ADMIN_PORT_OFFSET = 1
ADMIN_PREFIX = "/admin/"


def admin_port(port: int) -> int:
    """The fake pods' admin port when `serve` yielded `port`."""
    return port + ADMIN_PORT_OFFSET


def workload(port: int, **fields: Any) -> dict[str, Any]:
    """spec.workload for fake pods served on `port` (image "x", adminPort where they serve it)."""
    return {"image": "x", "port": port, "adminPort": admin_port(port), **fields}


@asynccontextmanager
async def serve(routes: dict[str, list[tuple[str, str, Handler]]], port: int | None = None) -> Any:
    """routes: {ip: [(method, path, handler)]}; yields the shared port (admin routes on
    admin_port(port))."""
    port = port or free_port_pair(ADMIN_PORT_OFFSET)
    runners = []
    try:
        for ip, handlers in routes.items():
            main, admin = web.Application(), web.Application()
            for method, path, h in handlers:
                (admin if path.startswith(ADMIN_PREFIX) else main).router.add_route(method, path, h)
            for app, p in ((main, port), (admin, admin_port(port))):
                runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
                await runner.setup()
                runners.append(runner)
                await web.TCPSite(runner, ip, p).start()
        yield port
    finally:
        for r in runners:
            await r.cleanup()
