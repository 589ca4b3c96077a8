"""Plan: desired State + live State -> an ordered tuple of Actions (pure; no I/O).

`make_plan(desired, live, live_fingerprint=..., targets=...)` decides, resource by resource, what
`apply` must do, and in which order. The rules (README, "Plans"):

- app: `create` when the app does not exist (live is None); `update` for description/metadata;
  `set_default` when the manifest names a default workflow the app does not have (a manifest
  without `default_workflow` leaves the app's default alone);
- concepts: `create` / `update` (name, description). Concepts cannot be deleted through the API:
  live concepts the manifest lacks are reported in one aggregated note;
- relations (identified by content): `create`; `delete` of a live relation whose subject the
  manifest declares but which the manifest lacks; relations of other subjects are unmanaged;
- models and workflows (datasets and tasks likewise, `planreview`) carry ownership (`managed`,
  `protect`, `owner`): an unmarked live resource
  the manifest names is `adopt`ed (field changes ride along); a marked one the manifest lacks is
  `delete`d unless protected (a note); an unmarked one the manifest lacks is left alone (a note).
  Owners (`State.owner`, the marker's `owner`): a managed resource whose marker names another
  owner is never deleted (a note says whose it is), and one the manifest names is `adopt`ed with
  the change ``owner: theirs -> ours``. A marker without an owner (written before owners
  existed) counts as ours; a desired State without an owner checks none;
- model configuration lives in immutable versions: a desired config that an existing live
  version's matches (`modeltypes.config_matches`: what the server filled in is not compared)
  reuses the newest such version; otherwise `new_version` (changes: latest live config
  -> desired, paths ``config.*``). A model's type cannot change (PlanError);
- collaborators, datasets and tasks: `planreview` (an annotation-writer's `task` resolved there);
- workflow nodes on local models are pinned: to ``new:<model>`` when this plan makes that model's
  new version (create / new_version), else to the newest live version whose config matches. A
  live node whose pinned version already matches stays as it is. Structural differences ->
  `update` (whole node list, with pins); pins only -> `repoint`. The app's default workflow is
  never deleted while it stays the default (the API refuses; a note says to name another);

Order, two passes: creates/updates/new versions/repoints/set_default in topological order of the
dependency graph (ready actions taken smallest first by kind, id and op, so the order is
deterministic); then all deletes, in reverse dependency order (workflows, then models, then
relations). `set_default` therefore runs
after the workflow it names exists and before any old default workflow is deleted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from reconciler.api import training
from reconciler.core import modeltypes
from reconciler.core.errors import PlanError
from reconciler.core.state import App, Dataset, Kind, Model, ModelVersion, ResourceKey, State, Task, Workflow
from reconciler.planning.actions import (  # noqa: F401 (re-exported)
    KIND_ORDER,
    NEW_PREFIX,
    NOTE_IDS,
    PLANNED,
    Action,
    Note,
    Op,
    Plan,
    is_new_pin,
    new_pin,
    new_pin_model,
)
from reconciler.planning.diff import ABSENT, Change, created_fields, diff_dicts, diff_resources
from reconciler.planning.order import _limit_to_targets, _order, action_predecessors, parse_target
from reconciler.planning.planreview import ReviewPlanning, check_task_users, resolve_writer_tasks

__all__ = [
    "ABSENT",
    "Action",
    "Change",
    "Note",
    "Op",
    "PLANNED",
    "Plan",
    "action_predecessors",
    "is_new_pin",
    "make_plan",
    "new_pin",
    "new_pin_model",
    "parse_target",
]


def make_plan(
    desired: State, live: State | None, *, live_fingerprint: str = "", targets: Sequence[str] = (), endpoint: str = ""
) -> Plan:
    """The ordered plan that turns `live` (None: the app does not exist) into `desired`;
    `endpoint` (where `live` was read) is recorded, not used."""
    desired = resolve_writer_tasks(fill_implicit(desired, live), live)
    check_task_users(desired, live)
    planner = _Planner(desired, live)
    actions, notes = planner.run()
    if targets:
        actions, notes = _limit_to_targets(actions, notes, targets, desired, live)
    return Plan(
        app_id=desired.app.id,
        user_id=desired.user_id or (live.user_id if live else None),
        actions=tuple(_order(actions)),
        notes=tuple(notes),
        live_fingerprint=live_fingerprint,
        desired=desired,
        targets=tuple(targets),
        endpoint=endpoint,
        live=live,
    )


def fill_implicit(desired: State, live: State | None) -> State:
    """Make implicit manifest defaults explicit before diffing: an annotation-writer without
    `annotation_user_id` writes as the app owner, so it gets the owner's user id (from the
    manifest/environment, else the live read) — the API stores the user it writes as, and leaving
    it out would show a change on every plan."""
    user = desired.user_id or (live.user_id if live else None)
    if not user:
        return desired
    models = tuple(
        dataclasses.replace(m, config={**m.config, "annotation_user_id": user})
        if modeltypes.canonical_type(m.type) == modeltypes.WRITER and not m.config.get("annotation_user_id")
        else m
        for m in desired.models
    )
    return dataclasses.replace(desired, models=models) if models != desired.models else desired


def model_versions(m: Model) -> tuple[ModelVersion, ...]:
    """A live model's known versions, newest first (the latest alone when the reader gave no list)."""
    if m.versions:
        return m.versions
    return (ModelVersion(m.version_id, m.config),) if m.version_id else ()


