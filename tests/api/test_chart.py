"""The Helm chart renders manifests that the real apiserver accepts (server-side dry run)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster
CHART = Path(__file__).resolve().parents[2] / "charts" / "gencluster-operator"


@pytest.mark.parametrize("values", [
    [],
    ["--set", "watchNamespaces={team-a,team-b}", "--set", "logLevel=debug",
     "--set", "metrics.service.enabled=false"],
])
def test_rendered_chart_is_valid_for_the_apiserver(cluster, namespace: str, values: list[str]) -> None:  # type: ignore[no-untyped-def]
    rendered = cluster.helm("template", "gencluster", str(CHART), "--namespace", namespace,
                            "--include-crds", *values).stdout
    proc = cluster.kubectl("apply", "--dry-run=server", "--validate=strict", "-n", namespace,
                           "-f", "-", input=rendered, check=False)
    assert proc.returncode == 0, proc.stderr
    for kind in ("deployment.apps/gencluster-operator", "clusterrole.rbac.authorization.k8s.io/",
                 "serviceaccount/gencluster-operator", "customresourcedefinition.apiextensions.k8s.io/"):
        assert kind in proc.stdout, proc.stdout


def test_values_schema_rejects_bad_values(cluster) -> None:  # type: ignore[no-untyped-def]
    proc = cluster.helm("template", "gencluster", str(CHART), "--set", "image.pullPolicy=Sometimes",
                        check=False)
    assert proc.returncode != 0 and "pullPolicy" in proc.stderr, proc.stderr


def test_rbac_has_no_wildcards(cluster) -> None:  # type: ignore[no-untyped-def]
    rendered = cluster.helm("template", "gencluster", str(CHART)).stdout
    assert "'*'" not in rendered and '"*"' not in rendered and "- '*'" not in rendered
