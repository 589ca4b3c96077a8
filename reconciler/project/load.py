"""The project file, `reconciler.yaml`: finding it and reading it into a `Project`.

Contract:
- `find_project(start, explicit=None) -> Path | None`: `explicit` (`--project PATH`, else
  ``$RECONCILER_PROJECT``) when given (a folder means its `reconciler.yaml`); else the first
  `reconciler.yaml` in `start` or a parent folder. The walk stops after the first folder holding
  `.git` (the repository's root) or at the file system root, as git finds `.git`.
- `load_project(path) -> Project`: the file read with the manifests' YAML reader
  (`manifest.yamlload`: line:col for every node, duplicate keys refused), checked against
  `project.schema.json` (packaged; `schemas/` has the published copy), then: app names unique,
  and every manifest, overlay and var file a regular file. Every problem is a `Problem` at
  `reconciler.yaml:line:col`, all of them raised at once as a `ManifestError`.
- Paths in the file are relative to its folder (`Project.root`); `AppEntry` holds them resolved.
Nothing here connects or reads a manifest: `run.py` does, per app.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.core.errors import ManifestError, Problem, ReconcilerError
from reconciler.core.fileio import read_regular
from reconciler.manifest.checks import did_you_mean
from reconciler.manifest.variables import Given, Inputs, read_inputs
from reconciler.manifest.yamlload import MAX_BYTES, Document, load_yaml

if TYPE_CHECKING:
    import jsonschema

PROJECT_FILE = "reconciler.yaml"
DEFAULT_PAT_ENV = "CLARIFAI_PAT"


@dataclass(frozen=True)
class AppEntry:
    """One app of the project, its paths resolved against the project's folder."""

    name: str
    manifest: Path
    overlays: tuple[Path, ...] = ()
    var_files: tuple[Path, ...] = ()
    #: variable values from the file, each with where it was written (`Given`)
    vars: tuple[tuple[str, Given], ...] = ()
    environment: str = ""
    pat_env: str = DEFAULT_PAT_ENV
    api_base: str | None = None
    user_id: str | None = None
    #: the line of its entry in reconciler.yaml (for messages)
    line: int = 0

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file the app's desired state is made from: manifest, overlays, var files."""
        return (self.manifest, *self.overlays, *self.var_files)

    def inputs(self) -> Inputs:
        """Its variable values: var files in order, then `vars` (which win), as `--var-file` and
        `--var` would give them."""
        given = read_inputs((), [display_path(p) for p in self.var_files])
        given.given.update(dict(self.vars))
        return given


@dataclass(frozen=True)
class Project:
    path: Path  # the reconciler.yaml, absolute
    apps: tuple[AppEntry, ...] = field(default_factory=tuple)

    @property
    def root(self) -> Path:
        return self.path.parent

    def rel(self, p: Path) -> str:
        """`p` as the project names it: relative to its folder when inside it."""
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def names(self) -> list[str]:
        return [a.name for a in self.apps]


# --- finding ------------------------------------------------------------------------------------


def find_project(start: Path, explicit: str | None = None) -> Path | None:
    """The project file (see the module docstring), or None when there is none."""
    given = explicit or os.environ.get("RECONCILER_PROJECT") or None
    if given:
        p = Path(given).absolute()
        p = p / PROJECT_FILE if p.is_dir() else p
        if not p.is_file():
            why = "--project" if explicit else "RECONCILER_PROJECT"
            raise ReconcilerError(f"{why} names {given}, which is not a project file ({PROJECT_FILE})")
        return p
    here = start.absolute()
    for folder in (here, *here.parents):
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None  # the repository's root: a project outside it is not this one's
    return None


# --- reading ------------------------------------------------------------------------------------


@functools.cache
def schema() -> dict[str, Any]:
    """The project file's JSON Schema, as shipped inside the package."""
    return json.loads(resources.files("reconciler").joinpath("project.schema.json").read_text("utf-8"))


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def load_project(path: Path) -> Project:
    """Read and check `path` (see the module docstring); `ManifestError` with every problem."""
    path = path.absolute()
    name = display_path(path)
    try:
        data = read_regular(name, MAX_BYTES + 1)
    except OSError as err:
        raise ManifestError([Problem(name, 1, 1, f"cannot read the project file: {err.strerror or err}")]) from None
    doc = load_yaml(data, name)
    if doc.problems or not isinstance(doc.data, dict):
        raise ManifestError([_project_wording(p) for p in doc.problems])
    doc.problems += _schema_problems(doc)
    if doc.problems:
        raise ManifestError(doc.problems)
    project = _build(doc, path)
    _check_entries(doc, project)
    if doc.problems:
        raise ManifestError(doc.problems)
    return project


def display_path(p: Path) -> str:
    """`p` as messages show it: relative to the current directory when below it, else absolute."""
    rel = os.path.relpath(p)
    return str(p) if rel.startswith("..") else rel


