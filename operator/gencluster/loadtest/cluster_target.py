"""`--gencluster NAME`: resolve a GenerationCluster's Service (or its ready pods) to load.

Why through the Kubernetes API and nothing else: the only way load may reach the local cluster's
10.244.0.0/16 and 10.96.0.0/12 addresses is an address the local cluster's own API server gave for
this GenerationCluster's `<NAME>-workload` Service. The API server itself must be local (loopback,
or the local cluster's bridge / service range), so a kubeconfig pointing at a remote cluster is
refused before anything is read.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from ..render import names
from .targets import CLUSTER_NETWORKS, LOOPBACK, Target, TargetRefused, _cluster

GROUP, VERSION, PLURAL = "orfeas.ai", "v1alpha1", "generationclusters"
SERVICE_PORT = 80


def check_api_server(host_url: str) -> None:
    """Refuse a Kubernetes API server that is not the local cluster's."""
    host = urlsplit(host_url).hostname or ""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host == "localhost":
            return
        raise TargetRefused(f"Kubernetes API server {host_url!r} is not an IP address of the local "
                            "cluster; --gencluster only works against the local cluster") from None
    if not any(ip in net for net in (LOOPBACK, *CLUSTER_NETWORKS)):
        raise TargetRefused(f"Kubernetes API server {host_url!r} is not the local cluster "
                            "(loopback or 10.244.0.0/16 / 10.96.0.0/12); refusing to load it")


def _is_ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None or not pod.status or not pod.status.pod_ip:
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))


def _http_port(pod: Any) -> int | None:
    for container in pod.spec.containers or []:
        for port in container.ports or []:
            if port.name == "http":
                return int(port.container_port)
    return None


def resolve(name: str, namespace: str, via_pods: bool, core: Any, custom: Any) -> Target:
    """Target for a GenerationCluster, from already-configured CoreV1Api / CustomObjectsApi."""
    from kubernetes.client.exceptions import ApiException

    where = f"{namespace}/{name}"
    try:
        gencl = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
    except ApiException as exc:
        if exc.status == 404:
            raise TargetRefused(f"GenerationCluster {where} not found") from None
        raise
    svc_name = names.workload_name(name)
    try:
        svc = core.read_namespaced_service(svc_name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            raise TargetRefused(f"Service {namespace}/{svc_name} of GenerationCluster {where} not "
                                "found (is the operator running?)") from None
        raise
    uid = (gencl.get("metadata") or {}).get("uid")
    owners = svc.metadata.owner_references or []
    if owners and not any(o.uid == uid for o in owners):
        raise TargetRefused(f"Service {namespace}/{svc_name} is not owned by GenerationCluster {where}")
    if not any(p.port == SERVICE_PORT for p in svc.spec.ports or []):
        raise TargetRefused(f"Service {namespace}/{svc_name} has no port {SERVICE_PORT}")
    cluster_ip = svc.spec.cluster_ip
    if not cluster_ip or cluster_ip == "None":
        raise TargetRefused(f"Service {namespace}/{svc_name} has no ClusterIP")

    pods = core.list_namespaced_pod(namespace, label_selector=names.selector_string(name, "workload"))
    pod_urls = []
    for pod in pods.items:
        port = _http_port(pod)
        if _is_ready(pod) and port is not None:
            pod_urls.append(f"http://{pod.status.pod_ip}:{port}")
    pod_urls.sort()
    if via_pods and not pod_urls:
        raise TargetRefused(f"GenerationCluster {where} has no ready pods to load (--via-pods)")
    service_url = f"http://{cluster_ip}:{SERVICE_PORT}"
    urls = tuple(pod_urls) if via_pods else (service_url,)
    how = f"{len(pod_urls)} ready pods" if via_pods else f"Service {svc_name} ({cluster_ip}:80)"
    return _cluster(urls, tuple(pod_urls), f"GenerationCluster {where} via {how}")


def cluster_target(name: str, namespace: str, via_pods: bool = False) -> Target:
    """Load the current kubeconfig (or in-cluster credentials), check it is local, resolve."""
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config  # the client has no type hints
    try:
        config.load_kube_config()
    except (config.ConfigException, OSError, TypeError) as exc:
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise TargetRefused(f"no usable kubeconfig ({exc}) and not running in a pod: "
                                "set KUBECONFIG to the local cluster's (make cluster-up)") from None
    api = client.ApiClient()
    check_api_server(api.configuration.host)
    return resolve(name, namespace, via_pods, client.CoreV1Api(api), client.CustomObjectsApi(api))
