#!/usr/bin/env bash
# The dashboard's charting library (uPlot), from npm, pinned by package-lock.json; never committed
# and never loaded from a CDN at run time.
#
#   hack/dashboard-assets.sh          npm ci (cached) and copy the built files into the package:
#                                     operator/gencluster/dashboard/web/vendor/ (git-ignored)
#   hack/dashboard-assets.sh --check  exit 1 unless the copied files match the lockfile's build
#
# node_modules lives outside the clone, in $GENCLUSTER_CACHE/npm/<sha256 of the lockfile>, so a
# second clone or a rerun costs nothing; `npm ci` verifies every package against the lockfile's
# integrity hashes. The operator image build (hack/images.sh) and the dashboard tests run this
# first. Needs node and npm (hack/install-deps.sh installs Debian's when missing).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
LOG_TAG=dashboard
ASSETS=$REPO_ROOT/operator/gencluster/dashboard/assets
VENDOR=$REPO_ROOT/operator/gencluster/dashboard/web/vendor
FILES=(uplot/dist/uPlot.iife.min.js uplot/dist/uPlot.min.css uplot/LICENSE)

key=$(sha256sum "$ASSETS/package-lock.json" | cut -c1-16)
dir=$GENCLUSTER_CACHE/npm/$key
stamp=$VENDOR/.lock-$key

present() {  # the stamp of this lockfile and every file copied
  [[ -f $stamp ]] || return 1
  local f
  for f in "${FILES[@]}"; do [[ -f $VENDOR/$(basename "$f") ]] || return 1; done
}
if [[ ${1:-} == --check ]]; then
  present || { echo "[dashboard] assets missing or stale: run hack/dashboard-assets.sh" >&2; exit 1; }
  exit 0
fi
if present; then
  log "uPlot assets present ($VENDOR, lockfile $key)"; exit 0
fi
command -v npm >/dev/null || die "npm missing: run 'bash hack/install-deps.sh'"
if [[ ! -f $dir/.ok ]]; then
  log "npm ci (lockfile $key) -> $dir"
  rm -rf "$dir"; mkdir -p "$dir"
  cp "$ASSETS/package.json" "$ASSETS/package-lock.json" "$dir/"
  (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
     --cache "$GENCLUSTER_CACHE/npm-cache") || die "npm ci failed"
  touch "$dir/.ok"
fi
mkdir -p "$VENDOR"
rm -f "$VENDOR"/.lock-*
for f in "${FILES[@]}"; do
  src=$dir/node_modules/$f
  [[ -f $src ]] || die "$f missing from the uplot package"
  cp "$src" "$VENDOR/$(basename "$f")"
done
touch "$stamp"
log "uPlot $(node -p "require('$dir/node_modules/uplot/package.json').version") -> $VENDOR"
