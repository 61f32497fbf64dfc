"""Real redis-server processes on 127.0.0.1 for the cache-tier tests, configured as the pods are.

Each node runs the rendered redis.conf and the Secret's users.acl / auth.conf (only paths,
port and cluster-node-timeout differ), so the tests exercise the exact configuration and ACL
that the operator deploys. With `tls` (certificates made by `make_certs`, as the user's
kubernetes.io/tls Secret holds them) the rendered TLS configuration runs too.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from fixtures.ports import free_port_pair

from gencluster.api.spec import GenerationClusterSpec, parse_spec
from gencluster.rediscluster import Connector, ReconcileResult, converge
from gencluster.render.redis import (
    ACL_FILE_KEY,
    AUTH_CONF_KEY,
    AUTH_DIR,
    TLS_DIR,
    RedisAuth,
    redis_auth_secret,
    redis_conf,
    render_redis,
)

REDIS_SERVER = shutil.which("redis-server")
OPENSSL = shutil.which("openssl")
NAME = "demo"
K8S_NODES = ("node-a", "node-b", "node-c")
TLS_SECRET = "demo-redis-tls"


def make_spec(
    mode: str = "cluster", max_memory_mib: int = 64, tls: bool = False
) -> GenerationClusterSpec:
    cache: dict[str, Any] = {"mode": mode, "maxMemoryMiB": max_memory_mib}
    if tls:
        cache["tls"] = {"secretName": TLS_SECRET}
    return parse_spec({"workload": {"image": "example/workload:1"}, "cache": cache})


@dataclass(frozen=True)
class TLSFiles:
    """A directory laid out as the Secret mounts it: tls.crt, tls.key, ca.crt."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def cert(self) -> Path:
        return self.dir / "tls.crt"

    @property
    def key(self) -> Path:
        return self.dir / "tls.key"


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL, "openssl is not installed"
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certs(path: Path, *, ip: str = "127.0.0.1") -> TLSFiles:
    """A fresh CA and a server certificate for `ip` signed by it (RSA 2048, one day), with the
    openssl CLI. The CA's key stays outside the Secret's files, as it would."""
    path.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
             "-out", "ca.crt", "-days", "1", "-subj", "/CN=gencluster-test-ca", cwd=path)
    return renew_leaf(TLSFiles(path), ip=ip)


