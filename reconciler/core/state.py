"""The one type both sides of the diff share: `State`, the typed, normalised picture of an app.

The manifest loader (`manifest.py`) builds the desired State from YAML; the live reader (`live.py`)
builds the live State from the API. Neither the diff nor the planner ever learns where a State came
from. Everything here is a frozen dataclass with defaults filled in, and equality means "no change
to plan": fields that are bookkeeping rather than configuration (`managed`, `version_id`,
`versions`) are declared with `compare=False`.

Conventions every producer of a State follows:
- ids are strings; tuples keep the source order, but consumers must key by id, never by position;
- `metadata` holds only the user's own keys: the ownership marker is lifted out into
  `managed` / `protect` by the live reader and written back by apply (see `MARKER_KEY`);
- model configuration is the canonical typed dict produced by `modeltypes.canonical_config`
  (floats rounded to float32, defaults omitted), so desired and live compare directly;
- a workflow node referring to a model of the same app has `ModelRef.user_id == app_id == None`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from reconciler.core.status_codes import BY_NAME

#: Key under which a managed resource's `metadata` carries the ownership marker:
#: ``{"clarifai-reconciler": {"managed": true, "protect": false, "keys": "[\"team\"]",
#: "owner": "apps/shelf/manifest.yaml"}}``.
#: `keys` lists the metadata keys the manifest manages, as a JSON string (not a list: a PATCH
#: "merge" appends to lists instead of replacing them). Other metadata keys are the user's own:
#: the live reader hides them from the diff and apply never changes them. `owner` names the
#: manifest (or project app) that manages the resource (`State.owner`); markers written before
#: owners existed have none, and such a resource counts as owned by whichever manifest manages
#: it (the owner is written on its next update; docs/gitops.md "Owners and overlays").
MARKER_KEY = "clarifai-reconciler"


def make_marker(protect: bool, keys: Any, owner: str | None = None, key: str | None = None) -> dict[str, Any]:
    """The marker; `owner` names the manifest managing the resource (`State.owner`); `key` is the
    manifest's id of a resource whose API id the server makes (a task): the marker is then how the
    tool finds it again (`marker_key`)."""
    mark: dict[str, Any] = {"managed": True, "protect": bool(protect), "keys": json.dumps(sorted(keys))}
    if owner:
        mark["owner"] = owner
    if key is not None:
        mark["id"] = key
    return mark


def marker_key(metadata: dict[str, Any] | None) -> str | None:
    """The manifest id a marker names (`make_marker(key=...)`), or None."""
    mark = (metadata or {}).get(MARKER_KEY)
    if not isinstance(mark, dict) or not mark.get("managed"):
        return None
    key = mark.get("id")
    return key if isinstance(key, str) and key else None


class Marker(NamedTuple):
    """What an ownership marker says (`read_marker`)."""

    managed: bool
    protect: bool
    #: the metadata keys the manifest manages, with their values
    metadata: dict[str, Any]
    #: the owner recorded in the marker; None when unmarked or written before owners existed
    owner: str | None = None


def read_marker(metadata: dict[str, Any] | None) -> Marker:
    """Split raw API metadata into the marker's fields (see `Marker`). Unmarked resources are
    (False, False, {}, None): none of their metadata is ours to compare."""
    metadata = dict(metadata or {})
    mark = metadata.pop(MARKER_KEY, None)
    if not isinstance(mark, dict) or not mark.get("managed"):
        return Marker(False, False, {})
    try:
        keys = json.loads(mark.get("keys") or "[]")
    except (TypeError, ValueError):
        keys = []
    if not isinstance(keys, list):
        keys = []
    owner = mark.get("owner")
    return Marker(
        True,
        bool(mark.get("protect")),
        {k: metadata[k] for k in keys if isinstance(k, str) and k in metadata},
        owner if isinstance(owner, str) and owner else None,
    )


class Kind(StrEnum):
    APP = "app"
    CONCEPT = "concept"
    RELATION = "concept_relation"
    MODEL = "model"
    WORKFLOW = "workflow"
    COLLABORATOR = "collaborator"
    DATASET = "dataset"
    TASK = "task"


@dataclass(frozen=True, order=True)
class ResourceKey:
    """Identity of one resource: its kind and its id (a relation's id is `ConceptRelation.key`)."""

    kind: Kind
    id: str

    def __str__(self) -> str:
        return f"{self.kind.value}/{self.id}"


@dataclass(frozen=True)
class ConceptRef:
    """A concept, either of this app (`app_id is None`) or external, e.g. clarifai/main's people."""

    id: str
    user_id: str | None = None
    app_id: str | None = None

    @property
    def external(self) -> bool:
        return self.app_id is not None

    def __str__(self) -> str:
        return f"{self.user_id}/{self.app_id}/{self.id}" if self.external else self.id


@dataclass(frozen=True)
class ModelRef:
    """What a workflow node runs. Local (`app_id is None`): a model of this app; `version` is None in a
    desired state, meaning "the version whose config matches the manifest", and the pinned version
    id in a live state. External: a full `{user_id, app_id, id, version}` reference."""

    id: str
    user_id: str | None = None
    app_id: str | None = None
    version: str | None = None

    @property
    def external(self) -> bool:
        return self.app_id is not None

    def __str__(self) -> str:
        base = f"{self.user_id}/{self.app_id}/{self.id}" if self.external else self.id
        return f"{base}@{self.version}" if self.version else base


@dataclass(frozen=True)
class App:
    id: str
    description: str = ""
    default_workflow: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    #: live only: the object as the API returned it, so an overwrite can send back the fields the
    #: manifest does not manage without reading the app again (not compared, not fingerprinted)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: desired only: the manifest's `app.reindex` (None: not stated), sent as PatchApps' `reindex`
    #: when the default workflow changes (changing it re-indexes the app's inputs)
    reindex: bool | None = field(default=None, compare=False)
    #: live only: the app's input count, read (GetInputCount) only when a plan changes the default
    #: workflow; None when not read
    input_count: int | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Concept:
    id: str
    name: str = ""  # the loader fills it with `id` when the manifest leaves it out
    description: str = ""
    #: live only: the concept as the API returned it (see `App.raw`): an overwrite sends back its
    #: metadata, which the manifest does not manage
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ConceptRelation:
    """Relations have no metadata and a server-assigned id: they are identified by their content."""

    subject: str  # a concept id of this app
    predicate: str  # synonym | hypernym | hyponym
    object: ConceptRef
    knowledge_graph_id: str = ""
    server_id: str | None = field(default=None, compare=False)  # live only: the API's relation id

    @property
    def key(self) -> str:
        return f"{self.subject} {self.predicate} {self.object}" + (
            f" @{self.knowledge_graph_id}" if self.knowledge_graph_id else ""
        )

    @property
    def normal(self) -> tuple[str, str, str, str]:
        """The relation in one normal form, whichever side it is shown from, for comparing: between
        two concepts of this app, ``a hyponym b`` is ``b hypernym a`` and ``a synonym b`` is
        ``b synonym a``. Clarifai's listings show a relation from its object's side inverted, and
        which side the app-wide listing shows is not documented (README, quirk
        `relation-inverse-listing`); comparing oriented relations would create and delete the
        same relation on every run. An external object cannot be a subject here: kept as is."""
        kg = self.knowledge_graph_id
        if not self.object.external:
            if self.predicate == "hyponym":
                return (self.object.id, "hypernym", self.subject, kg)
            if self.predicate == "synonym" and self.object.id < self.subject:
                return (self.object.id, "synonym", self.subject, kg)
        return (self.subject, self.predicate, str(self.object), kg)


@dataclass(frozen=True)
class ModelVersion:
    """One immutable version of a model, as read from the API (live states only)."""

    id: str
    config: dict[str, Any]
    status_code: int = BY_NAME["MODEL_TRAINED"]
    created_at: str = ""


@dataclass(frozen=True)
class Model:
    id: str
    type: str  # Clarifai model_type_id, e.g. "concept-thresholder"
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    #: canonical typed configuration, see `modeltypes.canonical_config`
    config: dict[str, Any] = field(default_factory=dict)
    managed: bool = field(default=True, compare=False)
    #: desired: the manifest's owner (`State.owner`), written into the marker; live: the owner the
    #: marker names (None: unmarked, or marked before owners existed). Compared by the planner
    #: itself (a resource of another owner), never by the diff
    owner: str | None = field(default=None, compare=False)
    #: live only: the model's latest version id, and the versions read (latest first)
    version_id: str | None = field(default=None, compare=False)
    versions: tuple[ModelVersion, ...] = field(default=(), compare=False)
    #: live only: the model object as the API returned it (see `App.raw`): an update removes the
    #: stale parts of its metadata before merging the manifest's
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Node:
    id: str
    model: ModelRef
    inputs: tuple[str, ...] = ()
    suppress_output: bool = False


@dataclass(frozen=True)
class Workflow:
    id: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    nodes: tuple[Node, ...] = ()
    managed: bool = field(default=True, compare=False)
    #: see `Model.owner`
    owner: str | None = field(default=None, compare=False)
    #: live only: the object as the API returned it (see `App.raw`)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class Collaborator:
    """A user the app is shared with (ListCollaborators). No metadata, so no ownership marker: it is
    identified by its user id, and the API's own collaborator id is bookkeeping (`server_id`). A
    manifest that has a `collaborators:` list declares the whole list (README "Review tasks")."""

    user_id: str
    #: the scopes granted; None: the manifest does not say (created with `LABELER_SCOPES`, never
    #: compared)
    scopes: tuple[str, ...] | None = None
    server_id: str | None = field(default=None, compare=False)

    @property
    def id(self) -> str:
        return self.user_id


#: Scopes a collaborator gets when the manifest names none: what labelling and reviewing a task
#: needs -- the scopes clarifai-grpc's service.proto lists as `cl_depending_scopes` of
#: PutTaskAssignments (Apps_Get, Annotations_Add, Annotations_Get, Concepts_Get, Inputs_Get,
#: Tasks_Get, Datasets_Get; Clarifai/clarifai-nodejs-grpc proto/clarifai/api/service.proto).
LABELER_SCOPES: tuple[str, ...] = (
    "Annotations_Add",
    "Annotations_Get",
    "Apps_Get",
    "Concepts_Get",
    "Datasets_Get",
    "Inputs_Get",
    "Tasks_Get",
)


@dataclass(frozen=True)
class DatasetVersion:
    """One immutable version (snapshot) of a dataset, as read from the API (live states only);
    `spec` is its definition in the canonical form of `Dataset.version`."""

    id: str
    spec: dict[str, Any]
    created_at: str = ""
    status_code: int = 0


@dataclass(frozen=True)
class Dataset:
    id: str
    description: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    #: the version the manifest defines, canonical ``{"description": str, "metadata": {...}?}``;
    #: None: the manifest manages no version. Versions are immutable: a changed definition is a new
    #: version (like a model's configuration).
    version: dict[str, Any] | None = None
    managed: bool = field(default=True, compare=False)
    #: see `Model.owner`
    owner: str | None = field(default=None, compare=False)
    #: live only: the versions read, newest first
    versions: tuple[DatasetVersion, ...] = field(default=(), compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class ThresholdRange:
    """One auto-annotation rule of a task (TaskConceptAutoAnnotationConfig): a prediction of
    `concept` whose score is in the range is written with annotation status `status` (a name)."""

    concept: str
    status: str
    lower: float = 0.0
    upper: float = 1.0
    lower_inclusive: bool = True
    upper_inclusive: bool = True

    def holds(self, score: float) -> bool:
        lo = score >= self.lower if self.lower_inclusive else score > self.lower
        hi = score <= self.upper if self.upper_inclusive else score < self.upper
        return lo and hi


@dataclass(frozen=True)
class AutoAnnotation:
    """What labels a task's inputs for it: a model (of this app: `ModelRef.version` None in a
    desired state, as for workflow nodes; or another app's, pinned) or a workflow of this app, and
    the per-concept ranges and statuses its predictions are written with."""

    model: ModelRef | None = None
    workflow: str | None = None
    ranges: tuple[ThresholdRange, ...] = ()


@dataclass(frozen=True)
class Task:
    """A labelling task. `id` is the manifest's key: Clarifai makes task ids itself, so the key is
    kept in the task's ownership marker (`make_marker(key=...)`) and the task found by it; the
    API's id is `server_id`."""

    id: str
    name: str = ""
    type: str = "CONCEPTS_CLASSIFICATION"
    description: str = ""
    concepts: tuple[str, ...] = ()
    input_source: str = "ALL_INPUTS"  # ALL_INPUTS | DATASET | SAVED_SEARCH | INPUT
    input_source_id: str = ""  # the dataset, saved search or input id
    worker_strategy: str = "DYNAMIC"  # DYNAMIC | FULL | PARTITIONED
    workers: tuple[str, ...] = ()  # user ids
    #: PARTITIONED only: {"type": EVENLY | WEIGHTED, "workers_per_input": n?, "weights": {user: w}?}
    partition: dict[str, Any] = field(default_factory=dict)
    review_strategy: str = "NONE"  # NONE | MANUAL | CONSENSUS
    reviewers: tuple[str, ...] = ()
    #: MANUAL: {"sample_percentage": x}; CONSENSUS: {"approval_threshold_labelers": n,
    #: "approval_threshold_reviewers": n} (each only when set)
    review_params: dict[str, Any] = field(default_factory=dict)
    priority: str = ""  # "" (not set) | LOW | MEDIUM | HIGH
    sample_ms: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    auto_annotation: AutoAnnotation | None = None
    managed: bool = field(default=True, compare=False)
    #: see `Model.owner`
    owner: str | None = field(default=None, compare=False)
    server_id: str | None = field(default=None, compare=False)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def users(self) -> tuple[str, ...]:
        """Everyone the task names: workers, then reviewers (each once)."""
        return tuple(dict.fromkeys(self.workers + self.reviewers))


Resource = App | Concept | ConceptRelation | Model | Workflow | Collaborator | Dataset | Task

#: The optional sections of a manifest: a kind is read from the live app (and its managed
#: resources deleted when gone) only when the manifest has its section, so an app that does not use
#: tasks is never asked for them (a key without the Tasks_Get scope still plans).
SECTION_KINDS: dict[str, Kind] = {"collaborators": Kind.COLLABORATOR, "datasets": Kind.DATASET, "tasks": Kind.TASK}


@dataclass(frozen=True)
class State:
    app: App
    concepts: tuple[Concept, ...] = ()
    relations: tuple[ConceptRelation, ...] = ()
    models: tuple[Model, ...] = ()
    workflows: tuple[Workflow, ...] = ()
    collaborators: tuple[Collaborator, ...] = ()
    datasets: tuple[Dataset, ...] = ()
    tasks: tuple[Task, ...] = ()
    #: the optional kinds this state speaks for (`SECTION_KINDS`): a manifest's sections, or the
    #: kinds a live read listed
    sections: frozenset[Kind] = field(default=frozenset(), compare=False)
    #: the user that owns the app, when known (manifest `app.user_id`, env, or the live read)
    user_id: str | None = field(default=None, compare=False)
    #: where this state came from: manifest file name(s) or "live"
    source: str = field(default="", compare=False)
    #: desired only: who manages the app's models and workflows from this manifest (the manifest's
    #: `owner:`, else its path from the git root; a project app's name). None: no owner is
    #: recorded or checked (States built in code, older saved plans)
    owner: str | None = field(default=None, compare=False)

    def resources(self) -> Iterator[tuple[ResourceKey, Resource]]:
        """Every resource with its key, the app first, then kinds in dependency order."""
        yield ResourceKey(Kind.APP, self.app.id), self.app
        for c in self.concepts:
            yield ResourceKey(Kind.CONCEPT, c.id), c
        for r in self.relations:
            yield ResourceKey(Kind.RELATION, r.key), r
        for m in self.models:
            yield ResourceKey(Kind.MODEL, m.id), m
        for w in self.workflows:
            yield ResourceKey(Kind.WORKFLOW, w.id), w
        for person in self.collaborators:
            yield ResourceKey(Kind.COLLABORATOR, person.id), person
        for d in self.datasets:
            yield ResourceKey(Kind.DATASET, d.id), d
        for t in self.tasks:
            yield ResourceKey(Kind.TASK, t.id), t

    def by_key(self) -> dict[ResourceKey, Resource]:
        return dict(self.resources())

    def model(self, model_id: str) -> Model | None:
        return next((m for m in self.models if m.id == model_id), None)

    def workflow(self, workflow_id: str) -> Workflow | None:
        return next((w for w in self.workflows if w.id == workflow_id), None)

    def task(self, task_id: str) -> Task | None:
        return next((t for t in self.tasks if t.id == task_id), None)

    def dataset(self, dataset_id: str) -> Dataset | None:
        return next((d for d in self.datasets if d.id == dataset_id), None)


def with_owner(state: State, owner: str | None) -> State:
    """`state` managed by `owner`: the State's own `owner` and every marked resource's -- models,
    workflows, datasets and tasks (what apply writes into their markers). `owner` None leaves the
    state as it is."""
    if not owner:
        return state
    return dataclasses.replace(
        state,
        owner=owner,
        models=tuple(dataclasses.replace(m, owner=owner) for m in state.models),
        workflows=tuple(dataclasses.replace(w, owner=owner) for w in state.workflows),
        datasets=tuple(dataclasses.replace(d, owner=owner) for d in state.datasets),
        tasks=tuple(dataclasses.replace(t, owner=owner) for t in state.tasks),
    )


def resource_dependencies(res: Resource) -> set[ResourceKey]:
    """The resources `res` needs to exist first (creates run in this order, deletes in reverse).
    External references (clarifai/main) are not resources of the state."""
    deps: set[ResourceKey] = set()
    if isinstance(res, ConceptRelation):
        deps.add(ResourceKey(Kind.CONCEPT, res.subject))
        if not res.object.external:
            deps.add(ResourceKey(Kind.CONCEPT, res.object.id))
    elif isinstance(res, Model):
        for cid in concept_ids_of(res):
            deps.add(ResourceKey(Kind.CONCEPT, cid))
        task = task_of_writer(res)
        if task:
            deps.add(ResourceKey(Kind.TASK, task))
    elif isinstance(res, Task):
        deps |= {ResourceKey(Kind.CONCEPT, c) for c in res.concepts}
        deps |= {ResourceKey(Kind.COLLABORATOR, u) for u in res.users}
        if res.input_source == "DATASET" and res.input_source_id:
            deps.add(ResourceKey(Kind.DATASET, res.input_source_id))
        auto = res.auto_annotation
        if auto is not None:
            deps |= {ResourceKey(Kind.CONCEPT, r.concept) for r in auto.ranges}
            if auto.model is not None and not auto.model.external:
                deps.add(ResourceKey(Kind.MODEL, auto.model.id))
            if auto.workflow:
                deps.add(ResourceKey(Kind.WORKFLOW, auto.workflow))
    elif isinstance(res, Workflow):
        for n in res.nodes:
            if not n.model.external:
                deps.add(ResourceKey(Kind.MODEL, n.model.id))
    elif isinstance(res, App) and res.default_workflow:
        deps.add(ResourceKey(Kind.WORKFLOW, res.default_workflow))
    return deps


def concept_ids_of(model: Model) -> list[str]:
    """Concept ids of this app that a model's config names (thresholds, classifier concepts)."""
    cfg = model.config
    ids = list(cfg.get("thresholds", {}) or {})
    ids += list(cfg.get("concepts", []) or [])
    return ids


#: An annotation-writer's `task_id` that names a task this apply creates: NEW_TASK + the task's
#: manifest id (the planner puts it there; apply puts the new task's id in its place).
NEW_TASK = "new:task/"


def task_of_writer(model: Model) -> str | None:
    """The manifest id of the task an annotation-writer writes into, when the manifest names one
    (`task:`, before the planner resolves it) or the plan makes it (a `NEW_TASK` reference)."""
    task = model.config.get("task")
    if isinstance(task, str) and task:
        return task
    tid = model.config.get("task_id")
    if isinstance(tid, str) and tid.startswith(NEW_TASK):
        return tid[len(NEW_TASK) :]
    return None
