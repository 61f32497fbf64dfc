"""Real redis-server processes on 127.0.0.1 for the cache-tier tests, configured as the pods are.

Each node runs the rendered redis.conf and the Secret's users.acl / auth.conf (only paths,
port and cluster-node-timeout differ), so the tests exercise the exact configuration and ACL
that the operator deploys.
"""

from __future__ import annotations

import base64
import contextlib
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from gencluster.api.spec import GenerationClusterSpec, parse_spec
from gencluster.render.redis import (
    ACL_FILE_KEY,
    AUTH_CONF_KEY,
    RedisAuth,
    redis_auth_secret,
    redis_conf,
)

REDIS_SERVER = shutil.which("redis-server")
NAME = "demo"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port_pair() -> int:
    """A port p with p and p + 10000 (the cluster bus) both free on 127.0.0.1.

    Both lie below the ephemeral range, so an outgoing connection cannot take them between
    this check and redis-server's bind.
    """
    high = min(_ephemeral_low(), 65536) - 10000 - 1
    for _ in range(500):
        port = random.randint(10000, high)
        try:
            for p in (port, port + 10000):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port pair")


def make_spec(mode: str = "cluster", max_memory_mib: int = 64) -> GenerationClusterSpec:
    return parse_spec(
        {
            "workload": {"image": "example/workload:1"},
            "cache": {"mode": mode, "maxMemoryMiB": max_memory_mib},
        }
    )


def write_auth_dir(path: Path, auth: RedisAuth, name: str = NAME) -> Path:
    """users.acl and auth.conf exactly as the Secret carries them."""
    path.mkdir(parents=True, exist_ok=True)
    secret = redis_auth_secret(name, auth)
    for key in (ACL_FILE_KEY, AUTH_CONF_KEY):
        (path / key).write_text(base64.b64decode(secret["data"][key]).decode())
    return path


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
    ) -> None:
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
                cluster_node_timeout_ms=node_timeout_ms,
            )
        )
        self.auth = auth
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
            self.proc = subprocess.Popen(
                [REDIS_SERVER, str(self.conf), "--port", str(self.port)],
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

    def admin(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            username=self.auth.admin_username,
            password=self.auth.admin_password,
            socket_timeout=2,
            decode_responses=True,
            driver_info=None,
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
        self, root: Path, auth: RedisAuth, spec: GenerationClusterSpec, node_timeout_ms: int = 2000
    ) -> None:
        self.root = root
        self.auth = auth
        self.spec = spec
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