def _project_wording(p: Problem) -> Problem:
    """The YAML reader words an empty or non-mapping file for manifests; say what a project is."""
    if p.message.startswith(("empty manifest", "the top level must be a mapping")):
        return Problem(p.file, p.line, p.column, "a project file is a mapping with 'apps:', a list of the project's apps")
    return p


def _schema_problems(doc: Document) -> list[Problem]:
    out: list[Problem] = []
    for err in sorted(_validator().iter_errors(doc.data), key=lambda e: list(map(str, e.absolute_path))):
        path = tuple(err.absolute_path)
        where = _label(path)
        v, inst, want = err.validator, err.instance, err.validator_value
        if v == "additionalProperties" and isinstance(inst, dict):
            allowed = set(err.schema.get("properties", {}))
            for key in inst:
                if key not in allowed:
                    hint = did_you_mean(key, allowed)
                    out.append(doc.problem(path + (key,), f"unknown field '{key}'{hint}", at_key=True))
        elif v == "required" and isinstance(inst, dict):
            out += [doc.problem(path, f"missing required field '{k}'") for k in want if k not in inst]
        elif v == "type":
            want_words = " or ".join(_TYPE_WORDS.get(t, t) for t in ([want] if isinstance(want, str) else want))
            out.append(doc.problem(path, f"{where} must be {want_words}"))
        elif v == "pattern" and path and path[-1] in ("name", "environment"):
            out.append(doc.problem(path, f"{where} {inst!r}: {_NAME_RULE}"))
        elif "propertyNames" in err.relative_schema_path and isinstance(inst, str):  # a bad key in `vars`
            out.append(doc.problem(path + (inst,), f"{inst!r} is not a variable name: {_VAR_RULE}", at_key=True))
        elif v == "pattern" and path and path[-1] == "pat_env":
            out.append(doc.problem(path, f"pat_env {inst!r} is not an environment variable name: {_VAR_RULE}"))
        elif v == "pattern" and path and path[-1] == "api_base":
            out.append(doc.problem(path, f"api_base {inst!r} must be an http:// or https:// URL"))
        elif v == "minItems":
            out.append(doc.problem(path, f"{where} must list at least one app"))
        elif v == "const":
            out.append(doc.problem(path, f"{where} must be {want!r}, not {inst!r}"))
        else:
            out.append(doc.problem(path, f"{where}: {err.message}"))
    return out


_NAME_RULE = "lowercase letters, digits, '.', '_' and '-', up to 63, starting with a letter or digit"
_VAR_RULE = "letters, digits and '_', not starting with a digit"
_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "number": "a number", "boolean": "true or false"}


def _label(path: tuple[Any, ...]) -> str:
    if not path:
        return "the project file"
    return "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else str(p)) for i, p in enumerate(path))


def _build(doc: Document, path: Path) -> Project:
    data: dict[str, Any] = doc.data
    defaults = data.get("defaults") or {}
    root = path.parent
    apps = []
    for i, a in enumerate(data["apps"]):

        def resolve(p: str) -> Path:
            return Path(os.path.normpath(root / p))

        given = tuple(
            (k, Given(v, doc.filename, *doc.pos(("apps", i, "vars", k)), text=False)) for k, v in (a.get("vars") or {}).items()
        )
        apps.append(
            AppEntry(
                name=a["name"],
                manifest=resolve(a["manifest"]),
                overlays=tuple(resolve(p) for p in a.get("overlays") or ()),
                var_files=tuple(resolve(p) for p in a.get("var_files") or ()),
                vars=given,
                environment=a.get("environment") or a["name"],
                pat_env=a.get("pat_env") or defaults.get("pat_env") or DEFAULT_PAT_ENV,
                api_base=a.get("api_base") or defaults.get("api_base"),
                user_id=a.get("user_id") or defaults.get("user_id"),
                line=doc.pos(("apps", i))[0],
            )
        )
    return Project(path, tuple(apps))


def _check_entries(doc: Document, project: Project) -> None:
    """Names unique; every file named is a regular file (said at the entry's line:col)."""
    seen: dict[str, int] = {}
    for i, a in enumerate(project.apps):
        if a.name in seen:
            doc.add(("apps", i, "name"), f"app name '{a.name}' is used twice (first at line {seen[a.name]})")
        else:
            seen[a.name] = doc.pos(("apps", i, "name"))[0]
        raw = doc.data["apps"][i]
        for key, files in (("manifest", [a.manifest]), ("overlays", list(a.overlays)), ("var_files", list(a.var_files))):
            for j, f in enumerate(files):
                where = ("apps", i, key) if key == "manifest" else ("apps", i, key, j)
                written = raw[key] if key == "manifest" else raw[key][j]
                if not f.exists():
                    doc.add(where, f"apps[{i}].{key}{'' if key == 'manifest' else f'[{j}]'}: no such file {written}")
                elif not f.is_file():
                    doc.add(where, f"apps[{i}].{key}{'' if key == 'manifest' else f'[{j}]'}: {written} is not a regular file")
