"""The input pool: N distinct small PNG photos of simple objects, made in-process.

Why generated: no data set to ship or download, yet every image is a plausible input for an
image-to-3D model (a shaded silhouette of a sphere, box, cylinder, cone, torus or capsule on a light
backdrop) and every one is byte-distinct, so each is its own cache key. Seeded: the same
(n, size, seed) always gives the same pool, so runs are comparable.
"""

from __future__ import annotations

import hashlib
import io
import random

from PIL import Image, ImageDraw

KINDS = ("sphere", "box", "cylinder", "cone", "torus", "capsule")


def _shade(rgb: tuple[int, int, int], k: float) -> tuple[int, int, int]:
    r, g, b = (max(0, min(255, int(c * k))) for c in rgb)
    return (r, g, b)


def _draw(kind: str, size: int, rng: random.Random) -> Image.Image:
    bg = tuple(rng.randint(200, 245) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    colour = (rng.randint(30, 220), rng.randint(30, 220), rng.randint(30, 220))
    s = size * rng.uniform(0.35, 0.7)  # object extent
    cx = size / 2 + rng.uniform(-0.15, 0.15) * size
    cy = size / 2 + rng.uniform(-0.15, 0.15) * size
    x0, y0, x1, y1 = cx - s / 2, cy - s / 2, cx + s / 2, cy + s / 2
    if kind == "sphere":
        d.ellipse((x0, y0, x1, y1), fill=colour)
        hx, hy, hr = cx - s * 0.18, cy - s * 0.18, s * 0.16  # highlight
        d.ellipse((hx - hr, hy - hr, hx + hr, hy + hr), fill=_shade(colour, 1.35))
    elif kind == "box":
        depth = s * rng.uniform(0.12, 0.25)
        d.polygon([(x0, y0), (x0 + depth, y0 - depth), (x1 + depth, y0 - depth), (x1, y0)],
                  fill=_shade(colour, 1.3))
        d.polygon([(x1, y0), (x1 + depth, y0 - depth), (x1 + depth, y1 - depth), (x1, y1)],
                  fill=_shade(colour, 0.7))
        d.rectangle((x0, y0, x1, y1), fill=colour)
    elif kind == "cylinder":
        cap = s * rng.uniform(0.1, 0.2)
        w = s * rng.uniform(0.25, 0.45)
        d.rectangle((cx - w, y0 + cap, cx + w, y1 - cap), fill=colour)
        d.ellipse((cx - w, y1 - 2 * cap, cx + w, y1), fill=colour)
        d.ellipse((cx - w, y0, cx + w, y0 + 2 * cap), fill=_shade(colour, 1.3))
    elif kind == "cone":
        base = s * rng.uniform(0.1, 0.18)
        d.ellipse((x0, y1 - base, x1, y1 + base), fill=_shade(colour, 0.8))
        d.polygon([(cx, y0), (x0, y1), (x1, y1)], fill=colour)
    elif kind == "torus":
        d.ellipse((x0, y0, x1, y1), fill=colour)
        hole = s * rng.uniform(0.12, 0.3)
        d.ellipse((cx - hole, cy - hole, cx + hole, cy + hole), fill=bg)
    else:  # capsule
        w = s * rng.uniform(0.2, 0.35)
        d.rounded_rectangle((cx - w, y0, cx + w, y1), radius=w, fill=colour)
    return img


def make_pool(n: int, size: int = 64, seed: int = 0) -> list[bytes]:
    """n byte-distinct PNGs of size x size pixels, kinds in turn, parameters drawn from seed."""
    if n < 1:
        raise ValueError(f"pool size must be >= 1, got {n}")
    if not 16 <= size <= 1024:
        raise ValueError(f"image size must be in 16..1024, got {size}")
    rng = random.Random(seed)
    seen: set[bytes] = set()
    pool: list[bytes] = []
    attempts = 0
    while len(pool) < n:
        attempts += 1
        if attempts > 20 * n + 100:
            raise ValueError(f"could not draw {n} distinct {size}x{size} images; use a larger size")
        buf = io.BytesIO()
        _draw(KINDS[len(pool) % len(KINDS)], size, rng).save(buf, format="PNG")
        data = buf.getvalue()
        digest = hashlib.sha256(data).digest()
        if digest not in seen:
            seen.add(digest)
            pool.append(data)
    return pool
