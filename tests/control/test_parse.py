"""The fast exposition parser agrees with prometheus_client's parser (the reference)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gencluster.control import samples as m
from gencluster.metrics_source.parse import parse_fast, parse_reference


def exposition(codes, lat, queue, mem_used, mem_total, ooms, label_value) -> str:
    r = CollectorRegistry()
    c = Counter("gencluster_requests", "requests", ["code"], registry=r)
    for code, n in codes.items():
        c.labels(code).inc(n)
    h = Histogram("gencluster_request_duration_seconds", "latency", ["outcome"], registry=r,
                  buckets=(0.1, 0.5, 1, 2, 4, 8))
    for x in lat:
        h.labels("ok").observe(x)
    h.labels("cache_hit").observe(0.01)
    Gauge("gencluster_queue_depth", "q", registry=r).set(queue)
    g = Gauge("gencluster_gpu_memory_used_bytes", "u", ["device"], registry=r)
    g.labels(label_value).set(mem_used)
    Gauge("gencluster_gpu_memory_total_bytes", "t", ["device"], registry=r).labels(
        label_value).set(mem_total)
    Counter("gencluster_oom", "o", registry=r).inc(ooms)
    Gauge("unrelated_metric", "x", registry=r).set(1)
    return generate_latest(r).decode()


label_values = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)),
                       min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(st.dictionaries(st.sampled_from(["200", "429", "500"]), st.integers(0, 10**6)),
       st.lists(st.floats(0, 20), max_size=30), st.integers(0, 500),
       st.floats(0, 1e11), st.floats(1, 1e11), st.integers(0, 50),
       st.one_of(st.just("cuda:0"), label_values))
def test_fast_parser_equals_reference(codes, lat, queue, used, total, ooms, dev):
    text = exposition(codes, lat, queue, used, total, ooms, dev)
    assert parse_fast(text, 1.0, "p", "u") == parse_reference(text, 1.0, "p", "u")


def test_keeps_only_the_contract():
    text = exposition({"200": 3}, [0.3], 2, 1.0, 2.0, 1, "cuda:0")
    s = parse_fast(text, 5.0, "pod", "uid")
    names = {n for n, _ in (*s.counters, *s.gauges, *s.histograms)}
    assert names <= m.KNOWN and "unrelated_metric" not in names
    h = s.histograms[(m.REQUEST_DURATION, (("outcome", "ok"),))]
    assert h.count == 1.0 and h.buckets[-1] == (math.inf, 1.0)
    assert s.counters[(m.REQUESTS_TOTAL, (("code", "200"),))] == 3.0


def test_special_values_and_dcgm():
    text = ('DCGM_FI_DEV_FB_USED{gpu="0",UUID="GPU-1",pod="w-1"} 12000\n'
            'DCGM_FI_DEV_FB_FREE{gpu="0",UUID="GPU-1",pod="w-1"} 4000\n'
            "gencluster_queue_depth NaN\n"
            "gencluster_inflight_requests +Inf\n")
    s = parse_fast(text, 1.0, "p", "u")
    assert repr(s) == repr(parse_reference(text, 1.0, "p", "u"))  # NaN != NaN, reprs agree
    assert math.isnan(s.gauges[(m.QUEUE_DEPTH, ())])
    assert s.gauges[(m.DCGM_FB_USED, (("UUID", "GPU-1"), ("gpu", "0"), ("pod", "w-1")))] == 12000
