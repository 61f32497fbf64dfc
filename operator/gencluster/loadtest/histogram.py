"""Latency histograms: HdrHistogram storage with fast, equivalent percentile queries.

Why HDR: fixed memory, 3 significant digits over 1 µs .. 1 h, mergeable (overall = sum of windows)
and exportable in the standard compressed encoding. Why numpy for the queries: hdrh walks its
23k counters in pure Python (~0.1 s per percentile), too slow for one window a second; the same
walk over the counts array with cumsum/searchsorted gives identical values in microseconds.
"""

from __future__ import annotations

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3600 * 1_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES = (50.0, 90.0, 95.0, 99.0)


class LatencyHistogram:
    """Latencies recorded in microseconds, reported in milliseconds."""

    def __init__(self) -> None:
        self.hdr = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
        self._counts = np.ctypeslib.as_array(self.hdr.counts)

    def record(self, seconds: float) -> None:
        us = int(seconds * 1_000_000)
        self.hdr.record_value(min(max(us, LOWEST_US), HIGHEST_US))

    def add(self, other: LatencyHistogram) -> None:
        self.hdr.add(other.hdr)

    @property
    def count(self) -> int:
        return int(self.hdr.get_total_count())

    def percentiles_ms(self, percentiles: tuple[float, ...] = PERCENTILES) -> dict[float, float]:
        """HdrHistogram semantics: the highest value equivalent to the bucket holding the
        ceil-rounded target count. Empty histogram -> {}."""
        total = self.count
        if total == 0:
            return {}
        cumulative = np.cumsum(self._counts, dtype=np.int64)
        out: dict[float, float] = {}
        for p in percentiles:
            target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
            index = int(np.searchsorted(cumulative, target, side="left"))
            value = self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index))
            out[p] = value / 1000.0
        return out

    def max_ms(self) -> float | None:
        return self.hdr.get_max_value() / 1000.0 if self.count else None

    def mean_ms(self) -> float | None:
        return self.hdr.get_mean_value() / 1000.0 if self.count else None

    def summary_ms(self) -> dict[str, float | None]:
        """{p50, p90, p95, p99, max, mean} in ms; None values when nothing was recorded."""
        pct = self.percentiles_ms()
        out: dict[str, float | None] = {f"p{int(p)}": pct.get(p) for p in PERCENTILES}
        out["max"] = self.max_ms()
        out["mean"] = self.mean_ms()
        return out

    def encode(self) -> str:
        """The standard HdrHistogram base64 encoding (readable by HdrHistogram tools)."""
        return self.hdr.encode().decode("ascii") if self.count else ""
