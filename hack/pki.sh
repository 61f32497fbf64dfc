#!/usr/bin/env bash
# Certificates (openssl, EC P-256, 10 years) and kubeconfigs for the local cluster.
# Idempotent: only what is missing is created, so kubeconfigs stay valid across down/up.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LOG_TAG=pki
mkdir -p "$PKI_DIR" "$CONF_DIR"
cd "$PKI_DIR"

key() { [[ -f $1.key ]] || openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; chmod 600 "$1.key"; }

if [[ ! -f ca.crt ]]; then
  key ca
  openssl req -x509 -new -key ca.key -sha256 -days 3650 -subj "/CN=gencluster-local-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out ca.crt
  log "created cluster CA"
fi

if [[ ! -f front-proxy-ca.crt ]]; then
  key front-proxy-ca
  openssl req -x509 -new -key front-proxy-ca.key -sha256 -days 3650 -subj "/CN=gencluster-front-proxy-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out front-proxy-ca.crt
fi

# cert NAME SUBJECT EXT_KEY_USAGE [SANS] [CA]
cert() {
  local name=$1 subj=$2 eku=$3 sans=${4:-} ca=${5:-ca}
  [[ -f $name.crt ]] && return 0
  key "$name"
  local ext; ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n $sans ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -new -key "$name.key" -subj "$subj" -out "$name.csr"
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial -sha256 -days 3650 \
    -extfile "$ext" -out "$name.crt" 2>/dev/null
  rm -f "$name.csr" "$ext"
  log "created certificate $name ($subj)"
}

cert apiserver "/CN=kube-apiserver" serverAuth \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,DNS:$NODE_NAME,IP:$NODE_IP,IP:$KUBERNETES_SVC_IP,IP:127.0.0.1"
cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
cert admin "/O=system:masters/CN=gencluster-admin" clientAuth
cert controller-manager "/CN=system:kube-controller-manager" clientAuth
cert scheduler "/CN=system:kube-scheduler" clientAuth
cert kube-proxy "/CN=system:kube-proxy" clientAuth
cert kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" clientAuth
cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" serverAuth "DNS:$NODE_NAME,IP:$NODE_IP"
cert coredns "/CN=system:coredns" clientAuth
cert front-proxy-client "/CN=front-proxy-client" clientAuth "" front-proxy-ca
if [[ ! -f sa.key ]]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  chmod 600 sa.key
  log "created service-account signing key"
fi

# kubeconfig FILE CERT_NAME USER
kubeconfig() {
  local file=$1 name=$2 user=$3
  [[ -f $file ]] && return 0
  cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: gencluster
  cluster:
    server: $APISERVER_URL
    certificate-authority-data: $(base64 -w0 ca.crt)
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$name.crt")
    client-key-data: $(base64 -w0 "$name.key")
contexts:
- name: gencluster
  context: {cluster: gencluster, user: $user}
current-context: gencluster
EOF
  chmod 600 "$file"
}
kubeconfig "$KUBECONFIG_ADMIN" admin gencluster-admin
kubeconfig "$CONF_DIR/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
kubeconfig "$CONF_DIR/scheduler.kubeconfig" scheduler system:kube-scheduler
kubeconfig "$CONF_DIR/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
kubeconfig "$CONF_DIR/kubelet.kubeconfig" kubelet-client "system:node:$NODE_NAME"
kubeconfig "$CONF_DIR/coredns.kubeconfig" coredns system:coredns
