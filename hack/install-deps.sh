#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the image builds need. Idempotent: only
# missing packages are installed (apt-get update runs only then). Debian bookworm, as root.
set -euo pipefail
PACKAGES=(
  containerd runc containernetworking-plugins   # container runtime + CNI bridge/host-local/portmap
  iptables conntrack socat ethtool ipset iproute2 # kube-proxy, kubelet, port-forward
  etcd-client                                   # etcdctl for debugging (etcd itself is built, see versions.env)
  openssl curl ca-certificates python3          # certificates, health checks, hack/mkimage.py
  podman buildah mmdebstrap uidmap fuse-overlayfs # images without a registry (hack/images.sh)
  redis-server                                  # redis-cli / redis-server for tests outside the cluster
)
missing=()
for p in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "[install-deps] all ${#PACKAGES[@]} packages present"
  exit 0
fi
SUDO=; [[ $(id -u) == 0 ]] || SUDO=sudo
echo "[install-deps] installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
# The Debian packages start nothing here (no systemd); the cluster runs its own containerd.
if ! command -v go >/dev/null; then
  echo "[install-deps] NOTE: a Go toolchain (>= 1.25, not Debian's) is needed by hack/build-binaries.sh" >&2
fi
