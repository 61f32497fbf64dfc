"""docs/architecture.md maps every module and every test folder: a new file without a line there
fails here, so the map a newcomer reads stays whole."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "architecture.md").read_text()


def _mentioned(rel: str) -> bool:
    """`edge/settings.py`, or the file's name in its package's row (`model.py`, ...)."""
    name = rel.rsplit("/", 1)[-1]
    return f"`{rel}`" in DOC or rel in DOC or f"`{name}`" in DOC or f"{name}`" in DOC


def test_every_module_is_on_the_map() -> None:
    missing = []
    for pkg in (ROOT / "operator" / "gencluster", ROOT / "workload" / "gencluster_workload"):
        for f in sorted(pkg.rglob("*.py")):
            rel = f.relative_to(pkg).as_posix()
            if f.name == "__init__.py" and rel != "__init__.py":
                rel = rel.rsplit("/", 1)[0] + "/"  # a package: its folder must be named
                if f"`{rel}`" not in DOC and f"**`{rel}" not in DOC:
                    missing.append(f"{pkg.name}/{rel}")
                continue
            if not _mentioned(rel):
                missing.append(f"{pkg.name}/{rel}")
    assert not missing, f"add these to docs/architecture.md: {missing}"


def test_every_test_folder_and_benchmark_is_on_the_map() -> None:
    folders = sorted(p.name for p in (ROOT / "tests").iterdir()
                     if p.is_dir() and not p.name.startswith((".", "__")))
    missing = [f for f in folders if f"tests/{f}/" not in DOC]
    missing += [b.name for b in (ROOT / "benchmarks").glob("*.py") if f"`{b.name}`" not in DOC]
    assert not missing, f"add these to docs/architecture.md: {missing}"
