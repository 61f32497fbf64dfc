"""Conditions keep lastTransitionTime unless their status changes."""

from gencluster.api.conditions import ConditionUpdate, find, merge_conditions, transitions


def test_new_condition_gets_now() -> None:
    out = merge_conditions([], [ConditionUpdate("Ready", "False", "WorkloadNotReady", "0/1")], "T1", 3)
    assert out == [{"type": "Ready", "status": "False", "reason": "WorkloadNotReady",
                    "message": "0/1", "lastTransitionTime": "T1", "observedGeneration": 3}]


def test_unchanged_status_keeps_transition_time_but_updates_reason() -> None:
    first = merge_conditions([], [ConditionUpdate("Ready", "False", "A", "a")], "T1", 1)
    second = merge_conditions(first, [ConditionUpdate("Ready", "False", "B", "b")], "T2", 2)
    assert second[0]["lastTransitionTime"] == "T1"
    assert second[0]["reason"] == "B" and second[0]["observedGeneration"] == 2


def test_changed_status_moves_transition_time() -> None:
    first = merge_conditions([], [ConditionUpdate("Ready", "False", "A")], "T1", 1)
    second = merge_conditions(first, [ConditionUpdate("Ready", "True", "Ready")], "T2", 1)
    assert second[0]["lastTransitionTime"] == "T2"


def test_other_writers_conditions_are_kept_and_order_is_stable() -> None:
    current = [{"type": "Alerting", "status": "True", "reason": "AlertFiring", "message": "",
                "lastTransitionTime": "T0"}]
    out = merge_conditions(current, [ConditionUpdate("Ready", "True", "Ready"),
                                     ConditionUpdate("Degraded", "False", "AsExpected")], "T1", 1)
    assert [c["type"] for c in out] == ["Ready", "Degraded", "Alerting"]
    assert find(out, "Alerting") == current[0]


def test_transitions_only_report_status_changes() -> None:
    current = [{"type": "Ready", "status": "True"}, {"type": "Degraded", "status": "False"}]
    ups = [ConditionUpdate("Ready", "True", "Ready"), ConditionUpdate("Degraded", "True", "Unschedulable"),
           ConditionUpdate("CacheReady", "True", "CacheReady")]
    assert [u.type for u in transitions(current, ups)] == ["Degraded", "CacheReady"]


def test_already_applied_compares_only_what_the_writer_applies() -> None:
    from gencluster.api.conditions import already_applied

    ready = {"type": "Ready", "status": "True", "reason": "Ready", "message": "1/1",
             "lastTransitionTime": "T1", "observedGeneration": 2}
    mine = {"observedGeneration": 2, "replicas": 1, "conditions": [ready]}
    # another writer's fields and conditions (the control loop's) do not matter
    current = {**mine, "metrics": {"rps": 3.0}, "conditions": [
        ready, {"type": "Alerting", "status": "False", "reason": "NoAlerts"}]}
    assert already_applied(current, mine)
    assert not already_applied({**current, "replicas": 2}, mine)  # a field differs
    assert not already_applied({k: v for k, v in current.items() if k != "replicas"}, mine)
    moved = {**ready, "message": "0/1"}
    assert not already_applied({**current, "conditions": [moved]}, mine)  # a condition's text
    assert not already_applied({**current, "conditions": []}, mine)  # a condition is missing
    assert not already_applied({}, mine)
