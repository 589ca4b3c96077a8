"""Shape checks for what the live reader takes from the API: a field of the wrong JSON type is an
`ApiError` naming the request and the field, never a silently misread app.

Why: the live reader normalises leniently (missing strings read as "", enums as names or numbers),
which is right for fields that are absent, but wrong for fields that are present with the wrong
type -- a proxy or a broken server answering `"nodes": "oops"` would otherwise read as a workflow
with no nodes, and apply would "fix" it. So every item the reader uses is checked here first.

Contract: `check(kind, items, method, path)` raises ApiError("<method> <path>: unexpected response
shape: <kind>[i].<field> is a <type>, not a(n) <wanted>") on the first problem; returns None.
Absent and null fields are fine (the reader's defaults apply). `kind` is one of "app",
"concepts", "concept_relations", "models", "workflows", "model_versions", "collaborators", "datasets",
"dataset_versions", "tasks".
"""

from __future__ import annotations

from typing import Any

from reconciler.core.errors import ApiError

_NUM = (int, float)
_TYPE_NAMES = {dict: "object", list: "list", str: "string", bool: "boolean"}


def _name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, _NUM):
        return "number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


class _Checker:
    def __init__(self, method: str, path: str) -> None:
        self.method, self.path = method, path

    def fail(self, where: str, value: Any, wanted: str) -> None:
        got = _name(value)
        raise ApiError(
            f"{self.method} {self.path}: unexpected response shape: {where} is {_a(got)} {got}, not {_a(wanted)} {wanted}",
            method=self.method,
            path=self.path,
        )

    def field(self, obj: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str, required: bool = False) -> Any:
        value = obj.get(key)
        if value is None:
            if required:
                self.fail(f"{where}.{key}", value, _wanted(typ))
            return None
        if not isinstance(value, typ) or (isinstance(value, bool) and typ == _NUM):  # True is an int
            self.fail(f"{where}.{key}", value, _wanted(typ))
        return value

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, value, "object")
        return value

    def strings(self, obj: dict[str, Any], where: str, *keys: str) -> None:
        for k in keys:
            self.field(obj, k, str, where)

    def ref(self, obj: dict[str, Any], key: str, where: str) -> dict[str, Any] | None:
        value = self.field(obj, key, dict, where)
        if value is not None:
            self.strings(value, f"{where}.{key}", "id", "user_id", "app_id")
        return value


def _a(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def _wanted(typ: type | tuple[type, ...]) -> str:
    if typ == _NUM:
        return "number"
    if isinstance(typ, tuple):
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in typ)
    return _TYPE_NAMES.get(typ, typ.__name__)


def check(kind: str, items: Any, method: str, path: str) -> None:
    c = _Checker(method, path)
    if kind == "app":
        app = c.obj(items, "app")
        c.strings(app, "app", "id", "description", "default_workflow_id", "user_id")
        c.field(app, "metadata", dict, "app")
        dw = c.field(app, "default_workflow", dict, "app")
        if dw is not None:
            c.strings(dw, "app.default_workflow", "id", "app_id")
        return
    for i, raw in enumerate(items):
        where = f"{kind}[{i}]"
        item = c.obj(raw, where)
        if kind == "concepts":
            c.field(item, "id", str, where, required=True)
            c.strings(item, where, "name", "definition", "description", "app_id")
        elif kind == "concept_relations":
            c.strings(item, where, "id", "predicate", "knowledge_graph_id")
            for side in ("subject_concept", "object_concept"):
                c.ref(item, side, where)
        elif kind == "models":
            c.field(item, "id", str, where, required=True)
            c.strings(item, where, "model_type_id", "description")
            c.field(item, "metadata", dict, where)
        elif kind == "workflows":
            c.field(item, "id", str, where, required=True)
            c.strings(item, where, "description")
            c.field(item, "metadata", dict, where)
            version = c.field(item, "version", dict, where)
            nodes = c.field(item, "nodes", list, where)
            if nodes is None and version is not None:
                nodes = c.field(version, "nodes", list, f"{where}.version")
            for j, n in enumerate(nodes or []):
                _node(c, n, f"{where}.nodes[{j}]")
        elif kind == "model_versions":
            _version(c, item, where)
        elif kind == "collaborators":
            c.strings(item, where, "id")
            user = c.field(item, "user", dict, where)
            if user is not None:
                c.strings(user, f"{where}.user", "id")
            for k, scope in enumerate(c.field(item, "scopes", list, where) or []):
                if not isinstance(scope, str):
                    c.fail(f"{where}.scopes[{k}]", scope, "string")
        elif kind in ("datasets", "dataset_versions"):
            c.field(item, "id", str, where, required=True)
            c.strings(item, where, "description", "created_at")
            c.field(item, "metadata", dict, where)
            c.field(item, "status", dict, where)
        elif kind == "tasks":
            _task(c, item, where)


