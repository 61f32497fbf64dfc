"""Which pool image each request sends: Zipf popularity, as real request streams show.

Why Zipf: a few inputs are very popular and most are rare, so the cache sees production-like
hits and misses; s = 0 gives uniform (cache-hostile), s = 1 the classic web shape.
P(rank k) = k^-s / sum_j j^-s over k = 1..n. Seeded, so a run can be replayed.
"""

from __future__ import annotations

import numpy as np


class ZipfSampler:
    def __init__(self, n: int, s: float = 1.0, seed: int = 0) -> None:
        if n < 1:
            raise ValueError(f"pool size must be >= 1, got {n}")
        if not 0.0 <= s <= 10.0:
            raise ValueError(f"Zipf exponent must be in 0..10, got {s}")
        self.n, self.s = n, s
        weights = np.arange(1, n + 1, dtype=np.float64) ** -s
        self.probabilities = weights / weights.sum()
        self._cdf = np.cumsum(self.probabilities)
        self._cdf[-1] = 1.0
        self._rng = np.random.default_rng(seed)
        self._buffer: list[int] = []

    def sample(self) -> int:
        """A 0-based pool index (0 = the most popular image)."""
        if not self._buffer:
            draws = np.searchsorted(self._cdf, self._rng.random(4096), side="right")
            self._buffer = np.minimum(draws, self.n - 1)[::-1].tolist()
        return self._buffer.pop()

    def expected_hit_ratio(self, requests: int) -> float:
        """Hit ratio of an unbounded cache after `requests` draws: 1 - E[distinct] / requests."""
        if requests <= 0:
            return 0.0
        distinct = float(np.sum(1.0 - (1.0 - self.probabilities) ** requests))
        return 1.0 - distinct / requests
