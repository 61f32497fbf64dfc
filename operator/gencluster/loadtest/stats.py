"""Counting outcomes: one Stats per window, per phase and overall, all fed the same events.

Conventions (documented in docs/loadtest.md):
- latency is measured from the request's intended send time to the end of its response body;
- the latency histograms hold successful (2xx) responses, split cached (X-Cache: hit-*) and
  uncached (miss); errors are counted by code and not mixed into the percentiles;
- error codes are the HTTP status ("429", "503", ...), or "timeout", "conn_error",
  "client_error", and "dropped" (not sent because --concurrency requests were already in flight;
  a drop is an error: the offered load was not delivered);
- error_rate = errors / outcomes, where outcomes = responses + timeouts + failures + drops;
- a window's events are those that *finished* in it (arrivals: those scheduled in it).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .histogram import LatencyHistogram

HIT_PREFIX = "hit"


def is_ok(code: str) -> bool:
    return code.isdigit() and 200 <= int(code) < 300


@dataclass
class Stats:
    arrivals: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    cache: Counter[str] = field(default_factory=Counter)  # X-Cache of 2xx responses
    ok: LatencyHistogram = field(default_factory=LatencyHistogram)
    cached: LatencyHistogram = field(default_factory=LatencyHistogram)
    uncached: LatencyHistogram = field(default_factory=LatencyHistogram)
    errors_latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def record_arrival(self) -> None:
        self.arrivals += 1

    def record(self, code: str, latency_s: float | None, cache: str | None) -> None:
        self.codes[code] += 1
        if latency_s is None:
            return
        if not is_ok(code):
            self.errors_latency.record(latency_s)
            return
        self.ok.record(latency_s)
        label = (cache or "unknown").lower()
        self.cache[label] += 1
        if label.startswith(HIT_PREFIX):
            self.cached.record(latency_s)
        elif label == "miss":
            self.uncached.record(latency_s)

    @property
    def outcomes(self) -> int:
        return sum(self.codes.values())

    @property
    def ok_count(self) -> int:
        return sum(n for code, n in self.codes.items() if is_ok(code))

    @property
    def errors(self) -> int:
        return self.outcomes - self.ok_count

    def error_rate(self) -> float:
        return self.errors / self.outcomes if self.outcomes else 0.0

    def errors_by_code(self) -> dict[str, int]:
        return {code: n for code, n in sorted(self.codes.items()) if not is_ok(code)}

    def cache_hit_ratio(self) -> float | None:
        """Hits / (hits + misses) among 2xx responses that carried X-Cache; None without any."""
        hits = sum(n for label, n in self.cache.items() if label.startswith(HIT_PREFIX))
        known = hits + self.cache.get("miss", 0)
        return hits / known if known else None

    def summary(self, seconds: float) -> dict[str, Any]:
        """Plain numbers for the report (latencies in ms, rates per second)."""
        per_s = 1.0 / seconds if seconds > 0 else 0.0
        return {
            "seconds": round(seconds, 3),
            "arrivals": self.arrivals,
            "offered_rate": round(self.arrivals * per_s, 3),
            "outcomes": self.outcomes,
            "ok": self.ok_count,
            "throughput_rps": round(self.ok_count * per_s, 3),
            "completed_rps": round((self.outcomes - self.codes.get("dropped", 0)) * per_s, 3),
            "errors": self.errors,
            "error_rate": round(self.error_rate(), 5),
            "errors_by_code": self.errors_by_code(),
            "latency_ms": self.ok.summary_ms(),
            "cache": {
                "hit_ratio": _round(self.cache_hit_ratio()),
                "responses": dict(sorted(self.cache.items())),
                "cached_latency_ms": self.cached.summary_ms(),
                "uncached_latency_ms": self.uncached.summary_ms(),
            },
            "error_latency_ms": self.errors_latency.summary_ms(),
        }


def _round(value: float | None, digits: int = 5) -> float | None:
    return None if value is None else round(value, digits)
