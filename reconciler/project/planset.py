"""Saved plan sets: `plan --out DIR` in a project writes one saved plan per app and an index;
`apply DIR` and `show DIR` read them back as a set.

Contract:
- `write_plan_set(folder, project, runs, *, base=None)`: `DIR/<name>.plan.json` for every app
  that planned (the saved-plan format of `plan --out FILE`, empty plans too, mode 0600), then
  `DIR/index.json`, written last (a reader never sees an index naming a plan not yet written):
  ``{format_version: 1, kind: "reconciler-plan-set", created_at, git: {head}, project,
  apps: [{name, environment, file, sha256, app_id, user_id, endpoint, empty, entry_sha256,
  inputs: {path: sha256}}]}``. `inputs` are the app's manifest, overlays and var files, relative
  to the project's folder; `entry_sha256` fingerprints its entry in reconciler.yaml.
- `read_plan_set(folder) -> PlanSet`: the index, checked (`PlanError` naming the folder and what
  is wrong, one line). `is_plan_set(path)`: a folder holding an `index.json`.
- `PlanSet.load(app) -> Plan`: one app's saved plan after checking the file's sha256 against the
  index (an edited or swapped file is refused), the file name being a plain `NAME.plan.json`.
- `PlanSet.check_age(max_age_s)`, `PlanSet.stale_inputs(app, project) -> str | None`: a set older
  than allowed is refused; an app whose inputs or entry changed since the plan (in the project
  the command runs in) gets the line saying which, so the set applied is the one reviewed;
  `same_desired(plan, fresh)`: and the plan wants what those files say (a plan made from other
  files under a vouching index is refused).
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.errors import PlanError

if TYPE_CHECKING:
    from reconciler.core.state import State
    from reconciler.planning.actions import Plan
    from reconciler.project.load import AppEntry, Project
    from reconciler.project.run import AppRun

INDEX = "index.json"
SET_KIND = "reconciler-plan-set"
_FILE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\.plan\.json$")
#: an index larger than this is not one we wrote
_MAX_INDEX_BYTES = 16 * 1024 * 1024


def sha256_file(path: Path) -> str:
    from reconciler.core.fileio import read_regular

    return hashlib.sha256(read_regular(str(path))).hexdigest()


def entry_sha256(entry: AppEntry) -> str:
    """A fingerprint of an app's entry in reconciler.yaml (what it plans from and connects with)."""
    blob = {
        "name": entry.name,
        "files": [str(p) for p in entry.files],
        "vars": {k: g.value for k, g in entry.vars},
        "environment": entry.environment,
        "pat_env": entry.pat_env,
        "api_base": entry.api_base,
        "user_id": entry.user_id,
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _git_head(root: Path) -> str | None:
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def write_plan_set(folder: str, project: Project, runs: list[AppRun]) -> list[str]:
    """Write the set (see the module docstring); returns the plan files written."""
    from reconciler.api.secrets import mask_secrets
    from reconciler.core.fileio import write_atomic
    from reconciler.planning.serialize import plan_to_file_dict

    out = Path(folder)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PlanError(f"cannot create the plan folder {folder}: {err.strerror or err}") from None
    apps, written = [], []
    for run in runs:
        if run.plan is None:
            continue
        name = f"{run.name}.plan.json"
        try:
            text = mask_secrets(json.dumps(plan_to_file_dict(run.plan), indent=1, allow_nan=False))
        except ValueError:
            raise PlanError(f"cannot write {out / name}: the plan holds a non-finite number (NaN or infinity)") from None
        _write(write_atomic, out / name, text)
        written.append(str(out / name))
        apps.append(
            {
                "name": run.name,
                "environment": run.entry.environment,
                "file": name,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "app_id": run.plan.app_id,
                "user_id": run.plan.user_id,
                "endpoint": run.plan.endpoint,
                "empty": run.plan.empty,
                "entry_sha256": entry_sha256(run.entry),
                "inputs": {project.rel(p): sha256_file(p) for p in run.entry.files},
            }
        )
    index = {
        "format_version": 1,
        "kind": SET_KIND,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git": {"head": _git_head(project.root)},
        "project": project.rel(project.path),
        "apps": apps,
    }
    _write(write_atomic, out / INDEX, json.dumps(index, indent=1) + "\n")
    return written


def _write(write_atomic: Any, path: Path, text: str) -> None:
    try:
        write_atomic(str(path), text, private=True)
    except OSError as err:
        raise PlanError(f"cannot write {path}: {err.strerror or err}") from None


def is_plan_set(path: str) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, INDEX))