def _node(c: _Checker, raw: Any, where: str) -> None:
    node = c.obj(raw, where)
    c.field(node, "id", str, where, required=True)
    model = c.ref(node, "model", where)
    if model is not None:
        mv = c.field(model, "model_version", dict, f"{where}.model")
        if mv is not None:
            c.strings(mv, f"{where}.model.model_version", "id")
    for k, inp in enumerate(c.field(node, "node_inputs", list, where) or []):
        c.strings(c.obj(inp, f"{where}.node_inputs[{k}]"), f"{where}.node_inputs[{k}]", "node_id")
    c.field(node, "suppress_output", bool, where)


def _version(c: _Checker, v: dict[str, Any], where: str) -> None:
    c.strings(v, where, "id", "created_at")
    status = c.field(v, "status", dict, where)
    if status is not None and not isinstance(status.get("code"), (int, str, type(None))):
        c.fail(f"{where}.status.code", status.get("code"), "number or string")
    oi = c.field(v, "output_info", dict, where)
    if oi is not None:
        c.field(oi, "params", dict, f"{where}.output_info")
        c.field(oi, "output_config", dict, f"{where}.output_info")
        data = c.field(oi, "data", dict, f"{where}.output_info")
        if data is not None:
            concepts = c.field(data, "concepts", list, f"{where}.output_info.data")
            for k, con in enumerate(concepts or []):
                cw = f"{where}.output_info.data.concepts[{k}]"
                con = c.obj(con, cw)
                c.strings(con, cw, "id")
                c.field(con, "value", _NUM, cw)
    ii = c.field(v, "input_info", dict, where)
    if ii is not None:
        base = c.ref(ii, "base_embed_model", f"{where}.input_info")
        if base is not None:
            c.field(base, "model_version", dict, f"{where}.input_info.base_embed_model")


def _task(c: _Checker, t: dict[str, Any], where: str) -> None:
    c.field(t, "id", str, where, required=True)
    c.strings(t, where, "name", "description")
    c.field(t, "metadata", dict, where)
    worker = c.field(t, "worker", dict, where)
    for j, w in enumerate(c.field(worker, "workers", list, f"{where}.worker") or [] if worker is not None else []):
        ww = c.obj(w, f"{where}.worker.workers[{j}]")
        for k in ("user", "workflow"):
            ref = c.field(ww, k, dict, f"{where}.worker.workers[{j}]")
            if ref is not None:
                c.strings(ref, f"{where}.worker.workers[{j}].{k}", "id")
        if c.ref(ww, "model", f"{where}.worker.workers[{j}]") is not None:
            mv = c.field(ww["model"], "model_version", dict, f"{where}.worker.workers[{j}].model")
            if mv is not None:
                c.strings(mv, f"{where}.worker.workers[{j}].model.model_version", "id")
    review = c.field(t, "review", dict, where)
    for j, u in enumerate(c.field(review, "users", list, f"{where}.review") or [] if review is not None else []):
        c.strings(c.obj(u, f"{where}.review.users[{j}]"), f"{where}.review.users[{j}]", "id")
    source = c.field(t, "input_source", dict, where)
    if source is not None:
        c.strings(source, f"{where}.input_source", "id")
    for j, tc in enumerate(c.field(t, "concepts", list, where) or []):
        tcw = f"{where}.concepts[{j}]"
        concept = c.field(c.obj(tc, tcw), "concept", dict, tcw)
        if concept is not None:
            c.strings(concept, f"{tcw}.concept", "id")
        cfg = c.field(tc, "auto_annotation_config", dict, tcw)
        if cfg is not None:
            tr = c.field(cfg, "threshold_range", dict, f"{tcw}.auto_annotation_config")
            if tr is not None:
                for k in ("lower", "upper"):
                    c.field(tr, k, _NUM, f"{tcw}.auto_annotation_config.threshold_range")
