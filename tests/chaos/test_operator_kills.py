"""The operator SIGKILLed at random points while GenerationClusters are created, updated, scaled
and deleted: after every restart it converges, with no duplicate and no orphaned child.

Convergence: every GenerationCluster's status.observedGeneration equals its generation and its
children are exactly the set the renderers want for its spec (same kinds and names, each carrying
the applied-hash annotation); deleted clusters leave nothing behind. `CHAOS_KILLS` (default 12 in
`make test`; 50 for docs/reliability.md) sets the number of kills; `CHAOS_SEED` the schedule.
"""
from __future__ import annotations

import json
import os
import random
import statistics
import time
from typing import Any

import pytest

from chaos.convergence import converge, gencl_spec

pytestmark = [pytest.mark.cluster]
KILLS = int(os.environ.get("CHAOS_KILLS", "12"))
SEED = int(os.environ.get("CHAOS_SEED", "7"))
def test_operator_killed_at_random_points_converges_without_duplicates(cluster, namespace: str,  # type: ignore[no-untyped-def]
                                                                       local_operator) -> None:
    rng = random.Random(SEED)
    specs: dict[str, dict[str, Any]] = {}
    made = 0
    times: list[float] = []
    actions: list[str] = []
    for _ in range(KILLS):
        choices = ["create"] if len(specs) < 2 else ["update", "scale", "cache", "delete", "create"]
        if len(specs) >= 4:
            choices.remove("create")
        action = rng.choice(choices)
        if action == "create":
            name = f"c{made}"
            made += 1
            specs[name] = gencl_spec(0, rng.choice(["disabled", "standalone"]), 4)
        else:
            name = rng.choice(sorted(specs))
            s = json.loads(json.dumps(specs[name]))
            if action == "update":
                s["batching"]["initial"] = rng.choice([2, 4, 8])
            elif action == "scale":  # at most one pod starts anywhere (memory)
                s["replicas"]["count"] = 1 if all(v["replicas"]["count"] == 0 for v in specs.values()) else 0
            elif action == "cache":
                s["cache"]["mode"] = "standalone" if s["cache"]["mode"] == "disabled" else "disabled"
            if action == "delete":
                cluster.kubectl("delete", "gencl", name, "-n", namespace, "--wait=false")
                del specs[name]
            else:
                specs[name] = s
        if action != "delete":
            cluster.apply({"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
                           "metadata": {"name": name}, "spec": specs[name]}, namespace=namespace)
        actions.append(f"{action} {name}")
        time.sleep(rng.uniform(0.0, 1.5))  # somewhere in the middle of the reconcile it triggered
        local_operator.kill()
        local_operator.start()
        try:
            times.append(converge(cluster, namespace, specs))
        except AssertionError as err:
            raise AssertionError(f"{err}\nactions: {actions}\noperator log:\n{local_operator.log()}") from None
    times.sort()
    p95 = times[max(0, round(0.95 * len(times)) - 1)]
    print(f"\nchaos: {KILLS} kills ({', '.join(actions)}); convergence after restart "
          f"median {statistics.median(times):.1f} s, p95 {p95:.1f} s, max {times[-1]:.1f} s")
