"""Scale on a real API server: N GenerationClusters, N x P workload pods, the real operator.

Real: etcd and kube-apiserver (the cached binaries of `make binaries`, a throwaway data dir, on
loopback), the CRD, the operator (`gencluster operator`, Kopf, every namespace) with its
reconciles, watches, indexes and control loops, and the scrapes of every pod.
Stand-ins, because no kubelet can run thousands of pods on this machine:
- no controller-manager, scheduler or kubelet run. A *stand-in kubelet* (this script) creates
  each workload Deployment's pods from its template, bound to a fake node, and writes what the
  kubelet and the Deployment controller would: pod status Running/Ready with an address, and the
  Deployment's status. It never touches what the operator writes.
- each pod's address is one of the load farm's fake pods on 127.10.x.y (the loop-cost
  benchmark's farm, `gencluster.simulate.loopbench --farm`), which serves the metrics contract
  and the admin API.

Phases: create the GenerationClusters; wait until every one is Ready with all its pods reporting;
measure a steady window (operator CPU and memory, apiserver requests per second); SIGKILL the
operator, start it again, and time until every cluster was reconciled and its loop ticked
again with all pods reporting, counting the children it re-applied (0 expected). Prints one JSON document.

    .venv/bin/python benchmarks/apiserver_scale.py --clusters 1000 --pods-per-cluster 5
"""

from __future__ import annotations

