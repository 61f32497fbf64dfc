"""GPU stand-ins for the workload tests, loaded through GENCLUSTER_MODEL_FACTORY.

These are fakes of what a CPU test machine cannot do, named as such: a GPU that runs out of memory
above some batch size, a slow device, and an input the model chokes on. Each wraps the real
shipped model, so everything else (preprocessing, outputs, meshes) is real. Knobs are env vars:

  FAKE_OOM_ABOVE_BATCH   raise torch.OutOfMemoryError for batches larger than this
  FAKE_FORWARD_SLEEP_S   sleep this long in every forward pass (a slow GPU)
  FAKE_POISON_RED        "1": a batch holding a pure-red image raises ValueError
"""

from __future__ import annotations

import os
import time

import torch
from PIL import Image

from gencluster_workload.model import GenerationModel, ShippedModel


class FaultyGpuModel:
    def __init__(self, device: torch.device) -> None:
        self.inner = ShippedModel(device)
        self.name = self.inner.name
        self.version = self.inner.version
        self.oom_above = int(os.environ.get("FAKE_OOM_ABOVE_BATCH", "0"))
        self.sleep_s = float(os.environ.get("FAKE_FORWARD_SLEEP_S", "0"))
        self.poison = os.environ.get("FAKE_POISON_RED", "") == "1"
        self.oom_raised = 0

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.inner.preprocess(image)

    def estimate_batch_bytes(self, batch_size: int) -> int:
        return self.inner.estimate_batch_bytes(batch_size)

    def forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.oom_above and batch.shape[0] > self.oom_above:
            self.oom_raised += 1
            raise torch.OutOfMemoryError(
                f"CUDA out of memory (fake GPU: batch {batch.shape[0]} > {self.oom_above})"
            )
        if self.poison:
            red = (batch[:, 0] > 0.99).flatten(1).all(1) & (batch[:, 1:] < 0.01).flatten(1).all(1)
            if bool(red.any()):
                raise ValueError("poisoned input (a pure red image) in this batch")
        return self.inner.forward_batch(batch)


def faulty_gpu(device: torch.device) -> GenerationModel:
    return FaultyGpuModel(device)


def not_a_model(device: torch.device) -> object:
    """A broken plug-in: the server must refuse it at start with a clear message."""
    return object()
