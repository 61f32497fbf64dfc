"""The local cluster itself: node and fake GPUs, pods from a locally built image, pod
networking, DNS, Services through kube-proxy, kubectl logs/exec, the fake device plugin."""
from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.cluster import Cluster, make_namespace

pytestmark = pytest.mark.cluster

TESTDATA = Path(__file__).parent / "testdata"
TEST_IMAGE = "localhost/gencluster-test:dev"
EXPECTED_GPUS = int(os.environ.get("GPUS", "8"))


def wait_until(what: str, timeout: float, fn: Any, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:
            last = e
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def pod_manifest(name: str, labels: dict[str, str] | None = None, gpus: int = 0,
                 command: list[str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": "main", "image": TEST_IMAGE, "imagePullPolicy": "Never",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 1},
    }
    if command:
        container["command"] = command
        container.pop("readinessProbe")
    if gpus:
        container["resources"] = {"limits": {"nvidia.com/gpu": gpus}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": {"containers": [container], "terminationGracePeriodSeconds": 1},
    }


def pod(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    return json.loads(cluster.kubectl("get", "pod", name, "-n", ns, "-o", "json").stdout)


def wait_ready(cluster: Cluster, ns: str, name: str, timeout: float = 60) -> dict[str, Any]:
    def ready() -> dict[str, Any] | None:
        p = pod(cluster, ns, name)
        conds = {c["type"]: c["status"] for c in p["status"].get("conditions", [])}
        return p if conds.get("Ready") == "True" else None

    return wait_until(f"pod {ns}/{name} Ready", timeout, ready)


def http_get(url: str, timeout: float = 5) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        assert r.status == 200
        return json.load(r)


def exec_python(cluster: Cluster, ns: str, pod_name: str, code: str) -> str:
    return cluster.kubectl("exec", "-n", ns, pod_name, "--", "python3", "-c", code, timeout=60).stdout


# --- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def test_image(cluster: Cluster) -> str:
    """The tiny test image, built with podman on the local Debian base and imported."""
    if cluster.local:
        cluster.build_image(TEST_IMAGE, TESTDATA / "Dockerfile", TESTDATA)
    return TEST_IMAGE


@pytest.fixture(scope="module")
def web(cluster: Cluster, test_image: str) -> Iterator[dict[str, Any]]:
    """A namespace with the test server pod `server` and a ClusterIP Service `web` (80 -> 8080)."""
    with make_namespace(cluster, f"t-web-{os.getpid()}") as ns:
        cluster.apply([
            pod_manifest("server", {"app": "web"}),
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
             "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "name": "http"}]}},
        ], namespace=ns)
        p = wait_ready(cluster, ns, "server")
        svc = json.loads(cluster.kubectl("get", "service", "web", "-n", ns, "-o", "json").stdout)
        yield {"ns": ns, "pod_ip": p["status"]["podIP"], "cluster_ip": svc["spec"]["clusterIP"]}


# --- tests ------------------------------------------------------------------------------------
def test_node_ready_with_fake_gpus(cluster: Cluster) -> None:
    node = json.loads(cluster.kubectl("get", "node", cluster.node_name, "-o", "json").stdout)
    conds = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conds["Ready"] == "True"
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == str(EXPECTED_GPUS)
    assert node["status"]["capacity"]["nvidia.com/gpu"] == str(EXPECTED_GPUS)
    labels = node["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true"
    if cluster.local:
        assert labels["gencluster.dev/fake-gpu"] == "true"
        assert labels["nvidia.com/gpu.count"] == str(EXPECTED_GPUS)


def test_system_components_healthy(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "--raw", "/readyz?verbose").stdout
    assert "readyz check passed" in out
    # The kubernetes Service has an endpoint pods can reach (not loopback).
    eps = json.loads(cluster.kubectl("get", "endpointslices", "-n", "default", "-l",
                                     "kubernetes.io/service-name=kubernetes", "-o", "json").stdout)
    addrs = [a for s in eps["items"] for e in s["endpoints"] for a in e["addresses"]]
    assert addrs and not any(a.startswith("127.") for a in addrs)


def get_via(cluster: Cluster, web: dict[str, Any], target: str, path: str) -> dict[str, Any]:
    """GET from the host: directly on the local cluster (the bridge routes pod and Service IPs),
    through the apiserver's proxy elsewhere (kind: pod IPs are inside Docker)."""
    if cluster.local:
        return http_get(f"http://{target}{path}")
    kind = "services/web:80" if target.startswith(web["cluster_ip"]) else "pods/server:8080"
    return json.loads(cluster.kubectl("get", "--raw", f"/api/v1/namespaces/{web['ns']}/{kind}/proxy{path}").stdout)


def test_pod_runs_and_serves_http_on_pod_ip(cluster: Cluster, web: dict[str, Any]) -> None:
    # From the host, straight to the pod IP through the bridge.
    body = get_via(cluster, web, f"{web['pod_ip']}:8080", "/hello")
    assert body["hostname"] == "server" and body["path"] == "/hello"


def test_kubectl_logs(cluster: Cluster, web: dict[str, Any]) -> None:
    get_via(cluster, web, f"{web['pod_ip']}:8080", "/for-the-logs")
    logs = wait_until("request in logs", 10, lambda: (
        out if "/for-the-logs" in (out := cluster.kubectl("logs", "-n", web["ns"], "server").stdout) else None))
    assert "test server listening on :8080" in logs


def test_kubectl_exec(cluster: Cluster, web: dict[str, Any]) -> None:
    out = exec_python(cluster, web["ns"], "server", "import os; print('uid', os.getuid())")
    assert out.strip() == "uid 65534"


def test_service_names_resolve_in_pods(cluster: Cluster, web: dict[str, Any]) -> None:
    ns = web["ns"]
    code = (
        "import socket\n"
        f"for n in ['web', 'web.{ns}', 'web.{ns}.svc.cluster.local', 'kubernetes.default']:\n"
        "    print(n, socket.getaddrinfo(n, 80, proto=socket.IPPROTO_TCP)[0][4][0])\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 80)\n"
        "    print('external resolved')\n"
        "except socket.gaierror:\n"
        "    print('external NXDOMAIN')\n"
    )
    lines = dict(line.split(" ", 1) for line in exec_python(cluster, ns, "server", code).strip().splitlines())
    assert lines["web"] == web["cluster_ip"]
    assert lines[f"web.{ns}.svc.cluster.local"] == web["cluster_ip"]
    assert lines["kubernetes.default"] == "10.96.0.1"
    if cluster.local:  # the local cluster's DNS answers cluster.local only
        assert lines.get("external") == "NXDOMAIN"


def test_cluster_ip_service_through_kube_proxy(cluster: Cluster, web: dict[str, Any]) -> None:
    # From the host (kube-proxy's OUTPUT DNAT) ...
    body = wait_until("ClusterIP answering from the host", 20,
                      lambda: get_via(cluster, web, f"{web['cluster_ip']}:80", "/via-service"))
    assert body["hostname"] == "server"
    # ... and from a pod, by name (DNS + kube-proxy, hairpin back to the same pod).
    out = exec_python(cluster, web["ns"], "server",
                      "import urllib.request; print(urllib.request.urlopen('http://web/in-pod', timeout=5).read().decode())")
    assert json.loads(out)["path"] == "/in-pod"


def test_pods_reach_the_api_through_the_kubernetes_service(cluster: Cluster, web: dict[str, Any]) -> None:
    code = (
        "import ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "req = urllib.request.Request('https://kubernetes.default.svc/version',\n"
        "    headers={'Authorization': 'Bearer ' + open(sa + '/token').read()})\n"
        "print(urllib.request.urlopen(req, context=ctx, timeout=5).read().decode())\n"
    )
    version = json.loads(exec_python(cluster, web["ns"], "server", code))
    assert version["gitVersion"].startswith("v1.")


def test_fake_gpu_env(cluster: Cluster, namespace: str, test_image: str) -> None:
    if not cluster.local:
        pytest.skip("device env needs a device plugin; kind-up only patches nvidia.com/gpu capacity")
    cluster.apply(pod_manifest("gpu", gpus=2), namespace=namespace)
    wait_ready(cluster, namespace, "gpu")
    env = dict(line.split("=", 1) for line in cluster.kubectl(
        "exec", "-n", namespace, "gpu", "--", "env").stdout.splitlines() if "=" in line)
    devices = env["NVIDIA_VISIBLE_DEVICES"].split(",")
    assert len(devices) == 2 and len(set(devices)) == 2
    if cluster.local:
        assert env["GENCLUSTER_FAKE_GPU"] == "1"
        assert all(d.startswith("fake-gpu-") for d in devices)


def test_gpu_request_beyond_capacity_stays_pending(cluster: Cluster, namespace: str, test_image: str) -> None:
    cluster.apply(pod_manifest("too-many", gpus=cluster.gpus() + 1), namespace=namespace)

    def insufficient() -> bool:
        events = cluster.kubectl("get", "events", "-n", namespace, "-o", "json").stdout
        return any("Insufficient nvidia.com/gpu" in e.get("message", "") for e in json.loads(events)["items"])

    wait_until("FailedScheduling: Insufficient nvidia.com/gpu", 30, insufficient)
    assert pod(cluster, namespace, "too-many")["status"]["phase"] == "Pending"


def test_image_pulls_do_not_leave_the_machine(cluster: Cluster, namespace: str) -> None:
    """Images come from local imports only: a registry image fails fast, no network used."""
    if not cluster.local:
        pytest.skip("local cluster policy only")  # an external cluster may pull images
    manifest = pod_manifest("pull", command=["true"])
    manifest["spec"]["containers"][0].update(image="registry.invalid/nothing:1", imagePullPolicy="Always")
    cluster.apply(manifest, namespace=namespace)

    def pull_failed() -> str | None:
        st = pod(cluster, namespace, "pull")["status"].get("containerStatuses", [{}])[0]
        reason = st.get("state", {}).get("waiting", {}).get("reason")
        return reason if reason in ("ErrImagePull", "ImagePullBackOff") else None

    wait_until("ErrImagePull", 30, pull_failed)
