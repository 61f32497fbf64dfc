"""A child the apiserver refuses after admission reaches the user: condition, Event, and the rest.

The CRD checks what it can at admission (tests/api/test_crd_validation.py); what it cannot see —
a namespace's ResourceQuota, a cluster's admission policy — refuses children later. Each such
refusal must be a Degraded condition and a Warning Event naming the child, the field and the
apiserver's message, within one reconcile, while the operator reconciles the other children.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures.kube import condition, get_json, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("operator")]


def _gencl(name: str) -> dict[str, Any]:
    return {"apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster", "metadata": {"name": name},
            "spec": {"workload": {"image": "localhost/gencluster-workload:dev", "imagePullPolicy": "Never",
                                  "memoryBudgetMiB": 1024},
                     "replicas": {"min": 1, "max": 2}, "cache": {"mode": "disabled"}}}


def _degraded(cluster, ns: str, name: str, reason: str):  # type: ignore[no-untyped-def]
    obj = get_json(cluster, "gencl", name, "-n", ns)
    c = condition(obj, "Degraded") if obj else None
    return c if c and c["status"] == "True" and c["reason"] == reason else None


def _warnings(cluster, ns: str, name: str, reason: str) -> list[str]:  # type: ignore[no-untyped-def]
    out = get_json(cluster, "events", "-n", ns, "--field-selector",
                   f"involvedObject.kind=GenerationCluster,involvedObject.name={name},reason={reason}")
    return [e["message"] for e in (out or {}).get("items", []) if e["type"] == "Warning"]


def test_quota_refusal_is_reported_and_the_rest_reconciled(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    cluster.apply({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "no-services"},
                   "spec": {"hard": {"services": "0"}}}, namespace=namespace)
    cluster.apply(_gencl("quota"), namespace=namespace)
    c = wait_for("Degraded ChildRejected", lambda: _degraded(cluster, namespace, "quota", "ChildRejected"), timeout=90)
    assert "Service/quota-workload refused by the apiserver" in c["message"], c
    assert "exceeded quota" in c["message"], c
    events = wait_for("ChildRejected event", lambda: _warnings(cluster, namespace, "quota", "ChildRejected"), timeout=30)
    assert any("Service/quota-workload" in m and "exceeded quota" in m for m in events), events
    # The rest was reconciled: the Deployment exists although the Service was refused.
    assert get_json(cluster, "deployment", "quota-workload", "-n", namespace)
    described = cluster.kubectl("describe", "gencl", "quota", "-n", namespace).stdout
    assert "ChildRejected" in described and "exceeded quota" in described

    # Lift the quota: the next reconcile creates the Service and the condition clears.
    cluster.kubectl("delete", "resourcequota", "no-services", "-n", namespace)
    wait_for("Service created", lambda: get_json(cluster, "service", "quota-workload", "-n", namespace), timeout=90)
    wait_for("Degraded cleared", lambda: (lambda c: c if c and c["reason"] != "ChildRejected" else None)(
        condition(get_json(cluster, "gencl", "quota", "-n", namespace), "Degraded")), timeout=90)


def test_admission_policy_refusal_names_the_child_and_policy(cluster, namespace: str) -> None:  # type: ignore[no-untyped-def]
    # A cluster policy (as Kyverno or Gatekeeper users have) the CRD cannot know about.
    policy = f"require-team-{namespace}"
    cluster.apply({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": policy},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                                                         "operations": ["CREATE", "UPDATE"],
                                                         "resources": ["deployments"]}]},
                 "validations": [{"expression": "has(object.metadata.labels) && 'team' in object.metadata.labels",
                                  "message": "deployments need a team label", "reason": "Invalid"}]}})
    cluster.apply({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": policy},
        "spec": {"policyName": policy, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}}})
    try:
        # A policy takes effect a moment after it is bound (longer on a loaded machine): wait
        # until the apiserver enforces it (a dry-run Deployment without the label is refused),
        # or the operator could create its Deployment just before, and never be refused.
        probe = json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                            "metadata": {"name": "probe", "namespace": namespace},
                            "spec": {"selector": {"matchLabels": {"a": "b"}},
                                     "template": {"metadata": {"labels": {"a": "b"}},
                                                  "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
        wait_for("the policy enforced", lambda: cluster.kubectl(
            "create", "--dry-run=server", "-f", "-", input=probe, check=False).returncode != 0,
            timeout=60)
        cluster.apply(_gencl("policy"), namespace=namespace)
        c = wait_for("Degraded ChildRejected", lambda: _degraded(cluster, namespace, "policy", "ChildRejected"), timeout=120)
        assert "Deployment/policy-workload refused by the apiserver" in c["message"], c
        assert "deployments need a team label" in c["message"], c
        events = wait_for("event", lambda: _warnings(cluster, namespace, "policy", "ChildRejected"), timeout=30)
        assert any("deployments need a team label" in m for m in events), events
        # Children the policy does not cover were created.
        assert get_json(cluster, "service", "policy-workload", "-n", namespace)
        ready = condition(get_json(cluster, "gencl", "policy", "-n", namespace), "Ready")
        assert ready["status"] == "False" and "Deployment/policy-workload" in ready["message"], ready
    finally:
        cluster.kubectl("delete", "validatingadmissionpolicybinding", policy, "--ignore-not-found", check=False)
        cluster.kubectl("delete", "validatingadmissionpolicy", policy, "--ignore-not-found", check=False)
