"""`reconciler sandbox serve` with no --db serves the embedded sandbox plan and apply use from the
current directory, and says which file (issue 23: one sandbox per project)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def _first_lines(cwd: Path, n: int) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CLARIFAI_PAT", "RECONCILER_SANDBOX_DB")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen([sys.executable, "-m", "reconciler", "sandbox", "serve", "--port", "0"], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        return [proc.stdout.readline().rstrip("\n") for _ in range(n)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_uses_the_project_sandbox_found_from_here(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("RECONCILER_SANDBOX_DB", raising=False)
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "examples" / "one").mkdir(parents=True)
    want = repo / ".reconciler" / "sandbox.sqlite"
    lines = _first_lines(repo / "examples" / "one", 3)
    assert lines[0].startswith(f"sandbox: serving the embedded sandbox that plan and apply use from here: {want} ")
    assert "project root" in lines[0]
    assert any(f"database {want}" in ln for ln in lines)
    assert want.exists()
    # and plan, run from anywhere in the repository on a manifest kept elsewhere in it, finds the same file
    from reconciler.commands.connect import find_sandbox

    assert find_sandbox(repo / "examples" / "one")[0] == want