import argparse
import concurrent.futures
import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from gencluster import GROUP, PLURAL, VERSION
from gencluster.render.names import (
    COMPONENT_LABEL,
    INSTANCE_LABEL,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    WORKLOAD_COMPONENT,
)
from gencluster.simulate.loopbench import ADMIN_PORT_OFFSET, pod_ip, rss_mib

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("GENCLUSTER_CACHE", Path.home() / ".cache" / "gencluster")) / "bin"
CRD = ROOT / "crds" / "generationclusters.orfeas.ai.yaml"
NODE = "scale-node"  # the fake node every stand-in pod is bound to (no kubelet reads it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _raise_nofile() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ControlPlane:
    """etcd + kube-apiserver on loopback; token auth (system:masters); no other component."""

    def __init__(self, work: Path) -> None:
        self.work, self.procs = work, []  # type: ignore[var-annotated]
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.kubeconfig = work / "kubeconfig"

    def start(self) -> None:
        w, etcd_port, peer = self.work, free_port(), free_port()
        # Copies, so that the local cluster's scripts (which find their components by the
        # cached binaries' paths) neither take these for another cluster nor stop them.
        for b in ("etcd", "kube-apiserver"):
            shutil.copy2(BIN / b, w / b)
        subprocess.run(["openssl", "genrsa", "-out", str(w / "sa.key"), "2048"], check=True,
                       capture_output=True)
        subprocess.run(["openssl", "rsa", "-in", str(w / "sa.key"), "-pubout", "-out",
                        str(w / "sa.pub")], check=True, capture_output=True)
        (w / "tokens.csv").write_text(f'{self.token},admin,admin,"system:masters"\n')
        self._spawn("etcd", [str(w / "etcd"), "--data-dir", str(w / "etcd-data"),
                             "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"default=http://127.0.0.1:{peer}",
                             "--quota-backend-bytes", str(4 << 30), "--log-level", "warn"])
        self._spawn("kube-apiserver", [
            str(w / "kube-apiserver"), f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
            "--endpoint-reconciler-type=none", f"--secure-port={self.port}",
            f"--cert-dir={w / 'certs'}", f"--token-auth-file={w / 'tokens.csv'}",
            "--authorization-mode=RBAC", "--service-cluster-ip-range=10.96.0.0/16",
            "--service-account-issuer=https://kubernetes.default.svc",
            f"--service-account-key-file={w / 'sa.pub'}",
            f"--service-account-signing-key-file={w / 'sa.key'}",
            # No controller-manager creates ServiceAccounts here; pods name the chart's anyway.
            "--disable-admission-plugins=ServiceAccount", "--profiling=false"])
        self.kubeconfig.write_text(json.dumps({
            "apiVersion": "v1", "kind": "Config", "current-context": "scale",
            "clusters": [{"name": "scale", "cluster": {
                "server": f"https://127.0.0.1:{self.port}",
                # the apiserver's self-signed pair (cert-dir) holds its CA: verified, no warnings
                "certificate-authority": str(w / "certs" / "apiserver.crt")}}],
            "users": [{"name": "admin", "user": {"token": self.token}}],
            "contexts": [{"name": "scale", "context": {"cluster": "scale", "user": "admin"}}]}))
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if self.get("/readyz").strip() == "ok":
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"kube-apiserver not ready: see {w / 'kube-apiserver.log'}")

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.work / f"{name}.log", "wb")  # noqa: SIM115 (lives as long as the process)
        self.procs.append(subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                           preexec_fn=_raise_nofile))

    def get(self, path: str) -> str:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        req = urllib.request.Request(f"https://127.0.0.1:{self.port}{path}",
                                     headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return str(r.read().decode())

    def requests_total(self) -> float:
        """Sum of apiserver_request_total: every request the apiserver answered."""
        return sum(self.requests_by_kind().values())

    def requests_by_kind(self) -> dict[str, float]:
        """apiserver_request_total summed by "VERB resource[/subresource]"."""
        by: dict[str, float] = {}
        for line in self.get("/metrics").splitlines():
            m = SERIES.match(line)
            if m is None or m.group(1) != "apiserver_request_total":
                continue
            lab = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            kind = lab.get("resource", "") + (f"/{lab['subresource']}" if lab.get("subresource") else "")
            key = f"{lab.get('verb', '')} {kind}".strip()
            by[key] = by.get(key, 0.0) + float(m.group(3))
        return by

    def stop(self) -> None:
        for p in reversed(self.procs):
            p.terminate()
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()


class StandInKubelet:
    """Writes what the kubelet and the Deployment controller would, for the operator's pods."""

    def __init__(self, api: client.ApiClient, pods_per_cluster: int, port: int) -> None:
        self.core, self.apps = client.CoreV1Api(api), client.AppsV1Api(api)
        self.per, self.port = pods_per_cluster, port
        self.addresses: dict[tuple[str, str], int] = {}  # (ns, cluster) -> first farm index
        self.requests = 0
        self.pool = concurrent.futures.ThreadPoolExecutor(16)

    def _address(self, ns: str, cluster: str) -> int:
        return self.addresses.setdefault((ns, cluster), len(self.addresses) * self.per)

    def sync(self) -> int:
        """One pass; returns how many objects it wrote. Raw JSON: the client's models are far
        too slow to build for thousands of pods a pass."""
        deps = json.loads(self.apps.list_deployment_for_all_namespaces(
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}", resource_version="0",
            _preload_content=False).data)["items"]
        pods = json.loads(self.core.list_pod_for_all_namespaces(  # from the watch cache
            resource_version="0", _preload_content=False).data)["items"]
        self.requests += 2
        have = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}
        jobs: list[Callable[[], None]] = []
        for d in deps:
            meta, dspec, st = d["metadata"], d["spec"], d.get("status") or {}
            ns, labels = meta["namespace"], meta.get("labels") or {}
            if labels.get(COMPONENT_LABEL) != WORKLOAD_COMPONENT:
                want = int(dspec.get("replicas") or 0)
            else:
                base = self._address(ns, labels.get(INSTANCE_LABEL, ""))
                want = min(int(dspec.get("replicas") or 0), self.per)
                for k in range(want):
                    name = f"{meta['name']}-{k}"
                    if (ns, name) not in have:
                        jobs.append(functools.partial(self._pod, d, name, pod_ip(base + k)))
            if st.get("readyReplicas") != want or st.get("observedGeneration") != meta["generation"]:
                jobs.append(functools.partial(self._deployment_status, d, want))
        list(self.pool.map(lambda job: job(), jobs))
        self.requests += len(jobs)
        return len(jobs)

    def _pod(self, d: dict[str, Any], name: str, ip: str) -> None:
        tpl, ns = d["spec"]["template"], d["metadata"]["namespace"]
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": ns,
                             "labels": tpl["metadata"].get("labels", {}),
                             "annotations": tpl["metadata"].get("annotations", {})},
                "spec": {**tpl["spec"], "nodeName": NODE}}
        try:
            self.core.create_namespaced_pod(ns, body, _preload_content=False)
        except ApiException as err:
            if err.status != 409:
                raise
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        conds = [{"type": t, "status": "True", "lastTransitionTime": now}
                 for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")]
        self.core.patch_namespaced_pod_status(name, ns, _preload_content=False, body={"status": {
            "phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1",
            "startTime": now, "conditions": conds}})
        self.requests += 1

    def _deployment_status(self, d: dict[str, Any], n: int) -> None:
        meta = d["metadata"]
        self.apps.patch_namespaced_deployment_status(meta["name"], meta["namespace"], _preload_content=False, body={
            "status": {"observedGeneration": meta["generation"], "replicas": n,
                       "readyReplicas": n, "availableReplicas": n, "updatedReplicas": n}})


def cluster_spec(port: int, pods: int) -> dict[str, Any]:
    """Autoscaling on (the loops tick and decide), replicas pinned so the fleet stays N x P."""
    return {"workload": {"image": "localhost/gencluster-workload:dev", "port": port,
                         "adminPort": port + ADMIN_PORT_OFFSET},
            "replicas": {"min": pods, "max": pods},
            "autoscaling": {"intervalSeconds": 5},
            "cache": {"mode": "disabled"}}


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Operator:
    def __init__(self, kubeconfig: Path, log: Path, env: dict[str, str]) -> None:
        self.kubeconfig, self.log, self.metrics_port, self.env = kubeconfig, log, free_port(), env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "POD_NAMESPACE": "gencluster-system",
               "GENCLUSTER_METRICS_PORT": str(self.metrics_port), "PYTHONUNBUFFERED": "1", **self.env}
        out = open(self.log, "ab")  # noqa: SIM115 (lives as long as the process)
        self.proc = subprocess.Popen([sys.executable, "-m", "gencluster.cli", "operator",
                                      "--liveness", f"http://127.0.0.1:{free_port()}/healthz"],
                                     env=env, stdout=out, stderr=subprocess.STDOUT,
                                     preexec_fn=_raise_nofile)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as r:
            return str(r.read().decode())


