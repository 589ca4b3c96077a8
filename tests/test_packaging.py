"""The installed package is the whole package: what setuptools builds from pyproject.toml (its
`build_py` step, which makes the wheel's contents) holds every module under reconciler/ (the verbs
in reconciler/commands/, the sandbox in reconciler/sandbox/) and the schema. The suite imports the
source tree, so without this a subpackage missing from the packaging configuration would pass every
other test and break `reconciler` once installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_wheel_ships_every_module_and_the_schema(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "reconciler", src / "reconciler", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # setuptools reads pyproject.toml's package list and package data; build_py lays the package out
    # as a wheel holds it (bdist_wheel zips exactly this), without needing the `wheel` package
    lib = tmp_path / "lib"
    out = subprocess.run(
        [sys.executable, "-c", "from setuptools import setup; setup()", "build_py", "--build-lib", str(lib)],
        cwd=src,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    shipped = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    expected = {p.relative_to(src).as_posix() for p in (src / "reconciler").rglob("*.py")}
    assert "reconciler/commands/plan.py" in expected and "reconciler/sandbox/app.py" in expected
    assert expected - shipped == set(), "modules missing from the wheel (pyproject.toml's package list)"
    assert "reconciler/manifest.schema.json" in shipped and "reconciler/py.typed" in shipped
