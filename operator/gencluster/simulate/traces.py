"""Load traces (CSV `second,requests[,leak_percent_per_min][,slowdown][,error_percent][,stuck_pods]`)
and regenerate the shipped ones.

`requests` is the number of requests arriving in that second. The optional columns inject
faults during that second (a missing column, or an empty cell, means no fault):
- `leak_percent_per_min`: GPU memory every pod leaks, in percent of the device per minute;
- `slowdown`: multiplies every batch's service time (1 = normal);
- `error_percent`: that share of the requests completed fails with a 5xx;
- `stuck_pods`: that many pods (the oldest serving ones) stop completing work while staying Ready.
A fault is active where leak > 0, slowdown > 1.2, error_percent > 1 or stuck_pods > 0; each
maximal run of seconds with some fault active is one incident (`incidents`). Shipped traces live
in traces/ and are regenerated, bit for bit, by `python -m gencluster.simulate.traces` (seeded).
"""

from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TRACES_DIR = Path(__file__).parent / "traces"
SHIPPED = ("steady", "diurnal", "bursty", "step5x", "leak")


FAULT_COLUMNS = ("leak_percent_per_min", "slowdown", "error_percent", "stuck_pods")
HEADER_HELP = "second,requests[,leak_percent_per_min][,slowdown][,error_percent][,stuck_pods]"
# A fault is active (part of an incident) beyond these values.
SLOWDOWN_ACTIVE = 1.2
ERROR_PERCENT_ACTIVE = 1.0
KINDS = ("leak", "slowdown", "errors", "stuck")


@dataclass(frozen=True)
class Trace:
    name: str
    requests: tuple[int, ...]
    leak: tuple[float, ...]  # percent of GPU memory per minute, per pod; same length
    slowdown: tuple[float, ...] = ()  # service-time factor per second; empty: all 1
    error_percent: tuple[float, ...] = ()  # empty: all 0
    stuck_pods: tuple[int, ...] = ()  # empty: all 0

    def __len__(self) -> int:
        return len(self.requests)

    def slow(self, second: int) -> float:
        return self.slowdown[second] if self.slowdown else 1.0

    def errors(self, second: int) -> float:
        return self.error_percent[second] if self.error_percent else 0.0

    def stuck(self, second: int) -> int:
        return self.stuck_pods[second] if self.stuck_pods else 0

    def active(self, second: int) -> tuple[str, ...]:
        """The fault kinds active in that second (the issue's definition)."""
        out = []
        if self.leak[second] > 0.0:
            out.append("leak")
        if self.slow(second) > SLOWDOWN_ACTIVE:
            out.append("slowdown")
        if self.errors(second) > ERROR_PERCENT_ACTIVE:
            out.append("errors")
        if self.stuck(second) > 0:
            out.append("stuck")
        return tuple(out)


@dataclass(frozen=True)
class Incident:
    """A maximal run [start, end) of seconds with some fault active; `kind` joins the kinds."""

    kind: str
    start: int
    end: int


def incidents(trace: Trace) -> list[Incident]:
    out: list[Incident] = []
    start: int | None = None
    kinds: set[str] = set()
    for s in range(len(trace) + 1):
        act = trace.active(s) if s < len(trace) else ()
        if act and start is None:
            start, kinds = s, set(act)
        elif act and start is not None:
            kinds |= set(act)
        elif not act and start is not None:
            out.append(Incident("+".join(k for k in KINDS if k in kinds), start, s))
            start = None
    return out


def resolve(path_or_name: str) -> Path:
    """A file path, or the name of a shipped trace (steady, diurnal, bursty, step5x, leak)."""
    p = Path(path_or_name)
    if p.exists():
        return p
    shipped = TRACES_DIR / f"{path_or_name}.csv"
    if shipped.exists():
        return shipped
    raise FileNotFoundError(f"no trace file or shipped trace named {path_or_name!r}")


def _cell(row: dict[str, str | None], column: str, default: float) -> float:
    raw = row.get(column)
    return default if raw is None or raw.strip() == "" else float(raw)


