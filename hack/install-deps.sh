#!/usr/bin/env bash
# Installs the Debian packages the local cluster, the venv and the image builds need. Idempotent:
# only missing packages are installed (apt-get update runs only then). Debian bookworm, as root.
# Every make target that needs them (install, binaries, cluster-up, images, test, demo) runs this
# first, so a fresh clone needs nothing done by hand.
#   hack/install-deps.sh           install what is missing
#   hack/install-deps.sh --check   say what is missing and what would run; install nothing (exit 1 if any)
set -euo pipefail
CHECK=0; [[ ${1:-} == --check ]] && CHECK=1
PACKAGES=(
  containerd runc containernetworking-plugins   # container runtime + CNI bridge/host-local/portmap
  iptables conntrack socat ethtool ipset iproute2 # kube-proxy, kubelet, port-forward
  etcd-client                                   # etcdctl for debugging (etcd itself is built, see versions.env)
  openssl curl ca-certificates python3 python3-venv # certificates, health checks, hack/mkimage.py, venv
  git make procps psmisc util-linux              # the Makefile, process and mount handling
  podman buildah mmdebstrap uidmap fuse-overlayfs # images without a registry (hack/images.sh)
  redis-server                                  # redis-cli / redis-server for tests outside the cluster
  chromium chromium-driver                      # the dashboard's browser tests (headless)
)
GO_MIN=1.25
go_ok() {  # a Go toolchain new enough for hack/build-binaries.sh (Debian's bookworm Go is too old)
  local v; v=$(go env GOVERSION 2>/dev/null) || return 1; v=${v#go}
  [[ $(printf '%s\n%s\n' "$GO_MIN" "$v" | sort -V | head -1) == "$GO_MIN" ]]
}
missing=()
for p in "${PACKAGES[@]}"; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
# node and npm for the dashboard's charting library (hack/dashboard-assets.sh): Debian's, unless
# a node with npm is already installed (e.g. NodeSource's nodejs, which bundles npm).
command -v npm >/dev/null || for p in nodejs npm; do
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
go_ok || echo "[install-deps] WARNING: Go >= $GO_MIN is needed to build the cluster binaries (hack/build-binaries.sh); found: $(go env GOVERSION 2>/dev/null || echo none)" >&2
if ((${#missing[@]} == 0)); then
  echo "[install-deps] all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi
SUDO=; [[ $(id -u) == 0 ]] || SUDO="sudo "
if ((CHECK)); then
  echo "[install-deps] missing: ${missing[*]}"
  echo "[install-deps] would run: ${SUDO}apt-get update && ${SUDO}apt-get install -y ${missing[*]}"
  exit 1
fi
echo "[install-deps] installing ${#missing[@]} Debian packages (about a minute): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
start=$SECONDS
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
# The Debian packages start nothing here (no systemd); the cluster runs its own containerd.
echo "[install-deps] installed in $((SECONDS - start)) s"
