"""Fixtures of the workload tests: real server processes and real redis-server processes on
127.0.0.1 (free ports, ACL auth as the operator configures it), and test images."""

from __future__ import annotations

import io
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fixtures.ports import free_port as loopback_port
from fixtures.ports import free_port_pair
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
WORKLOAD = ROOT / "workload"
HERE = Path(__file__).resolve().parent
if str(WORKLOAD) not in sys.path:  # when the project is not pip-installed
    sys.path.insert(0, str(WORKLOAD))

from gencluster.render.redis import WORKLOAD_COMMANDS  # noqa: E402  (the ACL the operator deploys)
from gencluster_workload import synthetic  # noqa: E402

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
ADMIN_TOKEN = "test-admin-token-" + secrets.token_hex(8)


def free_port(pair: bool = False) -> int:
    """A free TCP port on 127.0.0.1; with pair, port + 10000 (a Redis cluster bus) is free too."""
    return free_port_pair() if pair else loopback_port()


# -- images --------------------------------------------------------------------------------
def png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(arr: np.ndarray, quality: int = 92) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def sphere_photo(size: int = 256, radius: float = 0.62, seed: int = 0) -> np.ndarray:
    """A photo-like shaded ball drawn directly (not with the training renderer): Lambertian
    shading from the upper left, a highlight, a soft shadow-free backdrop gradient, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    x = (xx + 0.5) / size * 2 - 1
    y = 1 - (yy + 0.5) / size * 2
    r2 = (x**2 + y**2) / radius**2
    inside = r2 < 1
    z = np.sqrt(np.clip(1 - r2, 0, 1))
    n = np.stack([x / radius, y / radius, z], axis=-1)
    light = np.array([-0.5, 0.6, 0.62])
    light /= np.linalg.norm(light)
    shade = np.clip(n @ light, 0, 1)
    half = light + np.array([0.0, 0.0, 1.0])
    spec = np.clip(n @ (half / np.linalg.norm(half)), 0, 1) ** 30
    ball = np.array([0.85, 0.35, 0.2]) * (0.2 + 0.8 * shade[..., None]) + 0.5 * spec[..., None]
    back = np.array([0.82, 0.84, 0.86]) - 0.15 * ((yy / size)[..., None])
    img = np.where(inside[..., None], ball, back) + rng.normal(0, 0.01, (size, size, 3))
    return np.asarray(np.clip(img, 0, 1) * 255, dtype=np.uint8)


def cube_photo(size: int = 256) -> np.ndarray:
    """A cube seen face-on and slightly from above: a flat square face and a thin top face."""
    img = np.zeros((size, size, 3)) + np.array([0.8, 0.82, 0.85])
    lo, hi = int(size * 0.25), int(size * 0.78)
    img[lo:hi, lo:hi] = np.array([0.25, 0.4, 0.75])
    top = int(size * 0.05)
    for i in range(top):
        img[lo - i - 1, lo + i : hi + i] = np.array([0.45, 0.6, 0.9])
    return np.asarray(np.clip(img, 0, 1) * 255, dtype=np.uint8)


def shape_images(n: int, seed: int = 100) -> list[bytes]:
    """n distinct synthetic renders (various primitives), as PNG bytes."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        shape = synthetic.random_shape(rng, synthetic.KINDS[i % 4])
        out.append(png((synthetic.render(shape.sdf, rng, 96) * 255).astype(np.uint8)))
    return out


