"""The result of a run: one Report, written as report.json, summary.txt and plot.png.

Why one object: the CLI, the demo and the e2e test all read the same numbers; report.json is
that object as JSON (latencies in ms, rates per second, times in seconds since the start).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .window import WindowRecord

SCHEMA = "gencluster.loadtest/v1"


@dataclass
class Report:
    config: dict[str, Any]
    target: str
    started_at: str  # ISO 8601, UTC
    duration_s: float  # measured time: end of the warm-up (or start) to the end of the drain
    send_seconds: float  # end of the warm-up (or start) to the end of the last arrival phase
    stopped_by: str  # completed | breaking_point (stress) | max_requests | max_seconds | stopped
    overall: dict[str, Any]
    phases: list[dict[str, Any]]
    windows: list[WindowRecord]
    profile: dict[str, Any]
    client: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    overall_hdr: str = ""  # HdrHistogram base64 of the 2xx latencies (µs)
    slowest: list[dict[str, Any]] = field(default_factory=list)  # with trace ids (engine)

    # Convenience accessors for the demo and tests.
    @property
    def p95_ms(self) -> float | None:
        value = self.overall["latency_ms"]["p95"]
        return None if value is None else float(value)

    @property
    def error_rate(self) -> float:
        return float(self.overall["error_rate"])

    @property
    def throughput_rps(self) -> float:
        return float(self.overall["throughput_rps"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "config": self.config,
            "target": self.target,
            "started_at": self.started_at,
            "duration_s": self.duration_s,
            "send_seconds": self.send_seconds,
            "stopped_by": self.stopped_by,
            "overall": self.overall,
            "profile": self.profile,
            "phases": self.phases,
            "client": self.client,
            "notes": self.notes,
            "slowest": self.slowest,
            "windows": [w.as_dict() for w in self.windows],
            "overall_hdr_us": self.overall_hdr,
        }

    def to_json(self) -> str:
        return json.dumps(_finite(self.to_dict()), indent=2, sort_keys=False)

    def write(self, out_dir: str | Path, plot: bool = True) -> dict[str, Path]:
        """report.json, summary.txt and (unless plot=False) plot.png in out_dir; their paths."""
        from .summary import summary_text

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"report": out / "report.json", "summary": out / "summary.txt"}
        paths["report"].write_text(self.to_json() + "\n")
        paths["summary"].write_text(summary_text(self))
        if plot:
            from .plot import plot_report

            paths["plot"] = out / "plot.png"
            plot_report(self, paths["plot"])
        return paths


def _finite(value: Any) -> Any:
    """JSON has no NaN/Infinity: map them to null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
