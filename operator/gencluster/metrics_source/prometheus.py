"""The same window inputs from a Prometheus server (spec.autoscaling.metrics.type: prometheus).

One instant query per interval fetches the raw samples of the contract series (cumulative
counters and histogram buckets, gauges, dcgm-exporter frame buffer) of the cluster's pods over
the last LOOKBACK_SECONDS, as a range selector:
    {__name__=~"<contract names>", namespace="<ns>", pod=~"<pod1>|<pod2>|..."}[60s]
The answer is a matrix: every series with its samples and each sample's own timestamp, the
time of the scrape that produced it. The newest sample of each series is kept, and a pod's
series are regrouped by the `pod` label into one PodSample stamped with its newest scrape time.
An instant vector selector would not do: it stamps every value with the query's evaluation time
and keeps returning a vanished target's last value for the 5-minute lookback, so a pod
Prometheus stopped seeing would look fresh, and a value read twice (the loop ticks faster than
Prometheus scrapes) would look like a new scrape with no change (zero deltas).
With scrape times the window works as for scraped pods: a sample no newer than the last one is
skipped, deltas span real scrape intervals (Prometheus' rate() is not used, so both sources give
the same figures), and a pod Prometheus stopped scraping goes stale by its own timestamp (stale
markers are not samples, and no sample newer than the last scrape ever arrives).
The pod and namespace label names follow the usual kubernetes_sd relabelling; both can be set.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from ..control.samples import COUNTERS, GAUGES, HISTOGRAMS, PodRef, PodSample
from .parse import SampleBuilder

KEEP_LABELS = frozenset({"code", "outcome", "le", "device", "tier", "result", "gpu", "UUID"})
SERIES = sorted(COUNTERS | GAUGES | {f"{h}{s}" for h in HISTOGRAMS
                                     for s in ("_bucket", "_count", "_sum")})
LOOKBACK_SECONDS = 60  # at least two scrapes at the usual 15-30 s scrape interval
STALE_SERIES_SECONDS = 0.5  # a series this much older than its pod's newest scrape has vanished


class PrometheusError(Exception):
    """The server answered, but not with a matrix."""


def promql(namespace: str, pods: Sequence[str], pod_label: str = "pod",
           namespace_label: str = "namespace", lookback_s: int = LOOKBACK_SECONDS) -> str:
    """The range selector of the pods' contract series (raw samples with their scrape times)."""
    names = "|".join(SERIES)
    pod_re = "|".join(re.escape(p) for p in sorted(pods)) or "^$"
    ns = namespace.replace("\\", "\\\\").replace('"', '\\"')
    pod_re = pod_re.replace("\\", "\\\\").replace('"', '\\"')
    return (f'{{__name__=~"{names}",{namespace_label}="{ns}",{pod_label}=~"{pod_re}"}}'
            f"[{lookback_s}s]")


def _newest(item: Mapping[str, Any]) -> tuple[float, str] | None:
    """(timestamp, value) of a matrix series' newest sample, or of a vector item's sample."""
    values = item.get("values")
    if values:
        ts, raw = max(values, key=lambda v: float(v[0]))
        return float(ts), str(raw)
    value = item.get("value")
    if value:
        return float(value[0]), str(value[1])
    return None


def samples_from_result(result: Sequence[Mapping[str, Any]], pods: Sequence[PodRef],
                        pod_label: str = "pod") -> list[PodSample]:
    """Regroup a matrix (or vector) by pod into PodSamples (uid from the pod list).

    Each series contributes its newest sample; the pod's sample is stamped with the newest
    scrape time among its series. A series whose newest sample is older than its target's newest
    scrape (it vanished from the exposition) is left out rather than mixed in with an old value;
    targets (job, instance) are judged apart, as a pod's dcgm-exporter is scraped at other times.
    """
    newest: dict[str, list[tuple[float, Mapping[str, str], float]]] = {}
    uids = {p.name: p.uid for p in pods}
    for item in result:
        metric = item.get("metric") or {}
        pod = metric.get(pod_label)
        if pod not in uids:
            continue
        point = _newest(item)
        if point is None:
            continue
        newest.setdefault(pod, []).append((point[0], metric, float(point[1])))
    out: list[PodSample] = []
    for pod, series in newest.items():
        stamp = max(ts for ts, _, _ in series)
        latest: dict[tuple[str | None, str | None], float] = {}
        for ts, metric, _ in series:
            target = (metric.get("job"), metric.get("instance"))
            latest[target] = max(ts, latest.get(target, ts))
        builder = SampleBuilder()
        for ts, metric, value in series:
            if ts < latest[(metric.get("job"), metric.get("instance"))] - STALE_SERIES_SECONDS:
                continue
            labels = {k: v for k, v in metric.items() if k in KEEP_LABELS}
            builder.add(metric.get("__name__", ""), labels, value)
        out.append(builder.build(stamp, pod, uids[pod]))
    return out


def scrape_interval(result: Sequence[Mapping[str, Any]]) -> float | None:
    """The median gap between consecutive samples of the matrix' series: the scrape interval."""
    gaps: list[float] = []
    for item in result:
        stamps = sorted(float(v[0]) for v in item.get("values") or ())
        gaps += [b - a for a, b in itertools.pairwise(stamps) if b > a]
    if not gaps:
        return None
    gaps.sort()
    return gaps[len(gaps) // 2]



class PrometheusSource:
    """Reads a cluster's pods' series from a Prometheus server's /api/v1/query."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, pod_label: str = "pod",
                 namespace_label: str = "namespace",
                 lookback_s: int = LOOKBACK_SECONDS) -> None:
        self.session = session
        self.lookback_s = lookback_s
        self.scrape_interval_s: float | None = None  # learnt from the samples' spacing
        self.base_url = base_url.rstrip("/")
        self.pod_label = pod_label
        self.namespace_label = namespace_label

    async def fetch(self, namespace: str, pods: Sequence[PodRef],
                    timeout_s: float) -> list[PodSample]:
        ready = [p for p in pods if p.ready]
        if not ready:
            return []
        query = promql(namespace, [p.name for p in ready], self.pod_label, self.namespace_label,
                       self.lookback_s)
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with self.session.post(f"{self.base_url}/api/v1/query", data={"query": query},
                                     timeout=timeout) as resp:
            body = await resp.json(content_type=None)
        kind = (body.get("data") or {}).get("resultType")
        if body.get("status") != "success" or kind not in ("matrix", "vector"):
            raise PrometheusError(str(body.get("error") or body)[:300])
        result = body["data"]["result"]
        self.scrape_interval_s = scrape_interval(result) or self.scrape_interval_s
        return samples_from_result(result, ready, self.pod_label)
