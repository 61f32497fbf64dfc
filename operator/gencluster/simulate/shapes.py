"""The scorecard's load shapes beyond the five shipped traces, regenerated bit for bit (seeded):

    python -m gencluster.simulate.shapes            # writes simulate/traces/<name>.csv

Real traffic is not Poisson around a smooth curve: its rate wanders (users arrive in sessions,
clients retry, upstream batch jobs start). Each shape is a base rate curve multiplied by a
slowly wandering log-normal factor (an AR(1) process in log space, correlation RHO per second,
stationary sigma given per shape) and then drawn as Poisson counts per second:

- flash: a flash crowd. 15 req/s; at 20 min the rate jumps ~8x within 20 s (a link went viral)
  and decays back over ~10 min (exponential, time constant 4 min); one hour.
- ramps: 10 req/s, ramp to 90 over 20 min, hold 10 min, back to 10 over 15 min; one hour.
- periodic: a 10-minute cycle between 15 and 75 req/s (a cron-driven upstream), two hours.
- noisy_flat: 30 req/s with heavy wander (sigma 0.3) and 1-5 s micro-bursts of 2-4x; one hour.
  The load a predictive scaler must not chase.
- lull_surge: 40 min at 3 req/s (scaled in to the minimum), then a surge to 60 req/s within
  a minute, held for 20 min; one hour.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .traces import SHIPPED, TRACES_DIR

SHAPES = ("flash", "ramps", "periodic", "noisy_flat", "lull_surge")
PUBLISHED = (*SHIPPED, *SHAPES)  # every trace the scorecard runs
RHO = 0.98  # per-second correlation of the log-rate wander (a ~50 s memory)
SEED = 11


def wander(rng: np.random.Generator, n: int, sigma: float, rho: float = RHO) -> np.ndarray:
    """A multiplicative noise factor with mean ~1: exp of a stationary AR(1) with std sigma."""
    eps = rng.normal(0.0, sigma * np.sqrt(1.0 - rho * rho), n)
    x = np.empty(n)
    x[0] = rng.normal(0.0, sigma)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + eps[i]
    out: np.ndarray = np.exp(x - sigma * sigma / 2.0)
    return out


def rate_curve(name: str, rng: np.random.Generator) -> np.ndarray:
    """The base rate (req/s) of a shape, times its wander."""
    out: np.ndarray = _curve(name, rng)
    return out


def _curve(name: str, rng: np.random.Generator) -> Any:
    if name == "flash":
        t = np.arange(3600, dtype=float)
        base = np.full(3600, 15.0)
        on = t >= 1200
        rise = np.clip((t - 1200) / 20.0, 0.0, 1.0)
        base[on] += 105.0 * rise[on] * np.exp(-np.maximum(0.0, t[on] - 1220) / 240.0)
        return base * wander(rng, 3600, 0.15)
    if name == "ramps":
        base = np.concatenate([np.full(300, 10.0), np.linspace(10, 90, 1200), np.full(600, 90.0),
                               np.linspace(90, 10, 900), np.full(600, 10.0)])
        return base * wander(rng, len(base), 0.15)
    if name == "periodic":
        t = np.arange(7200, dtype=float)
        base = 45.0 - 30.0 * np.cos(2 * np.pi * t / 600.0)
        return base * wander(rng, 7200, 0.12)
    if name == "noisy_flat":
        base = np.full(3600, 30.0) * wander(rng, 3600, 0.3)
        starts = rng.choice(np.arange(60, 3540), size=40, replace=False)
        for s in starts:
            base[s:s + int(rng.integers(1, 6))] *= float(rng.uniform(2.0, 4.0))
        return base
    if name == "lull_surge":
        base = np.concatenate([np.full(2400, 3.0), np.linspace(3, 60, 60), np.full(1140, 60.0)])
        return base * wander(rng, len(base), 0.15)
    raise ValueError(f"unknown shape {name!r} (one of {', '.join(SHAPES)})")


def generate(name: str, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng([seed, SHAPES.index(name)] if name in SHAPES else seed)
    rate = rate_curve(name, rng)
    out: np.ndarray = rng.poisson(np.maximum(rate, 0.0)).astype(int)
    return out


def write(name: str, directory: Path = TRACES_DIR) -> Path:
    reqs = generate(name)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["second", "requests"])
        for s, r in enumerate(reqs):
            w.writerow([s, int(r)])
    return path


def main(argv: list[str] | None = None) -> int:
    for name in (argv if argv is not None else sys.argv[1:]) or SHAPES:
        print(write(name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