def _reusable(model_type: str, v: ModelVersion) -> bool:
    # a trainable model's version is usable once trained; one training or queued will be (apply
    # waits); untrained or failed ones are not. Operator versions are usable at once.
    if modeltypes.canonical_type(model_type) in modeltypes.TRAINABLE_TYPES:
        waiting = (training.MODEL_TRAINING, training.MODEL_QUEUED_FOR_TRAINING)
        return training.is_trained(v.status_code) or v.status_code in waiting
    return True


def reindex_words(d: App, before: str | None, count: int | None) -> str:
    """What changing the default (base) workflow does to the app's inputs, in words. Changing it
    re-indexes every input through the new workflow, which "may take some time, and could incur
    costs" (Clarifai/docs docs/create/workflows/base-workflows.md); PatchApps' `reindex` flag
    decides ("If set, the app will be automatically reindexed upon change of its base workflow",
    clarifai-grpc service.proto PatchAppsRequest). `count`: the app's inputs (0 for a new app;
    None when not read, e.g. a state built by hand). With inputs and no `app.reindex` stated in
    the manifest this is a PlanError: the choice may cost money, so it is the user's to write."""
    if count == 0:
        return "the app has no inputs: nothing to re-index"
    n = "its inputs" if count is None else "the 1 input of the app" if count == 1 else f"all {count:,} inputs of the app"
    wf = d.default_workflow
    if d.reindex is None:
        if count is None:
            return f"changing the default workflow may re-index {n}; app.reindex is not stated"
        raise PlanError(
            f"app/{d.id}: changing default_workflow from {before or '(none)'} to {wf} re-indexes {n} "
            "through the new workflow, which may take long and cost money (Clarifai docs: "
            "create/workflows/base-workflows); state the choice in the manifest: app.reindex: true (re-index "
            "them) or app.reindex: false (leave them as indexed; only new inputs go through the new workflow)"
        )
    if d.reindex:
        return f"re-indexes {n} through {wf} (app.reindex: true): may take a while and may incur costs"
    return f"app.reindex: false: {n} {'is' if count == 1 else 'are'} left as indexed; only new inputs go through {wf}"


def _few(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:NOTE_IDS])
    return shown + (f", and {len(ids) - NOTE_IDS} more" if len(ids) > NOTE_IDS else "")


