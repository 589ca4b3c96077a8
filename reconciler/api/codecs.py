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
- `CollaboratorCodec`, `DatasetCodec` (the dataset and its versions), `TaskCodec` (the whole task:
  workers, review, concepts with their auto-annotation ranges; the manifest id in the marker).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reconciler.api.training import training_code
from reconciler.core import modeltypes
from reconciler.core.idrules import MAIN_APP, MAIN_USER
from reconciler.core.state import (
    LABELER_SCOPES,
    MARKER_KEY,
    App,
    AutoAnnotation,
    Collaborator,
    Concept,
    ConceptRef,
    ConceptRelation,
    Dataset,
    DatasetVersion,
    Model,
    ModelRef,
    ModelVersion,
    Node,
    Task,
    ThresholdRange,
    Workflow,
    make_marker,
    marker_key,
    read_marker,
)
from reconciler.core.status_codes import BY_NAME


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


# --- collaborators ----------------------------------------------------------------------------


class CollaboratorCodec:
    """``{id?, user: {id}, scopes: [...]}`` (clarifai-grpc `Collaborator`; PostCollaborators takes
    the user, the API gives the collaborator its own id, which DeleteCollaborators takes as
    `collaborator_ids`)."""

    @staticmethod
    def to_api(c: Collaborator) -> dict[str, Any]:
        return {"user": {"id": c.user_id}, "scopes": list(c.scopes if c.scopes is not None else LABELER_SCOPES)}

    @staticmethod
    def from_api(raw: dict[str, Any]) -> Collaborator:
        scopes: list[Any] = raw["scopes"] if isinstance(raw.get("scopes"), list) else []
        return Collaborator(
            user_id=text(_obj(raw, "user"), "id"),
            scopes=tuple(sorted({str(s) for s in scopes})),
            server_id=text(raw, "id") or None,
        )


# --- datasets ---------------------------------------------------------------------------------


