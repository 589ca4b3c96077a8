"""API codecs, one per resource kind: the one place that knows how a `state` resource maps to the
JSON of Clarifai's v2 REST API (`to_api`) and back (`from_api`). A model's configuration has its
own codec, `modeltypes` (it lives in the model's versions).

Round trip law (tests/test_codecs.py, Hypothesis): ``from_api(to_api(x)) == x`` for every
resource `x` in the form a live read produces (a concept's name filled, a workflow node pinned to
its version, metadata holding only the keys the ownership marker says are managed).

Reading (`from_api`) is forgiving in the ways the real API is loose (live.py's docstring): a
missing string reads as "", a concept's missing name as its id, its description is `definition`,
metadata goes through `state.read_marker`. What each item must look like is checked before
(`liveshape.check`), so a decoder never meets a field of the wrong JSON type.

- `AppCodec`: the app's id, description, metadata and (read only, or `with_default`) its
  default workflow (sent as the `default_workflow` object; read from `default_workflow.id`, else
  the deprecated `default_workflow_id`, kept only when it names a workflow of this app:
  clarifai/main's base workflow reads as None).
- `ConceptCodec`: ``{id, name, definition?, metadata?}`` (an overwrite sends back the concept's
  metadata, which the manifest does not manage).
- `RelationCodec`: one ConceptRelation item, ``{subject_concept?, object_concept, predicate,
  knowledge_graph_id, id?}``; the subject is in the request path when posting.
- `ModelCodec`: the model object (id, type, description, metadata) and its versions (their
  configuration through `modeltypes`).
- `WorkflowCodec`: the workflow and its nodes; a node on a model of this app is
  ``{id, model_version: {id}}``, any other a full external reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.api.training import training_code
from reconciler.core import modeltypes
from reconciler.core.idrules import MAIN_APP, MAIN_USER
from reconciler.core.state import (
    MARKER_KEY,
    App,
    Concept,
    ConceptRef,
    ConceptRelation,
    Model,
    ModelRef,
    ModelVersion,
    Node,
    Workflow,
    make_marker,
    read_marker,
)


def text(d: Mapping[str, Any], key: str) -> str:
    """A string field: missing or null reads as ""."""
    v = d.get(key)
    return "" if v is None else str(v)


def _obj(d: Mapping[str, Any], key: str) -> dict[str, Any]:
    v = d.get(key)
    return v if isinstance(v, dict) else {}


def metadata_with_marker(metadata: dict[str, Any], protect: bool, owner: str | None = None) -> dict[str, Any]:
    """Metadata as written: the manifest's keys and the ownership marker naming them (and the
    owner, when the manifest has one: `state.MARKER_KEY`)."""
    return {**metadata, MARKER_KEY: make_marker(protect, metadata, owner)}


# --- app --------------------------------------------------------------------------------------


class AppCodec:
    @staticmethod
    def to_api(app: App, *, with_default: bool = False, owner: str | None = None) -> dict[str, Any]:
        """The fields apply manages; `with_default` adds the default workflow as the proto says:
        ``default_workflow {id, app_id, user_id}`` (`owner`, when known), not the deprecated
        ``default_workflow_id`` (clarifai-grpc resources.proto App: "Deprecated, use
        default_workflow instead"). App creates and updates leave the default alone."""
        out: dict[str, Any] = {
            "id": app.id,
            "description": app.description,
            "metadata": metadata_with_marker(app.metadata, False),
        }
        if with_default:
            out["default_workflow"] = AppCodec.default_ref(app, owner)
        return out

    @staticmethod
    def default_ref(app: App, owner: str | None) -> dict[str, str]:
        """The app's default workflow as the `default_workflow` object sends it: a workflow of
        this app."""
        ref = {"id": app.default_workflow or "", "app_id": app.id}
        if owner:
            ref["user_id"] = owner
        return ref

    @staticmethod
    def default_of(raw: dict[str, Any]) -> str:
        """The default workflow id an app answer shows: the `default_workflow` object's, else the
        deprecated `default_workflow_id` (a server may show one of them only, or leave the
        deprecated one stale: the object is the current field)."""
        return text(_obj(raw, "default_workflow"), "id") or text(raw, "default_workflow_id")

    @staticmethod
    def from_api(raw: dict[str, Any], app_id: str, workflow_ids: set[str]) -> App:
        metadata = read_marker(raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None).metadata
        dw_obj = _obj(raw, "default_workflow")
        default = AppCodec.default_of(raw)
        # The object says where the default lives; a bare id is judged by this app's workflows alone.
        elsewhere = text(dw_obj, "id") == default and text(dw_obj, "app_id") not in ("", app_id)
        if not default or elsewhere or default not in workflow_ids:
            default = ""
        return App(
            id=text(raw, "id") or app_id,
            description=text(raw, "description"),
            default_workflow=default or None,
            metadata=metadata,
            raw=raw,
        )


# --- concepts ---------------------------------------------------------------------------------


class ConceptCodec:
    @staticmethod
    def to_api(c: Concept, live: dict[str, Any] | None = None) -> dict[str, Any]:
        """A concept to send; with `live` (an overwrite of an existing one), its metadata is kept."""
        out: dict[str, Any] = {"id": c.id, "name": c.name or c.id}
        if c.description:
            out["definition"] = c.description
        if live is not None and isinstance(live.get("metadata"), dict) and live["metadata"]:
            out["metadata"] = live["metadata"]
        return out

    @staticmethod
    def from_api(raw: dict[str, Any]) -> Concept:
        cid = text(raw, "id")
        return Concept(
            id=cid, name=text(raw, "name") or cid, description=text(raw, "definition") or text(raw, "description"), raw=raw
        )

    @staticmethod
    def differs(c: Concept, raw: dict[str, Any]) -> bool:
        """Whether the live concept `raw` needs an overwrite to read as `c` (name, description)."""
        return raw.get("name", "") != c.name or raw.get("definition", "") != c.description


# --- concept relations ------------------------------------------------------------------------


class RelationCodec:
    @staticmethod
    def concept_ref(raw: Any, app_id: str) -> ConceptRef:
        raw = raw if isinstance(raw, dict) else {}
        cid, other = text(raw, "id"), text(raw, "app_id")
        if other in ("", app_id):
            return ConceptRef(cid)
        # clarifai/main is referenced as {id, app_id: "main"} in the docs; its owner is implicit.
        user = text(raw, "user_id") or (MAIN_USER if other == MAIN_APP else "") or None
        return ConceptRef(cid, user_id=user, app_id=other)

    @staticmethod
    def to_api(r: ConceptRelation, *, with_subject: bool = False) -> dict[str, Any]:
        """A relation to post under its subject (the subject is in the path); `with_subject`
        adds ``subject_concept`` as listings show it."""
        obj: dict[str, Any] = {"id": r.object.id}
        if r.object.external:
            obj.update(app_id=r.object.app_id, user_id=r.object.user_id)
        out: dict[str, Any] = {"object_concept": obj, "predicate": r.predicate, "knowledge_graph_id": r.knowledge_graph_id}
        if with_subject:
            out["subject_concept"] = {"id": r.subject}
        return out

    @staticmethod
    def from_api(raw: dict[str, Any], app_id: str) -> ConceptRelation:
        """One listed relation as shown (its subject may be another app's: see live._relations)."""
        subj = RelationCodec.concept_ref(raw.get("subject_concept"), app_id)
        sid = text(raw, "id")
        return ConceptRelation(
            subject=subj.id,
            predicate=text(raw, "predicate").lower(),
            object=RelationCodec.concept_ref(raw.get("object_concept"), app_id),
            knowledge_graph_id=text(raw, "knowledge_graph_id"),
            server_id=sid or None,
        )

    @staticmethod
    def signature(raw: dict[str, Any], app_id: str) -> tuple[str, str, str, str, str]:
        """A relation item's content in normal form (`state.ConceptRelation.normal`), the object's
        owner left out (listings may or may not name it): (subject, predicate, object id, object
        app or "" for this app, knowledge graph)."""
        r = RelationCodec.from_api(raw, app_id)
        subj, pred, oid, kg = r.subject, r.predicate, r.object.id, r.knowledge_graph_id
        if not r.object.external and (pred == "hyponym" or (pred == "synonym" and oid < subj)):
            subj, oid, pred = oid, subj, "hypernym" if pred == "hyponym" else pred
        return (subj, pred, oid, r.object.app_id or "", kg)


# --- models -----------------------------------------------------------------------------------


class ModelCodec:
    @staticmethod
    def to_api(m: Model) -> dict[str, Any]:
        """The model object (PostModels; PatchModels "merge" sends all but the type). Its
        configuration goes with a version (`version_to_api`, PostModelVersions): PostModels makes
        no version (Clarifai/docs model-version-endpoints.md)."""
        return {
            "id": m.id,
            "model_type_id": m.type,
            "description": m.description,
            "metadata": metadata_with_marker(m.metadata, m.protect, m.owner),
        }

    @staticmethod
    def version_to_api(model_type: str, config: dict[str, Any]) -> dict[str, Any]:
        return modeltypes.to_api(model_type, config)

    @staticmethod
    def version_from_api(model_type: str, raw: dict[str, Any]) -> ModelVersion:
        status = _obj(raw, "status")
        return ModelVersion(
            id=text(raw, "id"),
            config=modeltypes.from_api(model_type, raw),
            status_code=training_code(status.get("code")) if status else 0,
            created_at=text(raw, "created_at"),
        )

    @staticmethod
    def from_api(raw: dict[str, Any], versions_raw: list[dict[str, Any]] | None) -> Model:
        """A model and its versions, which the caller gives newest first (`live.list_versions`;
        stable ties keep server order): its config and version id are the newest's. No version at
        all (PostModels makes none) reads as ``config == {}``, ``version_id`` None."""
        mtype = modeltypes.canonical_type(text(raw, "model_type_id"))
        managed, protect, metadata, owner = read_marker(raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None)
        versions = tuple(ModelCodec.version_from_api(mtype, v) for v in versions_raw or [])
        latest = versions[0] if versions else None
        return Model(
            id=text(raw, "id"),
            type=mtype,
            description=text(raw, "description"),
            metadata=metadata,
            protect=protect,
            config=dict(latest.config) if latest else {},
            managed=managed,
            owner=owner,
            version_id=latest.id if latest else None,
            versions=versions,
            raw=raw,
        )


# --- workflows --------------------------------------------------------------------------------


class WorkflowCodec:
    @staticmethod
    def node_to_api(n: Node, version: str | None) -> dict[str, Any]:
        """A node, its model pinned to `version` (a local model's resolved pin; an external
        reference's own version)."""
        ref = n.model
        model: dict[str, Any] = {"id": ref.id}
        if ref.external:
            model.update(user_id=ref.user_id, app_id=ref.app_id)
        if version:
            model["model_version"] = {"id": version}
        return {
            "id": n.id,
            "model": model,
            "node_inputs": [{"node_id": i} for i in n.inputs],
            "suppress_output": n.suppress_output,
        }

    @staticmethod
    def to_api(w: Workflow, metadata: dict[str, Any], versions: Mapping[str, str]) -> dict[str, Any]:
        """The workflow with `metadata` (marker included, merged with the live keys on an
        overwrite); `versions`: node id -> the version its local model is pinned to."""
        nodes = [WorkflowCodec.node_to_api(n, n.model.version if n.model.external else versions.get(n.id)) for n in w.nodes]
        return {"id": w.id, "description": w.description, "metadata": metadata, "nodes": nodes}

    @staticmethod
    def node_from_api(raw: dict[str, Any], app_id: str, owner: str) -> Node:
        m = _obj(raw, "model")
        version = text(_obj(m, "model_version"), "id") or None
        m_app, m_user = text(m, "app_id"), text(m, "user_id")
        local = m_app in ("", app_id) and (not m_user or not owner or m_user in (owner, "me"))
        ref = (
            ModelRef(text(m, "id"), version=version)
            if local
            else ModelRef(text(m, "id"), user_id=m_user or None, app_id=m_app or None, version=version)
        )
        inputs = tuple(text(i, "node_id") for i in (raw.get("node_inputs") or []) if isinstance(i, dict))
        return Node(id=text(raw, "id"), model=ref, inputs=inputs, suppress_output=bool(raw.get("suppress_output")))

    @staticmethod
    def from_api(raw: dict[str, Any], app_id: str, owner: str) -> Workflow:
        managed, protect, metadata, manager = read_marker(raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None)
        nodes_raw = raw.get("nodes")
        if not nodes_raw and isinstance(raw.get("version"), dict):
            nodes_raw = raw["version"].get("nodes")
        nodes = tuple(WorkflowCodec.node_from_api(n, app_id, owner) for n in (nodes_raw or []) if isinstance(n, dict))
        return Workflow(
            id=text(raw, "id"),
            description=text(raw, "description"),
            metadata=metadata,
            protect=protect,
            nodes=nodes,
            managed=managed,
            owner=manager,
            raw=raw,
        )
