"""Prometheus text exposition -> PodSample, keeping only the workload metrics contract.

Two parsers produce the same PodSample:
- `parse_reference`: prometheus_client's own parser (text_string_to_metric_families). The
  authority on the format; used for anything unusual and as the oracle in the tests.
- `parse_fast`: a line scanner for the subset the contract needs (about 10x faster: the loop cost
  target is 5,000 pods every 5 s on one core, and the reference parser alone would take about
  that). It hands the text to the reference parser whenever it meets something it does not
  handle itself (escaped label values, exemplars, OpenMetrics `# EOF`), so it is never wrong,
  only sometimes not faster. The tests check both give the same sample on generated exposition.
"""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families

from ..control.samples import (
    COUNTERS,
    GAUGES,
    HISTOGRAMS,
    HistogramSample,
    Labels,
    PodSample,
    SeriesKey,
)

_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"([^"\\]*)"\s*,?')
_SUFFIXES = (("_bucket", "b"), ("_count", "c"), ("_sum", "s"))


class _Unhandled(Exception):
    """The fast path met syntax it leaves to the reference parser."""


class SampleBuilder:
    """Accumulates raw samples into counters, gauges and histograms."""

    def __init__(self) -> None:
        self.counters: dict[SeriesKey, float] = {}
        self.gauges: dict[SeriesKey, float] = {}
        self.buckets: dict[SeriesKey, dict[float, float]] = {}
        self.counts: dict[SeriesKey, float] = {}
        self.sums: dict[SeriesKey, float] = {}

    def add(self, name: str, labels: dict[str, str], value: float,
            keep: frozenset[str] = frozenset()) -> None:
        kind, key, le = classify(name, labels, keep)
        self.put(kind, key, le, value)

    def put(self, kind: int, key: SeriesKey, le: float, value: float) -> None:
        if kind == GAUGE:
            self.gauges[key] = value
        elif kind == COUNTER:
            self.counters[key] = value
        elif kind == BUCKET:
            b = self.buckets.get(key)
            if b is None:
                b = self.buckets[key] = {}
            b[le] = value
        elif kind == COUNT:
            self.counts[key] = value
        elif kind == SUM:
            self.sums[key] = value

    def build(self, timestamp: float, pod: str, uid: str) -> PodSample:
        hists: dict[SeriesKey, HistogramSample] = {}
        for key, b in self.buckets.items():
            ordered = tuple(sorted(b.items()))
            count = self.counts.get(key, ordered[-1][1] if ordered else 0.0)
            hists[key] = HistogramSample(ordered, count, self.sums.get(key, 0.0))
        return PodSample(timestamp, pod, uid, self.counters, self.gauges, hists)


IGNORE, GAUGE, COUNTER, BUCKET, COUNT, SUM = range(6)
_NO_KEY: SeriesKey = ("", ())


def classify(name: str, labels: dict[str, str],
             keep: frozenset[str] = frozenset()) -> tuple[int, SeriesKey, float]:
    """What a sample line is: (kind, series key, bucket bound); IGNORE for names neither in the
    contract nor in `keep` (the custom metrics' names, control.custom.base_names: a histogram's
    parts, a counter when the name ends in _total, else a gauge)."""
    if name in GAUGES:
        return GAUGE, (name, _key(labels)), 0.0
    if name in COUNTERS:
        return COUNTER, (name, _key(labels)), 0.0
    custom = name in keep
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix) and (name[: -len(suffix)] in HISTOGRAMS
                                      or (custom and name[: -len(suffix)] in keep)):
            base = name[: -len(suffix)]
            if kind == "b":
                rest = dict(labels)
                le = rest.pop("le", None)
                if le is None:
                    return IGNORE, _NO_KEY, 0.0
                return BUCKET, (base, _key(rest)), float(le)
            return (COUNT if kind == "c" else SUM), (base, _key(labels)), 0.0
    if custom:
        return (COUNTER if name.endswith("_total") else GAUGE), (name, _key(labels)), 0.0
    return IGNORE, _NO_KEY, 0.0


def _key(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


_PREFIXES = ("gencluster_", "DCGM_FI_DEV_FB_")
# Series text (name and labels, as written) -> its classification. The same few hundred series
# appear in every scrape of every pod, so labels are parsed once per process, not per line.
# One cache per set of kept custom names (a classification depends on it).
_SERIES: dict[str, tuple[int, SeriesKey, float]] = {}
_CUSTOM_SERIES: dict[frozenset[str], dict[str, tuple[int, SeriesKey, float]]] = {}
_SERIES_MAX = 50_000


def parse_fast(text: str, timestamp: float, pod: str, uid: str,
               keep: frozenset[str] = frozenset()) -> PodSample:
    """Parse the exposition text; falls back to `parse_reference` on syntax it does not handle.
    `keep`: names to keep beyond the contract (custom metrics)."""
    try:
        return _scan(text, keep).build(timestamp, pod, uid)
    except _Unhandled:
        return parse_reference(text, timestamp, pod, uid, keep)


def _series(series: str, keep: frozenset[str]) -> tuple[int, SeriesKey, float]:
    brace = series.find("{")
    if brace < 0:
        return classify(series, {}, keep)
    inner = series[brace + 1:-1]
    if "\\" in inner:
        raise _Unhandled
    labels = {}
    pos = 0
    while pos < len(inner):
        mt = _LABEL.match(inner, pos)
        if mt is None:
            if inner[pos:].strip():
                raise _Unhandled
            break
        labels[mt.group(1)] = mt.group(2)
        pos = mt.end()
    return classify(series[:brace], labels, keep)


def _scan(text: str, keep: frozenset[str] = frozenset()) -> SampleBuilder:
    out = SampleBuilder()
    prefixes: tuple[str, ...] = _PREFIXES
    cache = _SERIES
    if keep:
        prefixes = (*_PREFIXES, *sorted(keep))
        cache = _CUSTOM_SERIES.get(keep) or _CUSTOM_SERIES.setdefault(keep, {})
        if len(_CUSTOM_SERIES) > 64:  # specs changed many times: start afresh
            _CUSTOM_SERIES.clear()
            cache = _CUSTOM_SERIES.setdefault(keep, {})
    for line in text.splitlines():
        if not line.startswith(prefixes):
            continue  # comments, HELP/TYPE, other exporters' series
        end = line.rfind("}")
        if end >= 0:
            series, rest = line[:end + 1], line[end + 1:].split()
        else:
            parts = line.split()
            series, rest = parts[0], parts[1:]
        if not rest or len(rest) > 2 or "#" in rest:
            raise _Unhandled
        entry = cache.get(series)
        if entry is None:
            entry = _series(series, keep)
            if len(cache) >= _SERIES_MAX:
                cache.clear()
            cache[series] = entry
        kind = entry[0]
        if kind == IGNORE:
            continue
        try:
            value = float(rest[0])
        except ValueError as err:
            raise _Unhandled from err
        out.put(kind, entry[1], entry[2], value)
    return out


def parse_reference(text: str, timestamp: float, pod: str, uid: str,
                    keep: frozenset[str] = frozenset()) -> PodSample:
    """Parse with prometheus_client's text parser (the authority on the format)."""
    out = SampleBuilder()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.add(s.name, dict(s.labels), float(s.value), keep)
    return out.build(timestamp, pod, uid)