class DatasetCodec:
    """The dataset (``{id, description, metadata}``, clarifai-grpc `Dataset`) and its versions
    (``{id, description, metadata, status, created_at}``, `DatasetVersion`): a version's definition
    is its description and metadata (`state.Dataset.version`)."""

    @staticmethod
    def to_api(d: Dataset, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": d.id,
            "description": d.description,
            "metadata": metadata_with_marker(d.metadata, d.protect, d.owner) if metadata is None else metadata,
        }

    @staticmethod
    def version_to_api(spec: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"description": spec.get("description", "")}
        if spec.get("metadata"):
            out["metadata"] = spec["metadata"]
        return out

    @staticmethod
    def version_spec(raw: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {"description": text(raw, "description")}
        if isinstance(raw.get("metadata"), dict) and raw["metadata"]:
            spec["metadata"] = raw["metadata"]
        return spec

    @staticmethod
    def version_from_api(raw: dict[str, Any]) -> DatasetVersion:
        status = _obj(raw, "status")
        code = status.get("code")
        return DatasetVersion(
            id=text(raw, "id"),
            spec=DatasetCodec.version_spec(raw),
            created_at=text(raw, "created_at"),
            status_code=code if isinstance(code, int) else BY_NAME.get(str(code), 0),
        )

    @staticmethod
    def from_api(raw: dict[str, Any], versions_raw: list[dict[str, Any]] | None = None) -> Dataset:
        """A dataset and its versions, which the caller gives newest first; its `version` is the
        newest's definition (None when it has none)."""
        managed, protect, metadata, manager = read_marker(raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None)
        versions = tuple(DatasetCodec.version_from_api(v) for v in versions_raw or [])
        return Dataset(
            id=text(raw, "id"),
            description=text(raw, "description"),
            metadata=metadata,
            protect=protect,
            version=dict(versions[0].spec) if versions else None,
            managed=managed,
            owner=manager,
            versions=versions,
            raw=raw,
        )


# --- tasks ------------------------------------------------------------------------------------

TASK_TYPES = {"TYPE_NOT_SET": 0, "CONCEPTS_CLASSIFICATION": 1, "BOUNDING_BOX_DETECTION": 2, "POLYGON_DETECTION": 3}
INPUT_SOURCES = {"INPUT_SOURCE_TYPE_NOT_SET": 0, "ALL_INPUTS": 1, "SAVED_SEARCH": 2, "DATASET": 3, "INPUT": 4}
WORKER_STRATEGIES = {"WORKER_STRATEGY_NOT_SET": 0, "PARTITIONED": 2, "FULL": 3, "DYNAMIC": 4}
PARTITION_TYPES = {"PARTITIONED_WORKER_STRATEGY_NOT_SET": 0, "EVENLY": 1, "WEIGHTED": 2}
REVIEW_STRATEGIES = {"TASK_REVIEW_STRATEGY_NOT_SET": 0, "NONE": 1, "MANUAL": 2, "CONSENSUS": 3}
PRIORITIES = {"TASK_PRIORITY_NOT_SET": 0, "LOW": 1, "MEDIUM": 2, "HIGH": 3}
#: AnnotationDataType TAG (clarifai-grpc resources.proto): what a concepts-classification task's
#: auto-annotation writes (Clarifai/docs code_snippets/api-guide/annotate/tasks/auto_annotation.sh)
ANNOTATION_DATA_TAG = 1


def enum_name(value: Any, names: Mapping[str, int], default: str) -> str:
    """An enum read as a name, whether the API sent the name or the number; `default` if absent."""
    if value is None:
        return default
    if isinstance(value, str) and value in names:
        return value
    by_number = {v: k for k, v in names.items()}
    try:
        return by_number[int(value)]
    except (TypeError, ValueError, KeyError):
        return str(value)


def _positive_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Review settings as compared: unset (absent, zero) ones left out -- proto3 JSON leaves zeros out."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v == 0:
            continue
        out[k] = modeltypes.f32(float(v)) if k == "sample_percentage" else int(v)
    return out


class TaskCodec:
    """A task (clarifai-grpc `Task`; the JSON shape of Clarifai/docs
    `code_snippets/api-guide/annotate/tasks/assigned_task.sh` and `auto_annotation.sh`). PatchTasks
    "only support[s] updating a task by providing all information at once" (docs
    `api-guide/annotate/tasks.md`), so `to_api` is always the whole task. Workers are
    ``worker.workers[{user: {id}}]`` (the deprecated `user_ids` / `users` are read too); reviewers
    ``review.users[{id}]``; each concept is ``concepts[{concept: {id}}]``, once per auto-annotation
    range with its ``auto_annotation_config``; the manifest's id rides in the marker."""

    @staticmethod
    def to_api(t: Task, metadata: dict[str, Any], worker_version: str | None = None) -> dict[str, Any]:
        """`metadata`: the marker included (`task_metadata`); `worker_version`: the version an
        auto-annotating model of this app is pinned to."""
        worker: dict[str, Any] = {"strategy": t.worker_strategy, "workers": [{"user": {"id": u}} for u in t.workers]}
        auto = t.auto_annotation
        if auto is not None:
            worker["workers"] += [TaskCodec._auto_worker(auto, worker_version)]
        if t.worker_strategy == "PARTITIONED" and t.partition:
            info: dict[str, Any] = {"type": t.partition.get("type", "EVENLY")}
            if t.partition.get("workers_per_input"):
                info["workers_per_input"] = t.partition["workers_per_input"]
            if t.partition.get("weights"):
                info["weights"] = dict(t.partition["weights"])
            worker["partitioned_strategy_info"] = info
        review: dict[str, Any] = {"strategy": t.review_strategy, "users": [{"id": u} for u in t.reviewers]}
        if t.review_strategy == "MANUAL" and t.review_params:
            review["manual_strategy_info"] = dict(t.review_params)
        elif t.review_strategy == "CONSENSUS" and t.review_params:
            review["consensus_strategy_info"] = dict(t.review_params)
        source: dict[str, Any] = {"type": t.input_source}
        if t.input_source_id:
            source["id"] = t.input_source_id
        out: dict[str, Any] = {
            "type": t.type,
            "name": t.name,
            "description": t.description,
            "worker": worker,
            "concepts": TaskCodec._concepts(t),
            "input_source": source,
            "review": review,
            "metadata": metadata,
        }
        if t.sample_ms:
            out["sample_ms"] = t.sample_ms
        if t.priority:
            out["priority"] = t.priority
        if t.server_id:
            out["id"] = t.server_id
        return out

    @staticmethod
    def _auto_worker(auto: AutoAnnotation, version: str | None) -> dict[str, Any]:
        if auto.workflow:
            return {"workflow": {"id": auto.workflow}}
        ref = auto.model or ModelRef("")
        model: dict[str, Any] = {"id": ref.id}
        if ref.external:
            model.update(user_id=ref.user_id, app_id=ref.app_id)
        pin = ref.version if ref.external else version
        if pin:
            model["model_version"] = {"id": pin}
        return {"model": model}

    @staticmethod
    def _concepts(t: Task) -> list[dict[str, Any]]:
        ranges = t.auto_annotation.ranges if t.auto_annotation else ()
        out: list[dict[str, Any]] = []
        for cid in t.concepts:
            mine = [r for r in ranges if r.concept == cid]
            if not mine:
                out.append({"concept": {"id": cid}})
            for r in mine:
                out.append(
                    {
                        "concept": {"id": cid},
                        "auto_annotation_config": {
                            "annotation_data_types": ANNOTATION_DATA_TAG,
                            "threshold_range": {
                                "is_lower_inclusive": r.lower_inclusive,
                                "is_upper_inclusive": r.upper_inclusive,
                                "lower": r.lower,
                                "upper": r.upper,
                            },
                            "status_code": modeltypes.ANNOTATION_STATUSES[r.status],
                        },
                    }
                )
        return out

    @staticmethod
    def from_api(raw: dict[str, Any], app_id: str, owner: str) -> Task:
        managed, protect, metadata, manager = read_marker(raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None)
        key = marker_key(raw.get("metadata") if isinstance(raw.get("metadata"), dict) else None)
        sid = text(raw, "id")
        worker = _obj(raw, "worker")
        review = _obj(raw, "review")
        source = _obj(raw, "input_source")
        users: list[str] = []
        auto_model: ModelRef | None = None
        auto_workflow: str | None = None
        for w in worker.get("workers") or []:
            if not isinstance(w, dict):
                continue
            if isinstance(w.get("user"), dict):
                users.append(text(w["user"], "id"))
            elif isinstance(w.get("model"), dict):
                auto_model = WorkflowCodec.node_from_api({"id": "worker", "model": w["model"]}, app_id, owner).model
            elif isinstance(w.get("workflow"), dict):
                auto_workflow = text(w["workflow"], "id")
        if not users:  # the deprecated forms
            users = [str(u) for u in worker.get("user_ids") or []] or [
                text(u, "id") for u in worker.get("users") or [] if isinstance(u, dict)
            ]
        reviewers = [text(u, "id") for u in review.get("users") or [] if isinstance(u, dict)] or [
            str(u) for u in review.get("user_ids") or []
        ]
        strategy = enum_name(review.get("strategy"), REVIEW_STRATEGIES, "TASK_REVIEW_STRATEGY_NOT_SET")
        info = _obj(review, {"MANUAL": "manual_strategy_info", "CONSENSUS": "consensus_strategy_info"}.get(strategy, "-"))
        concepts: list[str] = []
        ranges: list[ThresholdRange] = []
        for tc in raw.get("concepts") or []:
            if not isinstance(tc, dict):
                continue
            cid = text(_obj(tc, "concept"), "id")
            if cid and cid not in concepts:
                concepts.append(cid)
            cfg = _obj(tc, "auto_annotation_config")
            if cfg:
                tr = _obj(cfg, "threshold_range")
                ranges.append(
                    ThresholdRange(
                        concept=cid,
                        status=modeltypes.annotation_status_name(cfg.get("status_code", "ANNOTATION_SUCCESS")),
                        lower=modeltypes.f32(float(tr.get("lower", 0.0))),
                        upper=modeltypes.f32(float(tr.get("upper", 0.0))),
                        lower_inclusive=bool(tr.get("is_lower_inclusive")),
                        upper_inclusive=bool(tr.get("is_upper_inclusive")),
                    )
                )
        if not concepts:
            concepts = [str(c) for c in raw.get("concept_ids") or []]
        part = _obj(worker, "partitioned_strategy_info")
        partition: dict[str, Any] = {}
        if part:
            partition["type"] = enum_name(part.get("type"), PARTITION_TYPES, "PARTITIONED_WORKER_STRATEGY_NOT_SET")
            if part.get("workers_per_input"):
                partition["workers_per_input"] = int(part["workers_per_input"])
            if isinstance(part.get("weights"), dict) and part["weights"]:
                partition["weights"] = {u: modeltypes.f32(float(w)) for u, w in sorted(part["weights"].items())}
        auto = (
            AutoAnnotation(model=auto_model, workflow=auto_workflow, ranges=tuple(ranges))
            if (auto_model or auto_workflow or ranges)
            else None
        )
        return Task(
            id=key or sid,
            name=text(raw, "name"),
            type=enum_name(raw.get("type"), TASK_TYPES, "TYPE_NOT_SET"),
            description=text(raw, "description"),
            concepts=tuple(concepts),
            input_source=enum_name(source.get("type"), INPUT_SOURCES, "INPUT_SOURCE_TYPE_NOT_SET"),
            input_source_id=text(source, "id"),
            worker_strategy=enum_name(worker.get("strategy"), WORKER_STRATEGIES, "WORKER_STRATEGY_NOT_SET"),
            workers=tuple(users),
            partition=partition,
            review_strategy=strategy,
            reviewers=tuple(reviewers),
            review_params=_positive_params(info),
            priority=""
            if raw.get("priority") in (None, 0, "TASK_PRIORITY_NOT_SET")
            else enum_name(raw.get("priority"), PRIORITIES, ""),
            sample_ms=int(raw.get("sample_ms") or 0),
            metadata=metadata,
            protect=protect,
            auto_annotation=auto,
            managed=managed and key is not None,
            owner=manager,
            server_id=sid or None,
            raw=raw,
        )


def task_metadata(t: Task, live_raw: dict[str, Any] | None = None) -> dict[str, Any]:
    """A task's metadata as written: the user's own keys of the live task (when it has one), the
    manifest's keys, and the marker naming the task's manifest id (and its owner)."""
    out = {**t.metadata, MARKER_KEY: make_marker(t.protect, t.metadata, t.owner, key=t.id)}
    if live_raw and isinstance(live_raw.get("metadata"), dict):
        previously = set(read_marker(live_raw["metadata"]).metadata)
        keep = {k: v for k, v in live_raw["metadata"].items() if k != MARKER_KEY and k not in previously}
        out = {**keep, **out}
    return out
