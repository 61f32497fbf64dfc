"""Every Kopf handler is registered in one place, and only when asked: importing the edge
registers nothing (tests that drive ClusterLoop import it without side effects)."""

from __future__ import annotations

import kopf

from gencluster.edge import control_loop, kopf_handlers, reconciler  # noqa: F401
from gencluster.edge.settings import load


def _ids(registry: kopf.OperatorRegistry) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in ("_activities", "_changing", "_indexing", "_spawning"):
        handlers = getattr(registry, name).get_all_handlers()
        out[name] = sorted(str(h.id) for h in handlers)
    return out


def test_the_registry_holds_every_handler_with_the_settings_intervals() -> None:
    registry = kopf_handlers.build_registry(load(["--resync-seconds", "7"], {}))
    ids = _ids(registry)
    assert ids["_activities"] == ["cleanup", "login_via_client", "startup"]
    assert set(ids["_changing"]) == {"reconcile_on_change", "forget"}
    assert ids["_indexing"] == ["gencluster_workload_pods", "gencluster_workload_replicas"]
    assert ids["_spawning"] == ["autoscaler", "resync"]
    timer = next(h for h in registry._spawning.get_all_handlers() if h.id == "resync")
    assert timer.interval == 7 and timer.initial_delay == 7


def test_importing_the_edge_registers_nothing_globally() -> None:
    ids = _ids(kopf.get_default_registry())
    ids["_activities"] = [i for i in ids["_activities"] if not i.startswith("login_")]  # Kopf's own
    assert not any(ids.values()), ids


def test_child_change_handlers_exist_only_with_a_resync_budget() -> None:
    """On (the default, 5), the pods', Deployments' and StatefulSets' events mark their cluster so
    a paced resync never holds back a change; off (0), the resync is the unpaced one, and nothing
    watches the children for it."""
    def watching(registry: kopf.OperatorRegistry) -> list[str]:
        return sorted(str(h.id) for h in registry._watching.get_all_handlers())

    assert watching(kopf_handlers.build_registry(load(["--resync-budget", "0"], {}))) == []
    assert watching(kopf_handlers.build_registry(load([], {}))) == [
        "deployments_changed", "pods_changed", "statefulsets_changed"]
