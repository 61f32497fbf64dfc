"""Tracing and cost on the local cluster: Jaeger all-in-one (built from its Go module) runs as a
pod, a GenerationCluster with spec.tracing and spec.cost points its workload at it, one generate
request through the workload Service yields one trace with every stage, read back by id through
Jaeger's HTTP API, and status.cost fills in (GPU-hours, utilisation, cost per 1k requests)."""

from __future__ import annotations

import json
import secrets
import subprocess
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fixtures.jaeger import wait_trace
from fixtures.kube import condition, get_json, wait_for

from gencluster.loadtest.images import make_pool
from gencluster.render.security import container_security_context, pod_security_context

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
ROOT = Path(__file__).resolve().parents[2]
JAEGER_IMAGE = "localhost/gencluster-jaeger:dev"
REQUEST_SPANS = ("POST /v1/generate", "cache.l1", "cache.redis", "preprocess", "queue.wait",
                 "batch", "forward", "meshing", "export")


@pytest.fixture(scope="session")
def jaeger_image(cluster) -> None:  # type: ignore[no-untyped-def]
    proc = subprocess.run(["bash", str(ROOT / "hack" / "images.sh"), "jaeger"], cwd=ROOT,
                          capture_output=True, text=True, env=cluster.env(), timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"hack/images.sh jaeger failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)


def jaeger_objects() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "jaeger"}
    container = {
        "name": "jaeger", "image": JAEGER_IMAGE, "imagePullPolicy": "Never",
        "env": [{"name": "SPAN_STORAGE_TYPE", "value": "memory"},
                {"name": "OTEL_TRACES_SAMPLER", "value": "always_off"}],
        "args": ["--memory.max-traces=20000"],
        "ports": [{"name": "otlp-http", "containerPort": 4318},
                  {"name": "query", "containerPort": 16686}],
        "readinessProbe": {"httpGet": {"path": "/", "port": 14269}, "periodSeconds": 2},
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                      "limits": {"memory": "512Mi"}},
        "securityContext": container_security_context(),
    }
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "jaeger", "labels": labels},
         "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"securityContext": pod_security_context(),
                                        "automountServiceAccountToken": False,
                                        "containers": [container]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "jaeger", "labels": labels},
         "spec": {"selector": labels, "ports": [
             {"name": "otlp-http", "port": 4318, "targetPort": 4318},
             {"name": "query", "port": 16686, "targetPort": 16686}]}},
    ]


def gencl(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
            "metadata": {"name": "traced"},
            "spec": {"workload": {"image": "localhost/gencluster-workload:dev",
                                  "imagePullPolicy": "Never", "memoryBudgetMiB": 1024},
                     "replicas": {"min": 1, "max": 2},
                     "autoscaling": {"intervalSeconds": 3},
                     "tracing": {"enabled": True, "samplingRatio": "1",
                                 "endpoint": f"http://jaeger.{namespace}.svc.cluster.local:4318"},
                     "cost": {"currency": "USD", "gpuType": "fake-gpu",
                              "gpuHourPrices": {"fake-gpu": "2.50"}}}}


def service_ip(cluster, namespace: str, name: str) -> str:  # type: ignore[no-untyped-def]
    svc = get_json(cluster, "service", name, "-n", namespace)
    return str(svc["spec"]["clusterIP"])


def test_one_request_one_trace_and_status_cost(cluster, namespace: str,  # type: ignore[no-untyped-def]
                                               jaeger_image: None) -> None:
    cluster.apply(jaeger_objects(), namespace)
    cluster.kubectl("rollout", "status", "deployment/jaeger", "-n", namespace, "--timeout=120s",
                    timeout=150)
    cluster.apply(gencl(namespace), namespace)

    def ready() -> Any:
        obj = get_json(cluster, "gencl", "traced", "-n", namespace)
        c = condition(obj, "Ready")
        return obj if c and c["status"] == "True" else None

    wait_for("traced Ready=True", ready, timeout=300)

    def reporting() -> Any:
        obj = get_json(cluster, "gencl", "traced", "-n", namespace)
        return (((obj or {}).get("status") or {}).get("metrics") or {}).get("podsReporting", 0) >= 1

    # The cost ledger counts a pod's work as deltas between its scrapes (its first scrape is a
    # baseline), and Ready comes from the reconcile, not the loop: send the request only once
    # the loop has scraped the pod, or it may go uncounted.
    wait_for("the control loop scraping the workload pod", reporting, timeout=120)
    env = {e["name"]: e.get("value") for e in get_json(
        cluster, "deployment", "traced-workload", "-n", namespace)
        ["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["OTEL_TRACES_SAMPLER"] == "parentbased_traceidratio"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4318")

    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    workload = service_ip(cluster, namespace, "traced-workload")
    req = urllib.request.Request(
        f"http://{workload}/v1/generate?resolution=24", data=make_pool(1, 64, seed=7)[0],
        headers={"Content-Type": "image/png", "traceparent": f"00-{trace_id}-{parent}-01"})
    # Ready counts ready pods; kube-proxy may program the Service's endpoints a moment later
    # (until then a connection is refused and never reaches a pod: no span is made).
    def connect() -> Any:
        try:
            return urllib.request.urlopen(req, timeout=60)
        except urllib.error.URLError as err:
            if not isinstance(err.reason, ConnectionRefusedError):
                raise
            return None

    with wait_for("the workload Service to accept connections", connect, timeout=30) as r:
        assert r.status == 200 and r.headers["X-Cache"] == "miss"
        body = r.read()
    assert body[:4] == b"glTF"

    api = f"http://{service_ip(cluster, namespace, 'jaeger')}:16686"
    spans = wait_trace(api, trace_id, REQUEST_SPANS, timeout=60)
    assert {s.trace_id for s in spans} == {trace_id}
    named = {s.name: s for s in spans}
    root = named["POST /v1/generate"]
    assert root.parent == parent and root.service == "gencluster-workload"
    pods = get_json(cluster, "pods", "-n", namespace, "-l",
                    "app.kubernetes.io/instance=traced,app.kubernetes.io/component=workload")
    assert root.tags["gencluster.pod"] in {p["metadata"]["name"] for p in pods["items"]}
    assert named["batch"].follows[0] == (trace_id, root.span_id)  # parent and link at once
    assert named["forward"].parent == named["batch"].span_id
    assert named["batch"].tags["gencluster.batch.size"] == 1
    assert named["cache.redis"].tags["gencluster.cache.tier"] == "redis"
    assert (trace_id, root.span_id) in named["batch"].follows

    def cost() -> Any:
        obj = get_json(cluster, "gencl", "traced", "-n", namespace)
        c = ((obj or {}).get("status") or {}).get("cost") or {}
        hour = c.get("lastHour") or {}
        return c if hour.get("requests", 0) >= 1 and "perThousandRequests" in c else None

    status = wait_for("status.cost with the request counted", cost, timeout=90)
    assert status["currency"] == "USD" and status["gpuHourPrice"] == "2.50"
    hour = status["lastHour"]
    assert Decimal(hour["gpuHours"]) > 0 and Decimal(hour["cost"]) > 0
    assert Decimal(hour["busyGpuHours"]) > 0 and 0 <= status["utilizationPercent"] <= 100
    assert hour["computedRequests"] >= 1 and Decimal(hour["gigabytesGenerated"]) > 0
    table = cluster.kubectl("get", "gencl", "traced", "-n", namespace).stdout
    assert "COST/1K" in table and status["perThousandRequests"] in table
    print(json.dumps(status, indent=1))
