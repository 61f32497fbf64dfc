"""The operator installed with Helm into the local cluster, from locally built images."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NS = "gencluster-system"
IMAGES = ["localhost/gencluster-operator:dev", "localhost/gencluster-workload:dev",
          "localhost/gencluster-redis:dev"]


@pytest.fixture(scope="session")
def images(cluster) -> None:  # type: ignore[no-untyped-def]
    """Builds the project's images (cached layers) and imports them into the node."""
    proc = subprocess.run(["bash", str(ROOT / "hack" / "images.sh"), "all"], cwd=ROOT,
                          capture_output=True, text=True, env=cluster.env(), timeout=3600)
    if proc.returncode != 0:
        pytest.fail(f"make images failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}", pytrace=False)


@pytest.fixture(scope="session")
def operator(cluster, images) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """`helm upgrade --install` of the chart with the local images; waits for the operator pod."""
    cluster.helm("upgrade", "--install", "gencluster", str(ROOT / "charts" / "gencluster-operator"),
                 "--namespace", OPERATOR_NS, "--create-namespace", "--wait", "--timeout", "5m",
                 "-f", str(ROOT / "hack" / "values-local.yaml"), "--set", "resyncSeconds=5")
    # A new image with the same tag: make sure the running pod uses it.
    cluster.kubectl("rollout", "restart", "deployment/gencluster-operator", "-n", OPERATOR_NS)
    cluster.kubectl("rollout", "status", "deployment/gencluster-operator", "-n", OPERATOR_NS,
                    "--timeout=180s", timeout=200)
    yield


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 120, interval: float = 1.0) -> Any:
    """Polls fn until it returns something truthy; fails with the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def get_json(cluster, *args: str) -> Any:  # type: ignore[no-untyped-def]
    proc = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    for c in ((obj or {}).get("status") or {}).get("conditions") or []:
        if c["type"] == type_:
            return c  # type: ignore[no-any-return]
    return None
