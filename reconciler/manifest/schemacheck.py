"""A fast yes/no check of data against the manifest JSON Schema, for the common case: a valid manifest.

Contract: `compile_schema(schema)` returns `check(instance) -> bool`. When `check` says True, the
instance is valid under JSON Schema 2020-12 (jsonschema agrees: tests/test_schemacheck.py checks
this on the invalid-manifest corpus, the examples and generated mutations). When it says False the
caller runs jsonschema, which finds and words the errors; so `check` may be stricter than the
standard but never looser. It understands exactly the keywords the manifest schema uses, with
local `$ref`s already inlined (`manifest._inline`); a keyword it does not know makes the check
answer False for that subschema, i.e. always fall back, never wrongly accept.

Why not jsonschema alone: validating 10,000 concepts took ~0.45 s of a 0.8 s `validate`, most of it
in jsonschema's per-node machinery; these closures take a few hundredths (bench/validate_bench.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

#: Keywords that carry no assertion.
_ANNOTATIONS = frozenset({"description", "$comment", "title", "examples", "$schema", "$id", "default"})


def _type_check(names: list[str]) -> Callable[[Any], bool]:
    return lambda v: any(_is_type(v, n) for n in names)


def _never(_: Any) -> bool:
    return False


def _always(_: Any) -> bool:
    return True


def _is_type(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality of scalars, as JSON Schema's enum/const use it: 1 == 1.0, but True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if _is_type(a, "number") and _is_type(b, "number"):
        return a == b
    return type(a) is type(b) and a == b


def compile_schema(schema: Any) -> Check:
    """The predicate for `schema` (a dict or a boolean schema)."""
    if schema is True:
        return _always
    if schema is False:
        return _never
    if not isinstance(schema, dict):
        return _never
    checks: list[Check] = []
    unknown = set(schema) - _ANNOTATIONS - _KNOWN
    if unknown:
        return _never
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        checks.append(_type_check(names))
    if "enum" in schema:
        options = list(schema["enum"])
        checks.append(lambda v: any(_same(v, o) for o in options))
    if "const" in schema:
        const = schema["const"]
        checks.append(lambda v: _same(v, const))
    if "pattern" in schema or "maxLength" in schema:
        regex = re.compile(schema["pattern"]) if "pattern" in schema else None
        max_len = schema.get("maxLength")

        def string(v: Any) -> bool:
            if not isinstance(v, str):
                return True
            if max_len is not None and len(v) > max_len:
                return False
            return regex is None or regex.search(v) is not None

        checks.append(string)
    if "minimum" in schema or "maximum" in schema:
        lo, hi = schema.get("minimum"), schema.get("maximum")

        def number(v: Any) -> bool:
            if not _is_type(v, "number"):
                return True
            return (lo is None or v >= lo) and (hi is None or v <= hi)

        checks.append(number)
    if "items" in schema or "minItems" in schema:
        item = compile_schema(schema.get("items", True))
        min_items = schema.get("minItems", 0)
        checks.append(lambda v: not isinstance(v, list) or (len(v) >= min_items and all(map(item, v))))
    if _OBJECT_KEYWORDS & set(schema):
        checks.append(_object_check(schema))
    if "anyOf" in schema:
        alts = [compile_schema(s) for s in schema["anyOf"]]
        checks.append(lambda v: any(a(v) for a in alts))
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


_OBJECT_KEYWORDS = frozenset(
    {"properties", "required", "additionalProperties", "unevaluatedProperties", "propertyNames", "allOf"}
)
_KNOWN = (
    frozenset({"type", "enum", "const", "pattern", "maxLength", "minimum", "maximum", "items", "minItems", "anyOf"})
    | _OBJECT_KEYWORDS
)


def _object_check(schema: dict[str, Any]) -> Check:
    props = {k: compile_schema(s) for k, s in schema.get("properties", {}).items()}
    required = tuple(schema.get("required", ()))
    additional = schema.get("additionalProperties", True)
    extra = compile_schema(additional) if additional is not True else None
    names = compile_schema(schema["propertyNames"]) if "propertyNames" in schema else None
    unevaluated = schema.get("unevaluatedProperties", True)
    if unevaluated not in (True, False):
        return _never  # only the boolean form is understood
    branches = [_branch(sub) for sub in schema.get("allOf", ())]

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for k in required:
            if k not in v:
                return False
        evaluated = set(props)
        for k, val in v.items():
            p = props.get(k)
            if p is not None:
                if not p(val):
                    return False
            elif extra is not None and not extra(val):
                return False
            if names is not None and not names(k):
                return False
        for branch in branches:
            ok, seen = branch(v)
            if not ok:
                return False
            evaluated |= seen
        if unevaluated is False and additional is True:
            return all(k in evaluated for k in v)
        return True

    return check


def _branch(sub: dict[str, Any]) -> Callable[[dict[str, Any]], tuple[bool, set[str]]]:
    """An `allOf` member: a plain subschema or if/then/else. Answers (valid, property names it
    evaluated), the latter for `unevaluatedProperties`; annotations of a failed `if` do not count."""
    if set(sub) - {"if", "then", "else"} - _ANNOTATIONS:
        plain = compile_schema(sub)
        seen = set(sub.get("properties", {}))
        return lambda v: (plain(v), seen)
    cond = compile_schema(sub.get("if", True))
    then = compile_schema(sub.get("then", True))
    other = compile_schema(sub.get("else", True))
    if_seen = set((sub.get("if") or {}).get("properties", {})) if isinstance(sub.get("if"), dict) else set()
    then_seen = set((sub.get("then") or {}).get("properties", {}))
    else_seen = set((sub.get("else") or {}).get("properties", {}))

    def branch(v: dict[str, Any]) -> tuple[bool, set[str]]:
        if cond(v):
            return then(v), (if_seen | then_seen) & set(v)
        return other(v), else_seen & set(v)

    return branch
