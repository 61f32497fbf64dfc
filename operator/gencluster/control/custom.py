"""Custom metrics: any series the pods expose, as a scale target or an alert rule.

A selector is PromQL's instant-vector selector: a metric name and optional label matchers
(`=`, `!=`, `=~`, `!~`; regular expressions are fully anchored, as in PromQL), for example
`app_queue_wait_seconds{model="a",stage!~"warm.*"}`. What a series is, is read from the scrape:
- a histogram (the name has `_bucket` series): the matching buckets' increases over the latency
  window, merged; `aggregation` p50/p90/p95/p99 takes that quantile over all fresh pods; avg, max,
  min, sum take each pod's mean (sum / count) and aggregate those;
- a counter (the name ends in `_total`): each pod's per-second rate over the latency window
  (resets count from zero, as increase() does), the matching series summed;
- anything else is a gauge: each pod's matching series summed, at the last scrape.
The pods' values then aggregate by `aggregation` (avg, max, min, sum; quantiles for histograms).

The pods' scrapes keep only the metric names some selector names (besides the contract), so
a pod exporting thousands of other series costs nothing downstream. Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from .quantile import histogram_quantile, merge
from .samples import HistogramSample, Labels, SeriesKey

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r'"(?:[^"\\]|\\.)*"'
MATCHER = rf"\s*{LABEL}\s*(?:=~|!~|!=|=)\s*{VALUE}\s*"
SELECTOR_PATTERN = rf"^{NAME}(\{{({MATCHER}(,{MATCHER})*,?)?\s*\}})?$"
QUANTILES = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}
AGGREGATIONS = ("avg", "max", "min", "sum", *QUANTILES)
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

_MATCHER = re.compile(rf"\s*({LABEL})\s*(=~|!~|!=|=)\s*({VALUE})\s*,?")
_SELECTOR = re.compile(SELECTOR_PATTERN)
AMOUNT_PATTERN = (r"^([+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+))([eE][-+]?[0-9]+|[numkMGTPE]|Ki|Mi|Gi|Ti|Pi"
                  r"|Ei)?$")
_QUANTITY = re.compile(AMOUNT_PATTERN)
_SUFFIX = {"n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
           "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50,
           "Ei": 2.0**60}


def quantity(value: int | float | str) -> float:
    """A Kubernetes quantity ('500m', '2', '1.5', '4Ki', '1e3') or a number, as a float."""
    if isinstance(value, (int, float)):
        return float(value)
    m = _QUANTITY.match(value.strip())
    if m is None:
        raise ValueError(f"{value!r} is not a quantity (e.g. 2, 0.5, 500m, 4Ki)")
    number, suffix = float(m.group(1)), m.group(2) or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number * 10.0 ** int(suffix[1:])
    return number * _SUFFIX.get(suffix, 1.0)


@dataclass(frozen=True, slots=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str

    def matches(self, labels: Labels) -> bool:
        got = next((v for k, v in labels if k == self.label), "")  # absent label: ""
        if self.op == "=":
            return got == self.value
        if self.op == "!=":
            return got != self.value
        hit = _regex(self.value).fullmatch(got) is not None
        return hit if self.op == "=~" else not hit


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@dataclass(frozen=True, slots=True)
class Selector:
    name: str
    matchers: tuple[Matcher, ...]
    text: str

    def matches(self, labels: Labels) -> bool:
        return all(m.matches(labels) for m in self.matchers)


def _unquote(quoted: str) -> str:
    body = quoted[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


@lru_cache(maxsize=1024)
def parse_selector(text: str) -> Selector:
    """Parse `name{label="v",...}`; raises ValueError on bad syntax or a bad regular expression."""
    t = text.strip()
    if _SELECTOR.match(t) is None:
        raise ValueError(f"{text!r} is not a series selector (name{{label=\"value\",...}})")
    brace = t.find("{")
    name = t if brace < 0 else t[:brace]
    matchers = []
    if brace >= 0:
        inner = t[brace + 1:-1]
        pos = 0
        while pos < len(inner) and inner[pos:].strip():
            m = _MATCHER.match(inner, pos)
            if m is None:
                raise ValueError(f"{text!r}: bad label matcher at {inner[pos:]!r}")
            value = _unquote(m.group(3))
            if m.group(2) in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as err:
                    raise ValueError(f"{text!r}: bad regular expression {value!r}: {err}") from err
            matchers.append(Matcher(m.group(1), m.group(2), value))
            pos = m.end()
    return Selector(name, tuple(matchers), t)


def key(metric: str, aggregation: str) -> str:
    """The name a custom value goes by in the window view, status and messages."""
    return f"{aggregation}({metric.strip()})"


def base_names(selectors: Iterable[str]) -> frozenset[str]:
    """The metric names a scrape must keep for these selectors (histogram parts included)."""
    out: set[str] = set()
    for s in selectors:
        name = parse_selector(s).name
        out.add(name)
        out.update(name + suffix for suffix in HISTOGRAM_SUFFIXES)
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class CustomValue:
    """One selector+aggregation at `now`: the cluster value and each fresh pod's own."""

    kind: str  # gauge | counter | histogram | absent
    value: float | None
    per_pod: Mapping[str, float | None]
    seen: bool  # a matching series has ever been scraped


