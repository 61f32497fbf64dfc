"""Load traces (CSV `second,requests[,leak_percent_per_min]`) and regenerate the shipped ones.

`requests` is the number of requests arriving in that second. The optional third column is the
GPU memory every pod leaks during that second, in percent of the device per minute (the slow
leak trace uses it; other traces leave it out, meaning 0). Shipped traces live in traces/ and are
regenerated, bit for bit, by `python -m gencluster.simulate.traces` (seeded).
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


@dataclass(frozen=True)
class Trace:
    name: str
    requests: tuple[int, ...]
    leak: tuple[float, ...]  # percent of GPU memory per minute, per pod; same length

    def __len__(self) -> int:
        return len(self.requests)


def resolve(path_or_name: str) -> Path:
    """A file path, or the name of a shipped trace (steady, diurnal, bursty, step5x, leak)."""
    p = Path(path_or_name)
    if p.exists():
        return p
    shipped = TRACES_DIR / f"{path_or_name}.csv"
    if shipped.exists():
        return shipped
    raise FileNotFoundError(f"no trace file or shipped trace named {path_or_name!r}")


def load(path_or_name: str) -> Trace:
    path = resolve(path_or_name)
    by_second: dict[int, tuple[int, float]] = {}
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or not {"second", "requests"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: header must be second,requests[,leak_percent_per_min]")
        for row in reader:
            second = int(row["second"])
            reqs = int(float(row["requests"]))
            leak = float(row.get("leak_percent_per_min") or 0.0)
            if second < 0 or reqs < 0 or not math.isfinite(leak) or leak < 0:
                raise ValueError(f"{path}: bad row {row}")
            by_second[second] = (reqs, leak)
    n = max(by_second) + 1 if by_second else 0
    reqs_l = [by_second.get(s, (0, 0.0))[0] for s in range(n)]
    leak_l = [by_second.get(s, (0, 0.0))[1] for s in range(n)]
    return Trace(path.stem, tuple(reqs_l), tuple(leak_l))


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
