"""The apiserver misbehaves: restarted, and 409 / 410 (expired watch) / 429 / 500 injected by a
proxy in front of it. The operator converges anyway, and never hot-loops (its request rate stays
bounded while faults last).
"""
from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml
from fixtures.cluster import CLUSTER_DIR, HACK, _ssl_context

from chaos.conftest import LocalOperator
from chaos.convergence import converge, gencl_spec
from chaos.faultproxy import FaultProxy, Faults

pytestmark = [pytest.mark.cluster]
# A converged, idle operator makes a few requests per second (watches, resyncs every 5 s, status);
# one that retries without backoff under faults makes hundreds.
PEAK_RPS_BOUND = 40.0


def _proxy_kubeconfig(path: Path, url: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "proxy",
        "clusters": [{"name": "proxy", "cluster": {"server": url}}],
        "users": [{"name": "proxy", "user": {}}],
        "contexts": [{"name": "proxy", "context": {"cluster": "proxy", "user": "proxy"}}]}))
    return path


def _apply(cluster, ns: str, name: str, spec: dict) -> None:  # type: ignore[no-untyped-def,type-arg]
    cluster.apply({"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
                   "metadata": {"name": name}, "spec": spec}, namespace=ns)


def test_injected_faults_converge_without_a_hot_loop(cluster, namespace: str, no_cluster_operator: None,  # type: ignore[no-untyped-def]
                                                    tmp_path: Path) -> None:
    server, ctx = _ssl_context(cluster.kubeconfig)  # type: ignore[misc]
    proxy = FaultProxy(server, ctx, Faults(throttle=0.08, error=0.08, conflict=0.10, expire_watch=0.3)).start()
    op = LocalOperator(_proxy_kubeconfig(tmp_path / "kubeconfig", proxy.url), namespace, tmp_path / "op.log")
    try:
        t0 = time.time()
        op.start()
        specs = {f"f{i}": gencl_spec(0, "standalone" if i == 0 else "disabled", 4) for i in range(3)}
        for name, spec in specs.items():
            _apply(cluster, namespace, name, spec)
        took = converge(cluster, namespace, specs, timeout=180)
        # A change while the faults go on is picked up too.
        specs["f1"]["batching"]["initial"] = 8
        _apply(cluster, namespace, "f1", specs["f1"])
        took2 = converge(cluster, namespace, specs, timeout=180)
        time.sleep(20)  # idle under faults: resyncs and watches only
        injected, peak = proxy.injected(t0), proxy.peak_rate(t0)
        total = len([r for r in proxy.requests if r[0] >= t0])
        print(f"\nfaults: converged in {took:.1f} s, update in {took2:.1f} s; {total} requests in "
              f"{time.time() - t0:.0f} s, peak {peak:.1f} req/s over 10 s; injected {injected}")
        assert injected.get(429, 0) and injected.get(500, 0) and injected.get(409, 0) and injected.get(410, 0), injected
        assert peak <= PEAK_RPS_BOUND, f"hot loop: {peak:.1f} req/s\n{op.log()}"
        assert op.proc is not None and op.proc.poll() is None, f"the operator died:\n{op.log()}"
    finally:
        op.stop()
        proxy.stop()


def test_apiserver_restart_is_survived(cluster, namespace: str, local_operator: LocalOperator) -> None:  # type: ignore[no-untyped-def]
    specs = {"r0": gencl_spec(0, "disabled", 4)}
    _apply(cluster, namespace, "r0", specs["r0"])
    converge(cluster, namespace, specs)
    pid = int((CLUSTER_DIR / "run" / "kube-apiserver.pid").read_text().split()[0])
    subprocess.run(["kill", "-9", str(pid)], check=True)
    time.sleep(2)
    up = subprocess.run(["bash", str(HACK / "cluster-up.sh")], capture_output=True, text=True, timeout=300)
    assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-2000:]
    restarted = time.monotonic()
    specs["r0"]["batching"]["initial"] = 8
    specs["r1"] = gencl_spec(0, "disabled", 2)
    _apply(cluster, namespace, "r0", specs["r0"])
    _apply(cluster, namespace, "r1", specs["r1"])
    took = converge(cluster, namespace, specs, timeout=180)
    print(f"\napiserver restart: converged {took:.1f} s after the change ({time.monotonic() - restarted:.1f} s "
          f"after the apiserver was back)")
    assert local_operator.proc is not None and local_operator.proc.poll() is None, local_operator.log()
