# shellcheck shell=bash
# Shared settings and helpers for the local cluster scripts (sourced, not run).
#
# Every path is computed from the repository root or from $GENCLUSTER_CACHE; nothing is
# hard-coded to one checkout. Settings can be overridden from the environment.

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HACK_DIR=$REPO_ROOT/hack
# shellcheck source=versions.env
source "$HACK_DIR/versions.env"

GENCLUSTER_CACHE=${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}
BIN_DIR=$GENCLUSTER_CACHE/bin
CLUSTER_DIR=${CLUSTER_DIR:-$REPO_ROOT/.cluster}
PKI_DIR=$CLUSTER_DIR/pki
RUN_DIR=$CLUSTER_DIR/run          # pid files, saved sysctls
LOG_DIR=$CLUSTER_DIR/logs
CONF_DIR=$CLUSTER_DIR/conf
KUBECONFIG_ADMIN=$CLUSTER_DIR/kubeconfig

# Node and network. The pod subnet's first address is the bridge gateway, the node IP, the
# kube-apiserver's bind/advertise address and the kubelet's address: pods reach all of them
# through the bridge, and nothing listens on the machine's external interface.
NODE_NAME=${NODE_NAME:-gencluster-node}
BRIDGE=${CLUSTER_BRIDGE:-gencl0}
CLUSTER_CIDR=${CLUSTER_CIDR:-10.244.0.0/16}
NODE_POD_CIDR=${NODE_POD_CIDR:-10.244.0.0/24}
NODE_IP=${NODE_IP:-10.244.0.1}
SERVICE_CIDR=${SERVICE_CIDR:-10.96.0.0/16}
KUBERNETES_SVC_IP=${KUBERNETES_SVC_IP:-10.96.0.1}
DNS_SVC_IP=${DNS_SVC_IP:-10.96.0.10}
CLUSTER_DOMAIN=cluster.local
APISERVER_PORT=${APISERVER_PORT:-6443}
APISERVER_URL=https://$NODE_IP:$APISERVER_PORT
ETCD_CLIENT_PORT=${ETCD_CLIENT_PORT:-12379}
ETCD_PEER_PORT=${ETCD_PEER_PORT:-12380}
# Pods may not send traffic beyond the node unless POD_EGRESS=allow (then it is masqueraded).
POD_EGRESS=${POD_EGRESS:-deny}

# Fake GPUs advertised by the fake-gpu-device-plugin.
GPUS=${GPUS:-8}
FAKE_GPU_PRODUCT=${FAKE_GPU_PRODUCT:-FAKE-GPU-80GB}
FAKE_GPU_MEMORY_MIB=${FAKE_GPU_MEMORY_MIB:-81920}
NODE_LABELS="nvidia.com/gpu.present=true,nvidia.com/gpu.count=$GPUS,nvidia.com/gpu.product=$FAKE_GPU_PRODUCT,nvidia.com/gpu.memory=$FAKE_GPU_MEMORY_MIB,gencluster.dev/fake-gpu=true,gencluster.dev/local-cluster=true"

# containerd: the root (image content and snapshots: expensive to rebuild) lives in the cache
# and survives cluster-down; the state (sockets, mounts, netns) lives in .cluster.
CONTAINERD_ROOT=${CONTAINERD_ROOT:-$GENCLUSTER_CACHE/containerd/root}
CONTAINERD_STATE=$CLUSTER_DIR/containerd/state
CONTAINERD_SOCK=$CLUSTER_DIR/containerd/containerd.sock
KUBELET_ROOT=$CLUSTER_DIR/kubelet
# The kubelet's device-plugin socket directory is fixed by the device-plugin API.
DEVICE_PLUGIN_DIR=/var/lib/kubelet/device-plugins
PAUSE_IMAGE=localhost/gencluster-pause:1.0

# Binaries built by hack/build-binaries.sh (version-keyed in the cache).
K8S_COMPONENTS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"
KUBECTL=$BIN_DIR/kubectl
CTR="ctr --address $CONTAINERD_SOCK"

if [[ -t 2 ]]; then
  log() { printf '\033[1m[%s]\033[0m %s\n' "${LOG_TAG:-cluster}" "$*" >&2; }
else
  log() { printf '[%s] %s\n' "${LOG_TAG:-cluster}" "$*" >&2; }
fi
die() { log "ERROR: $*"; exit 1; }
now_ms() { date +%s%3N; }

# write_file PATH < content: replaces PATH only when the content differs (some components,
# kube-proxy for one, exit when their config file changes).
write_file() {
  local tmp; tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
}

# One cluster-up/cluster-down at a time.
cluster_lock() {
  mkdir -p "$CLUSTER_DIR"
  exec 9>"$CLUSTER_DIR/.up-down.lock"
  flock -n 9 || { log "another cluster-up/down is running: waiting"; flock 9; }
}

kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# --- processes, tracked by pid file --------------------------------------------------------
pidfile() { echo "$RUN_DIR/$1.pid"; }

# Prints the pid of a running component, or fails. A pid counts only while its executable is
# still the one recorded (pids are reused).
component_pid() {
  local f pid exe want
  f=$(pidfile "$1"); [[ -f $f ]] || return 1
  read -r pid want _ <"$f" || return 1
  [[ -n $pid && -d /proc/$pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$want" || $exe == "$want (deleted)" ]] || return 1
  echo "$pid"
}

# start_component NAME BINARY ARGS... : runs in its own session, logs to logs/NAME.log.
# A running component is kept when its binary, arguments and config files (under
# .cluster/conf) are unchanged; otherwise it is restarted.
start_component() {
  local name=$1 bin=$2; shift 2
  local exe; exe=$(readlink -f "$bin")
  local hash a v
  hash=$({
    printf '%s\0' "$exe" "$@"
    for a in "$@"; do  # contents of the config files it reads
      v=${a#*=}; if [[ $v == "$CONF_DIR"/* && -f $v ]]; then cat "$v"; fi
    done
  } | sha256sum | cut -c1-16)
  if pid=$(component_pid "$name"); then
    if [[ $(awk '{print $3}' "$(pidfile "$name")") == "$hash" ]]; then
      log "$name already running (pid $pid)"; return 0
    fi
    log "$name: binary or arguments changed: restarting"
    stop_component "$name" 20
  fi
  [[ -x $exe ]] || die "$name: binary $bin not found (run: bash hack/build-binaries.sh)"
  mkdir -p "$LOG_DIR" "$RUN_DIR"
  printf '\n==== %s start %s\n' "$name" "$(date -Is)" >>"$LOG_DIR/$name.log"
  setsid "$exe" "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 9>&- &
  echo "$! $exe $hash" >"$(pidfile "$name")"
  log "started $name (pid $!, log .cluster/logs/$name.log)"
}

# A pid is alive while it exists and is not a zombie (the reaper here may be slow).
alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ ${st%% *} != Z ]]
}

# stop_component NAME [TIMEOUT_S]: SIGTERM, then SIGKILL after the timeout.
stop_component() {
  local name=$1 timeout=${2:-10} pid i
  if pid=$(component_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      log "$name did not stop in ${timeout}s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$(pidfile "$name")"
}

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: polls every 0.2 s.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local deadline=$(($(date +%s) + timeout))
  until "$@" >/dev/null 2>&1; do
    if (($(date +%s) >= deadline)); then
      log "timed out after ${timeout}s waiting for $what"; return 1
    fi
    sleep 0.2
  done
}

# curl against the apiserver with the admin client certificate.
api_curl() {
  curl -sf --max-time 5 --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" "$APISERVER_URL$1"
}
