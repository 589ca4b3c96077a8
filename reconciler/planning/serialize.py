"""State and Plan <-> plain JSON-able dicts (pure; no I/O).

- `state_to_dict(state)` / `state_from_dict(d)`: lossless, including the bookkeeping fields that
  do not take part in equality (`managed`, `version_id`, `versions`, `server_id`, `user_id`,
  `source`). Used for golden test cases (live states) and saved plans.
- `plan_to_file_dict(plan)` / `plan_from_file_dict(d)`: the `reconciler plan --out FILE` format.
  It holds the desired state, the live fingerprint, the app/user, the targets and the planned
  actions (with their resources). `apply PLANFILE` checks the fingerprint against the live app,
  re-plans from the stored desired state, and can verify it gets the same actions.
  Format 2 adds the `endpoint` the plan was made against and `fingerprint`, which binds the live
  fingerprint to the endpoint, user and app the plan writes to (`bound_fingerprint`). Format 3
  adds `live`, the live state the plan was made from, so that a saved plan's actions, their
  configuration words and its notes can be derived again without connecting
  (`planfile.load_saved_plan` refuses a file whose stored ones differ).
  `plan_from_file_dict` checks the file hangs together: every field has its type, the desired
  app and every app action are the plan's `app_id` and the desired user its `user_id`, and the
  stored binding matches the file's own endpoint, user, app and live fingerprint.

Malformed input raises PlanError (one line), never a KeyError traceback.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from enum import Enum
from typing import Any, TypeVar

from reconciler.core.errors import PlanError
from reconciler.core.state import (
    App,
    AutoAnnotation,
    Collaborator,
    Concept,
    ConceptRef,
    ConceptRelation,
    Dataset,
    DatasetVersion,
    Kind,
    Model,
    ModelRef,
    ModelVersion,
    Node,
    Resource,
    State,
    Task,
    ThresholdRange,
    Workflow,
)
from reconciler.core.status_codes import BY_NAME
from reconciler.planning.actions import Action, Note, Op, Plan
from reconciler.planning.diff import ABSENT, Change

R = TypeVar("R", App, Concept, ConceptRelation, Model, Workflow, Collaborator, Dataset, Task)

STATE_FORMAT = 1
#: 2: `endpoint` and `fingerprint` (bound to endpoint, user and app) were added; a format-1 file
#: cannot say where it was made, so it is refused rather than applied anywhere. 3: `live` was
#: added; a format-2 file's notes and configuration words cannot be checked, so it is refused.
PLAN_FILE_FORMAT = 3
#: A saved plan nested deeper than this is not one we wrote (the manifest loader has the same cap).
MAX_PLAN_DEPTH = 64
PLAN_FILE_KIND = "reconciler-plan"  # what `planfile.read_plan_file` looks for


# --- State ------------------------------------------------------------------------------------


def _app(a: App) -> dict[str, Any]:
    out = {"id": a.id, "description": a.description, "default_workflow": a.default_workflow, "metadata": a.metadata}
    for k in ("reindex", "input_count"):  # only when set: plans without them read as before
        if getattr(a, k) is not None:
            out[k] = getattr(a, k)
    return out


def _concept_ref(r: ConceptRef) -> dict[str, Any]:
    return {"id": r.id, "user_id": r.user_id, "app_id": r.app_id}


def _model_ref(r: ModelRef) -> dict[str, Any]:
    return {"id": r.id, "user_id": r.user_id, "app_id": r.app_id, "version": r.version}


def resource_to_dict(res: Resource) -> dict[str, Any]:
    if isinstance(res, App):
        return _app(res)
    if isinstance(res, Concept):
        return {"id": res.id, "name": res.name, "description": res.description}
    if isinstance(res, ConceptRelation):
        return {
            "subject": res.subject,
            "predicate": res.predicate,
            "object": _concept_ref(res.object),
            "knowledge_graph_id": res.knowledge_graph_id,
            "server_id": res.server_id,
        }
    if isinstance(res, Model):
        return _with_owner(
            res.owner,
            {
                "id": res.id,
                "type": res.type,
                "description": res.description,
                "metadata": res.metadata,
                "protect": res.protect,
                "config": res.config,
                "managed": res.managed,
                "version_id": res.version_id,
                "versions": [
                    {"id": v.id, "config": v.config, "status_code": v.status_code, "created_at": v.created_at}
                    for v in res.versions
                ],
            },
        )
    if isinstance(res, Workflow):
        return _with_owner(
            res.owner,
            {
                "id": res.id,
                "description": res.description,
                "metadata": res.metadata,
                "protect": res.protect,
                "managed": res.managed,
                "nodes": [
                    {"id": n.id, "model": _model_ref(n.model), "inputs": list(n.inputs), "suppress_output": n.suppress_output}
                    for n in res.nodes
                ],
            },
        )
    if isinstance(res, Collaborator):
        return {
            "user_id": res.user_id,
            "scopes": list(res.scopes) if res.scopes is not None else None,
            "server_id": res.server_id,
        }
    if isinstance(res, Dataset):
        return _with_owner(
            res.owner,
            {
                "id": res.id,
                "description": res.description,
                "metadata": res.metadata,
                "protect": res.protect,
                "version": res.version,
                "managed": res.managed,
                "versions": [
                    {"id": v.id, "spec": v.spec, "created_at": v.created_at, "status_code": v.status_code} for v in res.versions
                ],
            },
        )
    if isinstance(res, Task):
        return _task(res)
    raise TypeError(f"not a resource: {res!r}")


def _task(t: Task) -> dict[str, Any]:
    auto = t.auto_annotation
    return _with_owner(
        t.owner,
        {
            "id": t.id,
            "name": t.name,
            "type": t.type,
            "description": t.description,
            "concepts": list(t.concepts),
            "input_source": t.input_source,
            "input_source_id": t.input_source_id,
            "worker_strategy": t.worker_strategy,
            "workers": list(t.workers),
            "partition": t.partition,
            "review_strategy": t.review_strategy,
            "reviewers": list(t.reviewers),
            "review_params": t.review_params,
            "priority": t.priority,
            "sample_ms": t.sample_ms,
            "metadata": t.metadata,
            "protect": t.protect,
            "auto_annotation": None
            if auto is None
            else {
                "model": _model_ref(auto.model) if auto.model is not None else None,
                "workflow": auto.workflow,
                "ranges": [dataclasses.asdict(r) for r in auto.ranges],
            },
            "managed": t.managed,
            "server_id": t.server_id,
        },
    )


def _task_from(d: dict[str, Any]) -> Task:
    auto = d.get("auto_annotation")
    return Task(
        id=d["id"],
        name=d.get("name", ""),
        type=d.get("type", "CONCEPTS_CLASSIFICATION"),
        description=d.get("description", ""),
        concepts=tuple(d.get("concepts") or ()),
        input_source=d.get("input_source", "ALL_INPUTS"),
        input_source_id=d.get("input_source_id", ""),
        worker_strategy=d.get("worker_strategy", "DYNAMIC"),
        workers=tuple(d.get("workers") or ()),
        partition=dict(d.get("partition") or {}),
        review_strategy=d.get("review_strategy", "NONE"),
        reviewers=tuple(d.get("reviewers") or ()),
        review_params=dict(d.get("review_params") or {}),
        priority=d.get("priority", ""),
        sample_ms=int(d.get("sample_ms", 0)),
        metadata=dict(d.get("metadata") or {}),
        protect=bool(d.get("protect", False)),
        auto_annotation=None
        if auto is None
        else AutoAnnotation(
            model=_model_ref_from(auto["model"]) if auto.get("model") is not None else None,
            workflow=auto.get("workflow"),
            ranges=tuple(ThresholdRange(**r) for r in auto.get("ranges") or ()),
        ),
        managed=bool(d.get("managed", True)),
        owner=_opt(d.get("owner"), str),
        server_id=d.get("server_id"),
    )


def _with_owner(owner: str | None, d: dict[str, Any]) -> dict[str, Any]:
    """`d` with the resource's `owner`, written only when there is one (files without it read
    back as None)."""
    return {**d, "owner": owner} if owner else d


def _opt(value: Any, typ: type) -> Any:
    """An optional field of a saved plan: None, or a value of `typ` (else the plan is malformed)."""
    if value is None or (isinstance(value, typ) and (typ is bool or not isinstance(value, bool))):
        return value
    raise TypeError(f"expected {typ.__name__} or null, got {value!r}")


def resource_from_dict(kind: Kind, d: dict[str, Any]) -> Resource:
    try:
        if kind is Kind.APP:
            return App(
                id=d["id"],
                description=d.get("description", ""),
                default_workflow=d.get("default_workflow"),
                metadata=dict(d.get("metadata") or {}),
                reindex=_opt(d.get("reindex"), bool),
                input_count=_opt(d.get("input_count"), int),
            )
        if kind is Kind.CONCEPT:
            return Concept(id=d["id"], name=d.get("name", ""), description=d.get("description", ""))
        if kind is Kind.RELATION:
            o = d["object"]
            return ConceptRelation(
                subject=d["subject"],
                predicate=d["predicate"],
                object=ConceptRef(o["id"], o.get("user_id"), o.get("app_id")),
                knowledge_graph_id=d.get("knowledge_graph_id", ""),
                server_id=d.get("server_id"),
            )
        if kind is Kind.MODEL:
            return Model(
                id=d["id"],
                type=d["type"],
                description=d.get("description", ""),
                metadata=dict(d.get("metadata") or {}),
                protect=bool(d.get("protect", False)),
                config=dict(d.get("config") or {}),
                managed=bool(d.get("managed", True)),
                owner=_opt(d.get("owner"), str),
                version_id=d.get("version_id"),
                versions=tuple(
                    ModelVersion(
                        id=v["id"],
                        config=dict(v.get("config") or {}),
                        status_code=int(v.get("status_code", BY_NAME["MODEL_TRAINED"])),
                        created_at=v.get("created_at", ""),
                    )
                    for v in d.get("versions") or ()
                ),
            )
        if kind is Kind.WORKFLOW:
            return Workflow(
                id=d["id"],
                description=d.get("description", ""),
                metadata=dict(d.get("metadata") or {}),
                protect=bool(d.get("protect", False)),
                managed=bool(d.get("managed", True)),
                owner=_opt(d.get("owner"), str),
                nodes=tuple(
                    Node(
                        id=n["id"],
                        model=_model_ref_from(n["model"]),
                        inputs=tuple(n.get("inputs") or ()),
                        suppress_output=bool(n.get("suppress_output", False)),
                    )
                    for n in d.get("nodes") or ()
                ),
            )
        if kind is Kind.COLLABORATOR:
            scopes = d.get("scopes")
            return Collaborator(
                user_id=d["user_id"], scopes=tuple(scopes) if scopes is not None else None, server_id=d.get("server_id")
            )
        if kind is Kind.DATASET:
            version = d.get("version")
            return Dataset(
                id=d["id"],
                description=d.get("description", ""),
                metadata=dict(d.get("metadata") or {}),
                protect=bool(d.get("protect", False)),
                version=dict(version) if version is not None else None,
                managed=bool(d.get("managed", True)),
                owner=_opt(d.get("owner"), str),
                versions=tuple(
                    DatasetVersion(
                        id=v["id"],
                        spec=dict(v.get("spec") or {}),
                        created_at=v.get("created_at", ""),
                        status_code=int(v.get("status_code", 0)),
                    )
                    for v in d.get("versions") or ()
                ),
            )
        if kind is Kind.TASK:
            return _task_from(d)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise PlanError(f"malformed {kind.value} in saved state: {err!r}") from None
    raise TypeError(f"unknown kind {kind!r}")


def _model_ref_from(d: dict[str, Any]) -> ModelRef:
    return ModelRef(id=d["id"], user_id=d.get("user_id"), app_id=d.get("app_id"), version=d.get("version"))


def state_to_dict(state: State) -> dict[str, Any]:
    out = _with_owner(
        state.owner,
        {
            "format_version": STATE_FORMAT,
            "user_id": state.user_id,
            "source": state.source,
            "app": _app(state.app),
            "concepts": [resource_to_dict(c) for c in state.concepts],
            "relations": [resource_to_dict(r) for r in state.relations],
            "models": [resource_to_dict(m) for m in state.models],
            "workflows": [resource_to_dict(w) for w in state.workflows],
        },
    )
    # the review side only when there is one: a state without it reads and writes as before
    review = {
        "collaborators": [resource_to_dict(c) for c in state.collaborators],
        "datasets": [resource_to_dict(d) for d in state.datasets],
        "tasks": [resource_to_dict(t) for t in state.tasks],
        "sections": sorted(k.value for k in state.sections),
    }
    return {**out, **{k: v for k, v in review.items() if v}}


def state_from_dict(d: dict[str, Any]) -> State:
    if not isinstance(d, dict) or "app" not in d:
        raise PlanError("malformed saved state: expected an object with an 'app'")
    if d.get("format_version", STATE_FORMAT) != STATE_FORMAT:
        raise PlanError(
            f"saved state has format_version {d.get('format_version')}; this version of reconciler reads {STATE_FORMAT}"
        )
    return State(
        app=_resource_of(App, Kind.APP, d["app"]),
        concepts=tuple(_resource_of(Concept, Kind.CONCEPT, c) for c in d.get("concepts") or ()),
        relations=tuple(_resource_of(ConceptRelation, Kind.RELATION, r) for r in d.get("relations") or ()),
        models=tuple(_resource_of(Model, Kind.MODEL, m) for m in d.get("models") or ()),
        workflows=tuple(_resource_of(Workflow, Kind.WORKFLOW, w) for w in d.get("workflows") or ()),
        collaborators=tuple(_resource_of(Collaborator, Kind.COLLABORATOR, c) for c in d.get("collaborators") or ()),
        datasets=tuple(_resource_of(Dataset, Kind.DATASET, x) for x in d.get("datasets") or ()),
        tasks=tuple(_resource_of(Task, Kind.TASK, t) for t in d.get("tasks") or ()),
        sections=_sections(d.get("sections") or ()),
        user_id=d.get("user_id"),
        source=d.get("source", ""),
        owner=_opt(d.get("owner"), str),
    )


def _sections(names: Any) -> frozenset[Kind]:
    try:
        return frozenset(Kind(n) for n in names)
    except (TypeError, ValueError) as err:
        raise PlanError(f"malformed saved state: sections: {err}") from None


def _resource_of(cls: type[R], kind: Kind, d: dict[str, Any]) -> R:
    """`resource_from_dict(kind, d)`, narrowed to the class that kind decodes to."""
    res = resource_from_dict(kind, d)
    if not isinstance(res, cls):  # resource_from_dict decodes each kind to its own class
        raise PlanError(f"malformed saved state: a {kind.value} decoded as {type(res).__name__}")
    return res


# --- Plan -------------------------------------------------------------------------------------


def json_value(value: Any) -> Any:
    """A Change value as JSON: ABSENT (not set) is null; Change maps null back to ABSENT."""
    return None if value is ABSENT else value


def change_to_dict(c: Change) -> dict[str, Any]:
    return {"path": c.path, "before": json_value(c.before), "after": json_value(c.after)}


def action_to_dict(a: Action) -> dict[str, Any]:
    return {
        "op": a.op.value,
        "kind": a.kind.value,
        "id": a.id,
        "changes": [change_to_dict(c) for c in a.changes],
        "pins": [{"node": n, "version": v} for n, v in a.pins],
        "reuse_version": a.reuse_version,
        "reason": a.reason,
        "version_changes": [{"path": path, "changes": [change_to_dict(c) for c in words]} for path, words in a.version_changes],
        "desired": resource_to_dict(a.desired) if a.desired is not None else None,
        "live": resource_to_dict(a.live) if a.live is not None else None,
    }


def action_from_dict(d: dict[str, Any]) -> Action:
    try:
        if d["op"] not in {op.value for op in Op}:
            raise PlanError(f"unknown action op {d['op']!r}")
        kind = Kind(d["kind"])
        return Action(
            op=Op(d["op"]),
            kind=kind,
            id=d["id"],
            changes=tuple(Change(c["path"], c.get("before"), c.get("after")) for c in d.get("changes") or ()),
            desired=resource_from_dict(kind, d["desired"]) if d.get("desired") is not None else None,
            live=resource_from_dict(kind, d["live"]) if d.get("live") is not None else None,
            pins=tuple((p["node"], p["version"]) for p in d.get("pins") or ()),
            reuse_version=d.get("reuse_version"),
            reason=d.get("reason", ""),
            version_changes=tuple(
                (v["path"], tuple(Change(c["path"], c.get("before"), c.get("after")) for c in v["changes"]))
                for v in d.get("version_changes") or ()
            ),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise PlanError(f"malformed action in saved plan: {err!r}") from None


def bound_fingerprint(endpoint: str, user_id: str | None, app_id: str, live_fingerprint: str) -> str:
    """The live fingerprint bound to where the plan writes: equal only for the same endpoint,
    user, app and live state."""
    blob = json.dumps([endpoint, user_id, app_id, live_fingerprint], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def plan_to_file_dict(plan: Plan) -> dict[str, Any]:
    return {
        "format_version": PLAN_FILE_FORMAT,
        "kind": PLAN_FILE_KIND,
        "endpoint": plan.endpoint,
        "app_id": plan.app_id,
        "user_id": plan.user_id,
        "live_fingerprint": plan.live_fingerprint,
        "fingerprint": bound_fingerprint(plan.endpoint, plan.user_id, plan.app_id, plan.live_fingerprint),
        "targets": list(plan.targets),
        "desired": state_to_dict(plan.desired),
        "live": state_to_dict(plan.live) if plan.live is not None else None,
        "actions": [action_to_dict(a) for a in plan.actions],
        # notes are saved as their text: a re-plan makes them again, with their resources
        "notes": [n.text for n in plan.notes],
    }


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (a hostile file may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            deepest = max(deepest, d)
            if d <= MAX_PLAN_DEPTH:
                stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _type_problem(value: Any, hint: Any, where: str) -> str | None:
    """Where `value` does not have the type `hint` (a dataclass field's annotation), or None."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if origin in (typing.Union, types.UnionType):
        problems = [_type_problem(value, h, where) for h in args]
        return None if any(p is None for p in problems) else next(p for p in problems if p)
    if hint is type(None):
        return None if value is None else f"{where} should be null"
    if origin is tuple:
        if not isinstance(value, tuple):
            return f"{where} should be a list"
        items = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(items) != len(value):
            return f"{where} should have {len(items)} items"
        return next((p for i, (v, h) in enumerate(zip(value, items)) if (p := _type_problem(v, h, f"{where}[{i}]"))), None)
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            return f"{where} should be an object"
        return None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, hint):
            return f"{where} should be a {hint.__name__}"
        hints = typing.get_type_hints(hint)
        return next(
            (
                p
                for f in dataclasses.fields(hint)
                if (p := _type_problem(getattr(value, f.name), hints[f.name], f"{where}.{f.name}"))
            ),
            None,
        )
    if isinstance(hint, type) and issubclass(hint, Enum):
        return None if isinstance(value, hint) else f"{where} is not a known {hint.__name__.lower()}"
    if isinstance(hint, type) and issubclass(hint, str):  # a Note: what a file holds is its text
        return None if isinstance(value, str) else f"{where} should be a str"
    if hint is int or hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{where} should be a number"
    if isinstance(hint, type):
        return None if isinstance(value, hint) else f"{where} should be a {hint.__name__}"
    return None


