#!/usr/bin/env bash
# Brings up the local cluster: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# containerd, CoreDNS, kubelet, kube-proxy and the fake-gpu-device-plugin, all as host
# processes recorded by pid under .cluster/run. Idempotent: running components are kept,
# missing ones are started. See docs/local-cluster.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LOG_TAG=cluster-up
cluster_lock
T0=$(now_ms)
elapsed() { printf '%d.%01d s' $((($(now_ms) - T0) / 1000)) $(((($(now_ms) - T0) % 1000) / 100)); }

[[ $(id -u) == 0 ]] || die "the local cluster needs root (network, mounts, cgroups)"
for tool in containerd runc openssl ip iptables conntrack curl; do
  command -v "$tool" >/dev/null || die "$tool is missing: run 'bash hack/install-deps.sh'"
done
[[ -x /usr/lib/cni/bridge ]] || die "CNI plugins missing: run 'bash hack/install-deps.sh'"

# --- binaries (cached; a no-op once built) -------------------------------------------------
BINARIES="$K8S_COMPONENTS helm coredns etcd crictl fake-gpu-device-plugin pause"
missing=""
for b in $BINARIES; do [[ -x $BIN_DIR/$b ]] || missing="$missing $b"; done
[[ -n $missing ]] && log "building missing binaries:$missing (cached under $BIN_DIR; only the first run pays)"
# Version-keyed: a no-op that re-links the unversioned names when everything is built.
bash "$HACK_DIR/build-binaries.sh" $BINARIES 2>&1 | sed "/binaries ready/d" >&2 || die "building binaries failed"

# --- one local cluster per machine: another clone's cluster holds the bridge and the ports ----
for p in /proc/[0-9]*; do
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  [[ $exe == "$BIN_DIR"/kube-apiserver* ]] || continue
  cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
  if [[ $cmd != *"$CLUSTER_DIR/"* ]]; then
    other=$(sed -n 's#.*--client-ca-file=\([^ ]*\)/pki/ca.crt.*#\1#p' <<<"$cmd")
    die "a local cluster from another directory (${other:-unknown}) is running (kube-apiserver pid ${p#/proc/}): stop it with 'make cluster-down' in that clone, or use it with CLUSTER_DIR=${other:-<its .cluster>}"
  fi
done

mkdir -p "$RUN_DIR" "$LOG_DIR" "$CONF_DIR" "$CLUSTER_DIR/bin"
ln -sfn "$BIN_DIR/kubectl" "$CLUSTER_DIR/bin/kubectl"
ln -sfn "$BIN_DIR/helm" "$CLUSTER_DIR/bin/helm"
ln -sfn "$BIN_DIR/crictl" "$CLUSTER_DIR/bin/crictl"

# --- preflight: our address ranges must not clash with the host's routes --------------------
python3 - "$CLUSTER_CIDR" "$SERVICE_CIDR" "$BRIDGE" <<'PY' || die "address ranges clash with host routes (set CLUSTER_CIDR/NODE_POD_CIDR/NODE_IP/SERVICE_CIDR)"
import ipaddress, subprocess, sys
ours = [ipaddress.ip_network(c) for c in sys.argv[1:3]]
bridge = sys.argv[3]
for line in subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True).stdout.splitlines():
    words = line.split()
    if not words or words[0] == "default" or f"dev {bridge}" in line:
        continue
    try:
        net = ipaddress.ip_network(words[0] if "/" in words[0] else words[0] + "/32", strict=False)
    except ValueError:
        continue
    for o in ours:
        if net.overlaps(o):
            print(f"route {line!r} overlaps {o}", file=sys.stderr); sys.exit(1)
PY

# --- kernel settings: remember the originals once, restored by cluster-down -----------------
SYSCTLS="net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables
net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
if [[ ! -f $RUN_DIR/sysctl.orig ]]; then
  for k in $SYSCTLS; do
    v=$(sysctl -n "$k" 2>/dev/null) && echo "$k=$v"
  done >"$RUN_DIR/sysctl.orig.tmp"
  mv "$RUN_DIR/sysctl.orig.tmp" "$RUN_DIR/sysctl.orig"
fi
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true

