#!/usr/bin/env bash
# Builds the Kubernetes, helm, kind and CoreDNS binaries from the Go module proxy, pinned in
# hack/versions.env, into a cache outside the clone. Only the first run pays; later runs link.
#
# `go install k8s.io/kubernetes/cmd/...@vX` refuses modules with replace directives, so each
# Kubernetes build goes through a small wrapper module that requires k8s.io/kubernetes and
# replaces every k8s.io/<staging> module with its published v0.Y.Z.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
CACHE=${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}
BIN=$CACHE/bin
export GOPATH=${GOPATH:-$CACHE/gopath} GOCACHE=${GOCACHE:-$CACHE/gocache} GOFLAGS=-mod=mod
export CGO_ENABLED=${CGO_ENABLED:-0} GOTOOLCHAIN=local
mkdir -p "$BIN"
log() { printf '[build-binaries] %s\n' "$*" >&2; }
# Rough cold build times on 2 cores (measured, docs/local-cluster.md), for the progress lines.
declare -A ETA=([kube-apiserver]=200 [kube-controller-manager]=120 [kube-scheduler]=45 [kubelet]=60
  [kube-proxy]=30 [kubectl]=45 [helm]=60 [coredns]=90 [etcd]=60 [crictl]=20 [prometheus]=180
  [promtool]=30 [kind]=30 [jaeger]=780)
STEP=0 STEPS=0 LEFT=0
progress() {  # progress NAME: "[3/12] building NAME (about 1 min; about 9 min left in all)"
  local name=$1 eta=${ETA[$1]:-10}
  STEP=$((STEP + 1)); LEFT=$((LEFT > eta ? LEFT - eta : 0))
  log "[$STEP/$STEPS] building $name (about $(((eta + 30) / 60)) min; about $(((LEFT + eta + 30) / 60)) min left in all)"
}

k8s_wrapper() {
  local dir=$CACHE/src/k8s-$KUBERNETES_VERSION staging_minor=${KUBERNETES_VERSION/v1./v0.}
  if [[ ! -f $dir/go.sum ]]; then
    log "preparing wrapper module for k8s.io/kubernetes $KUBERNETES_VERSION (downloads ~1 GiB of modules once)"
    mkdir -p "$dir"
    local gomod
    gomod=$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
    {
      echo "module local/k8s-build"
      echo "go $(sed -n 's/^go \([0-9.]*\).*/\1/p' "$gomod")"
      echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
      sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_minor"'#p' "$gomod"
    } >"$dir/go.mod"
    cat >"$dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubectl/pkg/cmd"
)
GO
    (cd "$dir" && go mod tidy -e >/dev/null 2>&1 || true; go mod download)
    # go mod tidy may drop requirements go install needs; pin the k8s.io/kubernetes version back.
    (cd "$dir" && go get "k8s.io/kubernetes@$KUBERNETES_VERSION" >/dev/null)
  fi
  echo "$dir"
}

build_k8s() {
  local name=$1 pkg=$2 out=$BIN/$1-$KUBERNETES_VERSION
  [[ -x $out ]] && return 0
  local dir; dir=$(k8s_wrapper)
  progress "$name"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "-s -w \
      -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION \
      -X k8s.io/component-base/version.gitMajor=1 \
      -X k8s.io/component-base/version.gitMinor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2) \
      -X k8s.io/client-go/pkg/version.gitVersion=$KUBERNETES_VERSION" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - start)) s"
}

build_module() {  # name version go-package-path@version
  local name=$1 version=$2 target=$3 out=$BIN/$1-$2
  [[ -x $out ]] && return 0
  progress "$name"
  local start=$SECONDS tmp; tmp=$(mktemp -d)
  GOBIN=$tmp go install -trimpath -ldflags "-s -w" "$target"
  mv "$tmp/$(basename "${target%@*}")" "$out"; rm -rf "$tmp"
  log "built $name in $((SECONDS - start)) s"
}

