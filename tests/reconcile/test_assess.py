"""Assessment of observed children into conditions, with reasons a user can act on."""

from typing import Any

from gencluster.api.spec import parse_spec
from gencluster.reconcile.assess import CacheObservation, assess

SPEC = parse_spec({"workload": {"image": "x"}})
CACHE_OK = CacheObservation("standalone", True, "CacheReady", "ok")


def _deployment(replicas: int, ready: int, updated: int | None = None, gen: int = 1,
                conditions: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"metadata": {"generation": gen}, "status": {
        "observedGeneration": gen, "replicas": replicas, "readyReplicas": ready,
        "updatedReplicas": replicas if updated is None else updated, "conditions": conditions or []}}


def _by_type(a: Any) -> dict[str, Any]:
    return {c.type: c for c in a.conditions}


def test_all_ready() -> None:
    got = _by_type(assess(SPEC, 1, 2, _deployment(2, 2), [], CACHE_OK))
    assert got["Ready"].status == "True"
    assert got["Progressing"].status == "False" and got["Progressing"].reason == "RolloutComplete"
    assert got["Degraded"].status == "False"
    assert got["CacheReady"].status == "True"


def test_not_ready_while_no_pod_serves() -> None:
    got = _by_type(assess(SPEC, 1, 2, _deployment(2, 0), [], CACHE_OK))
    assert got["Ready"].status == "False" and got["Ready"].reason == "WorkloadNotReady"


def test_scale_up_in_flight_is_progressing_not_unready() -> None:
    got = _by_type(assess(SPEC, 1, 3, _deployment(3, 1), [], CACHE_OK))
    assert got["Ready"].status == "True"
    assert got["Progressing"].status == "True"


def test_rollout_in_progress() -> None:
    got = _by_type(assess(SPEC, 2, 2, _deployment(3, 2, updated=1, gen=2), [], CACHE_OK))
    assert got["Progressing"].status == "True"


def test_missing_deployment_is_not_ready() -> None:
    got = _by_type(assess(SPEC, 1, 1, None, [], CACHE_OK))
    assert got["Ready"].status == "False"


def test_unschedulable_pod_degrades_with_hint() -> None:
    pod = {"metadata": {"name": "w-1"}, "status": {"conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}]}}
    got = _by_type(assess(SPEC, 1, 1, _deployment(1, 0), [pod], CACHE_OK))
    assert got["Degraded"].status == "True" and got["Degraded"].reason == "Unschedulable"
    assert "Insufficient nvidia.com/gpu" in got["Degraded"].message
    assert "gpusPerReplica" in got["Degraded"].message
    assert "Insufficient nvidia.com/gpu" in got["Ready"].message
    # the scale-up in flight says why it does not progress (the loop holds further scale-up)
    assert got["Progressing"].status == "True" and got["Progressing"].reason == "PodsUnschedulable"
    assert "Insufficient nvidia.com/gpu" in got["Progressing"].message


def test_image_pull_failure_degrades() -> None:
    pod = {"metadata": {"name": "w-1"}, "status": {"containerStatuses": [{
        "name": "server", "state": {"waiting": {"reason": "ErrImageNeverPull", "message": "not present"}}}]}}
    got = _by_type(assess(SPEC, 1, 1, _deployment(1, 0), [pod], CACHE_OK))
    assert got["Degraded"].reason == "ImagePullFailed"


def test_crashloop_degrades() -> None:
    pod = {"metadata": {"name": "w-1"}, "status": {"containerStatuses": [{
        "name": "server", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    got = _by_type(assess(SPEC, 1, 1, _deployment(1, 0), [pod], CACHE_OK))
    assert got["Degraded"].reason == "CrashLoopBackOff"


def test_replica_failure_degrades() -> None:
    cond = {"type": "ReplicaFailure", "status": "True", "message": "pods is forbidden: exceeded quota"}
    got = _by_type(assess(SPEC, 1, 1, _deployment(0, 0, conditions=[cond]), [], CACHE_OK))
    assert got["Degraded"].reason == "ReplicaFailure" and "quota" in got["Degraded"].message


def test_cache_not_ready_blocks_ready() -> None:
    cache = CacheObservation("standalone", False, "CachePodsNotReady", "0/1 Redis pods ready")
    got = _by_type(assess(SPEC, 1, 1, _deployment(1, 1), [], cache))
    assert got["Ready"].status == "False" and got["Ready"].reason == "CacheNotReady"
    assert got["Progressing"].status == "False"
    assert got["CacheReady"].status == "False"


def test_status_fields() -> None:
    a = assess(SPEC, 4, 2, _deployment(2, 1), [], CACHE_OK)
    assert a.fields == {"observedGeneration": 4, "replicas": 2, "readyReplicas": 1}
