# Local Kubernetes cluster targets; included by the top-level Makefile (`include hack/cluster.mk`).
# Paths are relative to this file's directory, so `make -f hack/cluster.mk ...` works as well.
GENCLUSTER_HACK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

.PHONY: deps binaries cluster-up cluster-down cluster-status cluster-purge images image-import kind-up kind-down test-cluster

deps: ## install the Debian packages the local cluster and image builds need
	bash $(GENCLUSTER_HACK)/install-deps.sh

binaries: deps ## build (once, cached in $GENCLUSTER_CACHE/bin) the Kubernetes, etcd, CoreDNS, helm binaries
	bash $(GENCLUSTER_HACK)/build-binaries.sh

cluster-up: deps binaries ## start the local cluster (idempotent); GPUS=8 fake nvidia.com/gpu
	bash $(GENCLUSTER_HACK)/cluster-up.sh

cluster-down: ## stop the local cluster and clean the host (PURGE=1: also certs; PURGE_IMAGES=1: images)
	bash $(GENCLUSTER_HACK)/cluster-down.sh

cluster-purge: ## cluster-down and remove .cluster entirely
	PURGE=1 bash $(GENCLUSTER_HACK)/cluster-down.sh

cluster-status: ## components, memory, node, fake GPUs
	bash $(GENCLUSTER_HACK)/cluster-status.sh

images: deps binaries ## build the base, operator and workload images and import them into the node
	bash $(GENCLUSTER_HACK)/images.sh all

image-import: deps binaries ## import IMAGES="localhost/x:dev ..." (already built with podman) into the node
	bash $(GENCLUSTER_HACK)/images.sh import $(IMAGES)

kind-up: ## for Docker users: a kind cluster with the same node labels
	bash $(GENCLUSTER_HACK)/kind-up.sh

kind-down:
	kind delete cluster --name $${KIND_CLUSTER_NAME:-gencluster}

test-cluster: ## the local cluster's own tests (brings the cluster up if needed)
	$(if $(PY),$(PY),python3) -m pytest tests/cluster -m cluster -v
