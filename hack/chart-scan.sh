#!/usr/bin/env bash
# Policy scan of what the chart installs and the operator creates: renders the chart twice
# (defaults; every option on), adds the children rendered from the examples, and runs
# checkov's Kubernetes checks on the manifests. 0 failures, or the check is skipped in
# hack/checkov.yaml with the reason written next to it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
CACHE=${GENCLUSTER_CACHE:-$HOME/.cache/gencluster}
checkov=$(bash "$here/tools.sh" checkov)
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
helm=$CACHE/bin/helm
chart=${CHART_DIR:-$root/charts/gencluster-operator}  # another copy, for the scanner's own test
"$helm" template gencluster "$chart" --namespace gencluster-system >"$out/defaults.yaml"
"$helm" template gencluster "$chart" --namespace gencluster-system \
  $(sed -n 's/^ *# *scan-set: *//p' "$here/checkov.yaml" | sed 's/^/--set /') >"$out/everything.yaml"
# And what the operator itself creates: the children rendered from the examples (the unit
# tests' golden files, kept equal to the renderers' output).
cp "$root"/tests/render/golden/*-children.yaml "$out/"
echo "[chart-scan] checkov $("$checkov" --version): the chart (defaults, every option on) and the operator's children"
"$checkov" --config-file "$here/checkov.yaml" --directory "$out"
