"""Settings of `gencluster serve`: every option is an env var and a flag, defined once here.

Why one table: the operator renders env vars, people type flags, and docs/workload.md lists
them; keeping name, flag, type, default and meaning in one tuple keeps the three in step.
Precedence: flag > env > default; the runtime config file (GENCLUSTER_RUNTIME_CONFIG), when
present, then overrides the two batching values, because it is the operator's latest decision.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BATCH_SIZE_RANGE = (1, 256)
QUEUE_DELAY_MS_RANGE = (0, 10_000)
DEFAULT_FACTORY = "gencluster_workload.model:shipped_model"


class ConfigError(ValueError):
    """A setting has an invalid value; the message names the setting."""


@dataclass(frozen=True)
class Option:
    field: str
    env: str
    flag: str
    kind: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False


def _int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < lo or (hi is not None and value > hi):
            bound = f"{lo}..{hi}" if hi is not None else f">= {lo}"
            raise ValueError(f"must be {bound}, got {value}")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {text!r}")
        return value

    return parse


def _device(text: str) -> str:
    value = text.strip().lower()
    if value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit()):
        return value
    raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")


def _float_pos(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(f"must be >= 0, got {text!r}")
    return value


OPTIONS: tuple[Option, ...] = (
    Option("host", "GENCLUSTER_HOST", "--host", str, "0.0.0.0", "Address to listen on."),
    Option("port", "GENCLUSTER_PORT", "--port", _int_in(1, 65535), 8080, "HTTP port."),
    Option(
        "admin_port",
        "GENCLUSTER_ADMIN_PORT",
        "--admin-port",
        _int_in(0, 65535),
        0,
        "Port of the admin API (/admin/*, bearer token); then the HTTP port answers 404 there. "
        "0 = the admin API on the HTTP port.",
    ),
    Option(
        "model_name",
        "GENCLUSTER_MODEL_NAME",
        "--model-name",
        str,
        "",
        "Model name reported and used in cache keys; empty = the model's own name.",
    ),
    Option(
        "model_version",
        "GENCLUSTER_MODEL_VERSION",
        "--model-version",
        str,
        "",
        "Model version reported and used in cache keys; empty = the model's own version.",
    ),
    Option(
        "model_factory",
        "GENCLUSTER_MODEL_FACTORY",
        "--model-factory",
        str,
        DEFAULT_FACTORY,
        "`module:callable` taking a torch.device and returning a GenerationModel.",
    ),
    Option(
        "device",
        "GENCLUSTER_DEVICE",
        "--device",
        _device,
        "auto",
        "auto (CUDA when present), cpu, cuda or cuda:N.",
    ),
    Option(
        "batch_max_size",
        "GENCLUSTER_BATCH_MAX_SIZE",
        "--batch-max-size",
        _int_in(*BATCH_SIZE_RANGE),
        8,
        "Largest batch per forward pass (1..256).",
    ),
    Option(
        "batch_max_delay_ms",
        "GENCLUSTER_BATCH_MAX_DELAY_MS",
        "--batch-max-delay-ms",
        _int_in(*QUEUE_DELAY_MS_RANGE),
        10,
        "Longest a request waits for batch-mates, in ms (0..10000).",
    ),
    Option(
        "queue_max",
        "GENCLUSTER_QUEUE_MAX",
        "--queue-max",
        _int_in(1, 100_000),
        128,
        "Requests waiting for the device beyond which new ones get 429.",
    ),
    Option(
        "runtime_config",
        "GENCLUSTER_RUNTIME_CONFIG",
        "--runtime-config",
        str,
        "",
        "JSON file {maxBatchSize, maxQueueDelayMs} read at start; overrides the two above.",
    ),
    Option(
        "admin_token",
        "GENCLUSTER_ADMIN_TOKEN",
        "--admin-token",
        str,
        "",
        "Bearer token for /admin/*; empty and no file = admin API disabled (403).",
        secret=True,
    ),
    Option(
        "admin_token_file",
        "GENCLUSTER_ADMIN_TOKEN_FILE",
        "--admin-token-file",
        str,
        "",
        "File holding the admin token (re-read on change); wins over the env token.",
    ),
    Option(
        "redis_mode",
        "GENCLUSTER_REDIS_MODE",
        "--redis-mode",
        _choice("standalone", "cluster", "disabled"),
        "disabled",
        "L2 cache: standalone (redis.asyncio.Redis), cluster (RedisCluster) or disabled.",
    ),
    Option(
        "redis_url",
        "GENCLUSTER_REDIS_URL",
        "--redis-url",
        str,
        "",
        "redis://HOST:PORT of the Redis Service (a cluster: any node's Service).",
    ),
    Option("redis_username", "GENCLUSTER_REDIS_USERNAME", "--redis-username", str, "", "Redis ACL user."),
    Option(
        "redis_password",
        "GENCLUSTER_REDIS_PASSWORD",
        "--redis-password",
        str,
        "",
        "Redis ACL password.",
        secret=True,
    ),
    Option(
        "redis_key_prefix",
        "GENCLUSTER_REDIS_KEY_PREFIX",
        "--redis-key-prefix",
        str,
        "gencluster:",
        "Prefix of every Redis key (the ACL user's key pattern).",
    ),
    Option(
        "redis_tls_ca_file",
        "GENCLUSTER_REDIS_TLS_CA_FILE",
        "--redis-tls-ca-file",
        str,
        "",
        "PEM CA bundle: connect to Redis with TLS (as a rediss:// URL does) and verify its "
        "certificate chain against this CA (not the host name: cluster nodes are pod IPs).",
    ),
    Option(
        "redis_timeout_ms",
        "GENCLUSTER_REDIS_TIMEOUT_MS",
        "--redis-timeout-ms",
        _int_in(1, 10_000),
        100,
        "Deadline of each Redis call; past it the call is a miss.",
    ),
    Option(
        "cache_ttl_seconds",
        "GENCLUSTER_CACHE_TTL_SECONDS",
        "--cache-ttl-seconds",
        _int_in(0),
        3600,
        "TTL of cached meshes in L1 and Redis; 0 = no expiry.",
    ),
    Option(
        "l1_cache_bytes",
        "GENCLUSTER_L1_CACHE_BYTES",
        "--l1-cache-bytes",
        _int_in(0),
        256 * 1024 * 1024,
        "Bytes of meshes kept in process; 0 disables L1.",
    ),
    Option(
        "memory_budget_bytes",
        "GENCLUSTER_MEMORY_BUDGET_BYTES",
        "--memory-budget-bytes",
        _int_in(0),
        0,
        "CPU only: host memory standing in for GPU memory; 0 = cgroup limit or MemTotal.",
    ),
    Option(
        "shutdown_grace_seconds",
        "GENCLUSTER_SHUTDOWN_GRACE_SECONDS",
        "--shutdown-grace-seconds",
        _float_pos,
        25.0,
        "After SIGTERM, time to finish queued work before exiting.",
    ),
    Option(
        "hang_after_seconds",
        "GENCLUSTER_HANG_AFTER_SECONDS",
        "--hang-after-seconds",
        _float_pos,
        60.0,
        "A forward pass running longer is a hung device: waiting requests get 503 at once, "
        "/readyz and /healthz fail (the kubelet restarts the container). 0: no watchdog.",
    ),
    Option(
        "torch_threads",
        "GENCLUSTER_TORCH_THREADS",
        "--torch-threads",
        _int_in(0, 1024),
        0,
        "torch intra-op threads; 0 = the CPUs this container may use (cgroup quota).",
    ),
    Option(
        "log_level",
        "GENCLUSTER_LOG_LEVEL",
        "--log-level",
        _choice("debug", "info", "warning", "error"),
        "info",
        "Log level.",
    ),
    Option(
        "fault_injection",
        "GENCLUSTER_FAULT_INJECTION",
        "--fault-injection",
        _choice("off", "on"),
        "off",
        "on: PUT /admin/faults (admin token) may inject slowdowns, 5xx errors or a stuck device "
        "(alert tests); off: the fault switch does not exist (404).",
    ),
)


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    admin_port: int = 0  # 0: /admin/* on `port`
    model_name: str = ""
    model_version: str = ""
    model_factory: str = DEFAULT_FACTORY
    device: str = "auto"
    batch_max_size: int = 8
    batch_max_delay_ms: int = 10
    queue_max: int = 128
    runtime_config: str = ""
    admin_token: str = field(default="", repr=False)  # secrets: never in a repr (see redacted())
    admin_token_file: str = ""
    redis_mode: str = "disabled"
    redis_url: str = ""
    redis_username: str = ""
    redis_password: str = field(default="", repr=False)
    redis_key_prefix: str = "gencluster:"
    redis_tls_ca_file: str = ""
    redis_timeout_ms: int = 100
    cache_ttl_seconds: int = 3600
    l1_cache_bytes: int = 256 * 1024 * 1024
    memory_budget_bytes: int = 0
    shutdown_grace_seconds: float = 25.0
    hang_after_seconds: float = 60.0
    torch_threads: int = 0
    log_level: str = "info"
    fault_injection: str = "off"

    def redacted(self) -> dict[str, Any]:
        """For logs: secrets replaced by '***' when set."""
        secret = {o.field for o in OPTIONS if o.secret}
        return {
            f.name: ("***" if f.name in secret and getattr(self, f.name) else getattr(self, f.name))
            for f in fields(self)
        }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gencluster serve",
        description="Serve the image-to-3D generation workload (env vars in brackets).",
    )
    for opt in OPTIONS:
        parser.add_argument(
            opt.flag,
            dest=opt.field,
            default=None,
            metavar=opt.field.upper(),
            help=f"{opt.help} [{opt.env}, default {opt.default!r}]",
        )
    return parser


def parse_settings(argv: list[str], environ: dict[str, str] | None = None) -> Settings:
    """Flags over env over defaults; raise ConfigError naming the bad setting."""
    env = os.environ if environ is None else environ
    args = build_parser().parse_args(argv)
    values: dict[str, Any] = {}
    for opt in OPTIONS:
        raw = getattr(args, opt.field)
        source = opt.flag
        if raw is None and opt.env in env:
            raw, source = env[opt.env], opt.env
        if raw is None:
            values[opt.field] = opt.default
            continue
        try:
            values[opt.field] = opt.kind(raw)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    settings = Settings(**values)
    if settings.admin_port and settings.admin_port == settings.port:
        raise ConfigError(
            f"GENCLUSTER_ADMIN_PORT must differ from GENCLUSTER_PORT ({settings.port}); "
            "0 serves the admin API on the HTTP port"
        )
    if settings.redis_mode != "disabled" and not settings.redis_url:
        raise ConfigError(
            f"GENCLUSTER_REDIS_URL is required when GENCLUSTER_REDIS_MODE is {settings.redis_mode}"
        )
    return settings


@dataclass(frozen=True)
class BatchSettings:
    max_batch_size: int
    max_queue_delay_ms: int

    def as_json(self) -> dict[str, int]:
        return {"maxBatchSize": self.max_batch_size, "maxQueueDelayMs": self.max_queue_delay_ms}


def parse_batch_update(body: Any, current: BatchSettings) -> BatchSettings:
    """Validate {"maxBatchSize"?, "maxQueueDelayMs"?}; at least one key; raise ConfigError."""
    if not isinstance(body, dict):
        raise ConfigError('body must be a JSON object like {"maxBatchSize": 8, "maxQueueDelayMs": 10}')
    unknown = sorted(set(body) - {"maxBatchSize", "maxQueueDelayMs"})
    if unknown:
        raise ConfigError(f"unknown field(s): {', '.join(unknown)}; allowed: maxBatchSize, maxQueueDelayMs")
    if not body:
        raise ConfigError("give maxBatchSize and/or maxQueueDelayMs")
    size = body.get("maxBatchSize", current.max_batch_size)
    delay = body.get("maxQueueDelayMs", current.max_queue_delay_ms)
    for name, value, (lo, hi) in (
        ("maxBatchSize", size, BATCH_SIZE_RANGE),
        ("maxQueueDelayMs", delay, QUEUE_DELAY_MS_RANGE),
    ):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer, got {json.dumps(value)}")
        if not lo <= value <= hi:
            raise ConfigError(f"{name} must be in {lo}..{hi}, got {value}")
    return BatchSettings(size, delay)


def initial_batch_settings(settings: Settings) -> BatchSettings:
    """Env/flag batching, overridden by the runtime config file when it exists and is valid."""
    base = BatchSettings(settings.batch_max_size, settings.batch_max_delay_ms)
    if not settings.runtime_config:
        return base
    path = Path(settings.runtime_config)
    if not path.exists():
        log.info("runtime config %s not present; using batching %s", path, base.as_json())
        return base
    try:
        chosen = parse_batch_update(json.loads(path.read_text()), base)
    except (OSError, ValueError) as exc:
        # A broken file must not crash-loop every pod: keep serving with env values, loudly.
        log.error("ignoring runtime config %s: %s", path, exc)
        return base
    log.info("runtime config %s sets batching %s", path, chosen.as_json())
    return chosen