# Modules whose go.mod has replace directives (etcd's server, Jaeger) cannot be `go install`ed;
# a wrapper module that requires them builds the same package (their replaces are ignored
# there; EXTRA go.mod lines can restate the ones that matter).
build_wrapped() {  # name version module package [extra go.mod lines]
  local name=$1 version=$2 module=$3 pkg=$4 extra=${5:-} out=$BIN/$1-$2
  [[ -x $out ]] && return 0
  local dir=$CACHE/src/$name-$version
  if [[ ! -f $dir/go.sum ]]; then
    mkdir -p "$dir"
    printf 'module local/%s-build\n\ngo 1.23\n\nrequire %s %s\n%s\n' "$name" "$module" "$version" "$extra" >"$dir/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >"$dir/tools.go"
    (cd "$dir" && go mod tidy >/dev/null 2>&1 || go mod download)
  fi
  progress "$name"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - start)) s"
}

# The project's own small Go programs (hack/deviceplugin): keyed by a hash of their sources.
local_tools_version() {
  (cd "$here/deviceplugin" && cat go.mod go.sum $(find . -name '*.go' | sort) | sha256sum | cut -c1-12)
}
build_local() {  # name package-dir-relative-to-hack/deviceplugin
  local name=$1 pkg=$2 version; version=$(local_tools_version)
  local out=$BIN/$name-$version
  [[ -x $out ]] && return 0
  progress "$name"
  local start=$SECONDS
  (cd "$here/deviceplugin" && go build -trimpath -ldflags "-s -w" -o "$out.tmp" "$pkg")
  mv "$out.tmp" "$out"
  log "built $name in $((SECONDS - start)) s"
}

wanted=${*:-kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl helm coredns etcd crictl fake-gpu-device-plugin pause prometheus promtool jaeger}
version_of() {
  case $1 in
    helm) echo "$HELM_VERSION" ;; kind) echo "$KIND_VERSION" ;; coredns) echo "$COREDNS_VERSION" ;;
    etcd) echo "$ETCD_VERSION" ;; crictl) echo "$CRICTL_VERSION" ;;
    prometheus|promtool) echo "$PROMETHEUS_VERSION" ;; jaeger) echo "$JAEGER_VERSION" ;;
    fake-gpu-device-plugin|pause) local_tools_version ;; *) echo "$KUBERNETES_VERSION" ;;
  esac
}
for b in $wanted; do
  [[ -x $BIN/$b-$(version_of "$b") ]] || { STEPS=$((STEPS + 1)); LEFT=$((LEFT + ${ETA[$b]:-10})); }
done
((STEPS == 0)) || log "$STEPS binaries to build from source (cached in $BIN afterwards): about $(((LEFT + 30) / 60)) min on 2 cores"
for b in $wanted; do
  case $b in
    kube-apiserver|kube-controller-manager|kube-scheduler|kube-proxy|kubelet)
      build_k8s "$b" "k8s.io/kubernetes/cmd/$b" ;;
    kubectl) build_k8s kubectl k8s.io/kubernetes/cmd/kubectl ;;
    helm) build_module helm "$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ;;
    kind) build_module kind "$KIND_VERSION" "sigs.k8s.io/kind@$KIND_VERSION" ;;
    coredns) build_module coredns "$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION" ;;
    etcd) build_wrapped etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3 ;;
    crictl) build_module crictl "$CRICTL_VERSION" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" ;;
    fake-gpu-device-plugin) build_local fake-gpu-device-plugin . ;;
    pause) build_local pause ./pause ;;
    prometheus) build_module prometheus "$PROMETHEUS_VERSION" "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_VERSION" ;;
    promtool) build_module promtool "$PROMETHEUS_VERSION" "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION" ;;
    # Jaeger all-in-one (collector with the OTLP receiver, in-memory storage, query API): the
    # trace backend of the tracing tests. Its go.mod pins sarama back with a replace; kept here.
    jaeger) build_wrapped jaeger "$JAEGER_VERSION" github.com/jaegertracing/jaeger \
      github.com/jaegertracing/jaeger/cmd/all-in-one \
      "replace github.com/Shopify/sarama => github.com/Shopify/sarama v1.33.0" ;;
    *) log "unknown binary $b"; exit 2 ;;
  esac
done
# Stable names (no version) for the rest of the tooling.
for b in $wanted; do
  ln -sf "$b-$(version_of "$b")" "$BIN/$b"
done
log "binaries ready in $BIN"
