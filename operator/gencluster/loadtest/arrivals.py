"""Open-loop arrival times: when each request is *meant* to be sent, independent of responses.

Why open loop: real users do not wait for each other. A closed-loop tester that sends the next
request only after the last one returned slows down exactly when the server does, and so never
records the queueing it would have seen (coordinated omission). Here the schedule is fixed in
advance; latency is measured from these intended times (see engine).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Literal

Arrival = Literal["constant", "poisson"]


def arrival_offsets(kind: Arrival, rate: float, duration_s: float, rng: random.Random) -> Iterator[float]:
    """Offsets in seconds from the phase start, in [0, duration_s), at `rate` per second.

    constant: evenly spaced (the first at 0). poisson: exponential gaps (memoryless arrivals,
    bursts included), drawn from rng so a seed replays the same schedule.
    """
    if rate <= 0 or duration_s <= 0:
        return
    if kind == "constant":
        gap = 1.0 / rate
        i = 0
        while (t := i * gap) < duration_s:
            yield t
            i += 1
    elif kind == "poisson":
        t = rng.expovariate(rate)
        while t < duration_s:
            yield t
            t += rng.expovariate(rate)
    else:
        raise ValueError(f"arrival must be constant or poisson, got {kind!r}")