class _Planner(ReviewPlanning):
    def __init__(self, desired: State, live: State | None):
        self.desired = desired
        self.live = live
        self.lv = live or State(app=App(id=desired.app.id))
        self.actions: list[Action] = []
        self.notes: list[Note] = []
        self.unmanaged: list[str] = []
        #: model id -> the pin a node should get: "new:<id>" or the newest matching version id
        self.pin_target: dict[str, str] = {}
        #: model id -> ids of live versions whose config equals the desired config
        self.matching: dict[str, set[str]] = {}

    def run(self) -> tuple[list[Action], list[Note]]:
        self._app()
        self._concepts()
        self._relations()
        self._collaborators()
        self._datasets()
        self._models()
        self._workflows()
        self._tasks()
        self._keep_the_default_workflow()
        self._keep_models_in_use()
        if self.unmanaged:
            self.notes.append(
                Note(
                    None,
                    f"{len(self.unmanaged)} unmanaged resource(s) left alone (not in the "
                    f"manifest, not marked as managed): {_few(self.unmanaged)}",
                )
            )
        return self.actions, self.notes

    def _add(self, op: Op, kind: Kind, id: str, **kw: Any) -> None:
        if (op, kind) not in PLANNED:
            raise AssertionError(f"the planner emitted {op.value} {kind.value}, which is not in PLANNED")
        kw["changes"] = tuple(kw.get("changes", ()))
        self.actions.append(Action(op, kind, id, **kw))

    # --- app ----------------------------------------------------------------------------------
    def _app(self) -> None:
        d = self.desired.app
        if self.live is None:
            self._add(Op.CREATE, Kind.APP, d.id, desired=d, changes=created_fields(d, exclude=("default_workflow",)))
            before: str | None = None
        else:
            la = self.live.app
            changes = diff_resources(la, d, exclude=("default_workflow",))
            if changes:
                self._add(Op.UPDATE, Kind.APP, d.id, changes=changes, desired=d, live=la)
            before = la.default_workflow
        if d.default_workflow and d.default_workflow != before:
            self._add(
                Op.SET_DEFAULT,
                Kind.APP,
                d.id,
                desired=d,
                live=self.live.app if self.live else None,
                changes=[Change("default_workflow", before, d.default_workflow)],
                reason=reindex_words(d, before, self.live.app.input_count) if self.live else "",
            )

    # --- concepts and relations ---------------------------------------------------------------
    def _concepts(self) -> None:
        live = {c.id: c for c in self.lv.concepts}
        for c in self.desired.concepts:
            lc = live.pop(c.id, None)
            if lc is None:
                self._add(Op.CREATE, Kind.CONCEPT, c.id, desired=c, changes=created_fields(c))
            elif lc != c:
                self._add(Op.UPDATE, Kind.CONCEPT, c.id, desired=c, live=lc, changes=diff_resources(lc, c))
        if live:
            ids = sorted(live)
            self.notes.append(
                Note(
                    None,
                    f"{len(ids)} concept(s) in the app are not in the manifest "
                    f"({_few(ids)}); the Clarifai API cannot delete concepts; left as is",
                )
            )

    def _relations(self) -> None:
        declared = {c.id for c in self.desired.concepts}
        # matched in normal form (`ConceptRelation.normal`): the same relation read from its other side
        live = {r.normal: r for r in self.lv.relations}
        for r in self.desired.relations:
            if live.pop(r.normal, None) is None:
                self._add(Op.CREATE, Kind.RELATION, r.key, desired=r)
        for r in sorted(live.values(), key=lambda x: x.key):
            key = r.key
            if r.subject in declared:  # the manifest is authoritative for its concepts' relations
                self._add(
                    Op.DELETE,
                    Kind.RELATION,
                    key,
                    live=r,
                    reason=f"concept {r.subject} is declared in the manifest without this relation",
                )
            else:
                self.unmanaged.append(f"{Kind.RELATION.value}/{key}")

    # --- models -------------------------------------------------------------------------------
    def _models(self) -> None:
        live = {m.id: m for m in self.lv.models}
        for m in self.desired.models:
            lm = live.pop(m.id, None)
            trainable = modeltypes.canonical_type(m.type) in modeltypes.TRAINABLE_TYPES
            train_note = "trainable: apply waits until the new version is trained" if trainable else ""
            if lm is None:
                self._add(Op.CREATE, Kind.MODEL, m.id, desired=m, changes=created_fields(m), reason=train_note)
                self.pin_target[m.id] = new_pin(m.id)
                self.matching[m.id] = set()
                continue
            if modeltypes.canonical_type(lm.type) != modeltypes.canonical_type(m.type):
                raise PlanError(
                    f"model {m.id}: type cannot change from {lm.type} to {m.type}; rename the model or delete it first"
                )
            versions = model_versions(lm)
            match = [v.id for v in versions if modeltypes.config_matches(m.type, v.config, m.config) and _reusable(m.type, v)]
            self.matching[m.id] = set(match)
            latest = versions[0].id if versions else None
            reuse = match[0] if match and match[0] != latest else None
            changes = diff_resources(lm, m, exclude=("config", "type"))
            theirs = self._foreign_owner(lm)
            if not lm.managed or theirs:
                self._add(
                    Op.ADOPT,
                    Kind.MODEL,
                    m.id,
                    desired=m,
                    live=lm,
                    changes=[*changes, Change("owner", theirs, self.desired.owner)] if theirs else changes,
                    reuse_version=reuse,
                    reason=f"managed by {theirs}: take ownership"
                    if theirs
                    else "in the app but not marked as managed: take ownership",
                )
            elif changes:
                self._add(Op.UPDATE, Kind.MODEL, m.id, desired=m, live=lm, changes=changes, reuse_version=reuse)
            if match:
                self.pin_target[m.id] = match[0]
            else:
                self.pin_target[m.id] = new_pin(m.id)
                if trainable:
                    self._note_failed_training(m, versions)
                compared = modeltypes.as_compared(m.type, lm.config, m.config)
                cfg = diff_dicts(compared, m.config, "config")
                why = train_note or "model versions are immutable: configuration changed"
                if not cfg:  # the configuration is the same: no version with it can be used (a retrain)
                    cfg = [Change("version", self._unusable_words(m, versions), "a new version with the same configuration")]
                    why = train_note or "no usable version has this configuration"
                self._add(Op.NEW_VERSION, Kind.MODEL, m.id, desired=m, live=lm, changes=cfg, reason=why)
        self._leftovers(Kind.MODEL, live)

    @staticmethod
    def _unusable_words(m: Model, versions: Sequence[ModelVersion]) -> str:
        """Why the newest version with `m`'s configuration cannot be pinned, in words (a retrain's
        change reads "version: v1 did not train (MODEL_TRAINING_NO_DATA) → a new version ...",
        never the same configuration twice)."""
        tried = next((v for v in versions if modeltypes.config_matches(m.type, v.config, m.config)), None)
        if tried is None:
            return "none with this configuration"
        return f"{tried.id} is {training.status_name(tried.status_code)}"

    def _note_failed_training(self, m: Model, versions: Sequence[ModelVersion]) -> None:
        """A trainable model whose newest version with the desired config did not train: say why
        and what the user can do, since the new version this plan makes will meet the same fate
        unless inputs were labelled meanwhile (apply then leaves its workflows for later)."""
        tried = next((v for v in versions if modeltypes.config_matches(m.type, v.config, m.config)), None)
        if tried is None or tried.status_code not in training.TRAINING_FAILED:
            return
        concepts = modeltypes.training_concepts(m.type, m.config)
        label = (
            f"label inputs with its concepts ({_few(concepts)}) before apply, or "
            if concepts and tried.status_code in training.NEEDS_LABELS
            else ""
        )
        self.notes.append(
            Note(
                ResourceKey(Kind.MODEL, m.id),
                f"model/{m.id} did not train last time ({training.status_name(tried.status_code)}): "
                f"{label}apply trains a new version and leaves the workflows that use it, and "
                f"the default-workflow change, for a later apply",
            )
        )

    def _foreign_owner(self, res: Model | Workflow | Dataset | Task) -> str | None:
        """The other owner a managed live resource's marker names, or None (ours, unowned, or
        unmanaged; or this plan checks no owner)."""
        if res.managed and res.owner and self.desired.owner and res.owner != self.desired.owner:
            return res.owner
        return None

    def _leftovers(self, kind: Kind, live: Mapping[str, Model | Workflow | Dataset | Task]) -> None:
        for rid in sorted(live):
            res = live[rid]
            theirs = self._foreign_owner(res)
            if not res.managed:
                self.unmanaged.append(f"{kind.value}/{rid}")
            elif theirs:
                self.notes.append(
                    Note(
                        ResourceKey(kind, rid),
                        f"{kind.value}/{rid} is managed by {theirs}, not by {self.desired.owner}: not deleted",
                    )
                )
            elif res.protect:
                self.notes.append(
                    Note(
                        ResourceKey(kind, rid),
                        f"{kind.value}/{rid} is protected (protect: true) and no longer in the manifest: not deleted",
                    )
                )
            else:
                self._add(Op.DELETE, kind, rid, live=res, reason="managed, and no longer in the manifest")

    def _keep_models_in_use(self) -> None:
        """Do not delete a model a workflow will still use after this plan (an unmanaged or
        protected workflow the manifest does not name): deleting it would break a workflow we
        promised to leave alone, and the API may refuse anyway."""
        deleted = {a.id for a in self.actions if a.op is Op.DELETE and a.kind is Kind.WORKFLOW}
        users: dict[str, list[str]] = {}
        for lw in self.lv.workflows:
            if lw.id in deleted or self.desired.workflow(lw.id) is not None:
                continue
            for n in lw.nodes:
                if not n.model.external:
                    users.setdefault(n.model.id, []).append(lw.id)
        kept = []
        for a in self.actions:
            if a.op is Op.DELETE and a.kind is Kind.MODEL and a.id in users:
                self.notes.append(
                    Note(
                        a.key,
                        f"model/{a.id} is no longer in the manifest but workflow(s) "
                        f"{', '.join(sorted(set(users[a.id])))} still use it: not deleted",
                    )
                )
            else:
                kept.append(a)
        self.actions = kept

    def _keep_the_default_workflow(self) -> None:
        """Never plan deleting the app's default workflow while it stays the default. It is the
        app's base workflow, which every new input runs through (Clarifai/docs
        `create/workflows/base-workflows.md`); what the real API answers to deleting it is
        [UNVERIFIED], the sandbox refuses (22104, "is the app's default workflow"), and a planned
        delete that is refused fails apply the same way on every run. When the manifest names
        another default, `set_default` runs before the deletes; when it names none (it leaves the
        default alone), the delete is dropped with a note saying how to delete it."""
        default = self.live.app.default_workflow if self.live else None
        if not default or self.desired.app.default_workflow:
            return
        kept = []
        for a in self.actions:
            if a.op is Op.DELETE and a.kind is Kind.WORKFLOW and a.id == default:
                self.notes.append(
                    Note(
                        a.key,
                        f"workflow/{a.id} is no longer in the manifest but it is the app's default workflow: "
                        "not deleted; to delete it, name another workflow as the app's default_workflow "
                        "in the manifest",
                    )
                )
            else:
                kept.append(a)
        self.actions = kept

    # --- workflows ----------------------------------------------------------------------------
    def _workflows(self) -> None:
        live = {w.id: w for w in self.lv.workflows}
        for w in self.desired.workflows:
            lw = live.pop(w.id, None)
            pins, pin_changes, why, waits = self._pins(w, lw)  # a _Pins
            words = self._version_changes(w, pin_changes)
            order = _change_order(w, lw)
            if lw is None:
                changes = sorted(created_fields(w) + pin_changes, key=order)
                self._add(Op.CREATE, Kind.WORKFLOW, w.id, desired=w, changes=changes, pins=pins, reason=waits)
                continue
            structural = diff_resources(lw, w)
            theirs = self._foreign_owner(lw)
            if theirs:
                structural.append(Change("owner", theirs, self.desired.owner))
            changes = sorted(structural + pin_changes, key=order)
            if not lw.managed:
                op, why = Op.ADOPT, "; ".join(filter(None, ["in the app but not marked as managed: take ownership", why]))
            elif theirs:
                op, why = Op.ADOPT, "; ".join(filter(None, [f"managed by {theirs}: take ownership", why]))
            elif structural:
                op = Op.UPDATE
            elif pin_changes:
                op = Op.REPOINT
            else:
                continue
            self._add(op, Kind.WORKFLOW, w.id, desired=w, live=lw, changes=changes, pins=pins, reason=why, version_changes=words)
        self._leftovers(Kind.WORKFLOW, live)

    def _version_changes(self, w: Workflow, pin_changes: list[Change]) -> tuple[tuple[str, tuple[Change, ...]], ...]:
        """For each pin change between two existing live versions of one model, how the second
        version's configuration differs from the first's (paths relative to the config)."""
        out = []
        for c in pin_changes:
            model_id = next((n.model.id for n in w.nodes if f"nodes.{n.id}.model.version" == c.path), None)
            lm = self.lv.model(model_id) if model_id else None
            if lm is None or not isinstance(c.before, str) or not isinstance(c.after, str) or is_new_pin(c.after):
                continue
            configs = {v.id: v.config for v in model_versions(lm)}
            if c.before in configs and c.after in configs:
                words = tuple(diff_dicts(configs[c.before], configs[c.after]))
                if words:
                    out.append((c.path, words))
        return tuple(out)

    def _pins(self, w: Workflow, lw: Workflow | None) -> _Pins:
        """Pins for every local-model node of `w`, the pin changes against `lw`, why they change,
        and which of them wait for training."""
        live_nodes = {n.id: n for n in lw.nodes} if lw else {}
        pins: list[tuple[str, str]] = []
        changes: list[Change] = []
        why: list[str] = []
        waits: list[str] = []
        for n in w.nodes:
            if n.model.external:
                continue
            mid = n.model.id
            if mid not in self.pin_target:
                raise PlanError(f"workflow {w.id}: node {n.id} uses model {mid}, which is not in the manifest")
            ln = live_nodes.get(n.id)
            old = ln.model.version if ln and not ln.model.external and ln.model.id == mid else None
            pin = old if old and old in self.matching[mid] else self.pin_target[mid]
            pins.append((n.id, pin))
            if pin != old:
                changes.append(Change(f"nodes.{n.id}.model.version", old, pin))
                m = self.desired.model(mid)
                if is_new_pin(pin):
                    trains = m is not None and modeltypes.canonical_type(m.type) in modeltypes.TRAINABLE_TYPES
                    reason = f"{mid} gets a new version" + (" (apply waits for training)" if trains else "")
                    if trains and f"waits for {mid} to train" not in waits:
                        waits.append(f"waits for {mid} to train")
                else:
                    reason = f"existing version {pin} of {mid} matches the manifest (reused)"
                if reason not in why:
                    why.append(reason)
        return _Pins(tuple(pins), changes, "; ".join(why), "; ".join(waits))


