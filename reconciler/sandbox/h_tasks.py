"""Handlers for collaborators, labelling tasks and their assignments (the review side of an app).

Semantics (README "Review tasks", "The local sandbox"), from clarifai-grpc's service.proto
(Clarifai/clarifai-nodejs-grpc proto/clarifai/api/service.proto) where it says, the sandbox's own
reading where it does not ([unverified]):
- Collaborators: PostCollaborators adds users that exist (any user id, or with `Sandbox(users=...)`
  those and the users of its keys -- Clarifai takes only registered users, docs
  clarifai-basics/applications/collaboration.md); to act as one, a user needs a key
  (`Sandbox(keys=...)`, `add_key`, `sandbox serve --key KEY=USER`); the owner cannot be one; one collaborator per
  user (a second is DATABASE_DUPLICATE_KEY). Each gets its own id, which PatchCollaborators
  ("overwrite" only, as the proto says) and DeleteCollaborators take. A collaborator may read the
  app and label and review its tasks (`Ctx.check_user`); only the owner changes it.
- Tasks: ids are made by the server; PostTasks refuses concepts the app does not have, workers and
  reviewers who are neither the owner nor collaborators, a DATASET source that does not exist and
  an auto-annotation model or workflow that does not exist. PatchTasks ("overwrite") replaces the
  whole task in place, keeping its id (docs api-guide/annotate/tasks.md: "we only support updating
  a task by providing all information at once"). DeleteTasks takes `ids`. Enums are stored as
  integers, floats as float32.
- Task assignments (PutTaskAssignments, the proto's PutTaskAssignmentsRequestAction): LABEL_START
  gives a worker up to 10 inputs of the task's input source (PENDING); LABEL_SUBMIT marks them
  SUCCESS / AWAITING_REVIEW / AWAITING_CONSENSUS_REVIEW by the review strategy and moves the
  worker's annotations of those inputs in the task to SUCCESS (NONE) or AWAITING_REVIEW; REVIEW_START
  gives a reviewer up to 10 assignments awaiting review; REVIEW_APPROVE / REVIEW_REQUEST_CHANGES /
  REVIEW_REJECT (by assignment ids, or every awaiting assignment of the given workers) set the
  assignments to SUCCESS / PENDING / REJECTED and the annotations of the same input in the task, by
  the same worker, to ANNOTATION_SUCCESS / ANNOTATION_PENDING / ANNOTATION_REVIEW_DENIED, in place.
  An annotation written into a task with a review status (a workflow's annotation-writer with a
  `task_id`, PostAnnotations with one) puts its input in the task awaiting review
  (`assign_for_review`) [unverified: the real API's bookkeeping is not published]. Reviewing is for
  the task's reviewers and the owner.
"""

from __future__ import annotations

import copy
from typing import Any

from reconciler.api.codecs import (
    INPUT_SOURCES,
    PARTITION_TYPES,
    PRIORITIES,
    REVIEW_STRATEGIES,
    TASK_TYPES,
    WORKER_STRATEGIES,
)
from reconciler.sandbox.ctx import Ctx, public
from reconciler.sandbox.h_models import check_fields
from reconciler.sandbox.wire import (
    CONCEPTS_INVALID_REQUEST,
    CONN_DOES_NOT_EXIST,
    CONN_INSUFFICIENT_SCOPES,
    CONN_INVALID_REQUEST,
    DATABASE_DUPLICATE_KEY,
    MODEL_DOES_NOT_EXIST,
    STATUS_NAMES,
    WORKFLOW_DOES_NOT_EXIST,
    Fail,
    action_of,
    enum_int,
    f32,
    get,
    new_id,
    objects,
    page_slice,
    paging,
    qlist,
    rfc3339,
    want,
)

