"""The shipped image-to-3D network: a 2-D CNN encoder and a 3-D convolutional occupancy decoder.

Why this shape: the camera is orthographic and frontal, so image (x, y) and grid (x, y) line up.
A global code (through a small bottleneck) carries the overall shape; skip connections lift 2-D
feature maps into 3-D (channels become depth) so silhouettes stay crisp. About 1.7 M parameters,
stored as float16 (~3 MB); a CPU forward of a batch of 8 takes tens of milliseconds.
"""

from __future__ import annotations

import torch
from torch import nn

IMAGE_SIZE = 64
GRID_SIZE = 32
MEAN = 0.5
STD = 0.25


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up3d(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose3d(cin, cout, 4, stride=2, padding=1, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class Lift(nn.Module):
    """2-D features (B, C, H, W) -> 3-D features (B, c, D=H, H, W) by a 1x1 conv and a reshape."""

    def __init__(self, cin: int, cout: int, depth: int) -> None:
        super().__init__()
        self.cout, self.depth = cout, depth
        self.proj = nn.Conv2d(cin, cout * depth, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        out: torch.Tensor = self.proj(x)
        return out.view(b, self.cout, self.depth, h, w)


class ImageTo3DNet(nn.Module):
    """RGB image (B, 3, 64, 64), normalised -> occupancy logits (B, 32, 32, 32) indexed [x, y, z].

    The 3-D trunk stops at 16^3; its last layer emits 8 channels that are shuffled into 2x2x2
    sub-voxels (the 3-D analogue of pixel shuffle), and a lifted 32x32 skip adds full-resolution
    detail. Convolutions at 32^3 would cost ten times more on a CPU for little gain.
    """

    def __init__(self, latent: int = 128) -> None:
        super().__init__()
        self.d1 = _down(3, 32)  # 32x32
        self.d2 = _down(32, 64)  # 16x16
        self.d3 = _down(64, 128)  # 8x8
        self.d4 = _down(128, 256)  # 4x4
        self.code = nn.Sequential(nn.Flatten(), nn.Linear(256 * 16, latent), nn.ReLU(inplace=True))
        self.seed = nn.Linear(latent, 32 * 4 * 4 * 4)
        self.u1 = _up3d(32, 32)  # 8^3
        self.s1 = Lift(128, 32, 8)
        self.u2 = _up3d(32, 16)  # 16^3
        self.s2 = Lift(64, 16, 16)
        self.head = nn.Conv3d(16, 8, 1)  # 8 sub-voxels per 16^3 voxel
        self.s3 = Lift(32, 1, 32)  # full-resolution skip straight to logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.d1(x)
        f2 = self.d2(f1)
        f3 = self.d3(f2)
        f4 = self.d4(f3)
        v = self.seed(self.code(f4)).view(-1, 32, 4, 4, 4)
        v = self.u1(v) + self.s1(f3)
        v = self.u2(v) + self.s2(f2)
        b = v.shape[0]
        head: torch.Tensor = self.head(v)
        sub = head.view(b, 2, 2, 2, 16, 16, 16)
        logits = sub.permute(0, 4, 1, 5, 2, 6, 3).reshape(b, 32, 32, 32)
        skip: torch.Tensor = self.s3(f1)
        logits = logits + skip[:, 0]  # (B, depth, rows = image y down, cols = x)
        # Rows run top to bottom (world y descending); depth has no preferred direction, the
        # network learns it. Reorder to the grid convention [x, y, z], every axis ascending.
        return logits.flip(2).permute(0, 3, 2, 1).contiguous()


def normalise(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1] -> network input."""
    return (images - MEAN) / STD