RESTART_POLL_S = 5.0
SERIES = re.compile(r'^(\w+)(?:\{([^}]*)\})? (\S+)$')  # labels optional


def loop_state(text: str) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per cluster (ns/name): last tick timestamp and pods reporting; and summed counters."""
    ticks: dict[str, float] = {}
    reporting: dict[str, float] = {}
    counters = {"gencluster_operator_applied_objects_total": 0.0,
                "gencluster_operator_reconciles_total": 0.0, "resumed": 0.0,
                "gencluster_operator_status_writes_skipped_total": 0.0}
    for line in text.splitlines():
        m = SERIES.match(line)
        if not m:
            continue
        name, labels, value = m.groups()
        lab = dict(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        key = f"{lab.get('namespace')}/{lab.get('name')}"
        if name == "gencluster_operator_loop_last_tick_timestamp_seconds":
            ticks[key] = float(value)
        elif name == "gencluster_operator_pods_reporting":
            reporting[key] = float(value)
        elif name in ("gencluster_operator_applied_objects_total",
                      "gencluster_operator_reconciles_total",
                      "gencluster_operator_status_writes_skipped_total"):
            counters[name] = counters.get(name, 0.0) + float(value)
            if lab.get("trigger") == "resume":  # not the resyncs that may run meanwhile
                counters["resumed"] = counters.get("resumed", 0.0) + float(value)
    return ticks, reporting, counters


def wait_until(what: str, check: Callable[[], bool], timeout: float, step: float,
               tick: Callable[[], object] = lambda: None) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        tick()
        if check():
            return time.monotonic() - start
        time.sleep(step)
    raise TimeoutError(f"{what}: not within {timeout:.0f}s")


def chunks(n: int, size: int) -> Iterator[range]:
    for i in range(0, n, size):
        yield range(i, min(n, i + size))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clusters", type=int, default=1000)
    p.add_argument("--pods-per-cluster", type=int, default=5)
    p.add_argument("--namespaces", type=int, default=10)
    p.add_argument("--steady", type=float, default=60.0, help="seconds of the steady window")
    p.add_argument("--timeout", type=float, default=1200.0)
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    p.add_argument("--resync-budget", type=float, default=None,
                   help="the operator's GENCLUSTER_RESYNC_BUDGET (default: the operator's, 5; 0: none)")
    args = p.parse_args(argv)
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # our own loopback apiserver
    n, per = args.clusters, args.pods_per_cluster
    work = Path(tempfile.mkdtemp(prefix="gencluster-scale-"))
    port = 18080
    farm = subprocess.Popen([sys.executable, "-m", "gencluster.simulate.loopbench", "--farm",
                             "--clusters", str(n), "--pods-per-cluster", str(per), "--port",
                             str(port)], stdout=subprocess.PIPE, preexec_fn=_raise_nofile)
    plane = ControlPlane(work)
    budget = {} if args.resync_budget is None else {"GENCLUSTER_RESYNC_BUDGET": str(args.resync_budget)}
    op = Operator(plane.kubeconfig, work / "operator.log", budget)
    out: dict[str, Any] = {"clusters": n, "pods": n * per, "namespaces": args.namespaces,
                           "resync_budget": args.resync_budget}
    try:
        plane.start()
        assert farm.stdout is not None and farm.stdout.readline().strip() == b"ready"
        kubectl = [str(BIN / "kubectl"), "--kubeconfig", str(plane.kubeconfig)]
        subprocess.run([*kubectl, "apply", "--server-side", "-f", str(CRD)], check=True,
                       capture_output=True)
        subprocess.run([*kubectl, "wait", "--for=condition=Established", "--timeout=60s",
                        f"crd/{PLURAL}.{GROUP}"], check=True, capture_output=True)
        cfg = client.Configuration()
        config.load_kube_config(str(plane.kubeconfig), client_configuration=cfg)
        cfg.connection_pool_maxsize = 32  # one kept-alive connection per stand-in thread
        api = client.ApiClient(cfg)
        core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
        namespaces = [f"scale-{i}" for i in range(args.namespaces)] + ["gencluster-system"]
        for ns in namespaces:
            core.create_namespace({"metadata": {"name": ns}})
        kubelet = StandInKubelet(api, per, port)
        op.start()
        t0 = time.monotonic()
        spec = cluster_spec(port, per)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: custom.create_namespaced_custom_object(
                GROUP, VERSION, f"scale-{i % args.namespaces}", PLURAL,
                {"apiVersion": f"{GROUP}/{VERSION}", "kind": "GenerationCluster",
                 "metadata": {"name": f"gc{i}"}, "spec": spec}), range(n)))
        out["create_s"] = round(time.monotonic() - t0, 1)
        print(f"[scale] {n} GenerationClusters created in {out['create_s']} s", file=sys.stderr)

        def all_ready() -> bool:
            items = custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)["items"]
            ready = sum(1 for o in items if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in (o.get("status") or {}).get("conditions") or []))
            try:
                _, reporting, _ = loop_state(op.metrics())
            except OSError:
                reporting = {}  # the operator is still starting
            pods = sum(reporting.values())
            print(f"[scale] {time.monotonic() - t0:6.0f}s ready {ready}/{n}, pods reporting "
                  f"{pods:.0f}/{n * per}", file=sys.stderr)
            return ready == n and pods == n * per

        wait_until("all Ready and reporting", all_ready, args.timeout, 5.0, kubelet.sync)
        out["converge_from_create_s"] = round(time.monotonic() - t0, 1)

        def steady(label: str) -> None:
            """Nothing changes: the loops tick, the resync timers run."""
            kubelet.sync()
            r0, c0, w0 = plane.requests_total(), proc_cpu_s(op.pid), time.monotonic()
            k0 = kubelet.requests
            time.sleep(args.steady)
            wall = time.monotonic() - w0
            r1, c1 = plane.requests_total(), proc_cpu_s(op.pid)
            rss, hwm = rss_mib(op.pid)
            stand_in = kubelet.requests - k0
            out[f"steady_{label}"] = {
                "seconds": round(wall, 1), "operator_cpu_cores": round((c1 - c0) / wall, 3),
                "operator_rss_mib": round(rss), "operator_peak_rss_mib": round(hwm),
                "apiserver_requests_per_s": round((r1 - r0 - 1) / wall, 1),
                "operator_requests_per_s": round((r1 - r0 - 1 - stand_in) / wall, 1),
                "stand_in_requests": stand_in}
            print(f"[scale] steady ({label}): {out[f'steady_{label}']}", file=sys.stderr)

        def restart(label: str, env: dict[str, str]) -> None:
            """SIGKILL, start again; until every cluster is reconciled, every loop ticked and
            every pod reports."""
            op.kill()
            killed_at = time.time()
            by0 = plane.requests_by_kind()
            op.env = env
            op.start()
            t1 = time.monotonic()
            peak = [0.0]
            counters: dict[str, float] = {}
            # when the first, half and all of the clusters had been reconciled (poll resolution)
            milestones: dict[str, float] = {}
            renders: list[float] = []  # seconds each /metrics answer took

            def back() -> bool:
                try:
                    asked = time.monotonic()
                    text = op.metrics()
                    renders.append(time.monotonic() - asked)
                    ticks, reporting, now_counters = loop_state(text)
                except OSError:
                    return False
                counters.update(now_counters)
                peak[0] = max(peak[0], rss_mib(op.pid)[1])
                fresh = sum(1 for t in ticks.values() if t > killed_at)
                pods = sum(reporting.values())
                reconciled = counters["resumed"]
                for label_, at_least in (("first", 1), ("half", n / 2), ("all", n)):
                    if reconciled >= at_least:
                        milestones.setdefault(label_, round(time.monotonic() - t1, 1))
                for label_, done in (("ticked", fresh == n), ("reporting", pods == n * per)):
                    if done:
                        milestones.setdefault(label_, round(time.monotonic() - t1, 1))
                print(f"[scale] restart ({label}) +{time.monotonic() - t1:5.0f}s: reconciled "
                      f"{reconciled:.0f}/{n}, loops ticked {fresh}/{n}, pods reporting "
                      f"{pods:.0f}/{n * per}", file=sys.stderr)
                return reconciled >= n and fresh == n and pods == n * per

            c0 = proc_cpu_s(op.pid)
            # Every RESTART_POLL_S, not every second: the operator renders /metrics on its event
            # loop, about 0.14 s of CPU at 300 clusters (py-spy), so a poll a second weighed on
            # what it measures (Prometheus scrapes every 15-30 s); metrics_answer_median_s says
            # what one answer took.
            took = wait_until("restart converged", back, args.timeout, RESTART_POLL_S)
            wall = time.monotonic() - t1
            by1 = plane.requests_by_kind()  # what the apiserver answered from the kill on
            out[f"restart_{label}"] = {
                "converged_s": round(took, 1), "poll_s": RESTART_POLL_S,
                "reconciled_first_half_all_s": [milestones.get(k) for k in ("first", "half", "all")],
                "every_loop_ticked_s": milestones.get("ticked"),
                "every_pod_reporting_s": milestones.get("reporting"),
                "metrics_answer_median_s": round(sorted(renders)[len(renders) // 2], 2) if renders else None,
                "operator_cpu_cores": round((proc_cpu_s(op.pid) - c0) / wall, 3),
                "apiserver_requests_per_s": round((sum(by1.values()) - sum(by0.values())) / wall, 1),
                "operator_peak_rss_mib": round(peak[0]),
                "children_reapplied": counters["gencluster_operator_applied_objects_total"],
                "reconcile_status_writes_skipped": counters[
                    "gencluster_operator_status_writes_skipped_total"]}
            # by kind, the stand-in's 2 lists and the benchmark's own reads included, heaviest first
            moved = {k: round(v - by0.get(k, 0.0)) for k, v in by1.items()}
            out[f"restart_{label}"]["requests_by_kind"] = dict(sorted(
                ((k, v) for k, v in moved.items() if v >= n / 10), key=lambda kv: -kv[1]))
            print(f"[scale] restart ({label}): {out[f'restart_{label}']}", file=sys.stderr)

        steady("idle")
        restart("sigkill", budget)
        # Nothing duplicated or orphaned: exactly one workload Deployment per cluster.
        deps = client.AppsV1Api(api).list_deployment_for_all_namespaces(
            label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY}").items
        out["workload_deployments"] = len(deps)
        out["pods_created"] = len(core.list_pod_for_all_namespaces().items)
        print(json.dumps(out, indent=2))
        return 0
    finally:
        op.kill()
        farm.terminate()
        plane.stop()
        if args.keep:
            print(f"[scale] logs in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