# -- servers -------------------------------------------------------------------------------
class ServerProcess:
    """`python -m gencluster_workload` on 127.0.0.1 with a free port; logs to a file."""

    def __init__(self, tmp: Path, env: dict[str, str] | None = None, name: str = "server",
                 admin_port: bool = False) -> None:
        self.tmp = tmp
        self.extra_env = dict(env or {})
        self.name = name
        self.port = 0
        self.separate_admin = admin_port  # the admin API on its own port (as the operator runs it)
        self.admin_port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = tmp / f"{name}.log"
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        """Where /admin/* is served: its own port, or the HTTP port (GENCLUSTER_ADMIN_PORT unset)."""
        return f"http://127.0.0.1:{self.admin_port or self.port}"

    def environ(self) -> dict[str, str]:
        env = dict(os.environ)
        paths = [str(WORKLOAD), str(HERE), env.get("PYTHONPATH", "")]
        env.update(
            {
                "PYTHONPATH": os.pathsep.join(p for p in paths if p),
                "PYTHONUNBUFFERED": "1",
                "GENCLUSTER_HOST": "127.0.0.1",
                "GENCLUSTER_PORT": str(self.port),
                "GENCLUSTER_TORCH_THREADS": "1",
                "GENCLUSTER_DEVICE": "cpu",
                "GENCLUSTER_ADMIN_TOKEN": ADMIN_TOKEN,
            }
        )
        if self.admin_port:
            env["GENCLUSTER_ADMIN_PORT"] = str(self.admin_port)
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 90.0) -> ServerProcess:
        self.port = free_port()
        if self.separate_admin:
            self.admin_port = free_port()
            while self.admin_port == self.port:
                self.admin_port = free_port()
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115  (kept open for the child's lifetime)
        log.write(f"\n==== start {self.starts} on port {self.port} (admin {self.admin_port or self.port})\n".encode())
        log.flush()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gencluster_workload"],
            env=self.environ(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            start_new_session=True,
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.terminate(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def get_json(self, path: str) -> Any:
        import json

        with urllib.request.urlopen(self.url + path, timeout=10) as r:
            return json.loads(r.read())

    def metrics_text(self) -> str:
        with urllib.request.urlopen(self.url + "/metrics", timeout=10) as r:
            return str(r.read().decode())


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """The value of one sample in a Prometheus exposition (0.0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in (labels or {}).items()):
                return float(s.value)
    return 0.0


# -- redis ---------------------------------------------------------------------------------
class RedisProcess:
    """A real redis-server with the operator's workload ACL user and an admin user."""

    def __init__(self, tmp: Path, prefix: str, cluster: bool = False, name: str = "redis") -> None:
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.cluster = cluster
        self.username = "gencl-workload"
        self.password = secrets.token_urlsafe(16)
        self.admin_password = secrets.token_urlsafe(16)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def write_acl(self) -> Path:
        rules = " ".join(f"+{c}" for c in WORKLOAD_COMMANDS)
        acl = self.dir / "users.acl"
        acl.write_text(
            "user default off resetpass resetkeys resetchannels -@all\n"
            f"user admin on >{self.admin_password} ~* &* +@all\n"
            f"user {self.username} on >{self.password} resetkeys ~{self.prefix}* "
            f"resetchannels -@all {rules}\n"
        )
        return acl

    def start(self) -> RedisProcess:
        self.port = free_port(pair=self.cluster)
        args = [
            REDIS_SERVER,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            "--aclfile",
            str(self.write_acl()),
            "--protected-mode",
            "no",
            "--logfile",
            str(self.dir / "redis.log"),
        ]
        if self.cluster:
            args += [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.dir / "nodes.conf"),
                "--cluster-node-timeout",
                "2000",
            ]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.admin().ping():
                    return self
            except Exception:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server on {self.port} did not start")

    def admin(self) -> Any:
        import redis

        return redis.Redis(port=self.port, username="admin", password=self.admin_password, socket_timeout=2)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def env(self, mode: str = "standalone") -> dict[str, str]:
        return {
            "GENCLUSTER_REDIS_MODE": mode,
            "GENCLUSTER_REDIS_URL": self.url,
            "GENCLUSTER_REDIS_USERNAME": self.username,
            "GENCLUSTER_REDIS_PASSWORD": self.password,
            "GENCLUSTER_REDIS_KEY_PREFIX": self.prefix,
        }

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def module_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("workload")


@pytest.fixture(scope="module")
def redis_standalone(module_tmp: Path) -> Iterator[RedisProcess]:
    r = RedisProcess(module_tmp, prefix="gencl:test:").start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def shapes() -> list[bytes]:
    return shape_images(8)
