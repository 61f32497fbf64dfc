"""Inputs: the generated image pool, Zipf popularity, arrival schedules, HDR percentiles."""

from __future__ import annotations

import io
import math
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gencluster.loadtest import run_profile
from gencluster.loadtest.arrivals import arrival_offsets
from gencluster.loadtest.histogram import LatencyHistogram
from gencluster.loadtest.images import make_pool
from gencluster.loadtest.popularity import ZipfSampler

from .conftest import config_for


def test_pool_is_distinct_valid_and_seeded() -> None:
    pool = make_pool(300, size=64, seed=3)
    assert len(set(pool)) == 300
    for data in pool[:12]:
        img = Image.open(io.BytesIO(data))
        assert img.format == "PNG" and img.size == (64, 64)
    assert make_pool(20, seed=3) == pool[:20]
    assert make_pool(20, seed=4) != pool[:20]
    arr = np.asarray(Image.open(io.BytesIO(pool[0])).convert("L"), dtype=float)
    assert arr.std() > 10  # an object on a backdrop, not a flat image


@pytest.mark.parametrize("s", [0.8, 1.0, 1.5])
def test_zipf_frequencies_follow_the_law(s: float) -> None:
    n, draws = 100, 200_000
    sampler = ZipfSampler(n, s, seed=1)
    counts = Counter(sampler.sample() for _ in range(draws))
    harmonic = sum(k ** -s for k in range(1, n + 1))
    assert abs(counts[0] / draws - 1 / harmonic) < 0.01
    ranks = list(range(1, 21))
    freqs = [float(counts[k - 1]) for k in ranks]
    slope = np.polyfit(np.log(ranks), np.log(freqs), 1)[0]
    assert abs(slope + s) < 0.08, slope
    assert max(counts) < n


def test_zipf_zero_is_uniform_and_hit_ratio_estimate() -> None:
    sampler = ZipfSampler(10, 0.0, seed=2)
    counts = Counter(sampler.sample() for _ in range(50_000))
    assert all(abs(c / 50_000 - 0.1) < 0.01 for c in counts.values())
    zipf = ZipfSampler(100, 1.0)
    assert 0 < zipf.expected_hit_ratio(100) < zipf.expected_hit_ratio(1000) < 1
    assert math.isclose(ZipfSampler(1, 1.0).expected_hit_ratio(10), 0.9)


async def test_requests_carry_zipf_popular_images(echo_factory: Any) -> None:
    server = echo_factory(workers=200, service_s=0.001)
    await run_profile(config_for(server, rate=300, duration_s=1.5, pool=50, zipf=1.0))
    counts = sorted(server.bodies.values(), reverse=True)
    total = sum(counts)
    assert total == 450
    p1 = 1 / sum(1 / k for k in range(1, 51))  # 0.222
    assert abs(counts[0] / total - p1) < 0.07
    assert counts[0] > 3 * counts[9]


def test_constant_and_poisson_schedules() -> None:
    constant = list(arrival_offsets("constant", 10, 2.0, random.Random(0)))
    assert len(constant) == 20 and constant[0] == 0 and math.isclose(constant[1], 0.1)
    poisson = list(arrival_offsets("poisson", 1000, 10.0, random.Random(0)))
    assert abs(len(poisson) - 10_000) < 400
    gaps = np.diff(poisson)
    assert abs(gaps.mean() - 0.001) < 0.0001 and abs(gaps.std() / gaps.mean() - 1) < 0.05
    assert list(arrival_offsets("poisson", 5, 3.0, random.Random(9))) == \
        list(arrival_offsets("poisson", 5, 3.0, random.Random(9)))


def test_histogram_percentiles_equal_hdrhistogram_own() -> None:
    hist = LatencyHistogram()
    rng = random.Random(5)
    for _ in range(5000):
        hist.record(rng.lognormvariate(-3, 1))
    ours = hist.percentiles_ms((50.0, 90.0, 95.0, 99.0, 99.9))
    theirs = hist.hdr.get_percentile_to_value_dict([50.0, 90.0, 95.0, 99.0, 99.9])
    assert ours == {p: v / 1000 for p, v in theirs.items()}
    assert LatencyHistogram().percentiles_ms() == {}
    assert LatencyHistogram().summary_ms()["p95"] is None
