"""The reconcile's edge (gencluster.edge.reconciler) driven without a cluster: an in-memory
recorder stands in for the apiserver (fakekube.py), a list for the Event sink. What it checks is
what the Reconciler decides to write and report; the cluster-tier tests run the same code on the local cluster."""

from __future__ import annotations

import asyncio
import base64
import copy
from typing import Any

import kopf
import pytest

from gencluster.api import conditions as cond
from gencluster.control.events import BURST, EventIntent
from gencluster.edge.cache_tier import CacheTier
from gencluster.edge.events import EventRecorder
from gencluster.edge.reconciler import Reconciler
from gencluster.render import names
from gencluster.render.children import OperatorDefaults

from .fakekube import FakeKube

SPEC: dict[str, Any] = {"workload": {"image": "img:1"}, "cache": {"mode": "standalone"}}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Harness:
    def __init__(self) -> None:
        self.kube = FakeKube()
        self.events: list[EventIntent] = []
        self.clock = Clock()
        recorder = EventRecorder(post=lambda body, e: self.events.append(e), clock=self.clock)
        self.reconciler = Reconciler(self.kube, recorder, CacheTier(), OperatorDefaults())
        self.body: dict[str, Any] = {
            "apiVersion": "orfeas.ai/v1alpha1", "kind": "GenerationCluster",
            "metadata": {"name": "gc", "namespace": "ns", "uid": "uid-1", "generation": 1},
            "spec": copy.deepcopy(SPEC), "status": {}}

    async def run(self, trigger: str = "resync") -> None:
        b = self.body
        await self.reconciler.reconcile(b, b["spec"], b["metadata"], b["status"], "gc", "ns",
                                        trigger)
        if self.kube.status:  # the status the apiserver would now hold
            self.body["status"] = copy.deepcopy(self.kube.status[-1])

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def condition(self, type_: str) -> dict[str, Any]:
        found = cond.find(self.body["status"]["conditions"], type_)
        assert found is not None
        return found

    def make_ready(self) -> None:
        """The Deployment and the Redis StatefulSet report ready pods."""
        dep = self.kube.objects[("Deployment", "ns", "gc-workload")]
        n = dep["spec"]["replicas"]
        dep["metadata"]["generation"] = 1
        dep["status"] = {"observedGeneration": 1, "replicas": n, "readyReplicas": n,
                         "updatedReplicas": n}
        sts = self.kube.objects[("StatefulSet", "ns", "gc-redis")]
        sts["status"] = {"readyReplicas": sts["spec"]["replicas"]}


async def test_first_reconcile_creates_every_child_owned_and_stamped() -> None:
    h = Harness()
    await h.run("create")
    kinds = {k for (k, _, _) in h.kube.objects}
    assert {"Deployment", "StatefulSet", "Service", "Secret", "ConfigMap", "NetworkPolicy"} <= kinds
    for obj in h.kube.objects.values():
        assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
        assert names.HASH_ANNOTATION in obj["metadata"]["annotations"]
    assert all(c[3] == names.FIELD_MANAGER for c in h.kube.calls if c[0] == "apply")
    assert h.reasons() == ["Applied"]
    assert h.condition(cond.READY)["status"] == "False"  # nothing ready yet: no Ready event
    assert h.body["status"]["selector"] == names.selector_string("gc", "workload")


async def test_a_second_pass_writes_nothing_and_posts_nothing() -> None:
    h = Harness()
    await h.run("create")
    h.kube.calls.clear()
    h.events.clear()
    await h.run()
    assert h.kube.writes() == [] and h.events == []


