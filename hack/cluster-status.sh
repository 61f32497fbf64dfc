#!/usr/bin/env bash
# Shows each component (pid, RSS), the API's health, the node and its fake GPUs.
# Exit status 0 only when every component runs and the node is Ready with a fresh heartbeat.
set -uo pipefail
source "$(dirname "$0")/lib.sh"
LOG_TAG=cluster-status
ok=0
total_kb=0
printf '%-24s %-8s %10s  %s\n' COMPONENT PID RSS LOG
for c in etcd kube-apiserver kube-controller-manager kube-scheduler coredns containerd kubelet fake-gpu-device-plugin kube-proxy; do
  if pid=$(component_pid "$c"); then
    kb=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status")
    total_kb=$((total_kb + kb))
    printf '%-24s %-8s %7d MiB  %s\n' "$c" "$pid" $((kb / 1024)) ".cluster/logs/$c.log"
  else
    printf '%-24s %-8s %10s  %s\n' "$c" "-" "DOWN" ".cluster/logs/$c.log"; ok=1
  fi
done
# containerd shims (one per pod) belong to the node as well.
shim_kb=0; shims=0
for p in /proc/[0-9]*; do
  [[ $(readlink "$p/exe" 2>/dev/null) == */containerd-shim-runc-v2 ]] || continue
  [[ $(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) == *"$CONTAINERD_SOCK"* ]] || continue
  shims=$((shims + 1)); shim_kb=$((shim_kb + $(awk '/^VmRSS/{print $2}' "$p/status")))
done
printf '%-24s %-8s %7d MiB\n' "containerd-shims ($shims)" "" $((shim_kb / 1024))
printf '%-24s %-8s %7d MiB\n' "total" "" $(((total_kb + shim_kb) / 1024))
echo
if api_curl /readyz >/dev/null; then
  echo "kube-apiserver: $APISERVER_URL ready"
  kc get nodes -o wide -L nvidia.com/gpu.present || ok=1
  renew=$(kc -n kube-node-lease get lease "$NODE_NAME" -o jsonpath='{.spec.renewTime}' 2>/dev/null)
  if [[ -n $renew ]] && (($(date +%s) - $(date -d "$renew" +%s) < 40)); then
    echo "node heartbeat: $renew (fresh)"
  else
    echo "node heartbeat: ${renew:-none} (STALE)"; ok=1
  fi
  echo "nvidia.com/gpu allocatable: $(kc get node "$NODE_NAME" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}' 2>/dev/null) (fake-gpu-device-plugin)"
else
  echo "kube-apiserver: $APISERVER_URL NOT ready"; ok=1
fi
echo
echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
echo "export PATH=$CLUSTER_DIR/bin:\$PATH"
exit $ok
