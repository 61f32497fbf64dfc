#!/usr/bin/env bash
# Pinned command-line tools from PyPI that must not share the project's venv (their
# dependencies would fight its pins), each in its own venv under $GENCLUSTER_CACHE keyed by
# version. Prints the path of the tool's executable.
#   hack/tools.sh checkov
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
CACHE=${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}
tool=${1:?usage: hack/tools.sh checkov}
case $tool in
  checkov) version=$CHECKOV_VERSION ;;
  *) echo "[tools] unknown tool $tool" >&2; exit 2 ;;
esac
venv=$CACHE/tools-$tool-$version
if [[ ! -x $venv/bin/.tool-ok ]]; then
  echo "[tools] installing $tool $version into $venv (about a minute, once)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "$tool==$version" >&2
  printf '#!/bin/sh\n' >"$venv/bin/.tool-ok"; chmod +x "$venv/bin/.tool-ok"
fi
echo "$venv/bin/$tool"
