"""The generation server as a real process on 127.0.0.1, with a real redis-server behind it:
generation, batching, admin API, input validation, metrics and the report endpoints."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
import trimesh
from conftest import (
    ADMIN_TOKEN,
    RedisProcess,
    ServerProcess,
    cube_photo,
    jpeg,
    metric_value,
    png,
    shape_images,
    sphere_photo,
)

from gencluster_workload.metrics import CONTRACT_NAMES

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(scope="module")
def server(module_tmp: Path, redis_standalone: RedisProcess) -> Iterator[ServerProcess]:
    s = ServerProcess(
        module_tmp,
        {**redis_standalone.env(), "GENCLUSTER_BATCH_MAX_SIZE": "8", "GENCLUSTER_BATCH_MAX_DELAY_MS": "20"},
    )
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def post(
    url: str,
    data: bytes,
    ctype: str = "image/png",
    params: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
) -> tuple[int, dict[str, str], bytes]:
    own = session is None
    session = session or aiohttp.ClientSession()
    try:
        async with session.post(
            url + "/v1/generate", data=data, params=params, headers={"Content-Type": ctype, **(headers or {})}
        ) as r:
            return r.status, dict(r.headers), await r.read()
    finally:
        if own:
            await session.close()


async def set_batching(url: str, body: dict[str, Any], token: str = ADMIN_TOKEN) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.put(url + "/admin/batching", json=body, headers={"Authorization": f"Bearer {token}"}) as r,
    ):
        return r.status, await r.json()


def load_mesh(data: bytes, fmt: str) -> trimesh.Trimesh:
    mesh = trimesh.load(io.BytesIO(data), file_type=fmt, force="mesh")
    assert isinstance(mesh, trimesh.Trimesh)
    return mesh


def forward_passes(server: ServerProcess) -> float:
    return float(metric_value(server.metrics_text(), "gencluster_batch_size_observed_count"))


async def test_health_ready_and_index(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/healthz", "/readyz"):
            async with s.get(server.url + path) as r:
                assert r.status == 200, path
        async with s.get(server.url + "/") as r:
            info = await r.json()
    assert info["model"] == "gencluster-imageto3d" and info["device"] == "cpu"
    assert "POST /v1/generate" in info["endpoints"]


@pytest.mark.parametrize(
    ("fmt", "ctype"),
    [("glb", "model/gltf-binary"), ("obj", "model/obj"), ("ply", "application/octet-stream")],
)
async def test_generate_each_format(server: ServerProcess, fmt: str, ctype: str) -> None:
    image = shape_images(1, seed=7 + len(fmt))[0]
    status, headers, body = await post(server.url, image, params={"format": fmt, "resolution": "40"})
    assert status == 200, body[:300]
    assert headers["Content-Type"] == ctype and headers["X-Cache"] == "miss"
    assert headers["X-Model-Version"] == "v1" and int(headers["X-Batch-Size"]) >= 1
    mesh = load_mesh(body, fmt)
    assert len(mesh.faces) > 100 and mesh.is_watertight


async def test_sphere_photo_gives_a_sphere_and_a_cube_does_not(server: ServerProcess) -> None:
    """The model, through the server, turns a photo-like ball into a ball: sphericity (a
    sphere is 1.0, a cube 0.81) and spread of vertex radii; a cube photo gives something boxier."""

    def stats(body: bytes) -> tuple[float, float, float]:
        mesh = load_mesh(body, "ply")
        v = np.asarray(mesh.vertices)
        r = np.linalg.norm(v - v.mean(axis=0), axis=1)
        psi = float(np.pi ** (1 / 3) * (6 * mesh.volume) ** (2 / 3) / mesh.area)
        return psi, float(r.std() / r.mean()), float(r.mean())

    status, _, body = await post(
        server.url, jpeg(sphere_photo()), "image/jpeg", {"format": "ply", "resolution": "64"}
    )
    assert status == 200
    psi, cv, radius = stats(body)
    assert psi > 0.93 and cv < 0.06, (psi, cv)
    assert 0.45 < radius < 0.8  # the drawn ball has radius 0.62 of the half-width
    status, _, body = await post(
        server.url, png(cube_photo()), "image/png", {"format": "ply", "resolution": "64"}
    )
    assert status == 200
    cube_psi, cube_cv, _ = stats(body)
    assert cube_psi < psi and cube_cv > cv, (cube_psi, cube_cv)


async def test_identical_request_is_an_l1_hit(server: ServerProcess) -> None:
    image = shape_images(1, seed=21)[0]
    before = server.metrics_text()
    status, h1, b1 = await post(server.url, image, params={"resolution": "32"})
    status2, h2, b2 = await post(server.url, image, params={"resolution": "32"})
    assert (status, status2) == (200, 200)
    assert h1["X-Cache"] == "miss" and h2["X-Cache"] == "hit-l1" and b1 == b2
    after = server.metrics_text()
    hits = {"tier": "l1", "result": "hit"}
    assert (
        metric_value(after, "gencluster_cache_requests_total", hits)
        == metric_value(before, "gencluster_cache_requests_total", hits) + 1
    )
    # Another resolution is another mesh: a miss.
    _, h3, _ = await post(server.url, image, params={"resolution": "48"})
    assert h3["X-Cache"] == "miss"


async def test_concurrent_requests_batch_and_match_unbatched(server: ServerProcess) -> None:
    """8 concurrent distinct requests take fewer than 8 forward passes, and each mesh equals the
    one computed alone (batch size 1), up to float rounding in the network."""
    images = shape_images(8, seed=300)
    params = {"format": "ply", "resolution": "32"}
    nocache = {"Cache-Control": "no-cache"}
    assert (await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 250}))[0] == 200
    passes = forward_passes(server)
    async with aiohttp.ClientSession() as s:
        batched = await asyncio.gather(
            *(post(server.url, im, params=params, headers=nocache, session=s) for im in images)
        )
    assert all(st == 200 for st, _, _ in batched)
    used = forward_passes(server) - passes
    assert used < len(images), used
    assert max(int(h["X-Batch-Size"]) for _, h, _ in batched) > 1

    assert (await set_batching(server.url, {"maxBatchSize": 1, "maxQueueDelayMs": 0}))[0] == 200
    for image, (_, _, body) in zip(images, batched, strict=True):
        st, h, alone = await post(server.url, image, params=params, headers=nocache)
        assert st == 200 and h["X-Batch-Size"] == "1" and h["X-Cache"] == "miss"
        a, b = load_mesh(body, "ply"), load_mesh(alone, "ply")
        assert a.vertices.shape == b.vertices.shape and a.faces.shape == b.faces.shape
        np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-4)
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 20})


async def test_batch_size_change_applies_to_the_next_batch(server: ServerProcess) -> None:
    params = {"format": "obj", "resolution": "24"}
    nocache = {"Cache-Control": "no-cache"}
    status, body = await set_batching(server.url, {"maxBatchSize": 2, "maxQueueDelayMs": 400})
    assert status == 200 and body == {"maxBatchSize": 2, "maxQueueDelayMs": 400}
    assert metric_value(server.metrics_text(), "gencluster_batch_size") == 2
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(
                post(server.url, im, params=params, headers=nocache, session=s)
                for im in shape_images(6, seed=400)
            )
        )
    assert [h["X-Batch-Size"] for _, h, _ in res] == ["2"] * 6

    status, _ = await set_batching(server.url, {"maxBatchSize": 6})
    assert status == 200
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/admin/batching", headers=AUTH) as r:
            assert await r.json() == {"maxBatchSize": 6, "maxQueueDelayMs": 400}
        res = await asyncio.gather(
            *(
                post(server.url, im, params=params, headers=nocache, session=s)
                for im in shape_images(6, seed=500)
            )
        )
    assert [h["X-Batch-Size"] for _, h, _ in res] == ["6"] * 6
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 20})


async def test_admin_api_auth_and_validation(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(server.url + "/admin/batching", headers=AUTH) as r:
            assert r.status == 200
            current = await r.json()
        async with s.get(server.url + "/admin/batching") as r:
            assert r.status == 401 and "Bearer" in r.headers["WWW-Authenticate"]
        async with s.get(server.url + "/admin/batching", headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401 and "invalid" in (await r.json())["error"]
        async with s.put(
            server.url + "/admin/batching",
            json={"maxBatchSize": 4},
            headers={"Authorization": "Bearer wrong"},
        ) as r:
            assert r.status == 401
        for body, needle in (
            ({"maxBatchSize": 0}, "1..256"),
            ({"maxBatchSize": "4"}, "integer"),
            ({"maxQueueDelayMs": 99_999}, "0..10000"),
            ({"size": 4}, "unknown field"),
        ):
            async with s.put(server.url + "/admin/batching", json=body, headers=AUTH) as r:
                assert r.status == 400 and needle in (await r.json())["error"], body
        async with s.put(server.url + "/admin/batching", data=b"{not json", headers=AUTH) as r:
            assert r.status == 400 and "JSON" in (await r.json())["error"]
        async with s.get(server.url + "/admin/batching", headers=AUTH) as r:
            assert r.status == 200 and await r.json() == current  # all refused: unchanged


def big_png(width: int, height: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (width, height), 200).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


async def test_bad_inputs_get_clear_4xx_and_the_server_keeps_serving(
    server: ServerProcess,
) -> None:
    good = shape_images(1, seed=900)[0]
    fifty_mp = big_png(7072, 7072)  # 50.0 megapixels, a few kB compressed
    assert len(fifty_mp) < 1_000_000
    cases: list[tuple[bytes, str, dict[str, str], int, str]] = [
        (b"this is not an image", "image/png", {}, 400, "not a recognisable image"),
        (good[: len(good) // 2], "image/png", {}, 400, "truncated"),
        (b"", "image/png", {}, 400, "empty body"),
        (good, "application/json", {}, 415, "Content-Type application/json not supported"),
        (good, "text/plain", {}, 415, "not supported"),
        (fifty_mp, "image/png", {}, 413, "50.0 megapixels"),
        (good, "image/png", {"resolution": "100000"}, 400, "resolution must be in 16..128"),
        (good, "image/png", {"resolution": "-3"}, 400, "resolution must be in"),
        (good, "image/png", {"resolution": "big"}, 400, "must be an integer"),
        (good, "image/png", {"format": "exe"}, 400, "format must be one of glb, obj, ply"),
        (good, "image/png", {"colour": "red"}, 400, "unknown query parameter"),
        (b"x" * (21 * 1024 * 1024), "image/png", {}, 413, "larger than"),
    ]
    async with aiohttp.ClientSession() as s:
        for data, ctype, params, status, needle in cases:
            st, headers, body = await post(server.url, data, ctype, params, session=s)
            assert st == status, (needle, st, body[:200])
            assert headers["Content-Type"].startswith("application/json")
            assert needle in json.loads(body)["error"], (needle, body[:200])
        st, _, _ = await post(server.url, good, session=s)
        assert st == 200
    text = server.metrics_text()
    assert metric_value(text, "gencluster_requests_total", {"code": "400"}) >= 7
    assert metric_value(text, "gencluster_requests_total", {"code": "415"}) >= 2
    assert metric_value(text, "gencluster_request_duration_seconds_count", {"outcome": "error"}) >= len(cases)


async def test_multipart_upload(server: ServerProcess) -> None:
    image = shape_images(1, seed=950)[0]
    async with aiohttp.ClientSession() as s:
        form = aiohttp.FormData()
        form.add_field("image", image, filename="shape.png", content_type="image/png")
        async with s.post(
            server.url + "/v1/generate", data=form, params={"format": "obj", "resolution": "20"}
        ) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "model/obj"
            assert b"\nv " in await r.read()
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("comment", "no image here")
        async with s.post(server.url + "/v1/generate", data=form) as r:
            assert r.status == 400 and "no 'image'" in (await r.json())["error"]


async def test_single_flight_collapses_identical_concurrent_requests(
    server: ServerProcess,
) -> None:
    image = shape_images(1, seed=1234)[0]
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 100})
    passes = forward_passes(server)
    async with aiohttp.ClientSession() as s:
        res = await asyncio.gather(
            *(post(server.url, image, params={"resolution": "28"}, session=s) for _ in range(5))
        )
    assert all(st == 200 for st, _, _ in res) and len({b for _, _, b in res}) == 1
    assert forward_passes(server) - passes == 1
    assert sum(h.get("X-Coalesced") == "true" for _, h, _ in res) == 4
    stats = server.get_json("/api/cache/stats")
    assert stats["single_flight"]["coalesced"] >= 4
    await set_batching(server.url, {"maxBatchSize": 8, "maxQueueDelayMs": 20})


async def test_every_contract_metric_is_exported_and_moves(server: ServerProcess) -> None:
    before = server.metrics_text()
    for name in CONTRACT_NAMES:
        assert f"# TYPE {name} " in before, name
    # Exactly the contract: no default process/platform collectors, no *_created series.
    families = {line.split()[2] for line in before.splitlines() if line.startswith("# TYPE")}
    assert families == set(CONTRACT_NAMES)
    assert "_created" not in before
    for gauge in ("used", "total", "reserved"):
        assert metric_value(before, f"gencluster_gpu_memory_{gauge}_bytes", {"device": "cpu"}) > 0
    assert 0 <= metric_value(before, "gencluster_gpu_memory_fragmentation_ratio", {"device": "cpu"}) <= 1

    image = shape_images(1, seed=4321)[0]
    for _ in range(2):
        assert (await post(server.url, image, params={"resolution": "16"}))[0] == 200
    after = server.metrics_text()

    def delta(name: str, labels: dict[str, str] | None = None) -> float:
        return float(metric_value(after, name, labels) - metric_value(before, name, labels))

    assert delta("gencluster_requests_total", {"code": "200"}) == 2
    assert delta("gencluster_request_duration_seconds_count", {"outcome": "ok"}) == 1
    assert delta("gencluster_request_duration_seconds_count", {"outcome": "cache_hit"}) == 1
    assert delta("gencluster_batch_size_observed_count") == 1
    assert delta("gencluster_cache_requests_total", {"tier": "l1", "result": "miss"}) == 1
    assert delta("gencluster_cache_requests_total", {"tier": "l1", "result": "hit"}) == 1
    assert delta("gencluster_cache_requests_total", {"tier": "redis", "result": "miss"}) == 1
    assert metric_value(after, "gencluster_batch_size") == 8
    assert metric_value(after, "gencluster_queue_depth") == 0
    assert metric_value(after, "gencluster_inflight_requests") == 0


async def test_gpu_and_cache_report_endpoints(server: ServerProcess) -> None:
    profile = server.get_json("/api/gpu/profile")
    assert profile["device"] == "cpu" and profile["pressure"] in ("low", "medium", "high", "critical")
    assert profile["total_bytes"] >= profile["reserved_bytes"] >= profile["used_bytes"] > 0
    assert profile["free_bytes"] == profile["total_bytes"] - profile["reserved_bytes"]
    assert profile["pressure_thresholds"] == {"medium": 0.7, "high": 0.85, "critical": 0.95}
    report = server.get_json("/api/gpu/optimization-report")
    assert {"current", "trend", "cleanup_events", "recommendations", "batching"} <= set(report)
    assert report["recommendations"] and all("message" in r for r in report["recommendations"])
    stats = server.get_json("/api/cache/stats")
    assert stats["l1"]["entries"] >= 1 and stats["l1"]["hits"] >= 1
    assert stats["redis"]["mode"] == "standalone" and stats["redis"]["writes"] >= 1
    assert "***" in stats["redis"]["url"] or "@" not in stats["redis"]["url"]
