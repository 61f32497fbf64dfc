"""The shipped model and its plug-in point: weights as documented, accuracy reproducible,
batching does not change results, factories are checked."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ROOT, sphere_photo
from PIL import Image

from gencluster_workload import synthetic
from gencluster_workload.model import (
    WEIGHTS_FILE,
    GenerationModel,
    ShippedModel,
    build_model,
    load_factory,
)
from gencluster_workload.train import iou, predict


@pytest.fixture(scope="module")
def model() -> ShippedModel:
    return ShippedModel(torch.device("cpu"))


def test_weights_are_small_load_safely_and_record_their_accuracy(model: ShippedModel) -> None:
    ref = resources.files("gencluster_workload") / "weights" / WEIGHTS_FILE
    assert ref.is_file() and len(ref.read_bytes()) < 5 * 1024 * 1024
    assert isinstance(model, GenerationModel)
    meta = model.meta
    assert meta["version"] == "v1" and meta["heldout_iou"] >= 0.6
    # docs/workload.md states the same figure the weights carry.
    doc = (ROOT / "docs" / "workload.md").read_text()
    assert re.search(rf"held-out IoU[^\n]*{meta['heldout_iou']:.3f}", doc), meta["heldout_iou"]


def test_heldout_accuracy_is_reproducible(model: ShippedModel) -> None:
    """Re-create part of the held-out set (the training script's seed + 1) and score it."""
    images, _, hard, _ = synthetic.make_dataset(100, seed=model.meta["seed"] + 1)
    score = float(iou(predict(model.net, images) > 0.5, hard).mean())
    assert score >= model.meta["heldout_iou"] - 0.06, score


def test_batched_forward_matches_one_by_one(model: ShippedModel) -> None:
    rng = np.random.default_rng(5)
    xs = [
        torch.from_numpy(synthetic.render(synthetic.random_shape(rng).sdf, rng).transpose(2, 0, 1))
        for _ in range(8)
    ]
    batched = model.forward_batch(torch.stack(xs))
    alone = torch.cat([model.forward_batch(x[None]) for x in xs])
    assert batched.shape == (8, 32, 32, 32)
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=0)


def test_sphere_photo_occupancy_is_a_ball(model: ShippedModel) -> None:
    grid = model.forward_batch(model.preprocess(Image.fromarray(sphere_photo()))[None])[0].numpy()
    axis = (np.arange(32) + 0.5) / 16 - 1
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    ball = np.sqrt(x**2 + y**2 + z**2) < 0.62
    assert float(iou((grid > 0.5)[None], ball[None])[0]) > 0.8


def test_forward_of_batch_8_is_fast(model: ShippedModel) -> None:
    import time

    x = torch.rand(8, 3, 64, 64)
    model.forward_batch(x)
    t0 = time.perf_counter()
    model.forward_batch(x)
    assert time.perf_counter() - t0 < 1.0


def test_factory_loading_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="module:callable"):
        load_factory("no_colon_here")
    with pytest.raises(ValueError, match="cannot import"):
        load_factory("no_such_module_xyz:make")
    with pytest.raises(ValueError, match="has no attribute"):
        load_factory("gencluster_workload.model:nope")
    with pytest.raises(TypeError, match="lacks"):
        build_model("fake_models:not_a_model", torch.device("cpu"))
    assert load_factory("gencluster_workload.model:shipped_model") is not None


def test_preprocess_handles_modes_and_aspect(model: ShippedModel) -> None:
    for img in (
        Image.new("RGBA", (120, 40), (10, 20, 30, 0)),
        Image.new("L", (30, 90), 7),
        Image.new("P", (50, 50)),
    ):
        t = model.preprocess(img)
        assert t.shape == (3, 64, 64) and 0.0 <= float(t.min()) <= float(t.max()) <= 1.0
