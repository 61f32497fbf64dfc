#!/usr/bin/env bash
# Container images without a registry: build with podman, import into the node's containerd.
#
#   hack/images.sh                 # = all: base, operator, workload, hack/images/NAME.Dockerfile
#                                  #   (-> localhost/gencluster-NAME:dev), then import them all
#   hack/images.sh base            # Debian bookworm base (mmdebstrap) -> localhost/gencluster-base:bookworm
#   hack/images.sh build TAG DOCKERFILE [CONTEXT]   # podman build (context: repo root by default)
#   hack/images.sh import TAG...   # podman save | ctr import, skipped when containerd has the same ID
#   hack/images.sh wheels REQ...   # pip download requirement files/specs into the wheelhouse
#   hack/images.sh pause           # the pod sandbox image (used by cluster-up)
#   hack/images.sh jaeger          # Jaeger all-in-one (trace backend of the tracing e2e test)
#
# Podman's storage and config live under $GENCLUSTER_CACHE/podman (not the host's defaults).
# RUN steps use the host's network (--network=host: no podman bridge, NAT or iptables rules);
# they reach only what the host reaches (package registries here).
# Builds get --build-arg BASE=localhost/gencluster-base:bookworm, the host CA bundle mounted
# read-only at /etc/ssl/certs/ca-certificates.crt (outgoing TLS here is re-signed by a CA only
# the host trusts), the pip cache mounted at /root/.cache/pip and the wheelhouse at /wheels
# (read-only), with --build-arg PIP_FIND_LINKS=/wheels (effective where the Dockerfile
# declares ARG PIP_FIND_LINKS).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LOG_TAG=images

BASE_IMAGE=${BASE_IMAGE:-localhost/gencluster-base:bookworm}
OPERATOR_IMAGE=${OPERATOR_IMAGE:-localhost/gencluster-operator:dev}
WORKLOAD_IMAGE=${WORKLOAD_IMAGE:-localhost/gencluster-workload:dev}
REDIS_IMAGE=${REDIS_IMAGE:-localhost/gencluster-redis:dev}
JAEGER_IMAGE=${JAEGER_IMAGE:-localhost/gencluster-jaeger:dev}
PODMAN_DIR=$GENCLUSTER_CACHE/podman
WHEELS=$GENCLUSTER_CACHE/wheels
PIP_CACHE=$GENCLUSTER_CACHE/pip-cache
TMP=$GENCLUSTER_CACHE/tmp
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
mkdir -p "$PODMAN_DIR" "$WHEELS" "$PIP_CACHE" "$TMP"

setup_podman() {
  cat >"$PODMAN_DIR/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$PODMAN_DIR/storage"
runroot = "$PODMAN_DIR/runroot"
EOF
  # Root may not raise rlimits on these machines: pin them for build/run containers.
  cat >"$PODMAN_DIR/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=4096:4096"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  export CONTAINERS_STORAGE_CONF=$PODMAN_DIR/storage.conf CONTAINERS_CONF=$PODMAN_DIR/containers.conf
}
setup_podman

timed() {  # timed DESCRIPTION COMMAND...
  local what=$1 start last; shift; start=$(now_ms)
  # How long the same step took last time on this machine (a cold build is much longer).
  last=$({ grep -F " $what " "$GENCLUSTER_CACHE/image-timings.log" 2>/dev/null || true; } | tail -1 | awk '{print int($(NF-1) / 1000)}')
  log "$what ...${last:+ (last time ${last} s)}"
  "$@"
  local ms=$(($(now_ms) - start))
  log "$what: done in $((ms / 1000)).$(((ms % 1000) / 100)) s"
  echo "$(date -Is) $what $ms ms" >>"$GENCLUSTER_CACHE/image-timings.log"
}

podman_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

cmd_base() {
  if [[ -n $(podman_id "$BASE_IMAGE") && -z ${REBUILD_BASE:-} ]]; then
    log "$BASE_IMAGE present (REBUILD_BASE=1 rebuilds it)"; return 0
  fi
  command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run 'bash hack/install-deps.sh'"
  local tar=$TMP/base-rootfs.tar
  timed "mmdebstrap bookworm (minbase + python3, python3-venv, ca-certificates)" \
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
      --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Check-Date "false"' \
      bookworm "$tar" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
  timed "podman import -> $BASE_IMAGE" \
    podman import --change 'ENV LANG=C.UTF-8' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'CMD ["/bin/bash"]' "$tar" "$BASE_IMAGE" >/dev/null
  rm -f "$tar"
}