def plan_from_file_dict(d: dict[str, Any]) -> Plan:
    """A saved plan, checked to hang together (module docstring); PlanError says what is wrong."""
    if not isinstance(d, dict) or d.get("kind") != PLAN_FILE_KIND:
        raise PlanError("not a saved reconciler plan (expected a JSON file written by `reconciler plan --out`)")
    if d.get("format_version") != PLAN_FILE_FORMAT:
        raise PlanError(
            f"saved plan has format_version {d.get('format_version')!r}; this version of "
            f"reconciler reads {PLAN_FILE_FORMAT}; make the plan again"
        )
    if _depth(d) > MAX_PLAN_DEPTH:
        raise PlanError(f"nested deeper than {MAX_PLAN_DEPTH} levels")
    for key, want in (
        ("endpoint", str),
        ("app_id", str),
        ("user_id", (str, type(None))),
        ("live_fingerprint", str),
        ("fingerprint", str),
        ("targets", list),
        ("desired", dict),
        ("live", (dict, type(None))),
        ("actions", list),
        ("notes", list),
    ):
        if key not in d:
            raise PlanError(f"missing {key!r}")
        if not isinstance(d[key], want):
            raise PlanError(f"{key!r} has the wrong type ({type(d[key]).__name__})")
    if not all(isinstance(a, dict) for a in d["actions"]):
        raise PlanError("'actions' should be a list of objects")
    try:
        plan = Plan(
            app_id=d["app_id"],
            user_id=d["user_id"],
            actions=tuple(action_from_dict(a) for a in d["actions"]),
            notes=tuple(Note(None, n) if isinstance(n, str) else n for n in d["notes"]),
            live_fingerprint=d["live_fingerprint"],
            desired=state_from_dict(d["desired"]),
            targets=tuple(d["targets"]),
            endpoint=d["endpoint"],
            live=state_from_dict(d["live"]) if d["live"] is not None else None,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise PlanError(f"malformed saved plan: {err!r}") from None
    problem = _type_problem(plan, Plan, "plan")
    if problem:
        raise PlanError(problem.removeprefix("plan."))
    _check_one_app(plan)
    if d["fingerprint"] != bound_fingerprint(plan.endpoint, plan.user_id, plan.app_id, plan.live_fingerprint):
        raise PlanError("its fingerprint does not match its endpoint, user, app and live fingerprint (was it edited?)")
    return plan


def _check_one_app(plan: Plan) -> None:
    """Everything the plan writes is in its own app: the app it re-plans from (the desired state)
    and every app-level action are `plan.app_id`, and the desired user is the plan's user."""
    if plan.desired.app.id != plan.app_id:
        raise PlanError(f"its desired app is {plan.desired.app.id!r} but the plan is for app {plan.app_id!r}")
    if plan.desired.user_id not in (None, plan.user_id):
        raise PlanError(f"its desired user is {plan.desired.user_id!r} but the plan is for user {plan.user_id!r}")
    if plan.live is not None and plan.live.app.id != plan.app_id:
        raise PlanError(f"its live app is {plan.live.app.id!r} but the plan is for app {plan.app_id!r}")
    for a in plan.actions:
        foreign = [r.id for r in (a.desired, a.live) if isinstance(r, App) and r.id != plan.app_id]
        if (a.kind is Kind.APP and a.id != plan.app_id) or foreign:
            raise PlanError(f"action {a.op} {a.address} writes to another app than {plan.app_id!r}")
