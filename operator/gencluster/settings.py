"""Operator-wide settings, read once from the environment (the Helm chart sets them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from .render.children import OperatorDefaults


@dataclass(frozen=True)
class OperatorSettings:
    metrics_port: int = 8080
    liveness_port: int = 8081
    resync_seconds: int = 15
    defaults: OperatorDefaults = field(default_factory=OperatorDefaults)

    @classmethod
    def from_env(cls) -> OperatorSettings:
        env = os.environ
        return cls(
            metrics_port=int(env.get("GENCLUSTER_METRICS_PORT", "8080")),
            liveness_port=int(env.get("GENCLUSTER_LIVENESS_PORT", "8081")),
            resync_seconds=int(env.get("GENCLUSTER_RESYNC_SECONDS", "15")),
            defaults=OperatorDefaults(
                redis_image=env.get("GENCLUSTER_REDIS_IMAGE", OperatorDefaults.redis_image)),
        )