async def test_ready_is_reported_once_and_drift_is_repaired() -> None:
    h = Harness()
    await h.run("create")
    h.make_ready()
    await h.run()
    assert h.condition(cond.READY)["status"] == "True"
    assert "Ready" in h.reasons() and "CacheReady" in h.reasons()
    h.events.clear()
    # someone edits the workload Service: the next pass puts it back, and says so
    svc = h.kube.objects[("Service", "ns", "gc-workload")]
    svc["metadata"]["annotations"][names.HASH_ANNOTATION] = "hand-edited"
    await h.run()
    assert ("apply", "Service", "gc-workload", names.FIELD_MANAGER) in h.kube.writes()
    assert h.reasons() == ["Applied"]


async def test_credentials_survive_reconciles() -> None:
    h = Harness()
    await h.run("create")
    before = copy.deepcopy(h.kube.objects[("Secret", "ns", "gc-admin")]["data"])
    h.kube.objects.pop(("Deployment", "ns", "gc-workload"))  # force a write pass
    await h.run()
    assert h.kube.objects[("Secret", "ns", "gc-admin")]["data"] == before


async def test_the_loops_replica_count_is_kept() -> None:
    h = Harness()
    await h.run("create")
    h.kube.objects[("Deployment", "ns", "gc-workload")]["spec"]["replicas"] = 6  # the loop scaled
    h.kube.calls.clear()
    await h.run()
    assert h.kube.writes() == []
    assert h.kube.objects[("Deployment", "ns", "gc-workload")]["spec"]["replicas"] == 6


async def test_disabling_the_cache_removes_its_children_and_says_so() -> None:
    h = Harness()
    await h.run("create")
    h.body["spec"]["cache"] = {"mode": "disabled"}
    h.events.clear()
    await h.run("update")
    assert not any(k == "StatefulSet" for (k, _, _) in h.kube.objects)
    assert ("delete", "StatefulSet", "gc-redis") in h.kube.writes()
    removed = [e for e in h.events if e.reason == "Removed"]
    assert removed and "StatefulSet/gc-redis" in removed[0].message


async def test_a_refused_child_is_degraded_reported_once_and_the_rest_applied() -> None:
    h = Harness()
    h.kube.refuse["NetworkPolicy"] = (422, {
        "kind": "Status", "message": 'NetworkPolicy "gc-redis" is invalid: spec.podSelector: bad',
        "details": {"causes": [{"field": "spec.podSelector", "message": "bad"}]}})
    await h.run("create")
    assert ("Deployment", "ns", "gc-workload") in h.kube.objects  # the rest went on
    degraded = h.condition(cond.DEGRADED)
    assert degraded["status"] == "True" and degraded["reason"] == "ChildRejected"
    assert "spec.podSelector" in str(degraded["message"])
    rejected = [e for e in h.events if e.reason == "ChildRejected"]
    assert rejected and all(e.type == "Warning" for e in rejected)
    h.events.clear()
    await h.run()  # the same refusal again: status stays, no repeated Event
    assert "ChildRejected" not in h.reasons()
    h.kube.refuse.clear()
    await h.run()
    assert h.condition(cond.DEGRADED)["status"] == "False" and "Recovered" in h.reasons()


async def test_a_transient_apiserver_error_is_raised_for_kopf_to_retry() -> None:
    h = Harness()
    h.kube.refuse["Deployment"] = (500, {"message": "etcd timeout"})
    with pytest.raises(Exception) as err:
        await h.run("create")
    assert getattr(err.value, "status", None) == 500


async def test_an_invalid_spec_is_reported_and_permanent() -> None:
    h = Harness()
    h.body["spec"] = {"workload": {"image": "img:1", "port": 80}}
    with pytest.raises(kopf.PermanentError, match=r"spec\.workload\.port"):
        await h.run("create")
    status = h.kube.status[-1]
    assert {c["reason"] for c in status["conditions"]} == {"InvalidSpec"}
    assert h.kube.writes() == []  # children are left as they are
    assert [e for e in h.events if e.reason == "InvalidSpec" and e.type == "Warning"]


