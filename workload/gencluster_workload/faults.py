"""The admin fault switch: inject a slowdown, 5xx errors or a stuck device into one pod.

It exists to test the operator's alerts on a real pod (tests/control/test_alert_faults_live.py) and is
off unless the server starts with GENCLUSTER_FAULT_INJECTION=on; even then it sits behind the
admin bearer token (PUT /admin/faults). The faults mirror the simulator's (docs/alerts.md):
- slowdown (>= 1): every forward pass takes that many times as long (the device thread sleeps
  the difference after the pass, so the batch duration metric shows it);
- errorPercent (0-100): that share of /v1/generate requests answers 500 at once;
- stuck (bool): the device thread blocks before each forward pass until cleared; requests queue,
  /healthz, /readyz and /metrics keep answering (a hung device that still looks Ready) until
  the batcher's watchdog (GENCLUSTER_HANG_AFTER_SECONDS) declares it hung;
- allocateMiB (0-65536): the process holds that much more resident memory (written, so the
  pages are really used); above the container's memory limit the kernel's OOM killer ends it,
  as a leak would (tests/chaos/test_workload_pod_faults_live.py). 0 frees it.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

MIB = 1 << 20
MAX_ALLOCATE_MIB = 65536
FIELDS = frozenset({"slowdown", "errorPercent", "stuck", "allocateMiB"})


class FaultError(ValueError):
    """A PUT /admin/faults body that cannot be applied."""


class FaultSwitch:
    def __init__(self, enabled: bool, seed: int | None = None) -> None:
        self.enabled = enabled
        self.slowdown = 1.0
        self.error_percent = 0.0
        self._running = threading.Event()  # set: not stuck
        self._running.set()
        self._rng = random.Random(seed)
        self._ballast = bytearray()

    @property
    def stuck(self) -> bool:
        return not self._running.is_set()

    @property
    def allocated_mib(self) -> int:
        return len(self._ballast) // MIB

    def as_json(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "slowdown": self.slowdown,
                "errorPercent": self.error_percent, "stuck": self.stuck,
                "allocateMiB": self.allocated_mib}

    def update(self, body: Any) -> dict[str, Any]:
        """Apply {slowdown?, errorPercent?, stuck?, allocateMiB?}; fields left out keep their value."""
        if not isinstance(body, dict) or set(body) - FIELDS:
            raise FaultError("body must be a JSON object with " + ", ".join(sorted(FIELDS)))
        slowdown = body.get("slowdown", self.slowdown)
        errors = body.get("errorPercent", self.error_percent)
        stuck = body.get("stuck", self.stuck)
        if isinstance(slowdown, bool) or not isinstance(slowdown, (int, float)) \
                or not 1.0 <= slowdown <= 100.0:
            raise FaultError("slowdown must be a number in [1, 100]")
        if isinstance(errors, bool) or not isinstance(errors, (int, float)) \
                or not 0.0 <= errors <= 100.0:
            raise FaultError("errorPercent must be a number in [0, 100]")
        if not isinstance(stuck, bool):
            raise FaultError("stuck must be true or false")
        allocate = body.get("allocateMiB", self.allocated_mib)
        if isinstance(allocate, bool) or not isinstance(allocate, int) \
                or not 0 <= allocate <= MAX_ALLOCATE_MIB:
            raise FaultError(f"allocateMiB must be an integer in [0, {MAX_ALLOCATE_MIB}]")
        if allocate != self.allocated_mib:
            self._ballast = bytearray()  # free first, so a resize never holds both
            self._ballast = bytearray(b"\x01") * (allocate * MIB)  # written: resident, not just reserved
        self.slowdown, self.error_percent = float(slowdown), float(errors)
        if stuck:
            self._running.clear()
        else:
            self._running.set()
        return self.as_json()

    def should_fail(self) -> bool:
        """Whether this request is one of the injected errors."""
        return self.error_percent > 0.0 and self._rng.random() * 100.0 < self.error_percent

    def before_forward(self) -> None:
        """On the device thread: block while stuck."""
        while not self._running.wait(1.0):
            pass

    def after_forward(self, elapsed_s: float) -> None:
        """On the device thread: stretch a pass that took `elapsed_s` by the slowdown."""
        if self.slowdown > 1.0:
            time.sleep((self.slowdown - 1.0) * elapsed_s)

    def release(self) -> None:
        """Unblock the device thread (shutdown)."""
        self._running.set()
