"""The Helm chart renders manifests that the real apiserver accepts (server-side dry run)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.cluster
CHART = Path(__file__).resolve().parents[2] / "charts" / "gencluster-operator"


@pytest.mark.parametrize("values", [
    [],
    # {ns}: the test's namespace (the Roles of watched namespaces must land in existing ones).
    ["--set", "watchNamespaces={{{ns}}}", "--set", "logLevel=debug",
     "--set", "metrics.service.enabled=false"],
    # the dashboard's ConfigMap for Grafana and the user's own token Secret (the PrometheusRule
    # needs the Prometheus Operator's CRDs: tests/dashboard/test_rules.py checks it with promtool)
    ["--set", "grafanaDashboard.enabled=true", "--set", "dashboard.token.existingSecret=mine"],
])
def test_rendered_chart_is_valid_for_the_apiserver(cluster, namespace: str, values: list[str]) -> None:  # type: ignore[no-untyped-def]
    values = [v.format(ns=namespace) for v in values]
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


def _rbac(cluster, *values: str) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    import yaml

    rendered = cluster.helm("template", "gencluster", str(CHART), "--namespace", "ops", *values).stdout
    return [d for d in yaml.safe_load_all(rendered) if d and d["kind"] in
            ("ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding")]


def _resources(role: dict) -> set[str]:  # type: ignore[type-arg]
    return {r for rule in role["rules"] for r in rule["resources"]}


def test_rbac_is_namespaced_when_watching_namespaces(cluster) -> None:  # type: ignore[no-untyped-def]
    everywhere = _rbac(cluster)
    (cr,) = [d for d in everywhere if d["kind"] == "ClusterRole"]
    assert {"secrets", "deployments", "pods", "namespaces"} <= _resources(cr)
    assert not [d for d in everywhere if d["kind"] in ("Role", "RoleBinding")]

    scoped = _rbac(cluster, "--set", "watchNamespaces={team-a,team-b}")
    (cr,) = [d for d in scoped if d["kind"] == "ClusterRole"]
    # Cluster-wide: CRD discovery only; no Secrets, children or pods in every namespace.
    assert _resources(cr) == {"customresourcedefinitions"}, cr["rules"]
    roles = {d["metadata"]["namespace"]: d for d in scoped if d["kind"] == "Role"}
    bindings = {d["metadata"]["namespace"]: d for d in scoped if d["kind"] == "RoleBinding"}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for ns, role in roles.items():
        assert {"secrets", "deployments", "pods", "generationclusters", "events"} <= _resources(role), ns
        subject = bindings[ns]["subjects"][0]
        assert (subject["name"], subject["namespace"]) == ("gencluster-operator", "ops")