@dataclass
class PlanSet:
    folder: Path
    index: dict[str, Any]

    @property
    def apps(self) -> list[dict[str, Any]]:
        return list(self.index["apps"])

    def names(self) -> list[str]:
        return [a["name"] for a in self.apps]

    def path_of(self, app: dict[str, Any]) -> Path:
        return self.folder / app["file"]

    def load(self, app: dict[str, Any]) -> Plan:
        """One app's saved plan, its file checked against the index's sha256."""
        from reconciler.core.fileio import read_regular
        from reconciler.planning.planfile import load_saved_plan

        path = self.path_of(app)
        try:
            raw = read_regular(str(path))
        except OSError as err:
            raise PlanError(f"{path}: cannot read the saved plan: {err.strerror or err}") from None
        if hashlib.sha256(raw).hexdigest() != app["sha256"]:
            raise PlanError(
                f"{path} is not the file {INDEX} lists (its sha256 differs): the plan set was edited; make a new plan"
            )
        try:
            data = json.loads(raw)
        except ValueError:
            raise PlanError(f"{path} is not a usable saved plan: not valid JSON") from None
        if not isinstance(data, dict):
            raise PlanError(f"{path} is not a usable saved plan: not a JSON object")
        return load_saved_plan(str(path), data)

    def check_age(self, max_age_s: float | None, now: float | None = None) -> None:
        if max_age_s is None:
            return
        made = calendar.timegm(time.strptime(self.index["created_at"], "%Y-%m-%dT%H:%M:%SZ"))
        age = (time.time() if now is None else now) - made
        if age > max_age_s:
            raise PlanError(
                f"the plan set in {self.folder} was made {_duration(age)} ago ({self.index['created_at']}), "
                f"more than --max-plan-age {_duration(max_age_s)}; make a new plan"
            )

    def stale_inputs(self, app: dict[str, Any], project: Project) -> str | None:
        """Why `app`'s plan no longer matches the project's files, or None."""
        entry = next((a for a in project.apps if a.name == app["name"]), None)
        if entry is None:
            return f"app {app['name']} is no longer in {project.rel(project.path)}; make a new plan"
        if app.get("entry_sha256") != entry_sha256(entry):
            return f"the entry of app {app['name']} in {project.rel(project.path)} changed since the plan; make a new plan"
        for rel, digest in sorted(app["inputs"].items()):
            path = project.root / rel
            try:
                now = sha256_file(path)
            except OSError:
                return f"{rel} no longer exists (it did when the plan was made); make a new plan"
            if now != digest:
                return f"{rel} changed since the plan; make a new plan"
        return None


def same_desired(plan: Plan, fresh: State) -> bool:
    """Whether `plan` (re-made from a saved plan) wants exactly the state `fresh` (its app's files
    loaded now) describes: a plan set whose index vouches for the files but whose plans were made
    from something else (edited, or built by another job) is refused."""
    from reconciler.planning.plan import fill_implicit

    user = plan.user_id  # the user the plan was made for; writers default to it (`fill_implicit`)
    now = fill_implicit(dataclasses.replace(fresh, user_id=user, source=""), None)
    return now == dataclasses.replace(plan.desired, user_id=user, source="")


def read_plan_set(folder: str) -> PlanSet:
    """The plan set in `folder`, its index checked (see the module docstring)."""
    from reconciler.core.fileio import read_regular

    where = Path(folder)
    try:
        raw = read_regular(str(where / INDEX), _MAX_INDEX_BYTES + 1)
        index = json.loads(raw)
    except OSError as err:
        raise PlanError(f"{folder} is not a usable plan set: cannot read {INDEX}: {err.strerror or err}") from None
    except (ValueError, RecursionError):
        raise PlanError(f"{folder} is not a usable plan set: {INDEX} is not valid JSON") from None
    problem = _index_problem(index)
    if problem:
        raise PlanError(f"{folder} is not a usable plan set: {problem}")
    return PlanSet(where, index)


def _index_problem(index: Any) -> str | None:
    if not isinstance(index, dict) or index.get("kind") != SET_KIND:
        return f'{INDEX} has no "kind": "{SET_KIND}"'
    if index.get("format_version") != 1:
        return f"{INDEX} has format_version {index.get('format_version')!r}; this version reads 1"
    if not isinstance(index.get("created_at"), str) or not re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", index["created_at"]):
        return f"{INDEX} has no valid created_at"
    apps = index.get("apps")
    if not isinstance(apps, list):
        return f"{INDEX} has no list of apps"
    seen = set()
    for i, a in enumerate(apps):
        if not isinstance(a, dict):
            return f"apps[{i}] is not an object"
        for key, kind in (("name", str), ("file", str), ("sha256", str), ("inputs", dict), ("empty", bool)):
            if not isinstance(a.get(key), kind):
                return f"apps[{i}].{key} is missing or of the wrong type"
        if not _FILE.match(a["file"]) or a["file"] != f"{a['name']}.plan.json":
            return f"apps[{i}].file {a['file']!r} is not NAME.plan.json for its app"
        if a["name"] in seen:
            return f"app {a['name']} is listed twice"
        seen.add(a["name"])
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in a["inputs"].items()):
            return f"apps[{i}].inputs must map paths to sha256 strings"
    return None


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """'72h', '30m', '7d', '90s' or a number of seconds -> seconds; ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 72h or 7d")
    value = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if value <= 0:
        raise ValueError(f"{text!r}: a duration is more than 0")
    return value


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
