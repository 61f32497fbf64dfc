"""Occupancy grid -> triangle mesh (marching cubes) -> GLB / OBJ / PLY bytes.

Why resample before meshing: the network predicts a 32^3 field; the requested resolution
(16..128) trilinearly resamples that continuous field, so higher resolutions give smoother
surfaces rather than bigger staircases. The volume is padded with empty space so every mesh is
closed (watertight where marching cubes allows).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MIN_RESOLUTION = 16
MAX_RESOLUTION = 128
DEFAULT_RESOLUTION = 64
FORMATS = {
    "glb": "model/gltf-binary",
    "obj": "model/obj",
    "ply": "application/octet-stream",
}
LEVEL = 0.5


class EmptyShape(ValueError):
    """The model found no surface (everything empty or everything full)."""


def resample(grid: np.ndarray, resolution: int) -> np.ndarray:
    """Resample a cube grid of cell-centred samples to resolution^3 (trilinear)."""
    if grid.shape[0] == resolution:
        return np.ascontiguousarray(grid, dtype=np.float32)
    t = torch.from_numpy(np.ascontiguousarray(grid, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=(resolution,) * 3, mode="trilinear", align_corners=False)
    return out[0, 0].numpy()


def grid_to_arrays(grid: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (in [-1, 1]^3, x/y/z) and faces of the LEVEL iso-surface at `resolution`."""
    from skimage import measure

    marching_cubes: Any = measure.marching_cubes

    vol = np.pad(resample(grid, resolution), 1, mode="constant", constant_values=0.0)
    if float(vol.max()) <= LEVEL:
        raise EmptyShape("no object found in the image (the predicted volume is empty)")
    step = 2.0 / resolution
    verts, faces, _normals, _values = marching_cubes(
        vol, level=LEVEL, spacing=(step, step, step), allow_degenerate=False
    )
    # Padded index i is the cell centre -1 + (i - 1 + 0.5) * step.
    verts = verts - 1.0 - 0.5 * step
    # skimage winds faces so normals point up the field (inwards here); flip them outwards.
    return verts.astype(np.float32), np.ascontiguousarray(faces[:, ::-1], dtype=np.int64)


def export(verts: np.ndarray, faces: np.ndarray, fmt: str) -> bytes:
    """Mesh bytes in `fmt` (glb, obj, ply) through trimesh."""
    import trimesh

    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    mesh = trimesh.Trimesh(vertices=verts, faces=faces, process=False)
    data = mesh.export(file_type=fmt)
    return data.encode() if isinstance(data, str) else bytes(data)


def grid_to_mesh_bytes(grid: np.ndarray, resolution: int, fmt: str) -> bytes:
    verts, faces = grid_to_arrays(grid, resolution)
    return export(verts, faces, fmt)
