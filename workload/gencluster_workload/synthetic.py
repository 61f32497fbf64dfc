"""Synthetic training data: shaded renders of primitives and their unions, with occupancy grids.

Why: the shipped model must be trainable from nothing on a CPU in minutes, with no download.
Every shape is an analytic signed distance function (SDF); the image is sphere-traced from it
(orthographic camera on +z looking down -z, image x = world x, image up = world y) and the target
is the SDF sampled on the voxel grid. The grid's axes are (x, y, z) in the cube [-1, 1]^3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SDF = Callable[[np.ndarray], np.ndarray]
"""Maps points of shape (N, 3) to signed distances (N,), negative inside."""

KINDS = ("sphere", "box", "cylinder", "torus", "composite")


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3-D rotation matrix (QR of a Gaussian matrix)."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _placed(local: SDF, center: np.ndarray, rot: np.ndarray) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        return local((p - center) @ rot)

    return sdf


def sphere(radius: float) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        return np.asarray(np.linalg.norm(p, axis=1) - radius)

    return sdf


def box(half: np.ndarray) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        q = np.abs(p) - half
        outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
        inside = np.minimum(q.max(axis=1), 0.0)
        return np.asarray(outside + inside)

    return sdf


def cylinder(radius: float, half_height: float) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        d = np.stack([np.hypot(p[:, 0], p[:, 2]) - radius, np.abs(p[:, 1]) - half_height], axis=1)
        return np.asarray(np.minimum(d.max(axis=1), 0.0) + np.linalg.norm(np.maximum(d, 0.0), axis=1))

    return sdf


def torus(major: float, minor: float) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        return np.asarray(np.hypot(np.hypot(p[:, 0], p[:, 2]) - major, p[:, 1]) - minor)

    return sdf


def union(parts: list[SDF]) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        out = parts[0](p)
        for part in parts[1:]:
            out = np.minimum(out, part(p))
        return out

    return sdf


@dataclass(frozen=True)
class Shape:
    kind: str
    sdf: SDF


def random_primitive(rng: np.random.Generator, kind: str, scale: float = 1.0) -> SDF:
    """One primitive of `kind`, randomly sized, rotated and placed, inside the unit cube."""
    rot = _random_rotation(rng)
    if kind == "sphere":
        size = rng.uniform(0.35, 0.8) * scale
        local = sphere(size)
    elif kind == "box":
        half = rng.uniform(0.2, 0.55, size=3) * scale
        size = float(np.linalg.norm(half))
        local = box(half)
    elif kind == "cylinder":
        r, h = rng.uniform(0.25, 0.55) * scale, rng.uniform(0.25, 0.65) * scale
        size = float(np.hypot(r, h))
        local = cylinder(r, h)
    elif kind == "torus":
        major = rng.uniform(0.35, 0.6) * scale
        minor = rng.uniform(0.1, 0.25) * min(major / 0.35, 1.0) * scale
        size = major + minor
        local = torus(major, minor)
    else:
        raise ValueError(f"unknown primitive {kind!r}")
    room = max(0.0, 0.92 - size)
    center = rng.uniform(-1.0, 1.0, size=3) * min(room, 0.25) * np.array([1.0, 1.0, 0.4])
    return _placed(local, center, rot)


def _shifted(part: SDF, offset: np.ndarray) -> SDF:
    def sdf(p: np.ndarray) -> np.ndarray:
        return part(p - offset)

    return sdf


def random_shape(rng: np.random.Generator, kind: str | None = None) -> Shape:
    """A random shape; `composite` is a union of 2-3 smaller primitives around the centre."""
    kind = kind or str(rng.choice(KINDS))
    if kind != "composite":
        return Shape(kind, random_primitive(rng, kind))
    parts: list[SDF] = []
    for _ in range(int(rng.integers(2, 4))):
        sub = str(rng.choice(KINDS[:4]))
        part = random_primitive(rng, sub, scale=0.6)
        offset = rng.uniform(-0.3, 0.3, size=3) * np.array([1.0, 1.0, 0.5])
        parts.append(_shifted(part, offset))
    return Shape(kind, union(parts))


def grid_points(size: int) -> np.ndarray:
    """Voxel-centre coordinates of a size^3 grid over [-1, 1]^3, as (size^3, 3) in (x, y, z) order."""
    axis = (np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0
    gx, gy, gz = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)


def occupancy(sdf: SDF, size: int, soft: bool = True) -> np.ndarray:
    """Occupancy on a size^3 grid indexed [x, y, z]; `soft` ramps over one voxel (partial volume)."""
    d = sdf(grid_points(size)).reshape(size, size, size)
    if not soft:
        return (d < 0).astype(np.float32)
    voxel = 2.0 / size
    return np.clip(0.5 - d / voxel, 0.0, 1.0).astype(np.float32)


def _normals(sdf: SDF, p: np.ndarray, eps: float = 2e-3) -> np.ndarray:
    offsets = np.eye(3) * eps
    grad = np.stack([sdf(p + o) - sdf(p - o) for o in offsets], axis=1)
    return np.asarray(grad / (np.linalg.norm(grad, axis=1, keepdims=True) + 1e-9))


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    style = rng.integers(0, 3)
    base = rng.uniform(0.0, 1.0, size=3)
    if style == 0:
        img = np.broadcast_to(base, (size, size, 3)).copy()
    else:
        other = rng.uniform(0.0, 1.0, size=3)
        t = np.linspace(0.0, 1.0, size)[:, None, None]
        img = base * (1 - t) + other * t
        img = np.broadcast_to(img, (size, size, 3)).copy()
        if style == 2:
            img = img.transpose(1, 0, 2).copy()
    return img


def render(sdf: SDF, rng: np.random.Generator, size: int = 64, steps: int = 48) -> np.ndarray:
    """Sphere-trace `sdf` into a shaded RGB float image (size, size, 3) in [0, 1].

    Random albedo, light direction (from the camera's side), ambient, specular and background,
    plus sensor noise, so the model sees something closer to a photo than a flat silhouette.
    """
    axis = (np.arange(size) + 0.5) * (2.0 / size) - 1.0
    xs, ys = np.meshgrid(axis, -axis)  # row 0 is the top of the image (y = +1)
    origin = np.stack([xs.ravel(), ys.ravel(), np.full(xs.size, 1.6)], axis=1)
    t = np.zeros(xs.size)
    active = np.arange(xs.size)
    hit = np.zeros(xs.size, dtype=bool)
    for _ in range(steps):
        if active.size == 0:
            break
        p = origin[active].copy()
        p[:, 2] -= t[active]
        d = sdf(p)
        done = d < 1e-3
        hit[active[done]] = True
        t[active] += np.maximum(d, 0.0)
        gone = t[active] > 3.2
        active = active[~done & ~gone]
    img = _background(rng, size).reshape(-1, 3)
    if hit.any():
        p = origin[hit].copy()
        p[:, 2] -= t[hit]
        n = _normals(sdf, p)
        light = np.array([rng.uniform(-0.8, 0.8), rng.uniform(-0.2, 0.9), rng.uniform(0.5, 1.0)])
        light /= np.linalg.norm(light)
        albedo = rng.uniform(0.15, 1.0, size=3)
        ambient = rng.uniform(0.08, 0.35)
        diffuse = np.clip(n @ light, 0.0, 1.0)
        half = light + np.array([0.0, 0.0, 1.0])
        half /= np.linalg.norm(half)
        spec = np.clip(n @ half, 0.0, 1.0) ** rng.uniform(8, 40) * rng.uniform(0.0, 0.5)
        img[hit] = albedo * (ambient + (1 - ambient) * diffuse[:, None]) + spec[:, None]
    img = img.reshape(size, size, 3) + rng.normal(0.0, rng.uniform(0.0, 0.03), (size, size, 3))
    return np.asarray(np.clip(img, 0.0, 1.0), dtype=np.float32)


def make_dataset(
    n: int, seed: int, image_size: int = 64, grid: int = 32
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """n samples: images (n, 3, H, W), soft occupancy (n, G, G, G), hard occupancy, kinds."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, image_size, image_size), dtype=np.float32)
    soft = np.empty((n, grid, grid, grid), dtype=np.float32)
    hard = np.empty((n, grid, grid, grid), dtype=np.bool_)
    kinds: list[str] = []
    for i in range(n):
        shape = random_shape(rng, KINDS[i % len(KINDS)])
        images[i] = render(shape.sdf, rng, image_size).transpose(2, 0, 1)
        d = shape.sdf(grid_points(grid)).reshape(grid, grid, grid)
        soft[i] = np.clip(0.5 - d / (2.0 / grid), 0.0, 1.0)
        hard[i] = d < 0
        kinds.append(shape.kind)
    return images, soft, hard, kinds
