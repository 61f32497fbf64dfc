"""The model plug-in point: the `GenerationModel` protocol, the shipped model, factory loading.

Why a protocol: the server batches, caches, meshes and measures; the model only turns images into
occupancy grids. A user serves another network by pointing GENCLUSTER_MODEL_FACTORY at a
`module:callable` that takes a `torch.device` and returns an object with this shape.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from PIL import Image

from .network import GRID_SIZE, IMAGE_SIZE, ImageTo3DNet, normalise

DEFAULT_NAME = "gencluster-imageto3d"
WEIGHTS_FILE = "imageto3d-v1.pt"


@runtime_checkable
class GenerationModel(Protocol):
    """What the server needs from a model.

    - `preprocess` runs on a CPU worker thread, once per request; raise ValueError for an image
      the model cannot use (the request gets 422, its batch-mates are not involved).
    - `forward_batch` runs on the single device thread with a stacked batch of preprocessed
      tensors and returns occupancy probabilities in [0, 1], shape (B, G, G, G), indexed
      [x, y, z] over the cube [-1, 1]^3, on the CPU. Raising torch.OutOfMemoryError (or
      MemoryError) makes the server split the batch and retry the halves.
    - `estimate_batch_bytes` is the device memory a batch needs beyond the weights; the CPU
      stand-in uses it to refuse batches that would exceed GENCLUSTER_MEMORY_BUDGET_BYTES.
    """

    name: str
    version: str

    def preprocess(self, image: Image.Image) -> torch.Tensor: ...

    def forward_batch(self, batch: torch.Tensor) -> torch.Tensor: ...

    def estimate_batch_bytes(self, batch_size: int) -> int: ...


def image_to_tensor(image: Image.Image, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Any PIL image -> float RGB (3, size, size) in [0, 1].

    Transparency is flattened onto white; non-square images are padded with their median border
    colour (so the object keeps its aspect ratio), then resized.
    """
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(flat, rgba)
    rgb = image.convert("RGB")
    w, h = rgb.size
    if w != h:
        arr = np.asarray(rgb)
        border = np.concatenate([arr[0], arr[-1], arr[:, 0], arr[:, -1]])
        fill = tuple(int(c) for c in np.median(border, axis=0))
        side = max(w, h)
        canvas = Image.new("RGB", (side, side), fill)
        canvas.paste(rgb, ((side - w) // 2, (side - h) // 2))
        rgb = canvas
    rgb = rgb.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    arr = np.asarray(rgb, dtype=np.float32) / 255.0
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def activation_bytes_per_item(net: torch.nn.Module, image_size: int = IMAGE_SIZE) -> int:
    """Sum of every module's output size for one image: an upper bound on inference activations."""
    total = 0

    def hook(_mod: torch.nn.Module, _inp: Any, out: Any) -> None:
        nonlocal total
        if isinstance(out, torch.Tensor):
            total += out.numel() * out.element_size()

    handles = [m.register_forward_hook(hook) for m in net.modules() if m is not net]
    try:
        with torch.inference_mode():
            net(torch.zeros(1, 3, image_size, image_size, device=next(net.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total + 3 * image_size * image_size * 4


def load_state(path: Path | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read the shipped weights (float16 on disk) as float32, with their metadata."""
    if path is None:
        ref = resources.files("gencluster_workload") / "weights" / WEIGHTS_FILE
        with resources.as_file(ref) as p:
            blob = torch.load(p, map_location="cpu", weights_only=True)
    else:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()}
    return state, dict(blob.get("meta", {}))


class ShippedModel:
    """The trained ImageTo3DNet behind the GenerationModel protocol."""

    def __init__(self, device: torch.device, weights: Path | None = None) -> None:
        state, meta = load_state(weights)
        self.net = ImageTo3DNet()
        self.net.load_state_dict(state)
        self.net.eval().to(device)
        self.device = device
        self.name = DEFAULT_NAME
        self.version = str(meta.get("version", "v1"))
        self.meta = meta
        self.grid_size = GRID_SIZE
        self._per_item = activation_bytes_per_item(self.net)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return image_to_tensor(image)

    def forward_batch(self, batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            logits = self.net(normalise(batch.to(self.device, non_blocking=True)))
            return torch.sigmoid(logits).float().cpu()

    def estimate_batch_bytes(self, batch_size: int) -> int:
        return self._per_item * batch_size


def shipped_model(device: torch.device) -> GenerationModel:
    """The default factory (GENCLUSTER_MODEL_FACTORY=gencluster_workload.model:shipped_model)."""
    return ShippedModel(device)


def load_factory(path: str) -> Callable[[torch.device], GenerationModel]:
    """Resolve "package.module:callable"; raise ValueError with a readable message otherwise."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"model factory must look like 'module:callable', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import model factory module {module_name!r}: {exc}") from exc
    target: Any = module
    for part in attr.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise ValueError(f"{module_name!r} has no attribute {attr!r}")
    if not callable(target):
        raise ValueError(f"model factory {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def build_model(factory_path: str, device: torch.device) -> GenerationModel:
    """Build and check the model; a factory that returns the wrong shape fails at start."""
    model = load_factory(factory_path)(device)
    missing = [
        m
        for m in ("name", "version", "preprocess", "forward_batch", "estimate_batch_bytes")
        if not hasattr(model, m)
    ]
    if missing:
        raise TypeError(f"model from {factory_path!r} lacks {', '.join(missing)}")
    return model
