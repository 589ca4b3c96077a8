"""Manifest variables: `${var.NAME}` and `${env.NAME}` references, substituted after YAML parsing
(and after overlays are merged) and before the schema stage of `manifest.py`.

Contract:
- `read_inputs(var_args, var_files, env)` turns `--var NAME=VALUE` strings and `--var-file FILE`
  (a YAML mapping) into `Inputs`; a malformed `--var` or an unreadable / non-mapping var file raises
  `ManifestError` at once (nothing can be substituted without them).
- `substitute(doc, inputs)` rewrites `doc.data` in place and appends `Problem`s to `doc.problems`;
  it never raises. Problems are located where the offending text was written: a bad reference at
  the string holding it (the positions of the Document are path-based, and substitution never
  changes a path), an undeclared `--var-file` key at that key in the var file.

Rules (README, "Environments"):
- Variables are declared under the top-level `variables:` mapping, ``NAME: {default, description}``.
  Values, highest precedence first: `--var`, then `--var-file` (later files win), then `default`.
- A string that is exactly one reference takes the value with its type (a threshold can be a
  number); a reference inside a longer string is interpolated as text (numbers and booleans are
  written as YAML would, mappings/lists are refused). `$${` writes a literal `${`.
- `--var` values are text; when the variable's default is a number or a boolean the text is read
  as one (an error otherwise), so `--var cut=0.8` stays a number.
- Placeholders (`Inputs.placeholders`, used by `validate`): a declared variable with no value is
  replaced by a placeholder (an id-like string, or a number where the schema wants one) and the
  problems located where it stands are dropped, so structure and every other reference are still
  checked (a pre-commit hook has no values).
- Errors: a reference other than `var.NAME` / `env.NAME`, an undeclared variable, a declared one
  with no value, an unset environment variable, a `--var` / var-file name the manifests do not
  declare. The `variables` section itself and mapping keys are never substituted.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.core.errors import ManifestError, Problem
from reconciler.core.fileio import read_regular
from reconciler.manifest.checks import did_you_mean
from reconciler.manifest.yamlload import MAX_BYTES, Document, Path, load_yaml

VAR_NAME = "^[A-Za-z_][A-Za-z0-9_]*$"
_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_NAME = re.compile(VAR_NAME)
CMDLINE = "<command line>"


@dataclass(frozen=True)
class Given:
    """A variable value from the command line or a var file, with where it was written."""

    value: Any
    file: str
    line: int
    column: int
    text: bool = False  # a --var string: converted to the default's type


@dataclass
class Inputs:
    given: dict[str, Given] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    #: `validate` without values: a declared variable with no value becomes a placeholder instead
    #: of a problem (`placeholder`), and its name is recorded in `placeheld`
    placeholders: bool = False
    placeheld: set[str] = field(default_factory=set)


def read_inputs(var_args: Sequence[str] = (), var_files: Sequence[str] = (), env: Mapping[str, str] | None = None) -> Inputs:
    """`--var-file`s in order, then `--var`s (which win). Raises ManifestError on bad input."""
    given: dict[str, Given] = {}
    problems: list[Problem] = []
    for path in var_files:
        try:
            data = read_regular(path, MAX_BYTES + 1)  # a FIFO or device is refused, not waited on
        except OSError as err:
            problems.append(Problem(path, 1, 1, f"cannot read var file: {err.strerror or err}"))
            continue
        doc = load_yaml(data, path)
        # load_yaml words a non-mapping top level for manifests; say what a var file is instead
        shape = [p for p in doc.problems if p.message.startswith("the top level must be a mapping")]
        if shape:
            problems.append(Problem(path, shape[0].line, shape[0].column, "a var file is a mapping of variable names to values"))
            continue
        if doc.problems or not isinstance(doc.data, dict):
            problems += doc.problems
            continue
        for name, value in doc.data.items():
            line, col = doc.key_pos((name,))
            if not _NAME.match(name):
                problems.append(
                    Problem(
                        path, line, col, f"invalid variable name {name!r}: letters, digits and '_', not starting with a digit"
                    )
                )
            given[name] = Given(value, path, line, col)
    for i, arg in enumerate(var_args, start=1):
        name, sep, value = arg.partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            problems.append(
                Problem(CMDLINE, 1, i, f"--var {arg!r}: expected NAME=VALUE with NAME made of letters, digits and '_'")
            )
            continue
        given[name] = Given(value, CMDLINE, 1, i, text=True)
    if problems:
        raise ManifestError(problems)
    return Inputs(given, os.environ if env is None else env)


def declared(data: Any) -> dict[str, Any]:
    decls = data.get("variables") if isinstance(data, dict) else None
    return decls if isinstance(decls, dict) else {}


def substitute(doc: Document, inputs: Inputs | None = None) -> None:
    """Replace every reference in `doc.data` (see the module docstring); problems go to the doc."""
    inputs = inputs or Inputs()
    if not isinstance(doc.data, dict):
        return
    decls = declared(doc.data)
    values: dict[str, Any] = {}
    for name, decl in decls.items():
        if isinstance(decl, dict) and "default" in decl:
            values[name] = decl["default"]
    for name, g in inputs.given.items():
        if name not in decls:
            doc.problems.append(
                Problem(
                    g.file,
                    g.line,
                    g.column,
                    f"variable '{name}' is not declared in the manifest's 'variables'" + did_you_mean(name, decls),
                )
            )
            continue
        value = g.value
        default = decls[name].get("default") if isinstance(decls[name], dict) else None
        if g.text:
            try:
                value = _convert(value, default)
            except ValueError as err:
                doc.problems.append(Problem(g.file, g.line, g.column, f"--var {name}: {err}"))
                continue
        values[name] = value
    sub = _Substituter(doc, values, decls, inputs.env, inputs if inputs.placeholders else None)
    doc.data = {k: (v if k == "variables" else sub.walk(v, (k,))) for k, v in doc.data.items()}


def placeholder(name: str) -> str:
    """What stands for variable `name` when it has no value and only the structure is checked: a
    string that is a valid id, so that only a field needing another type (a number) objects."""
    return f"placeholder-{name}"


def _convert(text: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = text.strip().lower()
        if low in ("true", "yes", "on"):
            return True
        if low in ("false", "no", "off"):
            return False
        raise ValueError(f"expected true or false (the default is a boolean), not {text!r}")
    if isinstance(default, (int, float)):
        try:
            return int(text) if isinstance(default, int) and text.strip().lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise ValueError(f"expected a number (the default is a number), not {text!r}") from None
    return text


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


class _Substituter:
    def __init__(
        self, doc: Document, values: dict[str, Any], decls: dict[str, Any], env: Mapping[str, str], placeholding: Inputs | None
    ):
        self.doc, self.values, self.decls, self.env = doc, values, decls, env
        self.placeholding = placeholding

    def walk(self, value: Any, path: Path) -> Any:
        if isinstance(value, str):
            return self.string(value, path) if "${" in value else value
        if isinstance(value, dict):
            return {k: self.walk(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.walk(v, path + (i,)) for i, v in enumerate(value)]
        return value

    def string(self, text: str, path: Path) -> Any:
        whole = _REF.fullmatch(text)
        if whole and whole.group(0) != "$${":
            ok, value = self.resolve(whole.group(1), path)
            return value if ok else text
        failed = False

        def repl(m: re.Match[str]) -> str:
            nonlocal failed
            if m.group(0) == "$${":
                return "${"
            ok, value = self.resolve(m.group(1), path)
            if ok and isinstance(value, (dict, list)):
                self.doc.add(
                    path,
                    f"'${{{m.group(1)}}}' is a {'mapping' if isinstance(value, dict) else 'list'}; "
                    "only a string that is exactly one reference can take it",
                )
                ok = False
            failed |= not ok
            return _as_text(value) if ok else m.group(0)

        out = _REF.sub(repl, text)
        return text if failed else out

    def resolve(self, ref: str, path: Path) -> tuple[bool, Any]:
        scope, _, name = ref.strip().partition(".")
        if scope == "var" and _NAME.match(name):
            if name in self.values:
                return True, self.values[name]
            if name in self.decls and self.placeholding is not None:
                self.placeholding.placeheld.add(name)
                self.doc.placeholders[path] = name
                return True, placeholder(name)
            if name in self.decls:
                self.doc.add(
                    path, f"variable '{name}' has no value: give it a default, or pass --var {name}=VALUE or a --var-file"
                )
            else:
                self.doc.add(
                    path, f"unknown variable '{name}'" + did_you_mean(name, self.decls) + "; declare it under 'variables'"
                )
            return False, None
        if scope == "env" and _NAME.match(name):
            if name in self.env:
                return True, self.env[name]
            self.doc.add(path, f"environment variable {name} is not set")
            return False, None
        self.doc.add(path, f"bad reference '${{{ref}}}': use ${{var.NAME}} or ${{env.NAME}} (write $${{ for a literal '${{')")
        return False, None
