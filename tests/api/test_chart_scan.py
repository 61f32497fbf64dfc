"""`make chart-scan` (part of `make lint`) fails on a chart that breaks a policy.

The gate is only worth having if it can fail: a copy of the chart whose operator container
asks for privilege escalation must be refused, and the real chart must pass.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def scan(chart: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ROOT / "hack" / "chart-scan.sh")], capture_output=True, text=True,
                          timeout=600, env={**os.environ, "CHART_DIR": str(chart)})


def test_scan_passes_the_chart_and_fails_a_weakened_copy(tmp_path: Path) -> None:
    ok = scan(ROOT / "charts" / "gencluster-operator")
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "Failed checks: 0" in ok.stdout

    weak = tmp_path / "chart"
    shutil.copytree(ROOT / "charts" / "gencluster-operator", weak)
    deployment = weak / "templates" / "deployment.yaml"
    text = deployment.read_text()
    assert "allowPrivilegeEscalation: false" in text
    deployment.write_text(text.replace("allowPrivilegeEscalation: false", "allowPrivilegeEscalation: true"))
    bad = scan(weak)
    assert bad.returncode != 0
    assert "CKV_K8S_20" in bad.stdout, bad.stdout[-3000:]  # containers should not allow escalation
