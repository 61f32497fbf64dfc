"""The dashboard tests need uPlot in the package (hack/dashboard-assets.sh: npm ci, cached)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session", autouse=True)
def dashboard_assets() -> None:
    proc = subprocess.run(["bash", str(ROOT / "hack" / "dashboard-assets.sh")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"hack/dashboard-assets.sh failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
