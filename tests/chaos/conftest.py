"""Chaos fixtures: the operator as a local process (SIGKILL and restart in milliseconds).

The in-cluster operator (if a cluster-tier test installed one) is scaled to 0 while a chaos test runs,
so exactly one operator acts; it is scaled back afterwards.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.operator import CRD, OPERATOR_NS
from fixtures.ports import free_port


class LocalOperator:
    """`gencluster operator --namespace NS` on the host, against the local cluster's apiserver
    (or any kubeconfig, e.g. one pointing at a fault-injecting proxy)."""

    def __init__(self, kubeconfig: Path, namespace: str, log: Path, resync_s: int = 5) -> None:
        self.kubeconfig, self.namespace, self.log_path, self.resync_s = kubeconfig, namespace, log, resync_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig),
               "GENCLUSTER_METRICS_PORT": str(free_port()),
               "GENCLUSTER_RESYNC_SECONDS": str(self.resync_s),
               "GENCLUSTER_REDIS_IMAGE": "localhost/gencluster-redis:dev",
               "POD_NAMESPACE": OPERATOR_NS, "PYTHONUNBUFFERED": "1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 (closed with the process)
        log.write(f"\n===== start {self.starts} at {time.time():.3f}\n".encode())
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gencluster.cli", "operator", "--namespace", self.namespace,
             "--liveness", f"http://127.0.0.1:{free_port()}/healthz"],
            env=env, stdout=log, stderr=subprocess.STDOUT)
        self.starts += 1

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


@pytest.fixture
def no_cluster_operator(cluster) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Scales the in-cluster operator (if any) to 0 for the test, and back afterwards; applies the CRD."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/generationclusters.orfeas.ai")
    had = cluster.kubectl("get", "deployment", "gencluster-operator", "-n", OPERATOR_NS, check=False).returncode == 0
    if had:
        cluster.kubectl("scale", "deployment", "gencluster-operator", "-n", OPERATOR_NS, "--replicas=0")
        cluster.kubectl("wait", "--for=delete", "pod", "-l", "app.kubernetes.io/name=gencluster-operator",
                        "-n", OPERATOR_NS, "--timeout=60s", check=False)
    yield
    if had:
        cluster.kubectl("scale", "deployment", "gencluster-operator", "-n", OPERATOR_NS, "--replicas=1")


@pytest.fixture
def local_operator(cluster, namespace: str, no_cluster_operator: None,  # type: ignore[no-untyped-def]
                   tmp_path: Path) -> Iterator[LocalOperator]:
    op = LocalOperator(cluster.kubeconfig, namespace, tmp_path / "operator.log")
    op.start()
    try:
        yield op
    finally:
        op.stop()
