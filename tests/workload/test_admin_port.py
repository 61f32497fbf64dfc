"""The admin API on its own port (GENCLUSTER_ADMIN_PORT, as the operator runs the workload),
against real server processes: /admin/* answers there with the bearer token still required, the
HTTP port answers 404 for it whatever the token, and the two ports share one readiness state."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from conftest import ServerProcess, free_port, shape_images
from test_server import AUTH, post

ADMIN_ROUTES = (
    ("GET", "/admin/batching", None),
    ("PUT", "/admin/batching", {"maxBatchSize": 3}),
    ("GET", "/admin/readiness", None),
    ("PUT", "/admin/readiness", {"ready": False}),
    ("GET", "/admin/faults", None),
    ("PUT", "/admin/faults", {"errorPercent": 100}),
)


@pytest.fixture(scope="module")
def split(module_tmp: Path) -> Iterator[ServerProcess]:
    """The admin API on its own port, fault injection on (so every admin route exists)."""
    s = ServerProcess(
        module_tmp,
        {"GENCLUSTER_FAULT_INJECTION": "on", "GENCLUSTER_BATCH_MAX_SIZE": "4",
         "GENCLUSTER_BATCH_MAX_DELAY_MS": "5", "GENCLUSTER_L1_CACHE_BYTES": "0"},
        name="split-admin",
        admin_port=True,
    ).start()
    try:
        yield s
    finally:
        s.stop()


async def test_the_http_port_answers_404_for_every_admin_route(split: ServerProcess) -> None:
    assert split.admin_port and split.admin_port != split.port
    async with aiohttp.ClientSession() as s:
        for method, path, body in ADMIN_ROUTES:
            for headers in (AUTH, {}, {"Authorization": "Bearer wrong"}):
                async with s.request(method, split.url + path, json=body, headers=headers) as r:
                    assert r.status == 404, (method, path, headers)
        # Nothing was changed through the HTTP port.
        async with s.get(split.admin_url + "/admin/batching", headers=AUTH) as r:
            assert r.status == 200 and await r.json() == {"maxBatchSize": 4, "maxQueueDelayMs": 5}
        async with s.get(split.admin_url + "/admin/faults", headers=AUTH) as r:
            assert r.status == 200 and (await r.json())["errorPercent"] == 0
        async with s.get(split.url + "/readyz") as r:
            assert r.status == 200
        # The HTTP port still serves clients, probes and Prometheus.
        status, _, _ = await post(split.url, shape_images(1, seed=7100)[0],
                                  params={"resolution": "16"}, session=s)
        assert status == 200
        for path in ("/healthz", "/metrics", "/api/cache/stats"):
            async with s.get(split.url + path) as r:
                assert r.status == 200, path
        async with s.get(split.url + "/") as r:
            index = await r.json()
        assert not any("/admin/" in e for e in index["endpoints"])
        assert index["admin"]["port"] == split.admin_port
        assert "GET|PUT /admin/batching" in index["admin"]["endpoints"]


async def test_the_admin_port_serves_the_admin_api_and_still_needs_the_token(
        split: ServerProcess) -> None:
    url = split.admin_url
    async with aiohttp.ClientSession() as s:
        for method, path, body in ADMIN_ROUTES:
            async with s.request(method, url + path, json=body) as r:
                assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"], (method, path)
            async with s.request(method, url + path, json=body,
                                 headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401 and "invalid" in (await r.json())["error"], (method, path)
        async with s.put(url + "/admin/batching", json={"maxBatchSize": 2}, headers=AUTH) as r:
            assert r.status == 200 and await r.json() == {"maxBatchSize": 2, "maxQueueDelayMs": 5}
        async with s.put(url + "/admin/batching", json={"maxBatchSize": 0}, headers=AUTH) as r:
            assert r.status == 400 and "1..256" in (await r.json())["error"]
        async with s.put(url + "/admin/batching", json={"maxBatchSize": 4}, headers=AUTH) as r:
            assert r.status == 200
        # The admin port is the admin API only: no generation, probes or metrics there.
        for path in ("/healthz", "/readyz", "/metrics", "/"):
            async with s.get(url + path) as r:
                assert r.status == 404, path
        async with s.post(url + "/v1/generate", data=b"x",
                          headers={"Content-Type": "image/png"}) as r:
            assert r.status == 404


async def test_readiness_set_on_the_admin_port_turns_the_http_ports_readyz(
        split: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s:
        try:
            async with s.put(split.admin_url + "/admin/readiness", json={"ready": False},
                             headers=AUTH) as r:
                assert r.status == 200 and (await r.json())["ready"] is False
            async with s.get(split.url + "/readyz") as r:
                assert r.status == 503 and "turned off" in (await r.json())["reason"]
            # Still serving what arrives, closing the connection (the Service moves it elsewhere).
            status, headers, _ = await post(split.url, shape_images(1, seed=7200)[0],
                                            params={"resolution": "16"}, session=s)
            assert status == 200 and headers.get("Connection", "").lower() == "close"
        finally:
            async with s.put(split.admin_url + "/admin/readiness", json={"ready": True},
                             headers=AUTH) as r:
                assert r.status == 200
        async with s.get(split.url + "/readyz") as r:
            assert r.status == 200


async def test_faults_set_on_the_admin_port_apply_to_the_http_port(split: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s:
        try:
            async with s.put(split.admin_url + "/admin/faults", json={"errorPercent": 100},
                             headers=AUTH) as r:
                assert r.status == 200
            status, _, _ = await post(split.url, shape_images(1, seed=7300)[0],
                                      params={"resolution": "16"}, session=s)
            assert status == 500
        finally:
            async with s.put(split.admin_url + "/admin/faults", json={"errorPercent": 0},
                             headers=AUTH) as r:
                assert r.status == 200


async def test_no_token_configured_the_admin_port_answers_403(module_tmp: Path) -> None:
    s = ServerProcess(module_tmp, {"GENCLUSTER_ADMIN_TOKEN": ""}, name="split-no-token",
                      admin_port=True).start()
    try:
        async with aiohttp.ClientSession() as c:
            async with c.get(s.admin_url + "/admin/batching", headers=AUTH) as r:
                assert r.status == 403 and "disabled" in (await r.json())["error"]
            async with c.get(s.url + "/admin/batching", headers=AUTH) as r:
                assert r.status == 404
    finally:
        s.stop()


async def test_sigterm_closes_both_ports(module_tmp: Path) -> None:
    s = ServerProcess(module_tmp, name="split-stop", admin_port=True).start()
    try:
        assert s.terminate(30) == 0
        for port in (s.port, s.admin_port):
            with pytest.raises(aiohttp.ClientConnectionError):
                async with aiohttp.ClientSession() as c, c.get(
                        f"http://127.0.0.1:{port}/healthz",
                        timeout=aiohttp.ClientTimeout(total=2)):
                    pass
    finally:
        s.stop()


def test_an_admin_port_equal_to_the_http_port_is_refused_at_start(module_tmp: Path) -> None:
    port = free_port()
    env = ServerProcess(module_tmp).environ() | {"GENCLUSTER_PORT": str(port),
                                                 "GENCLUSTER_ADMIN_PORT": str(port)}
    done = subprocess.run([sys.executable, "-m", "gencluster_workload"], env=env, cwd=module_tmp,
                          capture_output=True, timeout=60)
    assert done.returncode == 2
    assert b"GENCLUSTER_ADMIN_PORT must differ from GENCLUSTER_PORT" in done.stderr


async def test_a_taken_admin_port_fails_the_start(module_tmp: Path) -> None:
    """The admin port is bound at start like the HTTP port: taken, the server exits 1 (the
    kubelet restarts it) rather than serving without the operator's API."""
    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    taken = blocker.sockets[0].getsockname()[1]
    try:
        env = ServerProcess(module_tmp).environ() | {"GENCLUSTER_PORT": str(free_port()),
                                                     "GENCLUSTER_ADMIN_PORT": str(taken)}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gencluster_workload", env=env, cwd=module_tmp,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 60)
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        assert proc.returncode == 1 and b"cannot serve" in err
    finally:
        blocker.close()
        await blocker.wait_closed()
