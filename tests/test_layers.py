"""The layout (README "Layout"): subsystem packages whose imports point one way, few top-level
modules, no module over 800 lines.

The one-way rule is import-linter's `layers` contract in pyproject.toml (`[tool.importlinter]`):
a package may import only the packages listed below it, so no circle can form between them.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "reconciler"


def _layers() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    (contract,) = config["tool"]["importlinter"]["contracts"]
    assert contract["type"] == "layers"
    return list(contract["layers"])


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='pyproject.toml'))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_subsystem_packages_import_downwards_only():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_every_subsystem_package_has_a_place_in_the_layers():
    packages = {f"reconciler.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert len(packages) >= 5
    assert packages <= set(_layers()), sorted(packages - set(_layers()))


def test_a_circle_between_packages_breaks_the_contract(tmp_path):
    """The check can fail: a copy of the package in which `core` imports `planning` is refused."""
    import shutil

    shutil.copytree(PACKAGE, tmp_path / "reconciler", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "reconciler" / "core" / "errors.py"
    errors.write_text(errors.read_text("utf-8") + "\nfrom reconciler.planning import plan  # noqa: E402,F401\n", "utf-8")
    env_code = f"import sys; sys.path.insert(0, {str(tmp_path)!r}); "
    code = env_code + "from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='pyproject.toml'))"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "reconciler.core is not allowed to import reconciler.planning" in result.stdout


def test_the_top_level_keeps_few_plain_modules():
    plain = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(plain) <= 6, plain


def test_no_module_is_over_800_lines():
    long = {str(p.relative_to(ROOT)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text("utf-8").splitlines())) > 800}
    assert not long, long


def test_every_package_says_what_it_owns():
    for init in PACKAGE.rglob("__init__.py"):
        text = init.read_text("utf-8").strip()
        assert text.startswith('"""') and len(text) > 80, init
