"""The drop-free scale-down state machine (control/scaledown.py): examples and invariants."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gencluster.control.samples import PodRef
from gencluster.control.scaledown import (
    REMOVAL_TIMEOUT_SECONDS,
    SETTLE_SECONDS,
    DrainReport,
    DrainState,
    choose_victims,
    effective_replicas,
    plan_scale_down,
)

GRACE = 30.0


def fleet(n: int, unready: int = 0) -> list[PodRef]:
    return [PodRef(f"p{i}", f"u{i}", f"10.0.0.{i}", ready=i >= unready) for i in range(n)]


def test_victims_are_the_least_loaded_ready_pods_and_unknown_load_counts_as_busy():
    pods = fleet(5, unready=1)  # p0 is not ready: never a victim (the ReplicaSet takes it first)
    load = {"p0": 0.0, "p1": 7.0, "p2": None, "p3": 1.0, "p4": 0.0}
    assert [p.name for p in choose_victims(pods, load, 2)] == ["p4", "p3"]
    assert [p.name for p in choose_victims(pods, load, 4)] == ["p4", "p3", "p1", "p2"]
    assert choose_victims(pods, load, 0) == []


def test_a_scale_down_drains_then_scales_and_waits_for_removal():
    pods = fleet(4)
    load = {"p0": 5.0, "p1": 0.0, "p2": 3.0, "p3": 9.0}
    plan = plan_scale_down(None, 4, 3, pods, load, {}, 100.0, GRACE)
    assert plan.drain == ("p1",) and plan.scale_to is None and plan.state is not None
    assert effective_replicas(4, plan.state) == 3  # the decision starts from where it heads
    # p1 still Ready (the probe has not failed yet): keep waiting, even if idle
    plan = plan_scale_down(plan.state, 4, 3, pods, load, {"p1": DrainReport(0, 0)}, 102.0, GRACE)
    assert plan.scale_to is None and plan.drain == ()
    # p1 not Ready now, but still finishing a request
    pods[1] = PodRef("p1", "u1", "10.0.0.1", ready=False)
    plan = plan_scale_down(plan.state, 4, 3, pods, load, {"p1": DrainReport(0, 1)}, 104.0, GRACE)
    assert plan.scale_to is None
    # idle, but not yet SETTLE_SECONDS since it was first seen not Ready
    plan = plan_scale_down(plan.state, 4, 3, pods, load, {"p1": DrainReport(0, 0)}, 105.0, GRACE)
    assert plan.scale_to is None
    t = 104.0 + SETTLE_SECONDS
    plan = plan_scale_down(plan.state, 4, 3, pods, load, {"p1": DrainReport(0, 0)}, t, GRACE)
    assert plan.scale_to == 3 and plan.state is not None and plan.state.phase == "removing"
    # the ReplicaSet deleted p1 (the index drops terminating pods): done
    rest = [p for p in pods if p.name != "p1"]
    plan = plan_scale_down(plan.state, 3, 3, rest, load, {}, t + 1, GRACE)
    assert plan == type(plan)()


def test_unready_pods_are_removed_before_any_ready_one_is_drained():
    pods = fleet(4, unready=1)
    plan = plan_scale_down(None, 4, 3, pods, {}, {}, 0.0, GRACE)
    assert plan.scale_to == 3 and plan.drain == () and plan.state is None
    plan = plan_scale_down(None, 4, 2, pods, {"p1": 1.0, "p2": 0.0, "p3": 2.0}, {}, 0.0, GRACE)
    assert plan.drain == ("p2",) and plan.scale_to is None


def test_more_pods_wanted_mid_drain_gives_readiness_back():
    pods = fleet(3)
    plan = plan_scale_down(None, 3, 1, pods, {}, {}, 0.0, GRACE)
    assert len(plan.drain) == 2
    back = plan_scale_down(plan.state, 3, 2, pods, {}, {}, 1.0, GRACE)
    assert len(back.undrain) == 1 and back.state is not None and len(back.state.victims) == 1
    cancel = plan_scale_down(back.state, 3, 5, pods, {}, {}, 2.0, GRACE)
    assert set(cancel.undrain) == {v.name for v in back.state.victims}
    assert cancel.scale_to == 5 and cancel.state is None


def test_grace_runs_out_and_a_changed_count_cancels():
    pods = fleet(2)
    plan = plan_scale_down(None, 2, 1, pods, {}, {}, 0.0, GRACE)
    busy = {plan.drain[0]: DrainReport(4, 4)}
    assert plan_scale_down(plan.state, 2, 1, pods, {}, busy, GRACE - 1, GRACE).scale_to is None
    assert plan_scale_down(plan.state, 2, 1, pods, {}, busy, GRACE, GRACE).scale_to == 1
    changed = plan_scale_down(plan.state, 3, 1, pods, {}, {}, 1.0, GRACE)
    assert changed.undrain == plan.drain and changed.state is None and changed.scale_to is None


def test_a_victim_the_replicaset_kept_gets_readiness_back():
    pods = fleet(2)
    state = DrainState("removing", 1, 1, plan_scale_down(None, 2, 1, pods, {}, {}, 0.0,
                                                       GRACE).state.victims, 10.0)  # type: ignore[union-attr]
    wait = plan_scale_down(state, 1, 1, pods, {}, {}, 11.0, GRACE)
    assert wait.state is not None and wait.undrain == ()
    late = plan_scale_down(state, 1, 1, pods, {}, {}, 10.0 + REMOVAL_TIMEOUT_SECONDS, GRACE)
    assert late.undrain == (state.victims[0].name,) and late.state is None


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 12), st.integers(0, 12), st.lists(st.integers(0, 12), min_size=1,
                                                         max_size=8),
       st.lists(st.tuples(st.booleans(), st.integers(0, 3)), min_size=12, max_size=12),
       st.lists(st.floats(0.0, 10.0, allow_nan=False), min_size=12, max_size=12))
def test_invariants(n: int, unready: int, desires: list[int], flags: list[tuple[bool, int]],
                    loads: list[float]) -> None:
    """Over any sequence of decisions: the count never goes below what is wanted, victims are
    real ready-at-choice pods, at most the surplus is drained, and a scale-down happens only
    when every victim has drained (or its grace ran out)."""
    pods = fleet(n, unready=min(unready, n))
    load = {p.name: loads[i] for i, p in enumerate(pods)}
    state = None
    deployment = n
    drained: set[str] = set()
    now = 0.0
    for desired in desires:
        now += 2.0
        ready_now = {p.name for p in pods if p.ready}
        reports = {p.name: DrainReport(flags[i][1] * int(flags[i][0]), 0)
                   for i, p in enumerate(pods)}
        plan = plan_scale_down(state, deployment, desired, pods, load, reports, now, GRACE)
        assert set(plan.drain) <= ready_now and not set(plan.drain) & drained
        drained = (drained | set(plan.drain)) - set(plan.undrain)
        if plan.state is not None and plan.state.phase == "draining":
            assert len(plan.state.victims) <= max(0, deployment - desired)
        if plan.scale_to is not None:
            assert plan.scale_to == desired
            if plan.scale_to < deployment and plan.state is not None:
                assert plan.state.phase == "removing"
                for v in plan.state.victims:
                    assert now - v.since >= GRACE or (
                        reports[v.name].idle and v.unready_at is not None
                        and now - v.unready_at >= SETTLE_SECONDS)
            deployment = plan.scale_to
        # victims go not Ready once drained (the kubelet's probe)
        pods = [PodRef(p.name, p.uid, p.ip, ready=p.ready and p.name not in drained)
                for p in pods]
        state = plan.state
