"""The same window inputs from a Prometheus server (spec.autoscaling.metrics.type: prometheus).

One instant query per interval fetches the raw contract series (cumulative counters and
histogram buckets, gauges, dcgm-exporter frame buffer) of the cluster's pods:
    {__name__=~"<contract names>", namespace="<ns>", pod=~"<pod1>|<pod2>|..."}
and regroups them by the `pod` label into PodSamples stamped with Prometheus' own sample time.
The window then computes deltas exactly as for scraped pods: Prometheus' rate() is not used, so
both sources give the same figures, and a pod Prometheus stopped seeing goes stale by timestamp.
The pod and namespace label names follow the usual kubernetes_sd relabelling; both can be set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from ..control.samples import COUNTERS, GAUGES, HISTOGRAMS, PodRef, PodSample
from .parse import SampleBuilder

KEEP_LABELS = frozenset({"code", "outcome", "le", "device", "tier", "result", "gpu", "UUID"})
SERIES = sorted(COUNTERS | GAUGES | {f"{h}{s}" for h in HISTOGRAMS
                                     for s in ("_bucket", "_count", "_sum")})


class PrometheusError(Exception):
    """The server answered, but not with a vector."""


def promql(namespace: str, pods: Sequence[str], pod_label: str = "pod",
           namespace_label: str = "namespace") -> str:
    names = "|".join(SERIES)
    pod_re = "|".join(re.escape(p) for p in sorted(pods)) or "^$"
    ns = namespace.replace("\\", "\\\\").replace('"', '\\"')
    pod_re = pod_re.replace("\\", "\\\\").replace('"', '\\"')
    return f'{{__name__=~"{names}",{namespace_label}="{ns}",{pod_label}=~"{pod_re}"}}'


def samples_from_vector(result: Sequence[Mapping[str, Any]], pods: Sequence[PodRef],
                        pod_label: str = "pod") -> list[PodSample]:
    """Regroup an instant vector by pod into PodSamples (uid from the pod list)."""
    by_pod: dict[str, tuple[SampleBuilder, list[float]]] = {}
    uids = {p.name: p.uid for p in pods}
    for item in result:
        metric = item.get("metric") or {}
        pod = metric.get(pod_label)
        if pod not in uids:
            continue
        ts, raw = item["value"]
        builder, stamps = by_pod.setdefault(pod, (SampleBuilder(), []))
        labels = {k: v for k, v in metric.items() if k in KEEP_LABELS}
        builder.add(metric.get("__name__", ""), labels, float(raw))
        stamps.append(float(ts))
    return [b.build(max(stamps), pod, uids[pod]) for pod, (b, stamps) in by_pod.items()]


class PrometheusSource:
    """Reads a cluster's pods' series from a Prometheus server's /api/v1/query."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, pod_label: str = "pod",
                 namespace_label: str = "namespace") -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.pod_label = pod_label
        self.namespace_label = namespace_label

    async def fetch(self, namespace: str, pods: Sequence[PodRef],
                    timeout_s: float) -> list[PodSample]:
        ready = [p for p in pods if p.ready]
        if not ready:
            return []
        query = promql(namespace, [p.name for p in ready], self.pod_label, self.namespace_label)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self.session.post(f"{self.base_url}/api/v1/query", data={"query": query},
                                     timeout=timeout) as resp:
            body = await resp.json(content_type=None)
        if body.get("status") != "success" or body.get("data", {}).get("resultType") != "vector":
            raise PrometheusError(str(body.get("error") or body)[:300])
        return samples_from_vector(body["data"]["result"], ready, self.pod_label)