cmd_build() {  # TAG DOCKERFILE [CONTEXT]
  local tag=$1 dockerfile=$2 context=${3:-$REPO_ROOT}
  [[ -f $dockerfile ]] || die "no $dockerfile"
  [[ -n $(podman_id "$BASE_IMAGE") ]] || cmd_base
  local ignore=()
  if [[ ! -f $context/.dockerignore && ! -f $context/.containerignore ]]; then
    ignore=(--ignorefile "$HACK_DIR/containerignore")
  fi
  local ca=()
  [[ -f $CA_BUNDLE ]] && ca=(-v "$CA_BUNDLE:/etc/ssl/certs/ca-certificates.crt:ro")
  timed "podman build $tag (${dockerfile#"$REPO_ROOT"/})" \
    podman build --pull=never --layers --network=host -t "$tag" -f "$dockerfile" "${ignore[@]}" "${ca[@]}" \
      -v "$PIP_CACHE:/root/.cache/pip" -v "$WHEELS:/wheels:ro" \
      --build-arg "BASE=$BASE_IMAGE" --build-arg PIP_FIND_LINKS=/wheels \
      --build-arg PIP_CACHE_DIR=/root/.cache/pip \
      ${BUILD_ARGS:-} "$context"
  # Drop dangling images left by rebuilds (their layers stay cached while referenced).
  podman image prune -f >/dev/null 2>&1 || true
}

containerd_id() {  # config digest of TAG in the node's containerd, if any
  "$BIN_DIR/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" inspecti -o go-template --template '{{.status.id}}' "$1" 2>/dev/null
}

containerd_up() { [[ -S $CONTAINERD_SOCK ]] && $CTR version >/dev/null 2>&1; }

cmd_import() {  # TAG...
  containerd_up || die "the node's containerd is not running: run 'make cluster-up' first"
  local tag id have
  for tag in "$@"; do
    id=$(podman_id "$tag") || die "no image $tag in podman storage: build it first"
    have=$(containerd_id "$tag" || true)
    if [[ $have == "sha256:$id" ]]; then
      log "$tag already in containerd (sha256:${id:0:12}): skipping import"; continue
    fi
    timed "podman save + ctr import $tag ($(podman image inspect --format '{{.Size}}' "$tag" | numfmt --to=iec) uncompressed)" \
      import_new_layers "$tag"
    have=$(containerd_id "$tag" || true)
    [[ $have == "sha256:$id" ]] || die "import of $tag did not produce image sha256:$id (got '$have')"
    log "$tag imported (sha256:${id:0:12})"
  done
}

# Exports TAG as an uncompressed OCI layout and imports into containerd an archive holding only
# the blobs containerd lacks (after a code change, the last layers): layers are identified by
# digest, so the multi-GB dependency layers are neither re-read nor re-hashed by containerd.
import_new_layers() {
  local tag=$1 dir=$TMP/oci-$$
  rm -rf "$TMP"/oci-*  # leftovers of an interrupted import (each a whole image)
  podman save --format oci-dir --uncompressed -o "$dir" "$tag" >/dev/null 2>&1 || die "podman save $tag failed"
  $CTR -n k8s.io content ls -q >"$dir.have" || die "ctr content ls failed"
  oci_archive "$dir" "$tag" "$dir.have"
  if ! $CTR -n k8s.io images import "$dir.tar" >/dev/null 2>"$dir.err"; then
    # containerd may hold a layer's blob but no longer its unpacked snapshot (garbage
    # collected with an old image): send every layer then.
    log "incremental import failed ($(tail -1 "$dir.err")); importing every layer"
    : >"$dir.have"
    oci_archive "$dir" "$tag" "$dir.have"
    $CTR -n k8s.io images import "$dir.tar" >/dev/null || die "ctr import of $tag failed"
  fi
  rm -rf "$dir" "$dir.tar" "$dir.have" "$dir.err"
}

