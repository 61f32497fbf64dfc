"""The loop-cost benchmark's custom-series mode measures what it says: every extra series is
named by the spec and kept by the parser; nothing else is."""

from __future__ import annotations

from gencluster.api.spec import custom_series, parse_spec
from gencluster.control.custom import base_names
from gencluster.metrics_source.parse import parse_fast, parse_reference
from gencluster.simulate.loopbench import custom_lines, custom_spec, render


def test_custom_series_are_named_by_the_spec_and_kept() -> None:
    extra = custom_spec()
    spec = parse_spec({"workload": {"image": "x"},
                       "autoscaling": {"targets": extra["targets"]},
                       "alerts": {"rules": extra["rules"]}})
    keep = base_names(m for m, _ in custom_series(spec))
    text = render(3, 1000.0) + custom_lines(3, 1000.0, 500)
    sample = parse_fast(text, 1000.0, "p", "u", keep)
    assert sample == parse_reference(text, 1000.0, "p", "u", keep)
    custom_g = [k for k in sample.gauges if k[0] == "app_custom_gauge"]
    custom_c = [k for k in sample.counters if k[0] == "app_custom_events_total"]
    assert len(custom_g) == 250 and len(custom_c) == 250
    plain = parse_fast(text, 1000.0, "p", "u")
    assert not any(k[0].startswith("app_custom") for k in (*plain.gauges, *plain.counters))
    assert custom_lines(1, 1.0, 0) == ""
