#!/usr/bin/env bash
# Stops the local cluster and removes what it created on the host: processes (by pid), pods
# and their network namespaces, mounts under the cluster's directories, the bridge, the
# iptables chains (KUBE-*, GENCLUSTER-*), cgroups, and restores the sysctls it changed.
# Safe after a crash and when nothing runs. Keeps: certificates and kubeconfigs (.cluster/pki,
# .cluster/kubeconfig: they stay valid across down/up) and containerd's image store in
# $GENCLUSTER_CACHE. PURGE=1 removes .cluster entirely; PURGE_IMAGES=1 also the image store.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LOG_TAG=cluster-down
cluster_lock
[[ $(id -u) == 0 ]] || die "needs root"
T0=$(now_ms)
CRICTL=("$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 20s)

# Processes this tooling started but whose pid file is gone (a crash, a removed .cluster):
# recognised by their command line naming the cluster's directories. Prints pids.
stray_pids() {
  local p cmd exe
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [[ $p == "$$" || $p == "$BASHPID" ]] && continue
    exe=$(readlink "/proc/$p/exe" 2>/dev/null) || continue
    case $exe in "$BIN_DIR"/kubectl*|"$BIN_DIR"/helm*|"$BIN_DIR"/crictl*) continue ;; esac  # users' clients
    case $exe in "$BIN_DIR"/*|*/containerd|*/containerd-shim*) ;; *) continue ;; esac
    cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
    case $cmd in
      *"$CLUSTER_DIR/"*|*"$CONTAINERD_SOCK"*|*" -dir $DEVICE_PLUGIN_DIR"*) echo "$p" ;;
    esac
  done
}

# 0. Strays: processes this tooling started whose pid file was lost or overwritten (a crash,
#    an interrupted cluster-up): TERM, then KILL, by pid. Tracked components are stopped below.
tracked=" "
for f in "$RUN_DIR"/*.pid; do [[ -f $f ]] && tracked+="$(awk '{print $1}' "$f") "; done
strays=""
for p in $(stray_pids); do
  # containerd shims are handled through the CRI below (killing them would orphan containers).
  [[ $tracked == *" $p "* || $(readlink "/proc/$p/exe" 2>/dev/null) == */containerd-shim* ]] || strays+="$p "
done
if [[ -n $strays ]]; then
  log "stopping stray processes: $(echo $strays)"
  kill -TERM $strays 2>/dev/null || true
  for _ in $(seq 50); do
    left=""; for p in $strays; do if alive "$p"; then left="$left $p"; fi; done
    [[ -z $left ]] && break; sleep 0.1
  done
  if [[ -n $left ]]; then kill -KILL $left 2>/dev/null || true; fi
  sleep 0.2
fi

# 1. The node: the kubelet first so that it does not restart what we remove.
stop_component kubelet 20
stop_component fake-gpu-device-plugin 5

# 2. Pods, through the CRI (stops containers, tears down their network, removes netns).
if [[ -d $CONTAINERD_STATE || -S $CONTAINERD_SOCK ]]; then
  if ! component_pid containerd >/dev/null && [[ -f $CONF_DIR/containerd.toml ]]; then
    log "containerd is not running: starting it to clean up pods"
    start_component containerd "$(command -v containerd)" --config "$CONF_DIR/containerd.toml"
    wait_for "containerd" 20 $CTR version || true
  fi
  if $CTR version >/dev/null 2>&1 && [[ -x ${CRICTL[0]} ]]; then
    n=$("${CRICTL[@]}" pods -q 2>/dev/null | wc -l)
    if ((n > 0)); then
      log "removing $n pod sandboxes"
      "${CRICTL[@]}" rmp -a -f >/dev/null 2>&1 || "${CRICTL[@]}" rmp -a -f >&2 || true
    fi
    # Containers left without a sandbox (should be none).
    "${CRICTL[@]}" rm -a -f >/dev/null 2>&1 || true
  fi
  stop_component containerd 20
fi

# 3. Whatever runc still knows about in our state dir (after a containerd crash).
if [[ -d $CONTAINERD_STATE/runc/k8s.io ]]; then
  for id in $(runc --root "$CONTAINERD_STATE/runc/k8s.io" list -q 2>/dev/null); do
    runc --root "$CONTAINERD_STATE/runc/k8s.io" delete --force "$id" 2>/dev/null || true
  done
fi