oci_archive() {  # DIR TAG HAVE_FILE: DIR.tar with the blobs whose digests HAVE_FILE lacks
  python3 - "$@" <<'PY2' || die "preparing the OCI archive of $2 failed"
import json, os, sys, tarfile
d, tag, have_file = sys.argv[1:]
have = set(open(have_file).read().split())
index = json.load(open(os.path.join(d, "index.json")))
for m in index["manifests"]:
    m.setdefault("annotations", {})["io.containerd.image.name"] = tag
json.dump(index, open(os.path.join(d, "index.json"), "w"))
blob = lambda dg: os.path.join("blobs", *dg.split(":"))
members = ["oci-layout", "index.json"]
skipped = sent = 0
for m in index["manifests"]:
    manifest = json.load(open(os.path.join(d, blob(m["digest"]))))
    members += [blob(m["digest"]), blob(manifest["config"]["digest"])]
    for layer in manifest["layers"]:
        if layer["digest"] in have:
            skipped += layer["size"]
        else:
            members.append(blob(layer["digest"])); sent += layer["size"]
with tarfile.open(d + ".tar", "w") as tar:
    for name in members:
        tar.add(os.path.join(d, name), arcname=name)
print(f"new layers: {sent / 2**20:.0f} MiB, already in containerd: {skipped / 2**20:.0f} MiB", file=sys.stderr)
PY2
}

cmd_wheels() {  # pip download into the wheelhouse (host side, uses the host's trust store)
  local py=${PYTHON:-python3}
  timed "pip download -> $WHEELS" "$py" -m pip download --dest "$WHEELS" --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform linux_x86_64 --implementation cp "$@"
}

cmd_pause() {
  containerd_up || die "the node's containerd is not running"
  local bin; bin=$(readlink -f "$BIN_DIR/pause")
  local archive=$TMP/pause-$$.tar id
  id=$(python3 "$HACK_DIR/mkimage.py" --tag "$PAUSE_IMAGE" --out "$archive" --file "$bin:/pause:0755" --entrypoint /pause)
  if [[ $(containerd_id "$PAUSE_IMAGE" || true) != "$id" ]]; then
    $CTR -n k8s.io images import "$archive" >/dev/null
    log "imported $PAUSE_IMAGE ($id)"
  fi
  rm -f "$archive"
}

# Jaeger all-in-one (built from its Go module by build-binaries.sh) as a one-layer image: the
# trace backend the tracing e2e test runs in the cluster. Real clusters use Jaeger's own images.
cmd_jaeger() {
  containerd_up || die "the node's containerd is not running"
  [[ -x $BIN_DIR/jaeger ]] || bash "$HACK_DIR/build-binaries.sh" jaeger
  local bin; bin=$(readlink -f "$BIN_DIR/jaeger")
  local archive=$TMP/jaeger-$$.tar id
  id=$(python3 "$HACK_DIR/mkimage.py" --tag "$JAEGER_IMAGE" --out "$archive" --file "$bin:/jaeger:0755" \
    --entrypoint /jaeger --user 10001:10001)
  if [[ $(containerd_id "$JAEGER_IMAGE" || true) != "$id" ]]; then
    $CTR -n k8s.io images import "$archive" >/dev/null
    log "imported $JAEGER_IMAGE ($id)"
  fi
  rm -f "$archive"
}

cmd_all() {
  cmd_base
  local built=() image dockerfile
  # The project's images: the operator, the workload, and Redis (for the local cluster only;
  # real clusters use the public redis image).
  for pair in "$OPERATOR_IMAGE=operator/Dockerfile" "$WORKLOAD_IMAGE=workload/Dockerfile" \
              "$REDIS_IMAGE=hack/images/redis.Dockerfile"; do
    image=${pair%%=*} dockerfile=$REPO_ROOT/${pair#*=}
    # The operator ships the dashboard's charting library, fetched from npm (never committed).
    if [[ $image == "$OPERATOR_IMAGE" ]]; then bash "$HACK_DIR/dashboard-assets.sh"; fi
    cmd_build "$image" "$dockerfile"; built+=("$image")
  done
  if containerd_up; then cmd_import "${built[@]}"; else log "cluster is down: images built, not imported (run 'make images' again after 'make cluster-up')"; fi
}

sub=${1:-all}; shift || true
case $sub in
  all) cmd_all ;;
  base) cmd_base ;;
  build) cmd_build "$@" ;;
  import) cmd_import "$@" ;;
  wheels) cmd_wheels "$@" ;;
  pause) cmd_pause ;;
  jaeger) cmd_jaeger ;;
  podman) podman "$@" ;;  # podman with the project's storage, e.g. `hack/images.sh podman images`
  *) die "unknown subcommand $sub (all|base|build|import|wheels|pause|jaeger|podman)" ;;
esac
