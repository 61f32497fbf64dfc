"""One short run against the real workload server (`gencluster serve`, CPU, shipped model), to
check the tool and the server agree on the contract: POST /v1/generate with a PNG body, X-Cache,
and gencluster_gpu_memory_used_bytes at /metrics. The server's own behaviour is tested in
tests/workload/."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.ports import free_port

from gencluster.loadtest import LoadConfig, run_profile, url_target

pytest.importorskip("torch")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def workload_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, GENCLUSTER_TORCH_THREADS="1", PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join([str(ROOT / "workload"), os.environ.get("PYTHONPATH", "")]))
    log = tmp_path_factory.mktemp("workload") / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gencluster_workload", "--host", "127.0.0.1", "--port", str(port),
             "--device", "cpu", "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"gencluster serve exited {proc.returncode}: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gencluster serve not ready in 90 s: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def test_load_against_the_real_workload(workload_url: str) -> None:
    cfg = LoadConfig(target=url_target([workload_url]), profile="load", rate=8, duration_s=3.0,
                     window_s=1.0, pool=6, zipf=1.0, resolution=32, scrape_metrics=True, timeout_s=20)
    report = await run_profile(cfg)
    overall = report.overall
    assert overall["ok"] == overall["arrivals"] == 24, overall["errors_by_code"]
    cache = overall["cache"]
    assert set(cache["responses"]) <= {"hit-l1", "hit-redis", "miss"}
    assert 1 <= cache["responses"].get("miss", 0) <= 6
    assert cache["responses"].get("hit-l1", 0) >= 18
    assert cache["cached_latency_ms"]["p50"] < cache["uncached_latency_ms"]["p50"]
    assert all(w.memory_bytes and w.memory_bytes > 0 for w in report.windows)
    assert report.client["bytes_received"] > 24 * 1000  # meshes, not error bodies