# 4. The control plane and the rest, in reverse start order.
if component_pid kube-proxy >/dev/null; then stop_component kube-proxy 10; fi
for c in coredns kube-scheduler kube-controller-manager kube-apiserver etcd; do
  stop_component "$c" 15
done

# 5. Shims left behind (containerd gone): their containers were removed above.
for p in $(stray_pids); do kill -KILL "$p" 2>/dev/null || true; done

# 6. Mounts under our directories (netns, shm, overlay rootfs, volumes), deepest first.
umount_under() {
  local prefix
  for prefix in "$@"; do
    { awk '{print $5}' /proc/self/mountinfo | sed 's/\\040/ /g' | grep -F "$prefix/" || true; } | sort -r |
      while IFS= read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "could not unmount $m"
      done
  done
}
umount_under "$CLUSTER_DIR" "$CONTAINERD_ROOT" "$DEVICE_PLUGIN_DIR"

# 7. Network: veths left on the bridge, the bridge (and with it the Service route).
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  for v in $(ip -o link show master "$BRIDGE" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1); do
    ip link del "$v" 2>/dev/null || true
  done
  ip link del "$BRIDGE"
  log "removed bridge $BRIDGE"
fi
ip route del "$SERVICE_CIDR" 2>/dev/null || true

# iptables chains created by kube-proxy, the kubelet and cluster-up (the CNI bridge creates none:
# no ipMasq, no portmap), in every
# backend present (nft and legacy, IPv4 and IPv6): first the jumps to them, then the chains.
clean_iptables() {
  local ipt table rules line chain
  for ipt in iptables ip6tables iptables-legacy ip6tables-legacy iptables-nft ip6tables-nft; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle raw; do
      rules=$("$ipt" -w -t "$table" -S 2>/dev/null) || continue
      grep -qE '^-N (KUBE-|GENCLUSTER-)|-j (KUBE-|GENCLUSTER-)' <<<"$rules" || continue
      while IFS= read -r line; do
        chain=$(awk '{print $2}' <<<"$line")
        case $chain in KUBE-*|GENCLUSTER-*) continue ;; esac
        eval "\"$ipt\" -w -t $table -D ${line#-A }" 2>/dev/null || true
      done < <(grep -E '^-A .*-j (KUBE-|GENCLUSTER-)' <<<"$rules")
      for chain in $(awk '/^-N (KUBE-|GENCLUSTER-)/{print $2}' <<<"$rules"); do
        "$ipt" -w -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $(awk '/^-N (KUBE-|GENCLUSTER-)/{print $2}' <<<"$rules"); do
        "$ipt" -w -t "$table" -X "$chain" 2>/dev/null || log "could not delete $ipt $table $chain"
      done
    done
  done
}
clean_iptables
conntrack -D -s "$CLUSTER_CIDR" >/dev/null 2>&1 || true
conntrack -D -d "$SERVICE_CIDR" >/dev/null 2>&1 || true

# 8. Kernel settings back to what they were before the first cluster-up.
if [[ -f $RUN_DIR/sysctl.orig ]]; then
  while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done <"$RUN_DIR/sysctl.orig"
  rm -f "$RUN_DIR/sysctl.orig"
  log "restored sysctls"
fi

# 9. Cgroups the kubelet created (empty now), and state that must not leak into the next run.
for ctl in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
  [[ -d $ctl ]] && find "$ctl" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done
rm -rf "$CLUSTER_DIR/etcd" "$KUBELET_ROOT" "$CLUSTER_DIR/containerd" "$CLUSTER_DIR/cni" "$LOG_DIR/pods" "$RUN_DIR"
rm -rf "$DEVICE_PLUGIN_DIR"
rmdir /var/lib/kubelet 2>/dev/null || true
if [[ -d /var/log/containers ]]; then
  find /var/log/containers -maxdepth 1 -type l -lname "$LOG_DIR/*" -delete 2>/dev/null || true
  rmdir /var/log/containers 2>/dev/null || true
fi
if [[ -n ${PURGE:-} ]]; then
  rm -rf "$CLUSTER_DIR"
  log "removed $CLUSTER_DIR"
fi
if [[ -n ${PURGE_IMAGES:-} ]]; then
  rm -rf "$CONTAINERD_ROOT"
  log "removed containerd image store $CONTAINERD_ROOT"
fi
log "cluster down in $((($(now_ms) - T0) / 1000)) s"
