"""The chart's monitoring pieces as `helm template` renders them (the binaries are the ones
hack/build-binaries.sh caches: helm, prometheus, promtool)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "gencluster-operator"
BIN = Path(os.environ.get("GENCLUSTER_CACHE", Path.home() / ".cache" / "gencluster")) / "bin"


def binary(name: str) -> Path:
    path = BIN / name
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is missing: build it with `bash hack/build-binaries.sh "
                             f"{name}` (make binaries)")
    return path


def render(*sets: str, release: str = "gencluster", namespace: str = "gencluster-system") -> list[dict[str, Any]]:
    args = [str(binary("helm")), "template", release, str(CHART), "--namespace", namespace]
    for s in ("prometheusRule.enabled=true", "grafanaDashboard.enabled=true", *sets):
        args += ["--set", s]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs if d["kind"] == kind]
    return doc


def rule_groups(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The PrometheusRule's spec as a Prometheus rule file."""
    return {"groups": one(docs, "PrometheusRule")["spec"]["groups"]}


def dashboard(docs: list[dict[str, Any]]) -> dict[str, Any]:
    import json
    cm = [d for d in docs if d["kind"] == "ConfigMap" and "gencluster.json" in (d.get("data") or {})]
    assert len(cm) == 1
    return dict(json.loads(cm[0]["data"]["gencluster.json"]))


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary("promtool")), *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)