class _Pins(NamedTuple):
    """A workflow's pins (`_Planner._pins`)."""

    #: (node id, version id | "new:<model id>") for every node on a local model
    pins: tuple[tuple[str, str], ...]
    #: the pin changes against the live workflow (``nodes.NODE.model.version``)
    changes: list[Change]
    #: why the pins change, in words ("; "-joined)
    why: str
    #: which of the pinned models the workflow waits on to train ("; "-joined)
    waits: str


def _change_order(w: Workflow, lw: Workflow | None) -> Any:
    """Sort key for a workflow's changes: workflow fields first, then node by node in graph order
    (desired nodes, then removed ones), each node's own changes in a fixed field order."""
    nodes = [n.id for n in w.nodes] + [n.id for n in (lw.nodes if lw else ()) if w and n.id not in {x.id for x in w.nodes}]
    node_pos = {nid: i for i, nid in enumerate(nodes)}
    top = {"description": 0, "metadata": 1, "protect": 2, "owner": 3}
    sub = ["model.id", "model.user_id", "model.app_id", "model.version", "inputs", "suppress_output"]

    def key(c: Change) -> tuple[int, int, int, str]:
        head, _, rest = c.path.partition(".")
        if head != "nodes":
            return 0, top.get(head, 9), 0, c.path
        nid = next((n for n in sorted(node_pos, key=len, reverse=True) if rest == n or rest.startswith(n + ".")), rest)
        field = rest[len(nid) + 1 :]
        return 1, node_pos.get(nid, len(nodes)), sub.index(field) if field in sub else len(sub), c.path

    return key


# --- targets ----------------------------------------------------------------------------------