async def test_flapping_readiness_posts_a_bounded_number_of_events() -> None:
    """The reconcile's Events go through the event policy: 200 Ready flips in a minute post at
    most the token bucket's burst, and distinct messages are what get through."""
    h = Harness()
    await h.run("create")
    for i in range(200):
        h.make_ready()
        dep = h.kube.objects[("Deployment", "ns", "gc-workload")]
        dep["status"]["readyReplicas"] = i % 2  # ready, not ready, ready, ...
        h.clock.t += 0.3
        await h.run()
    assert len(h.events) <= BURST + 1  # + the first pass' Applied
    assert {"Ready", "NotReady"} <= set(h.reasons())
    assert h.reasons().count("Ready") >= 2  # a recovery is posted even with the same words


async def test_a_recovery_is_posted_again_once_tokens_refill() -> None:
    h = Harness()
    await h.run("create")
    for ready in (1, 0, 1):
        h.make_ready()
        h.kube.objects[("Deployment", "ns", "gc-workload")]["status"]["readyReplicas"] = ready
        h.clock.t += 1.0
        await h.run()
    assert [r for r in h.reasons() if r in ("Ready", "NotReady")] == ["Ready", "NotReady", "Ready"]


async def test_a_missing_tls_secret_is_degraded_by_name_until_it_appears() -> None:
    """spec.cache.tls names the user's Secret: without it the Redis pods cannot start, and the
    status says which Secret and which key; once it is there, the cache is judged as usual."""
    h = Harness()
    h.body["spec"]["cache"] = {"mode": "standalone", "tls": {"secretName": "gc-tls"}}
    await h.run("create")
    h.make_ready()
    await h.run()
    degraded = h.condition(cond.DEGRADED)
    assert (degraded["status"], degraded["reason"]) == ("True", "CacheTLSSecretInvalid")
    assert "ns/gc-tls" in str(degraded["message"]) and "not found" in str(degraded["message"])
    assert h.condition(cond.CACHE_READY)["status"] == "False"
    assert h.condition(cond.READY)["status"] == "False"
    assert ("get", "Secret", "gc-tls") in h.kube.calls
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    h.kube.objects[("Secret", "ns", "gc-tls")] = tls_secret_object(pem, "KEY", pem)
    h.kube.calls.clear()
    await h.run()  # the certificate's digest goes into the Redis pod template: the pods roll
    assert h.condition(cond.DEGRADED)["status"] == "False"
    h.make_ready()
    await h.run()
    assert h.condition(cond.CACHE_READY)["status"] == "True"
    # The user's Secret is read, never written or deleted by the operator.
    assert not [c for c in h.kube.writes() if c[2] == "gc-tls"]


def tls_secret_object(cert: str, key: str, ca: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": "gc-tls", "namespace": "ns"},
            "data": {k: base64.b64encode(v.encode()).decode()
                     for k, v in {"tls.crt": cert, "tls.key": key, "ca.crt": ca}.items()}}


def redis_tls_hash(h: Harness) -> str | None:
    sts = h.kube.objects[("StatefulSet", "ns", "gc-redis")]
    return sts["spec"]["template"]["metadata"]["annotations"].get(names.REDIS_TLS_HASH_ANNOTATION)


