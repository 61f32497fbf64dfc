"""gencluster: a Kubernetes operator for GPU generation services."""

__version__ = "0.1.0"

GROUP = "orfeas.ai"
VERSION = "v1alpha1"
KIND = "GenerationCluster"
PLURAL = "generationclusters"
API_VERSION = f"{GROUP}/{VERSION}"
