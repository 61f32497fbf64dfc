"""Device-side execution of one batch: OOM split-and-retry and per-item failure isolation.

Why separate from the batcher: the batcher decides *which* requests run together (asyncio, event
loop); this decides *how* a batch runs on the device (one worker thread), and guarantees that
each request gets its own result or its own error, never a batch-mate's.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .faults import FaultSwitch
from .gpu_memory import DeviceOutOfMemory, MemoryMonitor
from .model import GenerationModel

log = logging.getLogger(__name__)


class OutOfMemory(RuntimeError):
    """A single request did not fit in device memory even alone."""


@dataclass(frozen=True)
class ItemResult:
    grid: np.ndarray  # occupancy probabilities (G, G, G), [x, y, z]
    batch_size: int  # size of the forward pass that produced it
    forward_ms: float


def is_oom(exc: BaseException) -> bool:
    """CUDA OOM (torch.OutOfMemoryError, or older RuntimeErrors saying so), host MemoryError,
    and the CPU stand-in's DeviceOutOfMemory (a MemoryError)."""
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class BatchRunner:
    """Runs lists of preprocessed inputs through the model; called on the device thread only."""

    def __init__(
        self,
        model: GenerationModel,
        memory: MemoryMonitor,
        on_forward: Callable[[int], None] = lambda n: None,
        on_oom: Callable[[int], None] = lambda n: None,
        on_forward_seconds: Callable[[float], None] = lambda s: None,
        faults: FaultSwitch | None = None,
    ) -> None:
        self.model = model
        self.memory = memory
        self.on_forward = on_forward
        self.on_oom = on_oom
        self.on_forward_seconds = on_forward_seconds
        self.faults = faults
        self.forward_passes = 0

    def run(self, inputs: list[torch.Tensor]) -> list[ItemResult | BaseException]:
        return self.run_charged(inputs)[0]

    def run_charged(
        self, inputs: list[torch.Tensor]
    ) -> tuple[list[ItemResult | BaseException], list[float]]:
        """Results, and the device seconds charged to each input: every forward attempt's time
        (successful, OOM'd or failed) split equally among the inputs in it, so the charges sum
        to the time the device spent on this batch."""
        out: list[ItemResult | BaseException | None] = [None] * len(inputs)
        charges = [0.0] * len(inputs)
        self._run(inputs, list(range(len(inputs))), out, charges)
        return [r if r is not None else RuntimeError("no result") for r in out], charges

    def _forward(self, inputs: list[torch.Tensor], idx: list[int]) -> torch.Tensor:
        self.memory.check_batch(self.model.estimate_batch_bytes(len(idx)))
        batch = torch.stack([inputs[i] for i in idx])
        probs = self.model.forward_batch(batch)
        if probs.dim() != 4 or probs.shape[0] != len(idx):
            raise RuntimeError(
                f"model returned shape {tuple(probs.shape)} for a batch of {len(idx)}; expected (B, G, G, G)"
            )
        return probs

    def _run(
        self,
        inputs: list[torch.Tensor],
        idx: list[int],
        out: list[ItemResult | BaseException | None],
        charges: list[float],
    ) -> None:
        if self.faults is not None:
            self.faults.before_forward()  # the admin fault switch: a stuck device blocks here
        t0 = time.perf_counter()
        failure: BaseException | None = None
        oom = False
        try:
            probs = self._forward(inputs, idx)
        except Exception as exc:
            oom = is_oom(exc)
            failure = exc if not oom else OutOfMemory(f"out of device memory: {exc}")
        if failure is None and self.faults is not None:
            self.faults.after_forward(time.perf_counter() - t0)  # an injected slowdown
        elapsed = time.perf_counter() - t0
        for i in idx:
            charges[i] += elapsed / len(idx)
        if failure is None:
            ms = elapsed * 1000
            self.forward_passes += 1
            self.on_forward(len(idx))
            self.on_forward_seconds(elapsed)
            grids = probs.numpy()
            for k, i in enumerate(idx):
                out[i] = ItemResult(grids[k], len(idx), ms)
            return
        # The exception (and its traceback's frames holding tensors) is gone here, so the
        # memory release below can actually free the failed batch's activations.
        if oom:
            self.on_oom(len(idx))
            self.memory.record_oom()
            self.memory.release(f"oom at batch size {len(idx)}")
            if len(idx) > 1:
                half = len(idx) // 2
                log.warning("OOM at batch size %d: retrying as %d + %d", len(idx), half, len(idx) - half)
                self._run(inputs, idx[:half], out, charges)
                self._run(inputs, idx[half:], out, charges)
                return
        elif len(idx) > 1:
            # Some input broke the batch: run each alone so only the culprit fails.
            log.warning("batch of %d failed (%s); isolating items", len(idx), failure)
            for i in idx:
                self._run(inputs, [i], out, charges)
            return
        for i in idx:
            out[i] = failure


__all__ = ["BatchRunner", "DeviceOutOfMemory", "ItemResult", "OutOfMemory", "is_oom"]
