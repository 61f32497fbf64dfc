"""The README's commands install what they need: the make graph and the dependency check.

A green CI once hid a missing install step (`.ci/run` installed packages that `make demo` never
did). These tests fail when a target that needs the Debian packages, binaries or venv stops
depending on the step that installs them, or when `.ci/run` grows an install step of its own.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dry_run(target: str) -> list[str]:
    """The commands `make -n TARGET` would run, in order (nothing is executed)."""
    proc = subprocess.run(["make", "-n", "--no-print-directory", target], cwd=ROOT,
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "MAKEFLAGS": ""})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def first(lines: list[str], pattern: str) -> int:
    for i, line in enumerate(lines):
        if re.search(pattern, line):
            return i
    raise AssertionError(f"no command matching {pattern!r} in:\n" + "\n".join(lines))


@pytest.mark.parametrize("target, needs", [
    ("demo", ["install-deps.sh", "venv.sh", "build-binaries.sh", "cluster-up.sh", "images.sh"]),
    ("test", ["install-deps.sh", "venv.sh", "build-binaries.sh"]),
    ("lint", ["install-deps.sh", "venv.sh", "build-binaries.sh helm"]),
    ("cluster-up", ["install-deps.sh", "build-binaries.sh"]),
    ("images", ["install-deps.sh", "build-binaries.sh"]),
    ("install", ["install-deps.sh"]),
])
def test_target_installs_its_dependencies_first(target: str, needs: list[str]) -> None:
    lines = dry_run(target)
    deps = first(lines, r"hack/install-deps\.sh")
    for step in needs:
        assert first(lines, re.escape(step)) >= deps, f"{target}: {step} runs before install-deps"
    if target == "demo":
        assert first(lines, r"gencluster demo") > first(lines, r"images\.sh")
    if target == "test":
        assert first(lines, r"-m pytest") > first(lines, r"build-binaries\.sh")


def test_ci_runs_only_the_readme_commands() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    commands = [line.strip() for line in ci.splitlines()
                if line.strip() and not line.lstrip().startswith(("#", "stage", "set ", "cd ", "export ",
                                                                    "start=", "cleanup", "trap"))]
    made = [c for c in commands if c.startswith("make ")]
    assert [c.split()[-1] for c in made] == ["lint", "test"], commands
    assert commands == made, f".ci/run runs more than make lint / make test: {commands}"
    for target in ("make lint", "make test", "make demo"):
        assert target in readme


def test_missing_packages_are_reported_with_the_step_that_installs_them(tmp_path: Path) -> None:
    # A dpkg-query that says containerd and podman are absent: --check names them and the command.
    fake = tmp_path / "dpkg-query"
    fake.write_text('#!/bin/sh\ncase "$*" in *containerd*|*podman*) exit 1;; esac\n'
                    'echo "install ok installed"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", str(ROOT / "hack" / "install-deps.sh"), "--check"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "missing: containerd podman" in proc.stdout
    assert re.search(r"would run: (sudo )?apt-get update && (sudo )?apt-get install -y containerd podman", proc.stdout)

    everything = tmp_path / "all"
    everything.mkdir()
    (everything / "dpkg-query").write_text('#!/bin/sh\necho "install ok installed"\n')
    (everything / "dpkg-query").chmod(0o755)
    env["PATH"] = f"{everything}:{os.environ['PATH']}"
    proc = subprocess.run(["bash", str(ROOT / "hack" / "install-deps.sh"), "--check"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Debian packages present" in proc.stdout, proc.stdout
