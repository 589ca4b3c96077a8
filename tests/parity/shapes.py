"""Structural comparison of two JSON bodies, in the manner of LocalStack's snapshot tests: values
that differ per call (ids, timestamps, req_ids, free text) are normalised away by comparing only
each field's presence and JSON type; enums and status codes must have the same form (a number
stays a number, a name stays a string).

Contract: `diffs(real, sandbox) -> set[str]`, each "<path>: <kind>" with kind one of
"missing in sandbox", "extra in sandbox", "type <real> vs <sandbox>". Lists are compared by the
union of their items' shapes, so a field present in any real item counts as sent.
"""

from __future__ import annotations

from typing import Any


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "list"
    return "object"


def _merge_items(items: list[Any]) -> Any:
    objs = [i for i in items if isinstance(i, dict)]
    if not objs:
        return items[0] if items else None
    merged: dict[str, list[Any]] = {}
    for o in objs:
        for k, v in o.items():
            merged.setdefault(k, []).append(v)
    return {k: (_merge_items(vs) if all(isinstance(v, dict) for v in vs) else
                (vs[0] if not isinstance(vs[0], list) else [x for v in vs for x in v]))
            for k, vs in merged.items()}


def diffs(real: Any, sandbox: Any, path: str = "") -> set[str]:
    out: set[str] = set()
    rk, sk = _kind(real), _kind(sandbox)
    if rk != sk:
        return {f"{path or '.'}: type {rk} vs {sk}"}
    if rk == "list":
        if real and sandbox:
            out |= diffs(_merge_items(real), _merge_items(sandbox), f"{path}[]")
        return out
    if rk == "object":
        for k in real.keys() - sandbox.keys():
            out.add(f"{path}.{k}: missing in sandbox")
        for k in sandbox.keys() - real.keys():
            out.add(f"{path}.{k}: extra in sandbox")
        for k in real.keys() & sandbox.keys():
            out |= diffs(real[k], sandbox[k], f"{path}.{k}")
    return out
