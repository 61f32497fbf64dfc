#!/usr/bin/env bash
# For users with Docker: a kind cluster with the local cluster's node labels and fake GPUs.
#   GPUS=8 KIND_CLUSTER_NAME=gencluster hack/kind-up.sh
# It cannot run on machines without a Docker engine (use `make cluster-up` there).
#
# GPUs: kind nodes have none. On real GPU nodes install NVIDIA's device plugin (or the GPU
# operator), which advertises nvidia.com/gpu and sets NVIDIA_VISIBLE_DEVICES in pods. Here, for
# testing, the node's status gets a fake nvidia.com/gpu capacity (a JSON patch on /status, the
# kubelet copies it into allocatable): pods schedule against it but get no device environment
# (the local cluster's fake-gpu-device-plugin provides that; see docs/local-cluster.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/versions.env"
NAME=${KIND_CLUSTER_NAME:-gencluster}
GPUS=${GPUS:-8}
KIND=${KIND:-$(command -v kind || echo "${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}/bin/kind")}
command -v docker >/dev/null || { echo "kind-up: docker is required (no Docker here? use 'make cluster-up')" >&2; exit 1; }
[[ -x $KIND ]] || { bash "$here/build-binaries.sh" kind kubectl; KIND=${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}/bin/kind; }
KUBECTL=$(command -v kubectl || echo "${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}/bin/kubectl")

if ! "$KIND" get clusters 2>/dev/null | grep -qx "$NAME"; then
  "$KIND" create cluster --name "$NAME" --config "$here/kind-config.yaml" \
    --image "${KIND_NODE_IMAGE:-kindest/node:$KUBERNETES_VERSION}" --wait 120s
fi
"$KUBECTL" config use-context "kind-$NAME" >/dev/null
node=$("$KUBECTL" get nodes -o jsonpath='{.items[0].metadata.name}')
"$KUBECTL" label node "$node" --overwrite "nvidia.com/gpu.count=$GPUS" >/dev/null
# Fake GPU capacity (kubectl >= 1.24: --subresource).
"$KUBECTL" patch node "$node" --subresource=status --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/status/capacity/nvidia.com~1gpu\",\"value\":\"$GPUS\"}]" >/dev/null
for _ in $(seq 60); do
  [[ $("$KUBECTL" get node "$node" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}') == "$GPUS" ]] && break
  sleep 1
done
echo "kind cluster '$NAME' ready: node $node with $GPUS fake nvidia.com/gpu (capacity patch, no device env)"
echo "Load images with: kind load docker-image --name $NAME localhost/gencluster-operator:dev localhost/gencluster-workload:dev"
echo "Run the cluster tests against it: GENCLUSTER_KUBECONFIG=\$HOME/.kube/config KIND_CLUSTER_NAME=$NAME GENCLUSTER_NODE=$node pytest -m cluster"