A_SUCCESS, A_PENDING, A_AWAITING, A_AWAITING_CONSENSUS, A_REJECTED = 54200, 54201, 54202, 54203, 54204
TASK_IN_PROGRESS = 54001
ANN = {
    k: STATUS_NAMES["ANNOTATION_" + k]
    for k in ("SUCCESS", "PENDING", "AWAITING_REVIEW", "REVIEW_DENIED", "AWAITING_CONSENSUS_REVIEW")
}
REVIEWING = frozenset({ANN["PENDING"], ANN["AWAITING_REVIEW"], ANN["AWAITING_CONSENSUS_REVIEW"]})
ACTIONS = {
    "PUT_TASK_ASSIGNMENTS_REQUEST_ACTION_NOT_SET": 0,
    "LABEL_START": 1,
    "LABEL_SUBMIT": 2,
    "REVIEW_START": 10,
    "REVIEW_APPROVE": 11,
    "REVIEW_REQUEST_CHANGES": 12,
    "REVIEW_REJECT": 13,
}
#: review action -> (assignment status, annotation status) (the proto's action comments)
REVIEWS = {
    11: (A_SUCCESS, ANN["SUCCESS"], "review_approve_config"),
    12: (A_PENDING, ANN["PENDING"], "review_request_changes_config"),
    13: (A_REJECTED, ANN["REVIEW_DENIED"], "review_reject_config"),
}
BATCH = 10  # "10 inputs are assigned to the labeler" (proto, LABEL_START / REVIEW_START)


# --- collaborators ---------------------------------------------------------------------------------