def load(path_or_name: str) -> Trace:
    path = resolve(path_or_name)
    by_second: dict[int, tuple[int, float, float, float, int]] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"second", "requests"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: header must be {HEADER_HELP}")
        unknown = set(reader.fieldnames) - {"second", "requests", *FAULT_COLUMNS}
        if unknown:
            raise ValueError(f"{path}: unknown columns {sorted(unknown)} (header {HEADER_HELP})")
        for row in reader:
            try:
                second = int(row["second"])
                reqs = int(float(row["requests"]))
                leak = _cell(row, "leak_percent_per_min", 0.0)
                slow = _cell(row, "slowdown", 1.0)
                err = _cell(row, "error_percent", 0.0)
                stuck_f = _cell(row, "stuck_pods", 0.0)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}: bad row {row}") from exc
            vals = (leak, slow, err, stuck_f)
            if (second < 0 or reqs < 0 or not all(math.isfinite(v) for v in vals) or leak < 0
                    or slow <= 0 or not 0 <= err <= 100 or stuck_f < 0
                    or stuck_f != int(stuck_f)):
                raise ValueError(f"{path}: bad row {row}")
            by_second[second] = (reqs, leak, slow, err, int(stuck_f))
    n = max(by_second) + 1 if by_second else 0
    rows = [by_second.get(s, (0, 0.0, 1.0, 0.0, 0)) for s in range(n)]
    cols = set(reader.fieldnames or ())
    return Trace(path.stem, tuple(r[0] for r in rows), tuple(r[1] for r in rows),
                 tuple(r[2] for r in rows) if "slowdown" in cols else (),
                 tuple(r[3] for r in rows) if "error_percent" in cols else (),
                 tuple(r[4] for r in rows) if "stuck_pods" in cols else ())


def write_trace(trace: Trace, path: Path) -> Path:
    """Write a trace as CSV with only the fault columns it uses."""
    cols: list[tuple[str, tuple[float, ...] | tuple[int, ...]]] = []
    if any(trace.leak):
        cols.append(("leak_percent_per_min", trace.leak))
    for name, seq in (("slowdown", trace.slowdown), ("error_percent", trace.error_percent),
                      ("stuck_pods", trace.stuck_pods)):
        if seq:
            cols.append((name, seq))
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["second", "requests", *(c for c, _ in cols)])
        for s, r in enumerate(trace.requests):
            w.writerow([s, int(r), *(f"{seq[s]:g}" for _, seq in cols)])
    return path


def _poisson(rng: np.random.Generator, rate: np.ndarray) -> np.ndarray:
    out: np.ndarray = rng.poisson(np.maximum(rate, 0.0)).astype(int)
    return out


def generate(name: str, seed: int = 7) -> tuple[np.ndarray, np.ndarray | None]:
    """(requests per second, leak per second or None) of a shipped trace."""
    rng = np.random.default_rng(seed)
    if name == "steady":  # one hour at 40 rps
        return _poisson(rng, np.full(3600, 40.0)), None
    if name == "diurnal":  # a day compressed into two hours: 10 -> 110 -> 10 rps
        t = np.arange(7200)
        return _poisson(rng, 10.0 + 100.0 * (1 - np.cos(2 * np.pi * t / 7200)) / 2), None
    if name == "bursty":  # one hour at 25 rps with 12 spikes of 3-6x lasting 30-150 s
        rate = np.full(3600, 25.0)
        starts = np.sort(rng.choice(np.arange(120, 3400, 60), size=12, replace=False))
        for s in starts:
            rate[s:s + int(rng.integers(30, 151))] *= float(rng.uniform(3.0, 6.0))
        return _poisson(rng, rate), None
    if name == "step5x":  # 10 min at 15 rps, then 5x (75 rps) for 20 min
        rate = np.concatenate([np.full(600, 15.0), np.full(1200, 75.0)])
        return _poisson(rng, rate), None
    if name == "leak":  # two hours at 20 rps; every pod leaks 0.5 % of GPU memory a minute
        return _poisson(rng, np.full(7200, 20.0)), np.full(7200, 0.5)
    raise ValueError(f"unknown shipped trace {name!r}")


def write(name: str, directory: Path = TRACES_DIR) -> Path:
    reqs, leak = generate(name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["second", "requests"] + (["leak_percent_per_min"] if leak is not None else []))
        for s, r in enumerate(reqs):
            w.writerow([s, int(r)] + ([f"{leak[s]:g}"] if leak is not None else []))
    return path


def main(argv: list[str] | None = None) -> int:
    for name in (argv or sys.argv[1:]) or SHIPPED:
        print(write(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
