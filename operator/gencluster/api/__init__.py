"""The GenerationCluster API: typed spec and status, conditions, and the CRD generated from them."""
