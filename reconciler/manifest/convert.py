"""Convert the Clarifai Python SDK's workflow YAML into a manifest, so SDK users switch in one step.

Contract: `convert_data(doc, app_id=..., model_owner=..., warn=...) -> dict` turns a parsed SDK file
(`yamlload.Document`) into manifest data, raising `ManifestError` with every problem located at
`file:line:col`; `convert_file(path, ...) -> (yaml_text, warnings)` reads, converts and dumps it
(`yamldump.dump_yaml`). Nothing touches the network.

The SDK format (REFERENCE.md §5.1; clarifai-python `clarifai/workflows/`):
``workflow: {id, nodes: [{id, model: {model_id, model_version_id?, user_id?, app_id?,
model_type_id?, description?, output_info?: {params, data}}, node_inputs?: [{node_id}]}]}``.

Mapping:
- a node whose model has `model_version_id` is a pinned, existing model: an external reference
  ``{id, user_id, app_id, version}``. The SDK's own fixtures pin clarifai/main models without
  `user_id`/`app_id`; those take `model_owner` (default clarifai/main) and a warning says so;
- a node whose model has `model_type_id` (and no version) is a model to create: a manifest model
  with the typed fields of its type — concept-thresholder from `params.concept_threshold_type` and
  `output_info.data.concepts` (its concepts are declared), annotation-writer from `annotation_status`
  / `annotation_user_id` / `task_id`, concept-synonym-mapper from `knowledge_graph_id`,
  embedding-classifier from `data.concepts` — or `output_info` passed through for any other type.
  Params a typed model has no field for are dropped with a warning. A model used by several nodes
  is declared once (differing descriptions of one model id are an error);
- `node_inputs` become `inputs`; any graph shape (multi-branch, fan-in) is kept as written.
The app id is `app_id`, else the workflow's id; the SDK has no app default workflow, so none is set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reconciler.core import modeltypes
from reconciler.core.errors import ManifestError, Problem
from reconciler.core.fileio import read_regular
from reconciler.manifest.yamldump import dump_yaml
from reconciler.manifest.yamlload import MAX_BYTES, Document, Path, load_yaml

Warn = Callable[[str], None]
MAIN = ("clarifai", "main")


class _Converter:
    def __init__(self, doc: Document, model_owner: tuple[str, str], warn: Warn):
        self.doc, self.owner, self.warn = doc, model_owner, warn
        self.concepts: dict[str, None] = {}
        self.models: dict[str, tuple[dict[str, Any], Path]] = {}

    def fail(self, path: Path, message: str, at_key: bool = False) -> None:
        self.doc.add(path, message, at_key)

    def node(self, raw: Any, path: Path, seen: set[str]) -> dict[str, Any] | None:
        if not isinstance(raw, dict):
            self.fail(path, "a node is a mapping with id and model")
            return None
        nid, model = raw.get("id"), raw.get("model")
        if not isinstance(nid, str) or not nid:
            self.fail(path, "node without an 'id'")
            return None
        if not isinstance(model, dict) or not isinstance(model.get("model_id"), str):
            self.fail(path + ("model",), f"node {nid}: 'model' must be a mapping with 'model_id'")
            return None
        out: dict[str, Any] = {"id": nid, "model": self.model_ref(nid, model, path + ("model",))}
        inputs = []
        for k, inp in enumerate(raw.get("node_inputs") or []):
            src = inp.get("node_id") if isinstance(inp, dict) else None
            if not isinstance(src, str):
                self.fail(path + ("node_inputs", k), f"node {nid}: each node_inputs item is {{node_id: ID}}")
            elif src not in seen:
                # the SDK requires inputs to be declared earlier in the list, which also rules out cycles
                self.fail(path + ("node_inputs", k, "node_id"), f"node {nid}: input '{src}' is not a node declared before it")
            else:
                inputs.append(src)
        if inputs:
            out["inputs"] = inputs
        return out

    def model_ref(self, nid: str, m: dict[str, Any], path: Path) -> Any:
        mid = m["model_id"]
        if m.get("model_version_id"):
            extra = [k for k in ("model_type_id", "description", "output_info") if k in m]
            if extra:
                self.fail(
                    path + (extra[0],),
                    f"node {nid}: model_version_id cannot be combined with '{extra[0]}' (a pinned version is an existing model)",
                    at_key=True,
                )
            user, app = m.get("user_id"), m.get("app_id")
            if bool(user) != bool(app):
                self.fail(path, f"node {nid}: give both user_id and app_id of model {mid}, or neither")
            if not user:
                user, app = self.owner
                self.warn(
                    f"node {nid}: model {mid} names no user_id/app_id; taken to be {user}/{app}'s "
                    "(use --model-owner USER/APP for another app)"
                )
            return {"id": mid, "user_id": str(user), "app_id": str(app), "version": str(m["model_version_id"])}
        if not m.get("model_type_id"):
            self.fail(
                path,
                f"node {nid}: model {mid} has neither model_version_id (an existing model to pin) "
                "nor model_type_id (a model to create)",
            )
            return mid
        if m.get("user_id") or m.get("app_id"):
            self.warn(f"node {nid}: model {mid} is created in the manifest's app; its user_id/app_id are ignored")
        declared = self.declare(nid, m, path)
        if mid in self.models:
            first, first_path = self.models[mid]
            if first != declared:
                self.fail(path, f"node {nid}: model {mid} is described differently than on line {self.doc.pos(first_path)[0]}")
        else:
            self.models[mid] = (declared, path)
        return mid

    def declare(self, nid: str, m: dict[str, Any], path: Path) -> dict[str, Any]:
        mtype = str(m["model_type_id"])
        t = modeltypes.canonical_type(mtype)
        oi = m.get("output_info")
        if not isinstance(oi, dict):
            oi = {}
        params = dict(oi.get("params") or {}) if isinstance(oi.get("params"), dict) else {}
        data_concepts = ((oi.get("data") or {}).get("concepts") or []) if isinstance(oi.get("data"), dict) else []
        out: dict[str, Any] = {"id": m["model_id"], "type": mtype}
        if m.get("description"):
            out["description"] = str(m["description"])
        used: set[str] = set()
        try:
            if t == modeltypes.THRESHOLDER:
                out["comparator"] = modeltypes.comparator_name(params.get("concept_threshold_type", "GREATER_THAN"))
                used.add("concept_threshold_type")
                out["thresholds"] = {}
                for c in data_concepts:
                    if isinstance(c, dict) and isinstance(c.get("id"), str):
                        out["thresholds"][c["id"]] = float(c.get("value", 1.0))
                        self.concepts[c["id"]] = None
            elif t == modeltypes.WRITER:
                out["annotation_status"] = modeltypes.annotation_status_name(params.get("annotation_status", "SUCCESS"))
                for k in ("annotation_user_id", "task_id"):
                    if params.get(k):
                        out[k] = str(params[k])
                used |= {"annotation_status", "annotation_user_id", "task_id"}
            elif t == modeltypes.MAPPER:
                out["knowledge_graph_id"] = str(params.get("knowledge_graph_id", ""))
                used.add("knowledge_graph_id")
            elif t == modeltypes.CLASSIFIER:
                ids = [c["id"] for c in data_concepts if isinstance(c, dict) and isinstance(c.get("id"), str)]
                out["concepts"] = ids
                self.concepts.update(dict.fromkeys(ids))
            elif oi:
                out["output_info"] = oi
        except (TypeError, ValueError) as err:
            self.fail(path + ("output_info",), f"node {nid}: {err}")
        if t in modeltypes.TYPED_FIELDS:
            dropped = sorted(set(params) - used)
            if dropped:
                self.warn(
                    f"model {m['model_id']}: params {', '.join(dropped)} have no manifest field for {t} models and were dropped"
                )
        return out


def convert_data(
    doc: Document, *, app_id: str | None = None, model_owner: tuple[str, str] = MAIN, warn: Warn = lambda _m: None
) -> dict[str, Any]:
    """Parsed SDK workflow YAML -> manifest data (see the module docstring)."""
    data = doc.data
    wf = data.get("workflow") if isinstance(data, dict) else None
    if not isinstance(wf, dict):
        doc.add((), "not an SDK workflow file: expected a top-level 'workflow' mapping")
        raise ManifestError(doc.problems)
    wid, nodes = wf.get("id"), wf.get("nodes")
    if not isinstance(wid, str) or not wid:
        doc.add(("workflow",), "the workflow needs an 'id'")
    if not isinstance(nodes, list) or not nodes:
        doc.add(("workflow", "nodes") if "nodes" in wf else ("workflow",), "the workflow needs a non-empty 'nodes' list")
        nodes = []
    conv = _Converter(doc, model_owner, warn)
    out_nodes: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, raw in enumerate(nodes):
        node = conv.node(raw, ("workflow", "nodes", i), seen)
        if node is None:
            continue
        if node["id"] in seen:
            doc.add(("workflow", "nodes", i, "id"), f"duplicate node id '{node['id']}'")
        seen.add(node["id"])
        out_nodes.append(node)
    if doc.problems:
        raise ManifestError(doc.problems)
    manifest: dict[str, Any] = {"version": 1, "app": {"id": app_id or wid}}
    if conv.concepts:
        manifest["concepts"] = [{"id": c} for c in sorted(conv.concepts)]
    if conv.models:
        manifest["models"] = [m for m, _ in conv.models.values()]
    manifest["workflows"] = [{"id": wid, "nodes": out_nodes}]
    return manifest


def convert_file(
    path: str, *, app_id: str | None = None, model_owner: tuple[str, str] = MAIN, schema_ref: str | None = None
) -> tuple[str, list[str]]:
    """Read an SDK workflow file and return (manifest YAML, warnings). Raises ManifestError."""
    try:
        raw = read_regular(path, MAX_BYTES + 1)  # a FIFO or device is refused, not waited on
    except OSError as err:
        raise ManifestError([Problem(path, 1, 1, f"cannot read SDK workflow file: {err.strerror or err}")]) from None
    doc = load_yaml(raw, path)
    if doc.problems:
        raise ManifestError(doc.problems)
    warnings: list[str] = []
    data = convert_data(doc, app_id=app_id, model_owner=model_owner, warn=warnings.append)
    header = (f"Converted from the Clarifai SDK workflow file {path} by `reconciler convert`.",)
    return dump_yaml(data, schema_ref, header), warnings
