"""The dashboard of the operator running on the local cluster, reached as the docs say (kubectl
port-forward, no token), in a real headless Chromium: a load spike at the workload's Service
makes the control loop scale up, and the page shows it within two intervals of the decision.
Through the Service (not loopback) the token from the chart's Secret is required."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from fixtures.kube import get_json
from fixtures.kube import wait_for as poll

from dashboard.browser import chromium, wait_for
from gencluster import GROUP, PLURAL, VERSION
from gencluster.demo import DemoSettings, _apply, _ready

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
OPERATOR_NS = "gencluster-system"
INTERVAL_S = 3  # the demo manifest's spec.autoscaling.intervalSeconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PortForward:
    def __init__(self, cluster: Any, target: str, remote: int) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(cluster.kubectl_path), "--kubeconfig", str(cluster.kubeconfig), "-n", OPERATOR_NS,
             "port-forward", target, f"{self.port}:{remote}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/clusters", timeout=2):
                    return
            except OSError:
                assert self.proc.poll() is None, self.proc.stdout.read() if self.proc.stdout else ""
                assert time.monotonic() < deadline, "port-forward did not come up"
                time.sleep(0.5)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def page_desired(driver: Any) -> list[tuple[float, int | None]]:
    return driver.execute_script(
        "const s = window.__dash.charts.replicas; if (!s) return [];"
        "return s.data[0].map((t, i) => [t, s.data[2][i]]);")


def test_a_scale_up_appears_on_the_dashboard_within_two_intervals(cluster, namespace: str, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from kubernetes import client

    from gencluster.loadtest import LoadConfig, cluster_target, run_profile

    # the load tester loads the default kubeconfig (read from KUBECONFIG when the client was imported)
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(cluster.kubeconfig))
    s = DemoSettings(namespace=namespace, name="dash")
    api = cluster.api_client()
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    _apply(custom, core, s)
    deadline = time.monotonic() + 300
    while not _ready(custom, s):
        assert time.monotonic() < deadline, cluster.kubectl("describe", "gencl", s.name, "-n", namespace).stdout
        time.sleep(2)
    pf = PortForward(cluster, "deploy/gencluster-operator", 8080)
    try:
        with chromium() as driver:
            driver.get(f"{pf.url}/clusters/{namespace}/{s.name}")
            wait_for(driver, "window.__dash.charts.replicas && window.__dash.updates >= 1", 60,
                     "the cluster page with its charts")
            assert driver.find_element("id", "title").text == f"{namespace}/{s.name}"
            before = [d for _, d in page_desired(driver) if d is not None]
            assert before and max(before) == 1, before

            # a spike at the workload's Service (the demo's load) until the loop scales up
            target = cluster_target(s.name, namespace)
            cfg = LoadConfig(target=target, profile="load", rate=120.0, duration_s=60.0, window_s=2.0,
                             pool=20000, zipf=1.0, resolution=96, concurrency=256, timeout_s=20.0)
            loader = threading.Thread(target=lambda: asyncio.run(run_profile(cfg)), daemon=True)
            loader.start()
            seen_at = decided_at = None
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                up = [(t, d) for t, d in page_desired(driver) if d is not None and d > 1]
                if up:
                    seen_at, decided_at = time.time(), up[0][0]
                    break
                time.sleep(0.2)
            assert seen_at is not None and decided_at is not None, "no scale-up on the page"
            # the decision's time is the loop's clock in the operator pod: this machine's
            assert seen_at - decided_at <= 2 * INTERVAL_S, (seen_at, decided_at)
            # The page shows the decision as the loop records it, just before the loop scales,
            # posts the Event and writes status (on this busy machine, up to seconds later).
            def applied() -> bool:
                obj = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, s.name)
                return (obj.get("status") or {}).get("desiredReplicas", 1) > 1 or bool(
                    [e for e in get_json(cluster, "events", "-n", namespace)["items"]
                     if e["reason"] == "ScaledUp"])
            poll("the page's scale-up in status or Events", applied, timeout=2 * INTERVAL_S + 5,
                 interval=0.5)
            events = driver.find_element("id", "events").text
            wait_for(driver, "document.getElementById('events').innerText.includes('ScaledUp')", 2 * INTERVAL_S + 2,
                     f"ScaledUp in the Events timeline (have: {events[:300]})")
            shot = os.environ.get("GENCLUSTER_DASHBOARD_SCREENSHOT")  # docs/dashboard.png
            if shot:
                time.sleep(3 * INTERVAL_S)  # a few more points after the scale-up
                driver.save_screenshot(shot)
            driver.get(pf.url + "/")
            wait_for(driver, f"!!document.querySelector(\"tr[data-cluster='{namespace}/{s.name}']\")", 20,
                     "the cluster in the list")
            loader.join(90)
    finally:
        pf.close()

    # Not through loopback (the metrics Service from a pod on the node's network): the token.
    svc = get_json(cluster, "service", "gencluster-operator-metrics", "-n", OPERATOR_NS)
    url = f"http://{svc['spec']['clusterIP']}:8080/api/clusters"
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 401
    secret = get_json(cluster, "secret", "gencluster-operator-dashboard", "-n", OPERATOR_NS)
    token = base64.b64decode(secret["data"]["token"]).decode()
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        names = [c["name"] for c in json.loads(r.read())["clusters"]]
    assert s.name in names