# --- network: the bridge (pods, node IP, apiserver), a route for Services, our chains ------
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  log "created bridge $BRIDGE"
fi
prefix=${NODE_POD_CIDR#*/}
[[ $(ip -4 -o addr show dev "$BRIDGE") == *"inet $NODE_IP/$prefix "* ]] || ip addr add "$NODE_IP/$prefix" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Service IPs route into the bridge (kube-proxy DNATs them); they never leave by the default route.
ip route replace "$SERVICE_CIDR" dev "$BRIDGE" src "$NODE_IP"

ipt_chain() {  # table chain parent position
  iptables -t "$1" -N "$2" 2>/dev/null || iptables -t "$1" -F "$2"
  iptables -t "$1" -C "$3" -j "$2" 2>/dev/null || iptables -t "$1" -I "$3" "$4" -j "$2"
}
ipt_chain filter GENCLUSTER-FORWARD FORWARD 1
iptables -A GENCLUSTER-FORWARD -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
iptables -A GENCLUSTER-FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
ipt_chain nat GENCLUSTER-POSTROUTING POSTROUTING 1
if [[ $POD_EGRESS == allow ]]; then
  iptables -A GENCLUSTER-FORWARD -i "$BRIDGE" -j ACCEPT
  iptables -t nat -A GENCLUSTER-POSTROUTING -s "$CLUSTER_CIDR" ! -o "$BRIDGE" -j MASQUERADE
else
  # Pods talk to each other, to Services and to the node, never beyond it.
  iptables -A GENCLUSTER-FORWARD -i "$BRIDGE" -j DROP
fi

# --- certificates and kubeconfigs -----------------------------------------------------------
bash "$HACK_DIR/pki.sh"

# --- etcd -----------------------------------------------------------------------------------
etcd_healthy() { [[ $(curl -sf --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health") == *'"health":"true"'* ]]; }
mkdir -p "$CLUSTER_DIR/etcd" && chmod 700 "$CLUSTER_DIR/etcd"
start_component etcd "$BIN_DIR/etcd" \
  --name gencluster --data-dir "$CLUSTER_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "gencluster=http://127.0.0.1:$ETCD_PEER_PORT" \
  --quota-backend-bytes 4294967296 --snapshot-count 10000 --log-level warn
wait_for "etcd health" 60 etcd_healthy || die "etcd did not become healthy: see .cluster/logs/etcd.log"
log "etcd healthy ($(elapsed))"

# --- kube-apiserver -------------------------------------------------------------------------
P=$PKI_DIR
start_component kube-apiserver "$BIN_DIR/kube-apiserver" \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$APISERVER_PORT" \
  --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$P/ca.crt" --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" \
  --kubelet-client-certificate="$P/apiserver-kubelet-client.crt" --kubelet-client-key="$P/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$P/ca.crt" \
  --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
  --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --requestheader-client-ca-file="$P/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-username-headers=X-Remote-User --requestheader-group-headers=X-Remote-Group \
  --requestheader-extra-headers-prefix=X-Remote-Extra- \
  --proxy-client-cert-file="$P/front-proxy-client.crt" --proxy-client-key-file="$P/front-proxy-client.key" \
  --allow-privileged=true --event-ttl=2h --profiling=false
wait_for "kube-apiserver /readyz" 90 api_curl /readyz || die "kube-apiserver not ready: see .cluster/logs/kube-apiserver.log"
log "kube-apiserver ready at $APISERVER_URL ($(elapsed))"

# --- kube-controller-manager and kube-scheduler ---------------------------------------------
start_component kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$CONF_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$CONF_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$CONF_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false \
  --cluster-name=gencluster --cluster-cidr="$CLUSTER_CIDR" --allocate-node-cidrs=true --node-cidr-mask-size="${NODE_POD_CIDR#*/}" \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" \
  --root-ca-file="$P/ca.crt" --service-account-private-key-file="$P/sa.key" \
  --use-service-account-credentials=true --controllers='*,bootstrapsigner,tokencleaner'
start_component kube-scheduler "$BIN_DIR/kube-scheduler" \
  --kubeconfig="$CONF_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$CONF_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$CONF_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false

# --- cluster add-ons: RBAC for CoreDNS, the kube-dns Service (endpoint: CoreDNS on the node) --
kc apply --server-side --force-conflicts --field-manager=gencluster-local -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns", labels: {app.kubernetes.io/part-of: gencluster-local-cluster}}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns", labels: {app.kubernetes.io/part-of: gencluster-local-cluster}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:coredns"}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns, kubernetes.io/name: CoreDNS, app.kubernetes.io/part-of: gencluster-local-cluster}
spec:
  clusterIP: $DNS_SVC_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-node
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: gencluster-local-cluster
addressType: IPv4
endpoints:
- addresses: ["$NODE_IP"]
  conditions: {ready: true}
  nodeName: $NODE_NAME
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
EOF

# --- CoreDNS: answers cluster.local (and reverse lookups) from the API; nothing else --------
write_file "$CONF_DIR/Corefile" <<EOF
$CLUSTER_DOMAIN:53 in-addr.arpa:53 ip6.arpa:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:8181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $CONF_DIR/coredns.kubeconfig gencluster
        pods insecure
        ttl 5
    }
    cache 5
    loadbalance
}
# No upstream forwarding: every other name is NXDOMAIN.
.:53 {
    bind $NODE_IP
    errors
    template ANY ANY {
        rcode NXDOMAIN
    }
}
EOF
start_component coredns "$BIN_DIR/coredns" -conf "$CONF_DIR/Corefile"

# --- containerd -----------------------------------------------------------------------------
mkdir -p "$CONTAINERD_ROOT" "$CONTAINERD_STATE" "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/cni/ipam"
write_file "$CONF_DIR/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
# The VM refuses negative oom_score_adj (no CAP_SYS_RESOURCE).
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$GENCLUSTER_CACHE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  restrict_oom_score_adj = true
  tolerate_missing_hugetlb_controller = true
  disable_hugetlb_controller = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  netns_mounts_under_state_dir = true
  max_container_log_line_size = 65536
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CONTAINERD_STATE/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
    max_conf_num = 1
EOF
write_file "$CLUSTER_DIR/cni/net.d/10-gencluster.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "gencluster",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$CLUSTER_DIR/cni/ipam",
        "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    }
  ]
}
EOF
(
  # Images are imported locally (hack/images.sh); registry pulls are sent to a closed port on
  # 127.0.0.1 so that they fail at once and never leave the machine. IMAGE_PULLS=allow lets
  # containerd pull from registries (and use the caller's proxy settings).
  if [[ ${IMAGE_PULLS:-deny} != allow ]]; then
    export HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= http_proxy= https_proxy= no_proxy=
  fi
  start_component containerd "$(command -v containerd)" --config "$CONF_DIR/containerd.toml"
)
wait_for "containerd socket" 30 $CTR version || die "containerd did not start: see .cluster/logs/containerd.log"
log "containerd ready ($(elapsed))"
bash "$HACK_DIR/images.sh" pause

# --- kubelet --------------------------------------------------------------------------------
mkdir -p "$KUBELET_ROOT" "$LOG_DIR/pods"
write_file "$CONF_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $P/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $P/kubelet-serving.crt
tlsPrivateKeyFile: $P/kubelet-serving.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [$DNS_SVC_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
podLogsDir: $LOG_DIR/pods
nodeStatusUpdateFrequency: 4s
# Images cannot be pulled again here: never garbage-collect them; evict only when really short.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2%, nodefs.inodesFree: 2%}
serializeImagePulls: false
maxPods: 110
shutdownGracePeriod: 0s
EOF
start_component kubelet "$BIN_DIR/kubelet" \
  --config="$CONF_DIR/kubelet.yaml" --kubeconfig="$CONF_DIR/kubelet.kubeconfig" \
  --root-dir="$KUBELET_ROOT" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
  --node-labels="$NODE_LABELS"

# --- fake GPUs --------------------------------------------------------------------------------
start_component fake-gpu-device-plugin "$BIN_DIR/fake-gpu-device-plugin" -count "$GPUS" -dir "$DEVICE_PLUGIN_DIR"

# --- kube-proxy (iptables mode) -------------------------------------------------------------
write_file "$CONF_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CONF_DIR/kube-proxy.kubeconfig}
mode: iptables
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
clusterCIDR: $CLUSTER_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
# Leave conntrack sysctls alone (the VM may refuse them).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
iptables: {minSyncPeriod: 1s, syncPeriod: 30s}
EOF
start_component kube-proxy "$BIN_DIR/kube-proxy" --config="$CONF_DIR/kube-proxy.yaml"

# --- wait for the node: Ready, a fresh heartbeat, the fake GPUs allocatable -----------------
node_ready() {
  local out
  out=$(kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status} {.status.allocatable.nvidia\.com/gpu}') || return 1
  [[ $out == "True $GPUS" ]] || return 1
  local renew
  renew=$(kc -n kube-node-lease get lease "$NODE_NAME" -o jsonpath='{.spec.renewTime}') || return 1
  (($(date +%s) - $(date -d "$renew" +%s) < 30))
}
wait_for "node $NODE_NAME Ready with $GPUS nvidia.com/gpu" 120 node_ready || {
  kc get node -o wide >&2 || true
  die "node not ready: see .cluster/logs/kubelet.log"
}
log "node $NODE_NAME Ready with $GPUS nvidia.com/gpu ($(elapsed))"
coredns_ready() { curl -sf --max-time 2 http://127.0.0.1:8181/ready; }
wait_for "CoreDNS ready" 60 coredns_ready || die "CoreDNS not ready: see .cluster/logs/coredns.log"
log "CoreDNS ready ($(elapsed))"
kube_proxy_ready() { curl -sf --max-time 2 http://127.0.0.1:10256/healthz; }
wait_for "kube-proxy healthy" 60 kube_proxy_ready || die "kube-proxy not healthy: see .cluster/logs/kube-proxy.log"
log "kube-proxy healthy ($(elapsed))"
# The default ServiceAccount must exist before pods can be created in a namespace.
wait_for "default ServiceAccount" 60 kc -n default get serviceaccount default || die "no default ServiceAccount: see .cluster/logs/kube-controller-manager.log"
log "cluster ready in $(elapsed): node $NODE_NAME Ready, $GPUS fake nvidia.com/gpu"
echo "$(($(now_ms) - T0))" >"$RUN_DIR/last-up-ms"

cat <<EOF

# Use the local cluster from this shell:
export KUBECONFIG=$KUBECONFIG_ADMIN
export PATH=$CLUSTER_DIR/bin:\$PATH
EOF