def renew_leaf(tls: TLSFiles, *, ip: str = "127.0.0.1") -> TLSFiles:
    """A new key and server certificate signed by the same CA (what cert-manager's renewal of a
    CA-issued Certificate writes into the Secret)."""
    path = tls.dir
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
             "-subj", f"/CN={ip}", cwd=path)
    (path / "san.ext").write_text(f"subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "tls.crt", "-days", "1", "-extfile", "san.ext", cwd=path)
    return tls


def write_auth_dir(path: Path, auth: RedisAuth, name: str = NAME) -> Path:
    """users.acl and auth.conf exactly as the Secret carries them."""
    path.mkdir(parents=True, exist_ok=True)
    secret = redis_auth_secret(name, auth)
    for key in (ACL_FILE_KEY, AUTH_CONF_KEY):
        (path / key).write_text(base64.b64decode(secret["data"][key]).decode())
    return path


def rendered_statefulset(spec: GenerationClusterSpec, auth: RedisAuth) -> dict[str, Any]:
    """The Redis StatefulSet the operator renders for `spec`."""
    objs = render_redis(NAME, "ns", spec, {}, "redis:7.2", auth)
    return next(o for o in objs if o["kind"] == "StatefulSet")


def rendered_container(spec: GenerationClusterSpec, auth: RedisAuth) -> dict[str, Any]:
    """The Redis container of that StatefulSet."""
    (container,) = rendered_statefulset(spec, auth)["spec"]["template"]["spec"]["containers"]
    return dict(container)


class RedisNode:
    """One redis-server process standing in for one StatefulSet pod."""

    def __init__(
        self,
        pod: str,
        root: Path,
        spec: GenerationClusterSpec,
        auth_dir: Path,
        auth: RedisAuth,
        node_timeout_ms: int,
        tls: TLSFiles | None = None,
    ) -> None:
        assert (tls is None) == (spec.cache.tls is None), "certificates iff spec.cache.tls"
        self.pod = pod
        self.root = root / pod
        self.data = self.root / "data"
        self.data.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "redis.conf"
        self.conf.write_text(
            redis_conf(
                spec,
                auth_dir=str(auth_dir),
                data_dir=str(self.data),
                tls_dir=str(tls.dir) if tls else "/nonexistent",
                cluster_node_timeout_ms=node_timeout_ms,
            )
        )
        self.tls = tls
        self.auth = auth
        self.auth_dir = auth_dir
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *, new_port: bool = True, wipe: bool = False) -> None:
        """Start (or restart: on a new port = a pod with a new IP; wipe = a new emptyDir)."""
        assert REDIS_SERVER
        if wipe:
            shutil.rmtree(self.data)
            self.data.mkdir()
        for attempt in range(5):
            if new_port or not self.port or attempt:
                self.port = free_port_pair()
            log = (self.root / "redis.log").open("ab")
            # With TLS the rendered config says `port 0` and `tls-port 6379`: move the TLS port.
            port_flag = "--tls-port" if self.tls else "--port"
            self.proc = subprocess.Popen(
                [REDIS_SERVER, str(self.conf), port_flag, str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
            )
            log.close()
            try:
                self.proc.wait(0.1)  # exited at once: the port was taken meanwhile; try another
            except subprocess.TimeoutExpired:
                break
        self.wait_ready()

    def run_rendered(self, command: list[str]) -> int:
        """Run one of the pod's rendered exec commands (a probe or a hook) against this node, as
        the pod would (port, auth directory and CA path moved to this machine's); its exit code."""
        shell, flag, script = command
        script = script.replace("-p 6379", f"-p {self.port}").replace(AUTH_DIR, str(self.auth_dir))
        if self.tls:
            script = script.replace(f"{TLS_DIR}/ca.crt", str(self.tls.ca))
        env = {"PATH": os.environ["PATH"], "REDISCLI_AUTH": self.auth.health_password}
        return subprocess.run([shell, flag, script], env=env, timeout=30).returncode

    def tls_kwargs(self) -> dict[str, Any]:
        """redis-py's TLS options as the operator uses them (chain verified, host name not)."""
        if self.tls is None:
            return {}
        return {"ssl": True, "ssl_ca_certs": str(self.tls.ca), "ssl_check_hostname": False}

    def admin(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=self.auth.admin_username,
            password=self.auth.admin_password,
            socket_timeout=2,
            decode_responses=True,
            driver_info=None,
            **self.tls_kwargs(),
        )

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        end = time.monotonic() + timeout_s
        while True:
            assert self.proc and self.proc.poll() is None, (self.root / "redis.log").read_text()
            try:
                with self.admin() as c:
                    if c.ping():
                        return
            except redis.RedisError:
                if time.monotonic() > end:
                    raise
            time.sleep(0.05)

    def kill(self) -> float:
        """SIGKILL (a pod deleted without grace); returns the monotonic time of the kill."""
        assert self.proc
        t = time.monotonic()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self.proc = None
        return t

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Fleet:
    """A StatefulSet's worth of nodes: `<name>-redis-<ordinal>`, started on demand."""

    def __init__(
        self,
        root: Path,
        auth: RedisAuth,
        spec: GenerationClusterSpec,
        node_timeout_ms: int = 2000,
        tls: TLSFiles | None = None,
    ) -> None:
        self.root = root
        self.auth = auth
        self.spec = spec
        self.tls = tls
        self.node_timeout_ms = node_timeout_ms
        self.auth_dir = write_auth_dir(root / "auth", auth)
        self.nodes: list[RedisNode] = []

    def add(self, n: int) -> list[RedisNode]:
        new = []
        for _ in range(n):
            node = RedisNode(
                f"{NAME}-redis-{len(self.nodes)}",
                self.root,
                self.spec,
                self.auth_dir,
                self.auth,
                self.node_timeout_ms,
                self.tls,
            )
            node.start()
            self.nodes.append(node)
            new.append(node)
        return new

    def node(self, pod: str) -> RedisNode:
        return next(n for n in self.nodes if n.pod == pod)

    def addresses(self, count: int | None = None) -> dict[str, str]:
        """Pod -> address, as the operator lists pods (a killed pod keeps its last address)."""
        nodes = self.nodes if count is None else self.nodes[:count]
        return {n.pod: n.address for n in nodes}

    def stop_all(self) -> None:
        for n in self.nodes:
            n.stop()

    def __iter__(self) -> Iterator[RedisNode]:
        return iter(self.nodes)


def k8s_nodes(fleet: Fleet) -> dict[str, str]:
    """Pods spread round-robin over three Kubernetes nodes, as anti-affinity would place them."""
    return {n.pod: K8S_NODES[i % len(K8S_NODES)] for i, n in enumerate(fleet.nodes)}


async def settle_with(
    fleet: Fleet,
    connect: Connector,
    shards: int,
    replicas: int,
    addresses: dict[str, str] | None = None,
    deadline_s: float = 40.0,
) -> ReconcileResult:
    """Converge through `connect`, then wait until health says ok (replication links take a
    moment); fails the test on a refusal or when the deadline passes."""
    addrs = addresses or fleet.addresses()
    end = time.monotonic() + deadline_s
    while True:
        r = await converge(
            addrs,
            connect,
            shards,
            replicas,
            k8s_nodes=k8s_nodes(fleet),
            deadline_s=max(1.0, end - time.monotonic()),
        )
        assert not r.refused, r.refused
        if (r.converged and r.health.state == "ok") or time.monotonic() > end:
            break
        await asyncio.sleep(0.2)
    assert r.converged and r.health.state == "ok", (r.plan, r.health)
    return r
