"""The gencluster generation workload: an image-to-3D PyTorch server (`gencluster serve`).

Modules: config (settings), model/network (the model and its plug-in protocol), imaging
(upload validation), inference (device-side batch execution), batcher (dynamic batching),
meshing (marching cubes, export), lru/redis_tier/cache (two-tier cache), gpu_memory (memory
readings), metrics (the contract), service (pipeline and lifecycle), http_api (routes),
server (entry point), synthetic/train (training data and script), bench (benchmarks).
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
