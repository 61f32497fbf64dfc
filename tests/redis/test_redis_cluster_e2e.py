"""Redis Cluster mode on the local cluster: bootstrap, cache hits through it, master failover."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from fixtures.kube import condition, get_json, wait_for

from gencluster.loadtest.images import make_pool

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]


def _cluster_ready(cluster, ns: str) -> Any:  # type: ignore[no-untyped-def]
    obj = get_json(cluster, "gencl", "rc", "-n", ns)
    cache = ((obj or {}).get("status") or {}).get("cache") or {}
    c, r = condition(obj, "CacheReady"), condition(obj, "Ready")
    ok = c and c["status"] == "True" and c["reason"] == "CacheReady" and r and r["status"] == "True"
    return obj if ok and cache.get("slotsCovered") == 16384 and cache.get("mastersReady") == 3 else None


def _post(url: str, image: bytes) -> tuple[int, str]:
    req = urllib.request.Request(f"{url}/v1/generate?resolution=32&format=obj", data=image,
                                 headers={"Content-Type": "image/png"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            resp.read()
            return resp.status, resp.headers.get("X-Cache", "")
    except urllib.error.HTTPError as err:
        return err.code, ""
    except OSError:
        return 0, ""


def test_cluster_mode_bootstraps_serves_hits_and_survives_a_master_loss(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    spec = {"workload": {"image": "localhost/gencluster-workload:dev", "imagePullPolicy": "Never",
                         "gpusPerReplica": 0, "memoryBudgetMiB": 1024,
                         "env": [{"name": "GENCLUSTER_TORCH_THREADS", "value": "1"}]},
            "autoscaling": {"enabled": False}, "replicas": {"min": 2, "max": 2},
            "cache": {"mode": "cluster", "shards": 3, "replicasPerShard": 1, "maxMemoryMiB": 32}}
    cluster.apply({"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
                   "metadata": {"name": "rc"}, "spec": spec}, namespace=namespace)
    obj = wait_for("Redis Cluster ready (3 masters, all slots)", lambda: _cluster_ready(cluster, namespace),
                   timeout=420, interval=3)
    assert obj["status"]["cache"]["replicasReady"] == 3

    svc = get_json(cluster, "service", "rc-workload", "-n", namespace)
    url = f"http://{svc['spec']['clusterIP']}"
    pods = get_json(cluster, "pods", "-n", namespace, "-l",
                    "app.kubernetes.io/instance=rc,app.kubernetes.io/component=workload")["items"]
    a, b = (f"http://{p['status']['podIP']}:8080" for p in pods[:2])
    # One pod computes the mesh and stores it in the Redis Cluster; the other finds it there.
    image = make_pool(1, seed=7)[0]
    wait_for("both pods connected to the Redis Cluster",
             lambda: all(_stats(u)["redis"]["connected"] for u in (a, b)), timeout=60)
    assert _post(a, image) == (200, "miss")
    wait_for("the mesh written to Redis", lambda: _stats(a)["redis"]["writes"] >= 1, timeout=10)
    assert _post(b, image) == (200, "hit-redis")

    # Kill one master under load; the workload treats cache errors as misses, so no request fails.
    master = next(p for p in get_json(cluster, "pods", "-n", namespace, "-l",
                                      "app.kubernetes.io/instance=rc,app.kubernetes.io/component=cache")["items"]
                  if _role(cluster, namespace, p["metadata"]["name"]) == "master")
    hammer = Hammer(url, make_pool(40, seed=11))
    started = time.monotonic()
    cluster.kubectl("delete", "pod", master["metadata"]["name"], "-n", namespace, "--wait=false")
    reasons = wait_for("FailoverObserved", lambda: {
        e["reason"] for e in get_json(cluster, "events", "-n", namespace, "--field-selector",
                                      "involvedObject.kind=GenerationCluster,involvedObject.name=rc")["items"]
    } & {"FailoverObserved"}, timeout=180, interval=2)
    wait_for("CacheReady again", lambda: _cluster_ready(cluster, namespace), timeout=300, interval=3)
    recovered = time.monotonic() - started
    hammer.stop()
    print(f"master {master['metadata']['name']} deleted; cache ready again after {recovered:.1f}s; "
          f"requests failed meanwhile: {len(hammer.failures)}")
    assert reasons
    assert hammer.failures == [], hammer.failures


class Hammer:
    """A client on a thread posting `pool`'s images to `url` in turn, every 50 ms, until
    stopped; it records every answer other than 200."""

    def __init__(self, url: str, pool: list[bytes]) -> None:
        self.url, self.pool = url, pool
        self.failures: list[int] = []
        self.done = 0
        self._stop = threading.Event()
        self._worker = threading.Thread(target=self._run, daemon=True)
        self._worker.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            code, _ = _post(self.url, self.pool[self.done % len(self.pool)])
            if code != 200:
                self.failures.append(code)
            self.done += 1
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(timeout=30)


def _stats(base: str) -> Any:
    with urllib.request.urlopen(f"{base}/api/cache/stats", timeout=5) as resp:
        return json.loads(resp.read())


def _role(cluster, namespace: str, pod: str) -> str:  # type: ignore[no-untyped-def]
    # The health user (password in REDISCLI_AUTH, as the probes use it) may read INFO.
    out = cluster.kubectl("exec", "-n", namespace, pod, "--", "sh", "-c",
                          "redis-cli --no-auth-warning --user gencl-health -h 127.0.0.1 "
                          "info replication | grep ^role:", check=False).stdout.strip()
    return out.removeprefix("role:").strip()
