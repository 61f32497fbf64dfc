"""The operator's settings: every one defined once here (environment variable, flag, type,
default, meaning), parsed once at startup, with errors that name the variable or flag.

The Helm chart sets the environment and the flags (charts/gencluster-operator); docs/operator.md
lists them. Precedence: flag > environment > default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..render.children import OperatorDefaults


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable or flag."""


def _port(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 65535:
        raise ValueError(f"must be a port 1..65535, got {value}")
    return value


def _seconds(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 86400:
        raise ValueError(f"must be 1..86400 seconds, got {value}")
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 10000:  # also refuses nan
        raise ValueError(f"must be 0..10000 per second, got {text}")
    return value


def _text(text: str) -> str:
    return text.strip()


@dataclass(frozen=True)
class Option:
    field: str
    env: str | None
    flag: str | None
    kind: Callable[[str], Any]
    default: Any
    help: str
    secret: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("metrics_port", "GENCLUSTER_METRICS_PORT", "--metrics-port", _port, 8080,
           "port of /metrics and the dashboard"),
    Option("resync_seconds", "GENCLUSTER_RESYNC_SECONDS", "--resync-seconds", _seconds, 15,
           "period of the level-triggered resync of every GenerationCluster"),
    Option("resync_budget", "GENCLUSTER_RESYNC_BUDGET", "--resync-budget", _rate, 5.0,
           "resync reconciles per second across all GenerationClusters; beyond period x budget "
           "clusters, each is resynced less often (0: no limit)"),
    Option("dashboard_token", "GENCLUSTER_DASHBOARD_TOKEN", None, _text, None,
           "bearer token the dashboard requires from non-loopback peers", secret=True),
    Option("redis_image", "GENCLUSTER_REDIS_IMAGE", "--redis-image", _text,
           OperatorDefaults.redis_image, "image of the Redis cache pods"),
    Option("operator_namespace", "POD_NAMESPACE", None, _text,
           OperatorDefaults.operator_namespace,
           "the operator's own namespace (Redis admits the operator's pod from there only)"),
    Option("liveness_url", None, "--liveness", _text, "http://0.0.0.0:8081/healthz",
           "liveness endpoint URL Kopf serves (for the pod's livenessProbe)"),
)


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    metrics_port: int = 8080
    resync_seconds: int = 15
    resync_budget: float = 5.0
    dashboard_token: str | None = field(default=None, repr=False)
    liveness_url: str = "http://0.0.0.0:8081/healthz"
    verbose: bool = False
    defaults: OperatorDefaults = field(default_factory=OperatorDefaults)


def _parse(option: Option, raw: str, source: str) -> Any:
    try:
        return option.kind(raw)
    except ValueError as err:
        shown = "<hidden>" if option.secret else repr(raw)
        raise SettingsError(f"{source}={shown}: {err}") from None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gencluster operator",
                                description="Run the GenerationCluster operator.")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--all-namespaces", action="store_true", default=True,
                       help="watch GenerationClusters in every namespace (default)")
    scope.add_argument("-n", "--namespace", action="append", default=[],
                       help="watch only this namespace (repeatable)")
    for o in OPTIONS:
        if o.flag:
            env = f" (env {o.env})" if o.env else ""
            p.add_argument(o.flag, dest=o.field, default=None, help=f"{o.help}{env}; default {o.default}")
    p.add_argument("--verbose", action="store_true")
    return p


def load(argv: Sequence[str] = (), env: Mapping[str, str] | None = None) -> OperatorSettings:
    """Flags, then the environment, then defaults; SettingsError names what is wrong."""
    env = os.environ if env is None else env
    args = parser().parse_args(list(argv))
    values: dict[str, Any] = {}
    for o in OPTIONS:
        flag_value = getattr(args, o.field, None) if o.flag else None
        if flag_value is not None:
            values[o.field] = _parse(o, flag_value, o.flag or o.field)
        elif o.env and env.get(o.env):
            values[o.field] = _parse(o, env[o.env], o.env)
        else:
            values[o.field] = o.default
    if values["dashboard_token"] == "":
        values["dashboard_token"] = None
    defaults = OperatorDefaults(redis_image=values.pop("redis_image"),
                                operator_namespace=values.pop("operator_namespace"))
    return OperatorSettings(namespaces=tuple(args.namespace), verbose=bool(args.verbose),
                            defaults=defaults, **values)
