"""The operator installed with Helm into the local cluster, from locally built images."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

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


