"""cluster-down leaves nothing behind; cluster-up brings the cluster back.

Disruptive: it takes the shared local cluster down (and up again, empty). It runs last in the
session (tests/fixtures/cluster.py sorts disruptive tests last); deselect it with
`-m "cluster and not disruptive"`.
"""
from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from fixtures.cluster import CACHE, CLUSTER_DIR, HACK, Cluster, local_cluster_healthy

pytestmark = [pytest.mark.cluster, pytest.mark.disruptive]

BRIDGE = os.environ.get("CLUSTER_BRIDGE", "gencl0")
BIN_DIR = CACHE / "bin"
CONTAINERD_ROOT = Path(os.environ.get("CONTAINERD_ROOT", CACHE / "containerd" / "root"))
OUR_CHAIN_PREFIXES = ("KUBE-", "GENCLUSTER-")


def our_processes() -> list[str]:
    found = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            exe = os.readlink(p / "exe")
            cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if Path(exe).name.startswith(("kubectl", "helm", "crictl")):
            continue
        ours = exe.startswith(str(BIN_DIR) + "/") or Path(exe).name.startswith("containerd")
        if ours and (str(CLUSTER_DIR) + "/" in cmd or "/var/lib/kubelet/device-plugins" in cmd):
            found.append(f"{p.name} {cmd[:120]}")
    return found


def our_mounts() -> list[str]:
    prefixes = (str(CLUSTER_DIR) + "/", str(CONTAINERD_ROOT) + "/", "/var/lib/kubelet/")
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(prefixes)]


def our_chains() -> list[str]:
    chains = []
    for tool in ("iptables-save", "ip6tables-save", "iptables-legacy-save", "ip6tables-legacy-save"):
        try:
            out = subprocess.run([tool], capture_output=True, text=True, timeout=30).stdout
        except FileNotFoundError:
            continue
        chains += [f"{tool}: {line}" for line in out.splitlines()
                   if line.startswith(":") and line[1:].startswith(OUR_CHAIN_PREFIXES)]
    return chains


def run(script: str) -> str:
    proc = subprocess.run(["bash", str(HACK / script)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout}{proc.stderr}"
    return proc.stdout + proc.stderr


def test_cluster_down_cleans_up_and_up_works_again(cluster: Cluster) -> None:
    if not cluster.local:
        pytest.skip("the down/up cycle applies to the local cluster only")
    orig = dict(line.strip().split("=", 1) for line in (CLUSTER_DIR / "run" / "sysctl.orig").read_text().splitlines())

    # Leave a pod running so that cleanup has containers, a netns and mounts to remove.
    ns = f"t-down-up-{os.getpid()}"
    cluster.kubectl("create", "namespace", ns)
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
                   "spec": {"containers": [{"name": "c", "image": "localhost/gencluster-test:dev",
                                            "imagePullPolicy": "Never"}],
                            "terminationGracePeriodSeconds": 30}}, namespace=ns)
    cluster.kubectl("wait", "--for=condition=Ready", "pod/sleeper", "-n", ns, "--timeout=60s")
    assert our_mounts(), "expected mounts of the running pod"

    start = time.monotonic()
    run("cluster-down.sh")
    down_s = time.monotonic() - start

    assert our_processes() == []
    assert our_mounts() == []
    assert subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode != 0, "bridge left behind"
    assert our_chains() == []
    assert not Path("/var/lib/kubelet/device-plugins").exists()
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read().strip() == orig["net.ipv4.ip_forward"]

    start = time.monotonic()
    run("cluster-up.sh")
    up_s = time.monotonic() - start
    healthy, why = local_cluster_healthy(cluster.kubeconfig, cluster.node_name)
    assert healthy, why
    assert cluster.gpus() > 0
    # Pods run again (the image store survived cluster-down; nothing was re-imported).
    ns2 = f"t-after-up-{os.getpid()}"
    cluster.kubectl("create", "namespace", ns2)
    cluster.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "again"},
                   "spec": {"containers": [{"name": "c", "image": "localhost/gencluster-test:dev",
                                            "imagePullPolicy": "Never"}],
                            "terminationGracePeriodSeconds": 1}}, namespace=ns2)
    deadline = time.monotonic() + 60
    while cluster.kubectl("wait", "--for=condition=Ready", "pod/again", "-n", ns2, "--timeout=30s",
                          check=False).returncode != 0:
        assert time.monotonic() < deadline, cluster.namespace_report(ns2)
    cluster.kubectl("delete", "namespace", ns2, "--wait=false")
    print(json.dumps({"cluster_down_s": round(down_s, 1), "cluster_up_s": round(up_s, 1)}))
