#!/usr/bin/env bash
# Creates (once) the project's virtualenv in the cache, keyed by a hash of pyproject.toml, links
# it at .venv, and installs the project itself in editable mode (cheap; repeated every time so
# that a new clone's path is the one on sys.path).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}
PY=${PYTHON:-python3}
# Keyed by the dependency lists only (not tool settings), and the interpreter's version.
requirements=$($PY - "$root/pyproject.toml" <<'PY'
import sys, tomllib
p = tomllib.load(open(sys.argv[1], "rb"))["project"]
print("\n".join(p["dependencies"] + [d for extra in p["optional-dependencies"].values() for d in extra]))
PY
)
key=$( (echo "$requirements"; $PY --version) | sha256sum | cut -c1-12)
venv=$CACHE/venv-$key
if [[ ! -x $venv/bin/gencluster-deps-ok ]]; then
  echo "[venv] creating $venv (torch is a large download the first time)" >&2
  rm -rf "$venv"
  $PY -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  # Dependencies only (from pyproject), so the cached venv never pins a clone's path.
  echo "$requirements" >"$venv/requirements.txt"
  # The pip cache is the one the image builds mount (hack/images.sh): torch and its CUDA wheels
  # (several GB) are downloaded once for the venv and the workload image together.
  echo "[venv] installing $(wc -l <"$venv/requirements.txt") pinned requirements (torch: ~3 GB of wheels; 3-5 min cold)" >&2
  PIP_CACHE_DIR=$CACHE/pip-cache "$venv/bin/pip" install --progress-bar off -r "$venv/requirements.txt" \
    | grep --line-buffered -E '^(Collecting|Successfully)' | sed -u 's/^/[venv] /' >&2
  printf '#!/bin/sh\n' >"$venv/bin/gencluster-deps-ok"; chmod +x "$venv/bin/gencluster-deps-ok"
fi
ln -sfn "$venv" "$root/.venv"
# Drop venvs of earlier dependency sets (each is several GB with torch).
for old in "$CACHE"/venv-[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]; do
  [[ -d $old && $old != "$venv" ]] && rm -rf "$old"
done
"$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$root" >/dev/null
echo "[venv] ready: $root/.venv -> $venv" >&2