async def test_a_renewed_tls_certificate_rolls_the_redis_pods_and_a_broken_secret_does_not() -> None:
    """Redis reads its certificate at start: a renewal in the user's Secret must restart the
    Redis pods (a new pod-template digest, which the StatefulSet rolls), picked up by the next
    resync. A Secret deleted or broken by mistake must not roll pods into ContainerCreating."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    renewed = "-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n"
    h = Harness()
    h.body["spec"]["cache"] = {"mode": "standalone", "tls": {"secretName": "gc-tls"}}
    h.kube.objects[("Secret", "ns", "gc-tls")] = tls_secret_object(pem, "KEY", pem)
    await h.run("create")
    first = redis_tls_hash(h)
    assert first is not None
    await h.run()
    assert redis_tls_hash(h) == first  # unchanged Secret: nothing rolls
    h.kube.objects[("Secret", "ns", "gc-tls")] = tls_secret_object(renewed, "KEY2", pem)
    await h.run()
    second = redis_tls_hash(h)
    assert second is not None and second != first
    dep = h.kube.objects[("Deployment", "ns", "gc-workload")]
    assert names.REDIS_TLS_HASH_ANNOTATION not in dep["spec"]["template"]["metadata"]["annotations"]
    for broken in (None, tls_secret_object(renewed, " ", pem)):
        if broken is None:
            del h.kube.objects[("Secret", "ns", "gc-tls")]
        else:
            h.kube.objects[("Secret", "ns", "gc-tls")] = broken
        h.kube.calls.clear()
        await h.run()
        assert redis_tls_hash(h) == second
        assert h.condition(cond.DEGRADED)["reason"] == "CacheTLSSecretInvalid"
        assert not [c for c in h.kube.writes() if c[1] == "StatefulSet"]


async def test_paced_resync_waits_unless_a_child_changed() -> None:
    h = Harness()
    # a budget so small that one cluster is paced: interval 1 / 0.01 = 100 s > the 15 s period
    h.reconciler = Reconciler(h.kube, h.reconciler.events, CacheTier(), OperatorDefaults(),
                              resync_seconds=15, resync_budget=0.01)
    assert h.reconciler.resync_due("ns", "gc")  # never reconciled: due
    await h.run("create")
    assert not h.reconciler.resync_due("ns", "gc")  # paced: its turn is 50-150 s away
    h.reconciler.child_changed("ns", "gc")  # e.g. its pods became ready
    assert h.reconciler.resync_due("ns", "gc")
    h.make_ready()
    await h.run("resync")
    assert h.condition("Ready")["status"] == "True"
    assert not h.reconciler.resync_due("ns", "gc")  # the change was seen; paced again
    h.reconciler.child_changed("ns", "other")  # another cluster's child: not this one's turn
    assert not h.reconciler.resync_due("ns", "gc")


async def test_a_resume_storm_runs_a_bounded_number_at_once_and_finishes_them_in_turn() -> None:
    """After a restart every cluster resumes at once: at most max_concurrent reconciles run, the
    first ones finish before the last ones start (not all together at the end), none is lost."""
    h = Harness()
    rec = Reconciler(h.kube, EventRecorder(post=lambda body, e: None), CacheTier(),
                     OperatorDefaults(), max_concurrent=3)
    running: set[str] = set()
    peak, order = 0, []

    async def slow(body: Any, spec: Any, meta: Any, status: Any, name: str, namespace: str) -> None:
        nonlocal peak
        running.add(name)
        peak = max(peak, len(running))
        order.append(("start", name))
        await asyncio.sleep(0.01)
        running.discard(name)
        order.append(("end", name))

    rec._reconcile = slow  # type: ignore[method-assign]
    names_ = [f"gc{i}" for i in range(20)]
    await asyncio.gather(*(rec.reconcile(h.body, {}, {}, {}, n, "ns", "resume") for n in names_))
    assert peak == 3
    assert sorted(n for what, n in order if what == "end") == sorted(names_)
    assert order.index(("end", "gc0")) < order.index(("start", "gc19"))
    assert rec.managed == 20


async def test_a_reconcile_that_changes_nothing_writes_no_status() -> None:
    """A resume after a restart (or a resync) whose status is already what it would write sends
    no status request; a spec change (a new generation) does."""
    h = Harness()
    await h.run("create")
    h.make_ready()
    await h.run("resync")  # Ready now: written
    written = len(h.kube.status)
    await h.run("resume")
    await h.run("resync")
    assert len(h.kube.status) == written
    h.body["metadata"]["generation"] = 2
    h.body["spec"]["replicas"] = {"min": 2, "max": 4}
    await h.run("update")
    assert len(h.kube.status) == written + 1
    assert h.body["status"]["observedGeneration"] == 2
