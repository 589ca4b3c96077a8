"""The plan's data: operations (`Op`), `Action`, `Note`, `Plan`, the (op, kind) pairs the planner
can emit, and the `new:<model>` pins that name a version this apply will make."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Self

from reconciler.core.state import Kind, Resource, ResourceKey, State
from reconciler.planning.diff import Change


class Op(StrEnum):
    """What an action does. The value is the word in plans' JSON and saved plans; each op also
    carries how it is shown (`_SHOWN`): `glyph` (text and Markdown), `label` (the action column),
    `drift` (drift's wording) and `rank`, its order among the ops on one resource (adopt/update
    before a new version). Members are listed in summary order."""

    CREATE = "create"
    UPDATE = "update"
    ADOPT = "adopt"
    NEW_VERSION = "new_version"
    REPOINT = "repoint"
    SET_DEFAULT = "set_default"
    DELETE = "delete"

    @property
    def glyph(self) -> str:
        return _SHOWN[self].glyph

    @property
    def label(self) -> str:
        return _SHOWN[self].label

    @property
    def drift(self) -> str:
        return _SHOWN[self].drift

    @property
    def rank(self) -> int:
        return _SHOWN[self].rank


class _Shown(NamedTuple):
    glyph: str
    label: str
    drift: str
    rank: int


_SHOWN = {
    Op.CREATE: _Shown("+", "create", "missing from the app", 0),
    Op.UPDATE: _Shown("~", "update", "differs", 2),
    Op.ADOPT: _Shown("~", "adopt (take ownership)", "not marked as managed", 1),
    Op.NEW_VERSION: _Shown("±", "new version", "model configuration differs", 3),
    Op.REPOINT: _Shown("~", "repoint", "workflow pins other model versions", 4),
    Op.SET_DEFAULT: _Shown("~", "set default workflow", "default workflow differs", 5),
    Op.DELETE: _Shown("-", "delete", "managed, but no longer in the manifest", 6),
}


class Note(str):
    """A plan note: its text (the note IS its text, so it reads and compares as one) and the
    resource it is about, `key` (None: several resources or none). `--target` keeps the notes of
    the resources it keeps."""

    key: ResourceKey | None

    def __new__(cls, key: ResourceKey | None, text: str) -> Self:
        note = super().__new__(cls, text)
        note.key = key
        return note

    @property
    def text(self) -> str:
        return str.__str__(self)

    def __getnewargs__(self) -> tuple[ResourceKey | None, str]:  # type: ignore[override]
        # copy and pickle rebuild a Note through __new__, which takes the key too
        return self.key, self.text


#: Every (op, kind) the planner emits (`_Planner._add` refuses others); apply has one executor
#: for each (`apply.EXECUTORS`, checked at import).
PLANNED: frozenset[tuple[Op, Kind]] = frozenset(
    {
        (Op.CREATE, Kind.APP),
        (Op.UPDATE, Kind.APP),
        (Op.SET_DEFAULT, Kind.APP),
        (Op.CREATE, Kind.CONCEPT),
        (Op.UPDATE, Kind.CONCEPT),
        (Op.CREATE, Kind.RELATION),
        (Op.DELETE, Kind.RELATION),
        (Op.CREATE, Kind.MODEL),
        (Op.UPDATE, Kind.MODEL),
        (Op.ADOPT, Kind.MODEL),
        (Op.NEW_VERSION, Kind.MODEL),
        (Op.DELETE, Kind.MODEL),
        (Op.CREATE, Kind.WORKFLOW),
        (Op.UPDATE, Kind.WORKFLOW),
        (Op.ADOPT, Kind.WORKFLOW),
        (Op.REPOINT, Kind.WORKFLOW),
        (Op.DELETE, Kind.WORKFLOW),
        (Op.CREATE, Kind.COLLABORATOR),
        (Op.UPDATE, Kind.COLLABORATOR),
        (Op.DELETE, Kind.COLLABORATOR),
        (Op.CREATE, Kind.DATASET),
        (Op.UPDATE, Kind.DATASET),
        (Op.ADOPT, Kind.DATASET),
        (Op.NEW_VERSION, Kind.DATASET),
        (Op.DELETE, Kind.DATASET),
        (Op.CREATE, Kind.TASK),
        (Op.UPDATE, Kind.TASK),
        (Op.DELETE, Kind.TASK),
    }
)
KIND_ORDER = {
    Kind.APP: 0,
    Kind.CONCEPT: 1,
    Kind.RELATION: 2,
    Kind.COLLABORATOR: 3,
    Kind.DATASET: 4,
    Kind.MODEL: 5,
    Kind.TASK: 6,
    Kind.WORKFLOW: 7,
}
#: A workflow pin to the version this plan makes of a model: NEW_PREFIX + model id.
NEW_PREFIX = "new:"
#: How many ids an aggregated note names before "and N more".
NOTE_IDS = 5


@dataclass(frozen=True)
class Action:
    op: Op
    kind: Kind
    id: str  # resource id (relation: ConceptRelation.key)
    changes: tuple[Change, ...] = ()
    desired: Resource | None = None  # None for delete
    live: Resource | None = None  # None for create
    #: workflow actions: (node_id, version id | "new:<model_id>") for every node on a local model
    pins: tuple[tuple[str, str], ...] = ()
    #: an existing version already matches the desired config: no new version (informational)
    reuse_version: str | None = None
    reason: str = ""
    #: workflow actions: for a pin change between two existing versions of a model, the change
    #: path ("nodes.NODE.model.version") and how the two versions' configurations differ, so a
    #: repoint reads in words ("thresholds.walker: 0.85 → 0.9"), not only version ids. Derived
    #: from the live read (which the fingerprint covers), so not part of equality.
    version_changes: tuple[tuple[str, tuple[Change, ...]], ...] = field(default=(), compare=False)

    @property
    def key(self) -> ResourceKey:
        return ResourceKey(self.kind, self.id)

    @property
    def address(self) -> str:
        return f"{self.kind.value}/{self.id}"


@dataclass(frozen=True)
class Plan:
    app_id: str
    user_id: str | None
    actions: tuple[Action, ...]  # in execution order
    notes: tuple[Note, ...]
    live_fingerprint: str
    desired: State
    targets: tuple[str, ...] = ()
    #: where the plan was made and applies: the API base, or "local sandbox at PATH"
    endpoint: str = ""
    #: the live state the plan was made from (None: the app did not exist). A saved plan stores
    #: it, so that what `show` prints is derived again from verified content (`planfile`).
    live: State | None = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        return not self.actions

    def summary(self) -> dict[str, int]:
        counts = {op.value: 0 for op in Op}
        for a in self.actions:
            counts[a.op.value] += 1
        return counts


def is_new_pin(pin: str) -> bool:
    return pin.startswith(NEW_PREFIX)


def new_pin_model(pin: str) -> str | None:
    """The model id of a ``new:<model>`` pin; None for a pin to an existing version."""
    return pin[len(NEW_PREFIX) :] if is_new_pin(pin) else None


def new_pin(model_id: str) -> str:
    return NEW_PREFIX + model_id