def aggregate(values: Sequence[float], aggregation: str) -> float | None:
    vals = [v for v in values if math.isfinite(v)]
    if not vals:
        return None
    if aggregation == "max":
        return max(vals)
    if aggregation == "min":
        return min(vals)
    if aggregation == "sum":
        return sum(vals)
    return sum(vals) / len(vals)  # avg (and the per-pod means of a histogram under a quantile)


def proposal(aggregation: str, value: float | None, target: float, ready: int, current: int,
             tol: float) -> tuple[int | None, str]:
    """(replicas, note) for a custom target other than `avg` (avg goes through HPA's per-pod
    calculation with its rules for pods without data). sum: ceil(sum / target), the target being
    per replica (KEDA's AverageValue); max, min: ceil(ready × value / target); quantiles: the
    same ratio, up only (a quantile under target, like latency, says nothing about how many
    pods could go)."""
    if value is None or target <= 0.0 or ready == 0:
        return None, "no pod reports it"
    if aggregation == "sum":
        ratio = value / (target * max(1, current))
        if abs(ratio - 1.0) <= tol:
            return current, "within tolerance"
        return math.ceil(value / target), f"sum {value:.3g} / {target:.3g} per replica"
    ratio = value / target
    if aggregation in QUANTILES and ratio <= 1.0 + tol:
        return None, "under target (up-only)"
    if abs(ratio - 1.0) <= tol:
        return current, "within tolerance"
    return math.ceil(ratio * ready), f"ratio {ratio:.2f}"


@dataclass(frozen=True, slots=True)
class PodSeries:
    """One fresh pod's series, as the window holds them (latest values and per-step deltas)."""

    name: str
    gauges: Mapping[SeriesKey, float]
    counters: Mapping[SeriesKey, float]
    histograms: Mapping[SeriesKey, HistogramSample]
    counts: Sequence[Mapping[str, float]]  # per step in the latency window: step_sums
    hists: Sequence[Mapping[str, HistogramSample]]
    dt: float  # seconds those steps cover


# (selector, series) -> matches: the same few hundred series come back every scrape
_MATCHES: dict[tuple[str, SeriesKey], bool] = {}
_MATCHES_MAX = 200_000


def _keys(series: Iterable[SeriesKey], sel: Selector) -> list[SeriesKey]:
    if not sel.matchers:
        return [k for k in series if k[0] == sel.name]
    out = []
    for k in series:
        if k[0] != sel.name:
            continue
        hit = _MATCHES.get((sel.text, k))
        if hit is None:
            if len(_MATCHES) >= _MATCHES_MAX:
                _MATCHES.clear()
            hit = _MATCHES[(sel.text, k)] = sel.matches(k[1])
        if hit:
            out.append(k)
    return out


def step_sums(selectors: Iterable[str], increases: Mapping[SeriesKey, float],
              deltas: Mapping[SeriesKey, HistogramSample]) -> tuple[dict[str, float],
                                                                   dict[str, HistogramSample]]:
    """One scrape step reduced per selector: the matching counters' increases summed, the
    matching histograms' deltas merged (so the window keeps a few numbers per step, not every
    series)."""
    counts: dict[str, float] = {}
    hists: dict[str, HistogramSample] = {}
    for text in selectors:
        sel = parse_selector(text)
        ck = _keys(increases, sel)
        if ck:
            counts[sel.text] = sum(increases[k] for k in ck)
        hk = _keys(deltas, sel)
        if hk:
            merged: dict[float, float] = {}
            for k in hk:
                merge(merged, deltas[k].buckets)
            hists[sel.text] = HistogramSample(tuple(sorted(merged.items())),
                                              sum(deltas[k].count for k in hk),
                                              sum(deltas[k].sum for k in hk))
    return counts, hists


def evaluate(metric: str, aggregation: str, pods: Sequence[PodSeries],
             seen_before: bool) -> CustomValue:
    """The value of `aggregation(metric)` over the fresh pods (module docstring)."""
    sel = parse_selector(metric)
    per_pod: dict[str, float | None] = {}
    kind = "absent"
    merged: dict[float, float] = {}
    for p in pods:
        hk = _keys(p.histograms, sel)
        if hk:
            kind = "histogram"
            count = total = 0.0
            for hstep in p.hists:
                d = hstep.get(sel.text)
                if d is not None:
                    merge(merged, d.buckets)
                    count += d.count
                    total += d.sum
            per_pod[p.name] = total / count if count > 0.0 else None
            continue
        ck = _keys(p.counters, sel)
        if ck:
            kind = "counter" if kind == "absent" else kind
            inc = sum(cstep.get(sel.text, 0.0) for cstep in p.counts)
            per_pod[p.name] = inc / p.dt if p.dt > 0.0 else None
            continue
        gk = _keys(p.gauges, sel)
        if gk:
            kind = "gauge" if kind == "absent" else kind
            per_pod[p.name] = sum(p.gauges[k] for k in gk)
    if kind == "histogram" and aggregation in QUANTILES:
        value = histogram_quantile(QUANTILES[aggregation], merged)
    else:
        value = aggregate([v for v in per_pod.values() if v is not None], aggregation)
    return CustomValue(kind, value, per_pod, seen_before or kind != "absent")
