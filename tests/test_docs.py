"""The README and docs/ stay true: the README is short, every relative link (and anchor) resolves,
every docs page is reachable from the README, and the quick start's first command block runs as
written, ending in a successful apply and an empty plan (issue 23)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def _anchors(text: str) -> set[str]:
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#+ (.*)$", text, re.M)}


def _links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text("utf-8"), flags=re.S)
    return [link for link in re.findall(r"\]\(([^)\s]+)\)", text) if not link.startswith(("http://", "https://", "mailto:"))]


def test_the_readme_is_at_most_400_lines():
    assert len(README.read_text("utf-8").splitlines()) <= 400


def test_every_relative_link_resolves():
    pages = [README, *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").glob("**/*.md"))]
    broken = []
    for page in pages:
        for link in _links(page):
            path, _, anchor = link.partition("#")
            target = (page.parent / path) if path else page
            if not target.exists():
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such file)")
            elif anchor and target.suffix == ".md" and anchor not in _anchors(target.read_text("utf-8")):
                broken.append(f"{page.relative_to(ROOT)}: {link} (no such heading)")
    assert not broken, broken


def test_every_docs_page_is_linked_from_the_readme():
    linked = {link.partition("#")[0] for link in _links(README)}
    missing = [p.name for p in (ROOT / "docs").glob("*.md") if f"docs/{p.name}" not in linked]
    assert not missing, missing


def test_the_quick_start_runs_as_written(tmp_path):
    """The first command of the quick start's first block, minus the install: against the embedded
    sandbox of a fresh copy of the examples, even with a PAT set (--sandbox)."""
    text = README.read_text("utf-8")
    block = text[text.index("## Quick start"):]
    block = block[block.index("```sh\n") + 6 :]
    block = block[: block.index("```")]
    line = next(ln for ln in block.splitlines() if ln.strip() and not ln.startswith("#"))
    steps = [shlex.split(s) for s in line.split("&&")]
    assert steps[0][:4] == ["python3", "-m", "pip", "install"], steps[0]
    commands = steps[1:]
    assert commands and all(c[0] == "reconciler" for c in commands)
    assert commands[-2][1] == "apply" and commands[-1][1] == "plan"
    repo = tmp_path / "clone"
    shutil.copytree(ROOT / "examples", repo / "examples", ignore=shutil.ignore_patterns(".reconciler"))
    (repo / ".git").mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("RECONCILER_SANDBOX_DB", "CLARIFAI_API_BASE", "CI")}
    env["CLARIFAI_PAT"] = "0123456789abcdef0123456789abcdef"  # an SDK user's PAT: --sandbox keeps it local
    env["PYTHONPATH"] = str(ROOT)
    out = ""
    for command in commands:
        done = subprocess.run([sys.executable, "-m", "reconciler", *command[1:]], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
        out = done.stdout
    assert "No changes" in out
    assert (repo / ".reconciler" / "sandbox.sqlite").exists()  # one sandbox, at the repository's root
