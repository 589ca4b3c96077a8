"""Choosing a project's apps: `--app NAME` (repeatable) and `--changed-since REF`.

Contract:
- `select_apps(project, names=(), changed_since=None) -> list[AppEntry]`, in project order: every
  app, or those named (an unknown name is one error line listing the known ones), narrowed to
  those whose files changed since `changed_since` when it is given.
- `changed_files(root, ref) -> set[Path]`: what differs between the merge base of `ref` and HEAD
  and the working tree (committed, staged, unstaged and untracked, deletions included), as
  absolute paths. The merge base makes this robust to squash merges: on a pull request REF is the
  target branch; after a merge REF is the branch's previous tip (GitHub's `github.event.before`),
  itself the merge base, so the diff is exactly the merged change. A pull request's head commit
  is never needed (it may be gone with its branch). An app is selected when its manifest, an
  overlay or a var file changed; a change to reconciler.yaml itself selects every app.
- Git failures are one line naming REF and what to do, never "nothing changed".
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

from reconciler.core.errors import ReconcilerError
from reconciler.project.load import AppEntry, Project


def select_apps(project: Project, names: Sequence[str] = (), changed_since: str | None = None) -> list[AppEntry]:
    """The apps to act on (see the module docstring)."""
    apps = list(project.apps)
    if names:
        known = project.names()
        unknown = [n for n in dict.fromkeys(names) if n not in known]
        if unknown:
            raise ReconcilerError(
                f"--app {', '.join(unknown)}: no such app in {project.rel(project.path)}; its apps are: {', '.join(known)}"
            )
        wanted = set(names)
        apps = [a for a in apps if a.name in wanted]
    if changed_since is not None:
        changed = changed_files(project.root, changed_since)  # resolved: git names the real paths
        if project.path.resolve() in changed:
            return apps
        apps = [a for a in apps if any(f.resolve() in changed for f in a.files)]
    return apps


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        raise ReconcilerError("--changed-since needs git, which is not installed") from None
    except subprocess.TimeoutExpired:
        raise ReconcilerError(f"--changed-since: git {args[0]} did not answer within 120 s") from None
    if done.returncode != 0:
        line = next((ln.strip() for ln in done.stderr.splitlines() if ln.strip()), f"exit code {done.returncode}")
        raise _GitFailed(line)
    return done.stdout


class _GitFailed(Exception):
    pass


def changed_files(root: Path, ref: str) -> set[Path]:
    """The files changed since `ref`'s merge base with HEAD (see the module docstring)."""
    if ref.startswith("-"):
        raise ReconcilerError(f"--changed-since {ref}: a git ref cannot start with '-'")
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel").strip())
    except _GitFailed as err:
        raise ReconcilerError(f"--changed-since {ref}: the project is not in a git repository: {err}") from None
    try:
        _git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except _GitFailed:
        raise ReconcilerError(
            f"--changed-since {ref}: git does not know this commit (a shallow clone or an unfetched branch? "
            "fetch it, e.g. actions/checkout with fetch-depth: 0)"
        ) from None
    try:
        base = _git(top, "merge-base", ref, "HEAD").strip()
    except _GitFailed as err:
        raise ReconcilerError(
            f"--changed-since {ref}: git cannot find a merge base (shallow clone? use fetch-depth: 0): {err}"
        ) from None
    try:
        diff = _git(top, "diff", "--name-only", "--no-renames", "-z", base, "--")
        untracked = _git(top, "ls-files", "--others", "--exclude-standard", "--full-name", "-z")
    except _GitFailed as err:
        raise ReconcilerError(f"--changed-since {ref}: git diff failed: {err}") from None
    names = [n for n in (diff + untracked).split("\0") if n]
    return {(top / n).resolve() for n in names}
