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


def make_marker(protect: bool, keys: Any, owner: str | None = None) -> dict[str, Any]:
    mark: dict[str, Any] = {"managed": True, "protect": bool(protect), "keys": json.dumps(sorted(keys))}
    if owner:
        mark["owner"] = owner
    return mark


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


Resource = App | Concept | ConceptRelation | Model | Workflow


@dataclass(frozen=True)
class State:
    app: App
    concepts: tuple[Concept, ...] = ()
    relations: tuple[ConceptRelation, ...] = ()
    models: tuple[Model, ...] = ()
    workflows: tuple[Workflow, ...] = ()
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

    def by_key(self) -> dict[ResourceKey, Resource]:
        return dict(self.resources())

    def model(self, model_id: str) -> Model | None:
        return next((m for m in self.models if m.id == model_id), None)

    def workflow(self, workflow_id: str) -> Workflow | None:
        return next((w for w in self.workflows if w.id == workflow_id), None)


def with_owner(state: State, owner: str | None) -> State:
    """`state` managed by `owner`: the State's own `owner` and every model's and workflow's (what
    apply writes into their markers). `owner` None leaves the state as it is."""
    if not owner:
        return state
    return dataclasses.replace(
        state,
        owner=owner,
        models=tuple(dataclasses.replace(m, owner=owner) for m in state.models),
        workflows=tuple(dataclasses.replace(w, owner=owner) for w in state.workflows),
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
