"""The learnt service curve and what rests on it: timed points at any load, expiry and reset on a
workload change, memory pressure on reserved/NVML bytes, and scale-down defaults that do what
their descriptions say."""

from __future__ import annotations

import dataclasses

from gencluster.control import samples as m
from gencluster.control.replicas import (
    ReplicaState,
    behave,
    capacity_proposal,
    decide_replicas,
    pod_capacity,
    rate_noise,
)
from gencluster.control.samples import HistogramSample, PodSample
from gencluster.control.window import SERVICE_TTL_S, Window, memory_percent

from .helpers import GIB, pod_view, ref, sample, spec, view

DEV = (("device", "cuda:0"),)


def timed(t: float, batches: int, items: float, seconds: float, queue: float = 0.0) -> PodSample:
    """A scrape whose cumulative batch histograms say `batches` passes of `items` items in all,
    taking `seconds` of device time, and nothing queued (a lightly loaded pod)."""
    base = sample(t, queue=queue)
    hists = dict(base.histograms)
    hists[(m.BATCH_SIZE_OBSERVED, ())] = HistogramSample(((64.0, float(batches)),
                                                          (float("inf"), float(batches))),
                                                         float(batches), items)
    hists[(m.BATCH_DURATION, ())] = HistogramSample(((10.0, float(batches)),
                                                     (float("inf"), float(batches))),
                                                    float(batches), seconds)
    return dataclasses.replace(base, histograms=hists)


def test_timed_batches_give_service_points_at_any_load_and_they_expire():
    w = Window()
    w.update(0.0, [timed(0.0, 0, 0.0, 0.0)], [ref()])
    v = w.update(5.0, [timed(5.0, 10, 30.0, 5.2)], [ref()])  # 10 passes of 3: 0.52 s each
    assert v.service == ((3.0, 0.52),) or abs(v.service[0][1] - 0.52) < 1e-9
    assert v.service_points[0][0] == 5.0
    v = w.update(5.0 + SERVICE_TTL_S + 1.0, [], [ref()])
    assert v.service == () and v.service_points == ()


def test_memory_pressure_counts_reserved_and_nvml_process_bytes():
    g = {(m.GPU_MEMORY_USED, DEV): 4 * GIB, (m.GPU_MEMORY_TOTAL, DEV): 16 * GIB}
    assert memory_percent(g) == 25.0
    g[(m.GPU_MEMORY_RESERVED, DEV)] = 12 * GIB  # the caching allocator holds 12 GiB
    assert memory_percent(g) == 75.0
    g[(m.GPU_MEMORY_PROCESS, DEV)] = 14 * GIB  # NVML: with the CUDA context, 14 GiB
    assert memory_percent(g) == 87.5


SERVICE = tuple((float(b), 0.4 + 0.04 * b) for b in (2, 4, 6, 8) for _ in range(4))


def loaded(n: int, rate: float, image: str = "a") -> tuple:
    s = spec(workload={"image": image}, replicas={"min": 1, "max": 50})
    ps = [pod_view(f"p{i}", uid=f"u{i}", queue=0, mem=50, batch=8) for i in range(n)]
    pts = tuple((100.0 + i, b, t) for i, (b, t) in enumerate(SERVICE))
    v = dataclasses.replace(view(ps, now=400.0, arrival_rate=rate), service_points=pts,
                            service=SERVICE)
    return s, v


def test_capacity_sizes_the_pods_by_the_learnt_curve():
    s, v = loaded(10, 40.0)
    mu, b = pod_capacity(v)
    assert b == 8 and abs(mu - 8 / 0.72) < 0.01
    # lightly loaded pods at limit 8 count at the batch the tuner can reach under the 2 s SLO:
    # two batch times within 90 % of it, 0.4 + 0.04 b <= 0.9 -> b = 12, 13.6 req/s
    mu, b = pod_capacity(v, slo_ms=2000, b_max=32)
    assert b == 12 and abs(mu - 12 / 0.88) < 0.01
    d, _ = decide_replicas(s, v, 10, ReplicaState(since=0.0), 400.0)
    assert d.desired == 5 and "capacity" in d.reason  # ceil(40 / (13.6 x 0.7)) = 5
    # a pod whose memory holds its limit down counts at its own limit (the slowest sets it)
    hot = dataclasses.replace(v, pods={**v.pods, "p0": dataclasses.replace(
        v.pods["p0"], gpu_memory_percent=84.0)})
    d, _ = decide_replicas(s, hot, 10, ReplicaState(since=0.0), 400.0)
    assert d.desired == 6  # ceil(40 / (11.1 x 0.7))