def list_collaborators(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app()
    docs = ctx.tx.list(ctx.user_id, ctx.app_id, "collaborator", page=paging(ctx.query))
    return {"collaborators": [public(d) for d in docs], "app_owner": {"id": app.get("user_id") or ctx.user_id}}


def _exists(ctx: Ctx, user_id: str) -> bool:
    known = ctx.extra.get("users")  # None: every user id exists (`Sandbox.users`)
    return known is None or user_id in known


def post_collaborators(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app(write=True)
    existing = {(d.get("user") or {}).get("id") for d in ctx.tx.list(ctx.user_id, ctx.app_id, "collaborator")}
    out = []
    for item in objects(ctx.body, "collaborators"):
        check_fields(item, "Collaborator", "collaborator")
        uid = want(get(item, "user", dict, {}).get("id") or "", str, "collaborator.user.id")
        if not uid:
            raise Fail(CONN_INVALID_REQUEST, "collaborator.user.id is required")
        if uid == app.get("user_id"):
            raise Fail(CONN_INVALID_REQUEST, f"user {uid} owns the app; the owner cannot be a collaborator")
        if not _exists(ctx, uid):
            raise Fail(CONN_DOES_NOT_EXIST, f"user {uid!r} does not exist")
        if uid in existing:
            raise Fail(DATABASE_DUPLICATE_KEY, f"user {uid!r} is already a collaborator of the app")
        existing.add(uid)
        ts, cid = rfc3339(ctx.now), new_id()
        doc: dict[str, Any] = {
            "id": cid,
            "user": {"id": uid},
            "app": {"id": ctx.app_id, "user_id": ctx.user_id},
            "scopes": [want(s, str, "scopes[]") for s in get(item, "scopes", list, [])],
            "endpoints": [want(s, str, "endpoints[]") for s in get(item, "endpoints", list, [])],
            "created_at": ts,
            "modified_at": ts,
        }
        ctx.tx.insert(ctx.user_id, ctx.app_id, "collaborator", cid, doc)
        out.append(public(doc))
    return {"collaborators": out}


def patch_collaborators(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    action_of(ctx.body, ("overwrite",), CONN_INVALID_REQUEST)
    out = []
    for item in objects(ctx.body, "collaborators"):
        check_fields(item, "Collaborator", "collaborator")
        cid = want(item.get("id") or "", str, "collaborator.id")
        doc = ctx.tx.get(ctx.user_id, ctx.app_id, "collaborator", cid)
        if doc is None:
            raise Fail(CONN_DOES_NOT_EXIST, f"collaborator {cid!r} does not exist")
        doc["scopes"] = [want(s, str, "scopes[]") for s in get(item, "scopes", list, [])]
        doc["endpoints"] = [want(s, str, "endpoints[]") for s in get(item, "endpoints", list, [])]
        doc["modified_at"] = rfc3339(ctx.now)
        ctx.tx.update(ctx.user_id, ctx.app_id, "collaborator", cid, doc)
        out.append(public(doc))
    return {"collaborators": out}


def delete_collaborators(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ids = [want(i, str, "collaborator_ids[]") for i in get(ctx.body, "collaborator_ids", list, [])]
    if not ids:
        raise Fail(CONN_INVALID_REQUEST, "collaborator_ids is required")
    for cid in ids:
        if not ctx.tx.delete(ctx.user_id, ctx.app_id, "collaborator", cid):
            raise Fail(CONN_DOES_NOT_EXIST, f"collaborator {cid!r} does not exist")
    return {}


# --- tasks -----------------------------------------------------------------------------------------


def _allowed_users(ctx: Ctx, app: dict[str, Any]) -> set[str]:
    users = {(d.get("user") or {}).get("id") for d in ctx.tx.list(ctx.user_id, ctx.app_id, "collaborator")}
    return {u for u in users if u} | {app.get("user_id") or ctx.user_id}


def _norm_worker(ctx: Ctx, raw: Any, allowed: set[str]) -> dict[str, Any]:
    w = copy.deepcopy(want(raw, dict, "task.worker")) if raw is not None else {}
    out: dict[str, Any] = {"strategy": enum_int(w.get("strategy", 0), WORKER_STRATEGIES, "task.worker.strategy")}
    workers = []
    for i, entry in enumerate(get(w, "workers", list, [])):
        entry = want(entry, dict, f"task.worker.workers[{i}]")
        if isinstance(entry.get("user"), dict):
            workers.append({"user": {"id": _user(entry["user"].get("id"), allowed, "worker")}})
        elif isinstance(entry.get("model"), dict):
            workers.append({"model": _worker_model(ctx, entry["model"])})
        elif isinstance(entry.get("workflow"), dict):
            wid = want(entry["workflow"].get("id") or "", str, "workflow.id")
            if ctx.tx.get(ctx.user_id, ctx.app_id, "workflow", wid) is None:
                raise Fail(WORKFLOW_DOES_NOT_EXIST, f"workflow {wid!r} does not exist")
            workers.append({"workflow": {"id": wid}})
        else:
            raise Fail(CONN_INVALID_REQUEST, f"task.worker.workers[{i}] names no user, model or workflow")
    for uid in get(w, "user_ids", list, []):  # deprecated form
        workers.append({"user": {"id": _user(uid, allowed, "worker")}})
    out["workers"] = workers
    info = w.get("partitioned_strategy_info")
    if info is not None:
        info = want(info, dict, "task.worker.partitioned_strategy_info")
        part: dict[str, Any] = {"type": enum_int(info.get("type", 0), PARTITION_TYPES, "partitioned_strategy_info.type")}
        if info.get("workers_per_input") is not None:
            part["workers_per_input"] = want(info["workers_per_input"], int, "workers_per_input")
        if info.get("weights") is not None:
            part["weights"] = {str(k): f32(v) for k, v in want(info["weights"], dict, "weights").items()}
        out["partitioned_strategy_info"] = part
    return out


def _user(uid: Any, allowed: set[str], what: str) -> str:
    uid = want(uid or "", str, f"{what} user id")
    if uid not in allowed:
        raise Fail(CONN_INVALID_REQUEST, f"{what} {uid!r} is neither the app owner nor a collaborator")
    return uid


def _worker_model(ctx: Ctx, m: dict[str, Any]) -> dict[str, Any]:
    mid = want(m.get("id") or "", str, "model.id")
    mu, ma = m.get("user_id") or ctx.user_id, m.get("app_id") or ctx.app_id
    if (mu, ma) != (ctx.user_id, ctx.app_id) and not ctx.readable_app(mu, ma):
        raise Fail(MODEL_DOES_NOT_EXIST, f"model {mu}/{ma}/{mid} is not readable")
    if ctx.tx.get(mu, ma, "model", mid) is None:
        raise Fail(MODEL_DOES_NOT_EXIST, f"model {mid!r} does not exist")
    out: dict[str, Any] = {"id": mid, "user_id": mu, "app_id": ma}
    vid = (m.get("model_version") or {}).get("id") if isinstance(m.get("model_version"), dict) else None
    if vid:
        if ctx.tx.get(mu, ma, "version", vid, parent=mid) is None:
            raise Fail(MODEL_DOES_NOT_EXIST, f"model {mid!r} has no version {vid!r}")
        out["model_version"] = {"id": vid}
    return out


def _norm_concepts(ctx: Ctx, item: dict[str, Any]) -> list[dict[str, Any]]:
    entries = get(item, "concepts", list, [])
    if not entries:
        entries = [{"concept": {"id": c}} for c in get(item, "concept_ids", list, [])]
    out = []
    for i, tc in enumerate(entries):
        tc = want(tc, dict, f"task.concepts[{i}]")
        cid = want(get(tc, "concept", dict, {}).get("id") or "", str, "concept.id")
        if ctx.tx.get(ctx.user_id, ctx.app_id, "concept", cid) is None:
            raise Fail(CONCEPTS_INVALID_REQUEST, f"concept {cid!r} does not exist in the app")
        entry: dict[str, Any] = {"concept": {"id": cid}}
        cfg = tc.get("auto_annotation_config")
        if cfg is not None:
            cfg = want(cfg, dict, "auto_annotation_config")
            tr = get(cfg, "threshold_range", dict, {})
            code = enum_int(cfg.get("status_code", 0), STATUS_NAMES, "status_code")
            if not 24150 <= code <= 24159:
                raise Fail(CONN_INVALID_REQUEST, f"status_code {code} is not an annotation status")
            entry["auto_annotation_config"] = {
                "annotation_data_types": int(cfg.get("annotation_data_types") or 0),
                "threshold_range": {
                    "is_lower_inclusive": bool(tr.get("is_lower_inclusive")),
                    "is_upper_inclusive": bool(tr.get("is_upper_inclusive")),
                    "lower": f32(tr.get("lower", 0.0)),
                    "upper": f32(tr.get("upper", 0.0)),
                },
                "status_code": code,
            }
        out.append(entry)
    return out


def _norm_review(raw: Any, allowed: set[str]) -> dict[str, Any]:
    r = want(raw, dict, "task.review") if raw is not None else {}
    out: dict[str, Any] = {"strategy": enum_int(r.get("strategy", 0), REVIEW_STRATEGIES, "review.strategy")}
    users = [{"id": _user(u.get("id") if isinstance(u, dict) else None, allowed, "reviewer")} for u in get(r, "users", list, [])]
    users += [{"id": _user(u, allowed, "reviewer")} for u in get(r, "user_ids", list, [])]
    out["users"] = users
    for key in ("manual_strategy_info", "consensus_strategy_info"):
        if r.get(key) is not None:
            info = want(r[key], dict, f"review.{key}")
            out[key] = {k: (f32(v) if k == "sample_percentage" else int(v)) for k, v in info.items() if v is not None}
    return out


def _norm_task(ctx: Ctx, app: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    check_fields(item, "Task", "task")
    allowed = _allowed_users(ctx, app)
    source = get(item, "input_source", dict, {})
    stype = enum_int(source.get("type", 0), INPUT_SOURCES, "input_source.type")
    sid = want(source.get("id") or "", str, "input_source.id")
    if stype == INPUT_SOURCES["DATASET"] and ctx.tx.get(ctx.user_id, ctx.app_id, "dataset", sid) is None:
        raise Fail(CONN_DOES_NOT_EXIST, f"dataset {sid!r} does not exist")
    doc: dict[str, Any] = {
        "type": enum_int(item.get("type", 0), TASK_TYPES, "task.type"),
        "name": get(item, "name", str, ""),
        "description": get(item, "description", str, ""),
        "worker": _norm_worker(ctx, item.get("worker"), allowed),
        "concepts": _norm_concepts(ctx, item),
        "input_source": {"type": stype, **({"id": sid} if sid else {})},
        "review": _norm_review(item.get("review"), allowed),
        "metadata": get(item, "metadata", dict, {}),
        "app_id": ctx.app_id,
        "user_id": ctx.user_id,
    }
    if item.get("sample_ms"):
        doc["sample_ms"] = want(item["sample_ms"], int, "sample_ms")
    if item.get("priority") is not None:
        doc["priority"] = enum_int(item["priority"], PRIORITIES, "priority")
    if item.get("status") is not None:
        doc["status"] = {"code": enum_int(want(item["status"], dict, "status").get("code", 0), {}, "status.code")}
    return doc


def _task(ctx: Ctx, task_id: str) -> dict[str, Any]:
    doc = ctx.tx.get(ctx.user_id, ctx.app_id, "task", task_id)
    if doc is None:
        raise Fail(CONN_DOES_NOT_EXIST, f"task {task_id!r} does not exist")
    return doc


def post_tasks(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app(write=True)
    out = []
    for item in objects(ctx.body, "tasks"):
        doc = _norm_task(ctx, app, item)
        ts = rfc3339(ctx.now)
        doc = {"id": new_id(), **doc, "created_at": ts, "modified_at": ts}
        doc.setdefault("status", {"code": TASK_IN_PROGRESS})  # "The task was created" (status_code.proto)
        ctx.tx.insert(ctx.user_id, ctx.app_id, "task", doc["id"], doc)
        _auto_annotate(ctx, app, doc)
        out.append(public(doc))
    return {"tasks": out}


def patch_tasks(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app(write=True)
    action_of(ctx.body, ("overwrite",), CONN_INVALID_REQUEST)
    out = []
    for item in objects(ctx.body, "tasks"):
        old = _task(ctx, want(item.get("id") or "", str, "task.id"))
        doc = {"id": old["id"], **_norm_task(ctx, app, item), "created_at": old["created_at"], "modified_at": rfc3339(ctx.now)}
        if old.get("status") is not None:
            doc.setdefault("status", old["status"])  # the work's state is the server's, not the sender's
        ctx.tx.update(ctx.user_id, ctx.app_id, "task", doc["id"], doc)
        _auto_annotate(ctx, app, doc)
        out.append(public(doc))
    return {"tasks": out}


def _auto_annotate(ctx: Ctx, app: dict[str, Any], doc: dict[str, Any]) -> None:
    """A task that auto-annotates labels the inputs of its source now (`h_run.run_task`)."""
    from reconciler.sandbox.h_run import run_task  # h_run writes into tasks: it imports this module

    run_task(ctx, app, doc, ctx.tx.list(ctx.user_id, ctx.app_id, "input"))


def delete_tasks(ctx: Ctx) -> dict[str, Any]:
    ctx.app(write=True)
    ids = [want(i, str, "ids[]") for i in get(ctx.body, "ids", list, [])]
    if not ids:
        raise Fail(CONN_INVALID_REQUEST, "ids is required")
    for tid in ids:
        _task(ctx, tid)
        ctx.tx.delete(ctx.user_id, ctx.app_id, "task", tid)
        ctx.tx.delete_children(ctx.user_id, ctx.app_id, "task_assignment", tid)
    return {}


def get_task(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    return {"task": public(_task(ctx, ctx.params["task_id"]))}


def list_tasks(ctx: Ctx) -> dict[str, Any]:
    ctx.app()
    ids = qlist(ctx.query, "ids")
    if not ids:
        return {"tasks": [public(d) for d in ctx.tx.list(ctx.user_id, ctx.app_id, "task", page=paging(ctx.query))]}
    docs = [d for d in ctx.tx.list(ctx.user_id, ctx.app_id, "task") if d["id"] in ids]
    page, per_page = paging(ctx.query)
    return {"tasks": [public(d) for d in page_slice(docs, page, per_page)]}


# --- task assignments ------------------------------------------------------------------------------


def assign_for_review(ctx: Ctx, task_id: str, input_id: str, user_id: str) -> None:
    """An annotation of `user_id` on `input_id` landed in task `task_id` awaiting review: the input
    waits in the task for a reviewer (one assignment per input and worker). No such task: nothing."""
    if ctx.tx.get(ctx.user_id, ctx.app_id, "task", task_id) is None:
        return
    for a in ctx.tx.list(ctx.user_id, ctx.app_id, "task_assignment", task_id):
        if a["input"]["id"] == input_id and (a.get("worker") or {}).get("user", {}).get("id") == user_id:
            return
    doc = _assignment(ctx, input_id, user_id, A_AWAITING)
    ctx.tx.insert(ctx.user_id, ctx.app_id, "task_assignment", doc["id"], doc, task_id)


def _assignment(ctx: Ctx, input_id: str, user_id: str, code: int) -> dict[str, Any]:
    ts = rfc3339(ctx.now)
    return {
        "id": new_id(),
        "input": {"id": input_id},
        "worker": {"user": {"id": user_id}},
        "status": {"code": code},
        "created_at": ts,
        "modified_at": ts,
    }


def _assignments(ctx: Ctx, task_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(assignment id, doc) of a task's assignments, oldest first."""
    return [(d["id"], d) for d in ctx.tx.list(ctx.user_id, ctx.app_id, "task_assignment", task_id)]


def _out(aid: str, doc: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    out = public(doc)
    inp = ctx.tx.get(ctx.user_id, ctx.app_id, "input", doc["input"]["id"])
    if inp is not None:
        out["input"] = inp
    return out


def _save(ctx: Ctx, task_id: str, aid: str, doc: dict[str, Any]) -> None:
    doc["modified_at"] = rfc3339(ctx.now)
    ctx.tx.update(ctx.user_id, ctx.app_id, "task_assignment", aid, doc, task_id)


def task_input_ids(ctx: Ctx, task: dict[str, Any]) -> list[str]:
    """The ids of the inputs a task's source covers, in the app's order."""
    return _task_inputs(ctx, task)


def _task_inputs(ctx: Ctx, task: dict[str, Any]) -> list[str]:
    source = task.get("input_source") or {}
    stype, sid = source.get("type", 0), source.get("id", "")
    inputs = ctx.tx.list(ctx.user_id, ctx.app_id, "input")
    if stype == INPUT_SOURCES["DATASET"]:
        return [i["id"] for i in inputs if sid in (i.get("dataset_ids") or [])]
    if stype == INPUT_SOURCES["INPUT"]:
        return [i["id"] for i in inputs if i["id"] == sid]
    if stype == INPUT_SOURCES["ALL_INPUTS"]:
        return [i["id"] for i in inputs]
    return []  # saved searches are not run by the sandbox


def _role(ctx: Ctx, app: dict[str, Any], task: dict[str, Any], role: str) -> None:
    owner = app.get("user_id") or ctx.user_id
    if role == "worker":
        people = {(w.get("user") or {}).get("id") for w in (task.get("worker") or {}).get("workers") or []}
    else:
        people = {u.get("id") for u in (task.get("review") or {}).get("users") or []}
    if ctx.key_user != owner and ctx.key_user not in people:
        raise Fail(CONN_INSUFFICIENT_SCOPES, f"user {ctx.key_user} is not a {role} of task {task['id']}")


def _update_annotations(ctx: Ctx, task_id: str, input_id: str, user_id: str, code: int, only: frozenset[int] | None) -> None:
    for ann in ctx.tx.list(ctx.user_id, ctx.app_id, "annotation"):
        if ann.get("task_id") != task_id or ann.get("input_id") != input_id or ann.get("user_id") != user_id:
            continue
        if only is not None and ann["status"]["code"] not in only:
            continue
        ann["status"] = {"code": code}
        ann["modified_at"] = rfc3339(ctx.now)
        ctx.tx.update(ctx.user_id, ctx.app_id, "annotation", ann["id"], ann)


def put_task_assignments(ctx: Ctx) -> dict[str, Any]:
    app = ctx.app(write=True, collaborator=True)
    task = _task(ctx, ctx.params["task_id"])
    tid = task["id"]
    action = enum_int(ctx.body.get("action", 0), ACTIONS, "action")
    if action == 0 and ctx.body.get("input_id"):  # the deprecated form: submit that input
        action = ACTIONS["LABEL_SUBMIT"]
        ctx.body["label_submit_config"] = {
            "task_assignments": [{"id": aid} for aid, a in _assignments(ctx, tid) if a["input"]["id"] == ctx.body["input_id"]]
        }
    rows = _assignments(ctx, tid)
    if action == ACTIONS["LABEL_START"]:
        _role(ctx, app, task, "worker")
        mine = [(aid, a) for aid, a in rows if a["worker"]["user"]["id"] == ctx.key_user and a["status"]["code"] == A_PENDING]
        taken = {a["input"]["id"] for _, a in rows if a["worker"]["user"]["id"] == ctx.key_user}
        for iid in _task_inputs(ctx, task):
            if len(mine) >= BATCH:
                break
            if iid not in taken:
                doc = _assignment(ctx, iid, ctx.key_user, A_PENDING)
                ctx.tx.insert(ctx.user_id, ctx.app_id, "task_assignment", doc["id"], doc, tid)
                mine.append((doc["id"], doc))
        return {"task_assignments": [_out(aid, a, ctx) for aid, a in mine]}
    if action == ACTIONS["LABEL_SUBMIT"]:
        _role(ctx, app, task, "worker")
        strategy = (task.get("review") or {}).get("strategy", 0)
        code = {REVIEW_STRATEGIES["MANUAL"]: A_AWAITING, REVIEW_STRATEGIES["CONSENSUS"]: A_AWAITING_CONSENSUS}.get(
            strategy, A_SUCCESS
        )
        ann = ANN["SUCCESS"] if code == A_SUCCESS else ANN["AWAITING_REVIEW"]
        picked = _picked(ctx, rows, get(ctx.body, "label_submit_config", dict, {}))
        for aid, a in picked:
            if a["worker"]["user"]["id"] != ctx.key_user:
                raise Fail(CONN_INSUFFICIENT_SCOPES, f"task assignment {aid} is not {ctx.key_user}'s")
            if a["status"]["code"] == A_PENDING:
                a["status"] = {"code": code}
                _save(ctx, tid, aid, a)
                _update_annotations(ctx, tid, a["input"]["id"], ctx.key_user, ann, None)
        return {"task_assignments": [_out(aid, a, ctx) for aid, a in picked]}
    _role(ctx, app, task, "reviewer")
    if action == ACTIONS["REVIEW_START"]:
        waiting = [(aid, a) for aid, a in rows if a["status"]["code"] in (A_AWAITING, A_AWAITING_CONSENSUS)]
        mine = [(aid, a) for aid, a in waiting if a.get("_reviewer") == ctx.key_user]
        for aid, a in waiting:
            if len(mine) >= BATCH:
                break
            if not a.get("_reviewer"):
                a["_reviewer"] = ctx.key_user
                _save(ctx, tid, aid, a)
                mine.append((aid, a))
        return {"task_assignments": [_out(aid, a, ctx) for aid, a in mine]}
    if action not in REVIEWS:
        raise Fail(CONN_INVALID_REQUEST, f"action {ctx.body.get('action')!r} is not supported")
    a_code, ann_code, key = REVIEWS[action]
    picked = _picked(ctx, rows, get(ctx.body, key, dict, {}))
    for aid, a in picked:
        a["status"] = {"code": a_code}
        a["_reviewer"] = ctx.key_user
        _save(ctx, tid, aid, a)
        _update_annotations(
            ctx, tid, a["input"]["id"], a["worker"]["user"]["id"], ann_code, REVIEWING | {ANN["SUCCESS"], ANN["REVIEW_DENIED"]}
        )
    return {"task_assignments": [_out(aid, a, ctx) for aid, a in picked]}


def _picked(ctx: Ctx, rows: list[tuple[str, dict[str, Any]]], cfg: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The assignments a config names: by id (`task_assignments`), or every assignment awaiting
    review of the named `workers` (bulk)."""
    by_id = dict(rows)
    ids = [want(get(x, "id", str, ""), str, "task_assignments[].id") for x in get(cfg, "task_assignments", list, [])]
    if ids:
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise Fail(CONN_DOES_NOT_EXIST, f"task assignment {missing[0]!r} does not exist")
        return [(i, by_id[i]) for i in ids]
    users = {((w.get("user") or {}).get("id")) for w in get(cfg, "workers", list, []) if isinstance(w, dict)}
    if not users:
        raise Fail(CONN_INVALID_REQUEST, "name the task assignments (task_assignments) or their workers (workers)")
    return [
        (aid, a)
        for aid, a in rows
        if a["worker"]["user"]["id"] in users and a["status"]["code"] in (A_AWAITING, A_AWAITING_CONSENSUS)
    ]


def list_next_task_assignments(ctx: Ctx) -> dict[str, Any]:
    """The inputs the key's user is to label next (LABEL_START's inputs)."""
    ctx.body = {"action": ACTIONS["LABEL_START"]}
    got = put_task_assignments(ctx)["task_assignments"]
    return {"inputs": [a["input"] for a in got]}
