"""`gencluster serve`: parse settings, run the HTTP server, shut down gracefully on SIGTERM.

Why listen before the model is loaded: /healthz answers at once (the kubelet's liveness probe
must not kill a pod that is loading), while /readyz stays 503 until the model is warm.
On SIGTERM: /readyz -> 503 and new generate requests -> 503 at once, queued and running requests
finish, then the process exits, all inside GENCLUSTER_SHUTDOWN_GRACE_SECONDS.
With GENCLUSTER_ADMIN_PORT the admin API listens on that port (its own app, the same service and
readiness state) and the HTTP port answers 404 for /admin/*; both are bound before the model
loads, and a port that is taken fails the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time

import torch
from aiohttp import web

from gencluster import tracing

from .admin import AdminAuth
from .config import ConfigError, Settings, parse_settings
from .http_api import Readiness, build_admin_app, build_app
from .service import Service, cpu_quota

log = logging.getLogger("gencluster_workload")

CLOSE_RESERVE_S = 1.0  # of the grace period, kept for closing sockets and Redis
EXIT_DEVICE_HUNG = 3  # the exit code after a hung device: `kubectl describe pod` shows it as the last state


def _configure_torch(settings: Settings) -> int:
    threads = settings.torch_threads or cpu_quota()
    torch.set_num_threads(threads)
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)
    return threads


async def serve(settings: Settings) -> int:
    loop = asyncio.get_running_loop()
    threads = _configure_torch(settings)
    service = Service(settings)
    auth = AdminAuth(settings.admin_token, settings.admin_token_file)
    readiness = Readiness()  # one state: PUT /admin/readiness (either port) turns /readyz
    shutdown_timeout = max(0.1, settings.shutdown_grace_seconds)
    runner = web.AppRunner(
        build_app(service, auth, readiness, settings.admin_port),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout,
    )
    runners = [runner]
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
    await site.start()
    if settings.admin_port:
        admin_runner = web.AppRunner(
            build_admin_app(service, auth, readiness),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=shutdown_timeout,
        )
        runners.append(admin_runner)
        await admin_runner.setup()
        try:
            await web.TCPSite(admin_runner, settings.host, settings.admin_port, reuse_address=True).start()
        except OSError:
            for r in reversed(runners):
                await r.cleanup()
            raise
    log.info(
        "listening on %s:%d (device %s, %d torch threads, admin API %s%s)",
        settings.host,
        settings.port,
        service.device,
        threads,
        "on" if auth.enabled else "off",
        f" on port {settings.admin_port}" if settings.admin_port else "",
    )

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = loop.create_task(service.start(), name="start")
    stopping = loop.create_task(stop.wait(), name="stop")
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting.done() and starting.exception() is not None:
        log.error("model failed to start: %s", starting.exception(), exc_info=starting.exception())
        stopping.cancel()
        for r in reversed(runners):
            await r.cleanup()
        await service.close(0)
        return 1
    await stopping

    t0 = time.monotonic()
    grace = settings.shutdown_grace_seconds
    log.info(
        "SIGTERM: draining (grace %.1fs, %d queued, %d in flight)",
        grace,
        service.batcher.depth if service.batcher else 0,
        service.inflight,
    )
    service.begin_drain()
    if not starting.done():
        starting.cancel()
    try:
        await asyncio.wait_for(service.wait_drained(), max(0.0, grace - CLOSE_RESERVE_S))
        log.info("drained in %.2fs", time.monotonic() - t0)
    except TimeoutError:
        log.warning("grace period over: %d queued requests get 503", service.abandon_queue())
    hung = service.device_hung  # read before close(): closing releases an injected stuck device
    remaining = max(0.1, grace - (time.monotonic() - t0))
    await service.close(flush_s=min(0.5, remaining / 2))
    for r in reversed(runners):
        await r.cleanup()
    log.info("stopped after %.2fs", time.monotonic() - t0)
    if hung is not None:
        log.error("exiting with a hung device (%s)", hung)
        return EXIT_DEVICE_HUNG
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of `gencluster serve` (gencluster.cli) and `python -m gencluster_workload`."""
    try:
        settings = parse_settings(sys.argv[1:] if argv is None else list(argv))
    except ConfigError as exc:
        print(f"gencluster serve: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help, or argparse's own usage error
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    log.info("settings: %s", settings.redacted())
    pod = os.environ.get("GENCLUSTER_POD_NAME") or socket.gethostname()
    choice = tracing.setup("gencluster-workload", attributes={"k8s.pod.name": pod})
    log.info("tracing %s (%s)", "on" if choice.enabled else "off", choice.reason)
    try:
        code = asyncio.run(serve(settings))
    except (OSError, RuntimeError) as exc:  # the port is taken; GENCLUSTER_DEVICE=cuda, no GPU
        log.error("cannot serve: %s", exc)
        return 1
    finally:
        tracing.shutdown()  # flush the spans still queued (bounded by OTEL_BSP_EXPORT_TIMEOUT)
    if code == EXIT_DEVICE_HUNG:  # the device thread may never return: do not join it at exit
        logging.shutdown()
        os._exit(code)
    return code