def test_a_workload_change_voids_the_learnt_curve():
    s, v = loaded(10, 40.0)
    _, st = decide_replicas(s, v, 10, ReplicaState(since=0.0), 400.0)
    s2, v2 = loaded(10, 40.0, image="b")  # a new image: the old points describe other pods
    v2 = dataclasses.replace(v2, now=500.0)
    d, st2 = decide_replicas(s2, v2, 10, st, 500.0)
    cap = next(p for p in d.proposals if p.metric == "capacity")
    assert cap.replicas is None and "no service model" in cap.note
    assert st2.capacity_epoch is not None and st2.capacity_epoch[1] == 500.0
    fresh = tuple((600.0 + i, b, t) for i, (b, t) in enumerate(SERVICE))
    v3 = dataclasses.replace(v2, now=700.0, service_points=v2.service_points + fresh)
    d, _ = decide_replicas(s2, v3, 10, st2, 700.0)
    assert next(p for p in d.proposals if p.metric == "capacity").replicas == 5


def test_headroom_grows_with_the_rates_wander_not_with_a_trend():
    assert rate_noise([40.0 + 2.0 * i for i in range(30)]) < 1e-9  # a clean ramp: no wander
    calm = rate_noise([40.0, 41.0, 39.0, 40.0, 40.5, 39.5] * 4)
    wild = rate_noise([40.0, 55.0, 30.0, 48.0, 26.0, 50.0] * 4)
    assert wild > 5 * calm
    _, v = loaded(10, 40.0)
    quiet = capacity_proposal(v, pod_capacity(v), 10, 0.1, calm)
    loud = capacity_proposal(v, pod_capacity(v), 10, 0.1, wild)
    assert loud.replicas is not None and quiet.replicas is not None
    assert loud.replicas > quiet.replicas


def test_scale_down_defaults_do_what_they_say():
    a = spec().autoscaling
    assert (a.scale_down.max_pods, a.scale_down.max_percent, a.scale_down.select_policy) == \
        (1, 50, "Max")
    # Max: the larger of 1 pod and 50 % per period; after the window, 20 -> 10
    st = ReplicaState(recommendations=((0.0, 2),), since=0.0)
    n, why, _ = behave(20, 2, "", st, 400.0, a.scale_up, a.scale_down, 1, 50)
    assert n == 10 and "limited to 10" in why
    # Min: at most one pod a period
    one = a.scale_down.model_copy(update={"select_policy": "Min"})
    n, _, _ = behave(20, 2, "", st, 400.0, a.scale_up, one, 1, 50)
    assert n == 19


def test_a_long_lull_does_not_push_out_what_the_pods_showed_at_large_batches():
    from gencluster.control.window import SERVICE_PER_SIZE, ServicePoints

    pts = ServicePoints()
    for i in range(SERVICE_PER_SIZE):
        pts.append((float(i), 20.0, 1.2))  # a peak: batches of 20
    for i in range(1000):
        pts.append((100.0 + i, 1.0 + (i % 3) * 0.4, 0.45))  # a lull: batches of 1-2
    live = pts.live(0.0)
    assert sum(1 for _, b, _ in live if b == 20.0) == SERVICE_PER_SIZE
    assert len(live) <= 3 * SERVICE_PER_SIZE + SERVICE_PER_SIZE
    assert [t for t, _, _ in live] == sorted(t for t, _, _ in live)
    assert all(b != 20.0 for _, b, _ in pts.live(50.0))  # expired by time, bin and all
