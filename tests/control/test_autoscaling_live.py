"""The whole loop on the local cluster, with the real workload: a shorter `make demo`.

Load arrives -> replicas rise -> batch size changes -> an AlertFiring Event -> load stops ->
scale-down after the (shortened) stabilisation window.
"""

from __future__ import annotations

import asyncio

import pytest
from fixtures.kube import get_json

from gencluster.demo import DemoSettings, run_demo

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]
SCALE_UP_BOUND_S = 30.0  # after the spike begins (intervalSeconds 3 + metric lag + apply)


def test_spike_scales_up_tunes_batches_alerts_and_scales_down(cluster, namespace: str,  # type: ignore[no-untyped-def]
                                                              monkeypatch) -> None:
    # The demo's load tester resolves the Service from the current kubeconfig (as a user's would).
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    settings = DemoSettings(namespace=namespace, baseline_s=10, spike_s=35, recovery_s=5,
                            scale_down_timeout_s=180, ready_timeout_s=300)
    lines: list[str] = []
    result = asyncio.run(run_demo(settings, out=lines.append, api_client=cluster.api_client()))
    timeline = "\n".join(lines)

    reaction = result.first_scale_up_after(result.spike_started)
    assert reaction is not None and reaction <= SCALE_UP_BOUND_S, timeline
    reasons = result.reasons()
    assert "ScaledUp" in reasons, timeline
    assert "BatchSizeChanged" in reasons, timeline
    assert "AlertFiring" in reasons, timeline
    assert "ScaledDown" in reasons, timeline
    # The same Events are visible through the API, as `kubectl describe` shows them.
    events = get_json(cluster, "events", "-n", namespace, "--field-selector",
                      f"involvedObject.kind=GenerationCluster,involvedObject.name={settings.name}")
    firing = [e for e in events["items"] if e["reason"] == "AlertFiring"]
    assert firing and firing[0]["type"] == "Warning" and "threshold" in firing[0]["message"]
    described = cluster.kubectl("describe", "gencl", settings.name, "-n", namespace).stdout
    assert "AlertFiring" in described and "ScaledUp" in described
    obj = get_json(cluster, "gencl", settings.name, "-n", namespace)
    assert obj["status"]["lastScale"]["reason"], obj["status"]
    # Scale-down happened after the load stopped, never below min.
    down = [s for s in result.samples if s.t > result.spike_ended and s.desired is not None]
    assert down and min(s.desired for s in down) >= 1
    assert max(s.desired for s in result.samples if s.desired) <= 4
