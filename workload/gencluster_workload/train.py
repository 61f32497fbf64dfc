"""Train the shipped model on synthetic renders, report held-out IoU, write the weights.

Why in the package: the weights are a build artefact anyone can reproduce on a CPU in minutes:
    python -m gencluster_workload.train            # writes gencluster_workload/weights/*.pt
Data is made in-process (see synthetic.py); nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from . import synthetic
from .model import WEIGHTS_FILE, load_state
from .network import GRID_SIZE, IMAGE_SIZE, ImageTo3DNet, normalise

VERSION = "v1"


def soft_iou_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    p = torch.sigmoid(logits)
    inter = (p * target).sum(dim=(1, 2, 3))
    union = (p + target - p * target).sum(dim=(1, 2, 3))
    return (1.0 - (inter + 1.0) / (union + 1.0)).mean()


def iou(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per-sample volumetric IoU of boolean grids (n, G, G, G)."""
    inter = np.logical_and(pred, truth).sum(axis=(1, 2, 3))
    union = np.logical_or(pred, truth).sum(axis=(1, 2, 3))
    return np.asarray(inter / np.maximum(union, 1))


def predict(net: ImageTo3DNet, images: np.ndarray, batch: int = 64) -> np.ndarray:
    net.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(images), batch):
            x = normalise(torch.from_numpy(images[i : i + batch]))
            out.append(torch.sigmoid(net(x)).numpy())
    return np.concatenate(out)


def evaluate(net: ImageTo3DNet, images: np.ndarray, hard: np.ndarray, kinds: list[str]) -> dict[str, Any]:
    scores = iou(predict(net, images) > 0.5, hard)
    per_kind = {
        k: round(float(scores[[i for i, kk in enumerate(kinds) if kk == k]].mean()), 4)
        for k in sorted(set(kinds))
    }
    return {"iou": round(float(scores.mean()), 4), "per_kind": per_kind, "n": len(scores)}


def augment(
    images: torch.Tensor, soft: torch.Tensor, gen: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror left-right (image x and grid x together) and jitter brightness/contrast."""
    flip = torch.rand(images.shape[0], generator=gen) < 0.5
    images = images.clone()
    soft = soft.clone()
    images[flip] = images[flip].flip(-1)
    soft[flip] = soft[flip].flip(1)
    gain = 0.8 + 0.4 * torch.rand(images.shape[0], 1, 1, 1, generator=gen)
    bias = 0.1 * (torch.rand(images.shape[0], 1, 1, 1, generator=gen) - 0.5)
    return (images * gain + bias).clamp(0.0, 1.0), soft


def train(args: argparse.Namespace) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    t0 = time.monotonic()
    x_tr, y_tr, _, _ = synthetic.make_dataset(args.train, args.seed, IMAGE_SIZE, GRID_SIZE)
    x_va, _, h_va, k_va = synthetic.make_dataset(args.val, args.seed + 1, IMAGE_SIZE, GRID_SIZE)
    t_data = time.monotonic() - t0
    print(f"data: {args.train} train / {args.val} held-out samples in {t_data:.0f}s", flush=True)

    net = ImageTo3DNet()
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = math.ceil(args.train / args.batch)
    total = steps_per_epoch * args.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total)
    gen = torch.Generator().manual_seed(args.seed)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    step = 0
    t1 = time.monotonic()
    for epoch in range(args.epochs):
        net.train()
        order = torch.randperm(args.train, generator=gen)
        running = 0.0
        for i in range(0, args.train, args.batch):
            idx = order[i : i + args.batch]
            images, target = augment(xt[idx], yt[idx], gen)
            logits = net(normalise(images))
            loss = F.binary_cross_entropy_with_logits(logits, target) + soft_iou_loss(logits, target)
            opt.zero_grad(set_to_none=True)
            torch.autograd.backward([loss])
            opt.step()
            sched.step()
            step += 1
            running += loss.item()
        msg = f"epoch {epoch + 1}/{args.epochs} loss {running / steps_per_epoch:.4f}"
        if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
            msg += f" held-out IoU {evaluate(net, x_va, h_va, k_va)['iou']:.4f}"
        print(f"{msg} ({time.monotonic() - t1:.0f}s)", flush=True)
    t_train = time.monotonic() - t1

    # Ship float16 (half the bytes) and report the accuracy of exactly what ships.
    state = {
        k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in net.state_dict().items()
    }
    meta: dict[str, Any] = {
        "version": VERSION,
        "image_size": IMAGE_SIZE,
        "grid_size": GRID_SIZE,
        "train_samples": args.train,
        "heldout_samples": args.val,
        "epochs": args.epochs,
        "seed": args.seed,
        "torch": str(torch.__version__),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "meta": meta}, out)
    shipped = ImageTo3DNet()
    shipped.load_state_dict(load_state(out)[0])
    report = evaluate(shipped, x_va, h_va, k_va)
    meta["heldout_iou"] = report["iou"]
    meta["heldout_iou_per_kind"] = report["per_kind"]
    torch.save({"state_dict": state, "meta": meta}, out)
    result = {
        **meta,
        "weights": str(out),
        "weights_bytes": out.stat().st_size,
        "data_seconds": round(t_data),
        "train_seconds": round(t_train),
        "threads": args.threads,
    }
    return result


def parse_args(argv: list[str]) -> argparse.Namespace:
    default_out = Path(__file__).parent / "weights" / WEIGHTS_FILE
    p = argparse.ArgumentParser(prog="python -m gencluster_workload.train", description=__doc__)
    p.add_argument("--train", type=int, default=8000, help="training samples")
    p.add_argument("--val", type=int, default=500, help="held-out samples (other seed)")
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--eval-every", type=int, default=7)
    p.add_argument("--out", default=str(default_out))
    p.add_argument("--report", default="", help="also write the JSON report here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    result = train(args)
    text = json.dumps(result, indent=2)
    print(text)
    if args.report:
        Path(args.report).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
