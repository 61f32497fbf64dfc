"""Redis TLS end to end on the local cluster, and a certificate renewal rolled under load.

A Redis Cluster (3 masters + 3 replicas) with spec.cache.tls naming a kubernetes.io/tls Secret
the test makes with openssl (a CA and a server certificate, as cert-manager's CA issuer writes
them). Checked on the wire from the host: each Redis pod refuses plaintext and presents the
Secret's certificate over TLS; the workload pods store and find meshes through it (a miss on one
pod, a Redis hit on the other). Then the Secret is renewed (a new key and certificate under the
same CA): the operator rolls the Redis pods (pod-template digest), every pod comes back
presenting the new certificate, the cluster is whole again, each master's preStop hook handed
over without an error, and a client hammering the workload Service throughout sees no failed
request (cache errors are misses).
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import pytest
from fixtures.kube import get_json, wait_for
from redis_fleet import OPENSSL, TLSFiles, make_certs, renew_leaf
from test_redis_cluster_e2e import Hammer, _cluster_ready, _post, _stats

from gencluster.loadtest.images import make_pool
from gencluster.render import names

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
NAME = "rc"  # _cluster_ready reads GenerationCluster "rc"
SECRET = "rc-redis-tls"


def secret_object(tls: TLSFiles) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": SECRET},
            "data": {k: base64.b64encode((tls.dir / k).read_bytes()).decode()
                     for k in names.TLS_SECRET_KEYS}}


def presented_certificate(ip: str, ca: Path) -> bytes:
    """The DER certificate a Redis pod presents, verified against `ca` (host name not checked,
    as the product's clients do not: Redis Cluster nodes are pod IPs)."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.check_hostname = False
    with socket.create_connection((ip, 6379), timeout=5) as raw, \
            ctx.wrap_socket(raw) as tls_sock:
        der = tls_sock.getpeercert(binary_form=True)
    assert der is not None
    return der


def plaintext_refused(ip: str) -> bool:
    """A plaintext PING gets no PONG (the port speaks TLS only)."""
    try:
        with socket.create_connection((ip, 6379), timeout=5) as s:
            s.sendall(b"PING\r\n")
            s.settimeout(3)
            return b"PONG" not in s.recv(64)
    except OSError:
        return True


def cache_pod_ips(cluster, ns: str) -> list[str]:  # type: ignore[no-untyped-def]
    pods = get_json(cluster, "pods", "-n", ns, "-l",
                    f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=cache")["items"]
    return [p["status"]["podIP"] for p in pods
            if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")]


def all_present(cluster, ns: str, tls: TLSFiles, want: bytes) -> bool:  # type: ignore[no-untyped-def]
    ips = cache_pod_ips(cluster, ns)
    if len(ips) != 6:
        return False
    try:
        return all(presented_certificate(ip, tls.ca) == want for ip in ips)
    except (OSError, ssl.SSLError):
        return False


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_redis_cluster_over_tls_serves_hits_and_rolls_a_renewed_certificate_without_failures(  # type: ignore[no-untyped-def]
        cluster, namespace: str, tmp_path: Path) -> None:
    tls = make_certs(tmp_path / "certs", ip="10.0.0.1")  # any name: the chain is what is checked
    cluster.apply(secret_object(tls), namespace=namespace)
    spec = {"workload": {"image": "localhost/gencluster-workload:dev", "imagePullPolicy": "Never",
                         "gpusPerReplica": 0, "memoryBudgetMiB": 1024,
                         "env": [{"name": "GENCLUSTER_TORCH_THREADS", "value": "1"}]},
            "autoscaling": {"enabled": False}, "replicas": {"min": 2, "max": 2},
            "cache": {"mode": "cluster", "shards": 3, "replicasPerShard": 1, "maxMemoryMiB": 32,
                      "tls": {"secretName": SECRET}}}
    cluster.apply({"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
                   "metadata": {"name": NAME}, "spec": spec}, namespace=namespace)
    wait_for("Redis Cluster over TLS ready (3 masters, all slots)",
             lambda: _cluster_ready(cluster, namespace), timeout=420, interval=3)

    first = ssl.PEM_cert_to_DER_cert(tls.cert.read_text())
    ips = cache_pod_ips(cluster, namespace)
    assert len(ips) == 6
    for ip in ips:
        assert plaintext_refused(ip), ip
        assert presented_certificate(ip, tls.ca) == first, ip

    pods = get_json(cluster, "pods", "-n", namespace, "-l",
                    f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component=workload")["items"]
    a, b = (f"http://{p['status']['podIP']}:8080" for p in pods[:2])
    wait_for("both workload pods connected to Redis over TLS",
             lambda: all(_stats(u)["redis"]["connected"] for u in (a, b)), timeout=90)
    image = make_pool(1, seed=21)[0]
    assert _post(a, image) == (200, "miss")
    wait_for("the mesh written to Redis", lambda: _stats(a)["redis"]["writes"] >= 1, timeout=10)
    assert _post(b, image) == (200, "hit-redis")

    # Renew: a new key and certificate under the same CA, written into the same Secret.
    svc = get_json(cluster, "service", f"{NAME}-workload", "-n", namespace)
    url = f"http://{svc['spec']['clusterIP']}"
    hammer = Hammer(url, make_pool(40, seed=23))
    renewed = ssl.PEM_cert_to_DER_cert(renew_leaf(tls, ip="10.0.0.1").cert.read_text())
    assert renewed != first
    started = time.monotonic()
    cluster.apply(secret_object(tls), namespace=namespace)
    try:
        wait_for("every Redis pod presenting the renewed certificate",
                 lambda: all_present(cluster, namespace, tls, renewed), timeout=600, interval=3)
        rolled = time.monotonic() - started
        wait_for("the Redis Cluster whole again", lambda: _cluster_ready(cluster, namespace),
                 timeout=300, interval=3)
        whole = time.monotonic() - started
    finally:
        hammer.stop()
    print(f"\nTLS renewal: all 6 Redis pods on the new certificate after {rolled:.1f}s, cluster "
          f"whole after {whole:.1f}s; requests through the Service meanwhile: {hammer.done}, "
          f"failed {len(hammer.failures)}")
    assert hammer.failures == [], hammer.failures
    assert hammer.done > 0
    # Each master's preStop hook (the handover to its replica, over TLS) ran without an error.
    events = get_json(cluster, "events", "-n", namespace)["items"]
    assert [e["message"] for e in events if e.get("reason") == "FailedPreStopHook"] == []
    # The last master to stop (rc-redis-0's node, or whichever master it was then) handed over:
    # its replica, now running, logged the manual failover it was asked for.
    logs = [cluster.kubectl("logs", f"{NAME}-redis-{i}", "-n", namespace).stdout for i in range(6)]
    assert any("Manual failover user request accepted" in log for log in logs)

    # The workload's Redis Cluster clients find the cluster again (every pod has a new IP; a
    # client notices on its next calls) and store and find meshes through it: a new image on
    # pod a, then the same on pod b, until b finds a's mesh in Redis.
    started = time.monotonic()
    fresh = iter(make_pool(200, seed=29))

    def shared_through_redis() -> bool:
        image = next(fresh)
        writes = _stats(a)["redis"]["writes"]
        if _post(a, image) != (200, "miss"):
            return False
        deadline = time.monotonic() + 3
        while _stats(a)["redis"]["writes"] == writes and time.monotonic() < deadline:
            time.sleep(0.2)
        return bool(_post(b, image) == (200, "hit-redis"))

    try:
        wait_for("a mesh stored by one workload pod found in Redis by the other",
                 shared_through_redis, timeout=120, interval=0.5)
    except AssertionError as err:
        raise AssertionError(f"{err}; workload Redis stats: {_stats(a)['redis']} / "
                             f"{_stats(b)['redis']}") from err
    print(f"workload pods sharing meshes through Redis again {time.monotonic() - started:.1f}s "
          "after the cluster was whole")
