"""The reconcile's pure decisions: the child plan, credentials, and Events from transitions."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gencluster.api import conditions as cond
from gencluster.api.spec import parse_spec
from gencluster.reconcile import plan, transitions
from gencluster.reconcile.assess import Assessment, Refusal, refused_condition
from gencluster.render import names
from gencluster.render.children import OperatorDefaults, Secrets, render_children
from gencluster.render.redis import RedisAuth

AUTH = RedisAuth(**{f: f"{f}-x" for f in RedisAuth.__dataclass_fields__})
UID = "uid-1"
SPEC = {"workload": {"image": "img:1"}, "cache": {"mode": "standalone"}}


def owned(objs: list[dict[str, Any]], uid: str = UID) -> list[dict[str, Any]]:
    for o in objs:
        o["metadata"]["ownerReferences"] = [{"uid": uid, "kind": "GenerationCluster", "name": "gc"}]
    return objs


def rendered(spec: dict[str, Any] = SPEC) -> list[dict[str, Any]]:
    return owned(render_children("gc", "ns", parse_spec(spec), plan.observed("gc", {}, None),
                                 Secrets("tok", AUTH), OperatorDefaults()))


def as_existing(objs: list[dict[str, Any]]) -> dict[plan.ChildKey, dict[str, Any]]:
    return {plan.key(o): copy.deepcopy(o) for o in objs}


def test_first_pass_applies_everything_and_deletes_nothing() -> None:
    p = plan.plan_children(rendered(), {}, UID)
    kinds = {o["kind"] for o in p.apply}
    assert {"Deployment", "StatefulSet", "Secret", "ConfigMap", "Service"} <= kinds
    assert p.unchanged == [] and p.delete == []
    assert all(names.HASH_ANNOTATION in o["metadata"]["annotations"] for o in p.apply)


def test_unchanged_children_are_not_applied_again() -> None:
    first = plan.plan_children(rendered(), {}, UID)
    again = plan.plan_children(rendered(), as_existing(first.apply), UID)
    assert again.apply == [] and again.delete == []
    assert len(again.unchanged) == len(first.apply)


def test_a_child_edited_by_someone_else_is_reapplied() -> None:
    first = plan.plan_children(rendered(), {}, UID)
    existing = as_existing(first.apply)
    dep = existing[("Deployment", "gc-workload")]
    dep["metadata"]["annotations"][names.HASH_ANNOTATION] = "edited"
    again = plan.plan_children(rendered(), existing, UID)
    assert [plan.describe(o) for o in again.apply] == ["Deployment/gc-workload"]


def test_a_carried_field_changed_by_the_loop_is_restored_from_observed_not_spec() -> None:
    first = plan.plan_children(rendered(), {}, UID)
    existing = as_existing(first.apply)
    existing[("Deployment", "gc-workload")]["spec"]["replicas"] = 5  # the loop scaled it
    obs = plan.observed("gc", existing, None)
    assert obs.deployment_replicas == 5
    desired = owned(render_children("gc", "ns", parse_spec(SPEC), obs, Secrets("tok", AUTH),
                                    OperatorDefaults()))
    again = plan.plan_children(desired, existing, UID)
    assert again.apply == []  # the count the loop chose is kept: no write, no fight


def test_children_no_longer_rendered_are_deleted_only_when_owned() -> None:
    first = plan.plan_children(rendered(), {}, UID)
    existing = as_existing(first.apply)
    foreign = copy.deepcopy(existing[("ConfigMap", "gc-redis-config")])
    foreign["metadata"]["name"] = "someone-elses"
    foreign["metadata"]["ownerReferences"] = [{"uid": "other"}]
    existing[plan.key(foreign)] = foreign
    without_cache = rendered({"workload": {"image": "img:1"}, "cache": {"mode": "disabled"}})
    p = plan.plan_children(without_cache, existing, UID)
    deleted = {plan.describe(o) for o in p.delete}
    assert "StatefulSet/gc-redis" in deleted and "Secret/gc-redis-auth" in deleted
    assert "ConfigMap/someone-elses" not in deleted
    assert not deleted & {plan.describe(o) for o in without_cache}


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["standalone", "disabled", "cluster"]), min_size=1, max_size=5),
       st.lists(st.integers(1, 8), min_size=1, max_size=5))
def test_plans_converge_whatever_the_history(modes: list[str], replicas: list[int]) -> None:
    """After any sequence of specs, applying a plan and planning again writes nothing, and what
    exists is exactly what the last spec renders (nothing stale, nothing missing)."""
    existing: dict[plan.ChildKey, dict[str, Any]] = {}
    for i, mode in enumerate(modes):
        spec = {"workload": {"image": "img:1"}, "cache": {"mode": mode},
                "replicas": {"min": 1, "max": 8}}
        spec["autoscaling"] = {"enabled": False}
        spec["replicas"]["initial"] = replicas[i % len(replicas)]
        try:
            parsed = parse_spec(spec)
        except ValidationError:
            parsed = parse_spec({"workload": {"image": "img:1"}, "cache": {"mode": mode}})
        desired = owned(render_children("gc", "ns", parsed, plan.observed("gc", existing, None),
                                        Secrets("tok", AUTH), OperatorDefaults()))
        p = plan.plan_children(desired, existing, UID)
        for o in p.apply:
            existing[plan.key(o)] = copy.deepcopy(o)
        for o in p.delete:
            existing.pop(plan.key(o))
        again = plan.plan_children(copy.deepcopy(desired), existing, UID)
        assert again.apply == [] and again.delete == []
        assert set(existing) == {plan.key(o) for o in desired}


def test_credentials_are_reused_and_generated_only_when_missing() -> None:
    token = base64.b64encode(b"kept-token").decode()
    existing = {("Secret", "gc-admin"): {"data": {"token": token}}}
    made: list[str] = []

    def new_token() -> str:
        made.append("x")
        return "new"

    s = plan.ensure_secrets("gc", parse_spec(SPEC), existing, new_token=new_token,
                            new_redis_auth=lambda: AUTH)
    assert s.admin_token == "kept-token" and made == [] and s.redis_auth == AUTH
    fresh = plan.ensure_secrets("gc", parse_spec({"workload": {"image": "i"},
                                                  "cache": {"mode": "disabled"}}),
                                {("Secret", "gc-admin"): {"data": {"token": "%%%not-base64"}}},
                                new_token=new_token)
    assert fresh.admin_token == "new" and fresh.redis_auth is None


def test_validation_message_names_the_field() -> None:
    with pytest.raises(ValidationError) as err:
        parse_spec({"workload": {"image": "i", "port": 80}})
    assert plan.validation_message(err.value).startswith("spec.workload.port")


U = cond.ConditionUpdate


@pytest.mark.parametrize(("old", "new", "events"), [
    (None, U(cond.READY, "True", "Ready", "2/2"), [("Normal", "Ready", "2/2")]),
    ("True", U(cond.READY, "False", "WorkloadNotReady", "0/2"), [("Warning", "NotReady", "0/2")]),
    (None, U(cond.READY, "False", "WorkloadNotReady", "0/2"), []),  # never was ready: no alarm
    ("False", U(cond.DEGRADED, "True", "ImagePullFailed", "pod x"), [("Warning", "ImagePullFailed", "pod x")]),
    ("True", U(cond.DEGRADED, "False", "AsExpected", "ok"), [("Normal", "Recovered", "no problems observed")]),
    (None, U(cond.CACHE_READY, "True", "CacheDisabled", ""), []),
    (None, U(cond.CACHE_READY, "True", "CacheReady", "at x"), [("Normal", "CacheReady", "at x")]),
    ("True", U(cond.CACHE_READY, "False", "CachePodsNotReady", "0/1"), [("Warning", "CacheDegraded", "0/1")]),
    ("True", U(cond.READY, "True", "Ready", "again"), []),  # no transition, no Event
])
def test_condition_transitions_become_events(old: str | None, new: cond.ConditionUpdate,
                                             events: list[tuple[str, str, str]]) -> None:
    before: list[dict[str, object]] = [] if old is None else [{"type": new.type, "status": old}]
    assert transitions.condition_events(before, [new]) == events


def test_the_redis_cluster_edge_reports_cache_transitions_itself() -> None:
    up = [U(cond.CACHE_READY, "True", "CacheReady", "ok")]
    assert transitions.condition_events([], up, cache_events_from_edge=True) == []


def test_refusals_are_reported_once_per_new_set() -> None:
    r = [Refusal("Deployment/gc-workload", ("spec.template",), "forbidden")]
    verdict = Assessment([refused_condition(r)], {})
    first = transitions.refusal_events(r, [], verdict)
    assert [e.reason for e in first] == ["ChildRejected"] and "spec.template" in first[0].message
    old: list[dict[str, object]] = [{"type": cond.DEGRADED, "status": "True",
                                     "message": verdict.conditions[0].message}]
    assert transitions.refusal_events(r, old, verdict) == []  # a resync repeats none
    assert transitions.refusal_events([], [], verdict) == []


def test_applied_and_removed_events_name_the_children() -> None:
    ev = transitions.applied_events(["Deployment/gc-workload"], ["StatefulSet/gc-redis"])
    assert ev == [("Normal", "Applied", "applied Deployment/gc-workload"),
                  ("Normal", "Removed", "removed StatefulSet/gc-redis (no longer in spec)")]
    assert transitions.applied_events([], []) == []


# --- spec.cache.tls: the user's Secret, checked before Redis is trusted with it ----------------

PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TLS_SPEC = {"workload": {"image": "img:1"},
            "cache": {"mode": "cluster", "shards": 3, "tls": {"secretName": "gc-tls"}}}


def tls_secret(**data: str) -> dict[str, Any]:
    return {"kind": "Secret", "metadata": {"name": "gc-tls", "namespace": "ns"},
            "data": {k.replace("_", "."): base64.b64encode(v.encode()).decode()
                     for k, v in data.items()}}


def test_tls_off_or_cache_disabled_reads_no_secret() -> None:
    assert plan.redis_tls(parse_spec(SPEC), "ns", None) is None
    off = copy.deepcopy(TLS_SPEC)
    off["cache"] = {"mode": "disabled", "tls": {"secretName": "gc-tls"}}
    assert plan.redis_tls(parse_spec(off), "ns", None) is None


def test_a_complete_tls_secret_gives_its_ca() -> None:
    got = plan.redis_tls(parse_spec(TLS_SPEC), "ns",
                         tls_secret(tls_crt=PEM, tls_key="KEY", ca_crt=PEM))
    assert got is not None and got.problem is None and got.ca_pem == PEM


@pytest.mark.parametrize(("secret", "words"), [
    (None, "not found"),
    (tls_secret(tls_crt=PEM, ca_crt=PEM), "lacks key tls.key"),
    (tls_secret(tls_crt=PEM, tls_key="KEY"), "lacks key ca.crt"),
    (tls_secret(tls_crt=PEM, tls_key="  ", ca_crt=PEM), "key tls.key is empty"),
    (tls_secret(tls_crt=PEM, tls_key="KEY", ca_crt="not a certificate"), "no PEM certificate"),
])
def test_a_missing_or_incomplete_tls_secret_is_named_in_the_problem(
        secret: dict[str, Any] | None, words: str) -> None:
    got = plan.redis_tls(parse_spec(TLS_SPEC), "ns", secret)
    assert got is not None and got.ca_pem is None and got.problem is not None
    assert words in got.problem and "ns/gc-tls" in got.problem and "spec.cache.tls" in got.problem


def test_an_undecodable_secret_value_is_a_problem_not_a_crash() -> None:
    secret = tls_secret(tls_crt=PEM, tls_key="KEY", ca_crt=PEM)
    secret["data"]["ca.crt"] = "%%% not base64 %%%"
    got = plan.redis_tls(parse_spec(TLS_SPEC), "ns", secret)
    assert got is not None and got.problem is not None and "ca.crt" in got.problem


def test_the_tls_digest_follows_every_key_redis_mounts() -> None:
    base = {"tls_crt": PEM, "tls_key": "KEY", "ca_crt": PEM}
    digest = plan.redis_tls(parse_spec(TLS_SPEC), "ns", tls_secret(**base)).digest  # type: ignore[union-attr]
    assert digest and digest == plan.redis_tls(parse_spec(TLS_SPEC), "ns", tls_secret(**base)).digest  # type: ignore[union-attr]
    other = PEM.replace("MIIB", "MIIC")
    for key, value in (("tls_crt", other), ("tls_key", "KEY2"), ("ca_crt", other)):
        changed = plan.redis_tls(parse_spec(TLS_SPEC), "ns", tls_secret(**(base | {key: value})))
        assert changed is not None and changed.digest not in (None, digest), key
